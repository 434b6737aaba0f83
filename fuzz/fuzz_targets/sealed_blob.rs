//! Sealed blobs: arbitrary bytes to `sealing::unseal` in a simulated enclave (header,
//! format version, seal policy, security version, then AES-GCM), raw and spliced over
//! the header of a real blob so the input reaches key derivation and decryption. It
//! must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use veritee_platform::SealPolicy;
use veritee_platform::sealing;
use veritee_platform::sim::{EnclaveImage, SimEnclave, SimMachine, SimVendor};

struct Fixture {
    enclave: SimEnclave,
    blob: Vec<u8>,
}

/// A vendor, a machine and an enclave at security version 2 (signed, so both seal
/// policies derive keys), made once per process in a fresh temporary directory.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("veritee-fuzz-sealed-blob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = time::OffsetDateTime::now_utc();
        let mut vendor = SimVendor::init(&dir.join("vendor"), now).expect("vendor");
        let machine =
            SimMachine::init(&dir.join("machine"), &mut vendor, None, now).expect("machine");
        let signer =
            veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P384)
                .expect("signer");
        let image = EnclaveImage::signed(b"fuzz", &signer, 1, 2, false).expect("image");
        let enclave = machine.launch(&image).expect("launch");
        let blob = sealing::seal(&enclave, SealPolicy::Signer, b"", b"fuzz").expect("seal");
        Fixture { enclave, blob }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = sealing::unseal(&f.enclave, b"", data);
    // The input over the start of a real blob, keeping the rest: valid lengths and
    // headers that differ from a real one in a few fields.
    let mut spliced = f.blob.clone();
    let n = data.len().min(sealing::HEADER_LEN);
    spliced[..n].copy_from_slice(&data[..n]);
    let _ = sealing::unseal(&f.enclave, b"", &spliced);
});
