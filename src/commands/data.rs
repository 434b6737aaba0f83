//! `veritee data put|get`: exchange files with a node's enclave, encrypted under a
//! deployed key in the chunked stream format, in constant memory.

use super::keys::{DEFAULT_KEYRING, read_key_file};
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Which key.
#[derive(Debug, Args, Clone)]
pub struct KeyArgs {
    /// The deployed key's name.
    #[arg(long)]
    key: String,
    /// The key file (default: veritee-keys/NAME.key, where `keys deploy --generate` saves it).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// Data subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Encrypt a file under a deployed key and store it with the node.
    Put {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The object name (default: the file name).
        #[arg(long = "as")]
        object: Option<String>,
        /// The file.
        file: PathBuf,
    },
    /// Fetch an object, check and decrypt it.
    Get {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The object name.
        object: String,
        /// Where to write the plaintext (created only when every chunk checked out).
        #[arg(long)]
        out: PathBuf,
    },
}

fn bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn key_path(k: &KeyArgs) -> PathBuf {
    k.key_file
        .clone()
        .unwrap_or_else(|| Path::new(DEFAULT_KEYRING).join(format!("{}.key", k.key)))
}

/// Runs a data subcommand.
pub fn run(cmd: DataCommand) -> Result<Outcome> {
    match cmd {
        DataCommand::Put {
            node,
            tenant,
            key,
            object,
            file,
        } => {
            let tenant = load_tenant(&tenant)?;
            let data_key = read_key_file(&key_path(&key))?;
            let object = match object {
                Some(o) => o,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("name the object with --as NAME")?
                    .to_string(),
            };
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let len = input.metadata().map(|m| m.len()).unwrap_or(0);
            let progress = bar(len);
            let client = veritee_client::NodeClient::new(&node)?;
            let (sent, version) = client.put_data(
                &tenant,
                &object,
                &key.key,
                &data_key,
                std::io::BufReader::new(input),
                |n| progress.set_position(n),
            )?;
            progress.finish_and_clear();
            println!(
                "stored {object} version {version}: {sent} bytes, encrypted under key {}",
                key.key
            );
        }
        DataCommand::Get {
            node,
            tenant,
            key,
            object,
            out,
        } => {
            let tenant = load_tenant(&tenant)?;
            let data_key = read_key_file(&key_path(&key))?;
            let dir = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            let progress = bar(0);
            let client = veritee_client::NodeClient::new(&node)?;
            let (got, version) = client.get_data(
                &tenant,
                &object,
                &data_key,
                std::io::BufWriter::new(tmp.as_file_mut()),
                |i, n| {
                    progress.set_length(n);
                    progress.set_position(i);
                },
            )?;
            progress.finish_and_clear();
            tmp.persist(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            println!(
                "fetched {object} version {version} (vouched for by the enclave): {got} bytes, every chunk checked, written to {}",
                out.display()
            );
        }
    }
    Ok(Outcome::Success)
}
