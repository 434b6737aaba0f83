//! `veritee tenant create`: a tenant identity key, registered with a node.

use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use veritee_channel::client::TenantKey;
use veritee_platform::fsutil;

/// Tenant subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Generate a tenant key (saved 0600) and register it with a node.
    Create {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// File holding the node's admin token.
        #[arg(long)]
        admin_token: PathBuf,
        /// Where to save the tenant key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Register an existing tenant key with another node.
    Register {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// File holding the node's admin token.
        #[arg(long)]
        admin_token: PathBuf,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
    },
}

/// Registers an existing tenant key.
fn register(node: &str, admin_token: &Path, key: &TenantKey) -> Result<String> {
    let token = crate::files::read_text(admin_token, "admin token")?;
    Ok(veritee_client::NodeClient::new(node)?.register_tenant(&token, key)?)
}

/// Loads a tenant key file (PKCS#8 PEM).
pub fn load_tenant(path: &Path) -> Result<TenantKey> {
    let pem = veritee_crypto::SecretBytes::new(crate::files::read(path, "tenant key")?);
    let blocks = veritee_x509::pem::blocks(pem.expose())
        .with_context(|| format!("tenant key {}", path.display()))?;
    let Some((_, der)) = blocks.into_iter().find(|(l, _)| l == "PRIVATE KEY") else {
        bail!("tenant key {} has no PRIVATE KEY block", path.display());
    };
    let der = veritee_crypto::SecretBytes::new(der);
    TenantKey::from_pkcs8(der.expose())
        .with_context(|| format!("tenant key {} must be ECDSA P-256", path.display()))
}

/// Runs a tenant subcommand.
pub fn run(cmd: TenantCommand) -> Result<Outcome> {
    match cmd {
        TenantCommand::Create {
            node,
            admin_token,
            out,
        } => {
            let key = TenantKey::generate()?;
            let id = register(&node, &admin_token, &key)?;
            let pem = veritee_crypto::SecretBytes::new(
                veritee_x509::pem::encode("PRIVATE KEY", key.to_pkcs8()?.expose()).into_bytes(),
            );
            fsutil::write_new(&out, pem.expose(), fsutil::PRIVATE_MODE)?;
            println!(
                "tenant {id} registered with {node}; key saved to {}",
                out.display()
            );
            Ok(Outcome::Success)
        }
        TenantCommand::Register {
            node,
            admin_token,
            tenant,
        } => {
            let id = register(&node, &admin_token, &load_tenant(&tenant)?)?;
            println!("tenant {id} registered with {node}");
            Ok(Outcome::Success)
        }
    }
}
