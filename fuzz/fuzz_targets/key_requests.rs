//! What a workload names and asks of its stored keys: a guest's `key_op` request bytes
//! (`KeyRequest::parse`, every operation including a translation's target index), and
//! the key names a task's compartment or an application lists (`NamedKey::parse_list`,
//! one per line). Neither may panic, and what parses must read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_task::messages::NamedKey;
use veritee_wasm::KeyRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = KeyRequest::parse(data) {
        let _ = request.name();
        assert_eq!(KeyRequest::parse(data), Ok(request));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let names: Vec<String> = text.lines().map(String::from).collect();
        if let Ok(parsed) = NamedKey::parse_list(&names) {
            // Each reads back to itself through its spelling.
            for key in &parsed {
                assert_eq!(NamedKey::parse(&key.to_string()).as_ref(), Ok(key));
            }
        }
    }
});
