//! The Confidential Containers KBS protocol (see `veritee-kbs`): guests' handshakes,
//! resources released to attested guests under the resource policy, and the admin's
//! management of both.
//!
//! Everything that decides is here, inside the enclave: the challenge's nonce, the
//! evidence's verification and its binding to the guest's key, the resource policy
//! (veritee's appraisal policy), the admin's token (checked against the admin key the
//! enclave was launched with, which is part of its measured configuration), and the
//! JWE that carries a resource to the guest's key. The host passes bodies, cookies and
//! bearer tokens through as they came.
//!
//! Resources and the policy are sealed records of the node's `kbs` namespace, so they
//! share the sealed state's rollback protection. Every release is audited before the
//! resource leaves, every refusal and every change as it is made.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use time::OffsetDateTime;
use veritee_attest::{Claims, TrustAnchors};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_kbs::kbs_types::{Challenge, Tee, TeePubKey};
use veritee_kbs::resource::{MAX_RESOURCE_LEN, PolicyScope, ResourcePath};
use veritee_kbs::{KbsError, jwe, protocol, token};
use veritee_policy::AppraisalPolicy;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, KbsCall, KbsReply};

/// The store namespace of the broker's records.
const KBS_NS: &str = "kbs";
/// The record holding the resource policy that applies to everything (an appraisal
/// policy, TOML or JSON); a repository's or a resource's is `resource-policy/SCOPE`.
const POLICY_KEY: &str = "resource-policy";

fn policy_key(scope: &PolicyScope) -> String {
    match scope {
        PolicyScope::Everything => POLICY_KEY.into(),
        other => format!("{POLICY_KEY}/{}", other.name()),
    }
}
/// How long a session lasts from its challenge (Trustee's default, five minutes).
pub const SESSION_LIFETIME: time::Duration = time::Duration::minutes(5);
/// Sessions held at once; past it the one closest to expiry goes.
pub const MAX_SESSIONS: usize = 4096;
/// What the audit log names as the party of a guest's or the admin's action.
const GUEST: &str = "kbs-guest";
const ADMIN: &str = "kbs-admin";

fn resource_key(path: &ResourcePath) -> String {
    format!("resource/{path}")
}

enum Stage {
    Challenged {
        tee: Tee,
        challenge: Challenge,
    },
    Attested {
        claims: Box<Claims>,
        devices: Vec<Claims>,
        tee_pubkey: TeePubKey,
        token: String,
    },
}

struct Session {
    stage: Stage,
    expires: OffsetDateTime,
}

/// The broker's memory: sessions, the key its tokens are signed with, and the
/// resource policy as last read or set.
#[derive(Default)]
pub(crate) struct KbsState {
    /// The admin's Ed25519 key, from the measured launch configuration.
    pub(crate) admin_key: Option<[u8; 32]>,
    sessions: HashMap<String, Session>,
    /// Session ids in the order they were created, which is the order they expire in
    /// (every session lives SESSION_LIFETIME): expired and surplus sessions leave from
    /// the front, without scanning the table. Ids already gone are skipped.
    by_age: VecDeque<(String, OffsetDateTime)>,
    token_key: Option<Arc<EcdsaSigningKey>>,
    /// Resource policies as read, parsed, by record key (`None`: no such policy). Only
    /// this enclave writes the records, and it forgets these copies when it does.
    policies: HashMap<String, Option<Arc<AppraisalPolicy>>>,
    /// Counts the policies' changes, so that a copy read before a change is not kept
    /// after it.
    policy_changes: u64,
}

impl KbsState {
    fn insert(&mut self, id: String, session: Session, now: OffsetDateTime) {
        while let Some((oldest, expires)) = self.by_age.front() {
            let expired = *expires <= now;
            if !expired && self.sessions.len() < MAX_SESSIONS {
                break;
            }
            if self
                .sessions
                .get(oldest)
                .is_some_and(|s| s.expires == *expires)
            {
                self.sessions.remove(oldest);
            }
            self.by_age.pop_front();
        }
        self.by_age.push_back((id.clone(), session.expires));
        self.sessions.insert(id, session);
    }
}

/// How a KBS refusal maps onto the protocol's statuses: a guest that is not (or no
/// longer) attested gets 401, which tells CoCo clients to run the handshake again.
fn refused(e: KbsError) -> EnclaveFailure {
    let kind = match e {
        KbsError::Token(_) => FailureKind::Unauthorized,
        KbsError::Crypto(_) => FailureKind::Internal,
        _ => FailureKind::BadRequest,
    };
    failure(kind, e.to_string())
}

fn unauthorized(m: impl Into<String>) -> EnclaveFailure {
    failure(FailureKind::Unauthorized, m)
}

fn json(body: &impl serde::Serialize) -> Result<Vec<u8>, EnclaveFailure> {
    serde_json::to_vec(body).map_err(internal)
}

/// Checks that the evidence binds the init-data the guest sent: the digest must be
/// what the TEE's configuration field holds, or what its TPM's init-data PCR was
/// extended with (see [`protocol::InitDataBinding`]). The sample TEE signs nothing, so
/// its init-data is only recorded (in the token, as unverified); a kind whose binding
/// this broker does not know refuses init-data rather than vouch for it.
fn check_init_data(
    kind: veritee_attest::TeeKind,
    claims: &Claims,
    digest: &[u8],
) -> Result<(), EnclaveFailure> {
    use protocol::InitDataBinding;
    if kind == veritee_attest::TeeKind::CocoSample {
        return Ok(());
    }
    let Some(binding) = protocol::init_data_binding(kind) else {
        return Err(bad(format!(
            "the guest sent init-data, which this broker cannot check against {kind} evidence"
        )));
    };
    let (name, bound, expected) = match binding {
        InitDataBinding::Field(name) => {
            // A measurement (TDX's MRCONFIGID) or a detail (SNP's HOST_DATA, hex).
            let bound = claims
                .measurement(name)
                .map(<[u8]>::to_vec)
                .or_else(|| claims.details.get(name).and_then(|h| hex::decode(h).ok()))
                .unwrap_or_default();
            // Shorter digests (SHA-256) sit zero-padded in a longer field.
            let mut expected = digest.to_vec();
            expected.resize(bound.len().max(digest.len()), 0);
            (name.to_string(), bound, expected)
        }
        InitDataBinding::TpmPcr(index) => {
            let name = format!("pcr{index}");
            if digest.len() != 32 {
                return Err(bad(format!(
                    "{kind} evidence binds init-data by extending its SHA-256 digest into PCR {index}: this init-data names a digest of {} bytes (use algorithm = \"sha256\")",
                    digest.len()
                )));
            }
            let Some(bound) = claims.measurement(&name) else {
                return Err(unauthorized(format!(
                    "the guest sent init-data, but its TPM quote does not cover PCR {index}, which binds it"
                )));
            };
            let mut extended = [0u8; 64];
            extended[32..].copy_from_slice(digest);
            (
                name,
                bound.to_vec(),
                veritee_crypto::digest::sha256(&extended).to_vec(),
            )
        }
    };
    if !veritee_crypto::ct_eq(&bound, &expected) {
        return Err(unauthorized(format!(
            "the init-data's digest is not the evidence's {name}: the guest booted with other init-data"
        )));
    }
    Ok(())
}

impl EnclaveService {
    pub(crate) fn kbs(
        &self,
        call: KbsCall,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let reply = match call {
            KbsCall::Auth { body } => self.kbs_auth(&body)?,
            KbsCall::Attest {
                session,
                body,
                collateral,
            } => {
                let collateral = collateral.into_iter().map(|c| c.into_vec()).collect();
                self.kbs_attest(session.as_deref(), &body, collateral, link)?
            }
            KbsCall::Resource {
                session,
                bearer,
                path,
            } => self.kbs_resource(session.as_deref(), bearer.as_deref(), &path, link)?,
            KbsCall::Admin {
                bearer,
                method,
                path,
                body,
            } => self.kbs_admin(bearer.as_deref(), &method, &path, &body, link)?,
        };
        Ok(EnclaveReply::Kbs(reply))
    }

    /// The P-256 key EAR tokens are signed with, a sealed record of the node's.
    fn kbs_token_key(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<Arc<EcdsaSigningKey>, EnclaveFailure> {
        if let Some(key) = lock(&self.kbs).token_key.as_ref() {
            return Ok(Arc::clone(key));
        }
        let ns = format!("enclave/{}", self.node_id()?);
        let der = self.load_or_create(link, &ns, "kbs-token-key", || {
            EcdsaSigningKey::generate(EcdsaCurve::P256)
                .and_then(|k| k.to_pkcs8())
                .map_err(internal)
        })?;
        let key = Arc::new(
            EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, der.expose()).map_err(internal)?,
        );
        lock(&self.kbs).token_key = Some(Arc::clone(&key));
        Ok(key)
    }

    /// The resource policy of `scope`: the cached copy, else the sealed record, parsed.
    fn kbs_policy(
        &self,
        scope: &PolicyScope,
        link: &mut dyn HostLink,
    ) -> Result<Option<Arc<AppraisalPolicy>>, EnclaveFailure> {
        let key = policy_key(scope);
        let changes = {
            let state = lock(&self.kbs);
            if let Some(cached) = state.policies.get(&key) {
                return Ok(cached.clone());
            }
            state.policy_changes
        };
        let policy = match self.record_get(link, KBS_NS, &key)? {
            Some(text) => Some(Arc::new(
                std::str::from_utf8(text.expose())
                    .map_err(internal)
                    .and_then(|t| AppraisalPolicy::parse(t).map_err(internal))?,
            )),
            None => None,
        };
        let mut state = lock(&self.kbs);
        if state.policy_changes == changes {
            state.policies.insert(key, policy.clone());
        }
        Ok(policy)
    }

    /// The policy that judges a release of `path`: the resource's own, else its
    /// repository's, else the one for everything.
    fn kbs_policy_for(
        &self,
        path: &ResourcePath,
        link: &mut dyn HostLink,
    ) -> Result<Option<(PolicyScope, Arc<AppraisalPolicy>)>, EnclaveFailure> {
        for scope in PolicyScope::for_resource(path) {
            if let Some(policy) = self.kbs_policy(&scope, link)? {
                return Ok(Some((scope, policy)));
            }
        }
        Ok(None)
    }

    fn kbs_auth(&self, body: &[u8]) -> Result<KbsReply, EnclaveFailure> {
        let request = protocol::parse_request(body).map_err(refused)?;
        let nonce = veritee_crypto::rand::array::<{ protocol::NONCE_LEN }>().map_err(internal)?;
        let id = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
        let challenge = protocol::challenge(&nonce);
        let body = json(&challenge)?;
        let now = self.clock().now();
        let expires = now + SESSION_LIFETIME;
        lock(&self.kbs).insert(
            id.clone(),
            Session {
                stage: Stage::Challenged {
                    tee: request.tee,
                    challenge,
                },
                expires,
            },
            now,
        );
        Ok(KbsReply::Json {
            body,
            session: Some((id, expires.unix_timestamp())),
        })
    }

    fn kbs_attest(
        &self,
        session: Option<&str>,
        body: &[u8],
        mut collateral: Vec<Vec<u8>>,
        link: &mut dyn HostLink,
    ) -> Result<KbsReply, EnclaveFailure> {
        let id = session
            .ok_or_else(|| unauthorized("no kbs-session-id cookie: POST /kbs/v0/auth first"))?;
        let now = self.clock().now();
        let (tee, challenge, expires) = {
            let mut state = lock(&self.kbs);
            let Some(found) = state.sessions.get(id) else {
                return Err(unauthorized("no such KBS session: POST /kbs/v0/auth again"));
            };
            if found.expires <= now {
                state.sessions.remove(id);
                return Err(unauthorized(
                    "the KBS session expired: POST /kbs/v0/auth again",
                ));
            }
            match &found.stage {
                // As Trustee does: a session attested already answers with its token.
                Stage::Attested { token, .. } => {
                    return Ok(KbsReply::Json {
                        body: json(&serde_json::json!({ "token": token }))?,
                        session: Some((id.to_string(), found.expires.unix_timestamp())),
                    });
                }
                Stage::Challenged { tee, challenge } => (*tee, challenge.clone(), found.expires),
            }
        };
        let attestation = protocol::parse_attestation(body).map_err(refused)?;
        protocol::check_nonce(&attestation, &challenge).map_err(refused)?;
        let digest = protocol::runtime_data_digest(&attestation).map_err(refused)?;
        let mut evidence = protocol::primary_evidence(tee, &attestation).map_err(refused)?;
        let init_data_digest = attestation
            .init_data
            .as_ref()
            .map(protocol::init_data_digest)
            .transpose()
            .map_err(refused)?;
        // The operator's collateral, then what the evidence carries (an SNP guest's
        // endorsement key certificate): both are checked up to the vendor's root.
        collateral.append(&mut evidence.collateral);
        let verifiers = veritee_verify::Verifiers::default();
        let claims = verifiers
            .verify(&veritee_verify::VerifyRequest {
                evidence: &evidence.bytes,
                tee: Some(evidence.kind),
                collateral: &collateral,
                trust_anchors: &TrustAnchors::none(),
                expected_report_data: Some(&digest),
                at: now,
            })
            .map_err(|e| unauthorized(format!("the evidence does not verify: {e}")))?;
        if let Some(digest) = &init_data_digest {
            check_init_data(evidence.kind, &claims, digest)?;
        }
        let devices = protocol::additional_evidence(&attestation)
            .map_err(refused)?
            .iter()
            .map(|device| {
                verifiers
                    .verify(&veritee_verify::VerifyRequest {
                        evidence: &device.bytes,
                        tee: Some(device.kind),
                        collateral: &[],
                        trust_anchors: &TrustAnchors::none(),
                        expected_report_data: Some(&device.expected_report_data),
                        at: now,
                    })
                    .map_err(|e| {
                        unauthorized(format!("the {} evidence does not verify: {e}", device.kind))
                    })
            })
            .collect::<Result<Vec<Claims>, EnclaveFailure>>()?;
        let key = self.kbs_token_key(link)?;
        let token = token::issue_ear(
            &key,
            &token::EarInput {
                claims: &claims,
                devices: &devices,
                tee_pubkey: &attestation.runtime_data.tee_pubkey,
                nonce: &challenge.nonce,
                init_data_digest: init_data_digest.as_deref(),
                issued_at: now,
                lifetime: expires - now,
            },
        )
        .map_err(refused)?;
        let body = json(&serde_json::json!({ "token": token }))?;
        let mut state = lock(&self.kbs);
        // The session may have been evicted meanwhile; the token stands on its own.
        if let Some(session) = state.sessions.get_mut(id) {
            session.stage = Stage::Attested {
                claims: Box::new(claims),
                devices,
                tee_pubkey: attestation.runtime_data.tee_pubkey,
                token,
            };
        }
        Ok(KbsReply::Json {
            body,
            session: Some((id.to_string(), expires.unix_timestamp())),
        })
    }

    /// The attested guest a resource request speaks for: its session, else its token.
    fn kbs_guest(
        &self,
        session: Option<&str>,
        bearer: Option<&str>,
        link: &mut dyn HostLink,
    ) -> Result<token::AttestedGuest, EnclaveFailure> {
        let now = self.clock().now();
        if let Some(id) = session {
            let state = lock(&self.kbs);
            if let Some(Session {
                stage:
                    Stage::Attested {
                        claims,
                        devices,
                        tee_pubkey,
                        ..
                    },
                expires,
            }) = state.sessions.get(id)
                && *expires > now
            {
                return Ok(token::AttestedGuest {
                    claims: (**claims).clone(),
                    devices: devices.clone(),
                    tee_pubkey: tee_pubkey.clone(),
                    expires: expires.unix_timestamp(),
                });
            }
        }
        if let Some(token) = bearer {
            let key = self.kbs_token_key(link)?;
            return token::verify_ear(token, key.public_key_point(), now).map_err(refused);
        }
        Err(unauthorized(
            "no attested KBS session or attestation token: run /kbs/v0/auth and /kbs/v0/attest first",
        ))
    }

    fn kbs_resource(
        &self,
        session: Option<&str>,
        bearer: Option<&str>,
        path: &str,
        link: &mut dyn HostLink,
    ) -> Result<KbsReply, EnclaveFailure> {
        let path = ResourcePath::parse(path).map_err(refused)?;
        let guest = self.kbs_guest(session, bearer, link)?;
        let object = path.to_string();
        let Some((scope, policy)) = self.kbs_policy_for(&path, link)? else {
            self.audit(
                link,
                "kbs.resource.release",
                GUEST,
                &object,
                "refused: no resource policy",
            )?;
            return Err(unauthorized(
                "no resource policy is set on this broker, so no resource is released; the admin sets one (kbs-client set-resource-policy, veritee kbs set-policy)",
            ));
        };
        // Every piece of evidence the guest presented must meet the policy: its TEE's,
        // and each device's.
        let now = self.clock().now();
        let appraisals: Vec<_> = std::iter::once(&guest.claims)
            .chain(&guest.devices)
            .map(|claims| (claims.tee, policy.evaluate(claims, now)))
            .collect();
        let accepted = appraisals.iter().all(|(_, a)| a.accepted());
        let reasons: Vec<String> = appraisals
            .iter()
            .flat_map(|(kind, a)| {
                a.failed
                    .iter()
                    .map(move |f| format!("{kind}: {}: {}", f.criterion, f.reason))
            })
            .collect();
        if !accepted {
            self.audit(
                link,
                "kbs.resource.release",
                GUEST,
                &object,
                "refused: policy",
            )?;
            let which = match &scope {
                PolicyScope::Everything => "the resource policy".to_string(),
                other => format!("the resource policy of {}", other.name()),
            };
            return Err(unauthorized(format!(
                "{which} refuses this guest: {}",
                reasons.join("; ")
            )));
        }
        let Some(value) = self.record_get(link, KBS_NS, &resource_key(&path))? else {
            self.audit(
                link,
                "kbs.resource.release",
                GUEST,
                &object,
                "refused: not found",
            )?;
            return Err(failure(
                FailureKind::NotFound,
                format!("no resource {object}"),
            ));
        };
        // Sealed first, so a failure to seal is not audited as a release.
        let sealed = jwe::seal(&guest.tee_pubkey, value.expose()).map_err(refused)?;
        self.audit(link, "kbs.resource.release", GUEST, &object, "ok")?;
        Ok(KbsReply::Json {
            body: json(&sealed)?,
            session: None,
        })
    }

    fn kbs_admin(
        &self,
        bearer: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<KbsReply, EnclaveFailure> {
        let Some(admin_key) = lock(&self.kbs).admin_key else {
            return Err(failure(
                FailureKind::Unavailable,
                "this node was launched without a KBS admin key (veritee node --kbs-admin-key), so its KBS admin API is off",
            ));
        };
        let token =
            bearer.ok_or_else(|| unauthorized("the KBS admin API needs an admin bearer token"))?;
        token::verify_admin_token(token, &admin_key, self.clock().now()).map_err(refused)?;
        match (method, path) {
            ("POST", "resource-policy") => {
                /// Trustee's request, and veritee's scope: a repository or a resource
                /// (everything when absent).
                #[derive(serde::Deserialize)]
                struct SetPolicy {
                    policy: String,
                    #[serde(default)]
                    path: Option<String>,
                }
                let request: SetPolicy = serde_json::from_slice(body).map_err(|e| {
                    bad(format!(
                        "a policy request is {{\"policy\": base64url, \"path\"?: scope}}: {e}"
                    ))
                })?;
                let scope = PolicyScope::parse(request.path.as_deref()).map_err(refused)?;
                use base64::Engine;
                let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(request.policy.trim_end_matches('='))
                    .map_err(|e| bad(format!("the policy is not base64url: {e}")))?;
                let text = String::from_utf8(text).map_err(|_| bad("the policy is not UTF-8"))?;
                AppraisalPolicy::parse(&text).map_err(|e| {
                    bad(format!(
                        "{e} (veritee's KBS takes its appraisal policy, TOML or JSON, not Rego)"
                    ))
                })?;
                // Forgotten first: a write that fails midway must not leave a stale copy,
                // nor may a reader that read the old record before this write keep it.
                let forget = |state: &mut KbsState| {
                    state.policies.clear();
                    state.policy_changes += 1;
                };
                let key = policy_key(&scope);
                forget(&mut lock(&self.kbs));
                self.record_put(link, KBS_NS, &key, text.as_bytes())?;
                forget(&mut lock(&self.kbs));
                self.audit(link, "kbs.policy.set", ADMIN, &key, "ok")?;
                Ok(KbsReply::Done)
            }
            ("DELETE", "resource-policy") => {
                #[derive(serde::Deserialize)]
                struct DeletePolicy {
                    #[serde(default)]
                    path: Option<String>,
                }
                let request: DeletePolicy = serde_json::from_slice(body)
                    .map_err(|e| bad(format!("a policy deletion is {{\"path\"?: scope}}: {e}")))?;
                let scope = PolicyScope::parse(request.path.as_deref()).map_err(refused)?;
                let key = policy_key(&scope);
                let deleted = self.record_delete(link, KBS_NS, &key)?;
                {
                    let mut state = lock(&self.kbs);
                    state.policies.clear();
                    state.policy_changes += 1;
                }
                self.audit(
                    link,
                    "kbs.policy.delete",
                    ADMIN,
                    &key,
                    if deleted { "ok" } else { "not found" },
                )?;
                if deleted {
                    Ok(KbsReply::Done)
                } else {
                    Err(failure(FailureKind::NotFound, format!("no policy {key}")))
                }
            }
            ("GET", "resource-policy") => {
                let mut scoped = serde_json::Map::new();
                let mut everything = None;
                for key in self.record_keys(link, KBS_NS, POLICY_KEY)? {
                    let Some(text) = self.record_get(link, KBS_NS, &key)? else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(text.expose()).into_owned();
                    match key.strip_prefix(&format!("{POLICY_KEY}/")) {
                        Some(scope) => {
                            scoped.insert(scope.to_string(), text.into());
                        }
                        None if key == POLICY_KEY => everything = Some(text),
                        None => {}
                    }
                }
                Ok(KbsReply::Json {
                    body: json(&serde_json::json!({ "policy": everything, "scoped": scoped }))?,
                    session: None,
                })
            }
            ("GET", "resources") => {
                let paths: Vec<String> = self
                    .record_keys(link, KBS_NS, "resource/")?
                    .into_iter()
                    .filter_map(|k| k.strip_prefix("resource/").map(str::to_string))
                    .collect();
                Ok(KbsReply::Json {
                    body: json(&paths)?,
                    session: None,
                })
            }
            ("POST", path) if path.starts_with("sealed-resource/") => {
                let resource =
                    ResourcePath::parse(&path["sealed-resource/".len()..]).map_err(refused)?;
                let object = resource.to_string();
                let node = self.node(link)?;
                let value = veritee_crypto::hpke::open(
                    &node.wrapping,
                    veritee_kbs::resource::SEALED_RESOURCE_INFO,
                    object.as_bytes(),
                    body,
                )
                .map_err(|_| {
                    bad(format!(
                        "the sealed resource does not open for {object}: sealed to another node, for another path, or damaged"
                    ))
                })?;
                if value.is_empty() || value.len() > MAX_RESOURCE_LEN {
                    return Err(bad(format!(
                        "a resource is 1 to {MAX_RESOURCE_LEN} bytes, got {}",
                        value.len()
                    )));
                }
                self.record_put(link, KBS_NS, &resource_key(&resource), value.expose())?;
                self.audit(link, "kbs.resource.put", ADMIN, &object, "ok (sealed)")?;
                Ok(KbsReply::Done)
            }
            (method, path) if path.starts_with("resource/") => {
                let resource = ResourcePath::parse(&path["resource/".len()..]).map_err(refused)?;
                let object = resource.to_string();
                match method {
                    "POST" | "PUT" => {
                        if body.is_empty() || body.len() > MAX_RESOURCE_LEN {
                            return Err(bad(format!(
                                "a resource is 1 to {MAX_RESOURCE_LEN} bytes, got {}",
                                body.len()
                            )));
                        }
                        self.record_put(link, KBS_NS, &resource_key(&resource), body)?;
                        self.audit(link, "kbs.resource.put", ADMIN, &object, "ok")?;
                        Ok(KbsReply::Done)
                    }
                    "DELETE" => {
                        let deleted = self.record_delete(link, KBS_NS, &resource_key(&resource))?;
                        self.audit(
                            link,
                            "kbs.resource.delete",
                            ADMIN,
                            &object,
                            if deleted { "ok" } else { "not found" },
                        )?;
                        if deleted {
                            Ok(KbsReply::Done)
                        } else {
                            Err(failure(
                                FailureKind::NotFound,
                                format!("no resource {object}"),
                            ))
                        }
                    }
                    other => Err(failure(
                        FailureKind::NotFound,
                        format!("no KBS admin endpoint {other} /kbs/v0/{path}"),
                    )),
                }
            }
            (method, path) => Err(failure(
                FailureKind::NotFound,
                format!("no KBS admin endpoint {method} /kbs/v0/{path}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_attest::{HexBytes, TcbStatus, TeeKind};

    fn claims(tee: TeeKind, mrconfigid: &[u8]) -> Claims {
        Claims {
            tee,
            simulated: false,
            measurements: [("mrconfigid".to_string(), HexBytes(mrconfigid.to_vec()))].into(),
            signer: None,
            security_version: None,
            tcb_status: TcbStatus::UpToDate,
            advisory_ids: Vec::new(),
            debug: false,
            report_data: HexBytes(Vec::new()),
            platform_id: None,
            evidence_time: None,
            details: Default::default(),
            trust_anchor: None,
        }
    }

    #[test]
    fn init_data_must_be_the_one_the_tee_measured() {
        let digest = veritee_crypto::digest::sha384(b"init-data");
        check_init_data(TeeKind::Tdx, &claims(TeeKind::Tdx, &digest), &digest).unwrap();
        // A SHA-256 digest sits zero-padded in the 48-byte field.
        let short = veritee_crypto::digest::sha256(b"init-data");
        let mut padded = short.to_vec();
        padded.resize(48, 0);
        check_init_data(TeeKind::Tdx, &claims(TeeKind::Tdx, &padded), &short).unwrap();
        let other = veritee_crypto::digest::sha384(b"other init-data");
        let err =
            check_init_data(TeeKind::Tdx, &claims(TeeKind::Tdx, &other), &digest).unwrap_err();
        assert_eq!(err.kind, FailureKind::Unauthorized);
        assert!(err.message.contains("mrconfigid"), "{}", err.message);
        // SNP's HOST_DATA is a detail, hex.
        let mut snp = claims(TeeKind::SevSnp, &[]);
        snp.details.insert("host_data".into(), hex::encode(short));
        check_init_data(TeeKind::SevSnp, &snp, &short).unwrap();
        assert!(check_init_data(TeeKind::SevSnp, &snp, &digest).is_err());
        // SGX's CONFIGID is a detail of 64 bytes: a SHA-384 digest sits zero-padded.
        let mut sgx = claims(TeeKind::Sgx, &[]);
        let mut config_id = digest.to_vec();
        config_id.resize(64, 0);
        sgx.details
            .insert("config_id".into(), hex::encode(&config_id));
        check_init_data(TeeKind::Sgx, &sgx, &digest).unwrap();
        let err = check_init_data(TeeKind::Sgx, &sgx, &other).unwrap_err();
        assert!(err.message.contains("config_id"), "{}", err.message);
        // Azure's vTPM: PCR 8 extended once from zero with the SHA-256 digest.
        let mut zero_then_digest = [0u8; 64];
        zero_then_digest[32..].copy_from_slice(&short);
        let pcr8 = veritee_crypto::digest::sha256(&zero_then_digest);
        let mut az = claims(TeeKind::AzureSnpVtpm, &[]);
        az.measurements
            .insert("pcr8".into(), HexBytes(pcr8.to_vec()));
        check_init_data(TeeKind::AzureSnpVtpm, &az, &short).unwrap();
        let err = check_init_data(
            TeeKind::AzureSnpVtpm,
            &az,
            &veritee_crypto::digest::sha256(b"other init-data"),
        )
        .unwrap_err();
        assert!(err.message.contains("pcr8"), "{}", err.message);
        // Trustee's own vector for this binding (deps/verifier/src/az_snp_vtpm).
        let mut vector = claims(TeeKind::AzureSnpVtpm, &[]);
        vector.measurements.insert(
            "pcr8".into(),
            HexBytes(
                hex::decode("bddaccb9c52249e97a31baea61b7d91be8221a16e703d92148d04fb8e9c1dfdd")
                    .unwrap(),
            ),
        );
        let trustee_digest =
            hex::decode("8505e4e25e50a27c5dc8147af88efbece627fbea55291911eff832d9ee127781")
                .unwrap();
        check_init_data(TeeKind::AzureSnpVtpm, &vector, &trustee_digest).unwrap();
        // The PCR holding the digest itself (not extended into it) does not pass.
        az.measurements
            .insert("pcr8".into(), HexBytes(short.to_vec()));
        assert!(check_init_data(TeeKind::AzureSnpVtpm, &az, &short).is_err());
        let err = check_init_data(TeeKind::AzureSnpVtpm, &az, &digest).unwrap_err();
        assert!(err.message.contains("algorithm"), "{}", err.message);
        az.measurements.remove("pcr8");
        let err = check_init_data(TeeKind::AzureSnpVtpm, &az, &short).unwrap_err();
        assert!(
            err.message.contains("does not cover PCR 8"),
            "{}",
            err.message
        );
        // A kind whose binding is not known refuses init-data; the sample TEE records it.
        let err =
            check_init_data(TeeKind::Nitro, &claims(TeeKind::Nitro, &digest), &digest).unwrap_err();
        assert_eq!(err.kind, FailureKind::BadRequest);
        check_init_data(
            TeeKind::CocoSample,
            &claims(TeeKind::CocoSample, &[]),
            &digest,
        )
        .unwrap();
    }
}
