//! The engine's error type.
//!
//! Messages name compartments, inputs by index, host functions, imports and limits;
//! they never contain input data, output data or guest backtraces (function names in
//! a module's name section are part of the client's confidential code), so an error
//! may be reported without revealing what the task computed.

use std::time::Duration;

/// Why a task could not be run or did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The task specification is inconsistent (names, security context, limits).
    #[error("invalid task: {0}")]
    InvalidTask(String),

    /// The wasmtime engine could not be configured.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),

    /// A compartment's module is neither valid WebAssembly nor valid WAT text.
    #[error("compartment {compartment}: module is malformed: {reason}")]
    MalformedModule {
        /// Compartment whose module failed to compile.
        compartment: String,
        /// What the parser or validator reported.
        reason: String,
    },

    /// A module imports something outside the `veritee` host API.
    #[error(
        "compartment {compartment}: module imports `{module}::{name}`, which is not provided: \
         only the `veritee` host API is available (no WASI, no other host access)"
    )]
    ForbiddenImport {
        /// Compartment whose module has the import.
        compartment: String,
        /// Import module name, e.g. `wasi_snapshot_preview1`.
        module: String,
        /// Import field name, e.g. `fd_write`.
        name: String,
    },

    /// Instantiation failed for another reason (import type mismatch, start function).
    #[error("compartment {compartment}: cannot instantiate module: {reason}")]
    Instantiate {
        /// Compartment that failed to instantiate.
        compartment: String,
        /// What wasmtime reported.
        reason: String,
    },

    /// The entry point is missing or does not have the type `() -> i32`.
    #[error("compartment {compartment}: entry point `{entry}` is missing or is not `() -> i32`")]
    MissingEntry {
        /// Compartment concerned.
        compartment: String,
        /// Entry point name looked up.
        entry: String,
    },

    /// The compartment used all its fuel (for example an infinite loop).
    #[error(
        "compartment {compartment}: ran out of fuel after {fuel} units (infinite loop or task too large for the fuel limit)"
    )]
    OutOfFuel {
        /// Compartment stopped.
        compartment: String,
        /// Fuel limit that was exhausted.
        fuel: u64,
    },

    /// The task's wall-clock timeout expired while this compartment ran.
    #[error("compartment {compartment}: stopped by the task's wall-clock timeout of {timeout:?}")]
    Timeout {
        /// Compartment running when the timeout expired.
        compartment: String,
        /// The task's timeout.
        timeout: Duration,
    },

    /// The task was withdrawn (by its client) while this compartment ran.
    #[error("compartment {compartment}: stopped: the task was withdrawn")]
    Withdrawn {
        /// Compartment running when the task was withdrawn.
        compartment: String,
    },

    /// The compartment tried to grow its linear memory past the limit.
    #[error(
        "compartment {compartment}: memory limit of {limit} bytes exceeded (module asked for {requested} bytes)"
    )]
    MemoryLimit {
        /// Compartment stopped.
        compartment: String,
        /// Memory limit in bytes.
        limit: u64,
        /// Size the module asked for, in bytes.
        requested: u64,
    },

    /// The compartment tried to grow a table past the limit, or to create more
    /// tables, memories or instances than allowed.
    #[error("compartment {compartment}: resource limit exceeded: {what}")]
    ResourceLimit {
        /// Compartment stopped.
        compartment: String,
        /// Which resource and which limit.
        what: String,
    },

    /// The compartment tried to read another compartment's data without permission.
    #[error("compartment {compartment} may not read compartment {target}'s data")]
    AccessDenied {
        /// Compartment that tried to read.
        compartment: String,
        /// Compartment whose data it tried to read.
        target: String,
    },

    /// A host call was given a buffer outside the guest's linear memory.
    #[error(
        "compartment {compartment}: veritee.{function} was given an out-of-bounds buffer \
         (ptr {ptr}, len {len}, memory size {memory_size} bytes)"
    )]
    OutOfBounds {
        /// Compartment stopped.
        compartment: String,
        /// Host function called.
        function: &'static str,
        /// Pointer passed (as an unsigned 32-bit address).
        ptr: u32,
        /// Length passed (as an unsigned 32-bit length).
        len: u32,
        /// Current size of the guest's linear memory.
        memory_size: usize,
    },

    /// A host call was given an argument that is not valid (unknown compartment or
    /// input, negative offset, no exported memory).
    #[error("compartment {compartment}: veritee.{function}: {reason}")]
    BadArgument {
        /// Compartment stopped.
        compartment: String,
        /// Host function called.
        function: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// The compartment wrote more output than the limit allows.
    #[error("compartment {compartment}: output exceeds the limit of {limit} bytes")]
    OutputLimit {
        /// Compartment stopped.
        compartment: String,
        /// Output limit in bytes.
        limit: usize,
    },

    /// An input source failed to deliver bytes.
    #[error(
        "compartment {compartment}: reading input {input} of compartment {owner} failed: {reason}"
    )]
    Input {
        /// Compartment that was reading.
        compartment: String,
        /// Compartment owning the input.
        owner: String,
        /// Index of the input within its compartment.
        input: usize,
        /// The source's error.
        reason: String,
    },

    /// The guest trapped (unreachable, division by zero, out-of-bounds access, stack
    /// overflow, ...).
    #[error("compartment {compartment}: guest trapped: {reason}")]
    Trap {
        /// Compartment stopped.
        compartment: String,
        /// The trap, without backtrace.
        reason: String,
    },

    /// A module cannot run as an application whose state is snapshotted: it changes
    /// state the snapshot does not carry (tables, dropped segments), or is malformed.
    #[error("application {compartment}: module cannot be snapshotted: {reason}")]
    NotSnapshottable {
        /// Application concerned.
        compartment: String,
        /// What in the module stands in the way.
        reason: String,
    },

    /// An earlier call was stopped mid-way (deadline, withdrawal): the instance is
    /// left where it stood and is not run again.
    #[error(
        "application {compartment}: stopped, an earlier call was cut off at its deadline; start it again"
    )]
    AppStopped {
        /// Application concerned.
        compartment: String,
    },

    /// A snapshot's state does not fit the application it is restored into.
    #[error("application {compartment}: cannot restore its state: {reason}")]
    Restore {
        /// Application concerned.
        compartment: String,
        /// What does not fit.
        reason: String,
    },
}

impl WasmError {
    /// The compartment the error concerns, if it concerns one.
    pub fn compartment(&self) -> Option<&str> {
        match self {
            WasmError::InvalidTask(_) | WasmError::Engine(_) => None,
            WasmError::MalformedModule { compartment, .. }
            | WasmError::ForbiddenImport { compartment, .. }
            | WasmError::Instantiate { compartment, .. }
            | WasmError::MissingEntry { compartment, .. }
            | WasmError::OutOfFuel { compartment, .. }
            | WasmError::Timeout { compartment, .. }
            | WasmError::Withdrawn { compartment }
            | WasmError::MemoryLimit { compartment, .. }
            | WasmError::ResourceLimit { compartment, .. }
            | WasmError::AccessDenied { compartment, .. }
            | WasmError::OutOfBounds { compartment, .. }
            | WasmError::BadArgument { compartment, .. }
            | WasmError::OutputLimit { compartment, .. }
            | WasmError::Input { compartment, .. }
            | WasmError::Trap { compartment, .. }
            | WasmError::NotSnapshottable { compartment, .. }
            | WasmError::AppStopped { compartment }
            | WasmError::Restore { compartment, .. } => Some(compartment),
        }
    }
}
