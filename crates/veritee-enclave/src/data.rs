//! Encrypted data exchange: objects in the chunked AEAD stream format of
//! `veritee-stream`, under a deployed user data key.
//!
//! The node keeps an object as the client encrypted it. The enclave checks the header
//! and every chunk under the tenant's key on the way in (so nothing altered is stored
//! as valid) and again on the way out (so a host that alters, reorders, truncates or
//! splices stored chunks is caught before the client is served). The header's
//! authenticated context names the object and its version, which must be newer than
//! the stored one; the object's metadata (upload, header, chunk count, version) is a
//! sealed record the host cannot roll back, and when a client opens an object the
//! enclave vouches for its current version under the client's nonce
//! ([`veritee_channel::data::vouch`]). An object becomes visible only when its final
//! chunk has been checked; the previous version stays until then.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use veritee_channel::data::{ObjectState, parse_object_context, vouch};
use veritee_proto::api::paths;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};
use veritee_stream::{ChunkOpener, Header, StreamKey};

const MAX_UPLOADS: usize = 256;
const UPLOAD_IDLE: Duration = Duration::from_secs(30 * 60);

/// An upload in progress.
pub(crate) struct Upload {
    tenant: String,
    object: String,
    version: u64,
    header: Vec<u8>,
    opener: ChunkOpener,
    next_index: u64,
    bytes: u64,
    touched: Instant,
}

/// What sealed state holds about a complete object.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectMeta {
    upload: String,
    header: String,
    chunks: u64,
    bytes: u64,
    version: u64,
}

/// The in-memory uploads table.
#[derive(Default)]
pub(crate) struct Uploads(HashMap<String, Upload>);

fn data_ns(tenant: &str) -> String {
    format!("data/{tenant}")
}

fn chunk_key(object: &str, upload: &str, index: u64) -> String {
    format!("chunk/{object}/{upload}/{index:016x}")
}

fn meta_key(object: &str) -> String {
    format!("meta/{object}")
}

impl EnclaveService {
    fn stream_key(
        &self,
        tenant: &str,
        header: &Header,
        link: &mut dyn HostLink,
    ) -> Result<(StreamKey, crate::keys::UserKey), EnclaveFailure> {
        let key = self.user_key(tenant, header.key_id(), link)?;
        Ok((StreamKey::new(&key.key), key))
    }

    pub(crate) fn data_begin(
        &self,
        request: &SignedRequest,
        object: &str,
        header_bytes: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        Self::checked_name(object)?;
        let tenant = self.authenticate(
            request,
            "POST",
            &paths::data_uploads(object),
            header_bytes,
            link,
        )?;
        let (header, used) = Header::parse(header_bytes).map_err(bad)?;
        if used != header_bytes.len() {
            return Err(bad("trailing bytes after the stream header"));
        }
        let (key, _) = self.stream_key(&tenant, &header, link)?;
        // Authenticates the header, its context included.
        let opener = ChunkOpener::new(&key, &header).map_err(bad)?;
        let version = match parse_object_context(header.context()) {
            Some((named, version)) if named == object => version,
            _ => {
                return Err(bad(format!(
                    "the stream is not bound to object {object}: its context names something else"
                )));
            }
        };
        if let Some(current) = self.object_meta(&tenant, object, link)?
            && version <= current.version
        {
            return Err(failure(
                FailureKind::Conflict,
                format!(
                    "object {object} is at version {}; a new upload must be newer, not version {version}",
                    current.version
                ),
            ));
        }
        let upload_id = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
        let mut uploads = lock(&self.uploads);
        let now = Instant::now();
        uploads
            .0
            .retain(|_, u| now.duration_since(u.touched) < UPLOAD_IDLE);
        if uploads.0.len() >= MAX_UPLOADS {
            return Err(failure(
                FailureKind::Unavailable,
                "too many uploads in progress; retry later",
            ));
        }
        uploads.0.insert(
            upload_id.clone(),
            Upload {
                tenant,
                object: object.into(),
                version,
                header: header_bytes.to_vec(),
                opener,
                next_index: 0,
                bytes: 0,
                touched: now,
            },
        );
        Ok(EnclaveReply::DataUpload { upload_id })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn data_chunk(
        &self,
        request: &SignedRequest,
        object: &str,
        upload_id: &str,
        index: u64,
        last: bool,
        chunk: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(
            request,
            "PUT",
            &paths::data_upload_chunk(object, upload_id, index, last),
            chunk,
            link,
        )?;
        // The upload leaves the table while its chunk is checked and stored.
        let Some(mut upload) = lock(&self.uploads).0.remove(upload_id) else {
            return Err(failure(FailureKind::NotFound, "unknown or expired upload"));
        };
        if upload.tenant != tenant || upload.object != object {
            lock(&self.uploads).0.insert(upload_id.to_string(), upload);
            return Err(failure(FailureKind::NotFound, "unknown or expired upload"));
        }
        if index != upload.next_index {
            let expected = upload.next_index;
            lock(&self.uploads).0.insert(upload_id.to_string(), upload);
            return Err(bad(format!(
                "chunk {index} arrived; chunk {expected} is next"
            )));
        }
        let plain_len = upload.opener.open(index, chunk, last).map_err(bad)?.len() as u64;
        let ns = data_ns(&tenant);
        link.put(&ns, &chunk_key(object, upload_id, index), chunk.to_vec())?;
        upload.next_index += 1;
        upload.bytes += plain_len;
        upload.touched = Instant::now();
        if !last {
            lock(&self.uploads).0.insert(upload_id.to_string(), upload);
            return Ok(EnclaveReply::DataChunkStored { complete: false });
        }
        // The version check and the write are one step: two uploads finishing at once
        // never let the older replace the newer.
        let _commit = lock(&self.data_commits);
        let previous = self.object_meta(&tenant, object, link)?;
        if let Some(current) = &previous
            && upload.version <= current.version
        {
            return Err(failure(
                FailureKind::Conflict,
                format!(
                    "object {object} reached version {} while this upload (version {}) was sent; nothing was replaced",
                    current.version, upload.version
                ),
            ));
        }
        let meta = ObjectMeta {
            upload: upload_id.into(),
            header: hex::encode(&upload.header),
            chunks: upload.next_index,
            bytes: upload.bytes,
            version: upload.version,
        };
        self.record_put(
            link,
            &ns,
            &meta_key(object),
            &serde_json::to_vec(&meta).map_err(internal)?,
        )?;
        if let Some(old) = previous.filter(|old| old.upload != upload_id) {
            for i in 0..old.chunks {
                let _ = link.delete(&ns, &chunk_key(object, &old.upload, i));
            }
        }
        self.audit(
            link,
            "data.put",
            &tenant,
            object,
            &format!("ok: version {}, {} bytes", upload.version, upload.bytes),
        )?;
        Ok(EnclaveReply::DataChunkStored { complete: true })
    }

    fn object_meta(
        &self,
        tenant: &str,
        object: &str,
        link: &mut dyn HostLink,
    ) -> Result<Option<ObjectMeta>, EnclaveFailure> {
        Self::checked_name(object)?;
        match self.record_get(link, &data_ns(tenant), &meta_key(object))? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(bytes.expose()).map_err(internal)?,
            )),
            None => Ok(None),
        }
    }

    fn existing_meta(
        &self,
        tenant: &str,
        object: &str,
        link: &mut dyn HostLink,
    ) -> Result<ObjectMeta, EnclaveFailure> {
        self.object_meta(tenant, object, link)?.ok_or_else(|| {
            failure(
                FailureKind::NotFound,
                format!("no data object named {object}"),
            )
        })
    }

    pub(crate) fn data_open(
        &self,
        request: &SignedRequest,
        object: &str,
        nonce: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(
            request,
            "GET",
            &paths::data_object(object, nonce),
            b"",
            link,
        )?;
        let nonce = hex::decode(nonce)
            .ok()
            .filter(|n| n.len() == 32)
            .ok_or_else(|| bad("the nonce must be 32 bytes of hex"))?;
        let meta = self.existing_meta(&tenant, object, link)?;
        let header_bytes = hex::decode(&meta.header).map_err(internal)?;
        let (header, _) = Header::parse(&header_bytes).map_err(internal)?;
        let (_, key) = self.stream_key(&tenant, &header, link)?;
        let mac = vouch(
            &key.key,
            &ObjectState {
                tenant: &tenant,
                object,
                version: meta.version,
                chunks: meta.chunks,
                header: &header_bytes,
            },
            &nonce,
        )
        .map_err(internal)?;
        self.audit(
            link,
            "data.get",
            &tenant,
            object,
            &format!("ok: version {}", meta.version),
        )?;
        Ok(EnclaveReply::DataHeader {
            header: header_bytes,
            chunks: meta.chunks,
            version: meta.version,
            vouch: mac.to_vec(),
        })
    }

    pub(crate) fn data_read(
        &self,
        request: &SignedRequest,
        object: &str,
        index: u64,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant =
            self.authenticate(request, "GET", &paths::data_chunk(object, index), b"", link)?;
        let meta = self.existing_meta(&tenant, object, link)?;
        if index >= meta.chunks {
            return Err(failure(
                FailureKind::NotFound,
                format!("object {object} has {} chunks", meta.chunks),
            ));
        }
        let header_bytes = hex::decode(&meta.header).map_err(internal)?;
        let (header, _) = Header::parse(&header_bytes).map_err(internal)?;
        let (key, _) = self.stream_key(&tenant, &header, link)?;
        let mut opener = ChunkOpener::new(&key, &header).map_err(internal)?;
        let Some(chunk) = link.get(&data_ns(&tenant), &chunk_key(object, &meta.upload, index))?
        else {
            return Err(failure(
                FailureKind::Internal,
                format!("chunk {index} of {object} is missing from the store"),
            ));
        };
        let last = index + 1 == meta.chunks;
        opener.open(index, &chunk, last).map_err(|e| {
            failure(
                FailureKind::Internal,
                format!("stored chunk {index} of {object} fails its check: {e}"),
            )
        })?;
        Ok(EnclaveReply::DataChunk { chunk, last })
    }
}
