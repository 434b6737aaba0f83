//! Applications: state kept between calls, a trap that leaves the application
//! running, a deadline that stops it for good, and restores that do not fit refused.

use std::time::Duration;

use veritee_wasm::rewrite::prepare;
use veritee_wasm::{App, AppCounters, GlobalValue, TaskEngine, TaskLimits, WasmError};

const APP: &str = r#"(module
    (memory (export "memory") 1)
    (global $n (mut i32) (i32.const 0))
    (func (export "bump") (result i32)
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (global.get $n))
    (func (export "fail") (result i32) unreachable)
    (func (export "spin") (result i32) (loop $l (br $l)) (i32.const 0))
    (func (export "wrong_type") (param i32)))"#;

fn start(limits: &TaskLimits) -> App {
    let prepared = prepare("app", APP.as_bytes()).unwrap();
    App::start(TaskEngine::global().unwrap(), "app", &prepared, limits).unwrap()
}

#[test]
fn state_survives_calls_and_a_trap_leaves_the_application_running() {
    let mut app = start(&TaskLimits::default());
    assert_eq!(app.call("bump", b"").unwrap().exit_code, 1);
    assert!(matches!(app.call("fail", b""), Err(WasmError::Trap { .. })));
    assert_eq!(app.call("bump", b"").unwrap().exit_code, 2);
    assert_eq!(app.globals(), vec![(0, GlobalValue::I32(2))]);
    assert_eq!(app.counters().calls, 3);
    // No `forked` export: nothing to tell it, and no call counted.
    assert!(
        app.notify_forked(veritee_wasm::ForkRole::Child)
            .unwrap()
            .is_none()
    );
    assert_eq!(app.counters().calls, 3);
    for missing in ["nothing", "wrong_type", "memory"] {
        assert!(
            matches!(app.call(missing, b""), Err(WasmError::MissingEntry { .. })),
            "{missing}"
        );
    }
}

#[test]
fn a_call_cut_off_at_its_deadline_stops_the_application_for_good() {
    let limits = TaskLimits {
        timeout: Duration::from_millis(50),
        ..TaskLimits::default()
    };
    let mut app = start(&limits);
    assert!(matches!(
        app.call("spin", b""),
        Err(WasmError::Timeout { .. })
    ));
    let err = app.call("bump", b"").unwrap_err();
    assert!(matches!(err, WasmError::AppStopped { .. }), "{err}");
}

#[test]
fn a_restore_that_does_not_fit_the_module_is_refused() {
    let mut app = start(&TaskLimits::default());
    let counters = AppCounters::default();
    for (len, globals, reason) in [
        (
            65536 + 1,
            vec![(0, GlobalValue::I32(1))],
            "whole 64 KiB pages",
        ),
        (
            0,
            vec![(0, GlobalValue::I32(1))],
            "smaller than the new instance",
        ),
        (65536, vec![], "not this module's mutable globals"),
        (
            65536,
            vec![(1, GlobalValue::I32(1))],
            "not this module's mutable globals",
        ),
        (65536, vec![(0, GlobalValue::I64(1))], "another type"),
        (
            1 << 30,
            vec![(0, GlobalValue::I32(1))],
            "cannot grow memory",
        ),
    ] {
        let err = app
            .restore(len, &globals, counters)
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason), "{reason}: {err}");
    }
    app.restore(2 * 65536, &[(0, GlobalValue::I32(41))], counters)
        .unwrap();
    assert_eq!(app.memory().len(), 2 * 65536);
    assert_eq!(app.call("bump", b"").unwrap().exit_code, 42);
}

#[test]
fn an_application_asks_for_a_fork_only_when_allowed_and_the_request_is_taken_once() {
    let module = r#"(module
        (import "veritee" "fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "split") (result i32) (call $fork))
        (func (export "other") (result i32) (i32.const 0)))"#;
    let prepared = prepare("app", module.as_bytes()).unwrap();
    let mut app = App::start(
        TaskEngine::global().unwrap(),
        "app",
        &prepared,
        &TaskLimits::default(),
    )
    .unwrap();
    assert_eq!(app.call("split", b"").unwrap().exit_code, -1);
    assert!(!app.take_fork_request());
    app.allow_fork(true);
    assert_eq!(app.call("split", b"").unwrap().exit_code, 0);
    assert!(app.take_fork_request());
    assert!(!app.take_fork_request(), "taken once");
    // A request not taken does not outlive the next call.
    app.call("split", b"").unwrap();
    app.call("other", b"").unwrap();
    assert!(!app.take_fork_request());
}
