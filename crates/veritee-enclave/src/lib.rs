//! The enclave side of a provider node.
//!
//! The enclave owns every secret: it terminates clients' attested sessions, keeps each
//! tenant's objects, seals everything before the host stores it (with the object's
//! tenant and name as associated data, so the host cannot move a blob between tenants
//! or names), and signs every security-relevant action into a hash-chained audit log.
//! It reaches storage only through [`host::HostLink`], one request at a time, inside the
//! conversation that needs it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod clock;
mod data;
pub mod ephemeral;
mod fork;
pub mod host;
mod import;
mod kbs;
mod keys;
pub mod launch;
pub mod memory_budget;
pub mod memory_host;
mod replication;
mod requests;
pub mod sealing_root;
mod secrets;
pub mod server;
mod service;
mod session_table;
mod sessions;
mod state;
pub mod task;
mod tenants;
mod workload;

pub use audit::{
    ANCHOR_EVERY as AUDIT_ANCHOR_EVERY, ANCHOR_EVERY_ENTRIES as AUDIT_ANCHOR_EVERY_ENTRIES,
};
pub use fork::MAX_APPS_PER_TENANT;
pub use fork::durable::IN_TRANSACTION_BYTES as DURABLE_IN_TRANSACTION_BYTES;
pub use import::crypto::MAX_CACHED_KEYS as MAX_CACHED_IMPORTED_KEYS;
pub use import::{MAX_KEYS_PER_PARTITION, MAX_PARTITIONS_PER_TENANT};
pub use kbs::{MAX_SESSIONS as MAX_KBS_SESSIONS, SESSION_LIFETIME as KBS_SESSION_LIFETIME};
pub use secrets::MAX_SECRET_LEN;
pub use service::EnclaveService;
pub use session_table::{
    DEFAULT_SESSIONS_PER_TENANT, MAX_OPEN_SESSIONS, MAX_PENDING_SESSIONS, SESSION_IDLE,
};
pub use task::MAX_WAITING_TASKS_PER_TENANT;
