//! One module per subcommand.

pub mod attest;
pub mod demo;
pub mod platform;
pub mod policy;
pub mod vendor;
pub mod verify;
