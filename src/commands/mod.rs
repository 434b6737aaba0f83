//! One module per subcommand.

pub mod app;
pub mod appraise;
pub mod attest;
pub mod audit;
pub mod children;
pub mod crypto;
pub mod data;
pub mod demo;
pub mod import;
pub mod kbs;
pub mod keys;
pub mod node;
pub mod officer;
pub mod peer;
pub mod platform;
pub mod policy;
pub mod revocation;
pub mod secret;
pub mod task;
pub mod tenant;
pub mod vendor;
pub mod verify;
pub mod workload;
