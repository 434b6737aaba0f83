//! The deployed data key a stream is encrypted under.

use core::fmt;

use veritee_crypto::Confidential;
use veritee_crypto::aead::{AeadKey, KEY_LEN};

/// A 256-bit user data key, as deployed to an enclave, from which every stream derives
/// its own header and payload keys. Zeroized on drop, never printed.
///
/// The data key itself never encrypts anything: each stream's random stream id makes its
/// payload key fresh, so one data key can protect any number of streams.
#[derive(Clone)]
pub struct StreamKey(Confidential<[u8; KEY_LEN]>);

impl StreamKey {
    /// A stream key from a 32-byte data key.
    pub fn new(data_key: &Confidential<[u8; KEY_LEN]>) -> Self {
        Self(data_key.clone())
    }

    /// The data key.
    pub(crate) fn data_key(&self) -> &Confidential<[u8; KEY_LEN]> {
        &self.0
    }
}

impl From<&AeadKey> for StreamKey {
    /// A stream key from a data key held as an [`AeadKey`].
    fn from(key: &AeadKey) -> Self {
        Self::new(key.expose())
    }
}

impl From<Confidential<[u8; KEY_LEN]>> for StreamKey {
    fn from(data_key: Confidential<[u8; KEY_LEN]>) -> Self {
        Self(data_key)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let key = StreamKey::new(&Confidential::new([0x41; 32]));
        let printed = format!("{key:?} {key:#?}");
        assert!(
            !printed.contains("41") && !printed.contains("65"),
            "{printed}"
        );
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn from_aead_key_keeps_the_bytes() {
        let aead = AeadKey::from_slice(&[7; 32]).unwrap();
        assert_eq!(StreamKey::from(&aead).data_key().expose(), &[7; 32]);
    }
}
