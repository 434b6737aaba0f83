//! CBOR encoding of session requests and answers into a secret buffer of exactly the
//! encoding's size ([`veritee_proto::cbor::to_vec_exact`]): a buffer that grew would
//! leave copies of the plaintexts behind in freed memory, never wiped.

use crate::ChannelError;
use serde::Serialize;
use veritee_crypto::SecretBytes;

/// `value` as CBOR, in a secret buffer allocated once at its final size.
pub(crate) fn to_cbor<T: Serialize>(value: &T) -> Result<SecretBytes, ChannelError> {
    veritee_proto::cbor::to_vec_exact(value)
        .map(SecretBytes::new)
        .map_err(|e| ChannelError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session request holding a large secret is encoded without its buffer growing.
    #[test]
    fn a_large_request_is_encoded_into_a_buffer_of_its_size() {
        let request = crate::ops::Request::PutSecret {
            name: "db".into(),
            value: SecretBytes::new(vec![0x5a; 1 << 20]),
        };
        let out = request.encode().unwrap();
        assert_eq!(out.expose().capacity(), out.expose().len());
    }
}
