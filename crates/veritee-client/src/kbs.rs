//! The KBS protocol from the outside: the admin's calls (Trustee's admin API, with an
//! EdDSA bearer token) and a guest's handshake with CoCo's sample TEE, which
//! `veritee kbs get-resource`, the demo, the benches and the tests use.

use crate::{ClientError, NodeClient};
use base64::Engine;
use veritee_kbs::jwe::TeeKeyPair;
use veritee_kbs::kbs_types::{
    Attestation, Challenge, CompositeEvidence, Request, Response, RuntimeData, Tee,
};
use veritee_kbs::protocol;
use zeroize::Zeroizing;

/// What a guest's handshake yields: its session cookie and its attestation token.
#[derive(Debug, Clone)]
pub struct KbsSession {
    /// `kbs-session-id=...`, as the node set it.
    pub cookie: String,
    /// The EAR token.
    pub token: String,
}

impl NodeClient {
    fn kbs_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(Vec<u8>, Option<String>), ClientError> {
        self.exchange(method, &format!("/kbs/v0/{path}"), body, headers)
    }

    fn kbs_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Vec<u8>, ClientError> {
        let headers = vec![("authorization", format!("Bearer {}", token.trim()))];
        self.kbs_send(method, path, body, headers).map(|(b, _)| b)
    }

    /// Sets the broker's resource policy (an appraisal policy, TOML or JSON), as
    /// `kbs-client config set-resource-policy` does.
    pub fn kbs_set_policy(&self, token: &str, policy: &str) -> Result<(), ClientError> {
        self.kbs_set_scoped_policy(token, None, policy)
    }

    /// Sets the resource policy of `scope`: a repository (`repo`) or one resource
    /// (`repo/type/tag`), which judges its releases instead of the policy for
    /// everything; `None` is that policy.
    pub fn kbs_set_scoped_policy(
        &self,
        token: &str,
        scope: Option<&str>,
        policy: &str,
    ) -> Result<(), ClientError> {
        let mut body = serde_json::json!({
            "policy": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(policy),
        });
        if let Some(scope) = scope {
            body["path"] = scope.into();
        }
        self.kbs_admin(
            reqwest::Method::POST,
            "resource-policy",
            token,
            Some(("application/json", body.to_string().into_bytes())),
        )
        .map(drop)
    }

    /// Deletes the resource policy of `scope` (`None`: the one for everything).
    pub fn kbs_delete_policy(&self, token: &str, scope: Option<&str>) -> Result<(), ClientError> {
        let body = match scope {
            Some(scope) => serde_json::json!({ "path": scope }),
            None => serde_json::json!({}),
        };
        self.kbs_admin(
            reqwest::Method::DELETE,
            "resource-policy",
            token,
            Some(("application/json", body.to_string().into_bytes())),
        )
        .map(drop)
    }

    /// Stores a resource, as `kbs-client config set-resource` does: the bytes travel
    /// in the clear to the node's host, which the node accepts only when started with
    /// `--kbs-plaintext-resources`.
    pub fn kbs_put_resource(
        &self,
        token: &str,
        path: &str,
        value: &[u8],
    ) -> Result<(), ClientError> {
        self.kbs_admin(
            reqwest::Method::POST,
            &format!("resource/{path}"),
            token,
            Some(("application/octet-stream", value.to_vec())),
        )
        .map(drop)
    }

    /// Stores a resource sealed to the node's attested wrapping key (HPKE, the path as
    /// associated data): the host carries it but cannot read it or move it to another
    /// path. `wrapping` must have been verified against the caller's policy.
    pub fn kbs_put_sealed_resource(
        &self,
        token: &str,
        path: &str,
        value: &[u8],
        wrapping: &crate::keys::AttestedWrappingKey,
    ) -> Result<(), ClientError> {
        let sealed = veritee_crypto::hpke::seal(
            &wrapping.public_key,
            veritee_kbs::resource::SEALED_RESOURCE_INFO,
            path.as_bytes(),
            value,
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.kbs_admin(
            reqwest::Method::POST,
            &format!("resource/{path}"),
            token,
            Some((veritee_kbs::resource::SEALED_RESOURCE_CONTENT_TYPE, sealed)),
        )
        .map(drop)
    }

    /// Deletes a resource.
    pub fn kbs_delete_resource(&self, token: &str, path: &str) -> Result<(), ClientError> {
        self.kbs_admin(
            reqwest::Method::DELETE,
            &format!("resource/{path}"),
            token,
            None,
        )
        .map(drop)
    }

    /// The paths of the stored resources.
    pub fn kbs_list_resources(&self, token: &str) -> Result<Vec<String>, ClientError> {
        Self::json(&self.kbs_admin(reqwest::Method::GET, "resources", token, None)?)
    }

    /// A guest's handshake with CoCo's sample TEE: Request, Challenge, Attestation
    /// (sample evidence binding `key` and the nonce), token.
    pub fn kbs_attest_sample(&self, key: &TeeKeyPair) -> Result<KbsSession, ClientError> {
        let request = Request {
            version: protocol::PROTOCOL_VERSION.into(),
            tee: Tee::Sample,
            extra_params: serde_json::Value::String(String::new()),
        };
        let body =
            serde_json::to_vec(&request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (challenge, cookie) = self.kbs_send(
            reqwest::Method::POST,
            "auth",
            Some(("application/json", body)),
            vec![],
        )?;
        let challenge: Challenge = Self::json(&challenge)?;
        let cookie =
            cookie.ok_or_else(|| ClientError::Protocol("the node set no session cookie".into()))?;
        let mut attestation = Attestation {
            init_data: None,
            runtime_data: RuntimeData {
                nonce: challenge.nonce,
                tee_pubkey: key
                    .public_jwk()
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
            },
            tee_evidence: CompositeEvidence {
                primary_evidence: serde_json::Value::Null,
                additional_evidence: String::new(),
            },
        };
        let digest = protocol::runtime_data_digest(&attestation)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        attestation.tee_evidence.primary_evidence = serde_json::json!({
            "svn": "1",
            "report_data": base64::engine::general_purpose::STANDARD.encode(digest),
        });
        let body =
            serde_json::to_vec(&attestation).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (answer, _) = self.kbs_send(
            reqwest::Method::POST,
            "attest",
            Some(("application/json", body)),
            vec![("cookie", cookie.clone())],
        )?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: String,
        }
        let answer: TokenAnswer = Self::json(&answer)?;
        Ok(KbsSession {
            cookie,
            token: answer.token,
        })
    }

    /// A resource for an attested guest, opened with its key.
    pub fn kbs_get_resource(
        &self,
        session: &KbsSession,
        key: &TeeKeyPair,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let (body, _) = self.kbs_send(
            reqwest::Method::GET,
            &format!("resource/{path}"),
            None,
            vec![("cookie", session.cookie.clone())],
        )?;
        let response: Response = Self::json(&body)?;
        key.open(&response)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}
