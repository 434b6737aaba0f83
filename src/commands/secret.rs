//! `veritee secret ...`: named secrets kept by a node's enclave, over an attested session.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use veritee_channel::ops::{Request, Response};
use veritee_client::session_cache::SessionCache;
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
    #[command(flatten)]
    pub cache: SessionCacheArgs,
}

/// Whether to resume a session an earlier command attested.
#[derive(Debug, Args, Clone)]
pub struct SessionCacheArgs {
    /// Where sessions are kept for the next command to resume in one round trip,
    /// without verifying the node's evidence again (until the policy's
    /// `max_evidence_age` or the enclave's one-hour ticket ends; default:
    /// $XDG_CACHE_HOME/veritee/sessions, else ~/.cache/veritee/sessions). The files
    /// hold a session secret: the directory must be 0700 and yours.
    #[arg(long, env = "VERITEE_SESSION_CACHE", value_name = "DIR")]
    pub session_cache: Option<PathBuf>,
    /// Attest the node afresh, and keep no session for later.
    #[arg(long)]
    pub no_session_cache: bool,
}

impl SessionCacheArgs {
    fn cache(&self) -> Option<SessionCache> {
        if self.no_session_cache {
            return None;
        }
        self.session_cache
            .clone()
            .or_else(SessionCache::default_dir)
            .map(SessionCache::new)
    }
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

/// Sends one request in an attested session with the node: resumed from the session
/// cache when it holds one the enclave still honours, else attested afresh and kept
/// there for the next command (see [`SessionCache`]).
pub fn call_once(conn: &Connection, request: &Request) -> Result<Response> {
    let loaded = conn.appraisal.load()?;
    let tenant = load_tenant(&conn.tenant)?;
    let client = veritee_client::NodeClient::new(&conn.node)?;
    client
        .call_once(
            &tenant,
            &loaded.appraiser(),
            conn.cache.cache().as_ref(),
            request,
        )
        .map_err(|e| match e {
            e @ veritee_client::ClientError::Enclave { .. } => anyhow::Error::new(e),
            other => anyhow::Error::new(other).context("attested session refused"),
        })
}

/// The answer a request expects, or what came instead.
pub fn unexpected(expected: &str, got: &Response) -> anyhow::Error {
    anyhow::anyhow!("unexpected answer from the node: expected {expected}, got {got:?}")
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
            let request = Request::PutSecret {
                name: name.clone(),
                value,
            };
            match call_once(&conn, &request)? {
                Response::Stored => println!("stored secret {name}"),
                other => return Err(unexpected("Stored", &other)),
            }
        }
        SecretCommand::Get { conn, name, out } => {
            let value = match call_once(&conn, &Request::GetSecret { name: name.clone() })? {
                Response::Secret(value) => value,
                other => return Err(unexpected("Secret", &other)),
            };
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
        SecretCommand::List { conn } => match call_once(&conn, &Request::ListSecrets)? {
            Response::Names(names) => {
                for name in names {
                    println!("{name}");
                }
            }
            other => return Err(unexpected("Names", &other)),
        },
    }
    Ok(Outcome::Success)
}
