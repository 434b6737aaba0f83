//! The Confidential Containers KBS protocol under `/kbs/v0/`: guests' handshakes and
//! resource requests, and Trustee's admin API. The host passes bodies, the session
//! cookie and bearer tokens to the enclave as they came; the enclave decides. Errors
//! are RFC 7807 problem documents in the shape CoCo clients read.

use super::AppState;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind, KbsCall, KbsReply,
};

/// The session cookie (the protocol's name for it).
const SESSION_COOKIE: &str = "kbs-session-id";
/// The prefix of every problem type, as Trustee's KBS names them.
const PROBLEM_TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";
/// veritee's own set-resource: the resource sealed to the enclave's wrapping key.
const SEALED_RESOURCE_CONTENT_TYPE: &str = "application/vnd.veritee.sealed-resource";
/// Largest KBS body: an Attestation carrying a TDX event log.
const MAX_KBS_BODY: usize = 4 * 1024 * 1024;

/// A KBS problem: status, kind (the last segment of its type URI), detail.
struct Problem(StatusCode, &'static str, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("{PROBLEM_TYPE_PREFIX}{}", self.1),
            "detail": self.2,
        });
        let mut response = (self.0, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<EnclaveFailure> for Problem {
    fn from(f: EnclaveFailure) -> Self {
        let (status, kind) = match f.kind {
            FailureKind::BadRequest => (StatusCode::BAD_REQUEST, "BadRequest"),
            FailureKind::Unauthorized | FailureKind::StaleSignature => {
                (StatusCode::UNAUTHORIZED, "Unauthorized")
            }
            FailureKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            FailureKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
            FailureKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            FailureKind::TooMany => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        Self(status, kind, f.message)
    }
}

/// The value of the session cookie, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

async fn converse(state: &AppState, call: KbsCall) -> Result<Response, Problem> {
    let reply = state
        .enclave
        .call(EnclaveCall::Kbs(call))
        .await
        .map_err(|e| {
            Problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                e.to_string(),
            )
        })??;
    match reply {
        EnclaveReply::Kbs(KbsReply::Done) => Ok(StatusCode::OK.into_response()),
        EnclaveReply::Kbs(KbsReply::Json { body, session }) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some((id, expires)) = session {
                let max_age = (expires - time::OffsetDateTime::now_utc().unix_timestamp()).max(0);
                // The id is hex made by the enclave; anything else would not be a
                // valid header value and is dropped rather than echoed.
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{SESSION_COOKIE}={id}; Path=/kbs/v0; Max-Age={max_age}; HttpOnly"
                )) {
                    response.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        _ => Err(Problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the enclave answered a KBS call with something else".into(),
        )),
    }
}

async fn auth(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response, Problem> {
    if let (Some(rates), Some(Extension(ConnectInfo(client)))) = (&state.kbs_auth_rates, client) {
        // By address, not port: one client's connections share a budget.
        if let Err(wait) = rates.charge(&client.ip().to_string()) {
            let mut response = Problem(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "{} is over its rate of KBS handshakes on this node; retry in {} ms",
                    client.ip(),
                    wait.as_millis().max(1)
                ),
            )
            .into_response();
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return Ok(response);
        }
    }
    converse(
        &state,
        KbsCall::Auth {
            body: body.to_vec(),
        },
    )
    .await
}

async fn attest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let session = session_cookie(&headers);
    let collateral = state
        .kbs_collateral
        .iter()
        .map(|c| serde_bytes::ByteBuf::from(c.clone()))
        .collect();
    converse(
        &state,
        KbsCall::Attest {
            session,
            body: body.to_vec(),
            collateral,
        },
    )
    .await
}

async fn resource(
    State(state): State<Arc<AppState>>,
    Path((repository, kind, tag)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let path = format!("{repository}/{kind}/{tag}");
    if method == Method::GET {
        return converse(
            &state,
            KbsCall::Resource {
                session: session_cookie(&headers),
                bearer: bearer(&headers),
                path,
            },
        )
        .await;
    }
    let sealed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().map(str::trim) == Some(SEALED_RESOURCE_CONTENT_TYPE));
    if method == Method::POST && sealed {
        return admin(
            &state,
            &method,
            &headers,
            format!("sealed-resource/{path}"),
            body,
        )
        .await;
    }
    if method == Method::POST && !state.kbs_plaintext_resources {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            "PlaintextResourcesRefused",
            "Trustee's set-resource sends the resource in the clear to whoever terminates \
             TLS, which is this node's host; this node refuses that. Start it with \
             --kbs-plaintext-resources to accept it anyway, or send the resource sealed to \
             the enclave (veritee kbs put-resource)"
                .into(),
        ));
    }
    admin(&state, &method, &headers, format!("resource/{path}"), body).await
}

async fn admin(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    path: String,
    body: Bytes,
) -> Result<Response, Problem> {
    converse(
        state,
        KbsCall::Admin {
            bearer: bearer(headers),
            method: method.to_string(),
            path,
            body: body.to_vec(),
        },
    )
    .await
}

/// An admin request at a fixed path (`resource-policy`, `resources`): the enclave is
/// told the path below `/kbs/v0/` as it came.
async fn admin_at(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let path = uri.path().trim_start_matches("/kbs/v0/").to_string();
    admin(&state, &method, &headers, path, body).await
}

async fn unknown(method: Method, uri: axum::http::Uri) -> Problem {
    Problem(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no KBS endpoint {method} {}", uri.path()),
    )
}

/// The `/kbs/v0/` routes.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/kbs/v0/auth", post(auth))
        .route("/kbs/v0/attest", post(attest))
        .route(
            "/kbs/v0/resource/{repository}/{kind}/{tag}",
            get(resource).post(resource).delete(resource),
        )
        .route(
            "/kbs/v0/resource-policy",
            get(admin_at).post(admin_at).delete(admin_at),
        )
        .route("/kbs/v0/resources", get(admin_at))
        .route("/kbs/v0/{*rest}", axum::routing::any(unknown))
        .layer(DefaultBodyLimit::max(MAX_KBS_BODY))
}
