//! Traffic keys of a session, derived with the HPKE exporter.

use crate::ChannelError;
use veritee_crypto::aead::AeadKey;
use veritee_crypto::hpke::{ReceiverContext, SenderContext};

/// The two directions' keys.
pub(crate) struct TrafficKeys {
    /// Initiator (client) to responder (enclave).
    pub(crate) forward: AeadKey,
    /// Responder to initiator.
    pub(crate) backward: AeadKey,
}

const FORWARD: &[u8] = b"veritee traffic forward";
const BACKWARD: &[u8] = b"veritee traffic backward";

fn key(secret: veritee_crypto::SecretBytes) -> Result<AeadKey, ChannelError> {
    Ok(AeadKey::from_slice(secret.expose())?)
}

impl TrafficKeys {
    pub(crate) fn from_sender(ctx: &SenderContext) -> Result<Self, ChannelError> {
        Ok(Self {
            forward: key(ctx.export(FORWARD, 32)?)?,
            backward: key(ctx.export(BACKWARD, 32)?)?,
        })
    }

    pub(crate) fn from_receiver(ctx: &ReceiverContext) -> Result<Self, ChannelError> {
        Ok(Self {
            forward: key(ctx.export(FORWARD, 32)?)?,
            backward: key(ctx.export(BACKWARD, 32)?)?,
        })
    }
}
