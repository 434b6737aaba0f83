//! The embedded store's log files (`veritee_store::log_file::scan`): arbitrary bytes,
//! raw and after the header and first record of a valid file, so the input reaches
//! record bodies and the torn-tail search. It must never panic, and what it accepts
//! must lie inside the bytes it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_store::StoredObject;
use veritee_store::log_file::{encode_header, encode_record, scan};

fn check(bytes: &[u8]) {
    if let Ok(scanned) = scan(bytes) {
        assert!(scanned.end <= bytes.len() as u64);
        for at in &scanned.entries {
            assert!(at.offset + u64::from(at.len) <= scanned.end);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut file = encode_header("audit");
    file.extend(encode_record(
        0,
        &[b"entry"],
        &[StoredObject {
            ns: "ns".into(),
            key: "k".into(),
            value: b"v".to_vec(),
        }],
    ));
    file.extend_from_slice(data);
    check(&file);
});
