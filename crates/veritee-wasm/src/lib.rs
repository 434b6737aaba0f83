//! Enclave-side WebAssembly task engine of veritee (flow 1 of DESIGN.md, step 5).
//!
//! A task is a list of compartments ([`TaskSpec`]): each is one WebAssembly module
//! instantiated in its own wasmtime store, with its own linear memory, fuel, memory
//! and output limits ([`TaskLimits`]), and already-decrypted inputs. The only thing a
//! module can import is the small [`host`] API; there is no WASI, no clock, no
//! file, network or environment access. The [`SecurityContext`] says which
//! compartment may read which other compartments' inputs and whose output is
//! released. [`run_task`] runs a task on the process-wide [`TaskEngine`], which caches
//! compiled modules by SHA-256, per cache scope (a node scopes them by tenant).
//! [`TaskManifest`] is the TOML file a client writes.
//!
//! [`App`] runs a module as a long-running application (flow 5) whose state, memory
//! and mutable globals, can be read out and restored; [`rewrite::prepare`] makes a
//! module fit for it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod cache;
mod compartment;
mod engine;
mod error;
pub mod host;
mod input;
pub mod keys;
pub mod manifest;
pub mod rewrite;
mod spec;

pub use app::{App, AppCounters, CallResult, FORKED_EXPORT, ForkRole, GlobalValue, WASM_PAGE};
pub use cache::CacheStats;
pub use compartment::Compartment;
pub use engine::{DEFAULT_CACHE_CAPACITY, FUEL_YIELD_INTERVAL, TaskEngine, run_task};
pub use error::WasmError;
pub use input::{FileInput, Input, InputSource};
pub use keys::{KeyOpError, KeyRequest, KeyService};
pub use manifest::{LoadedManifest, ManifestError, TaskManifest};
pub use spec::{
    Access, CompartmentResult, CompartmentSpec, DEFAULT_ENTRY, MAX_COMPARTMENTS, MAX_INPUTS,
    MAX_NAME_LEN, MAX_WASM32_MEMORY, SecurityContext, TaskLimits, TaskOutcome, TaskSpec,
};
