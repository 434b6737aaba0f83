//! The small HTTP services the CLI runs beside a node (`veritee revocation serve` for
//! a customer, `veritee vendor serve` for the simulated vendor): one router on one
//! address, its URL published in DIR/serve.addr for scripts and tests, stopped by
//! Ctrl-C.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::Path;

/// Serves `app` on `listen` until Ctrl-C. Once listening, calls `on_ready` with the
/// URL (`http://ADDR` followed by `path`), then writes it to `dir/serve.addr`, so
/// whoever waits for the file reads what `on_ready` printed first.
pub fn run(
    app: axum::Router,
    dir: &Path,
    listen: SocketAddr,
    path: &str,
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let url = format!("http://{}{path}", listener.local_addr()?);
        on_ready(&url);
        let partial = dir.join("serve.addr.partial");
        std::fs::write(&partial, &url).context("cannot write serve.addr")?;
        std::fs::rename(&partial, dir.join("serve.addr")).context("cannot write serve.addr")?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server failed")
    })
}
