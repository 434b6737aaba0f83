//! Wire formats of the provider node.
//!
//! Two boundaries cross the untrusted host, and both are defined here, in a crate that
//! holds no secret types so the host can depend on it:
//! - [`frame`] and [`ipc`]: the versioned request/response interface between the host
//!   process and the enclave process (a local socket);
//! - [`api`]: the JSON bodies of the HTTP API.
//!
//! Everything a client sends *for* the enclave travels inside these as opaque,
//! end-to-end encrypted bytes ([`api::SessionMessage`]); the host relays it unread.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod cbor;
pub mod frame;
pub mod ipc;
pub mod names;
pub mod workload;
