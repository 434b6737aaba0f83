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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("db-password.v2_x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").unwrap_err().contains("'/'"));
        assert!(check_name(&"a".repeat(129)).is_err());
    }
}
