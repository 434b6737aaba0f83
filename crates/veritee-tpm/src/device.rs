//! The target's own TPM, driven through `tss-esapi` (libtss2): the keys it enrolls
//! with, its answers to a security module's challenges, and the decryption of a seed
//! under the PCR policy.
//!
//! Keys: the endorsement key (EK) and a storage root key (SRK) are primaries, which the
//! TPM derives again from their templates (the same keys each time); the attestation
//! key (AK, under the EK) and the storage key (under the SRK) are created once, and
//! their blobs ([`TpmKeys`]) are kept by the caller: they are encrypted by the TPM and
//! load only into it. swtpm holds three transient objects at most, so every operation
//! loads what it needs and flushes it before it returns.
//!
//! Deriving an RSA primary is a search for primes: most of an operation's time on
//! swtpm, and seconds on some device TPMs. So when the target's keys are created, the
//! two primaries are made persistent where the TCG's provisioning guidance puts them
//! ([`EK_HANDLE`], [`SRK_HANDLE`]), or the keys already there are adopted if they are
//! the very keys the templates make (same name). [`TpmKeys`] records their names, and
//! an operation uses a persistent primary only while its name is still that one; a
//! handle that is taken by another key, an owner authorization we do not have, or a
//! key that changed since leaves the operation making its primary as before, with a
//! warning: slower, never another key.
//!
//! The storage key is an RSA-2048 decryption key: fixedTPM and fixedParent (it never
//! leaves this TPM), userWithAuth clear and an authPolicy of TPM2_PolicyPCR over the
//! PCRs' values when it was created, so the TPM decrypts with it only while the
//! platform is in that measured state. Any software in that state may ask it to: what
//! a security module seals to this key is therefore itself sealed to the target
//! enclave's own key inside (see `veritee_workload::Authorization::issue_to_tpm`), and
//! what the TPM returns is still ciphertext to everyone but that enclave.

use crate::enrollment::TpmEnrollmentEvidence;
use crate::{TpmError, credential::CredentialChallenge};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use tss_esapi::Context;
use tss_esapi::abstraction::{ak, ek};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PcrHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{
    AsymmetricAlgorithm, HashingAlgorithm, PublicAlgorithm, SignatureSchemeAlgorithm,
};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, Digest, DigestValues, EncryptedSecret, HashScheme, IdObject,
    PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private, Public, PublicBuilder,
    PublicKeyRsa, PublicRsaParametersBuilder, RsaDecryptionScheme, RsaExponent, RsaScheme,
    SignatureScheme, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use zeroize::Zeroizing;

/// Most PCRs a storage key's policy may name (one TPM2_PCR_Read returns eight).
pub const MAX_POLICY_PCRS: usize = 8;

/// Where the RSA-2048 EK persists (TCG EK Credential Profile, 2.3.1).
pub const EK_HANDLE: u32 = 0x8101_0001;
/// Where the SRK persists (TCG TPM v2.0 Provisioning Guidance, 7.8).
pub const SRK_HANDLE: u32 = 0x8100_0001;

/// The two primary keys a target uses.
#[derive(Debug, Clone, Copy)]
enum PrimaryKind {
    Endorsement,
    Storage,
}

impl PrimaryKind {
    fn persistent_handle(self) -> u32 {
        match self {
            Self::Endorsement => EK_HANDLE,
            Self::Storage => SRK_HANDLE,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Endorsement => "endorsement key",
            Self::Storage => "storage root key",
        }
    }
}

/// A primary key loaded for one operation: its persistent copy (closed, not flushed,
/// after use) or one made from its template (flushed).
#[derive(Clone, Copy)]
struct Primary {
    handle: KeyHandle,
    persistent: bool,
}

fn device(what: &str) -> impl Fn(tss_esapi::Error) -> TpmError + '_ {
    move |e| TpmError::Device(format!("{what}: {e}"))
}

/// The blobs of the keys a target created once: the TPM encrypted their private parts
/// under their parents, so they load into this TPM only.
#[derive(Clone, Serialize, Deserialize)]
pub struct TpmKeys {
    /// AK private blob (TPM2B_PRIVATE contents).
    pub ak_private: Vec<u8>,
    /// AK public area (TPMT_PUBLIC).
    pub ak_public: Vec<u8>,
    /// Storage key private blob.
    pub storage_private: Vec<u8>,
    /// Storage key public area (TPMT_PUBLIC).
    pub storage_public: Vec<u8>,
    /// The SHA-256 PCRs the storage key's policy covers, ascending.
    pub pcrs: Vec<u32>,
    /// The name of the EK persisted at [`EK_HANDLE`] when these keys were made, if it
    /// was: operations use it there while its name is this one.
    #[serde(default)]
    pub ek_name: Option<Vec<u8>>,
    /// The name of the SRK persisted at [`SRK_HANDLE`], likewise.
    #[serde(default)]
    pub srk_name: Option<Vec<u8>>,
}

/// `pcrs` as a storage key's policy takes them: ascending, each once, none that any
/// software may reset (16, 23), 1 to [`MAX_POLICY_PCRS`] of them.
pub fn normalize_pcrs(pcrs: &[u32]) -> Result<Vec<u32>, TpmError> {
    let mut out = pcrs.to_vec();
    out.sort_unstable();
    out.dedup();
    if out.is_empty() || out.len() > MAX_POLICY_PCRS {
        return Err(TpmError::Device(format!(
            "a storage key's policy names 1 to {MAX_POLICY_PCRS} PCRs, not {}",
            out.len()
        )));
    }
    if let Some(pcr) = out
        .iter()
        .find(|p| crate::policy::RESETTABLE_PCRS.contains(p))
    {
        return Err(TpmError::Device(format!(
            "PCR {pcr} can be reset by any software: it measures nothing a policy can rest on"
        )));
    }
    if let Some(pcr) = out.iter().find(|p| **p > 23) {
        return Err(TpmError::Device(format!(
            "PCR {pcr} does not exist (0 to 23)"
        )));
    }
    Ok(out)
}

impl core::fmt::Debug for TpmKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TpmKeys")
            .field("pcrs", &self.pcrs)
            .finish_non_exhaustive()
    }
}

/// A connection to the target's TPM.
pub struct TargetTpm {
    context: Context,
}

fn pcr_selection(pcrs: &[u32]) -> Result<PcrSelectionList, TpmError> {
    let slots = normalize_pcrs(pcrs)?
        .into_iter()
        .map(|index| {
            PcrSlot::try_from(1u32 << index)
                .map_err(|e| TpmError::Device(format!("PCR {index}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(device("PCR selection"))
}

fn srk_template() -> Result<Public, TpmError> {
    tss_esapi::utils::create_restricted_decryption_rsa_public(
        SymmetricDefinitionObject::AES_128_CFB,
        RsaKeyBits::Rsa2048,
        RsaExponent::default(),
    )
    .map_err(device("SRK template"))
}

impl TargetTpm {
    /// Connects through `tcti` (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`...).
    pub fn open(tcti: &str) -> Result<Self, TpmError> {
        let conf = TctiNameConf::from_str(tcti)
            .map_err(|e| TpmError::Device(format!("TCTI {tcti:?} is not valid: {e}")))?;
        let context = Context::new(conf)
            .map_err(|e| TpmError::Device(format!("connecting to {tcti}: {e}")))?;
        Ok(Self { context })
    }

    /// A SHA-256 session with AES-128-CFB parameter encryption, salted to `salt_key`
    /// if given.
    fn start_session(
        &mut self,
        salt_key: Option<KeyHandle>,
        kind: SessionType,
        what: &str,
    ) -> Result<AuthSession, TpmError> {
        self.context
            .start_auth_session(
                salt_key,
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(|e| TpmError::Device(format!("starting {what}: {e}")))?
            .ok_or_else(|| TpmError::Device(format!("the TPM returned no session for {what}")))
    }

    fn flush(&mut self, handle: impl Into<ObjectHandle>) {
        // A flush that fails leaves a transient object until the TPM's next reset;
        // nothing secret, and the next operation reports the TPM full if it matters.
        if let Err(e) = self.context.flush_context(handle.into()) {
            tracing::warn!("TPM flush failed: {e}");
        }
    }

    /// Makes `kind` from its template: the TPM derives the same key each time.
    fn make_primary(&mut self, kind: PrimaryKind) -> Result<KeyHandle, TpmError> {
        match kind {
            PrimaryKind::Endorsement => {
                ek::create_ek_object(&mut self.context, AsymmetricAlgorithm::Rsa, None)
                    .map_err(device("creating the endorsement key"))
            }
            PrimaryKind::Storage => {
                let template = srk_template()?;
                self.context
                    .execute_with_nullauth_session(|ctx| {
                        ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
                    })
                    .map(|r| r.key_handle)
                    .map_err(device("creating the storage root key"))
            }
        }
    }

    /// The object at `kind`'s persistent handle, if any, with its name.
    fn persisted(&mut self, kind: PrimaryKind) -> Option<(ObjectHandle, Vec<u8>)> {
        let handle = PersistentTpmHandle::new(kind.persistent_handle()).ok()?;
        // Asked first, because libtss2 logs an error for a read of an empty handle.
        let listed = self
            .context
            .execute_without_session(|ctx| {
                ctx.get_capability(CapabilityType::Handles, kind.persistent_handle(), 1)
            })
            .ok()?;
        let CapabilityData::Handles(list) = listed.0 else {
            return None;
        };
        if list.first() != Some(&TpmHandle::Persistent(handle)) {
            return None;
        }
        let object = self
            .context
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(handle)))
            .ok()?;
        match self.context.tr_get_name(object) {
            Ok(name) => Some((object, name.value().to_vec())),
            Err(e) => {
                tracing::warn!("reading the name of the TPM's {}: {e}", kind.what());
                self.close(object);
                None
            }
        }
    }

    fn close(&mut self, object: ObjectHandle) {
        let mut object = object;
        if let Err(e) = self.context.tr_close(&mut object) {
            tracing::warn!("closing a TPM handle failed: {e}");
        }
    }

    /// `kind` for one operation: the persistent copy whose name is `expected`, or, if
    /// there is none (or another key sits at its handle), the key made again.
    fn primary(&mut self, kind: PrimaryKind, expected: Option<&[u8]>) -> Result<Primary, TpmError> {
        if let Some(expected) = expected {
            match self.persisted(kind) {
                Some((object, name)) if name == expected => {
                    return Ok(Primary {
                        handle: KeyHandle::from(object),
                        persistent: true,
                    });
                }
                Some((object, _)) => {
                    self.close(object);
                    tracing::warn!(
                        "the TPM's {} at {:#x} is no longer the key this target's keys were made under; making it from its template",
                        kind.what(),
                        kind.persistent_handle()
                    );
                }
                None => tracing::warn!(
                    "the TPM's {} is gone from {:#x}; making it from its template",
                    kind.what(),
                    kind.persistent_handle()
                ),
            }
        }
        Ok(Primary {
            handle: self.make_primary(kind)?,
            persistent: false,
        })
    }

    fn release(&mut self, primary: Primary) {
        if primary.persistent {
            self.close(primary.handle.into());
        } else {
            self.flush(primary.handle);
        }
    }

    /// Makes `made` (a primary of `kind` just made from its template) persistent at
    /// its handle, or finds it there already; its name if either, None (with a
    /// warning) if the handle holds another key or the TPM refuses.
    fn persist(&mut self, kind: PrimaryKind, made: KeyHandle) -> Option<Vec<u8>> {
        let name = match self.context.tr_get_name(made.into()) {
            Ok(name) => name.value().to_vec(),
            Err(e) => {
                tracing::warn!("reading the name of the TPM's {}: {e}", kind.what());
                return None;
            }
        };
        let at = kind.persistent_handle();
        if let Some((object, found)) = self.persisted(kind) {
            self.close(object);
            if found == name {
                return Some(name);
            }
            tracing::warn!(
                "{at:#x} holds another key than this TPM's {}: left as it is, and the key is made for each operation",
                kind.what()
            );
            return None;
        }
        let persistent = Persistent::Persistent(PersistentTpmHandle::new(at).ok()?);
        match self.context.execute_with_nullauth_session(|ctx| {
            ctx.evict_control(Provision::Owner, made.into(), persistent)
        }) {
            Ok(object) => {
                self.close(object);
                tracing::info!("made the TPM's {} persistent at {at:#x}", kind.what());
                Some(name)
            }
            Err(e) => {
                tracing::warn!(
                    "making the TPM's {} persistent at {at:#x} failed ({e}); it is made for each operation",
                    kind.what()
                );
                None
            }
        }
    }

    fn load_ak(&mut self, keys: &TpmKeys) -> Result<KeyHandle, TpmError> {
        let private = Private::try_from(keys.ak_private.clone()).map_err(device("AK blob"))?;
        let public = Public::unmarshall(&keys.ak_public).map_err(device("AK public area"))?;
        let ek = self.primary(PrimaryKind::Endorsement, keys.ek_name.as_deref())?;
        let ak = ak::load_ak(&mut self.context, ek.handle, None, private, public);
        self.release(ek);
        ak.map_err(device("loading the attestation key"))
    }

    /// Loads the storage key; returns it with the SRK, which the caller releases too.
    fn load_storage(&mut self, keys: &TpmKeys) -> Result<(KeyHandle, Primary), TpmError> {
        let private =
            Private::try_from(keys.storage_private.clone()).map_err(device("storage key blob"))?;
        let public =
            Public::unmarshall(&keys.storage_public).map_err(device("storage key public area"))?;
        let srk = self.primary(PrimaryKind::Storage, keys.srk_name.as_deref())?;
        match self
            .context
            .execute_with_nullauth_session(|ctx| ctx.load(srk.handle, private, public))
        {
            Ok(key) => Ok((key, srk)),
            Err(e) => {
                self.release(srk);
                Err(device("loading the storage key")(e))
            }
        }
    }

    /// The policy digest of TPM2_PolicyPCR over `pcrs` at their current values.
    fn pcr_policy(&mut self, pcrs: &PcrSelectionList) -> Result<Digest, TpmError> {
        let session = self.start_session(None, SessionType::Trial, "a trial session")?;
        let digest = PolicySession::try_from(session)
            .map_err(device("trial session"))
            .and_then(|policy| {
                self.context
                    .policy_pcr(policy, Digest::default(), pcrs.clone())
                    .and_then(|()| self.context.policy_get_digest(policy))
                    .map_err(device("computing the PCR policy"))
            });
        self.flush(tss_esapi::handles::SessionHandle::from(session));
        digest
    }

    /// Creates the AK and a storage key bound to `pcrs` (SHA-256 bank) at their
    /// current values, and makes the EK and SRK persistent if they can be (see the
    /// module documentation). Done once per target; a rotation makes a new storage key.
    pub fn create_keys(&mut self, pcrs: &[u32]) -> Result<TpmKeys, TpmError> {
        let pcrs = normalize_pcrs(pcrs)?;
        let selection = pcr_selection(&pcrs)?;
        let ek = self.make_primary(PrimaryKind::Endorsement)?;
        let ek_name = self.persist(PrimaryKind::Endorsement, ek);
        let created = ak::create_ak(
            &mut self.context,
            ek,
            HashingAlgorithm::Sha256,
            SignatureSchemeAlgorithm::RsaSsa,
            None,
            None,
        );
        self.flush(ek);
        let ak = created.map_err(device("creating the attestation key"))?;
        let srk = self.make_primary(PrimaryKind::Storage)?;
        let srk_name = self.persist(PrimaryKind::Storage, srk);
        let storage = self.create_storage_key(&selection, srk);
        self.flush(srk);
        let storage = storage?;
        Ok(TpmKeys {
            ak_private: ak.out_private.value().to_vec(),
            ak_public: ak.out_public.marshall().map_err(device("AK public area"))?,
            storage_private: storage.0,
            storage_public: storage.1,
            pcrs,
            ek_name,
            srk_name,
        })
    }

    /// A new storage key under the same PCR selection (deprovisioning). The old key's
    /// blob still loads into this TPM (the SRK is the same), so what was sealed to it
    /// is revoked by the inner layer: the caller rotates its own key as well.
    pub fn rotate_storage_key(&mut self, keys: &TpmKeys) -> Result<TpmKeys, TpmError> {
        let selection = pcr_selection(&keys.pcrs)?;
        let srk = self.primary(PrimaryKind::Storage, keys.srk_name.as_deref())?;
        let created = self.create_storage_key(&selection, srk.handle);
        self.release(srk);
        let (private, public) = created?;
        Ok(TpmKeys {
            storage_private: private,
            storage_public: public,
            ..keys.clone()
        })
    }

    /// A storage key under `srk`, which the caller releases.
    fn create_storage_key(
        &mut self,
        selection: &PcrSelectionList,
        srk: KeyHandle,
    ) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
        let policy = self.pcr_policy(selection)?;
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(false)
            .with_decrypt(true)
            .with_sign_encrypt(false)
            .with_restricted(false)
            .build()
            .map_err(device("storage key attributes"))?;
        let parameters = PublicRsaParametersBuilder::new()
            .with_scheme(RsaScheme::Null)
            .with_key_bits(RsaKeyBits::Rsa2048)
            .with_exponent(RsaExponent::default())
            .with_is_decryption_key(true)
            .with_restricted(false)
            .build()
            .map_err(device("storage key parameters"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_auth_policy(policy)
            .with_rsa_parameters(parameters)
            .with_rsa_unique_identifier(PublicKeyRsa::default())
            .build()
            .map_err(device("storage key template"))?;
        let created = self
            .context
            .execute_with_nullauth_session(|ctx| ctx.create(srk, public, None, None, None, None))
            .map_err(device("creating the storage key"))?;
        Ok((
            created.out_private.value().to_vec(),
            created
                .out_public
                .marshall()
                .map_err(device("storage key public area"))?,
        ))
    }

    /// The RSA endorsement key's certificate (DER), as the manufacturer stored it in NV.
    pub fn ek_certificate(&mut self) -> Result<Vec<u8>, TpmError> {
        ek::retrieve_ek_pubcert(
            &mut self.context,
            tss_esapi::abstraction::AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        )
        .map_err(device("reading the EK certificate from NV"))
    }

    /// The answer to an enrollment challenge: EK certificate and public area, the AK,
    /// the storage key certified by the AK over `nonce`, and a quote of the policy's
    /// PCRs over `nonce` with their values.
    pub fn enrollment_evidence(
        &mut self,
        keys: &TpmKeys,
        nonce: &[u8],
    ) -> Result<TpmEnrollmentEvidence, TpmError> {
        let selection = pcr_selection(&keys.pcrs)?;
        let qualifying = Data::try_from(nonce.to_vec()).map_err(device("nonce"))?;
        let ek_certificate = self.ek_certificate()?;
        let ek = self.primary(PrimaryKind::Endorsement, keys.ek_name.as_deref())?;
        let ek_public = self
            .context
            .read_public(ek.handle)
            .map(|(public, _, _)| public)
            .map_err(device("reading the EK public area"));
        self.release(ek);
        let ek_public = ek_public?.marshall().map_err(device("EK public area"))?;
        let ak = self.load_ak(keys)?;
        let result = self.certify_and_quote(ak, keys, qualifying, selection);
        self.flush(ak);
        let (certify, quote, pcr_values) = result?;
        Ok(TpmEnrollmentEvidence {
            ek_certificate,
            ek_public,
            ak_public: keys.ak_public.clone(),
            storage_public: keys.storage_public.clone(),
            certify_attest: certify.0,
            certify_signature: certify.1,
            quote_attest: quote.0,
            quote_signature: quote.1,
            pcr_values,
        })
    }

    #[allow(clippy::type_complexity)]
    fn certify_and_quote(
        &mut self,
        ak: KeyHandle,
        keys: &TpmKeys,
        qualifying: Data,
        selection: PcrSelectionList,
    ) -> Result<((Vec<u8>, Vec<u8>), (Vec<u8>, Vec<u8>), Vec<Vec<u8>>), TpmError> {
        let (storage, srk) = self.load_storage(keys)?;
        self.release(srk);
        let certified = self.context.execute_with_sessions(
            (
                Some(AuthSession::Password),
                Some(AuthSession::Password),
                None,
            ),
            |ctx| {
                ctx.certify(
                    storage.into(),
                    ak,
                    qualifying.clone(),
                    SignatureScheme::Null,
                )
            },
        );
        self.flush(storage);
        let (attest, signature) = certified.map_err(device("certifying the storage key"))?;
        let certify = (
            attest.marshall().map_err(device("certify attest"))?,
            signature.marshall().map_err(device("certify signature"))?,
        );
        let (attest, signature) = self
            .context
            .execute_with_nullauth_session(|ctx| {
                ctx.quote(ak, qualifying, SignatureScheme::Null, selection.clone())
            })
            .map_err(device("quoting the PCRs"))?;
        let quote = (
            attest.marshall().map_err(device("quote attest"))?,
            signature.marshall().map_err(device("quote signature"))?,
        );
        let values = self.read_selection(selection)?;
        Ok((certify, quote, values))
    }

    /// The current values of SHA-256 PCRs `pcrs` (what an owner's sealing policy
    /// names), by PCR, ascending.
    pub fn read_pcrs(&mut self, pcrs: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, TpmError> {
        let pcrs = normalize_pcrs(pcrs)?;
        let values = self.read_selection(pcr_selection(&pcrs)?)?;
        Ok(pcrs.into_iter().zip(values).collect())
    }

    fn read_selection(&mut self, selection: PcrSelectionList) -> Result<Vec<Vec<u8>>, TpmError> {
        let (_, read, digests) = self
            .context
            .execute_without_session(|ctx| ctx.pcr_read(selection.clone()))
            .map_err(device("reading the PCRs"))?;
        if read != selection {
            return Err(TpmError::Device(
                "the TPM read other PCRs than those asked for".into(),
            ));
        }
        Ok(digests.value().iter().map(|d| d.to_vec()).collect())
    }

    /// TPM2_ActivateCredential: opens the security module's challenge with the EK,
    /// for the AK it names. Only the TPM holding that EK, with that AK loaded, can.
    pub fn activate_credential(
        &mut self,
        keys: &TpmKeys,
        challenge: &CredentialChallenge,
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let blob = IdObject::try_from(challenge.credential_blob.clone())
            .map_err(device("credential blob"))?;
        let secret = EncryptedSecret::try_from(challenge.encrypted_secret.clone())
            .map_err(device("encrypted secret"))?;
        let ak = self.load_ak(keys)?;
        let ek = match self.primary(PrimaryKind::Endorsement, keys.ek_name.as_deref()) {
            Ok(ek) => ek,
            Err(e) => {
                self.flush(ak);
                return Err(e);
            }
        };
        let result = self.endorsement_session().and_then(|session| {
            let out = self
                .context
                .execute_with_sessions((Some(AuthSession::Password), Some(session), None), |ctx| {
                    ctx.activate_credential(ak, ek.handle, blob, secret)
                })
                .map_err(device("activating the credential"));
            self.flush(tss_esapi::handles::SessionHandle::from(session));
            out
        });
        self.release(ek);
        self.flush(ak);
        Ok(Zeroizing::new(result?.to_vec()))
    }

    /// A policy session satisfying the EK's policy (TPM2_PolicySecret on the
    /// endorsement hierarchy).
    fn endorsement_session(&mut self) -> Result<AuthSession, TpmError> {
        let session =
            self.start_session(None, SessionType::Policy, "the endorsement policy session")?;
        let satisfied = PolicySession::try_from(session)
            .and_then(|policy| {
                self.context.execute_with_nullauth_session(|ctx| {
                    ctx.policy_secret(
                        policy,
                        tss_esapi::handles::AuthHandle::Endorsement,
                        Default::default(),
                        Default::default(),
                        Default::default(),
                        None,
                    )
                })
            })
            .map_err(device("satisfying the EK policy"));
        match satisfied {
            Ok(_) => Ok(session),
            Err(e) => {
                self.flush(tss_esapi::handles::SessionHandle::from(session));
                Err(e)
            }
        }
    }

    /// Decrypts `ciphertext` (RSA-OAEP-SHA256 under `label`) with the storage key, in
    /// a PCR policy session: the TPM refuses unless the PCRs hold the values the key
    /// was created under. The session is salted to the SRK and encrypts the response;
    /// the SRK's public key comes through the transport, so that encryption is a
    /// precaution, not what the secrecy rests on (the plaintext is itself sealed to the
    /// caller's key: see the module documentation).
    pub fn decrypt(
        &mut self,
        keys: &TpmKeys,
        ciphertext: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let selection = pcr_selection(&keys.pcrs)?;
        let cipher = PublicKeyRsa::try_from(ciphertext.to_vec()).map_err(device("ciphertext"))?;
        let label = Data::try_from(label.to_vec()).map_err(device("OAEP label"))?;
        let (storage, srk) = self.load_storage(keys)?;
        let result = self.pcr_session(srk.handle, selection).and_then(|session| {
            let out = self
                .context
                .execute_with_session(Some(session), |ctx| {
                    ctx.rsa_decrypt(
                        storage,
                        cipher,
                        RsaDecryptionScheme::Oaep(HashScheme::new(HashingAlgorithm::Sha256)),
                        label,
                    )
                })
                .map_err(device(
                    "decrypting with the storage key (refused if the PCRs moved since enrollment)",
                ));
            self.flush(tss_esapi::handles::SessionHandle::from(session));
            out
        });
        self.flush(storage);
        self.release(srk);
        Ok(Zeroizing::new(result?.value().to_vec()))
    }

    fn pcr_session(
        &mut self,
        salt_key: KeyHandle,
        selection: PcrSelectionList,
    ) -> Result<AuthSession, TpmError> {
        let session = self.start_session(
            Some(salt_key),
            SessionType::Policy,
            "the PCR policy session",
        )?;
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_decrypt(true)
            .with_encrypt(true)
            .build();
        let satisfied = self
            .context
            .tr_sess_set_attributes(session, attributes, mask)
            .and_then(|()| PolicySession::try_from(session))
            .and_then(|policy| {
                self.context
                    .policy_pcr(policy, Digest::default(), selection)
            })
            .map_err(device("satisfying the PCR policy"));
        match satisfied {
            Ok(()) => Ok(session),
            Err(e) => {
                self.flush(tss_esapi::handles::SessionHandle::from(session));
                Err(e)
            }
        }
    }

    /// Extends SHA-256 PCR `index` with `digest`, as measured boot does: a test or a
    /// demo moves the platform out of the state its storage key is bound to.
    pub fn extend_pcr(&mut self, index: u32, digest: [u8; 32]) -> Result<(), TpmError> {
        let handle = PcrHandle::try_from(index)
            .map_err(|e| TpmError::Device(format!("PCR {index}: {e}")))?;
        let mut values = DigestValues::new();
        values.set(
            HashingAlgorithm::Sha256,
            Digest::try_from(digest.to_vec()).map_err(device("PCR digest"))?,
        );
        self.context
            .execute_with_nullauth_session(|ctx| ctx.pcr_extend(handle, values))
            .map_err(device("extending the PCR"))
    }
}
