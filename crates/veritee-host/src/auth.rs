//! Who is calling: the node admin (a bearer token) or a tenant (a signed request).

use base64::Engine;
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_proto::api::auth::{MAX_SKEW_SECS, SignedHeader, parse_header};

/// Namespace of the host's public copy of tenant keys (for request signatures).
pub const HOST_TENANTS_NS: &str = "host-tenants";

/// Checks `Authorization: Bearer TOKEN` against the admin token's SHA-256.
pub fn check_admin(header: Option<&str>, token_sha256: &[u8; 32]) -> Result<(), String> {
    let token = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or("this route needs the node admin token: Authorization: Bearer TOKEN")?;
    if veritee_crypto::ct_eq(
        &veritee_crypto::digest::sha256(token.trim().as_bytes()),
        token_sha256,
    ) {
        Ok(())
    } else {
        Err("wrong admin token".into())
    }
}

/// The parts of a tenant-signed request, before the key is looked up.
pub struct TenantClaim {
    /// Claimed tenant.
    pub tenant_id: String,
    header: SignedHeader,
}

/// Parses the Authorization header of a tenant request.
pub fn tenant_claim(header: Option<&str>) -> Result<TenantClaim, String> {
    let h = parse_header(
        header.ok_or("this route needs a tenant-signed request (Authorization: Veritee ...)")?,
    )?;
    Ok(TenantClaim {
        tenant_id: h.tenant_id.clone(),
        header: h,
    })
}

impl TenantClaim {
    /// Verifies the signature with the tenant's key over this exact request, given
    /// what stands for its body in the signing string: the hex SHA-256 of the body
    /// (hashed whole, or while it streamed in), or a task-file piece's
    /// [`stream_piece_payload`](veritee_proto::api::auth::stream_piece_payload).
    pub fn verify(
        &self,
        spki: &[u8],
        method: &str,
        path_and_query: &str,
        payload: &str,
        now: i64,
    ) -> Result<(), String> {
        // abs_diff: any signed time in i64's range is compared without overflow.
        if now.abs_diff(self.header.ts) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(format!(
                "request timestamp is more than {MAX_SKEW_SECS} s from the node's clock"
            ));
        }
        let message = self.header.signing_string(method, path_and_query, payload);
        sign::verify(
            VerificationScheme::EcdsaP256Sha256Fixed,
            spki,
            &message,
            &self.header.signature,
        )
        .map_err(|_| "request signature does not verify".to_string())
    }
}

/// Decodes a base64 SPKI from a registration request.
pub fn decode_spki(b64: &str) -> Result<Vec<u8>, String> {
    let spki = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "public_key must be base64".to_string())?;
    sign::check_public_key(VerificationScheme::EcdsaP256Sha256Fixed, &spki)
        .map_err(|_| "public_key must be an ECDSA P-256 SubjectPublicKeyInfo".to_string())?;
    Ok(spki)
}

pub use veritee_proto::names::tenant_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_at_the_ends_of_its_range_is_refused_without_overflow() {
        for ts in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let header = format!(
                "Veritee tenant={}, node={}, epoch={}, ts={ts}, nonce={}, sig={}",
                "ab".repeat(16),
                "cd".repeat(8),
                "ef".repeat(16),
                "01".repeat(16),
                base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
            );
            let claim = tenant_claim(Some(&header)).expect("a well-formed header");
            let err = claim
                .verify(b"not a key", "GET", "/v1/node", "", 1_800_000_000)
                .expect_err("a time far from now");
            assert!(err.contains("timestamp"), "{err}");
        }
    }
}
