//! What the enclave parses of a session that reaches it through the host: a session
//! message's header, a resumption request's body, a ticket (as sent, and its contents
//! behind the authentication), and a resumed session's first request. None may panic,
//! whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_channel::enclave::EnclaveSession;
use veritee_channel::message;
use veritee_channel::resume::TicketKey;
use veritee_proto::api::ResumeSessionRequest;

fn ticket_key() -> &'static TicketKey {
    static KEY: OnceLock<TicketKey> = OnceLock::new();
    KEY.get_or_init(|| TicketKey::generate().expect("ticket key"))
}

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = message::parse(data);
    let _ = serde_json::from_slice::<ResumeSessionRequest>(data);
    let _ = ticket_key().open(data, NOW);
    // The first bytes as a ticket's contents, the rest as the first request.
    let split = data.first().map_or(0, |&n| usize::from(n).min(data.len()));
    let (contents, first) = data.split_at(split);
    let Ok(ticket) = ticket_key().seal_contents_for_fuzzing(contents) else {
        return;
    };
    if let Ok(opened) = ticket_key().open(&ticket, NOW) {
        let _ = EnclaveSession::resume(&ticket, opened, &[7; 32], first);
    }
});
