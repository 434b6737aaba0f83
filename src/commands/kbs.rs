//! `veritee kbs ...`: a node's Confidential Containers key broker. The admin's commands
//! speak Trustee's admin API with an EdDSA token, as `kbs-client config` does; the
//! guest's (`get-resource`) runs the handshake with CoCo's sample TEE, for trying a
//! broker without hardware.

use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use veritee_client::NodeClient;
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_kbs::jwe::{Curve, TeeKeyPair};

/// The node and the admin's token.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The node's URL.
    #[arg(long)]
    node: String,
    /// File holding an admin token (`veritee kbs admin-token`).
    #[arg(long)]
    token_file: PathBuf,
}

impl AdminTarget {
    fn open(&self) -> Result<(NodeClient, String)> {
        let token = crate::files::read(&self.token_file, "KBS admin token")?;
        let token = String::from_utf8(token).context("the KBS admin token is not text")?;
        Ok((NodeClient::new(&self.node)?, token.trim().to_string()))
    }
}

/// KBS subcommands.
#[derive(Debug, Subcommand)]
pub enum KbsCommand {
    /// Mint an admin token (EdDSA JWT) with the admin's Ed25519 private key (PKCS#8
    /// PEM, `openssl genpkey -algorithm ed25519`).
    ///
    /// Example: veritee kbs admin-token --key admin.key > admin.token
    AdminToken {
        /// The admin's private key.
        #[arg(long)]
        key: PathBuf,
        /// How long the token is valid, in minutes.
        #[arg(long, default_value_t = 60)]
        valid_minutes: u32,
    },
    /// Set the resource policy: an appraisal policy (TOML or JSON; `veritee policy
    /// init`) that every guest must meet to get any resource.
    ///
    /// Example: veritee kbs set-policy --node URL --token-file admin.token policy.toml
    SetPolicy {
        #[command(flatten)]
        target: AdminTarget,
        /// Set the policy of one repository (`repo`) or one resource (`repo/type/tag`)
        /// only; a release is judged by the most specific policy set for it.
        #[arg(long)]
        path: Option<String>,
        /// The policy file.
        policy: PathBuf,
    },
    /// Delete a resource policy: one repository's or resource's (`--path`), or, without
    /// it, the one for everything.
    DeletePolicy {
        #[command(flatten)]
        target: AdminTarget,
        /// The repository (`repo`) or resource (`repo/type/tag`) whose policy goes.
        #[arg(long)]
        path: Option<String>,
    },
    /// Store a resource under repo/type/tag, sealed to the node's enclave once its
    /// evidence meets --policy: the node's host carries it but cannot read it.
    /// `--plaintext` sends it as Trustee's set-resource does, in the clear to the host
    /// (the node must run with --kbs-plaintext-resources).
    ///
    /// Example: veritee kbs put-resource --node URL --token-file admin.token
    ///   --policy policy.toml --trust-anchor state/vendor/root.pem --path default/key/disk disk.key
    PutResource {
        #[command(flatten)]
        target: AdminTarget,
        /// The resource path, repo/type/tag.
        #[arg(long)]
        path: String,
        /// The appraisal policy the node's enclave must meet before the resource is
        /// sealed to it.
        #[arg(long, required_unless_present = "plaintext")]
        policy: Option<PathBuf>,
        /// A trust anchor for the node's evidence, `[KIND=]FILE`; repeatable.
        #[arg(long, value_name = "[KIND=]FILE")]
        trust_anchor: Vec<String>,
        /// Send the resource in the clear, as Trustee's set-resource does.
        #[arg(long, conflicts_with_all = ["policy", "trust_anchor"])]
        plaintext: bool,
        /// The file holding the resource.
        file: PathBuf,
    },
    /// List the stored resources.
    List {
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Delete a resource.
    Delete {
        #[command(flatten)]
        target: AdminTarget,
        /// The resource path, repo/type/tag.
        #[arg(long)]
        path: String,
    },
    /// Fetch a resource as a CoCo guest with the sample TEE would (the node's policy
    /// must allow "coco-sample"): for trying a broker, never for real secrets.
    GetResource {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The resource path, repo/type/tag.
        #[arg(long)]
        path: String,
        /// Write the resource here (0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a KBS subcommand.
pub fn run(cmd: KbsCommand) -> Result<Outcome> {
    match cmd {
        KbsCommand::AdminToken { key, valid_minutes } => {
            let pem = crate::files::read(&key, "admin private key")?;
            let (label, der) = der::pem::decode_vec(&pem)
                .map_err(|e| anyhow::anyhow!("{}: not PEM: {e}", key.display()))?;
            anyhow::ensure!(
                label == "PRIVATE KEY",
                "{}: holds a {label:?}, not an unencrypted PKCS#8 PRIVATE KEY",
                key.display()
            );
            let signing = Ed25519SigningKey::from_pkcs8(&der)
                .with_context(|| format!("{}: not an Ed25519 key", key.display()))?;
            let token = veritee_kbs::token::mint_admin_token(
                &signing,
                time::OffsetDateTime::now_utc(),
                time::Duration::minutes(valid_minutes.into()),
            )?;
            println!("{token}");
        }
        KbsCommand::SetPolicy {
            target,
            path,
            policy,
        } => {
            let text = crate::files::read(&policy, "policy")?;
            let text = String::from_utf8(text).context("the policy is not UTF-8 text")?;
            // Checked here too, for an error that names the file.
            veritee_policy::AppraisalPolicy::parse(&text)
                .with_context(|| format!("{}", policy.display()))?;
            let (client, token) = target.open()?;
            client.kbs_set_scoped_policy(&token, path.as_deref(), &text)?;
            match path {
                Some(scope) => eprintln!("resource policy of {scope} set"),
                None => eprintln!("resource policy set"),
            }
        }
        KbsCommand::DeletePolicy { target, path } => {
            let (client, token) = target.open()?;
            client.kbs_delete_policy(&token, path.as_deref())?;
            eprintln!(
                "resource policy of {} deleted",
                path.as_deref().unwrap_or("everything")
            );
        }
        KbsCommand::PutResource {
            target,
            path,
            policy,
            trust_anchor,
            plaintext,
            file,
        } => {
            let value = zeroize::Zeroizing::new(crate::files::read(&file, "resource")?);
            let (client, token) = target.open()?;
            match policy {
                Some(policy) if !plaintext => {
                    let appraisal = super::appraise::AppraisalArgs {
                        policy,
                        trust_anchor,
                        collateral: Vec::new(),
                    }
                    .load()?;
                    let wrapping = client
                        .fetch_wrapping_key()?
                        .verify(&appraisal.appraiser())?;
                    client.kbs_put_sealed_resource(&token, &path, &value, &wrapping)?;
                    eprintln!("stored {path}, sealed to the enclave");
                }
                _ => {
                    client.kbs_put_resource(&token, &path, &value)?;
                    eprintln!("stored {path} (sent in the clear to the node's host)");
                }
            }
        }
        KbsCommand::List { target } => {
            let (client, token) = target.open()?;
            for path in client.kbs_list_resources(&token)? {
                println!("{path}");
            }
        }
        KbsCommand::Delete { target, path } => {
            let (client, token) = target.open()?;
            client.kbs_delete_resource(&token, &path)?;
            eprintln!("deleted {path}");
        }
        KbsCommand::GetResource { node, path, out } => {
            let client = NodeClient::new(&node)?;
            let key = TeeKeyPair::generate_ec(Curve::P256)?;
            let session = client.kbs_attest_sample(&key)?;
            let value = client.kbs_get_resource(&session, &key, &path)?;
            match out {
                Some(file) => {
                    veritee_platform::fsutil::write_new(
                        &file,
                        &value,
                        veritee_platform::fsutil::PRIVATE_MODE,
                    )?;
                    eprintln!("wrote {} ({} bytes)", file.display(), value.len());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout()
                        .write_all(&value)
                        .context("cannot write the resource to standard output")?;
                }
            }
        }
    }
    Ok(Outcome::Success)
}
