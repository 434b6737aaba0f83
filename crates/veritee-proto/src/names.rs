//! Names of tenants' objects (secrets, keys, data objects, partitions): they appear in
//! API paths and in the enclave's record keys, so they are plain and bounded.

/// Longest object name.
pub const MAX_NAME_LEN: usize = 128;

/// Checks an object name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a name is 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "a name may only contain A-Z a-z 0-9 . _ - (found {c:?})"
        ));
    }
    Ok(())
}

/// A tenant's id: hex of the first 16 bytes of SHA-256 over its public key (SPKI).
pub fn tenant_id(spki: &[u8]) -> String {
    hex::encode(&veritee_crypto::digest::sha256(spki)[..16])
}

/// Whether `id` is spelled as [`tenant_id`] spells one: 32 lowercase hex digits. Ids
/// are compared as text, so an uppercase spelling would name nobody.
pub fn is_tenant_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_32_lowercase_hex_digits() {
        let id = tenant_id(b"a key");
        assert!(is_tenant_id(&id));
        assert!(!is_tenant_id(&id.to_ascii_uppercase()));
        assert!(!is_tenant_id(&id[..31]));
        assert!(!is_tenant_id(&format!("{id}0")));
        assert!(!is_tenant_id(&format!("{}g", &id[..31])));
        assert!(!is_tenant_id(""));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("db-password.v2_x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").unwrap_err().contains("'/'"));
        assert!(check_name(&"a".repeat(129)).is_err());
    }
}
