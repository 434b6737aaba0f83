//! Security behaviour of compartments, seen from outside: limits, bounds checks,
//! the security context, refused imports, malformed modules, and an engine that
//! keeps working after every failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use veritee_wasm::{
    Access, CompartmentSpec, Input, SecurityContext, TaskEngine, TaskLimits, TaskSpec, WasmError,
    run_task,
};

/// The host API imports most tests need.
const IMPORTS: &str = r#"
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "compartment_id" (func $compartment_id (param i32 i32) (result i32)))
  (import "veritee" "input_count" (func $input_count (param i32) (result i32)))
  (import "veritee" "input_len" (func $input_len (param i32 i32) (result i64)))
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "log" (func $log (param i32 i32)))
"#;

/// Copies its own input 0 to its output (in one read), exit code 7.
fn echo_module() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (call $self_id) (i32.const 0) (i64.const 0)
                                    (i32.const 0) (i32.const 65536)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 7)))"#
    )
}

fn compartment(name: &str, module: &str, inputs: Vec<Input>) -> CompartmentSpec {
    CompartmentSpec {
        name: name.into(),
        module: module.as_bytes().into(),
        inputs,
        entry: "run".into(),
        keys: None,
    }
}

fn rule(may_read: &[&str], releases: bool) -> Access {
    Access {
        may_read: may_read.iter().map(|s| s.to_string()).collect(),
        releases,
    }
}

/// A one-compartment task whose output is released.
fn single(module: &str, input: &[u8]) -> TaskSpec {
    TaskSpec {
        compartments: vec![compartment(
            "main",
            module,
            vec![Input::from_bytes("in", input)],
        )],
        security: SecurityContext {
            compartments: [("main".to_string(), rule(&[], true))].into(),
        },
    }
}

fn small_limits() -> TaskLimits {
    TaskLimits {
        fuel: 50_000_000,
        memory_bytes: 1 << 20,
        output_bytes: 1024,
        log_bytes: 64,
        timeout: Duration::from_secs(20),
        ..TaskLimits::default()
    }
}

/// Runs a good task on the process-wide engine: every failing test calls it to
/// show that the failure left the engine usable.
fn engine_still_works() {
    let out = run_task(&single(&echo_module(), b"still here"), &small_limits()).unwrap();
    let main = out.get("main").unwrap();
    assert_eq!(main.exit_code, 7);
    assert_eq!(main.output.as_deref(), Some(&b"still here"[..]));
}

/// A guest that never returns.
const LOOP_FOREVER: &str =
    r#"(module (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

/// Limits where only the clock (or a withdrawal) can stop a guest.
fn fuel_without_end(timeout: Duration) -> TaskLimits {
    TaskLimits {
        fuel: u64::MAX / 2,
        timeout,
        ..small_limits()
    }
}

fn run_err(spec: &TaskSpec, limits: &TaskLimits) -> WasmError {
    match run_task(spec, limits) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_good_task_runs_and_reports_fuel() {
    let out = run_task(&single(&echo_module(), b"hello"), &small_limits()).unwrap();
    let main = out.get("main").unwrap();
    assert_eq!(main.exit_code, 7);
    assert_eq!(main.output.as_deref(), Some(&b"hello"[..]));
    assert_eq!(main.log.as_deref(), Some(&b""[..]));
    assert!(
        main.fuel_used > 0 && main.fuel_used < 100,
        "{}",
        main.fuel_used
    );
}

#[test]
fn an_infinite_loop_is_stopped_by_fuel() {
    let m = LOOP_FOREVER;
    let started = Instant::now();
    let e = run_err(&single(m, b""), &small_limits());
    assert!(
        matches!(
            e,
            WasmError::OutOfFuel {
                fuel: 50_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "compartment main: ran out of fuel after 50000000 units (infinite loop or task too large for the fuel limit)"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    engine_still_works();
}

#[test]
fn an_infinite_loop_in_the_start_function_is_stopped_too() {
    let m = r#"(module (func $s (loop $l (br $l))) (start $s)
                 (func (export "run") (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(matches!(e, WasmError::OutOfFuel { .. }), "{e:?}");
    engine_still_works();
}

#[test]
fn the_wall_clock_timeout_holds_in_the_start_function_too() {
    let m = r#"(module (func $s (loop $l (br $l))) (start $s)
                 (func (export "run") (result i32) (i32.const 0)))"#;
    let limits = fuel_without_end(Duration::from_millis(200));
    let started = Instant::now();
    let e = run_err(&single(m, b""), &limits);
    assert!(matches!(e, WasmError::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    engine_still_works();
}

#[test]
fn a_withdrawn_task_stops_its_running_guest() {
    let m = LOOP_FOREVER;
    let limits = fuel_without_end(Duration::from_secs(300));
    let withdrawn = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setter = {
        let withdrawn = std::sync::Arc::clone(&withdrawn);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            withdrawn.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let e = veritee_wasm::TaskEngine::global()
        .unwrap()
        .run_withdrawable(&single(m, b""), &limits, &withdrawn)
        .unwrap_err();
    assert!(matches!(e, WasmError::Withdrawn { .. }), "{e:?}");
    assert!(e.to_string().contains("withdrawn"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    setter.join().unwrap();
    engine_still_works();
}

#[test]
fn the_wall_clock_timeout_stops_a_long_task() {
    let m = LOOP_FOREVER;
    let limits = fuel_without_end(Duration::from_millis(200));
    let started = Instant::now();
    let e = run_err(&single(m, b""), &limits);
    assert!(matches!(e, WasmError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("wall-clock timeout of 200ms"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    engine_still_works();
}

#[test]
fn unbounded_memory_growth_is_stopped_by_the_memory_limit() {
    let m = r#"(module (memory (export "memory") 1)
      (func (export "run") (result i32)
        (loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    match &e {
        WasmError::MemoryLimit {
            compartment,
            limit,
            requested,
        } => {
            assert_eq!(compartment, "main");
            assert_eq!(*limit, 1 << 20);
            assert_eq!(*requested, (1 << 20) + 65536);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .contains("memory limit of 1048576 bytes exceeded"),
        "{e}"
    );
    engine_still_works();
}

#[test]
fn a_module_declaring_too_much_memory_is_refused_at_instantiation() {
    let m = r#"(module (memory (export "memory") 100) (func (export "run") (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(
        matches!(
            e,
            WasmError::MemoryLimit {
                requested: 6553600,
                ..
            }
        ),
        "{e:?}"
    );
    engine_still_works();
}

#[test]
fn too_many_table_elements_are_refused() {
    let m = r#"(module (table 100000 funcref) (func (export "run") (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(matches!(e, WasmError::ResourceLimit { .. }), "{e:?}");
    assert!(e.to_string().contains("table of 100000 elements"), "{e}");
    engine_still_works();
}

fn call_module(body: &str) -> String {
    format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (func (export "run") (result i32) {body}))"#
    )
}

#[test]
fn out_of_bounds_pointers_trap_cleanly() {
    let cases = [
        // past the end of the one-page memory
        (
            "(call $input_read (call $self_id) (i32.const 0) (i64.const 0) (i32.const 65530) (i32.const 100))",
            "input_read",
            65530u32,
            100u32,
        ),
        // a "negative" length is a huge unsigned one
        (
            "(call $input_read (call $self_id) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const -1))",
            "input_read",
            0,
            u32::MAX,
        ),
        // pointer + length wrapping around 2^32
        (
            "(call $output_write (i32.const -16) (i32.const 32))",
            "output_write",
            u32::MAX - 15,
            32,
        ),
        (
            "(call $log (i32.const 70000) (i32.const 1)) (i32.const 0)",
            "log",
            70000,
            1,
        ),
        (
            "(call $compartment_id (i32.const 65535) (i32.const 2))",
            "compartment_id",
            65535,
            2,
        ),
    ];
    for (body, function, p, l) in cases {
        let e = run_err(&single(&call_module(body), b"data"), &small_limits());
        match &e {
            WasmError::OutOfBounds {
                function: f,
                ptr,
                len,
                memory_size,
                ..
            } => {
                assert_eq!(
                    (*f, *ptr, *len, *memory_size),
                    (function, p, l, 65536),
                    "{body}"
                );
            }
            other => panic!("{body}: {other:?}"),
        }
        assert!(
            e.to_string().contains(&format!(
                "veritee.{function} was given an out-of-bounds buffer"
            )),
            "{e}"
        );
    }
    engine_still_works();
}

#[test]
fn bad_arguments_trap_cleanly() {
    let cases = [
        (
            "(call $input_read (call $self_id) (i32.const 0) (i64.const -1) (i32.const 0) (i32.const 1))",
            "negative offset -1",
        ),
        (
            "(call $input_read (call $self_id) (i32.const 3) (i64.const 0) (i32.const 0) (i32.const 1))",
            "compartment main has no input 3 (it has 1)",
        ),
        (
            "(i32.wrap_i64 (call $input_len (i32.const 9) (i32.const 0)))",
            "there is no compartment with id 9 (the task has 1)",
        ),
        (
            "(call $input_count (i32.const -1))",
            "there is no compartment with id -1",
        ),
    ];
    for (body, msg) in cases {
        let e = run_err(&single(&call_module(body), b"data"), &small_limits());
        assert!(matches!(e, WasmError::BadArgument { .. }), "{body}: {e:?}");
        assert!(e.to_string().contains(msg), "{body}: {e}");
    }
    // pointer functions without an exported memory
    let m = format!(
        r#"(module {IMPORTS} (func (export "run") (result i32) (call $output_write (i32.const 0) (i32.const 0))))"#
    );
    let e = run_err(&single(&m, b""), &small_limits());
    assert!(
        e.to_string()
            .contains("exports no linear memory named `memory`"),
        "{e}"
    );
    engine_still_works();
}

/// Compartment `b` reads input 0 of compartment `a` into memory and outputs it.
fn reader_module() -> String {
    call_module(
        r#"(local $n i32)
    (local.set $n (call $input_read (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 100)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.const 0)"#,
    )
}

fn two_party(reader: &str, b_may_read_a: bool) -> TaskSpec {
    TaskSpec {
        compartments: vec![
            compartment(
                "a",
                &echo_module(),
                vec![Input::from_bytes("secret", &b"a's canary"[..])],
            ),
            compartment("b", reader, vec![]),
        ],
        security: SecurityContext {
            compartments: [
                ("a".to_string(), rule(&[], false)),
                (
                    "b".to_string(),
                    rule(if b_may_read_a { &["a"] } else { &[] }, true),
                ),
            ]
            .into(),
        },
    }
}

#[test]
fn reading_a_denied_compartments_input_is_stopped() {
    let e = run_err(&two_party(&reader_module(), false), &small_limits());
    assert!(matches!(e, WasmError::AccessDenied { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "compartment b may not read compartment a's data"
    );
    // the length and count are denied as well
    for body in [
        "(i32.wrap_i64 (call $input_len (i32.const 0) (i32.const 0)))",
        "(call $input_count (i32.const 0))",
    ] {
        let e = run_err(&two_party(&call_module(body), false), &small_limits());
        assert_eq!(
            e.to_string(),
            "compartment b may not read compartment a's data"
        );
    }
    engine_still_works();
}

#[test]
fn an_allowed_read_works_and_owners_outputs_are_dropped() {
    let out = run_task(&two_party(&reader_module(), true), &small_limits()).unwrap();
    let a = out.get("a").unwrap();
    // a echoed its input, but a does not release: output and log are dropped
    assert_eq!(
        (a.exit_code, a.output.as_ref(), a.log.as_ref()),
        (7, None, None)
    );
    let b = out.get("b").unwrap();
    assert_eq!(b.output.as_deref(), Some(&b"a's canary"[..]));
    // and the Debug form of results never shows the bytes
    assert!(!format!("{out:?}").contains("canary"));
}

#[test]
fn compartments_find_each_other_by_name() {
    let m = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (data (i32.const 0) "a")
  (data (i32.const 8) "nobody")
  (func (export "run") (result i32)
    ;; exit code = id of "a" * 10 + (id of "nobody" == -1) + 100 * self_id
    (i32.add (i32.add (i32.mul (call $compartment_id (i32.const 0) (i32.const 1)) (i32.const 10))
                      (i32.eq (call $compartment_id (i32.const 8) (i32.const 6)) (i32.const -1)))
             (i32.mul (call $self_id) (i32.const 100)))))"#
    );
    let out = run_task(&two_party(&m, false), &small_limits()).unwrap();
    assert_eq!(out.get("b").unwrap().exit_code, 101);
}

#[test]
fn output_over_the_cap_is_stopped() {
    let body = r#"(drop (call $output_write (i32.const 0) (i32.const 1000)))
                  (drop (call $output_write (i32.const 0) (i32.const 25)))
                  (i32.const 0)"#;
    let e = run_err(&single(&call_module(body), b""), &small_limits());
    assert!(
        matches!(e, WasmError::OutputLimit { limit: 1024, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "compartment main: output exceeds the limit of 1024 bytes"
    );
    // exactly at the cap is fine
    let body = r#"(drop (call $output_write (i32.const 0) (i32.const 1024))) (i32.const 0)"#;
    let out = run_task(&single(&call_module(body), b""), &small_limits()).unwrap();
    assert_eq!(
        out.get("main").unwrap().output.as_ref().unwrap().len(),
        1024
    );
    engine_still_works();
}

#[test]
fn the_log_is_capped_and_flagged() {
    let m = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (data (i32.const 0) "0123456789012345678901234567890123456789")
  (func (export "run") (result i32)
    (call $log (i32.const 0) (i32.const 10))
    (call $log (i32.const 0) (i32.const 40))
    (call $log (i32.const 0) (i32.const 40))
    (i32.const 0)))"#
    );
    let out = run_task(&single(&m, b""), &small_limits()).unwrap();
    let main = out.get("main").unwrap();
    let log = main.log.as_ref().unwrap();
    assert_eq!(log.len(), 64);
    assert!(log.starts_with(b"0123456789\n0123"));
    assert!(main.log_truncated);
}

#[test]
fn imports_outside_the_host_api_are_refused_by_name() {
    let cases = [
        (
            r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                 (func (export "run") (result i32) (i32.const 0)))"#,
            "wasi_snapshot_preview1::fd_write",
        ),
        (
            r#"(module (import "veritee" "exec" (func)) (func (export "run") (result i32) (i32.const 0)))"#,
            "veritee::exec",
        ),
        (
            r#"(module (import "env" "memory" (memory 1)) (func (export "run") (result i32) (i32.const 0)))"#,
            "env::memory",
        ),
    ];
    for (m, name) in cases {
        let e = run_err(&single(m, b""), &small_limits());
        assert!(matches!(e, WasmError::ForbiddenImport { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "compartment main: module imports `{name}`, which is not provided: only the `veritee` host API is available (no WASI, no other host access)"
            )
        );
    }
    // a host API name with the wrong type is refused at instantiation
    let m = r#"(module (import "veritee" "self_id" (func (param i32)))
                 (func (export "run") (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(matches!(e, WasmError::Instantiate { .. }), "{e:?}");
    assert!(e.to_string().contains("veritee::self_id"), "{e}");
    engine_still_works();
}

#[test]
fn malformed_modules_are_clear_errors() {
    let cases: [(&[u8], &str); 4] = [
        (b"\0asm\x01\0\0\0\xff\xff", "module is malformed"),
        (
            b"(module (func (export \"run\") (result i32) i32.const))",
            "module is malformed",
        ),
        (
            b"\xff\xfe garbage",
            "neither a WebAssembly binary (no \\0asm magic) nor WAT text (not UTF-8)",
        ),
        (b"", "module is malformed"),
    ];
    for (bytes, msg) in cases {
        let mut spec = single("(module)", b"");
        spec.compartments[0].module = bytes.into();
        let e = run_err(&spec, &small_limits());
        assert!(matches!(e, WasmError::MalformedModule { .. }), "{e:?}");
        assert!(e.to_string().contains(msg), "{e}");
        assert!(e.to_string().starts_with("compartment main: "), "{e}");
    }
    // a WAT error gives the position
    let mut spec = single("(module)", b"");
    spec.compartments[0].module = b"(module\n  (func (result i32) i32.add))".as_slice().into();
    let e = run_err(&spec, &small_limits()).to_string();
    assert!(e.contains("type mismatch") || e.contains(":2:"), "{e}");
    engine_still_works();
}

#[test]
fn binary_modules_work_like_wat() {
    // (module (func (export "run") (result i32) (i32.const 42)))
    let wasm: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
        0x03, 0x02, 0x01, 0x00, 0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00, 0x0a, 0x06,
        0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b,
    ];
    let mut spec = single("(module)", b"");
    spec.compartments[0].module = wasm.into();
    let out = run_task(&spec, &small_limits()).unwrap();
    assert_eq!(out.get("main").unwrap().exit_code, 42);
}

#[test]
fn a_missing_or_mistyped_entry_point_is_reported() {
    let m = r#"(module (func (export "main") (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert_eq!(
        e.to_string(),
        "compartment main: entry point `run` is missing or is not `() -> i32`"
    );
    let m = r#"(module (func (export "run") (param i32) (result i32) (i32.const 0)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(matches!(e, WasmError::MissingEntry { .. }), "{e:?}");
    engine_still_works();
}

#[test]
fn guest_traps_carry_no_names_from_the_module() {
    let m = r#"(module (func $very_secret_function (result i32) unreachable)
                 (func (export "run") (result i32) (call $very_secret_function)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(matches!(e, WasmError::Trap { .. }), "{e:?}");
    let s = e.to_string();
    assert!(s.contains("unreachable"), "{s}");
    assert!(!s.contains("very_secret_function"), "{s}");
    assert!(!format!("{e:?}").contains("very_secret_function"));

    let m =
        r#"(module (func $f (result i32) (call $f)) (func (export "run") (result i32) (call $f)))"#;
    let e = run_err(&single(m, b""), &small_limits());
    assert!(e.to_string().contains("call stack exhausted"), "{e}");
    engine_still_works();
}

#[test]
fn invalid_tasks_are_refused_before_running() {
    let mut spec = single(&echo_module(), b"");
    spec.security.compartments.get_mut("main").unwrap().releases = false;
    let e = run_err(&spec, &small_limits());
    assert!(e.to_string().contains("no compartment releases"), "{e}");

    let mut spec = two_party(&reader_module(), true);
    spec.compartments[1].name = "a".into();
    let e = run_err(&spec, &small_limits());
    assert!(e.to_string().contains("used twice"), "{e}");

    let limits = TaskLimits {
        memory_bytes: 5 << 30,
        ..small_limits()
    };
    let e = run_err(&single(&echo_module(), b""), &limits);
    assert!(e.to_string().contains("4 GiB"), "{e}");
}

#[test]
fn a_failing_input_source_is_a_clean_error() {
    struct Broken;
    impl veritee_wasm::InputSource for Broken {
        fn len(&self) -> u64 {
            10
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("authentication tag mismatch"))
        }
    }
    let mut spec = single(&echo_module(), b"");
    spec.compartments[0].inputs = vec![Input::from_source("in", Arc::new(Broken))];
    let e = run_err(&spec, &small_limits());
    assert_eq!(
        e.to_string(),
        "compartment main: reading input 0 of compartment main failed: authentication tag mismatch"
    );
    engine_still_works();
}

#[test]
fn compiled_modules_are_cached_by_hash() {
    let engine = TaskEngine::new(2).unwrap();
    let spec = single(&echo_module(), b"x");
    engine.run(&spec, &small_limits()).unwrap();
    engine.run(&spec, &small_limits()).unwrap();
    let stats = engine.cache_stats();
    assert_eq!((stats.entries, stats.misses, stats.hits), (1, 1, 1));
    // a different module is a different entry; the cache stays bounded
    for i in 0..3 {
        let m = format!(r#"(module (func (export "run") (result i32) (i32.const {i})))"#);
        let out = engine.run(&single(&m, b""), &small_limits()).unwrap();
        assert_eq!(out.get("main").unwrap().exit_code, i);
    }
    assert_eq!(engine.cache_stats().entries, 2);
}

#[test]
fn compiled_modules_are_reused_within_their_cache_scope_only() {
    let engine = TaskEngine::new(8).unwrap();
    let spec = single(&echo_module(), b"x");
    let never = std::sync::atomic::AtomicBool::new(false);
    let run = |scope: &[u8]| {
        engine
            .run_in_cache_scope(&spec, &small_limits(), &never, scope)
            .unwrap();
        engine.cache_stats()
    };
    let stats = run(b"tenant a");
    assert_eq!((stats.misses, stats.hits), (1, 0));
    let stats = run(b"tenant a");
    assert_eq!((stats.misses, stats.hits), (1, 1));
    // The same bytes for another tenant: compiled again, as if never seen.
    let stats = run(b"tenant b");
    assert_eq!((stats.misses, stats.hits), (2, 1));
    let stats = run(b"");
    assert_eq!((stats.misses, stats.hits, stats.entries), (3, 1, 3));
}

#[test]
fn tasks_run_concurrently_on_one_engine() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let input = format!("thread {i}");
                let out =
                    run_task(&single(&echo_module(), input.as_bytes()), &small_limits()).unwrap();
                assert_eq!(
                    out.get("main").unwrap().output.as_deref(),
                    Some(input.as_bytes())
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// `fork` is for applications: a task asking it is told no, and nothing happens.
#[test]
fn a_task_may_not_ask_for_a_fork() {
    let module = r#"(module
        (import "veritee" "fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (call $fork)))"#;
    let out = run_task(&single(module, b""), &small_limits()).unwrap();
    assert_eq!(out.get("main").unwrap().exit_code, -1);
}
