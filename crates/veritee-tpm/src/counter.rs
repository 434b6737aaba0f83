//! A monotonic counter kept in a TPM's NV memory, for enclaves whose TEE keeps none
//! (SGX under Gramine, SEV-SNP, TDX, Nitro): the rollback protection of the sealed
//! state needs a number the host cannot set back.
//!
//! The counter is an ordinary 8-byte NV index that only its owner can read or write:
//! TPMA_NV_AUTHREAD and TPMA_NV_AUTHWRITE with an authorization value the enclave
//! derives from its sealing key, and nothing else (no owner or platform access, no
//! policy, no dictionary-attack lockout for a 256-bit value). Every command, the
//! definition included, goes through an HMAC session salted to the TPM's endorsement
//! key with parameter encryption: the authorization value never crosses the host in
//! the clear, and the host can forge neither a command nor the TPM's answer. When it
//! is opened, the index's public area must be exactly the one defined.
//!
//! What the host can still do, and what follows:
//! - **Delete the index** (TPM2_NV_UndefineSpace needs only the owner hierarchy, which
//!   the host holds). The enclave then defines it again at 0, and a store with any
//!   state is "ahead" of the counter: the node refuses to serve (fail closed), it does
//!   not accept an older store.
//! - **Define the index itself** with the same attributes but another authorization:
//!   every read fails its HMAC check, and the node refuses to serve.
//! - **Run a software TPM whose state it rolls back.** A counter is only as good as the
//!   TPM holding it: a device TPM, or a vTPM inside the TEE's trust boundary (the SVSM
//!   vTPM of an SEV-SNP guest, Azure's paravisor vTPM), not a swtpm the host runs.
//!
//! A write is a TPM NV write: device TPMs allow on the order of 10^5 to 10^6 of them per
//! location over their life, and the state journal writes twice per transition (group
//! commit shares them between concurrent writers).

use crate::TpmError;
use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::attributes::{
    NvIndexAttributes, NvIndexAttributesBuilder, SessionAttributesBuilder,
};
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, CapabilityData, MaxNvBuffer, NvPublic, NvPublicBuilder, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;

/// First NV index of the range the TCG reserves for the owner (Registry of Reserved
/// TPM 2.0 Handles and Localities, 2.2).
pub const OWNER_NV_FIRST: u32 = 0x0100_0000;
/// Last NV index of the owner's range.
pub const OWNER_NV_LAST: u32 = 0x013F_FFFF;
/// Bytes in the counter's NV index.
pub const COUNTER_LEN: u16 = 8;

/// A counter in a TPM NV index: see the module documentation.
pub struct TpmCounter {
    context: Context,
    tcti: String,
    index: NvIndexTpmHandle,
    handle: NvIndexHandle,
    /// The HMAC session every command goes through, kept open between them.
    session: Option<AuthSession>,
    /// The value last read or written: only this process holds the authorization, so
    /// the TPM cannot hold another unless the index was deleted (then writes fail).
    last: Option<u64>,
}

impl core::fmt::Debug for TpmCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TpmCounter")
            .field("tcti", &self.tcti)
            .field("index", &format_args!("{:#010x}", u32::from(self.index)))
            .finish_non_exhaustive()
    }
}

fn device<'a>(what: &'a str, index: u32) -> impl Fn(tss_esapi::Error) -> TpmError + 'a {
    move |e| TpmError::Device(format!("{what} (NV index {index:#010x}): {e}"))
}

/// The attributes the counter is defined with, and must still have.
fn attributes() -> Result<NvIndexAttributes, TpmError> {
    NvIndexAttributesBuilder::new()
        .with_auth_read(true)
        .with_auth_write(true)
        .with_no_da(true)
        .build()
        .map_err(|e| TpmError::Device(format!("NV attributes: {e}")))
}

fn public(index: NvIndexTpmHandle) -> Result<NvPublic, TpmError> {
    NvPublicBuilder::new()
        .with_nv_index(index)
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attributes()?)
        .with_data_area_size(usize::from(COUNTER_LEN))
        .build()
        .map_err(|e| TpmError::Device(format!("NV public area: {e}")))
}

impl TpmCounter {
    /// Opens the counter at `index` (in the owner's range) of the TPM at `tcti`,
    /// defining it at 0 if it does not exist. An index that exists with other
    /// attributes than a counter's is refused, never used or replaced.
    pub fn open(tcti: &str, index: u32, auth: &[u8; 32]) -> Result<Self, TpmError> {
        if !(OWNER_NV_FIRST..=OWNER_NV_LAST).contains(&index) {
            return Err(TpmError::Device(format!(
                "NV index {index:#010x} is outside the owner's range \
                 {OWNER_NV_FIRST:#010x}..={OWNER_NV_LAST:#010x}"
            )));
        }
        let conf = TctiNameConf::from_str(tcti)
            .map_err(|e| TpmError::Device(format!("TCTI {tcti:?} is not valid: {e}")))?;
        let mut context = Context::new(conf)
            .map_err(|e| TpmError::Device(format!("connecting to {tcti}: {e}")))?;
        let tpm_index = NvIndexTpmHandle::new(index)
            .map_err(|e| TpmError::Device(format!("NV index {index:#010x}: {e}")))?;
        let expected = public(tpm_index)?;
        let auth_value = Auth::try_from(auth.to_vec())
            .map_err(|e| TpmError::Device(format!("NV authorization: {e}")))?;

        let exists = Self::defined(&mut context, index)?;
        // Started before the index is defined: the definition carries the index's
        // authorization value, which must cross the host encrypted.
        let session = salted_session(&mut context, index)?;
        // From here an error drops `counter`, which flushes the session.
        let mut counter = Self {
            context,
            tcti: tcti.to_string(),
            index: tpm_index,
            handle: NvIndexHandle::from(ObjectHandle::None),
            session: Some(session),
            last: None,
        };
        counter.handle = if exists {
            let object = counter
                .context
                .execute_without_session(|ctx| {
                    ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_index))
                })
                .map_err(device("looking up the counter", index))?;
            NvIndexHandle::from(object)
        } else {
            counter
                .context
                .execute_with_session(Some(session), |ctx| {
                    ctx.nv_define_space(Provision::Owner, Some(auth_value.clone()), expected)
                })
                .map_err(device(
                    "defining the counter (the owner hierarchy's authorization must be empty)",
                    index,
                ))?
        };
        counter
            .context
            .tr_set_auth(ObjectHandle::from(counter.handle), auth_value)
            .map_err(device("setting the counter's authorization", index))?;
        counter.check_public()?;
        if !exists {
            counter.write_raw(0)?;
            tracing::info!(
                index = format_args!("{index:#010x}"),
                tcti,
                "defined a TPM NV counter at 0"
            );
        }
        Ok(counter)
    }

    /// The NV index the counter lives at.
    pub fn index(&self) -> u32 {
        u32::from(self.index)
    }

    /// Whether `index` is defined (asked with TPM2_GetCapability, because libtss2 logs
    /// an error for a read of an undefined index).
    fn defined(context: &mut Context, index: u32) -> Result<bool, TpmError> {
        let (data, _) = context
            .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, index, 1))
            .map_err(device("listing NV indices", index))?;
        let CapabilityData::Handles(list) = data else {
            return Err(TpmError::Device(
                "the TPM answered a handle list with something else".into(),
            ));
        };
        Ok(list
            .first()
            .is_some_and(|h| matches!(h, TpmHandle::NvIndex(i) if u32::from(*i) == index)))
    }

    /// Refuses an index whose public area is not the counter's (someone else's index,
    /// or one redefined with other attributes).
    fn check_public(&mut self) -> Result<(), TpmError> {
        let index = self.index();
        let handle = self.handle;
        let (found, _) = self
            .context
            .execute_without_session(|ctx| ctx.nv_read_public(handle))
            .map_err(device("reading the counter's public area", index))?;
        let expected = public(self.index)?;
        let bits = |a: NvIndexAttributes| {
            // TPMA_NV_WRITTEN says whether it was written yet: not part of what it is.
            const WRITTEN: u32 = 1 << 29;
            tss_esapi::tss2_esys::TPMA_NV::try_from(a)
                .map(|b| b & !WRITTEN)
                .unwrap_or(u32::MAX)
        };
        let found_bits = bits(found.attributes());
        if found_bits != bits(expected.attributes())
            || found.data_size() != expected.data_size()
            || found.name_algorithm() != expected.name_algorithm()
            || !found.authorization_policy().value().is_empty()
        {
            return Err(TpmError::Device(format!(
                "NV index {index:#010x} on {} is not a veritee counter (attributes {:#x}, {} bytes): \
                 another application holds it; it is neither used nor replaced",
                self.tcti,
                found_bits,
                found.data_size()
            )));
        }
        Ok(())
    }

    /// The counter's HMAC session ([`salted_session`]), started once and kept.
    fn session(&mut self) -> Result<AuthSession, TpmError> {
        if let Some(session) = self.session {
            return Ok(session);
        }
        let index = self.index();
        let session = salted_session(&mut self.context, index)?;
        self.session = Some(session);
        Ok(session)
    }

    /// Ends the session, after a failure (the next command starts a new one) or on drop.
    fn end_session(&mut self) {
        if let Some(session) = self.session.take() {
            flush_session(&mut self.context, session);
        }
    }

    /// The counter's value.
    pub fn read(&mut self) -> Result<u64, TpmError> {
        let index = self.index();
        let handle = self.handle;
        let session = self.session()?;
        let result = self.context.execute_with_session(Some(session), |ctx| {
            ctx.nv_read(NvAuth::NvIndex(handle), handle, COUNTER_LEN, 0)
        });
        let bytes = match result {
            Ok(bytes) => bytes,
            // Defined, then the process died before its first write.
            Err(tss_esapi::Error::Tss2Error(rc))
                if rc.kind() == Some(Tss2ResponseCodeKind::NvUninitialized) =>
            {
                self.last = Some(0);
                return Ok(0);
            }
            Err(e) => {
                self.end_session();
                return Err(device(
                    "reading the counter (an authorization failure means the index was \
                     redefined by someone else)",
                    index,
                )(e));
            }
        };
        let bytes: [u8; 8] = bytes.value().try_into().map_err(|_| {
            TpmError::Device(format!(
                "NV index {index:#010x} returned {} bytes for an 8-byte counter",
                bytes.value().len()
            ))
        })?;
        let value = u64::from_be_bytes(bytes);
        self.last = Some(value);
        Ok(value)
    }

    fn write_raw(&mut self, value: u64) -> Result<(), TpmError> {
        let index = self.index();
        let handle = self.handle;
        let data = MaxNvBuffer::try_from(value.to_be_bytes().to_vec())
            .map_err(|e| TpmError::Device(format!("NV buffer: {e}")))?;
        let session = self.session()?;
        let result = self.context.execute_with_session(Some(session), |ctx| {
            ctx.nv_write(NvAuth::NvIndex(handle), handle, data, 0)
        });
        match result {
            Ok(()) => {
                self.last = Some(value);
                Ok(())
            }
            Err(e) => {
                self.end_session();
                self.last = None;
                Err(device(
                    "writing the counter (an authorization failure means the index was \
                     redefined by someone else)",
                    index,
                )(e))
            }
        }
    }

    /// Raises the counter to `value`; lower than the current value is an error naming
    /// both, equal is a no-op. One NV write once the value is known (read at the first
    /// call): the index's authorization is this process's alone, so its value cannot
    /// have moved since, and a deleted or redefined index fails the write.
    pub fn advance_to(&mut self, value: u64) -> Result<u64, TpmError> {
        let now = match self.last {
            Some(last) => last,
            None => self.read()?,
        };
        if value < now {
            return Err(TpmError::Device(format!(
                "the TPM counter at NV index {:#010x} is at {now}; it cannot go back to {value}",
                self.index()
            )));
        }
        if value > now {
            self.write_raw(value)?;
        }
        Ok(value)
    }
}

/// An HMAC session salted to the TPM's ECC endorsement key, with parameter encryption
/// both ways and continueSession. The salt travels encrypted to a key only the TPM
/// holds, so the session key is secret from whoever relays the TPM's traffic: it keys
/// the commands' and answers' HMACs (with the index's authorization value) and the
/// encryption of their first parameter (the authorization value when the index is
/// defined, the counter's value after). An unsalted session's key would be computable
/// from the nonces on the wire.
fn salted_session(context: &mut Context, index: u32) -> Result<AuthSession, TpmError> {
    let ek = tss_esapi::abstraction::ek::create_ek_object(
        context,
        tss_esapi::interface_types::algorithm::AsymmetricAlgorithm::Ecc,
        None,
    )
    .map_err(device(
        "making the TPM's ECC endorsement key to salt a session",
        index,
    ))?;
    let started = context.start_auth_session(
        Some(ek),
        None,
        None,
        SessionType::Hmac,
        SymmetricDefinition::AES_128_CFB,
        HashingAlgorithm::Sha256,
    );
    if let Err(e) = context.flush_context(ek.into()) {
        tracing::warn!("TPM flush of the endorsement key failed: {e}");
    }
    let session = started
        .map_err(device("starting a salted HMAC session", index))?
        .ok_or_else(|| TpmError::Device("the TPM returned no HMAC session".into()))?;
    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .with_decrypt(true)
        .with_encrypt(true)
        .build();
    if let Err(e) = context.tr_sess_set_attributes(session, attributes, mask) {
        flush_session(context, session);
        return Err(device("setting the HMAC session's attributes", index)(e));
    }
    Ok(session)
}

fn flush_session(context: &mut Context, session: AuthSession) {
    let handle = tss_esapi::handles::SessionHandle::from(session);
    if let Err(e) = context.flush_context(handle.into()) {
        tracing::warn!("TPM flush of an HMAC session failed: {e}");
    }
}

impl Drop for TpmCounter {
    fn drop(&mut self) {
        // libtss2 keeps the authorization value with the handle, closed here.
        self.end_session();
        if self.handle != NvIndexHandle::from(ObjectHandle::None) {
            let _ = self.context.tr_close(&mut ObjectHandle::from(self.handle));
        }
    }
}
