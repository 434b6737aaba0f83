//! `veritee peer add`: let another node's enclave reach this node's over `/v1/peer`.
//!
//! Enclaves authenticate each other by attestation; the host only keeps strangers off
//! the route. Each node has a peer token (DIR/peer.token, made at its first start) that
//! it presents to the nodes it replicates from; each of those must register it.

use crate::Outcome;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

/// Peer subcommands.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Register a peer node's token with a node (admin).
    ///
    /// Example: veritee peer add --node http://127.0.0.1:8440 --admin-token a/admin.token
    ///   --name node-b --token-file b/peer.token
    Add {
        /// The node that will accept the peer.
        #[arg(long)]
        node: String,
        /// File holding that node's admin token.
        #[arg(long)]
        admin_token: PathBuf,
        /// A name for the peer (1 to 64 characters of A-Z a-z 0-9 . _ -).
        #[arg(long)]
        name: String,
        /// The peer node's token file (its DIR/peer.token); only its SHA-256 is sent.
        #[arg(long)]
        token_file: PathBuf,
    },
}

/// Runs a peer subcommand.
pub fn run(cmd: PeerCommand) -> Result<Outcome> {
    match cmd {
        PeerCommand::Add {
            node,
            admin_token,
            name,
            token_file,
        } => {
            let admin = crate::files::read_text(&admin_token, "admin token")?;
            let token = crate::files::read_text(&token_file, "peer token")?;
            veritee_client::NodeClient::new(&node)?.register_peer(&admin, &name, &token)?;
            println!("{node} now accepts enclave-to-enclave traffic from peer {name}");
            Ok(Outcome::Success)
        }
    }
}
