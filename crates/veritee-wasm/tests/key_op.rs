//! `veritee.key_op` from inside a compartment, against a stand-in key service: the
//! answer and its length, an answer too long for the room given, each refusal code
//! with its reason in the log, a bad pointer, and a compartment granted no key.

use std::sync::Arc;

use veritee_crypto::SecretBytes;
use veritee_wasm::{
    Access, CompartmentSpec, KeyOpError, KeyRequest, KeyService, SecurityContext, TaskLimits,
    TaskSpec, WasmError, run_task,
};

/// One "key": signs by answering `SIG:` and the message; allows nothing else.
struct Stand;

impl KeyService for Stand {
    fn count(&self) -> usize {
        1
    }

    fn call(&self, _key: usize, request: KeyRequest<'_>) -> Result<SecretBytes, KeyOpError> {
        match request {
            KeyRequest::Sign { message } => {
                let mut out = b"SIG:".to_vec();
                out.extend_from_slice(message);
                Ok(SecretBytes::new(out))
            }
            KeyRequest::Decrypt { .. } => Err(KeyOpError::Failed("it does not open".into())),
            other => Err(KeyOpError::Forbidden(format!(
                "the metadata do not allow {}",
                other.name()
            ))),
        }
    }
}

/// Runs `body` (which leaves the exit code on the stack) with the request bytes
/// `request` at offset 0 of memory; writes the 4-byte result of each `key_op`, big
/// endian, to the output through `$out`.
fn module(request: &[u8], body: &str) -> String {
    let data: String = request.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "veritee" "key_op" (func $key_op (param i32 i32 i32 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{data}")
  (func $out (param $v i32)
    (i32.store8 (i32.const 60000) (i32.shr_u (local.get $v) (i32.const 24)))
    (i32.store8 (i32.const 60001) (i32.shr_u (local.get $v) (i32.const 16)))
    (i32.store8 (i32.const 60002) (i32.shr_u (local.get $v) (i32.const 8)))
    (i32.store8 (i32.const 60003) (local.get $v))
    (drop (call $output_write (i32.const 60000) (i32.const 4))))
  (func (export "run") (result i32) {body}))"#
    )
}

fn run(module: String, keys: Option<Arc<dyn KeyService>>) -> Result<(Vec<u8>, String), WasmError> {
    let spec = TaskSpec {
        compartments: vec![CompartmentSpec {
            name: "c".into(),
            module: module.as_bytes().into(),
            inputs: Vec::new(),
            entry: "run".into(),
            keys,
        }],
        security: SecurityContext {
            compartments: [(
                "c".to_string(),
                Access {
                    may_read: Default::default(),
                    releases: true,
                },
            )]
            .into(),
        },
    };
    let out = run_task(&spec, &TaskLimits::default())?;
    let c = out.get("c").expect("result");
    Ok((
        c.output.clone().unwrap_or_default(),
        String::from_utf8_lossy(c.log.as_deref().unwrap_or_default()).into_owned(),
    ))
}

fn codes(output: &[u8]) -> Vec<i32> {
    output
        .chunks(4)
        .map(|c| i32::from_be_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

#[test]
fn an_answer_is_written_with_its_length_or_only_its_length_when_it_does_not_fit() {
    // Sign "hi" (3 bytes of request at 0): the answer "SIG:hi" at 100, room 64; then
    // again with room 2: the length, and nothing written at 200.
    let body = r#"
    (call $out (call $key_op (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 100) (i32.const 64)))
    (drop (call $output_write (i32.const 100) (i32.const 6)))
    (call $out (call $key_op (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 200) (i32.const 2)))
    (call $out (i32.load8_u (i32.const 200)))
    (i32.const 0)"#;
    let (output, log) = run(module(b"\x03hi", body), Some(Arc::new(Stand))).expect("ran");
    assert_eq!(&output[..4], &6i32.to_be_bytes());
    assert_eq!(&output[4..10], b"SIG:hi");
    assert_eq!(codes(&output[10..]), vec![6, 0]);
    assert!(log.is_empty(), "{log}");
}

#[test]
fn refusals_are_negative_codes_with_their_reason_in_the_log() {
    let call = |request: &[u8], key: i32| {
        let body = format!(
            "(call $out (call $key_op (i32.const {key}) (i32.const 0) (i32.const {}) (i32.const 100) (i32.const 64))) (i32.const 0)",
            request.len()
        );
        run(module(request, &body), Some(Arc::new(Stand))).expect("ran")
    };
    for (request, key, code, reason) in [
        (
            &b"\x03hi"[..],
            1,
            -1,
            "there is no key 1: the compartment was granted 1",
        ),
        (b"\x03hi", -1, -1, "there is no key -1"),
        (b"\x07", 0, -2, "operation 7 is none of"),
        (b"\x01\x00\x00\x00\x09", 0, -2, "passes the end"),
        (b"\x05data", 0, -3, "the metadata do not allow hmac"),
        (b"\x02\x00\x00\x00\x00ct", 0, -4, "it does not open"),
    ] {
        let (output, log) = call(request, key);
        assert_eq!(codes(&output), vec![code], "{reason}");
        assert!(log.contains(&format!("key_op: key {key}: ")), "{log}");
        assert!(log.contains(reason), "{reason}: {log}");
    }
    // No key service at all: every index is out of range.
    let body = "(call $out (call $key_op (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 100) (i32.const 64))) (i32.const 0)";
    let (output, log) = run(module(b"\x03hi", body), None).expect("ran");
    assert_eq!(codes(&output), vec![-1]);
    assert!(log.contains("granted 0"), "{log}");
}

#[test]
fn a_request_or_answer_buffer_outside_memory_stops_the_compartment() {
    for body in [
        "(drop (call $key_op (i32.const 0) (i32.const 65535) (i32.const 3) (i32.const 100) (i32.const 64))) (i32.const 0)",
        "(drop (call $key_op (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 65530) (i32.const 64))) (i32.const 0)",
    ] {
        let e = run(module(b"\x03hi", body), Some(Arc::new(Stand))).expect_err("out of bounds");
        assert!(
            matches!(&e, WasmError::OutOfBounds { function, .. } if *function == "key_op"),
            "{e}"
        );
    }
}

/// A key whose every operation takes a while, as a signature does.
struct Slow;

impl KeyService for Slow {
    fn count(&self) -> usize {
        1
    }

    fn call(&self, _key: usize, _request: KeyRequest<'_>) -> Result<SecretBytes, KeyOpError> {
        std::thread::sleep(std::time::Duration::from_millis(2));
        Ok(SecretBytes::new(vec![0; 64]))
    }
}

#[test]
fn a_guest_calling_key_op_in_a_loop_is_still_held_to_the_deadline() {
    // Each call costs a few fuel and milliseconds of host time: the fuel interval
    // alone would look at the clock only after hours of such calls.
    let body = r#"
    (loop $again
      (drop (call $key_op (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 100) (i32.const 64)))
      (br $again))
    (i32.const 0)"#;
    let spec_module = module(b"\x03hi", body);
    let limits = TaskLimits {
        timeout: std::time::Duration::from_millis(300),
        ..TaskLimits::default()
    };
    let spec = TaskSpec {
        compartments: vec![CompartmentSpec {
            name: "c".into(),
            module: spec_module.as_bytes().into(),
            inputs: Vec::new(),
            entry: "run".into(),
            keys: Some(Arc::new(Slow)),
        }],
        security: SecurityContext {
            compartments: [(
                "c".to_string(),
                Access {
                    may_read: Default::default(),
                    releases: true,
                },
            )]
            .into(),
        },
    };
    let started = std::time::Instant::now();
    let e = run_task(&spec, &limits).expect_err("stopped");
    assert!(matches!(e, WasmError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
