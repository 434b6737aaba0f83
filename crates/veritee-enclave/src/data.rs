//! Encrypted data exchange: objects in the chunked AEAD stream format of
//! `veritee-stream`, under a deployed user data key.
//!
//! The node keeps an object as the client encrypted it. The enclave checks the header
//! and every chunk under the tenant's key on the way in (so nothing altered is stored
//! as valid) and again on the way out (so a host that alters, reorders, truncates or
//! splices stored chunks is caught before the client is served). An object becomes
//! visible only when its final chunk has been checked; the previous version stays
//! until then.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, internal, lock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_stream::{ChunkOpener, Header, StreamKey};

const MAX_UPLOADS: usize = 256;
const UPLOAD_IDLE: Duration = Duration::from_secs(30 * 60);

/// An upload in progress.
pub(crate) struct Upload {
    tenant: String,
    object: String,
    header: Vec<u8>,
    opener: ChunkOpener,
    next_index: u64,
    bytes: u64,
    touched: Instant,
}

/// What the store holds about a complete object (sealed: the host cannot swap it).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectMeta {
    upload: String,
    header: String,
    chunks: u64,
    bytes: u64,
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

fn bad(e: impl core::fmt::Display) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

impl EnclaveService {
    fn stream_key(
        &self,
        tenant: &str,
        header: &Header,
        link: &mut dyn HostLink,
    ) -> Result<StreamKey, EnclaveFailure> {
        let key = self.user_key(tenant, header.key_id(), link)?;
        Ok(StreamKey::new(&key.key))
    }

    pub(crate) fn data_begin(
        &self,
        tenant: &str,
        object: &str,
        header_bytes: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        Self::checked_name(object)?;
        self.tenant_key(link, tenant)?;
        let (header, used) = Header::parse(header_bytes).map_err(bad)?;
        if used != header_bytes.len() {
            return Err(bad("trailing bytes after the stream header"));
        }
        let key = self.stream_key(tenant, &header, link)?;
        let opener = ChunkOpener::new(&key, &header).map_err(bad)?;
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
                tenant: tenant.into(),
                object: object.into(),
                header: header_bytes.to_vec(),
                opener,
                next_index: 0,
                bytes: 0,
                touched: now,
            },
        );
        Ok(EnclaveReply::DataUpload { upload_id })
    }

    pub(crate) fn data_chunk(
        &self,
        tenant: &str,
        upload_id: &str,
        index: u64,
        last: bool,
        chunk: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // The upload leaves the table while its chunk is checked and stored.
        let Some(mut upload) = lock(&self.uploads).0.remove(upload_id) else {
            return Err(failure(FailureKind::NotFound, "unknown or expired upload"));
        };
        if upload.tenant != tenant {
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
        let ns = data_ns(tenant);
        link.put(
            &ns,
            &chunk_key(&upload.object, upload_id, index),
            chunk.to_vec(),
        )?;
        upload.next_index += 1;
        upload.bytes += plain_len;
        upload.touched = Instant::now();
        if !last {
            lock(&self.uploads).0.insert(upload_id.to_string(), upload);
            return Ok(EnclaveReply::DataChunkStored { complete: false });
        }
        let meta = ObjectMeta {
            upload: upload_id.into(),
            header: hex::encode(&upload.header),
            chunks: upload.next_index,
            bytes: upload.bytes,
        };
        let mkey = meta_key(&upload.object);
        let previous = self.object_meta(tenant, &upload.object, link).ok();
        let sealed = self.seal(&ns, &mkey, &serde_json::to_vec(&meta).map_err(internal)?)?;
        link.put(&ns, &mkey, sealed)?;
        if let Some(old) = previous.filter(|old| old.upload != upload_id) {
            for i in 0..old.chunks {
                let _ = link.delete(&ns, &chunk_key(&upload.object, &old.upload, i));
            }
        }
        self.audit(
            link,
            "data.put",
            tenant,
            &upload.object,
            &format!("ok: {} bytes", upload.bytes),
        )?;
        Ok(EnclaveReply::DataChunkStored { complete: true })
    }

    fn object_meta(
        &self,
        tenant: &str,
        object: &str,
        link: &mut dyn HostLink,
    ) -> Result<ObjectMeta, EnclaveFailure> {
        Self::checked_name(object)?;
        let ns = data_ns(tenant);
        let mkey = meta_key(object);
        let Some(blob) = link.get(&ns, &mkey)? else {
            return Err(failure(
                FailureKind::NotFound,
                format!("no data object named {object}"),
            ));
        };
        serde_json::from_slice(self.unseal(&ns, &mkey, &blob)?.expose()).map_err(internal)
    }

    pub(crate) fn data_open(
        &self,
        tenant: &str,
        object: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.tenant_key(link, tenant)?;
        let meta = self.object_meta(tenant, object, link)?;
        self.audit(link, "data.get", tenant, object, "ok")?;
        Ok(EnclaveReply::DataHeader {
            header: hex::decode(&meta.header).map_err(internal)?,
            chunks: meta.chunks,
        })
    }

    pub(crate) fn data_read(
        &self,
        tenant: &str,
        object: &str,
        index: u64,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.tenant_key(link, tenant)?;
        let meta = self.object_meta(tenant, object, link)?;
        if index >= meta.chunks {
            return Err(failure(
                FailureKind::NotFound,
                format!("object {object} has {} chunks", meta.chunks),
            ));
        }
        let header_bytes = hex::decode(&meta.header).map_err(internal)?;
        let (header, _) = Header::parse(&header_bytes).map_err(internal)?;
        let key = self.stream_key(tenant, &header, link)?;
        let mut opener = ChunkOpener::new(&key, &header).map_err(internal)?;
        let Some(chunk) = link.get(&data_ns(tenant), &chunk_key(object, &meta.upload, index))?
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
