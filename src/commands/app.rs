//! `veritee app ...`: long-running applications in a node's enclave, and secure fork
//! (flow 5). Everything travels inside an attested session: the host sees neither
//! module, inputs, outputs nor state.

use super::secret::{Connection, call_once};
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::io::{Read, Write};
use std::path::PathBuf;
use veritee_channel::apps::{AppAnswer, AppRequest, MAX_APP_MODULE};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;

/// Largest call input read from a file or stdin.
const MAX_INPUT: u64 = 8 * 1024 * 1024;

/// Application subcommands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Start an application from a WebAssembly module (binary or text).
    ///
    /// Example: veritee app run --node URL --tenant alice.pem --policy p.toml
    ///   --trust-anchor root.pem --name counter --module examples/apps/counter.wat
    Run {
        #[command(flatten)]
        conn: Connection,
        /// Its name.
        #[arg(long)]
        name: String,
        /// The module file.
        #[arg(long)]
        module: PathBuf,
        /// Largest linear memory, in MiB (default 256).
        #[arg(long)]
        memory_mib: Option<u32>,
        /// A peer node the application may fork itself to, with the host function
        /// `fork` (the child is named NAME-1, NAME-2...); without it, it may not.
        #[arg(long)]
        fork_peer: Option<String>,
        /// Keep its state in the node's sealed store after every call, so that it
        /// survives an enclave restart (each call then costs a durable write).
        #[arg(long)]
        durable: bool,
        /// A stored key it may use through `key_op`, by its position among these
        /// (stored keys come before the keys of its forks): PARTITION/KEY_ID,
        /// OWNER_TENANT_ID/PARTITION/KEY_ID or deployed/NAME. The key's metadata must
        /// name your tenant among its task signers (`import send --task-signer`).
        /// Repeatable, at most 8.
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// Call one of its exports (`() -> i32`); the output goes to --out or stdout, the
    /// return value and the log to stderr.
    ///
    /// Example: veritee app call ... --name counter --export count
    Call {
        #[command(flatten)]
        conn: Connection,
        /// The application.
        #[arg(long)]
        name: String,
        /// The export to call.
        #[arg(long)]
        export: String,
        /// The call's input (default: none; `-` for stdin).
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// Where the output goes, created (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Your applications on the node.
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Stop an application and forget its state.
    Stop {
        #[command(flatten)]
        conn: Connection,
        /// The application.
        #[arg(long)]
        name: String,
    },
    /// Fork an application into an enclave on a peer node, where it runs on from the
    /// same state as --child; both go on independently.
    ///
    /// Example: veritee app fork ... --name counter --peer https://node-b:8443
    ///   --child counter-b
    Fork {
        #[command(flatten)]
        conn: Connection,
        /// The application.
        #[arg(long)]
        name: String,
        /// The peer node's URL, as the node was started with (`--peer`).
        #[arg(long)]
        peer: String,
        /// The child's name at the peer.
        #[arg(long)]
        child: String,
    },
}

fn read_input(input: &Option<PathBuf>) -> Result<SecretBytes> {
    let mut bytes = SecretBytes::new(Vec::new());
    match input {
        None => {}
        Some(path) if path.as_os_str() == "-" => {
            std::io::stdin()
                .take(MAX_INPUT + 1)
                .read_to_end(bytes.expose_mut())
                .context("cannot read the input from stdin")?;
        }
        Some(path) => *bytes.expose_mut() = crate::files::read(path, "call input")?,
    }
    if bytes.len() as u64 > MAX_INPUT {
        bail!("the input is larger than {MAX_INPUT} bytes");
    }
    Ok(bytes)
}

/// One application request in an attested session (see [`call_once`]).
fn app(conn: &Connection, request: AppRequest) -> Result<AppAnswer> {
    match call_once(conn, &Request::App(request))? {
        Response::App(answer) => Ok(answer),
        other => Err(super::secret::unexpected("an application answer", &other)),
    }
}

/// Runs an application subcommand.
pub fn run(cmd: AppCommand) -> Result<Outcome> {
    match cmd {
        AppCommand::Run {
            conn,
            name,
            module,
            memory_mib,
            fork_peer,
            durable,
            keys,
        } => {
            let bytes = crate::files::read(&module, "module")?;
            if bytes.len() > MAX_APP_MODULE {
                bail!(
                    "{} is {} bytes; a module may be at most {MAX_APP_MODULE}",
                    module.display(),
                    bytes.len()
                );
            }
            let request = AppRequest::Run {
                name: name.clone(),
                module: SecretBytes::new(bytes),
                memory_mib,
                fork_peer,
                durable,
                keys,
            };
            match app(&conn, request)? {
                AppAnswer::Started { module_sha256 } => {
                    println!("application {name} runs (module sha256 {module_sha256})");
                }
                other => bail!("the enclave answered out of turn: {other:?}"),
            }
        }
        AppCommand::Call {
            conn,
            name,
            export,
            input,
            out,
        } => {
            let request = AppRequest::Call {
                name,
                export,
                input: read_input(&input)?,
            };
            let AppAnswer::Called {
                exit_code,
                output,
                log,
                fork,
            } = app(&conn, request)?
            else {
                bail!("the enclave answered out of turn");
            };
            super::crypto::write_output(
                &out,
                output.expose(),
                veritee_platform::fsutil::PRIVATE_MODE,
            )?;
            std::io::stderr()
                .write_all(log.expose())
                .context("cannot write the log")?;
            eprintln!("returned {exit_code}");
            if let Some(fork) = fork {
                eprintln!("the application asked for a fork: {fork}");
            }
        }
        AppCommand::List { conn } => {
            let AppAnswer::Apps(apps) = app(&conn, AppRequest::List)? else {
                bail!("the enclave answered out of turn");
            };
            if apps.is_empty() {
                println!("no applications");
            }
            for app in apps {
                let origin = app
                    .forked_from
                    .map(|d| format!(", forked from snapshot {}", &d[..16]))
                    .unwrap_or_default();
                let durable = if app.durable { ", durable" } else { "" };
                let keys = if app.keys.is_empty() {
                    String::new()
                } else {
                    format!(", keys {}", app.keys.join(" "))
                };
                println!(
                    "{}  module {}  {} calls  {} KiB memory  {} forks{origin}{durable}{keys}",
                    app.name,
                    &app.module_sha256[..16],
                    app.calls,
                    app.memory_bytes / 1024,
                    app.forks,
                );
            }
        }
        AppCommand::Stop { conn, name } => {
            let request = AppRequest::Stop { name: name.clone() };
            app(&conn, request)?;
            println!("application {name} stopped");
        }
        AppCommand::Fork {
            conn,
            name,
            peer,
            child,
        } => {
            let request = AppRequest::Fork {
                name: name.clone(),
                peer: peer.clone(),
                child: child.clone(),
            };
            match app(&conn, request)? {
                AppAnswer::Forked {
                    digest,
                    pages,
                    resealed,
                } => println!(
                    "forked {name} to {peer} as {child}: snapshot {digest}, {pages} pages sent, {resealed} encrypted again"
                ),
                other => bail!("the enclave answered out of turn: {other:?}"),
            }
        }
    }
    Ok(Outcome::Success)
}
