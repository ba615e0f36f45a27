//! What both servers' Prometheus endpoints share (feature `prometheus`):
//! the latency buckets and the `GET /metrics` listener.

use crate::{ShellLimits, ShellStats};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use prometheus_client::metrics::histogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Latency buckets in seconds: 50 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// A histogram over [`LATENCY_BUCKETS`] (a `Family` constructor).
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What `prometheus-client`'s text encoder writes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on its own plain-HTTP listener until `shutdown`:
/// `encode()` gives the exposition, or `None` when metrics are off (404).
/// Other paths are 404, other methods 405. Keep it on loopback or a
/// management network: it is unauthenticated.
pub async fn serve_metrics(
    listener: TcpListener,
    encode: impl Fn() -> Option<String> + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ShellLimits {
        max_body_bytes: 0,
        request_timeout: Duration::from_secs(10),
        max_header_bytes: 16 * 1024,
        connections: crate::ConnectionLimits::default(),
    };
    let encode = Arc::new(encode);
    crate::serve_counted(
        listener,
        None,
        limits,
        Arc::new(ShellStats::default()),
        shutdown,
        move |req, _peer| {
            let encode = Arc::clone(&encode);
            async move {
                let (status, ctype, body) = if req.uri().path() != "/metrics" {
                    (
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        "not found\n".to_owned(),
                    )
                } else if req.method() != http::Method::GET {
                    (
                        StatusCode::METHOD_NOT_ALLOWED,
                        "text/plain",
                        "GET only\n".to_owned(),
                    )
                } else {
                    match encode() {
                        Some(text) => (StatusCode::OK, METRICS_CONTENT_TYPE, text),
                        None => (
                            StatusCode::NOT_FOUND,
                            "text/plain",
                            "not found\n".to_owned(),
                        ),
                    }
                };
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                *resp.status_mut() = status;
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
                resp
            }
        },
    )
    .await
}
