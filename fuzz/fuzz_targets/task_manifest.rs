//! Task manifests: arbitrary text to `TaskManifest::parse` (TOML, then every check on
//! names, paths, limits and the security context). It must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_wasm::TaskManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TaskManifest::parse(text, "fuzz.toml");
    }
});
