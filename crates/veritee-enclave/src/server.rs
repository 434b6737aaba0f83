//! The enclave process's socket server: one thread per host connection, one
//! conversation at a time per connection.

use crate::EnclaveService;
use crate::host::{HostLink, failure};
use std::io::BufReader;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use tracing::{debug, warn};
use veritee_proto::frame::{self, FrameError};
use veritee_proto::ipc::{
    EnclaveFailure, EnclaveToHost, FailureKind, HostCall, HostResult, HostToEnclave,
};

/// Most simultaneous host connections.
pub const MAX_CONNECTIONS: usize = 256;

/// A host connection: read through a buffer (every read goes through it, so nothing
/// read ahead is lost), written straight to the socket.
type HostConnection = BufReader<UnixStream>;

struct SocketLink<'s> {
    stream: &'s mut HostConnection,
    id: u64,
}

impl HostLink for SocketLink<'_> {
    fn call(&mut self, call: HostCall) -> Result<HostResult, EnclaveFailure> {
        let io =
            |e: FrameError| failure(FailureKind::Unavailable, format!("host link failed: {e}"));
        frame::write_with_tail(
            &mut self.stream.get_ref(),
            EnclaveToHost::HostCall { id: self.id, call },
        )
        .map_err(io)?;
        match frame::read::<HostToEnclave>(self.stream).map_err(io)? {
            HostToEnclave::HostResult { id, result } if id == self.id => Ok(result),
            _ => Err(failure(
                FailureKind::BadRequest,
                "the host answered a host call with something else",
            )),
        }
    }
}

/// Serves one connection until the host closes it or breaks the protocol.
pub fn serve_connection(service: &EnclaveService, stream: UnixStream) {
    // Best effort: a smaller buffer only makes large frames slower.
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, frame::LINK_SEND_BUFFER);
    let mut stream = BufReader::with_capacity(frame::LINK_READ_BUFFER, stream);
    loop {
        let request = match frame::read_with_tail::<HostToEnclave>(&mut stream) {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(e) => {
                warn!("dropping host connection: {e}");
                return;
            }
        };
        let (id, call) = match request {
            HostToEnclave::Request { id, call } => (id, call),
            HostToEnclave::HostResult { id, .. } => {
                warn!(
                    id,
                    "dropping host connection: a host result arrived outside a host call"
                );
                return;
            }
        };
        let result = service.handle(
            call,
            &mut SocketLink {
                stream: &mut stream,
                id,
            },
        );
        if let Err(f) = &result {
            debug!(id, kind = ?f.kind, "conversation failed: {}", f.message);
        }
        if let Err(e) =
            frame::write_with_tail(&mut stream.get_ref(), EnclaveToHost::Reply { id, result })
        {
            warn!("dropping host connection: {e}");
            return;
        }
    }
}

/// Accepts host connections forever.
pub fn serve(listener: UnixListener, service: Arc<EnclaveService>) -> std::io::Result<()> {
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = stream?;
        if active.load(std::sync::atomic::Ordering::SeqCst) >= MAX_CONNECTIONS {
            warn!("refusing a host connection: {MAX_CONNECTIONS} already open");
            continue;
        }
        active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let service = Arc::clone(&service);
        let active = Arc::clone(&active);
        std::thread::Builder::new()
            .name("enclave-conn".into())
            .spawn(move || {
                serve_connection(&service, stream);
                active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            })?;
    }
    Ok(())
}
