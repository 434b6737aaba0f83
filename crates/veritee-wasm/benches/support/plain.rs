//! Shared by the engine bench (`task.rs`) and the end-to-end task bench at the
//! workspace root: the word-frequency module on plain wasmtime (a minimal linker with
//! the same host functions and no checks), the generated text both feed it, and the
//! peak-RSS probes both report with.
#![allow(dead_code)]

use std::sync::Arc;
use veritee_wasm::InputSource;
use wasmtime::{Caller, Engine, Extern, Linker, Module, Store};

/// The word-frequency example module.
pub const WAT: &str = include_str!("../../../../examples/tasks/word-frequency/wordfreq.wat");

/// Deterministic English-like text: 2000-word vocabulary, mixed case, punctuation.
pub fn generated_block(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "the",
        "enclave",
        "Data",
        "owner",
        "key",
        "attestation",
        "policy",
        "result",
        "of",
        "and",
        "compartment",
        "Encrypted",
        "node",
        "client",
        "task",
        "a",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = WORDS[(x % 16) as usize];
        out.extend_from_slice(w.as_bytes());
        if x.is_multiple_of(3) {
            out.extend_from_slice(format!("{}", (x >> 8) % 125).as_bytes());
        }
        out.extend_from_slice(match (x >> 32) % 10 {
            0 => b". ",
            1 => b",\n",
            _ => b" ",
        });
    }
    out.truncate(len);
    out
}

pub struct Plain {
    engine: Engine,
    fuel: bool,
    module: Module,
    linker: Linker<PlainState>,
}

pub struct PlainState {
    input: Arc<dyn InputSource>,
    output: Vec<u8>,
}

fn mem(caller: &mut Caller<'_, PlainState>) -> wasmtime::Memory {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => panic!("no memory"),
    }
}

impl Plain {
    pub fn new() -> Plain {
        Plain::with_config(&wasmtime::Config::new(), false)
    }

    /// Plain wasmtime with one of the engine's instrumentation options turned on,
    /// to attribute the overhead.
    pub fn with_config(config: &wasmtime::Config, fuel: bool) -> Plain {
        let engine = Engine::new(config).unwrap();
        let module = Module::new(&engine, WAT).unwrap();
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("veritee", "self_id", || 0i32)
            .unwrap()
            .func_wrap("veritee", "compartment_id", |_: i32, _: i32| -1i32)
            .unwrap()
            .func_wrap("veritee", "input_count", |_: i32| 1i32)
            .unwrap()
            .func_wrap(
                "veritee",
                "input_len",
                |c: Caller<'_, PlainState>, _: i32, _: i32| c.data().input.len() as i64,
            )
            .unwrap()
            .func_wrap(
                "veritee",
                "input_read",
                |mut c: Caller<'_, PlainState>, _: i32, _: i32, off: i64, ptr: i32, len: i32| {
                    let m = mem(&mut c);
                    let (data, state) = m.data_and_store_mut(&mut c);
                    let buf = &mut data[ptr as usize..ptr as usize + len as usize];
                    state.input.read_at(off as u64, buf).unwrap() as i32
                },
            )
            .unwrap()
            .func_wrap(
                "veritee",
                "output_write",
                |mut c: Caller<'_, PlainState>, ptr: i32, len: i32| {
                    let m = mem(&mut c);
                    let (data, state) = m.data_and_store_mut(&mut c);
                    state
                        .output
                        .extend_from_slice(&data[ptr as usize..ptr as usize + len as usize]);
                    0i32
                },
            )
            .unwrap()
            .func_wrap("veritee", "log", |_: i32, _: i32| {})
            .unwrap();
        Plain {
            engine,
            fuel,
            module,
            linker,
        }
    }

    pub fn run(&self, input: &Arc<dyn InputSource>) -> Vec<u8> {
        let mut store = Store::new(
            &self.engine,
            PlainState {
                input: input.clone(),
                output: Vec::new(),
            },
        );
        if self.fuel {
            store.set_fuel(u64::MAX / 2).unwrap();
        }
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.linker.instantiate(&mut store, &self.module).unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), 0);
        store.into_data().output
    }
}

/// Resets the peak RSS of process `pid` ("self" for this one) to its current RSS.
pub fn reset_peak_rss(pid: &str) {
    // "5" resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The peak RSS (VmHWM) of process `pid` since the last reset, in MiB.
pub fn peak_rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
