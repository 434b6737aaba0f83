//! A session kept on disk by a client (`veritee_channel::stored`): whatever the file
//! holds, reading it never panics, and what reads back writes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_channel::stored::StoredSession;

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = StoredSession::from_bytes(data) else {
        return;
    };
    // The claims' CBOR need not be canonical, so only the rewritten bytes must read
    // back to themselves.
    let again = stored.to_bytes().expect("a session that read back writes");
    let reread = StoredSession::from_bytes(again.expose()).expect("what was written reads");
    let third = reread.to_bytes().expect("writes again");
    assert_eq!(again.expose(), third.expose());
});
