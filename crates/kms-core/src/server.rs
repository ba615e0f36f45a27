//! kms-core's HTTP handler on the shared shell ([`http_shell`]).

use crate::api::error::KmsError;
use crate::api::protocol;
use crate::service::Kms;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use http_shell::{read_body, BodyError, ShellLimits};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// KMS's largest request is well under this (4 KiB plaintext, 32 KiB
/// policy, encryption context, tags, grant tokens in Base64/JSON).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A running kms-core.
pub struct KmsHandle {
    pub addr: SocketAddr,
    /// The service (reloads: [`Kms::reload_auth`]).
    pub kms: Arc<Kms>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    store: Arc<dyn crate::store::Store>,
}

impl KmsHandle {
    /// Stops accepting, lets in-flight requests finish (within
    /// [`http_shell::SHUTDOWN_GRACE`]) and stops the deletion sweeper. The
    /// audit log is flushed by closing its [`audit_sink::SinkGuard`] after
    /// this returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.sweeper.abort();
        let store = Arc::clone(&self.store);
        let _ = tokio::task::spawn_blocking(move || flush_usage(store.as_ref())).await;
    }
}

/// Writes the key usage recorded since the last flush.
fn flush_usage(store: &dyn crate::store::Store) {
    if let Err(e) = store.flush_usage() {
        tracing::warn!(error = %e, "writing key usage failed; will retry");
    }
}

/// How often the background sweeper runs: 60 s, or
/// `KMS_CORE_SWEEP_INTERVAL_MS` (tests and demos).
fn sweep_interval() -> Duration {
    std::env::var("KMS_CORE_SWEEP_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(Duration::from_secs(60), Duration::from_millis)
}

/// The custom key stores' gauges: connection state, credential age,
/// days until the proxy's certificate expires.
fn store_reports(kms: &Kms) -> Vec<crate::metrics::StoreReport> {
    let now = crate::clock::now();
    let registry = kms.xks();
    kms.store()
        .all_custom_key_stores()
        .iter()
        .map(|r| {
            let conn = registry.conn(&r.id);
            crate::metrics::StoreReport {
                id: r.id.clone(),
                state: conn.as_ref().map(|_| registry.describe(&r.id).0),
                credential_age_seconds: Some(now - r.credential_set_at()),
                certificate_days_to_expire: conn
                    .as_ref()
                    .and_then(|c| c.health.as_ref()?.certificate_not_after)
                    .map(|t| (t as f64 - now) / 86_400.0),
                attempts_and_retries: Some(registry.call_stats(&r.id).counts()),
            }
        })
        .collect()
}

/// Writes the audit record of a background event (from a blocking
/// thread); a lost record is logged.
fn service_event(
    audit: Option<&audit_sink::AuditSink>,
    name: &str,
    account: &str,
    region: &str,
    arn: &str,
    details: serde_json::Value,
) {
    let Some(sink) = audit else { return };
    let record = crate::audit::Record::service_event(name, account, region, arn, details);
    if let Err(e) = sink.record_blocking(&record) {
        tracing::error!(event = name, %arn, error = %e, "audit record of a background event lost");
    }
}

/// Binds `addr` and serves `kms`, over TLS when `tls` is given.
pub async fn start(
    addr: SocketAddr,
    kms: Kms,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<KmsHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let kms = Arc::new(kms);
    let service = Arc::clone(&kms);
    let kms_store = &Arc::clone(kms.store());
    // The background sweeper, on the service's clock: keys whose waiting
    // period is over are deleted; due rotations (automatic, and on-demand
    // ones a restart interrupted) are performed; key usage recorded since
    // the last tick is written in one batch.
    let sweeper = {
        let store = Arc::clone(kms.store());
        let audit = kms.audit().cloned();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_interval());
            loop {
                tick.tick().await;
                let store = Arc::clone(&store);
                let audit = audit.clone();
                let now = crate::clock::now();
                let _ = tokio::task::spawn_blocking(move || {
                    crate::ops::keys::sweep_with(store.as_ref(), now, |account, region, key_id| {
                        service_event(
                            audit.as_ref(),
                            "DeleteKey",
                            account,
                            region,
                            &crate::keys::key_arn(region, account, key_id),
                            serde_json::json!({"keyId": key_id, "reason": "PendingDeletionWindowExpired"}),
                        );
                    });
                    crate::ops::rotation::rotate_due_with(store.as_ref(), now, |entry, kind| {
                        let r = &entry.record;
                        service_event(
                            audit.as_ref(),
                            "RotateKey",
                            &r.account,
                            &r.region,
                            &r.arn,
                            serde_json::json!({
                                "keyId": r.key_id,
                                "rotationType": kind.wire().as_str(),
                                "keyMaterialId": r.material_id(r.current_version),
                            }),
                        );
                    });
                    flush_usage(store.as_ref());
                })
                .await;
            }
        })
    };
    let limits = ShellLimits {
        max_body_bytes: MAX_BODY_BYTES,
        ..ShellLimits::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    let shell_limits = limits.clone();
    let over_tls = tls.is_some();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let stats = kms
        .metrics()
        .map_or_else(Default::default, |m| m.shell_stats());
    let task = tokio::spawn(http_shell::serve_counted(
        listener,
        acceptor,
        shell_limits,
        stats,
        async {
            let _ = rx.await;
        },
        move |req, peer| {
            let kms = Arc::clone(&kms);
            let limits = limits.clone();
            let peer = crate::context::Peer {
                address: Some(peer),
                tls: over_tls,
            };
            async move { handle(&kms, &limits, peer, req).await }
        },
    ));
    tracing::info!(%addr, "kms-core listening");
    Ok(KmsHandle {
        addr,
        kms: service,
        shutdown: Some(tx),
        task,
        sweeper,
        store: Arc::clone(kms_store),
    })
}

async fn handle(
    kms: &Kms,
    limits: &ShellLimits,
    peer: crate::context::Peer,
    req: http::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let _in_flight = kms.metrics().map(|m| m.in_flight());
    if req.method() == http::Method::GET {
        // Health endpoints: never audited, no authentication.
        let health = match req.uri().path() {
            "/healthz" => Some(crate::health::liveness()),
            "/readyz" => Some(crate::health::readiness(kms)),
            _ => None,
        };
        if let Some((status, body)) = health {
            let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return resp;
        }
    }
    let (parts, body) = read_body(req, limits).await;
    let mut context_op = None;
    let (status, body, request_id, operation, error) = match body {
        Ok(body) => {
            let r = kms
                .handle_from(
                    &sigv4::RequestParts {
                        method: parts.method.as_str(),
                        path: parts.uri.path(),
                        query: parts.uri.query(),
                        headers: &parts.headers,
                        authority: parts.uri.authority().map(|a| a.as_str()),
                        body: &body,
                    },
                    peer,
                )
                .await;
            context_op = r.context.operation;
            (r.status, r.body, r.request_id, r.operation, r.error)
        }
        Err(e) => {
            let err = match e {
                BodyError::TooLarge => KmsError::Validation(format!(
                    "Request bodies larger than {MAX_BODY_BYTES} bytes are not accepted."
                )),
                BodyError::Read(_) => {
                    KmsError::Serialization("The request body could not be read.".into())
                }
                BodyError::Timeout => {
                    KmsError::Serialization("The request body was not received in time.".into())
                }
            };
            let r = kms.refuse_unread(&parts.headers, peer, err).await;
            (r.status, r.body, r.request_id, r.operation, r.error)
        }
    };
    if let Some(m) = kms.metrics() {
        // The operation name of the model (bounded), or "Unknown".
        let op = context_op.map_or("Unknown", |o| o.name());
        m.request(op, error.unwrap_or("success"), start.elapsed());
    }
    tracing::info!(
        target: "kms_core::access",
        status,
        operation = operation.as_deref().unwrap_or("-"),
        error = error.unwrap_or("-"),
        request_id = request_id.as_str(),
        latency_us = start.elapsed().as_micros() as u64,
        peer = %peer.address.map(|a| a.to_string()).unwrap_or_default(),
        "request"
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(protocol::CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// Serves `GET /metrics` (Prometheus text) on its own plain-HTTP listener
/// until `shutdown` ([`http_shell::metrics::serve_metrics`]). Keep it on
/// loopback or a management network.
pub async fn serve_metrics(
    listener: TcpListener,
    kms: Arc<Kms>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    http_shell::metrics::serve_metrics(
        listener,
        move || kms.metrics().map(|m| m.encode(&store_reports(&kms))),
        shutdown,
    )
    .await
}
