//! Officers and quorums (flow 3): a tenant registers officers by role with a quorum K;
//! once a role has officers, its actions need K of their approvals on a token the
//! enclave issued for exactly that action and target (single-use, expiring). The
//! tenant's own signature is still required on every request: a quorum adds to it.
//!
//! Registering officers: the tenant alone while the domain role cannot reach its own
//! quorum (bootstrap); from then on, only with the domain officers' quorum, so no
//! single person, the tenant included, can replace the officers.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock, tenant_ns};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use veritee_import::ImportError;
use veritee_import::quorum::{
    Action, MAX_OFFICERS_PER_ROLE, MAX_TOKEN_LEN, QuorumProof, QuorumToken, Role,
    TOKEN_LIFETIME_SECS, approving_officers,
};
use veritee_proto::api::{QuorumTokenRequest, RegisterOfficerRequest, paths};
use veritee_proto::ipc::{EnclaveFailure, FailureKind, ImportReply, SignedRequest};

const OFFICERS_RECORD: &str = "officers";
/// Quorum tokens waiting for approvals at most (across tenants).
pub const MAX_PENDING_TOKENS: usize = 4096;

/// A tenant's officers, sealed.
#[derive(Default, Serialize, Deserialize)]
struct OfficerSet {
    roles: BTreeMap<Role, RoleSet>,
    /// Set once the domain officers could reach their quorum; from then on every
    /// registration needs it, whatever later registrations do to the domain role.
    #[serde(default)]
    domain_established: bool,
}

impl OfficerSet {
    fn domain_can_act(&self) -> bool {
        self.roles
            .get(&Role::Domain)
            .is_some_and(|d| !d.officers.is_empty() && d.officers.len() as u32 >= d.quorum)
    }
}

#[derive(Serialize, Deserialize)]
struct RoleSet {
    quorum: u32,
    officers: Vec<[u8; 32]>,
}

/// Tokens issued and not yet used, by id: their exact bytes and expiry. In memory
/// only: a restart voids them, which costs the officers a new round of signatures.
#[derive(Default)]
pub(crate) struct PendingTokens {
    tokens: HashMap<String, (Vec<u8>, i64)>,
}

fn quorum_failure(e: ImportError) -> EnclaveFailure {
    match e {
        ImportError::Malformed(m) => failure(FailureKind::BadRequest, m),
        other => failure(FailureKind::Unauthorized, other.to_string()),
    }
}

impl EnclaveService {
    fn officer_set(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<OfficerSet, EnclaveFailure> {
        match self.record_get(link, &tenant_ns(tenant), OFFICERS_RECORD)? {
            Some(bytes) => veritee_proto::cbor::from_slice(bytes.expose())
                .map_err(|e| internal(format!("the officer record is unreadable: {e}"))),
            None => Ok(OfficerSet::default()),
        }
    }

    /// Checks that `action` on `target` may be taken for `tenant`: without a quorum
    /// if the action's role has no officers, else with `proof` of K approvals (the
    /// proof's token is then used up). Returns how it was authorized, for the audit.
    pub(crate) fn authorize(
        &self,
        tenant: &str,
        action: Action,
        target: &str,
        proof: Option<&QuorumProof>,
        link: &mut dyn HostLink,
    ) -> Result<String, EnclaveFailure> {
        let set = self.officer_set(tenant, link)?;
        let role = action.role();
        let Some(role_set) = set.roles.get(&role).filter(|r| !r.officers.is_empty()) else {
            return Ok("by the tenant (no officers in this role)".into());
        };
        self.consume_proof(tenant, action, target, role, role_set, proof)
    }

    fn consume_proof(
        &self,
        tenant: &str,
        action: Action,
        target: &str,
        role: Role,
        role_set: &RoleSet,
        proof: Option<&QuorumProof>,
    ) -> Result<String, EnclaveFailure> {
        let needs = format!(
            "{} needs the approval of {} of the {} {} officers",
            action.as_str(),
            role_set.quorum,
            role_set.officers.len(),
            role.as_str()
        );
        let Some(proof) = proof else {
            return Err(failure(
                FailureKind::Unauthorized,
                format!("{needs}: ask for a quorum token (veritee officer request)"),
            ));
        };
        let bytes = hex::decode(&proof.token)
            .ok()
            .filter(|b| b.len() <= MAX_TOKEN_LEN)
            .ok_or_else(|| bad("the quorum token is not hex, or too long"))?;
        let token: QuorumToken = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("the quorum token is unreadable: {e}")))?;
        let now = self.clock().now().unix_timestamp();
        let issued_here = lock(&self.quorum_tokens)
            .tokens
            .get(&token.id)
            .is_some_and(|(held, _)| veritee_crypto::ct_eq(held, &bytes));
        if !issued_here {
            return Err(failure(
                FailureKind::Unauthorized,
                "the quorum token was not issued by this enclave, or was used already",
            ));
        }
        if token.tenant != tenant || token.action != action || token.target != target {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "the quorum token is for {} on {:?} by tenant {}, not {} on {target:?}",
                    token.action.as_str(),
                    token.target,
                    token.tenant,
                    action.as_str()
                ),
            ));
        }
        if now > token.expires {
            lock(&self.quorum_tokens).tokens.remove(&token.id);
            return Err(failure(
                FailureKind::Unauthorized,
                "the quorum token expired: ask for a new one",
            ));
        }
        let approving = approving_officers(&bytes, &proof.approvals, &role_set.officers)
            .map_err(quorum_failure)?;
        if (approving.len() as u32) < role_set.quorum {
            return Err(failure(
                FailureKind::Unauthorized,
                format!("{needs}: only {} approved", approving.len()),
            ));
        }
        // Used up: a second action with the same approvals is refused.
        if lock(&self.quorum_tokens).tokens.remove(&token.id).is_none() {
            return Err(failure(
                FailureKind::Unauthorized,
                "the quorum token was used meanwhile",
            ));
        }
        Ok(format!(
            "approved by {} of {} {} officers",
            approving.len(),
            role_set.officers.len(),
            role.as_str()
        ))
    }

    pub(crate) fn quorum_token(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::quorum_tokens(), body, link)?;
        let parsed: QuorumTokenRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid quorum token request: {e}")))?;
        let action: Action = parsed.action.parse().map_err(|e: String| {
            if e.contains("no quorum can approve") {
                failure(FailureKind::Unauthorized, e)
            } else {
                bad(e)
            }
        })?;
        let set = self.officer_set(&tenant, link)?;
        let role = action.role();
        let Some(role_set) = set.roles.get(&role).filter(|r| !r.officers.is_empty()) else {
            return Err(bad(format!(
                "no {} officers are registered: the tenant takes {} alone",
                role.as_str(),
                action.as_str()
            )));
        };
        let now = self.clock().now().unix_timestamp();
        let token = QuorumToken {
            id: hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?),
            tenant: tenant.clone(),
            node: self.node_id()?,
            action,
            target: parsed.target.clone(),
            quorum: role_set.quorum,
            expires: now + TOKEN_LIFETIME_SECS,
        };
        let bytes = serde_json::to_vec(&token).map_err(internal)?;
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(bad("the quorum token's target is too long"));
        }
        {
            let mut pending = lock(&self.quorum_tokens);
            pending.tokens.retain(|_, (_, expires)| *expires >= now);
            if pending.tokens.len() >= MAX_PENDING_TOKENS {
                return Err(failure(
                    FailureKind::Unavailable,
                    format!("{MAX_PENDING_TOKENS} quorum tokens await approvals: try again later"),
                ));
            }
            pending
                .tokens
                .insert(token.id.clone(), (bytes.clone(), token.expires));
        }
        self.audit(
            link,
            "quorum.issue",
            &tenant,
            &format!("{} {}", action.as_str(), parsed.target),
            &format!("ok: token {}", token.id),
        )?;
        Ok(ImportReply::QuorumToken(bytes))
    }

    pub(crate) fn register_officer(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::officers(), body, link)?;
        let parsed: RegisterOfficerRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid officer registration: {e}")))?;
        let role: Role = parsed.role.parse().map_err(bad)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&parsed.public_key, &mut key)
            .map_err(|_| bad("public_key must be an Ed25519 key, 64 hex digits"))?;
        if veritee_crypto::sign::check_public_key(
            veritee_crypto::sign::VerificationScheme::Ed25519,
            &key,
        )
        .is_err()
        {
            return Err(bad("public_key is not an Ed25519 public key"));
        }
        if !(1..=MAX_OFFICERS_PER_ROLE as u32).contains(&parsed.quorum) {
            return Err(bad(format!("quorum is 1 to {MAX_OFFICERS_PER_ROLE}")));
        }
        let _one_at_a_time = lock(&self.import_writes);
        let mut set = self.officer_set(&tenant, link)?;
        // The quorum is part of what the domain officers approve: a registration may not
        // quietly lower (or raise) a role's quorum.
        let target = format!("{}:{}:{}", role.as_str(), parsed.public_key, parsed.quorum);
        let established = set.domain_established || set.domain_can_act();
        let officers_after = set.roles.get(&role).map_or(1, |r| {
            r.officers.len() + usize::from(!r.officers.contains(&key))
        });
        if officers_after > MAX_OFFICERS_PER_ROLE {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "the {} role has {MAX_OFFICERS_PER_ROLE} officers already",
                    role.as_str()
                ),
            ));
        }
        // Checked before any approval is spent: once established, the domain role never
        // gets a quorum its officers cannot reach (that would end all registrations).
        if established && role == Role::Domain && parsed.quorum as usize > officers_after {
            return Err(bad(format!(
                "a domain quorum of {} with {officers_after} domain officers could never act",
                parsed.quorum
            )));
        }
        let how = if established {
            let domain = set
                .roles
                .get(&Role::Domain)
                .ok_or_else(|| internal("the established domain role has no officers"))?;
            self.consume_proof(
                &tenant,
                Action::RegisterOfficer,
                &target,
                Role::Domain,
                domain,
                parsed.approvals.as_ref(),
            )?
        } else {
            "by the tenant (the domain officers cannot reach their quorum yet)".into()
        };
        let entry = set.roles.entry(role).or_insert(RoleSet {
            quorum: parsed.quorum,
            officers: Vec::new(),
        });
        if !entry.officers.contains(&key) {
            entry.officers.push(key);
        }
        entry.quorum = parsed.quorum;
        set.domain_established = established || set.domain_can_act();
        let mut bytes = Vec::new();
        ciborium::into_writer(&set, &mut bytes).map_err(internal)?;
        self.record_put(link, &tenant_ns(&tenant), OFFICERS_RECORD, &bytes)?;
        self.audit(
            link,
            "officer.register",
            &tenant,
            &target,
            &format!("ok: {how}"),
        )?;
        Ok(ImportReply::Done)
    }

    pub(crate) fn list_officers(
        &self,
        request: &SignedRequest,
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "GET", &paths::officers(), &[], link)?;
        let set = self.officer_set(&tenant, link)?;
        Ok(ImportReply::Officers(
            set.roles
                .into_iter()
                .map(|(role, r)| (role.as_str().to_string(), r.quorum, r.officers))
                .collect(),
        ))
    }
}
