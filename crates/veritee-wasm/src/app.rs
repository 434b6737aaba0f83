//! Applications (flow 5 of DESIGN.md): long-running instances that keep their state
//! between calls, and whose state can be read out and put back whole.
//!
//! An application is one module prepared by [`crate::rewrite::prepare`], instantiated
//! once in its own store, with the same confinement as a task compartment (only the
//! `veritee` host API, fuel, memory and table limits). Each call names an export of
//! type `() -> i32`; the call's input is the application's input 0 (`input_read(0, 0,
//! ...)`, `self_id` is 0) and what it writes with `output_write` and `log` is the
//! call's result. [`TaskLimits::fuel`] and [`TaskLimits::timeout`] apply per call.
//!
//! A call cut off at its deadline leaves the instance where it stood; the application
//! is stopped for good then ([`WasmError::AppStopped`]). A trap is the application's
//! own answer and leaves it running: its memory holds whatever the call wrote before.
//!
//! The state is [`App::memory`] (the exported linear memory) and [`App::globals`]
//! (every mutable global, through the exports the preparation added); tables are those
//! of the module's element segments, which the preparation guarantees. A child restores
//! it with [`App::restore`] on a fresh instance of the same prepared module.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use wasmtime::{Global, Instance, Memory, Module, Store, TypedFunc, Val, WasmParams, WasmResults};

use crate::compartment::{check_imports, classify, drive, stopped};
use crate::engine::{FUEL_YIELD_INTERVAL, TaskEngine};
use crate::error::WasmError;
use crate::host::{HostState, MEMORY_EXPORT, Peer};
use crate::rewrite::{PreparedModule, global_export};
use crate::spec::TaskLimits;

/// Size of a WebAssembly memory page.
pub const WASM_PAGE: usize = 65536;

/// The value of a mutable global, as bits (floats keep their exact bit pattern). Part
/// of an application's state: `Debug` shows its type only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GlobalValue {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, by its bits.
    F32(u32),
    /// An `f64`, by its bits.
    F64(u64),
    /// A `v128`.
    V128(u128),
}

impl core::fmt::Debug for GlobalValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GlobalValue::I32(_) => "I32(..)",
            GlobalValue::I64(_) => "I64(..)",
            GlobalValue::F32(_) => "F32(..)",
            GlobalValue::F64(_) => "F64(..)",
            GlobalValue::V128(_) => "V128(..)",
        })
    }
}

impl Drop for CallResult {
    /// Output and log are the tenant's: wiped unless taken.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.output);
        zeroize::Zeroize::zeroize(&mut self.log);
    }
}

impl core::fmt::Debug for CallResult {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallResult")
            .field("exit_code", &self.exit_code)
            .field("output", &self.output.len())
            .field("log", &self.log.len())
            .field("fuel_used", &self.fuel_used)
            .finish_non_exhaustive()
    }
}

impl GlobalValue {
    fn from_val(v: &Val) -> Option<Self> {
        Some(match v {
            Val::I32(x) => GlobalValue::I32(*x),
            Val::I64(x) => GlobalValue::I64(*x),
            Val::F32(x) => GlobalValue::F32(*x),
            Val::F64(x) => GlobalValue::F64(*x),
            Val::V128(x) => GlobalValue::V128(x.as_u128()),
            _ => return None,
        })
    }

    fn to_val(self) -> Val {
        match self {
            GlobalValue::I32(x) => Val::I32(x),
            GlobalValue::I64(x) => Val::I64(x),
            GlobalValue::F32(x) => Val::F32(x),
            GlobalValue::F64(x) => Val::F64(x),
            GlobalValue::V128(x) => Val::V128(x.into()),
        }
    }
}

/// What one call returned. `Debug` shows sizes, never the output or log.
pub struct CallResult {
    /// The export's return value.
    pub exit_code: i32,
    /// What the call wrote with `output_write`.
    pub output: Vec<u8>,
    /// What the call wrote with `log`.
    pub log: Vec<u8>,
    /// Whether the log was cut at [`TaskLimits::log_bytes`].
    pub log_truncated: bool,
    /// Fuel the call burnt.
    pub fuel_used: u64,
}

/// The export a fork calls on each side, if the application has it.
pub const FORKED_EXPORT: &str = "forked";

/// Which side of a fork an application is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ForkRole {
    /// The instance that was forked.
    Parent = 0,
    /// The new instance.
    Child = 1,
}

/// What a call returns, as the exit code of [`CallResult`].
struct ExitCode(i32);

impl From<i32> for ExitCode {
    fn from(code: i32) -> Self {
        ExitCode(code)
    }
}

impl From<()> for ExitCode {
    fn from((): ()) -> Self {
        ExitCode(0)
    }
}

/// The runtime's counters of an application, carried by its snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Calls that ran to their end (returned or trapped).
    pub calls: u64,
    /// Fuel those calls burnt.
    pub fuel_used: u64,
}

/// A running application.
pub struct App {
    name: String,
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    globals: Vec<(u32, Global)>,
    limits: TaskLimits,
    counters: AppCounters,
    stopped: bool,
}

impl core::fmt::Debug for App {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Compiles `prepared` and instantiates it as application `name` (its start
    /// function, if any, runs now, held to `limits` as a call is).
    pub fn start(
        engine: &TaskEngine,
        name: &str,
        prepared: &PreparedModule,
        limits: &TaskLimits,
    ) -> Result<App, WasmError> {
        Self::start_in_cache_scope(engine, &[], name, prepared, limits)
    }

    /// [`App::start`], reusing only modules compiled in the same cache `scope` (a
    /// tenant's id): whether a module comes from the cache then says nothing about
    /// what another tenant runs.
    pub fn start_in_cache_scope(
        engine: &TaskEngine,
        scope: &[u8],
        name: &str,
        prepared: &PreparedModule,
        limits: &TaskLimits,
    ) -> Result<App, WasmError> {
        let module = engine.compile_in_cache_scope(scope, name, &prepared.bytes)?;
        Self::instantiate(engine, name, &module, prepared, limits)
    }

    fn instantiate(
        engine: &TaskEngine,
        name: &str,
        module: &Module,
        prepared: &PreparedModule,
        limits: &TaskLimits,
    ) -> Result<App, WasmError> {
        check_imports(name, module)?;
        let peers = vec![Peer {
            name: name.to_owned(),
            inputs: Some(Vec::new()),
        }];
        let state = HostState::new(
            name,
            0,
            peers,
            limits,
            None,
            Instant::now() + limits.timeout,
        );
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let fail = |e: wasmtime::Error| WasmError::Engine(e.to_string());
        store.set_fuel(limits.fuel).map_err(fail)?;
        store
            .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
            .map_err(fail)?;
        let deadline = store.data().deadline;
        let instance = drive(
            deadline,
            &AtomicBool::new(false),
            engine.linker().instantiate_async(&mut store, module),
        )
        .map_err(|why| stopped(why, name, limits))?
        .map_err(|e| {
            classify(e, name, limits, |reason| WasmError::Instantiate {
                compartment: name.to_owned(),
                reason,
            })
        })?;
        let not_snapshottable = |reason: String| WasmError::NotSnapshottable {
            compartment: name.to_owned(),
            reason,
        };
        let memory = instance
            .get_memory(&mut store, MEMORY_EXPORT)
            .ok_or_else(|| {
                not_snapshottable(format!("it exports no memory named `{MEMORY_EXPORT}`"))
            })?;
        store.data_mut().memory = Some(memory);
        let mut globals = Vec::with_capacity(prepared.mutable_globals.len());
        for &index in &prepared.mutable_globals {
            let global = instance
                .get_global(&mut store, &global_export(index))
                .ok_or_else(|| not_snapshottable(format!("global {index} is not exported")))?;
            globals.push((index, global));
        }
        Ok(App {
            name: name.to_owned(),
            store,
            instance,
            memory,
            globals,
            limits: limits.clone(),
            counters: AppCounters::default(),
            stopped: false,
        })
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &TaskLimits {
        &self.limits
    }

    /// Calls served and fuel burnt so far.
    pub fn counters(&self) -> AppCounters {
        self.counters
    }

    /// Gives the application `keys` to use through `key_op` (or none), from its next
    /// call on.
    pub fn grant_keys(&mut self, keys: Option<Arc<dyn crate::keys::KeyService>>) {
        self.store.data_mut().keys = keys;
    }

    /// Lets the application ask for its own fork (host function `fork`), or not.
    pub fn allow_fork(&mut self, allowed: bool) {
        self.store.data_mut().fork_allowed = allowed;
    }

    /// Whether the application asked for a fork during its last call; clears it.
    pub fn take_fork_request(&mut self) -> bool {
        std::mem::take(&mut self.store.data_mut().fork_requested)
    }

    /// Calls export `export` (`() -> i32`) with `input` as input 0.
    pub fn call(&mut self, export: &str, input: &[u8]) -> Result<CallResult, WasmError> {
        self.check_running()?;
        let func = self
            .instance
            .get_typed_func::<(), i32>(&mut self.store, export)
            .map_err(|_| WasmError::MissingEntry {
                compartment: self.name.clone(),
                entry: export.to_owned(),
            })?;
        self.invoke(func, (), input, true)
    }

    /// Tells the application which side of a fork it is on, by calling its export
    /// [`FORKED_EXPORT`] (`(role: i32) -> ()`, [`ForkRole`] as its argument) if it has
    /// one, as a call without input; `None` when it has none.
    pub fn notify_forked(&mut self, role: ForkRole) -> Result<Option<CallResult>, WasmError> {
        self.check_running()?;
        let Ok(func) = self
            .instance
            .get_typed_func::<i32, ()>(&mut self.store, FORKED_EXPORT)
        else {
            return Ok(None);
        };
        self.invoke(func, role as i32, &[], false).map(Some)
    }

    /// Whether a call was cut off mid-way: the instance is not run again.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn check_running(&self) -> Result<(), WasmError> {
        if self.stopped {
            return Err(WasmError::AppStopped {
                compartment: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Runs `func` with `params` under the per-call limits, `input` as input 0;
    /// `served` counts it among the calls served (its fuel is counted in any case).
    fn invoke<P: WasmParams + Sync, R: WasmResults + Sync + Into<ExitCode>>(
        &mut self,
        func: TypedFunc<P, R>,
        params: P,
        input: &[u8],
        served: bool,
    ) -> Result<CallResult, WasmError> {
        let name = self.name.clone();
        let deadline = Instant::now() + self.limits.timeout;
        {
            let state = self.store.data_mut();
            let input = veritee_crypto::SecretBytes::copy_from(input);
            state.peers[0].inputs = Some(vec![Arc::new(input) as Arc<_>]);
            state.output.clear();
            state.log.clear();
            state.log_truncated = false;
            state.deadline = deadline;
            state.fork_requested = false;
        }
        let fail = |e: wasmtime::Error| WasmError::Engine(e.to_string());
        self.store.set_fuel(self.limits.fuel).map_err(fail)?;
        let limits = &self.limits;
        let outcome = drive(
            deadline,
            &AtomicBool::new(false),
            func.call_async(&mut self.store, params),
        );
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(why) => {
                self.stopped = true;
                return Err(stopped(why, &name, limits));
            }
        };
        let fuel_used = self.limits.fuel - self.store.get_fuel().unwrap_or(0);
        self.counters.calls += u64::from(served);
        self.counters.fuel_used = self.counters.fuel_used.saturating_add(fuel_used);
        let ExitCode(exit_code) = outcome
            .map_err(|e| {
                classify(e, &name, limits, |reason| WasmError::Trap {
                    compartment: name.clone(),
                    reason,
                })
            })?
            .into();
        let state = self.store.data_mut();
        state.peers[0].inputs = Some(Vec::new());
        Ok(CallResult {
            exit_code,
            output: std::mem::take(&mut state.output),
            log: std::mem::take(&mut state.log),
            log_truncated: state.log_truncated,
            fuel_used,
        })
    }

    /// The linear memory as it stands.
    pub fn memory(&self) -> &[u8] {
        self.memory.data(&self.store)
    }

    /// Every mutable global, by index, ascending.
    pub fn globals(&mut self) -> Vec<(u32, GlobalValue)> {
        let mut out = Vec::with_capacity(self.globals.len());
        for (index, global) in &self.globals {
            // Preparation refused reference-typed mutable globals: every value is numeric.
            if let Some(value) = GlobalValue::from_val(&global.get(&mut self.store)) {
                out.push((*index, value));
            }
        }
        out
    }

    /// The linear memory, to restore a snapshot's pages into (after
    /// [`App::restore`] sized it).
    pub fn memory_mut(&mut self) -> &mut [u8] {
        self.memory.data_mut(&mut self.store)
    }

    /// Gets this freshly started instance ready for a snapshot's state: grows memory
    /// to `memory_len` bytes and sets every mutable global. `globals` must name exactly
    /// the module's mutable globals, with their types. The memory's contents are then
    /// written through [`App::memory_mut`], all of it.
    pub fn restore(
        &mut self,
        memory_len: usize,
        globals: &[(u32, GlobalValue)],
        counters: AppCounters,
    ) -> Result<(), WasmError> {
        let refuse = |reason: String| WasmError::Restore {
            compartment: self.name.clone(),
            reason,
        };
        if !memory_len.is_multiple_of(WASM_PAGE) {
            return Err(refuse(format!(
                "a memory of {memory_len} bytes is not whole 64 KiB pages"
            )));
        }
        let current = self.memory.data_size(&self.store);
        if memory_len < current {
            return Err(refuse(format!(
                "the snapshot's memory ({memory_len} bytes) is smaller than the new instance's ({current})"
            )));
        }
        if globals.len() != self.globals.len()
            || globals
                .iter()
                .zip(&self.globals)
                .any(|((a, _), (b, _))| a != b)
        {
            return Err(refuse(
                "the snapshot's globals are not this module's mutable globals".to_owned(),
            ));
        }
        if memory_len > current {
            let pages = ((memory_len - current) / WASM_PAGE) as u64;
            self.memory
                .grow(&mut self.store, pages)
                .map_err(|e| refuse(format!("cannot grow memory to {memory_len} bytes: {e:#}")))?;
        }
        for ((index, value), (_, global)) in globals.iter().zip(&self.globals) {
            global
                .set(&mut self.store, value.to_val())
                .map_err(|_| refuse(format!("global {index} has another type")))?;
        }
        self.counters = counters;
        Ok(())
    }
}
