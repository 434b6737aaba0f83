//! Audit-log checkpoints: arbitrary text to `open_checkpoint` under a fixed trusted key,
//! either as the whole note (note syntax, signature lines, checkpoint text) or appended
//! to a genuine signed note (the path past signature verification, with extra
//! signature lines). It must never panic, and nothing may open to a checkpoint other
//! than the genuine one: that would be a forgery.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_audit::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use veritee_crypto::sign::Ed25519SigningKey;

const KEY_NAME: &str = "fuzz.example/audit";

struct Fixture {
    public_key: [u8; 32],
    checkpoint: Checkpoint,
    note: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // PKCS#8 v1 (RFC 8410) around a fixed seed: the same key on every run.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&[0x5A; 32]);
        let key = Ed25519SigningKey::from_pkcs8(&der).expect("fixed key");
        let checkpoint = Checkpoint {
            origin: KEY_NAME.to_string(),
            size: 1042,
            head: [0xA5; 32],
        };
        let note = sign_checkpoint(&key, KEY_NAME, &checkpoint).expect("sign");
        Fixture {
            public_key: key.public_key(),
            checkpoint,
            note,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let fixture = fixture();
    let note = if mode & 1 == 0 {
        text.to_string()
    } else {
        format!("{}{text}", fixture.note)
    };
    if let Ok(opened) = open_checkpoint(&note, KEY_NAME, KEY_NAME, &fixture.public_key) {
        assert_eq!(opened, fixture.checkpoint, "note opened to another checkpoint");
    }
});
