//! The OpenAPI 3.1 description of the node's HTTP API, served at `/openapi.json`.

use serde_json::{Value, json};

fn error_responses(codes: &[&str]) -> Value {
    responses_of(codes, "Error", "application/json", "Error")
}

/// The KBS routes' errors: RFC 7807 problem documents.
fn problem_responses(codes: &[&str]) -> Value {
    responses_of(
        codes,
        "RFC 7807 problem",
        "application/problem+json",
        "KbsProblem",
    )
}

fn responses_of(codes: &[&str], description: &str, media: &str, schema: &str) -> Value {
    let mut out = serde_json::Map::new();
    for code in codes {
        out.insert(
            (*code).to_string(),
            json!({"description": description, "content": {media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
        );
    }
    Value::Object(out)
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// The document.
pub fn document() -> Value {
    let tenant_auth = json!([{"tenantSignature": []}]);
    let admin_auth = json!([{"adminToken": []}]);
    // In three parts: one `json!` of every route would pass the macro recursion limit.
    let node_and_sessions = json!({
            "/healthz": {"get": {"summary": "Liveness and enclave state", "responses": {
                "200": {"description": "Health", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}},
            "/v1/node": {"get": {
                "summary": "The enclave answering at this node: its node id and epoch, which tenant signatures name",
                "responses": merge(json!({"200": {"description": "Node", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NodeInfo"}}}}}),
                    error_responses(&["503"]))
            }},
            "/v1/tenants": {"post": {
                "summary": "Register a tenant's public key (admin); the tenant's own signature over the request travels in the veritee-tenant-proof header, and the enclave checks it",
                "security": admin_auth,
                "parameters": [{"name": "veritee-tenant-proof", "in": "header", "required": true, "schema": {"type": "string"},
                    "description": "The tenant's signature of this request, in the tenantSignature format"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RegisterTenantRequest"}}}},
                "responses": merge(json!({"200": {"description": "Registered", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RegisterTenantResponse"}}}}}),
                    error_responses(&["400", "401", "413", "415", "503"]))
            }},
            "/v1/attestation": {"get": {
                "summary": "Evidence binding the node's audit and checkpoint keys to a verifier nonce",
                "parameters": [{"name": "nonce", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-f]{2}){16,64}$"}}],
                "responses": merge(json!({"200": {"description": "Evidence", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AttestationResponse"}}}}}),
                    error_responses(&["400", "503"]))
            }},
            "/v1/sessions": {"post": {
                "summary": "Open an attested session (tenant-signed)",
                "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenSessionRequest"}}}},
                "responses": merge(json!({"200": {"description": "Session offer with evidence", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenSessionResponse"}}}}}),
                    error_responses(&["400", "401", "404", "413", "415", "503", "429"]))
            }},
            "/v1/sessions/resume": {"post": {
                "summary": "Resume a session by the ticket the enclave issued in it, with the first request (tenant-signed; no new attestation)",
                "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResumeSessionRequest"}}}},
                "responses": merge(json!({"200": {"description": "The resumed session and the sealed reply to its first request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResumeSessionResponse"}}}}}),
                    error_responses(&["400", "401", "409", "413", "415", "503", "429"]))
            }},
            "/v1/sessions/{id}/messages": {"post": {
                "summary": "Relay one encrypted session message to the enclave (authenticated by the session inside the enclave, not signed)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}],
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "Encrypted reply", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}),
                    error_responses(&["400", "401", "404", "413", "415", "503", "429"]))
            }}
    });
    let keys_and_data = json!({
            "/v1/keys/wrapping-key": {"get": {
                "summary": "The enclave's attested wrapping key (HPKE X25519), with the node id and the receipt- and checkpoint-signing keys",
                "parameters": [{"name": "nonce", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-f]{2}){16,64}$"}}],
                "responses": merge(json!({"200": {"description": "Key and evidence", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WrappingKeyResponse"}}}}}),
                    error_responses(&["400", "503"]))
            }},
            "/v1/keys": {"post": {
                "summary": "Import a user data key wrapped to the wrapping key, in a file the tenant signed whole (tenant-signed)",
                "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportKeyRequest"}}}},
                "responses": merge(json!({"200": {"description": "Receipt signed inside the enclave", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportKeyResponse"}}}}}),
                    error_responses(&["400", "401", "409", "413", "415", "503", "429"]))
            }},
            "/v1/data/{object}/uploads": {"post": {
                "summary": "Begin storing a data object: its veritee-stream header (tenant-signed)",
                "security": tenant_auth,
                "parameters": [{"name": "object", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "Upload id", "content": {"application/json": {"schema": {"type": "object", "properties": {"upload_id": {"type": "string"}}}}}}}),
                    error_responses(&["400", "401", "404", "415", "503", "429"]))
            }},
            "/v1/data/{object}/uploads/{upload}/chunks/{index}": {"put": {
                "summary": "One chunk, in order; ?last=true for the final one (tenant-signed)",
                "security": tenant_auth,
                "parameters": [
                    {"name": "object", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "upload", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}},
                    {"name": "last", "in": "query", "schema": {"type": "boolean"}}
                ],
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "Stored", "content": {"application/json": {"schema": {"type": "object", "properties": {"complete": {"type": "boolean"}}}}}}}),
                    error_responses(&["400", "401", "404", "413", "415", "503", "429"]))
            }},
            "/v1/data/{object}": {"get": {
                "summary": "A stored object's stream header, chunk count and version, vouched for by the enclave under the object's key (tenant-signed)",
                "security": tenant_auth,
                "parameters": [
                    {"name": "object", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "nonce", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "description": "The client's fresh nonce (32 bytes), which the vouch covers"}
                ],
                "responses": merge(json!({"200": {"description": "Header", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "header": {"type": "string", "contentEncoding": "base64"}, "chunks": {"type": "integer"}, "version": {"type": "integer"},
                    "vouch": {"type": "string", "description": "HMAC-SHA256, hex, under the object's key over its tenant, name, version, chunk count, header and the nonce"}}}}}}}),
                    error_responses(&["401", "404", "503", "429"]))
            }},
            "/v1/data/{object}/chunks/{index}": {"get": {
                "summary": "One stored chunk, checked by the enclave first (tenant-signed)",
                "security": tenant_auth,
                "parameters": [
                    {"name": "object", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}
                ],
                "responses": merge(json!({"200": {"description": "Chunk (header x-veritee-last: 1 on the final one)", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}),
                    error_responses(&["401", "404", "500", "503", "429"]))
            }}
    });
    let tasks_peers_and_audit = json!({
            "/v1/tasks": {"post": {
                "summary": "Task initiation (TTIS): policy, security and compartmentalization contexts (each compartment may name up to 8 stored keys, `keys`: PARTITION/KEY_ID or OWNER_TENANT_ID/PARTITION/KEY_ID, granted at run only if the key's metadata name the signing tenant in task_signers), nonce (tenant-signed); answers with the attestation signal",
                "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": merge(json!({"200": {"description": "Attestation signal: SKEK, evidence binding it with the nonce and the initiation, load", "content": {"application/json": {"schema": {"type": "object"}}}}}),
                    error_responses(&["400", "401", "409", "413", "415", "503", "429"]))
            }, "get": {
                "summary": "The signing tenant's tasks this node holds, oldest first (tenant-signed)",
                "security": tenant_auth,
                "responses": merge(json!({"200": {"description": "Task ids and ages", "content": {"application/json": {"schema": {"type": "object", "required": ["tasks"], "properties": {
                    "tasks": {"type": "array", "items": {"type": "object", "required": ["task_id", "age_secs"], "properties": {
                        "task_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "age_secs": {"type": "integer", "minimum": 0}}}}}}}}}}),
                    error_responses(&["401", "429"]))
            }},
            "/v1/tasks/{id}/keys": {"post": {
                "summary": "The task's CKEK and per-compartment DEKs, sealed to the SKEK (tenant-signed)",
                "security": tenant_auth,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "Accepted"}}),
                    error_responses(&["400", "401", "403", "404", "413", "415", "503", "429"]))
            }},
            "/v1/tasks/{id}/files/{compartment}/{slot}": {"put": {
                "summary": "A compartment's module or input N (slot `module` or `input-N`), encrypted under its DEK; in pieces appended at ?offset=N, each tenant-signed over `stream-piece:LEN` (its Content-Length) in place of a body digest: the enclave authenticates every chunk. 429 (`too_many_uploads`, `spool_full`, with Retry-After) past the tenant's uploads at once or spool bytes on this node",
                "security": tenant_auth,
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "compartment", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "slot", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}
                ],
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "Stored; the file's length so far", "content": {"application/json": {"schema": {"type": "object", "properties": {"bytes": {"type": "integer"}}}}}}}),
                    error_responses(&["400", "401", "403", "404", "409", "411", "413", "415", "503", "429"]))
            }},
            "/v1/tasks/{id}/run": {"post": {
                "summary": "Run the task; answers with the result envelope, authenticated with the SKEK session (tenant-signed)",
                "security": tenant_auth,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": merge(json!({"200": {"description": "Result envelope: the authenticated result body and its MAC", "content": {"application/json": {"schema": {"type": "object", "properties": {"body": {"type": "object"}, "mac": {"type": "string"}}}}}}}),
                    error_responses(&["400", "401", "403", "404", "503", "429"]))
            }},
            "/v1/tasks/{id}/cancel": {"post": {
                "summary": "Withdraw a task (tenant-signed, empty body): forgotten with its uploads if not yet run; if running, it stops waiting for inputs and its run fails",
                "security": tenant_auth,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": merge(json!({"200": {"description": "Withdrawn", "content": {"application/json": {"schema": {"type": "object", "properties": {"cancelled": {"type": "boolean"}, "was_running": {"type": "boolean"}}}}}}}),
                    error_responses(&["401", "403", "404", "503", "429"]))
            }},
            "/v1/peer": {"post": {
                "summary": "Relay a message of the mutually attested enclave-to-enclave channel (with a Content-Length: it goes to the enclave as it arrives)",
                "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "security": [{"peerToken": []}],
                "responses": merge(json!({"200": {"description": "The enclave's answer", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}),
                    error_responses(&["400", "401", "404", "411", "413", "415", "429", "503"]))
            }},
            "/v1/peers": {"post": {
                "summary": "Register a peer node by the SHA-256 of its peer token (admin)",
                "security": admin_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RegisterPeerRequest"}}}},
                "responses": merge(json!({"200": {"description": "Registered", "content": {"application/json": {"schema": {"type": "object", "properties": {"registered": {"type": "string"}}}}}}}),
                    error_responses(&["400", "401", "413", "415", "503"]))
            }},
            "/v1/children": {"get": {
                "summary": "The child nodes this node started on this machine for forks to local:NAME, and their URLs (admin)",
                "security": admin_auth,
                "responses": merge(json!({"200": {"description": "Children", "content": {"application/json": {"schema": {"type": "object", "properties": {"children": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}}}}}}}}}}),
                    error_responses(&["401"]))
            }},
            "/v1/audit/checkpoint": {"get": {
                "summary": "A checkpoint of the audit log signed inside the enclave (C2SP signed note: origin, size, root hash)",
                "responses": merge(json!({"200": {"description": "Signed note", "content": {"text/plain": {"schema": {"type": "string"}}}}}),
                    error_responses(&["503"]))
            }},
            "/v1/audit": {"get": {
                "summary": "The signed, hash-chained audit log (admin)",
                "security": admin_auth,
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}
                ],
                "responses": merge(json!({"200": {"description": "Entries", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AuditLog"}}}}}),
                    error_responses(&["401", "503"]))
            }}
    });
    let kbs_admin = json!([{"kbsAdminToken": []}]);
    let kbs = json!({
        "/kbs/v0/auth": {"post": {
            "summary": "KBS protocol 0.4.0 Request (version, tee, extra-params); answers a Challenge (32-byte nonce) and sets the kbs-session-id cookie",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": merge(json!({"200": {"description": "Challenge", "content": {"application/json": {"schema": {"type": "object"}}}}}),
                problem_responses(&["400", "503"]))
        }},
        "/kbs/v0/attest": {"post": {
            "summary": "KBS Attestation (runtime-data, tee-evidence, init-data) in the session the cookie names; the enclave verifies the evidence and its binding to the TEE key, and answers an EAR token (ES256)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": merge(json!({"200": {"description": "Token", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}}}}}}}),
                problem_responses(&["400", "401", "503"]))
        }},
        "/kbs/v0/resource/{repository}/{type}/{tag}": {
            "get": {
                "summary": "A resource as a JWE to the attested TEE key, for an attested session cookie or its EAR token as a bearer, if the resource policy accepts the guest",
                "responses": merge(json!({"200": {"description": "JWE (flattened JSON)", "content": {"application/json": {"schema": {"type": "object"}}}}}),
                    problem_responses(&["400", "401", "404", "503"]))
            },
            "post": {
                "summary": "Store a resource (KBS admin): sealed to the enclave's wrapping key (application/vnd.veritee.sealed-resource), or in the clear as Trustee's set-resource sends it (application/octet-stream; only with --kbs-plaintext-resources)",
                "security": kbs_admin,
                "responses": merge(json!({"200": {"description": "Stored"}}), problem_responses(&["400", "401", "403", "503"]))
            },
            "delete": {
                "summary": "Delete a resource (KBS admin)",
                "security": kbs_admin,
                "responses": merge(json!({"200": {"description": "Deleted"}}), problem_responses(&["401", "404", "503"]))
            }
        },
        "/kbs/v0/resource-policy": {
            "get": {"summary": "The resource policy (KBS admin)", "security": kbs_admin,
                "responses": merge(json!({"200": {"description": "Policy"}}), problem_responses(&["401", "503"]))},
            "delete": {"summary": "Delete a resource policy (KBS admin): {\"path\"?: its scope; absent, the one for everything}", "security": kbs_admin,
                "responses": merge(json!({"200": {"description": "Deleted"}}), problem_responses(&["400", "401", "404", "503"]))},
            "post": {"summary": "Set a resource policy (KBS admin): {\"policy\": base64url of a veritee appraisal policy, \"path\"?: a repository or repo/type/tag it alone applies to}", "security": kbs_admin,
                "responses": merge(json!({"200": {"description": "Set"}}), problem_responses(&["400", "401", "503"]))}
        },
        "/kbs/v0/resources": {"get": {"summary": "The stored resources' paths (KBS admin)", "security": kbs_admin,
            "responses": merge(json!({"200": {"description": "Paths", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}}),
                problem_responses(&["401", "503"]))}}
    });
    let import = json!({
        "/v1/import": {
            "get": {
                "summary": "The two keys a customer encrypts an import to: the TEE's (the enclave's attested HPKE key, evidence over the nonce) and the provider layer's (the host's own, or with --provider-layer enclave one made and sealed in the enclave), stated by the provider's Ed25519 key over the same nonce",
                "parameters": [{"name": "nonce", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-f]{2}){16,64}$"}}],
                "responses": merge(json!({"200": {"description": "Both keys", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportKeysResponse"}}}}}),
                    error_responses(&["400", "404", "503"]))
            },
            "post": {
                "summary": "Import a key encrypted to the TEE, then to the provider, with metadata the customer signed (tenant-signed); the host peels the provider layer, the enclave the TEE's",
                "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportRequest"}}}},
                "responses": merge(json!({"200": {"description": "A confirmation signed by the enclave's attested audit key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ImportResponse"}}}}}),
                    error_responses(&["400", "401", "404", "409", "413", "415", "429", "503"]))
            }
        },
        "/v1/partitions": {
            "get": {"summary": "The tenant's partitions and the key ids in each (tenant-signed)", "security": tenant_auth,
                "responses": merge(json!({"200": {"description": "Partitions", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PartitionList"}}}}}),
                    error_responses(&["401", "429", "503"]))},
            "post": {"summary": "Create a partition (tenant-signed)", "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatePartitionRequest"}}}},
                "responses": merge(json!({"201": {"description": "Created"}}), error_responses(&["400", "401", "409", "415", "429", "503"]))}
        },
        "/v1/officers": {
            "get": {"summary": "The tenant's officers by role (tenant-signed)", "security": tenant_auth,
                "responses": merge(json!({"200": {"description": "Officers", "content": {"application/json": {"schema": {"type": "object"}}}}}),
                    error_responses(&["401", "429", "503"]))},
            "post": {"summary": "Register an officer (Ed25519 key, hex) in a role and set its quorum; with the domain officers' approvals once they can reach their quorum (tenant-signed)", "security": tenant_auth,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["role", "public_key", "quorum"]}}}},
                "responses": merge(json!({"201": {"description": "Registered"}}), error_responses(&["400", "401", "415", "429", "503"]))}
        },
        "/v1/quorum-tokens": {"post": {
            "summary": "A quorum token for one action on one target (partition.create, partition.delete, officer.register, key.disable), single-use, 15 minutes: the bytes officers sign (tenant-signed)",
            "security": tenant_auth,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["action", "target"]}}}},
            "responses": merge(json!({"200": {"description": "The token, hex", "content": {"application/json": {"schema": {"type": "object", "required": ["token"]}}}}}),
                error_responses(&["400", "401", "415", "429", "503"]))
        }},
        "/v1/partitions/{name}": {"delete": {
            "summary": "Delete a partition and destroy every key in it (tenant-signed)", "security": tenant_auth,
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": merge(json!({"200": {"description": "Deleted"}}), error_responses(&["401", "404", "429", "503"]))
        }},
        "/v1/partitions/{name}/keys/{key_id}/disable": {"post": {
            "summary": "Disable an imported key for good; once the tenant has security officers, with K of their approvals on a key.disable token for name/key_id (tenant-signed)",
            "security": tenant_auth,
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "key_id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"quorum": {"type": "object", "required": ["token", "approvals"]}}}}}},
            "responses": merge(json!({"200": {"description": "Disabled"}}), error_responses(&["400", "401", "404", "429", "503"]))
        }}
    });
    let obj = |required: &[&str]| json!({"type": "object", "required": required});
    let json_answer = |what: &str, required: &[&str]| json!({"description": what, "content": {"application/json": {"schema": obj(required)}}});
    // Flow 2: the security module's routes (`--role sm`) and the target's.
    let workloads = json!({
        "/v1/sm/seeds": {"post": {
            "summary": "Put a workload's seed in the security module, HPKE-sealed to its attested wrapping key, with the sealing policy targets must meet (tenant-signed); never replaces a seed",
            "security": tenant_auth,
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["workload_id", "workload_digest", "policy", "validity_seconds", "sealed_seed"])}}},
            "responses": merge(json!({"200": json_answer("Stored, or held already (created false)", &["workload_id", "created"])}), error_responses(&["400", "401", "404", "409", "429", "503"]))
        }},
        "/v1/sm/enrollments": {"post": {
            "summary": "A fresh enrollment challenge (orchestrator): its id, a nonce the target's evidence must bind, and the key the target seals its answer to",
            "responses": merge(json!({"201": json_answer("The challenge", &["challenge_id", "nonce", "sm_public_key"])}), error_responses(&["404", "429", "503"]))
        }},
        "/v1/sm/enrollments/{id}": {"post": {
            "summary": "A target's sealed answer to challenge id (orchestrator): the SM verifies its evidence and storage key and answers with an opaque handle; a target enrolls once",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["sealed"])}}},
            "responses": merge(json!({"200": json_answer("Enrolled; or, for a TPM target (answer marked tpm), {activation}: a MakeCredential challenge the target's TPM must activate first", &["target", "tee", "new"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/sm/enrollments/{id}/activation": {"post": {
            "summary": "A TPM target's sealed answer to the credential the SM sent for enrollment id (orchestrator): enrolled only if it is the secret only that TPM, with that AK, could activate",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["sealed", "tpm"])}}},
            "responses": merge(json!({"200": json_answer("Enrolled", &["target", "tee", "new"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/sm/authorizations": {"post": {
            "summary": "An authorization (the seed sealed to the target's storage key) for a workload and an enrolled target meeting its sealing policy (orchestrator); the same bytes again for the same pair",
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["workload_id", "target"])}}},
            "responses": merge(json!({"200": json_answer("The slot, base64", &["authorization", "issued"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/sm/targets/{target}/forget": {"post": {
            "summary": "Forget an enrolled target and its authorizations (tenant-signed)",
            "security": tenant_auth,
            "parameters": [{"name": "target", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": merge(json!({"200": json_answer("Forgotten", &["target", "authorizations_removed"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/sm/state": {"get": {
            "summary": "The tenant's workloads, the enrolled targets and the authorizations issued (tenant-signed)",
            "security": tenant_auth,
            "responses": merge(json!({"200": json_answer("What the SM holds", &["workloads", "targets", "authorizations"])}), error_responses(&["401", "404", "429", "503"]))
        }},
        "/v1/workloads/enrollment": {"post": {
            "summary": "Answer a security module's enrollment challenge: evidence binding this target's storage key to the nonce, sealed to the SM",
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["challenge_id", "nonce", "sm_public_key"])}}},
            "responses": merge(json!({"200": json_answer("The sealed answer", &["sealed"])}), error_responses(&["400", "404", "429", "503"]))
        }},
        "/v1/workloads/activation": {"post": {
            "summary": "A TPM target activates a security module's credential with its EK (TPM2_ActivateCredential) and seals the secret to the SM",
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["challenge_id", "nonce", "sm_public_key", "credential_blob", "encrypted_secret"])}}},
            "responses": merge(json!({"200": json_answer("The sealed answer", &["sealed", "tpm"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/workloads/launch": {"post": {
            "parameters": [{"name": "nonce", "in": "query", "required": true, "schema": {"type": "string"}}],
            "summary": "Launch a workload: find this target's slot, unseal the seed, check the HMAC, decrypt, check every component hash, then run its modules; the output is sealed to the seed",
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": merge(json!({"200": json_answer("Launched", &["workload_id", "storage_key_id", "sealed_output"])}), error_responses(&["400", "401", "404", "413", "429", "503"]))
        }},
        "/v1/sm/releases": {"post": {
            "summary": "A fresh release challenge (verify-before-secrets, orchestrator)",
            "responses": merge(json!({"201": json_answer("The challenge", &["challenge_id", "nonce", "sm_public_key"])}), error_responses(&["404", "429", "503"]))
        }},
        "/v1/sm/releases/{id}": {"post": {
            "summary": "A target's sealed measurement for challenge id: the seed sealed to its one-time key once its fresh evidence meets the sealing policy and its measurement is the workload's build",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["workload_id", "sealed"])}}},
            "responses": merge(json!({"200": json_answer("The released seed, sealed", &["challenge_id", "sealed_seed"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/workloads/pending": {"post": {
            "summary": "Measure a workload and hold its measurement and a one-time key until its seed is released (verify-before-secrets)",
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": merge(json!({"201": json_answer("Loaded", &["pending_id", "workload_id", "measurement"])}), error_responses(&["400", "404", "413", "429", "503"]))
        }},
        "/v1/workloads/pending/{id}/measurement": {"post": {
            "summary": "The loaded workload's measurement and a one-time key in fresh evidence over the SM's challenge, sealed to the SM",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": obj(&["challenge_id", "nonce", "sm_public_key"])}}},
            "responses": merge(json!({"200": json_answer("The sealed answer", &["sealed"])}), error_responses(&["400", "404", "429", "503"]))
        }},
        "/v1/workloads/pending/{id}/release": {"post": {
            "summary": "The seed the SM released, and the workload again (it must be the one measured): the launch check, then the workload",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "nonce", "in": "query", "required": true, "schema": {"type": "string"}},
                           {"name": "challenge_id", "in": "query", "required": true, "schema": {"type": "string"}},
                           {"name": "sealed_seed", "in": "query", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": merge(json!({"200": json_answer("Launched", &["workload_id", "storage_key_id", "sealed_output"])}), error_responses(&["400", "401", "404", "429", "503"]))
        }},
        "/v1/workloads/storage-key/rotate": {"post": {
            "summary": "Rotate this target's storage key (deprovisioning): authorizations issued before no longer open (admin)",
            "security": admin_auth,
            "responses": merge(json!({"200": json_answer("Rotated", &["storage_key_id"])}), error_responses(&["401", "429", "503"]))
        }}
    });
    let paths = merge(
        merge(
            merge(
                merge(merge(node_and_sessions, keys_and_data), import),
                tasks_peers_and_audit,
            ),
            kbs,
        ),
        workloads,
    );
    // Flow 3's schemas, apart: one json! of every schema passes the macro's recursion limit.
    let import_schemas = json!({
                "ImportKeysResponse": {"type": "object", "required": ["tee", "provider_statement", "provider_signature"], "properties": {
                    "tee": {"$ref": "#/components/schemas/WrappingKeyResponse"},
                    "provider_statement": {"type": "string", "contentEncoding": "base64", "description": "JSON: provider (Ed25519, hex), host_key (X25519, hex), node_id, nonce, issued"},
                    "provider_signature": {"type": "string", "contentEncoding": "base64", "description": "Ed25519 over \"veritee provider key statement v1\\0\" || statement"},
                    "tee_rsa_key": {"type": "string", "contentEncoding": "base64", "description": "The enclave's RSA-3072 import key (CKM_RSA_AES_KEY_WRAP format): JSON {node_id, public_key (SPKI DER, hex)} signed by the attested audit key (u32 length || body || ECDSA P-256 r||s over \"veritee import tee rsa key v1\" || body)"}}},
                "ImportRequest": {"type": "object", "additionalProperties": false, "required": ["metadata", "signature", "sealed"], "properties": {
                    "metadata": {"type": "string", "contentEncoding": "base64", "description": "JSON: version, tenant, node_id, partition, key_id, key_type, operations, key_check, tee_key_id, provider_key_id, validations, created; optional rotate_after_secs, revocation_interval_secs, format (veritee | rsa-aes-key-wrap | hpke), wrapped_sha256 (standard formats: SHA-256 of the TEE layer), release (same-signer | same-measurement), task_signers (tenant ids whose signed task initiations may use the key)"},
                    "signature": {"type": "string", "contentEncoding": "base64", "description": "The tenant's ECDSA P-256 r||s over \"veritee import metadata v1\\0\" || metadata"},
                    "sealed": {"type": "string", "contentEncoding": "base64", "description": "HPKE to the provider key, with the metadata digest as AAD, of the TEE layer: HPKE to the TEE key of the key material with the same AAD, or a standard format (CKM_RSA_AES_KEY_WRAP to the enclave's RSA key, or RFC 9180 HPKE to its X25519 key) the metadata name with its digest"}}},
                "ImportResponse": {"type": "object", "required": ["confirmation", "checkpoint"], "properties": {
                    "confirmation": {"type": "string", "contentEncoding": "base64"},
                    "checkpoint": {"type": "string", "description": "A signed checkpoint of the audit log that records the import (C2SP signed note)"}}},
                "CreatePartitionRequest": {"type": "object", "additionalProperties": false, "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}}},
                "PartitionList": {"type": "object", "required": ["partitions"], "properties": {"partitions": {"type": "array", "items": {
                    "type": "object", "required": ["name", "keys"], "properties": {"name": {"type": "string"}, "keys": {"type": "array", "items": {"type": "string"}}}}}}}
    });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "veritee provider node",
            "version": "1",
            "description": "The untrusted host's API. Everything meant for the enclave travels inside attested, end-to-end encrypted session messages (application/octet-stream) that the host relays without reading."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "The node admin token (STATE/admin.token)."},
                "tenantSignature": {"type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "Veritee tenant=<32 hex>, node=<16 hex>, epoch=<32 hex>, ts=<unix seconds>, nonce=<32 hex, fresh>, sig=<base64 ECDSA P-256 r||s over \"VERITEE-REQUEST-V2\\n{node}\\n{epoch}\\n{method}\\n{path?query}\\n{ts}\\n{nonce}\\n{hex sha256(body)}\">; node and epoch from GET /v1/node. The enclave checks it and refuses a nonce it has seen."},
                "peerToken": {"type": "http", "scheme": "VeriteePeer", "description": "A peer node's token, registered with POST /v1/peers."},
                "kbsAdminToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)", "description": "A KBS admin token signed by the key given to veritee node --kbs-admin-key (veritee kbs admin-token, or Trustee's)."}
            },
            "schemas": {
                "KbsProblem": {"type": "object", "required": ["type", "detail"], "properties": {"type": {"type": "string"}, "detail": {"type": "string"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Health": {"type": "object", "required": ["status", "enclave", "enclave_restarts", "store", "tee"], "properties": {
                    "status": {"type": "string", "enum": ["ok", "degraded"]}, "enclave": {"type": "string", "enum": ["running", "restarting"]},
                    "enclave_restarts": {"type": "integer"}, "store": {"type": "string", "enum": ["embedded", "postgres"]},
                    "tee": {"type": "string", "enum": ["sim", "sgx", "tdx", "snp", "nitro"]},
                    "warning": {"type": "string", "description": "Present when the node found no TEE and runs on the simulator"}}},
                "RegisterTenantRequest": {"type": "object", "additionalProperties": false, "required": ["public_key"],
                    "properties": {"public_key": {"type": "string", "contentEncoding": "base64", "description": "ECDSA P-256 SubjectPublicKeyInfo, DER"}}},
                "RegisterTenantResponse": {"type": "object", "required": ["tenant_id"], "properties": {"tenant_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}},
                "NodeInfo": {"type": "object", "required": ["node_id", "epoch"], "properties": {
                    "node_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"}, "epoch": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}},
                "RegisterPeerRequest": {"type": "object", "additionalProperties": false, "required": ["name", "token_sha256"], "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "token_sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}},
                "AttestationResponse": {"type": "object", "required": ["evidence", "audit_public_key", "checkpoint_public_key"], "properties": {
                    "evidence": {"type": "string", "contentEncoding": "base64"}, "audit_public_key": {"type": "string", "contentEncoding": "base64"},
                    "checkpoint_public_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
                "OpenSessionRequest": {"type": "object", "additionalProperties": false, "required": ["nonce"],
                    "properties": {"nonce": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
                "OpenSessionResponse": {"type": "object", "required": ["session_id", "enclave_public_key", "evidence"], "properties": {
                    "session_id": {"type": "string"}, "enclave_public_key": {"type": "string"}, "evidence": {"type": "string", "contentEncoding": "base64"}}},
                "ResumeSessionRequest": {"type": "object", "additionalProperties": false, "required": ["ticket", "nonce", "message"], "properties": {
                    "ticket": {"type": "string", "contentEncoding": "base64"}, "nonce": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "message": {"type": "string", "contentEncoding": "base64"}}},
                "ResumeSessionResponse": {"type": "object", "required": ["session_id", "message"], "properties": {
                    "session_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "message": {"type": "string", "contentEncoding": "base64"}}},
                "WrappingKeyResponse": {"type": "object", "required": ["public_key", "audit_public_key", "checkpoint_public_key", "node_id", "evidence"], "properties": {
                    "public_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "audit_public_key": {"type": "string", "contentEncoding": "base64"},
                    "checkpoint_public_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "node_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                    "evidence": {"type": "string", "contentEncoding": "base64"}}},
                "ImportKeyRequest": {"type": "object", "additionalProperties": false, "required": ["wrapped"],
                    "properties": {"wrapped": {"type": "string", "contentEncoding": "base64"}}},
                "ImportKeyResponse": {"type": "object", "required": ["receipt", "checkpoint"], "properties": {"receipt": {"type": "string", "contentEncoding": "base64"},
                    "checkpoint": {"type": "string", "description": "A signed checkpoint of the audit log that records the import (C2SP signed note)"}}},
                "AuditLog": {"type": "object", "required": ["log", "entries"], "properties": {"log": {"type": "string"},
                    "entries": {"type": "array", "items": {"type": "object", "required": ["seq", "entry"],
                        "properties": {"seq": {"type": "integer"}, "entry": {"type": "string", "contentEncoding": "base64"}}}}}}
            }
        }
    });
    if let (Some(schemas), Some(extra)) = (
        doc["components"]["schemas"].as_object_mut(),
        import_schemas.as_object(),
    ) {
        schemas.extend(extra.clone());
    }
    doc
}
