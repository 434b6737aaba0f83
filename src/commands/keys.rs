//! `veritee keys ...`: deploy user data keys into a node's enclave, online or offline.
//!
//! Online: `deploy` fetches the attested wrapping key, checks it, wraps and imports in
//! one go. Offline (air-gapped): `wrapping-key` on a connected machine, `wrap` on the
//! offline one, `import` back on a connected one; the files are carried by hand. The
//! tenant signs a wrapped key file whole, so a courier who changes any field of it is
//! caught at import, before anything is sent.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use veritee_channel::client::TenantKey;
use veritee_channel::deploy::{self, DATA_KEY_LEN, ReleasePolicy};
use veritee_client::{
    NodeClient, WrappedKeyFile, WrappingKeyFile, import_wrapped_key, wrap_for_node,
};
use veritee_crypto::Confidential;
use veritee_platform::fsutil;

/// Where generated keys go unless `--key-file` says otherwise.
pub const DEFAULT_KEYRING: &str = "veritee-keys";

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
        /// The tenant key file: the wrapped key file is signed with it.
        #[arg(long)]
        tenant: PathBuf,
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
        /// Where to save the enclave's signed audit checkpoint (for `veritee audit
        /// verify --checkpoint`).
        #[arg(long)]
        checkpoint_out: Option<PathBuf>,
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
    tenant: &TenantKey,
    source: &KeySource,
) -> Result<WrappedKeyFile> {
    let loaded = appraisal.load()?;
    let attested = wk.verify(&loaded.appraiser()).context(
        "the wrapping key is not vouched for by acceptable evidence; nothing was encrypted",
    )?;
    let (key, name) = key_and_name(source)?;
    veritee_channel::ops::check_name(&name).map_err(anyhow::Error::msg)?;
    // Replicas of the key must meet the same policy its first enclave met.
    let policy = serde_json::to_vec(&loaded.policy).context("cannot encode the policy")?;
    Ok(wrap_for_node(
        &attested,
        tenant,
        &name,
        source.release,
        policy,
        &key,
    )?)
}

fn import(
    client: &NodeClient,
    tenant: &TenantKey,
    file: &WrappedKeyFile,
    checkpoint_out: Option<&Path>,
) -> Result<()> {
    let imported = import_wrapped_key(client, tenant, file)
        .context("the key was not deployed, or the node's receipt does not check out")?;
    let r = &imported.receipt;
    println!(
        "key {} deployed for tenant {} on node {}; receipt signed by the attested enclave at {} (check value {}); audit log at {} entries",
        r.key, r.tenant, r.node, r.time, r.key_check, imported.checkpoint.size
    );
    if let Some(path) = checkpoint_out {
        fsutil::write_new(
            path,
            imported.checkpoint_note.as_bytes(),
            fsutil::PUBLIC_MODE,
        )?;
        println!("audit checkpoint saved to {}", path.display());
    }
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
            let file = wrap(&wk, &appraisal, &tenant, &source)?;
            import(&client, &tenant, &file, None)?;
        }
        KeysCommand::Wrap {
            wrapping_key,
            tenant,
            appraisal,
            source,
            out,
        } => {
            let wk: WrappingKeyFile =
                serde_json::from_slice(&crate::files::read(&wrapping_key, "wrapping key file")?)
                    .with_context(|| {
                        format!("{} is not a wrapping key file", wrapping_key.display())
                    })?;
            let tenant = load_tenant(&tenant)?;
            let file = wrap(&wk, &appraisal, &tenant, &source)?;
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
        KeysCommand::Import {
            node,
            tenant,
            file,
            checkpoint_out,
        } => {
            let tenant = load_tenant(&tenant)?;
            let blob: WrappedKeyFile =
                serde_json::from_slice(&crate::files::read(&file, "wrapped key file")?)
                    .with_context(|| format!("{} is not a wrapped key file", file.display()))?;
            import(
                &NodeClient::new(&node)?,
                &tenant,
                &blob,
                checkpoint_out.as_deref(),
            )?;
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
