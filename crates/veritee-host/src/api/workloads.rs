//! TEE-bound workloads (flow 2): the security module's routes (`/v1/sm/...`) and the
//! target's (`/v1/workloads/...`). The host only carries: seeds arrive sealed to the
//! enclave, enrollment answers sealed to the security module, and a launched
//! workload's output sealed to its owner; the enclave decides every request.

use super::node::NonceQuery;
use super::{ApiResult, AppState, admin, converse, tenant, unexpected};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};
use veritee_proto::workload::WorkloadCall;

/// The largest workload file a launch carries (the enclave link's frame is 80 MiB).
pub const MAX_LAUNCH_BODY: usize = 64 * 1024 * 1024;

/// The routes of flow 2.
pub(super) fn routes() -> Router<Arc<AppState>> {
    let json = Router::new()
        .route("/v1/sm/seeds", post(put_seed))
        .route("/v1/sm/enrollments", post(challenge))
        .route("/v1/sm/enrollments/{id}", post(enroll))
        .route("/v1/sm/enrollments/{id}/activation", post(activation))
        .route("/v1/sm/authorizations", post(authorize))
        .route("/v1/sm/targets/{target}/forget", post(forget))
        .route("/v1/sm/state", get(sm_state))
        .route("/v1/sm/releases", post(release_challenge))
        .route("/v1/sm/releases/{id}", post(release))
        .route("/v1/workloads/pending/{id}/measurement", post(measure))
        .route("/v1/workloads/enrollment", post(answer_challenge))
        .route("/v1/workloads/activation", post(activate_credential))
        .route("/v1/workloads/storage-key/rotate", post(rotate))
        .layer(DefaultBodyLimit::max(super::MAX_JSON_BODY));
    let launch = Router::new()
        .route("/v1/workloads/launch", post(launch))
        .route("/v1/workloads/pending", post(load_pending))
        .route("/v1/workloads/pending/{id}/release", post(launch_released))
        .layer(DefaultBodyLimit::max(MAX_LAUNCH_BODY));
    json.merge(launch)
}

/// Passes `call` to the enclave and returns its JSON answer as it is.
async fn ask(state: &AppState, call: WorkloadCall, status: StatusCode) -> ApiResult<Response> {
    match converse(state, EnclaveCall::Workload(call)).await? {
        EnclaveReply::Workload(reply) => Ok((
            status,
            [(header::CONTENT_TYPE, "application/json")],
            reply.json,
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

async fn put_seed(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let call = WorkloadCall::PutSeed {
        request: signed.request,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn challenge(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    ask(&state, WorkloadCall::Challenge, StatusCode::CREATED).await
}

async fn enroll(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::Enroll {
        challenge_id: id,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn activation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::Activation {
        challenge_id: id,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn authorize(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let call = WorkloadCall::Authorize {
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn forget(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let call = WorkloadCall::Forget {
        request: signed.request,
        target,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn sm_state(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let signed = tenant(&state, &method, &uri, &headers, &[]).await?;
    let call = WorkloadCall::State {
        request: signed.request,
    };
    ask(&state, call, StatusCode::OK).await
}

async fn answer_challenge(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let call = WorkloadCall::AnswerChallenge {
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn activate_credential(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::ActivateCredential {
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn launch(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::Launch {
        nonce: q.nonce,
        workload: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn release_challenge(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    ask(&state, WorkloadCall::ReleaseChallenge, StatusCode::CREATED).await
}

async fn release(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::Release {
        challenge_id: id,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

async fn load_pending(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let call = WorkloadCall::Pending {
        workload: body.to_vec(),
    };
    ask(&state, call, StatusCode::CREATED).await
}

async fn measure(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::Measure {
        pending_id: id,
        body: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

/// The query of a release: the launch nonce, and the seed as the SM released it.
#[derive(serde::Deserialize)]
struct ReleaseQuery {
    nonce: String,
    challenge_id: String,
    sealed_seed: String,
}

async fn launch_released(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ReleaseQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let call = WorkloadCall::LaunchReleased {
        pending_id: id,
        nonce: q.nonce,
        challenge_id: q.challenge_id,
        sealed_seed: q.sealed_seed,
        workload: body.to_vec(),
    };
    ask(&state, call, StatusCode::OK).await
}

/// Deprovisioning is the operator's: the admin token, as for registering peers.
async fn rotate(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&state, &headers)?;
    ask(&state, WorkloadCall::RotateStorageKey, StatusCode::OK).await
}
