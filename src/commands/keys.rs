//! `veritee keys ...`: deploy user data keys into a node's enclave, online or offline.
//!
//! Online: `deploy` fetches the attested wrapping key, checks it, wraps and imports in
//! one go. Offline (air-gapped): `wrapping-key` on a connected machine, `wrap` on the
//! offline one, `import` back on a connected one; the files are carried by hand.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use veritee_channel::deploy::{self, DATA_KEY_LEN, ReleasePolicy, WrappedKeyHeader};
use veritee_client::{NodeClient, WrappingKeyFile, verify_receipt};
use veritee_crypto::Confidential;
use veritee_platform::fsutil;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Where generated keys go unless `--key-file` says otherwise.
pub const DEFAULT_KEYRING: &str = "veritee-keys";

/// A wrapped key file, carried from the offline machine to a connected one.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKeyFile {
    /// The node the wrapping key came from.
    pub node: String,
    /// The key name.
    pub key: String,
    /// The tenant.
    pub tenant: String,
    /// The key check value (hex SHA-256), to check the receipt against.
    pub key_digest: String,
    /// The attested receipt key, SPKI DER, base64.
    pub audit_public_key: String,
    /// The wrapped key, base64.
    pub wrapped: String,
}

/// Which key to deploy.
#[derive(Debug, Args, Clone)]
pub struct KeySource {
    /// A file holding the 256-bit key (64 hex digits, or 32 raw bytes).
    #[arg(long, conflicts_with = "generate")]
    key_file: Option<PathBuf>,
    /// Generate a fresh key and save it (0600) to --key-out or veritee-keys/NAME.key.
    #[arg(long)]
    generate: bool,
    /// Where --generate saves the key.
    #[arg(long, requires = "generate")]
    key_out: Option<PathBuf>,
    /// The key's name in the enclave (default: the key file's stem).
    #[arg(long)]
    id: Option<String>,
    /// Which other enclaves may receive a replica: same-signer, same-measurement, never.
    #[arg(long, default_value = "same-signer")]
    release: ReleasePolicy,
}

/// Keys subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Fetch a node's wrapping key with its evidence (to wrap a key for it, also offline).
    WrappingKey {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Deploy a key online: check the node's attested wrapping key, wrap, import.
    Deploy {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        #[command(flatten)]
        source: KeySource,
    },
    /// Wrap a key for a node from a wrapping-key file, without network access.
    Wrap {
        /// The file from `veritee keys wrapping-key`.
        #[arg(long)]
        wrapping_key: PathBuf,
        /// The tenant key file (its id goes into the wrapped key)...
        #[arg(long, conflicts_with = "tenant_id")]
        tenant: Option<PathBuf>,
        /// ...or the tenant id itself.
        #[arg(long)]
        tenant_id: Option<String>,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        #[command(flatten)]
        source: KeySource,
        /// Where to write the wrapped key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a wrapped key file into the node it was wrapped for.
    Import {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        /// The file from `veritee keys wrap`.
        #[arg(long)]
        file: PathBuf,
    },
    /// List the tenant's keys in a node's enclave.
    List {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        appraisal: AppraisalArgs,
    },
    /// Have a node obtain a key it does not hold from a peer enclave, now.
    Replicate {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        /// The key's name.
        #[arg(long)]
        id: String,
    },
}

/// Reads a 256-bit key file: 64 hex digits (whitespace ignored) or 32 raw bytes.
pub fn read_key_file(path: &Path) -> Result<Confidential<[u8; DATA_KEY_LEN]>> {
    let raw = veritee_crypto::SecretBytes::new(crate::files::read(path, "key file")?);
    let mut key = Confidential::new([0u8; DATA_KEY_LEN]);
    let text: Vec<u8> = raw
        .expose()
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let text = veritee_crypto::SecretBytes::new(text);
    if text.len() == 2 * DATA_KEY_LEN && text.expose().iter().all(u8::is_ascii_hexdigit) {
        hex::decode_to_slice(text.expose(), key.expose_mut()).context("key file hex")?;
    } else if raw.len() == DATA_KEY_LEN {
        key.expose_mut().copy_from_slice(raw.expose());
    } else {
        bail!(
            "key file {} must hold a 256-bit key: 64 hex digits or 32 raw bytes (found {} bytes)",
            path.display(),
            raw.len()
        );
    }
    Ok(key)
}

/// Writes a 256-bit key file (hex, 0600), creating its directory (0700).
pub fn write_key_file(path: &Path, key: &Confidential<[u8; DATA_KEY_LEN]>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsutil::create_private_dir(dir)?;
    }
    let text =
        veritee_crypto::SecretBytes::new(format!("{}\n", hex::encode(key.expose())).into_bytes());
    fsutil::write_new(path, text.expose(), fsutil::PRIVATE_MODE)?;
    Ok(())
}

/// Resolves the key and its name.
fn key_and_name(source: &KeySource) -> Result<(Confidential<[u8; DATA_KEY_LEN]>, String)> {
    if source.generate {
        let name = source
            .id
            .clone()
            .context("--generate needs --id NAME (the key's name)")?;
        let key = veritee_crypto::rand::secret_array::<DATA_KEY_LEN>()?;
        let path = source
            .key_out
            .clone()
            .unwrap_or_else(|| Path::new(DEFAULT_KEYRING).join(format!("{name}.key")));
        write_key_file(&path, &key)?;
        eprintln!(
            "generated a 256-bit key and saved it to {} (0600)",
            path.display()
        );
        return Ok((key, name));
    }
    let path = source
        .key_file
        .as_ref()
        .context("give --key-file FILE or --generate --id NAME")?;
    let name = match &source.id {
        Some(n) => n.clone(),
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("cannot name the key after its file; give --id NAME")?
            .to_string(),
    };
    Ok((read_key_file(path)?, name))
}

fn wrap(
    wk: &WrappingKeyFile,
    appraisal: &AppraisalArgs,
    tenant_id: &str,
    source: &KeySource,
) -> Result<WrappedKeyFile> {
    let loaded = appraisal.load()?;
    let attested = wk.verify(&loaded.appraiser()).context(
        "the wrapping key is not vouched for by acceptable evidence; nothing was encrypted",
    )?;
    let (key, name) = key_and_name(source)?;
    veritee_channel::ops::check_name(&name).map_err(anyhow::Error::msg)?;
    let header = WrappedKeyHeader {
        release: source.release,
        wrapping_key_id: deploy::wrapping_key_id(attested.public_key.as_bytes()),
        tenant_id: tenant_id.to_string(),
        name: name.clone(),
    };
    let wrapped = deploy::wrap_key(&attested.public_key, &header, &key)?;
    Ok(WrappedKeyFile {
        node: wk.node.clone(),
        key: name,
        tenant: tenant_id.to_string(),
        key_digest: deploy::key_digest(&key),
        audit_public_key: B64.encode(&attested.audit_public_key),
        wrapped: B64.encode(wrapped),
    })
}

fn import(
    client: &NodeClient,
    tenant: &veritee_channel::client::TenantKey,
    file: &WrappedKeyFile,
) -> Result<()> {
    let wrapped = B64.decode(&file.wrapped).context("wrapped is not base64")?;
    let audit = B64
        .decode(&file.audit_public_key)
        .context("audit_public_key is not base64")?;
    let receipt = client.import_wrapped_key(tenant, &wrapped)?;
    let r = verify_receipt(&receipt, &audit, &file.key, &file.tenant, &file.key_digest)
        .context("the node's receipt does not check out")?;
    println!(
        "key {} deployed for tenant {}; receipt signed by the attested enclave at {} (key check value {})",
        r.key, r.tenant, r.time, r.key_digest
    );
    Ok(())
}

/// Runs a keys subcommand.
pub fn run(cmd: KeysCommand) -> Result<Outcome> {
    match cmd {
        KeysCommand::WrappingKey { node, out } => {
            let wk = NodeClient::new(&node)?.fetch_wrapping_key()?;
            fsutil::write_new(&out, &serde_json::to_vec_pretty(&wk)?, fsutil::PUBLIC_MODE)?;
            println!(
                "wrapping key {} of {node} saved to {} (checked against your policy when you wrap)",
                deploy::wrapping_key_id(&hex::decode(&wk.public_key)?),
                out.display()
            );
        }
        KeysCommand::Deploy {
            node,
            tenant,
            appraisal,
            source,
        } => {
            let tenant = load_tenant(&tenant)?;
            let client = NodeClient::new(&node)?;
            let wk = client.fetch_wrapping_key()?;
            let file = wrap(&wk, &appraisal, &tenant.tenant_id()?, &source)?;
            import(&client, &tenant, &file)?;
        }
        KeysCommand::Wrap {
            wrapping_key,
            tenant,
            tenant_id,
            appraisal,
            source,
            out,
        } => {
            let wk: WrappingKeyFile =
                serde_json::from_slice(&crate::files::read(&wrapping_key, "wrapping key file")?)
                    .with_context(|| {
                        format!("{} is not a wrapping key file", wrapping_key.display())
                    })?;
            let tenant_id = match (tenant, tenant_id) {
                (Some(t), _) => load_tenant(&t)?.tenant_id()?,
                (None, Some(id)) => id,
                (None, None) => bail!("give --tenant FILE or --tenant-id ID"),
            };
            let file = wrap(&wk, &appraisal, &tenant_id, &source)?;
            fsutil::write_new(
                &out,
                &serde_json::to_vec_pretty(&file)?,
                fsutil::PUBLIC_MODE,
            )?;
            println!(
                "key {} wrapped for {} into {}; carry it to a connected machine and `veritee keys import`",
                file.key,
                file.node,
                out.display()
            );
        }
        KeysCommand::Import { node, tenant, file } => {
            let tenant = load_tenant(&tenant)?;
            let blob: WrappedKeyFile =
                serde_json::from_slice(&crate::files::read(&file, "wrapped key file")?)
                    .with_context(|| format!("{} is not a wrapped key file", file.display()))?;
            import(&NodeClient::new(&node)?, &tenant, &blob)?;
        }
        KeysCommand::List {
            node,
            tenant,
            appraisal,
        } => {
            let loaded = appraisal.load()?;
            let tenant = load_tenant(&tenant)?;
            let client = NodeClient::new(&node)?;
            for name in client
                .open_session(&tenant, &loaded.appraiser())?
                .list_keys()?
            {
                println!("{name}");
            }
        }
        KeysCommand::Replicate {
            node,
            tenant,
            appraisal,
            id,
        } => {
            let loaded = appraisal.load()?;
            let tenant = load_tenant(&tenant)?;
            let client = NodeClient::new(&node)?;
            let digest = client
                .open_session(&tenant, &loaded.appraiser())?
                .ensure_key(&id)?;
            println!("{node} holds key {id} (key check value {digest})");
        }
    }
    Ok(Outcome::Success)
}
