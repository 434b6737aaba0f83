//! `veritee officer ...`: officers and quorums over a tenant's key service (flow 3).
//! Once a role has officers, its actions need K of their approvals: ask the enclave
//! for a token, have K officers approve it (offline, each with their own key), and
//! send the action with the token and the approvals.

use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use veritee_client::NodeClient;
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_import::quorum::{Approval, QuorumProof, QuorumToken, approve};
use veritee_platform::fsutil;

/// A node and the tenant asking it.
#[derive(Debug, Args, Clone)]
pub struct Tenant {
    /// The node's URL.
    #[arg(long)]
    node: String,
    /// The tenant key file.
    #[arg(long)]
    tenant: PathBuf,
}

impl Tenant {
    fn connect(&self) -> Result<(NodeClient, veritee_channel::client::TenantKey)> {
        Ok((NodeClient::new(&self.node)?, load_tenant(&self.tenant)?))
    }
}

/// A quorum token and its approvals, for an action that needs them.
#[derive(Debug, Args, Clone, Default)]
pub struct Approvals {
    /// The quorum token (from `veritee officer request`).
    #[arg(long, requires = "approval")]
    token: Option<PathBuf>,
    /// An officer's approval of it (from `veritee officer approve`); repeatable.
    #[arg(long)]
    approval: Vec<PathBuf>,
}

impl Approvals {
    /// The proof, when a token was given.
    pub fn proof(&self) -> Result<Option<QuorumProof>> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let token = crate::files::read(token, "quorum token")?;
        let approvals = self
            .approval
            .iter()
            .map(|p| {
                serde_json::from_slice::<Approval>(&crate::files::read(p, "approval")?)
                    .with_context(|| format!("approval {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(QuorumProof {
            token: hex::encode(token),
            approvals,
        }))
    }
}

/// Officer subcommands.
#[derive(Debug, Subcommand)]
pub enum OfficerCommand {
    /// Register an officer in a role, and set the role's quorum. The tenant alone
    /// while the domain officers cannot reach their quorum; then with their approvals.
    ///
    /// Example: veritee officer register --node URL --tenant alice.pem --role partition
    ///   --officer-key officer1.pub --quorum 2
    Register {
        #[command(flatten)]
        who: Tenant,
        /// domain (registers officers), partition (creates and deletes partitions) or
        /// security (disables keys).
        #[arg(long)]
        role: String,
        /// The officer's Ed25519 public key (PEM: `openssl pkey -pubout`).
        #[arg(long)]
        officer_key: PathBuf,
        /// How many of the role's officers its actions need.
        #[arg(long)]
        quorum: u32,
        #[command(flatten)]
        approvals: Approvals,
    },
    /// Ask the enclave for a quorum token for one action (single-use, 15 minutes).
    ///
    /// Example: veritee officer request --node URL --tenant alice.pem
    ///   --action partition.create --target payments --out token.json
    Request {
        #[command(flatten)]
        who: Tenant,
        /// partition.create, partition.delete, officer.register or key.disable.
        #[arg(long)]
        action: String,
        /// A partition name, or for officer.register `ROLE:PUBLIC-KEY-HEX:QUORUM`.
        #[arg(long)]
        target: String,
        /// Where to write the token (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Approve a quorum token with an officer's key (offline); shows what it approves.
    ///
    /// Example: veritee officer approve --token token.json --key officer1.pem --out a1.json
    Approve {
        /// The token.
        #[arg(long)]
        token: PathBuf,
        /// The officer's Ed25519 private key (PKCS#8 PEM: `openssl genpkey -algorithm ed25519`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the approval (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// The tenant's officers, by role.
    ///
    /// Example: veritee officer list --node URL --tenant alice.pem
    List {
        #[command(flatten)]
        who: Tenant,
    },
}

fn officer_public_key(path: &Path) -> Result<[u8; 32]> {
    let pem = String::from_utf8(crate::files::read(path, "officer key")?)
        .context("the officer key is not PEM text")?;
    veritee_kbs::token::admin_public_key_from_pem(&pem).with_context(|| {
        format!(
            "officer key {} (an Ed25519 public key, PEM)",
            path.display()
        )
    })
}

fn officer_signing_key(path: &Path) -> Result<Ed25519SigningKey> {
    let pem = veritee_crypto::SecretBytes::new(crate::files::read(path, "officer key")?);
    let blocks = veritee_x509::pem::blocks(pem.expose())
        .with_context(|| format!("officer key {}", path.display()))?;
    let Some((_, der)) = blocks.into_iter().find(|(l, _)| l == "PRIVATE KEY") else {
        bail!("officer key {} has no PRIVATE KEY block", path.display());
    };
    let der = veritee_crypto::SecretBytes::new(der);
    Ed25519SigningKey::from_pkcs8(der.expose())
        .with_context(|| format!("officer key {} must be Ed25519 (PKCS#8)", path.display()))
}

/// Runs an officer subcommand.
pub fn run(cmd: OfficerCommand) -> Result<Outcome> {
    match cmd {
        OfficerCommand::Register {
            who,
            role,
            officer_key,
            quorum,
            approvals,
        } => {
            let (client, tenant) = who.connect()?;
            let key = officer_public_key(&officer_key)?;
            client.register_officer(&tenant, &role, &key, quorum, approvals.proof()?)?;
            println!(
                "registered {role} officer {}; {role} actions need {quorum} approvals",
                hex::encode(key)
            );
        }
        OfficerCommand::Request {
            who,
            action,
            target,
            out,
        } => {
            let (client, tenant) = who.connect()?;
            let token = client.quorum_token(&tenant, &action, &target)?;
            fsutil::write_new(&out, &token, fsutil::PUBLIC_MODE)?;
            println!(
                "quorum token for {action} on {target} written to {}",
                out.display()
            );
        }
        OfficerCommand::Approve { token, key, out } => {
            let bytes = crate::files::read(&token, "quorum token")?;
            let t: QuorumToken = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a quorum token", token.display()))?;
            let officer = officer_signing_key(&key)?;
            let approval = approve(&officer, &bytes)?;
            fsutil::write_new(
                &out,
                &serde_json::to_vec_pretty(&approval)?,
                fsutil::PUBLIC_MODE,
            )?;
            println!(
                "approved {} on {:?} for tenant {} at node {} (token {}, {} approvals needed)",
                t.action.as_str(),
                t.target,
                t.tenant,
                t.node,
                t.id,
                t.quorum
            );
        }
        OfficerCommand::List { who } => {
            let (client, tenant) = who.connect()?;
            for role in client.list_officers(&tenant)?.roles {
                println!(
                    "{} (quorum {}): {}",
                    role.role,
                    role.quorum,
                    role.officers.join(" ")
                );
            }
        }
    }
    Ok(Outcome::Success)
}
