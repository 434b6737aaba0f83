//! What the enclave's key broker reads from a guest or an admin through the host: a
//! Request, an Attestation (with its runtime-data binding, primary and device evidence), an
//! init-data document, a resource path, an EAR or admin token, a JWE (as the guest
//! reads the broker's answer), and sample evidence. None may panic, whatever the bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_attest::Verifier;
use veritee_kbs::jwe::{Curve, TeeKeyPair};
use veritee_kbs::kbs_types::{Response, Tee};
use veritee_kbs::{protocol, resource, token};

fn keys() -> &'static (TeeKeyPair, veritee_crypto::sign::EcdsaSigningKey) {
    static KEYS: OnceLock<(TeeKeyPair, veritee_crypto::sign::EcdsaSigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            TeeKeyPair::generate_ec(Curve::P256).expect("TEE key"),
            veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
                .expect("token key"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let _ = protocol::parse_request(data);
    if let Ok(attestation) = protocol::parse_attestation(data) {
        let _ = protocol::runtime_data_digest(&attestation);
        for tee in [
            Tee::Sample,
            Tee::Tdx,
            Tee::Sgx,
            Tee::Snp,
            Tee::AzSnpVtpm,
            Tee::AzTdxVtpm,
        ] {
            let _ = protocol::primary_evidence(tee, &attestation);
        }
        let _ = protocol::additional_evidence(&attestation);
        if let Some(init) = &attestation.init_data {
            let _ = protocol::init_data_digest(init);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = resource::ResourcePath::parse(&text);
    let (tee_key, token_key) = keys();
    let _ = token::verify_ear(&text, token_key.public_key_point(), at);
    let _ = token::verify_admin_token(&text, &[7; 32], at);
    let _ = token::admin_public_key_from_pem(&text);
    if let Ok(response) = serde_json::from_slice::<Response>(data) {
        let _ = tee_key.open(&response);
    }
    let _ = veritee_verify::coco_sample::CocoSampleVerifier.verify(&veritee_attest::VerifyInput {
        evidence: data,
        collateral: &[],
        trust_anchors: &[],
        at,
    });
});
