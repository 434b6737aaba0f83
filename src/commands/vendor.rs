//! `veritee vendor ...`: the simulated vendor.

use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use time::OffsetDateTime;
use veritee_platform::sim::{SimMachine, SimVendor};

/// Vendor subcommands.
#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Create a simulated vendor; writes its root certificate to DIR/root.pem.
    Init {
        /// Directory for the vendor's keys and state (created; must not hold a vendor).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Revoke a machine's certificate and publish a new CRL.
    Revoke {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// The machine's directory (its id is read from it)...
        #[arg(
            long,
            conflicts_with = "machine_id",
            required_unless_present = "machine_id"
        )]
        platform: Option<PathBuf>,
        /// ...or its machine id (32 hex digits).
        #[arg(long)]
        machine_id: Option<String>,
    },
    /// Publish a TCB recovery: SVN becomes the only up-to-date level.
    Tcb {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// The new up-to-date platform TCB SVN.
        #[arg(long)]
        latest_svn: u32,
    },
    /// Re-issue the CRLs and TCB information with fresh dates (they expire after 30 days).
    Publish {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Record which provider a machine was issued to (its public key, from the
    /// provider's DIR/provider/provider.pub), for the validator.
    ///
    /// Example: veritee vendor assign --dir vendor --platform node/platform
    ///   --provider $(cat node/provider/provider.pub)
    Assign {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// The machine's directory.
        #[arg(long)]
        platform: PathBuf,
        /// The provider's public key, hex.
        #[arg(long)]
        provider: String,
    },
    /// Serve the validator (POST /validate): is a machine certified by this vendor,
    /// issued to a provider, not revoked? Answers signed by the root over the asker's
    /// nonce; it reads the vendor's state at every question.
    ///
    /// Example: veritee vendor serve --dir vendor --listen 127.0.0.1:8460
    Serve {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8460")]
        listen: std::net::SocketAddr,
    },
}

/// Runs a vendor subcommand.
pub fn run(cmd: VendorCommand) -> Result<Outcome> {
    let now = OffsetDateTime::now_utc();
    match cmd {
        VendorCommand::Init { dir } => {
            let vendor = SimVendor::init(&dir, now)?;
            println!("simulated vendor created in {}", dir.display());
            println!("trust anchor: {}", vendor.root_path().display());
            println!("collateral:   {}", paths(&vendor.collateral_paths()));
        }
        VendorCommand::Revoke {
            dir,
            platform,
            machine_id,
        } => {
            let mut vendor = SimVendor::open(&dir)?;
            let id = match (platform, machine_id) {
                (Some(p), _) => SimMachine::open(&p)?.machine_id(),
                (None, Some(hex_id)) => {
                    let mut id = [0u8; 16];
                    hex::decode_to_slice(hex_id.trim(), &mut id)
                        .with_context(|| format!("--machine-id {hex_id:?} is not 32 hex digits"))?;
                    id
                }
                (None, None) => bail!("give --platform DIR or --machine-id HEX"),
            };
            let n = vendor.revoke_machine(&id, now)?;
            println!(
                "revoked {n} certificate(s) of machine {}; new CRL in {}",
                hex::encode(id),
                dir.display()
            );
        }
        VendorCommand::Tcb { dir, latest_svn } => {
            let mut vendor = SimVendor::open(&dir)?;
            let advisory = vendor.set_latest_tcb_svn(latest_svn, now)?;
            println!(
                "TCB SVN {latest_svn} is now the up-to-date level; lower levels are OutOfDate under {advisory}"
            );
        }
        VendorCommand::Assign {
            dir,
            platform,
            provider,
        } => {
            let mut vendor = SimVendor::open(&dir)?;
            let id = SimMachine::open(&platform)?.machine_id();
            vendor.assign_provider(&id, provider.trim())?;
            println!(
                "machine {} is issued to provider {}",
                hex::encode(id),
                provider.trim()
            );
        }
        VendorCommand::Serve { dir, listen } => serve(&dir, listen, |url| {
            println!("vendor validator on {url}/validate")
        })?,
        VendorCommand::Publish { dir } => {
            let mut vendor = SimVendor::open(&dir)?;
            vendor.publish(now)?;
            println!(
                "published fresh collateral: {}",
                paths(&vendor.collateral_paths())
            );
        }
    }
    Ok(Outcome::Success)
}

fn paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The validator: one route, the vendor's state read at every question so that a
/// revocation or an assignment takes effect at once.
pub(crate) fn serve(
    dir: &std::path::Path,
    listen: std::net::SocketAddr,
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    use axum::http::StatusCode;
    use veritee_import::validator::{self, ValidationQuery, ValidationStatement};
    // Opened once up front so that a bad directory fails at start, not per question.
    SimVendor::open(dir)?;
    let dir = dir.to_path_buf();
    let app = axum::Router::new()
        .route(
            "/validate",
            axum::routing::post(
                |axum::extract::State(dir): axum::extract::State<PathBuf>,
                 body: axum::body::Bytes| async move {
                    let Ok(query) = serde_json::from_slice::<ValidationQuery>(&body) else {
                        return (
                            StatusCode::BAD_REQUEST,
                            "not a validation query".to_string(),
                        );
                    };
                    let signed = SimVendor::open(&dir).and_then(|vendor| {
                        let s = vendor.standing(&query.machine_id, &query.provider);
                        let key = vendor.root_signing_key()?;
                        Ok((s, key))
                    });
                    let (standing, key) = match signed {
                        Ok(v) => v,
                        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    let statement = ValidationStatement {
                        query,
                        certified: standing.certified,
                        revoked: standing.revoked,
                        issued_to_provider: standing.issued_to_provider,
                    };
                    match validator::answer(&key, &statement) {
                        Ok(a) => (
                            StatusCode::OK,
                            serde_json::to_string(&a).unwrap_or_default(),
                        ),
                        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                },
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .with_state(dir.clone());
    crate::serve::run(app, &dir, listen, "", on_ready)
}
