//! `veritee secret ...`: named secrets kept by a node's enclave, over an attested session.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use veritee_crypto::SecretBytes;

/// Where and as whom.
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// The node's URL.
    #[arg(long)]
    pub node: String,
    /// The tenant key file.
    #[arg(long)]
    pub tenant: PathBuf,
    #[command(flatten)]
    pub appraisal: AppraisalArgs,
}

/// Secret subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret (read from a file, or stdin).
    Put {
        #[command(flatten)]
        conn: Connection,
        /// Its name.
        #[arg(long)]
        name: String,
        /// The file holding it (default: stdin).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Fetch a secret (to a new 0600 file, or stdout).
    Get {
        #[command(flatten)]
        conn: Connection,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Where to write it (must not exist; default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the tenant's secret names.
    List {
        #[command(flatten)]
        conn: Connection,
    },
}

/// Runs `f` in an attested session with the node.
pub fn with_session<T>(
    conn: &Connection,
    f: impl FnOnce(&mut veritee_client::Session<'_>) -> Result<T>,
) -> Result<T> {
    let loaded = conn.appraisal.load()?;
    let tenant = load_tenant(&conn.tenant)?;
    let client = veritee_client::NodeClient::new(&conn.node)?;
    let mut session = client
        .open_session(&tenant, &loaded.appraiser())
        .context("attested session refused")?;
    f(&mut session)
}

/// Runs a secret subcommand.
pub fn run(cmd: SecretCommand) -> Result<Outcome> {
    match cmd {
        SecretCommand::Put { conn, name, file } => {
            let mut value = SecretBytes::new(Vec::new());
            match &file {
                Some(path) => *value.expose_mut() = crate::files::read(path, "secret")?,
                None => {
                    std::io::stdin()
                        .take(veritee_enclave::MAX_SECRET_LEN as u64 + 1)
                        .read_to_end(value.expose_mut())
                        .context("cannot read the secret from stdin")?;
                }
            }
            with_session(&conn, |s| Ok(s.put_secret(&name, value)?))?;
            println!("stored secret {name}");
        }
        SecretCommand::Get { conn, name, out } => {
            let value = with_session(&conn, |s| Ok(s.get_secret(&name)?))?;
            match out {
                Some(path) => {
                    veritee_platform::fsutil::write_new(
                        &path,
                        value.expose(),
                        veritee_platform::fsutil::PRIVATE_MODE,
                    )?;
                    eprintln!("wrote secret {name} to {}", path.display());
                }
                None => std::io::stdout()
                    .write_all(value.expose())
                    .context("cannot write to stdout")?,
            }
        }
        SecretCommand::List { conn } => {
            for name in with_session(&conn, |s| Ok(s.list()?))? {
                println!("{name}");
            }
        }
    }
    Ok(Outcome::Success)
}
