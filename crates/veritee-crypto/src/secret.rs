//! Secret containers: zeroized on drop, never printed, never serialized.
//!
//! `Confidential<T>` deliberately implements neither `Display` nor `serde::Serialize`:
//! the only ways out of the enclave for a secret are sealing and encryption, both of
//! which take `&Confidential<_>` and read it through [`Confidential::expose`].

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value that must not leak: zeroized when dropped, redacted in `Debug`.
#[derive(Clone, Default)]
pub struct Confidential<T: Zeroize>(T);

/// Secret bytes of variable length.
pub type SecretBytes = Confidential<Vec<u8>>;

impl<T: Zeroize> Confidential<T> {
    /// Takes ownership of a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Reads the secret. Callers must not copy it into anything that is not itself
    /// secret-typed.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutable access to the secret, for filling it in place.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> From<T> for Confidential<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T: Zeroize> Drop for Confidential<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Confidential<T> {}

impl<T: Zeroize> fmt::Debug for Confidential<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Confidential(<redacted>)")
    }
}

impl<T: Zeroize + AsRef<[u8]>> PartialEq for Confidential<T> {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.as_ref(), other.0.as_ref())
    }
}

impl<T: Zeroize + AsRef<[u8]>> Eq for Confidential<T> {}

impl SecretBytes {
    /// Copies `bytes` into a new secret buffer.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = SecretBytes::copy_from(b"canary-7f3a9c");
        let printed = format!("{secret:?} {:#?}", secret);
        assert!(!printed.contains("canary"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"abc")
        );
        assert_ne!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"abd")
        );
        assert_ne!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"abcd")
        );
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"a", b""));
    }

    #[test]
    fn zeroize_clears_contents() {
        let mut secret = Confidential::new([7u8; 32]);
        secret.expose_mut().zeroize();
        assert_eq!(secret.expose(), &[0u8; 32]);
    }
}
