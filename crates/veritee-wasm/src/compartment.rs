//! One compartment: a wasmtime store holding exactly one instance, its own linear
//! memory, fuel, limits, and the inputs the security context lets it read.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use wasmtime::{Instance, Module, Store, Trap, TypedFunc};

use crate::engine::{FUEL_YIELD_INTERVAL, TaskEngine};
use crate::error::WasmError;
use crate::host::{HOST_FUNCTIONS, HOST_MODULE, HostState, MEMORY_EXPORT, Peer};
use crate::spec::{CompartmentResult, TaskLimits, TaskSpec};

/// Refuses a module that imports anything but the `veritee` host API.
pub(crate) fn check_imports(compartment: &str, module: &Module) -> Result<(), WasmError> {
    for import in module.imports() {
        if import.module() != HOST_MODULE || !HOST_FUNCTIONS.contains(&import.name()) {
            return Err(WasmError::ForbiddenImport {
                compartment: compartment.to_owned(),
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        }
    }
    Ok(())
}

/// An instantiated compartment, ready to run its entry point once.
pub struct Compartment {
    store: Store<HostState>,
    entry: TypedFunc<(), i32>,
    releases: bool,
    fuel: u64,
    limits: TaskLimits,
    deadline: Instant,
}

/// Why a guest's driver stopped it before it finished.
pub(crate) enum Stopped {
    Deadline,
    Withdrawn,
}

impl Compartment {
    /// Instantiates compartment `index` of `spec` from its compiled `module`, with
    /// the task's `limits` and wall-clock `deadline`; `withdrawn`, once set, stops a
    /// start function as the deadline would. The store is given handles only to the
    /// compartment's own inputs and to those of the compartments its security rule
    /// lets it read.
    pub fn new(
        engine: &TaskEngine,
        spec: &TaskSpec,
        index: usize,
        module: &Module,
        limits: &TaskLimits,
        deadline: Instant,
        withdrawn: &AtomicBool,
    ) -> Result<Self, WasmError> {
        let me = &spec.compartments[index];
        let name = me.name.clone();
        check_imports(&name, module)?;
        let peers = spec
            .compartments
            .iter()
            .map(|c| Peer {
                name: c.name.clone(),
                inputs: spec
                    .security
                    .may_read(&me.name, &c.name)
                    .then(|| c.inputs.iter().map(|i| i.source.clone()).collect()),
            })
            .collect();
        let state = HostState::new(&name, index, peers, limits, me.keys.clone(), deadline);
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let fail = |e: String| WasmError::Engine(e);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| fail(e.to_string()))?;
        store
            .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
            .map_err(|e| fail(e.to_string()))?;
        // A start function runs during instantiation: it is held to the deadline too.
        let instance: Instance = drive(
            deadline,
            withdrawn,
            engine.linker().instantiate_async(&mut store, module),
        )
        .map_err(|why| stopped(why, &name, limits))?
        .map_err(|e| {
            classify(e, &name, limits, |reason| WasmError::Instantiate {
                compartment: name.clone(),
                reason,
            })
        })?;
        let memory = instance.get_memory(&mut store, MEMORY_EXPORT);
        store.data_mut().memory = memory;
        let entry = instance
            .get_typed_func::<(), i32>(&mut store, &me.entry)
            .map_err(|_| WasmError::MissingEntry {
                compartment: name.clone(),
                entry: me.entry.clone(),
            })?;
        Ok(Compartment {
            store,
            entry,
            releases: spec.security.releases(&name),
            fuel: limits.fuel,
            limits: limits.clone(),
            deadline,
        })
    }

    /// Calls the entry point and collects the result, stopping the guest at the
    /// deadline or once `withdrawn` is set. Outputs and logs of a compartment whose
    /// output is not released are dropped here.
    pub fn run(mut self, withdrawn: &AtomicBool) -> Result<CompartmentResult, WasmError> {
        let name = self.store.data().name.clone();
        let exit_code = drive(
            self.deadline,
            withdrawn,
            self.entry.call_async(&mut self.store, ()),
        )
        .map_err(|why| stopped(why, &name, &self.limits))?
        .map_err(|e| {
            classify(e, &name, &self.limits, |reason| WasmError::Trap {
                compartment: name.clone(),
                reason,
            })
        })?;
        let fuel_used = self.fuel - self.store.get_fuel().unwrap_or(0);
        let state = self.store.into_data();
        let (output, log) = if self.releases {
            (Some(state.output), Some(state.log))
        } else {
            (None, None)
        };
        Ok(CompartmentResult {
            name,
            exit_code,
            output,
            log,
            log_truncated: self.releases && state.log_truncated,
            fuel_used,
        })
    }
}

/// Turns a wasmtime error into the engine's error: host-raised errors as they are,
/// running out of fuel as a limit error, other traps by their code only.
pub(crate) fn classify(
    err: wasmtime::Error,
    compartment: &str,
    limits: &TaskLimits,
    other: impl FnOnce(String) -> WasmError,
) -> WasmError {
    let err = match err.downcast::<WasmError>() {
        Ok(e) => return e,
        Err(err) => err,
    };
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => WasmError::OutOfFuel {
            compartment: compartment.to_owned(),
            fuel: limits.fuel,
        },
        Some(trap) => WasmError::Trap {
            compartment: compartment.to_owned(),
            reason: trap.to_string(),
        },
        None => other(format!("{err:#}")),
    }
}

/// Drives a guest's future on this thread until it completes, or gives up at
/// `deadline` or once `withdrawn` is set. The guest yields every
/// [`FUEL_YIELD_INTERVAL`] units of fuel and the host functions never wait on a
/// future, so every `Pending` is such a yield: the moment to look at the clock and the
/// flag, and poll again at once. Dropping the future abandons the guest where it
/// stands; its store is not used again.
pub(crate) fn drive<T>(
    deadline: Instant,
    withdrawn: &AtomicBool,
    future: impl Future<Output = T>,
) -> Result<T, Stopped> {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if withdrawn.load(Ordering::Relaxed) {
            return Err(Stopped::Withdrawn);
        }
        if Instant::now() >= deadline {
            return Err(Stopped::Deadline);
        }
        if let Poll::Ready(out) = future.as_mut().poll(&mut context) {
            return Ok(out);
        }
    }
}

pub(crate) fn stopped(why: Stopped, compartment: &str, limits: &TaskLimits) -> WasmError {
    let compartment = compartment.to_owned();
    match why {
        Stopped::Deadline => WasmError::Timeout {
            compartment,
            timeout: limits.timeout,
        },
        Stopped::Withdrawn => WasmError::Withdrawn { compartment },
    }
}
