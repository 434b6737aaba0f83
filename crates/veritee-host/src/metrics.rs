//! Prometheus metrics, kept in plain atomics and rendered by hand.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The node's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    request_latency: Histogram,
    enclave_latency: Histogram,
    enclave_calls_ok: AtomicU64,
    enclave_calls_failed: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_resumed: AtomicU64,
}

impl core::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records an HTTP request.
    pub fn request(&self, route: &'static str, status: u16, latency: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route, status))
            .or_default() += 1;
        self.request_latency.observe(latency);
    }

    /// Records an enclave conversation.
    pub fn enclave_call(&self, latency: Duration, ok: bool) {
        self.enclave_latency.observe(latency);
        if ok {
            self.enclave_calls_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.enclave_calls_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records an opened session.
    pub fn session_opened(&self) {
        self.sessions_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a session resumed by a ticket.
    pub fn session_resumed(&self) {
        self.sessions_resumed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, enclave_up: bool, enclave_restarts: u64) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE veritee_http_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "veritee_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        self.request_latency
            .render("veritee_http_request_duration_seconds", &mut out);
        self.enclave_latency
            .render("veritee_enclave_call_duration_seconds", &mut out);
        let _ = writeln!(out, "# TYPE veritee_enclave_calls_total counter");
        let _ = writeln!(
            out,
            "veritee_enclave_calls_total{{result=\"ok\"}} {}",
            self.enclave_calls_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "veritee_enclave_calls_total{{result=\"failed\"}} {}",
            self.enclave_calls_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE veritee_sessions_opened_total counter");
        let _ = writeln!(
            out,
            "veritee_sessions_opened_total {}",
            self.sessions_opened.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE veritee_sessions_resumed_total counter");
        let _ = writeln!(
            out,
            "veritee_sessions_resumed_total {}",
            self.sessions_resumed.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE veritee_enclave_up gauge");
        let _ = writeln!(out, "veritee_enclave_up {}", u8::from(enclave_up));
        let _ = writeln!(out, "# TYPE veritee_enclave_restarts_total counter");
        let _ = writeln!(out, "veritee_enclave_restarts_total {enclave_restarts}");
        out
    }
}
