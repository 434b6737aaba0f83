//! The two JWTs of the KBS protocol: the EAR attestation token the broker issues to a
//! guest (ES256, signed in the enclave), and the admin's bearer token (EdDSA, signed by
//! the KBS administrator, checked in the enclave against the admin key it holds).
//!
//! Compact JWS is framed here over veritee-crypto's signatures rather than through a
//! JWT crate: `jsonwebtoken`'s `EncodingKey` keeps the private key in a plain `Vec`
//! that is never wiped, and the enclave's signing key must stay in a zeroizing type.
//! What a JWT library guards against is guarded here too, and tested: the algorithm is
//! pinned per token kind (never read from the header to choose a key), `none` and
//! every other algorithm are refused, `exp` is required and checked at an explicit
//! time, `nbf` and `iat` may not lie in the future.

use crate::KbsError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kbs_types::TeePubKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use veritee_attest::Claims;
use veritee_crypto::sign::{EcdsaSigningKey, Ed25519SigningKey, VerificationScheme};

/// Largest token accepted.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// How far in the future `iat` or `nbf` may lie (clock skew between admin and node).
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);
/// The EAR profile this broker's tokens follow.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";
/// Where, in an EAR token, Trustee's KBS and its clients find the guest's TEE key.
pub const TEE_PUBKEY_POINTER: &str =
    "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey";

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

fn b64_json<T: Serialize>(value: &T) -> Result<String, KbsError> {
    serde_json::to_vec(value)
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .map_err(|e| KbsError::Token(format!("does not encode: {e}")))
}

/// A compact JWS of `claims`, its header naming `alg`, signed by `sign`.
fn compact<T: Serialize>(
    alg: &str,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, KbsError>,
) -> Result<String, KbsError> {
    let header = Header {
        alg: alg.into(),
        typ: Some("JWT".into()),
    };
    let signing_input = format!("{}.{}", b64_json(&header)?, b64_json(claims)?);
    let signature = sign(signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The parts of a compact JWS, its header checked to name `alg`.
struct Compact<'a> {
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn split<'a>(token: &'a str, alg: &str) -> Result<Compact<'a>, KbsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(KbsError::TooLarge {
            what: "token",
            size: token.len(),
            limit: MAX_TOKEN_LEN,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KbsError::Token(
            "a JWS has three dot-separated parts".into(),
        ));
    };
    let decode = |what: &str, part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| KbsError::Token(format!("the {what} is not base64url: {e}")))
    };
    let header: Header = serde_json::from_slice(&decode("header", header)?)
        .map_err(|e| KbsError::Token(format!("the header does not parse: {e}")))?;
    if header.alg != alg {
        return Err(KbsError::Token(format!(
            "the token is signed with {:?}; only {alg} is accepted here",
            header.alg
        )));
    }
    let signing_input_len = token.len() - signature.len() - 1;
    Ok(Compact {
        signing_input: &token[..signing_input_len],
        payload: decode("payload", payload)?,
        signature: decode("signature", signature)?,
    })
}

/// The time claims every token here carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Times {
    // Absent, never null: CoCo's client (jwt-simple) refuses a null time claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

impl Times {
    fn check(&self, at: OffsetDateTime) -> Result<(), KbsError> {
        let now = at.unix_timestamp();
        let skew = MAX_CLOCK_SKEW.whole_seconds();
        let exp = self
            .exp
            .ok_or_else(|| KbsError::Token("it has no `exp` claim".into()))?;
        if exp <= now {
            return Err(KbsError::Token(format!(
                "it expired {} seconds ago",
                now.saturating_sub(exp)
            )));
        }
        for (name, value) in [("nbf", self.nbf), ("iat", self.iat)] {
            if let Some(t) = value
                && t > now.saturating_add(skew)
            {
                return Err(KbsError::Token(format!(
                    "its `{name}` lies {} seconds in the future",
                    t - now
                )));
            }
        }
        Ok(())
    }
}

/// What an EAR token issued by this broker says, as the broker reads it back from a
/// guest's `Authorization: Bearer` header.
#[derive(Debug, Clone)]
pub struct AttestedGuest {
    /// The appraised evidence's claims.
    pub claims: Claims,
    /// The claims of the guest's devices (GPUs), each appraised too.
    pub devices: Vec<Claims>,
    /// The key resources are sealed to.
    pub tee_pubkey: TeePubKey,
    /// When the token expires (Unix seconds).
    pub expires: i64,
}

#[derive(Serialize, Deserialize)]
struct AnnotatedEvidence {
    /// veritee's normalized claims of the appraised evidence.
    veritee: Claims,
    /// Those of the guest's devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    veritee_devices: Vec<Claims>,
    runtime_data_claims: RuntimeDataClaims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    init_data_claims: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct RuntimeDataClaims {
    #[serde(rename = "tee-pubkey")]
    tee_pubkey: TeePubKey,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Appraisal {
    #[serde(rename = "ear.status")]
    status: String,
    #[serde(rename = "ear.veraison.annotated-evidence")]
    annotated_evidence: AnnotatedEvidence,
}

#[derive(Serialize, Deserialize)]
struct Submods {
    cpu0: Appraisal,
}

#[derive(Serialize, Deserialize)]
struct VerifierId {
    developer: String,
    build: String,
}

#[derive(Serialize, Deserialize)]
struct EarClaims {
    eat_profile: String,
    #[serde(flatten)]
    times: Times,
    #[serde(rename = "ear.verifier-id")]
    verifier_id: VerifierId,
    submods: Submods,
}

/// What goes into an EAR token.
#[derive(Debug)]
pub struct EarInput<'a> {
    /// Claims of the evidence, appraised and accepted.
    pub claims: &'a Claims,
    /// Claims of the guest's devices' evidence.
    pub devices: &'a [Claims],
    /// The guest's TEE key, bound into the evidence.
    pub tee_pubkey: &'a TeePubKey,
    /// The challenge's nonce.
    pub nonce: &'a str,
    /// The init-data digest, when the guest sent init-data.
    pub init_data_digest: Option<&'a [u8]>,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// Lifetime.
    pub lifetime: time::Duration,
}

/// Issues an EAR token (ES256) signed by `key`, a P-256 key of the enclave's. The
/// status is `affirming`: tokens are issued only for evidence the policy accepted.
pub fn issue_ear(key: &EcdsaSigningKey, input: &EarInput<'_>) -> Result<String, KbsError> {
    if key.curve() != veritee_crypto::sign::EcdsaCurve::P256 {
        return Err(KbsError::Token(
            "EAR tokens are signed with a P-256 key".into(),
        ));
    }
    let iat = input.issued_at.unix_timestamp();
    let claims = EarClaims {
        eat_profile: EAR_PROFILE.into(),
        times: Times {
            iat: Some(iat),
            nbf: None,
            exp: Some(iat.saturating_add(input.lifetime.whole_seconds())),
        },
        verifier_id: VerifierId {
            developer: "veritee".into(),
            build: concat!("veritee-kbs ", env!("CARGO_PKG_VERSION")).into(),
        },
        submods: Submods {
            cpu0: Appraisal {
                status: "affirming".into(),
                annotated_evidence: AnnotatedEvidence {
                    veritee: input.claims.clone(),
                    veritee_devices: input.devices.to_vec(),
                    runtime_data_claims: RuntimeDataClaims {
                        tee_pubkey: input.tee_pubkey.clone(),
                        nonce: input.nonce.into(),
                    },
                    init_data_claims: input
                        .init_data_digest
                        .map(|d| serde_json::json!({ "digest": hex::encode(d) })),
                },
            },
        },
    };
    compact("ES256", &claims, |input| {
        key.sign(input).map_err(KbsError::crypto)
    })
}

/// Reads back an EAR token this broker issued: signature under `public_key` (the
/// uncompressed P-256 point of the enclave's key), expiry at `at`.
pub fn verify_ear(
    token: &str,
    public_key: &[u8],
    at: OffsetDateTime,
) -> Result<AttestedGuest, KbsError> {
    let parts = split(token, "ES256")?;
    veritee_crypto::sign::verify(
        VerificationScheme::EcdsaP256Sha256Fixed,
        public_key,
        parts.signing_input.as_bytes(),
        &parts.signature,
    )
    .map_err(|_| KbsError::Token("the signature is not this broker's".into()))?;
    let claims: EarClaims = serde_json::from_slice(&parts.payload)
        .map_err(|e| KbsError::Token(format!("the claims do not parse: {e}")))?;
    claims.times.check(at)?;
    if claims.eat_profile != EAR_PROFILE || claims.submods.cpu0.status != "affirming" {
        return Err(KbsError::Token("it does not affirm the guest".into()));
    }
    let evidence = claims.submods.cpu0.annotated_evidence;
    Ok(AttestedGuest {
        claims: evidence.veritee,
        devices: evidence.veritee_devices,
        tee_pubkey: evidence.runtime_data_claims.tee_pubkey,
        expires: claims.times.exp.unwrap_or_default(),
    })
}

/// Claims of an admin token minted by `veritee kbs admin-token`.
#[derive(Serialize, Deserialize)]
struct AdminClaims {
    iss: String,
    #[serde(flatten)]
    times: Times,
}

/// Mints an admin token (EdDSA) valid from `at` for `lifetime`, as `trustee-cli` does.
pub fn mint_admin_token(
    key: &Ed25519SigningKey,
    at: OffsetDateTime,
    lifetime: time::Duration,
) -> Result<String, KbsError> {
    let iat = at.unix_timestamp();
    let claims = AdminClaims {
        iss: "veritee kbs admin-token".into(),
        times: Times {
            iat: Some(iat),
            nbf: None,
            exp: Some(iat.saturating_add(lifetime.whole_seconds())),
        },
    };
    compact("EdDSA", &claims, |input| {
        key.sign(input)
            .map(|s| s.to_vec())
            .map_err(KbsError::crypto)
    })
}

/// Checks an admin's bearer token: EdDSA under `admin_key` (32 bytes), unexpired at
/// `at`. Other claims (issuer, audience, role) are not used: the one admin key is the
/// whole authority.
pub fn verify_admin_token(
    token: &str,
    admin_key: &[u8; 32],
    at: OffsetDateTime,
) -> Result<(), KbsError> {
    let parts = split(token, "EdDSA")?;
    veritee_crypto::sign::verify(
        VerificationScheme::Ed25519,
        admin_key,
        parts.signing_input.as_bytes(),
        &parts.signature,
    )
    .map_err(|_| KbsError::Token("it is not signed by this broker's admin key".into()))?;
    let times: Times = serde_json::from_slice(&parts.payload)
        .map_err(|e| KbsError::Token(format!("the claims do not parse: {e}")))?;
    times.check(at)
}

/// The 32-byte Ed25519 key of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as
/// `openssl pkey -pubout` writes it.
pub fn admin_public_key_from_pem(pem: &str) -> Result<[u8; 32], KbsError> {
    let bad = |reason: String| KbsError::malformed("admin public key", reason);
    let (label, der) =
        der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| bad(format!("not PEM: {e}")))?;
    if label != "PUBLIC KEY" {
        return Err(bad(format!("the PEM holds a {label:?}, not a PUBLIC KEY")));
    }
    let spki = <spki::SubjectPublicKeyInfoRef as der::Decode>::from_der(&der)
        .map_err(|e| bad(e.to_string()))?;
    if spki.algorithm.oid != ED25519_OID {
        return Err(bad(format!(
            "the key's algorithm is {}, not Ed25519 (1.3.101.112)",
            spki.algorithm.oid
        )));
    }
    spki.subject_public_key
        .raw_bytes()
        .try_into()
        .map_err(|_| bad("an Ed25519 key is 32 bytes".into()))
}

/// The PEM `PUBLIC KEY` of an Ed25519 key.
pub fn admin_public_key_to_pem(key: &[u8; 32]) -> Result<String, KbsError> {
    use der::Encode;
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: ED25519_OID,
            parameters: None,
        },
        subject_public_key: der::asn1::BitString::from_bytes(key)
            .map_err(|e| KbsError::malformed("admin public key", e))?,
    };
    let der = spki
        .to_der()
        .map_err(|e| KbsError::malformed("admin public key", e))?;
    der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &der)
        .map_err(|e| KbsError::malformed("admin public key", e))
}

const ED25519_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwe::{Curve, TeeKeyPair};

    fn sample_claims() -> Claims {
        serde_json::from_value(serde_json::json!({
            "tee": "coco-sample",
            "simulated": true,
            "measurements": {},
            "tcb_status": "NotReported",
            "advisory_ids": [],
            "debug": false,
            "report_data": "00",
            "signer": null,
            "security_version": null,
            "platform_id": null,
            "evidence_time": null,
            "details": {}
        }))
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn an_ear_token_reads_back_and_carries_the_key_where_trustee_looks() {
        let key = EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256).unwrap();
        let tee = TeeKeyPair::generate_ec(Curve::P256)
            .unwrap()
            .public_jwk()
            .unwrap();
        let claims = sample_claims();
        let token = issue_ear(
            &key,
            &EarInput {
                claims: &claims,
                devices: &[],
                tee_pubkey: &tee,
                nonce: "bm9uY2U=",
                init_data_digest: None,
                issued_at: now(),
                lifetime: time::Duration::minutes(5),
            },
        )
        .unwrap();
        let guest = verify_ear(&token, key.public_key_point(), now()).unwrap();
        assert_eq!(guest.claims, claims);
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            payload.pointer(TEE_PUBKEY_POINTER).unwrap(),
            &serde_json::to_value(&tee).unwrap()
        );
        // Expired, another key, a flipped byte in each part, another algorithm.
        assert!(
            verify_ear(
                &token,
                key.public_key_point(),
                now() + time::Duration::minutes(6)
            )
            .is_err()
        );
        let other = EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256).unwrap();
        assert!(verify_ear(&token, other.public_key_point(), now()).is_err());
        for part in 0..3 {
            let mut pieces: Vec<String> = token.split('.').map(str::to_string).collect();
            let mut bytes = URL_SAFE_NO_PAD.decode(&pieces[part]).unwrap();
            bytes[2] ^= 1;
            pieces[part] = URL_SAFE_NO_PAD.encode(bytes);
            assert!(verify_ear(&pieces.join("."), key.public_key_point(), now()).is_err());
        }
        assert!(verify_ear(&token[..token.len() - 3], key.public_key_point(), now()).is_err());
    }

    #[test]
    fn admin_tokens_are_pinned_to_eddsa_and_expire() {
        let admin = Ed25519SigningKey::generate().unwrap();
        let public = admin.public_key();
        let token = mint_admin_token(&admin, now(), time::Duration::hours(1)).unwrap();
        verify_admin_token(&token, &public, now()).unwrap();
        assert!(verify_admin_token(&token, &public, now() + time::Duration::hours(2)).is_err());
        let stranger = Ed25519SigningKey::generate().unwrap();
        assert!(verify_admin_token(&token, &stranger.public_key(), now()).is_err());
        // A future token (iat beyond the skew) is refused.
        let early = mint_admin_token(
            &admin,
            now() + time::Duration::hours(1),
            time::Duration::hours(3),
        )
        .unwrap();
        assert!(verify_admin_token(&early, &public, now()).is_err());
        // alg "none" with no signature, and an ES256 header over an EdDSA signature.
        let parts: Vec<&str> = token.split('.').collect();
        for alg in ["none", "ES256", "HS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let forged = format!("{header}.{}.{}", parts[1], parts[2]);
            let err = verify_admin_token(&forged, &public, now()).unwrap_err();
            assert!(err.to_string().contains(alg), "{err}");
            assert!(
                verify_admin_token(&format!("{header}.{}.", parts[1]), &public, now()).is_err()
            );
        }
        // No exp.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iat":1800000000}"#);
        let input = format!("{header}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(admin.sign(input.as_bytes()).unwrap());
        let err = verify_admin_token(&format!("{input}.{sig}"), &public, now()).unwrap_err();
        assert!(err.to_string().contains("exp"), "{err}");
        // Garbage.
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(verify_admin_token(junk, &public, now()).is_err());
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            verify_admin_token(&long, &public, now()),
            Err(KbsError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_admin_key_reads_from_openssl_pem() {
        // `openssl genpkey -algorithm ed25519 | openssl pkey -pubout`
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let key = admin_public_key_from_pem(pem).unwrap();
        assert_eq!(admin_public_key_to_pem(&key).unwrap(), pem);
        let p256 = EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .unwrap()
            .public_key_spki()
            .unwrap();
        let p256 = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &p256).unwrap();
        let err = admin_public_key_from_pem(&p256).unwrap_err().to_string();
        assert!(err.contains("Ed25519"), "{err}");
        assert!(admin_public_key_from_pem("not pem").is_err());
        assert!(admin_public_key_from_pem(&pem.replace("PUBLIC KEY", "PRIVATE KEY")).is_err());
    }
}
