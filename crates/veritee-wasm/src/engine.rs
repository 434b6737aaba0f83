//! The per-process engine: one wasmtime [`Engine`] configured for confinement, the
//! host API linker and the compiled-module cache.

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use wasmtime::{Config, Engine, Linker, Module};

use crate::cache::{CacheStats, ModuleCache};
use crate::compartment::Compartment;
use crate::error::WasmError;
use crate::host::{self, HostState};
use crate::spec::{TaskLimits, TaskOutcome, TaskSpec};

/// Fuel a guest burns between two looks at the wall clock. The guest yields to the
/// compartment's driver this often, which checks the task's deadline: a few
/// milliseconds of guest code at most, so timeouts are enforced to about that precision
/// while costing nothing measurable.
pub const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// Compiled modules kept by [`TaskEngine::global`].
pub const DEFAULT_CACHE_CAPACITY: usize = 64;

/// Runs tasks. Create one per process ([`TaskEngine::global`]) and share it: it is
/// `Send + Sync` and tasks may run on several threads at once.
pub struct TaskEngine {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<ModuleCache>,
}

impl TaskEngine {
    /// An engine with a module cache of `cache_capacity` entries (0 disables it).
    ///
    /// Configuration: fuel metering on, and a guest run as a future that yields every
    /// [`FUEL_YIELD_INTERVAL`] units of fuel to a driver that enforces the wall-clock
    /// deadline (the same fuel check serves both limits: epoch interruption would
    /// add a second check to every loop); no WASI and no imports but the `veritee` host
    /// API; no shared-memory threads (the wasmtime `threads` feature is not compiled
    /// in); wasm backtraces off, so errors never carry names from a module's name
    /// section.
    pub fn new(cache_capacity: usize) -> Result<Self, WasmError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            // no frames: backtraces would carry names from the module's name section
            .wasm_backtrace_max_frames(None);
        let engine = Engine::new(&config).map_err(|e| WasmError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| WasmError::Engine(e.to_string()))?;

        Ok(TaskEngine {
            engine,
            linker,
            cache: Mutex::new(ModuleCache::new(cache_capacity)),
        })
    }

    /// The process-wide engine, created on first use with
    /// [`DEFAULT_CACHE_CAPACITY`].
    pub fn global() -> Result<&'static TaskEngine, WasmError> {
        static GLOBAL: OnceLock<Result<TaskEngine, String>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| TaskEngine::new(DEFAULT_CACHE_CAPACITY).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| WasmError::Engine(e.clone()))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Counters of the compiled-module cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.lock().map(|c| c.stats()).unwrap_or_default()
    }

    /// Compiles a module (WebAssembly binary if it starts with `\0asm`, WAT text
    /// otherwise), or returns it from the cache of modules compiled without a cache
    /// scope (see [`TaskEngine::compile_in_cache_scope`]).
    pub fn compile(&self, compartment: &str, bytes: &[u8]) -> Result<Module, WasmError> {
        self.compile_in_cache_scope(&[], compartment, bytes)
    }

    /// [`TaskEngine::compile`], reusing only modules compiled in the same `scope` (a
    /// tenant's id, say): the cache is keyed by the SHA-256 of scope and bytes, so
    /// whether a module compiles or comes from the cache tells nothing about what was
    /// run in another scope.
    pub fn compile_in_cache_scope(
        &self,
        scope: &[u8],
        compartment: &str,
        bytes: &[u8],
    ) -> Result<Module, WasmError> {
        let key = veritee_crypto::memo::digest_of("veritee compiled module v1", &[scope, bytes]);
        if let Some(m) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(m);
        }
        let malformed = |reason: String| WasmError::MalformedModule {
            compartment: compartment.to_owned(),
            reason,
        };
        // Compiled outside the lock: another thread may compile the same module
        // meanwhile, which costs time but is harmless.
        let module = if bytes.starts_with(b"\0asm") {
            Module::from_binary(&self.engine, bytes).map_err(|e| malformed(format!("{e:#}")))?
        } else {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                malformed(
                    "neither a WebAssembly binary (no \\0asm magic) nor WAT text (not UTF-8)"
                        .into(),
                )
            })?;
            Module::new(&self.engine, text).map_err(|e| malformed(format!("{e:#}")))?
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, module.clone());
        }
        Ok(module)
    }

    /// Runs a task: validates it, compiles every module (so a malformed or
    /// forbidden module fails before any code runs), then runs the compartments one
    /// after the other in task order, each in its own store. The first compartment
    /// that traps or exceeds a limit ends the task with that error; a non-zero exit
    /// code does not (it is part of the result).
    ///
    /// Peak memory: the inputs as the caller holds them (zero extra for a streaming
    /// [`InputSource`](crate::InputSource)), plus one compartment's linear memory
    /// (at most [`TaskLimits::memory_bytes`]), plus the outputs kept so far (at most
    /// [`TaskLimits::output_bytes`] + [`TaskLimits::log_bytes`] per releasing
    /// compartment), plus compiled code. Inputs are never copied whole.
    pub fn run(&self, spec: &TaskSpec, limits: &TaskLimits) -> Result<TaskOutcome, WasmError> {
        self.run_withdrawable(spec, limits, &AtomicBool::new(false))
    }

    /// [`TaskEngine::run`], stopping the running compartment with
    /// [`WasmError::Withdrawn`] once `withdrawn` is set (checked where the deadline
    /// is: every [`FUEL_YIELD_INTERVAL`] units of fuel).
    pub fn run_withdrawable(
        &self,
        spec: &TaskSpec,
        limits: &TaskLimits,
        withdrawn: &AtomicBool,
    ) -> Result<TaskOutcome, WasmError> {
        self.run_in_cache_scope(spec, limits, withdrawn, &[])
    }

    /// [`TaskEngine::run_withdrawable`], its modules compiled and cached in
    /// `cache_scope` (see [`TaskEngine::compile_in_cache_scope`]).
    pub fn run_in_cache_scope(
        &self,
        spec: &TaskSpec,
        limits: &TaskLimits,
        withdrawn: &AtomicBool,
        cache_scope: &[u8],
    ) -> Result<TaskOutcome, WasmError> {
        spec.validate()?;
        limits.validate()?;
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let modules = spec
            .compartments
            .iter()
            .map(|c| {
                let m = self.compile_in_cache_scope(cache_scope, &c.name, &c.module)?;
                crate::compartment::check_imports(&c.name, &m)?;
                Ok(m)
            })
            .collect::<Result<Vec<_>, WasmError>>()?;
        let mut results = Vec::with_capacity(spec.compartments.len());
        for (index, module) in modules.iter().enumerate() {
            let compartment =
                Compartment::new(self, spec, index, module, limits, deadline, withdrawn)?;
            results.push(compartment.run(withdrawn)?);
        }
        Ok(TaskOutcome {
            compartments: results,
            elapsed: started.elapsed(),
        })
    }
}

/// Runs `spec` on the process-wide [`TaskEngine`]. See [`TaskEngine::run`].
pub fn run_task(spec: &TaskSpec, limits: &TaskLimits) -> Result<TaskOutcome, WasmError> {
    TaskEngine::global()?.run(spec, limits)
}
