//! The `veritee` host API: the only imports a task module may have.
//!
//! All functions live in the import module `"veritee"`. Pointers and lengths are
//! `i32` values read as unsigned 32-bit numbers; every buffer is checked against the
//! exported memory `memory` before use, and a bad one stops the compartment with
//! [`WasmError::OutOfBounds`]. Compartments are addressed by id: their position in
//! the task, from 0. Inputs are addressed by their position in their compartment.
//!
//! | import | type | meaning |
//! |---|---|---|
//! | `self_id` | `() -> i32` | id of the calling compartment |
//! | `compartment_id` | `(name_ptr: i32, name_len: i32) -> i32` | id of the compartment with that name, or -1 |
//! | `input_count` | `(compartment: i32) -> i32` | number of inputs of that compartment |
//! | `input_len` | `(compartment: i32, index: i32) -> i64` | length in bytes of that input |
//! | `input_read` | `(compartment: i32, index: i32, offset: i64, ptr: i32, len: i32) -> i32` | copies up to `len` bytes of the input from `offset` into memory at `ptr`; returns the count copied, 0 at the end |
//! | `output_write` | `(ptr: i32, len: i32) -> i32` | appends `len` bytes at `ptr` to the compartment's output; returns 0 |
//! | `log` | `(ptr: i32, len: i32)` | appends debug text and a newline to the compartment's log |
//! | `key_op` | `(key_index: i32, op_ptr: i32, op_len: i32, out_ptr: i32, out_cap: i32) -> i32` | performs the request at `op_ptr` with stored key `key_index` (its position in the compartment's `keys`); see below |
//! | `fork` | `() -> i32` | an application asks to be forked at the end of this call: 0 if noted, -1 if it may not (a task, or an application its tenant gave no fork target) |
//!
//! `key_op` requests are one operation byte and its fields, laid out in [`crate::keys`]:
//! 1 encrypt, 2 decrypt, 3 sign, 4 verify, 5 hmac, 6 translate. The answer (a ciphertext envelope
//! the key's owner can open with `veritee crypto decrypt`, a plaintext, a signature,
//! a verdict, a tag) is written at `out_ptr`, and its length returned. When it is
//! longer than `out_cap`, nothing is written and its length is returned all the same:
//! a result above `out_cap` means "call again with this much room" (the operation is
//! made again then, so an encryption or signature differs from the first). A refused
//! operation returns a negative code, and its reason goes to the compartment's log:
//!
//! | code | meaning |
//! |---|---|
//! | -1 | no key at `key_index`, or at a translation's `to_key` (the compartment was granted fewer) |
//! | -2 | the request is malformed |
//! | -3 | the key's metadata do not allow this operation, or the key was disabled while the task ran |
//! | -4 | the operation failed: wrong key type, a ciphertext that does not open under the key and AAD, an unknown or retired key version |
//!
//! The key material never enters the compartment's memory: the node holds the keys and
//! answers through a [`KeyService`]. Each call looks at the task's deadline first, so
//! a guest calling it in a loop is stopped on time.
//!
//! `input_count`, `input_len` and `input_read` on another compartment's id stop the
//! task with "compartment X may not read compartment Y's data" unless the security
//! context lets the caller read it. Output beyond [`TaskLimits::output_bytes`] stops
//! the task; log text beyond [`TaskLimits::log_bytes`] is dropped and flagged. The
//! log never goes to the host in the clear: it is part of the compartment's result.
//!
//! [`TaskLimits::output_bytes`]: crate::TaskLimits::output_bytes
//! [`TaskLimits::log_bytes`]: crate::TaskLimits::log_bytes

use std::ops::Range;
use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker, Memory, ResourceLimiter};

use crate::error::WasmError;
use crate::input::InputSource;
use crate::keys::{KeyOpError, KeyRequest, KeyService};

/// Name of the import module of the host API.
pub const HOST_MODULE: &str = "veritee";

/// Names of the host API functions, all in [`HOST_MODULE`].
pub const HOST_FUNCTIONS: [&str; 9] = [
    "self_id",
    "compartment_id",
    "input_count",
    "input_len",
    "input_read",
    "output_write",
    "log",
    "key_op",
    "fork",
];

/// Name of the memory a module must export to use the pointer-taking functions.
pub const MEMORY_EXPORT: &str = "memory";

/// Largest byte count one `input_read` copies (the result must fit an `i32`).
const MAX_READ: usize = i32::MAX as usize;

/// What another compartment looks like from inside one compartment.
pub(crate) struct Peer {
    pub(crate) name: String,
    /// `None` when the security context denies reading this compartment's inputs:
    /// the store then holds no handle to them at all.
    pub(crate) inputs: Option<Vec<Arc<dyn InputSource>>>,
}

/// The data of one compartment's store.
pub(crate) struct HostState {
    pub(crate) name: String,
    pub(crate) self_id: usize,
    pub(crate) peers: Vec<Peer>,
    pub(crate) output: Vec<u8>,
    pub(crate) output_cap: usize,
    pub(crate) log: Vec<u8>,
    pub(crate) log_cap: usize,
    pub(crate) log_truncated: bool,
    pub(crate) limiter: Limiter,
    /// The exported memory, once instantiation is done (looked up on demand before).
    pub(crate) memory: Option<Memory>,
    /// The stored keys this compartment was granted, if any.
    pub(crate) keys: Option<Arc<dyn KeyService>>,
    /// The task's wall-clock deadline and timeout: `key_op` checks it itself.
    pub(crate) deadline: std::time::Instant,
    pub(crate) timeout: std::time::Duration,
    /// Whether `fork` may be asked (applications with a fork target only), and whether
    /// it was during the current call.
    pub(crate) fork_allowed: bool,
    pub(crate) fork_requested: bool,
}

impl HostState {
    /// The store data of compartment `name` (id `self_id`), seeing `peers`, held to
    /// `limits`, with `keys` granted and its wall-clock `deadline`.
    pub(crate) fn new(
        name: &str,
        self_id: usize,
        peers: Vec<Peer>,
        limits: &crate::spec::TaskLimits,
        keys: Option<Arc<dyn KeyService>>,
        deadline: std::time::Instant,
    ) -> Self {
        HostState {
            name: name.to_owned(),
            self_id,
            peers,
            output: Vec::new(),
            output_cap: limits.output_bytes,
            log: Vec::new(),
            log_cap: limits.log_bytes,
            log_truncated: false,
            limiter: Limiter {
                name: name.to_owned(),
                memory_bytes: limits.memory_bytes,
                table_elements: limits.table_elements,
            },
            memory: None,
            keys,
            deadline,
            timeout: limits.timeout,
            fork_allowed: false,
            fork_requested: false,
        }
    }

    /// Appends `text` and a newline to the log, as far as its room goes.
    fn append_log(&mut self, text: &[u8]) {
        let room = self.log_cap.saturating_sub(self.log.len());
        if text.len() < room {
            self.log.extend_from_slice(text);
            self.log.push(b'\n');
        } else {
            self.log.extend_from_slice(&text[..room]);
            self.log_truncated = true;
        }
    }
}

/// Memory, table and instance limits of one compartment, with errors that say which
/// limit was hit (wasmtime's `StoreLimits` only reports a generic growth failure).
pub(crate) struct Limiter {
    pub(crate) name: String,
    pub(crate) memory_bytes: u64,
    pub(crate) table_elements: u64,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            return Err(wasmtime::Error::new(WasmError::MemoryLimit {
                compartment: self.name.clone(),
                limit: self.memory_bytes,
                requested: desired as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            return Err(wasmtime::Error::new(WasmError::ResourceLimit {
                compartment: self.name.clone(),
                what: format!(
                    "table of {desired} elements requested, the limit is {}",
                    self.table_elements
                ),
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

fn trap(e: WasmError) -> wasmtime::Error {
    wasmtime::Error::new(e)
}

fn bad_argument(state: &HostState, function: &'static str, reason: String) -> wasmtime::Error {
    trap(WasmError::BadArgument {
        compartment: state.name.clone(),
        function,
        reason,
    })
}

fn memory(caller: &mut Caller<'_, HostState>, function: &'static str) -> wasmtime::Result<Memory> {
    if let Some(m) = caller.data().memory {
        return Ok(m);
    }
    match caller.get_export(MEMORY_EXPORT) {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(bad_argument(
            caller.data(),
            function,
            format!("the module exports no linear memory named `{MEMORY_EXPORT}`"),
        )),
    }
}

/// The byte range `[ptr, ptr + len)` if it lies inside a memory of `size` bytes.
fn checked_range(
    state: &HostState,
    function: &'static str,
    ptr: i32,
    len: i32,
    size: usize,
) -> wasmtime::Result<Range<usize>> {
    let (p, l) = (ptr as u32, len as u32);
    let start = p as usize;
    let end = start + l as usize; // cannot overflow: both are below 2^32 on a 64-bit host
    if end > size {
        return Err(trap(WasmError::OutOfBounds {
            compartment: state.name.clone(),
            function,
            ptr: p,
            len: l,
            memory_size: size,
        }));
    }
    Ok(start..end)
}

/// The inputs of compartment `id`, if the caller may read them.
fn readable_inputs<'a>(
    state: &'a HostState,
    function: &'static str,
    id: i32,
) -> wasmtime::Result<&'a [Arc<dyn InputSource>]> {
    let peer = usize::try_from(id)
        .ok()
        .and_then(|i| state.peers.get(i))
        .ok_or_else(|| {
            bad_argument(
                state,
                function,
                format!(
                    "there is no compartment with id {id} (the task has {})",
                    state.peers.len()
                ),
            )
        })?;
    match &peer.inputs {
        Some(inputs) => Ok(inputs),
        None => Err(trap(WasmError::AccessDenied {
            compartment: state.name.clone(),
            target: peer.name.clone(),
        })),
    }
}

fn input_source(
    state: &HostState,
    function: &'static str,
    id: i32,
    index: i32,
) -> wasmtime::Result<Arc<dyn InputSource>> {
    let inputs = readable_inputs(state, function, id)?;
    usize::try_from(index)
        .ok()
        .and_then(|i| inputs.get(i))
        .cloned()
        .ok_or_else(|| {
            bad_argument(
                state,
                function,
                format!(
                    "compartment {} has no input {index} (it has {})",
                    state.peers[id as usize].name,
                    inputs.len()
                ),
            )
        })
}

/// Registers the host API in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(HOST_MODULE, "self_id", |caller: Caller<'_, HostState>| {
        caller.data().self_id as i32
    })?;

    linker.func_wrap(HOST_MODULE, "fork", |mut caller: Caller<'_, HostState>| {
        let state = caller.data_mut();
        if !state.fork_allowed {
            return -1;
        }
        state.fork_requested = true;
        0
    })?;

    linker.func_wrap(
        HOST_MODULE,
        "compartment_id",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let mem = memory(&mut caller, "compartment_id")?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let range = checked_range(state, "compartment_id", ptr, len, data.len())?;
            let name = &data[range];
            Ok(state
                .peers
                .iter()
                .position(|p| p.name.as_bytes() == name)
                .map_or(-1, |i| i as i32))
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "input_count",
        |caller: Caller<'_, HostState>, id: i32| -> wasmtime::Result<i32> {
            Ok(readable_inputs(caller.data(), "input_count", id)?.len() as i32)
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "input_len",
        |caller: Caller<'_, HostState>, id: i32, index: i32| -> wasmtime::Result<i64> {
            let src = input_source(caller.data(), "input_len", id, index)?;
            Ok(i64::try_from(src.len()).unwrap_or(i64::MAX))
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "input_read",
        |mut caller: Caller<'_, HostState>,
         id: i32,
         index: i32,
         offset: i64,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<i32> {
            const F: &str = "input_read";
            let src = input_source(caller.data(), F, id, index)?;
            let offset = u64::try_from(offset)
                .map_err(|_| bad_argument(caller.data(), F, format!("negative offset {offset}")))?;
            let mem = memory(&mut caller, F)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let mut range = checked_range(state, F, ptr, len, data.len())?;
            range.end = range.end.min(range.start + MAX_READ);
            let n = src.read_at(offset, &mut data[range]).map_err(|e| {
                trap(WasmError::Input {
                    compartment: state.name.clone(),
                    owner: state.peers[id as usize].name.clone(),
                    input: index as usize,
                    reason: e.to_string(),
                })
            })?;
            Ok(n as i32)
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "output_write",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            const F: &str = "output_write";
            let mem = memory(&mut caller, F)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let range = checked_range(state, F, ptr, len, data.len())?;
            if state.output.len() + range.len() > state.output_cap {
                return Err(trap(WasmError::OutputLimit {
                    compartment: state.name.clone(),
                    limit: state.output_cap,
                }));
            }
            state.output.extend_from_slice(&data[range]);
            Ok(0)
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "log",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            const F: &str = "log";
            let mem = memory(&mut caller, F)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let range = checked_range(state, F, ptr, len, data.len())?;
            state.append_log(&data[range]);
            Ok(())
        },
    )?;

    linker.func_wrap(
        HOST_MODULE,
        "key_op",
        |mut caller: Caller<'_, HostState>,
         key_index: i32,
         op_ptr: i32,
         op_len: i32,
         out_ptr: i32,
         out_cap: i32|
         -> wasmtime::Result<i32> {
            const F: &str = "key_op";
            let mem = memory(&mut caller, F)?;
            let (data, state) = mem.data_and_store_mut(&mut caller);
            // The deadline is otherwise looked at once per fuel interval: a guest
            // calling this in a tight loop would spend far longer than the guest code
            // it burns fuel for (a signature costs milliseconds, the call a few fuel).
            if std::time::Instant::now() >= state.deadline {
                return Err(trap(WasmError::Timeout {
                    compartment: state.name.clone(),
                    timeout: state.timeout,
                }));
            }
            let request = checked_range(state, F, op_ptr, op_len, data.len())?;
            let out = checked_range(state, F, out_ptr, out_cap, data.len())?;
            let answer = key_answer(state.keys.as_deref(), key_index, &data[request]);
            match answer {
                Ok(answer) => {
                    let answer = answer.expose();
                    if answer.len() <= out.len() {
                        data[out.start..out.start + answer.len()].copy_from_slice(answer);
                    }
                    Ok(answer.len() as i32)
                }
                Err(e) => {
                    // The guest gets the code; its author reads why in the log.
                    let line = format!("key_op: key {key_index}: {e}");
                    state.append_log(line.as_bytes());
                    Ok(e.code())
                }
            }
        },
    )?;
    Ok(())
}

/// The answer to one `key_op` request, or why there is none.
fn key_answer(
    keys: Option<&dyn KeyService>,
    key_index: i32,
    request: &[u8],
) -> Result<veritee_crypto::SecretBytes, KeyOpError> {
    let granted = keys.map_or(0, |k| k.count());
    let (Some(keys), Ok(index)) = (keys, usize::try_from(key_index)) else {
        return Err(no_key(key_index, granted));
    };
    if index >= granted {
        return Err(no_key(key_index, granted));
    }
    let request = KeyRequest::parse(request)?;
    let answer = keys.call(index, request)?;
    // The result is an i32: an answer too long for it is refused, never cut.
    if answer.expose().len() > i32::MAX as usize {
        return Err(KeyOpError::Failed(format!(
            "the answer to {} is over {} bytes",
            request.name(),
            i32::MAX
        )));
    }
    Ok(answer)
}

fn no_key(key_index: i32, granted: usize) -> KeyOpError {
    KeyOpError::NoSuchKey(format!(
        "there is no key {key_index}: the compartment was granted {granted}"
    ))
}
