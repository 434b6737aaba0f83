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
//! the clear, and the host can forge neither a command nor the TPM's answer to one
//! (an error answer carries no HMAC: the one that matters, "never written", is
//! confirmed by an authorized write). When it is opened, the index's public area must
//! be exactly the one defined.
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
use tss_esapi::abstraction::ek;
use tss_esapi::attributes::{
    NvIndexAttributes, NvIndexAttributesBuilder, SessionAttributesBuilder,
};
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{KeyHandle, NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{AsymmetricAlgorithm, HashingAlgorithm};
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, CapabilityData, MaxNvBuffer, NvPublic, NvPublicBuilder, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::Marshall;

/// First NV index of the range the TCG reserves for the owner (Registry of Reserved
/// TPM 2.0 Handles and Localities, 2.2).
pub const OWNER_NV_FIRST: u32 = 0x0100_0000;
/// Last NV index of the owner's range.
pub const OWNER_NV_LAST: u32 = 0x013F_FFFF;
/// Bytes in the counter's NV index.
pub const COUNTER_LEN: u16 = 8;

/// How the counter knows its TPM is a genuine one: the certificate of the TPM's RSA
/// endorsement key (NV index 0x01c00002) chains to one of `anchors`, the TPM
/// manufacturers' CAs, at `at`, and sessions are salted to that key. Without it they
/// are salted to the TPM's ECC endorsement key unchecked, which keeps out a host that
/// relays the TPM's traffic but not one that emulates the whole TPM.
#[derive(Debug, Clone)]
pub struct GenuineTpm {
    /// The TPM manufacturers' CAs (roots, and intermediates to build paths with).
    pub anchors: Vec<veritee_attest::ParsedCertificate>,
    /// The manufacturers' CRLs: an endorsement key certificate one of them revokes is
    /// refused.
    pub crls: Vec<veritee_x509::ParsedCrl>,
    /// When to judge the certificate's validity.
    pub at: time::OffsetDateTime,
}

/// A counter in a TPM NV index: see the module documentation.
pub struct TpmCounter {
    context: Context,
    tcti: String,
    index: NvIndexTpmHandle,
    handle: NvIndexHandle,
    /// The HMAC session every command goes through, kept open between them.
    session: Option<AuthSession>,
    /// The verified endorsement key's public area, when the TPM was checked
    /// ([`GenuineTpm`]): later sessions are salted to that key only.
    verified_ek: Option<Vec<u8>>,
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

/// The Name of the counter's index before its first write: the name algorithm, then
/// SHA-256 over the marshalled TPMS_NV_PUBLIC (TPM 2.0 Part 1, 16.4; Part 2, 13.5:
/// nvIndex, nameAlg, attributes, a TPM2B authPolicy, dataSize, all big-endian).
/// tss-esapi marshals no NvPublic, so the 14 bytes are laid out here.
fn never_written_name(index: u32) -> Result<Vec<u8>, TpmError> {
    const TPM_ALG_SHA256: u16 = 0x000B;
    let attributes = tss_esapi::tss2_esys::TPMA_NV::try_from(attributes()?)
        .map_err(|e| TpmError::Device(format!("NV attributes: {e}")))?;
    let mut public = Vec::with_capacity(14);
    public.extend_from_slice(&index.to_be_bytes());
    public.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    public.extend_from_slice(&attributes.to_be_bytes());
    public.extend_from_slice(&0u16.to_be_bytes()); // empty authPolicy
    public.extend_from_slice(&COUNTER_LEN.to_be_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(digest.as_ref());
    Ok(name)
}

impl TpmCounter {
    /// Opens the counter at `index` (in the owner's range) of the TPM at `tcti`,
    /// defining it at 0 if it does not exist. An index that exists with other
    /// attributes than a counter's is refused, never used or replaced. With `genuine`,
    /// a TPM whose endorsement key is not certified by one of its CAs is refused.
    pub fn open(
        tcti: &str,
        index: u32,
        auth: &[u8; 32],
        genuine: Option<&GenuineTpm>,
    ) -> Result<Self, TpmError> {
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
        let verified_ek = match genuine {
            Some(genuine) => Some(verify_endorsement(&mut context, genuine, index)?),
            None => None,
        };
        // Started before the index is defined: the definition carries the index's
        // authorization value, which must cross the host encrypted.
        let session = salted_session(&mut context, index, verified_ek.as_deref())?;
        // From here an error drops `counter`, which flushes the session.
        let mut counter = Self {
            context,
            tcti: tcti.to_string(),
            index: tpm_index,
            handle: NvIndexHandle::from(ObjectHandle::None),
            session: Some(session),
            verified_ek,
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
        let session = salted_session(&mut self.context, index, self.verified_ek.as_deref())?;
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
            // Defined, then the process died before its first write; or a forged
            // answer ([`Self::confirm_never_written`]).
            Err(tss_esapi::Error::Tss2Error(rc))
                if rc.kind() == Some(Tss2ResponseCodeKind::NvUninitialized) =>
            {
                self.confirm_never_written()?;
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

    /// Makes sure a "never written" answer to a read is the TPM's own.
    ///
    /// An error answer carries no HMAC: whoever relays the TPM's traffic can answer any
    /// read with TPM_RC_NV_UNINITIALIZED, and a counter taken for 0 would accept any
    /// older state and then be written back. What the host cannot forge is an
    /// authorized command's success, and the TPM checks a command's HMAC over the
    /// index's Name, which covers TPMA_NV_WRITTEN. So: the Name libtss2 holds for the
    /// index must be the never-written one (else the answer contradicts what the TPM
    /// said before), and writing 0 under that Name must succeed (the TPM refuses it
    /// if the index was written, whatever its public area was said to be).
    fn confirm_never_written(&mut self) -> Result<(), TpmError> {
        let index = self.index();
        let forged = || {
            TpmError::Device(format!(
                "the TPM answered that the counter at NV index {index:#010x} was never \
                 written, but the index has been written: the answer was forged by \
                 whoever relays the TPM's traffic"
            ))
        };
        let held = self
            .context
            .tr_get_name(ObjectHandle::from(self.handle))
            .map_err(device("the counter's Name", index))?;
        if held.value() != never_written_name(index)?.as_slice() {
            self.end_session();
            return Err(forged());
        }
        self.write_raw(0).map_err(|e| {
            TpmError::Device(format!(
                "the TPM answered that the counter at NV index {index:#010x} was never \
                 written, and writing 0 to confirm it failed ({e}): the answer was forged \
                 by whoever relays the TPM's traffic, or the TPM failed"
            ))
        })
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

/// The TPM's RSA endorsement key (TCG template L-1) and its public area.
fn rsa_endorsement_key(
    context: &mut Context,
    index: u32,
) -> Result<(KeyHandle, Vec<u8>), TpmError> {
    let ek = ek::create_ek_object(context, AsymmetricAlgorithm::Rsa, None)
        .map_err(device("making the TPM's RSA endorsement key", index))?;
    let public = context
        .read_public(ek)
        .map_err(device("reading the endorsement key's public area", index))
        .and_then(|(public, _, _)| {
            public
                .marshall()
                .map_err(device("the endorsement key's public area", index))
        });
    match public {
        Ok(public) => Ok((ek, public)),
        Err(e) => {
            flush_key(context, ek);
            Err(e)
        }
    }
}

/// Checks the TPM's RSA endorsement key against its certificate and `genuine`'s CAs
/// (`crate::enrollment::verify_ek`, as a security module checks a target's); returns
/// its public area.
fn verify_endorsement(
    context: &mut Context,
    genuine: &GenuineTpm,
    index: u32,
) -> Result<Vec<u8>, TpmError> {
    let certificate = ek::retrieve_ek_pubcert(
        context,
        tss_esapi::abstraction::AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
    )
    .map_err(device(
        "reading the endorsement key's certificate from NV",
        index,
    ))?;
    let (ek, public) = rsa_endorsement_key(context, index)?;
    flush_key(context, ek);
    // Intermediate CAs given with the roots build the path, as at a security module.
    let (roots, intermediates) = crate::enrollment::split_manufacturer_cas(&genuine.anchors);
    crate::enrollment::verify_ek(
        &certificate,
        &public,
        &roots,
        &intermediates,
        &genuine.crls,
        genuine.at,
        &mut crate::cache::VerifiedEkCache::default(),
    )
    .map_err(|e| {
        TpmError::Device(format!(
            "the TPM keeping the counter is not vouched for: {e}"
        ))
    })?;
    Ok(public)
}

/// An HMAC session salted to the TPM's endorsement key (the verified RSA one when
/// `verified_ek` names it, else the ECC one), with parameter encryption both ways and
/// continueSession. The salt travels encrypted to a key only the TPM holds, so the
/// session key is secret from whoever relays the TPM's traffic: it keys the commands'
/// and answers' HMACs (with the index's authorization value) and the encryption of
/// their first parameter (the authorization value when the index is defined, the
/// counter's value after). An unsalted session's key would be computable from the
/// nonces on the wire.
fn salted_session(
    context: &mut Context,
    index: u32,
    verified_ek: Option<&[u8]>,
) -> Result<AuthSession, TpmError> {
    let ek = match verified_ek {
        Some(expected) => {
            let (ek, public) = rsa_endorsement_key(context, index)?;
            if public != expected {
                flush_key(context, ek);
                return Err(TpmError::Device(
                    "the TPM's endorsement key is not the one verified when the counter was opened"
                        .into(),
                ));
            }
            ek
        }
        None => ek::create_ek_object(context, AsymmetricAlgorithm::Ecc, None).map_err(device(
            "making the TPM's ECC endorsement key to salt a session",
            index,
        ))?,
    };
    let started = context.start_auth_session(
        Some(ek),
        None,
        None,
        SessionType::Hmac,
        SymmetricDefinition::AES_128_CFB,
        HashingAlgorithm::Sha256,
    );
    flush_key(context, ek);
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

fn flush_key(context: &mut Context, key: KeyHandle) {
    if let Err(e) = context.flush_context(key.into()) {
        tracing::warn!("TPM flush of the endorsement key failed: {e}");
    }
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
