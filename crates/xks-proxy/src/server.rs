//! xks-proxy's HTTP handler on the shared shell ([`http_shell`]): collect
//! the body within limits, call the core, write the reply, log one line.

use crate::audit::{new_request_id, AuditRecord, RequestFacts};
use crate::metrics::Metrics;
use crate::service::{Incoming, Proxy, Reply};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use http_shell::{read_body, BodyError, ShellLimits};
use hyper::body::Incoming as Body;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;
use xks_wire::ErrorName;

/// What the shell does around the core: the audit log and metrics, both
/// optional.
#[derive(Clone, Default)]
pub struct Observers {
    pub audit: Option<audit_sink::AuditSink>,
    pub metrics: Option<Arc<Metrics>>,
}

/// Serves the proxy until `shutdown` completes (see [`http_shell::serve`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    limits: ShellLimits,
    observers: Observers,
    shutdown: impl Future<Output = ()>,
) {
    let shell_limits = limits.clone();
    let stats = observers
        .metrics
        .as_ref()
        .map_or_else(Default::default, |m| m.shell_stats());
    let observers = Arc::new(observers);
    http_shell::serve_counted(
        listener,
        tls,
        shell_limits,
        stats,
        shutdown,
        move |req, peer| {
            let proxy = Arc::clone(&proxy);
            let limits = limits.clone();
            let observers = Arc::clone(&observers);
            let request_id = new_request_id();
            // Every line logged while handling the request carries its id.
            let span = tracing::info_span!(
                "request",
                request_id = %request_id,
                kms_request_id = tracing::field::Empty
            );
            async move { handle(&proxy, &limits, &observers, &request_id, peer, req).await }
                .instrument(span)
        },
    )
    .await
}

fn audit_unavailable() -> crate::error::XksError {
    crate::error::XksError::new(
        ErrorName::InternalException,
        "The proxy cannot write its audit log; requests are refused until it can.",
    )
}

async fn handle(
    proxy: &Proxy,
    limits: &ShellLimits,
    observers: &Observers,
    request_id: &str,
    peer: SocketAddr,
    req: Request<Body>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let _in_flight = observers.metrics.as_ref().map(|m| m.in_flight());
    let (parts, body) = read_body(req, limits).await;
    let too_large = || {
        crate::error::XksError::new(
            ErrorName::UnsupportedOperationException,
            format!(
                "Request bodies larger than {} bytes are not supported.",
                limits.max_body_bytes
            ),
        )
    };
    let fail_closed = observers.audit.as_ref().is_some_and(|a| a.refuses());
    let mut reply = match body {
        // Refused before any work: nothing happens that is not audited.
        Ok(_) if fail_closed => Reply::error(audit_unavailable(), Default::default()),
        Ok(body) => {
            let authority = parts.uri.authority().map(|a| a.as_str());
            proxy
                .handle(Incoming {
                    method: &parts.method,
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    headers: &parts.headers,
                    authority,
                    body: &body,
                })
                .await
        }
        Err(BodyError::TooLarge) => Reply::error(too_large(), Default::default()),
        Err(BodyError::Read(e)) => Reply::error(
            crate::error::XksError::validation("The request body could not be read.")
                .with_detail(e),
            Default::default(),
        ),
        Err(BodyError::Timeout) => Reply::error(
            crate::error::XksError::validation("The request body was not received in time."),
            Default::default(),
        ),
    };
    let lb_check = parts.method == http::Method::GET
        && parts.uri.path() == proxy.settings().load_balancer_health_path;
    if !lb_check {
        if let Some(sink) = &observers.audit {
            let facts = RequestFacts {
                request_id,
                peer,
                method: parts.method.as_str(),
                path: parts.uri.path(),
                status: reply.status,
                latency: start.elapsed(),
            };
            let outcome = sink.record(&AuditRecord::new(&facts, &reply.log)).await;
            if outcome.is_err() && !fail_closed {
                // The sink failed while this request ran (fail closed): its
                // result is withheld.
                let log = std::mem::take(&mut reply.log);
                reply = Reply::error(audit_unavailable(), log);
            }
        }
    }
    let latency = start.elapsed();
    log_request(&reply, &parts.method, parts.uri.path(), peer, latency);
    if let Some(m) = &observers.metrics {
        if !lb_check {
            m.request(
                reply.log.operation.map_or("unknown", |o| o.as_str()),
                reply.log.key_store.as_ref().map(|k| k.name.as_str()),
                reply.log.error.map_or("success", |e| e.as_str()),
                latency,
            );
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(reply.content_type),
    );
    if let Some(allow) = reply.allow {
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    resp
}

/// Serves `GET /metrics` on its own plain-HTTP listener until `shutdown`
/// ([`http_shell::metrics::serve_metrics`]).
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    http_shell::metrics::serve_metrics(listener, move || Some(metrics.encode()), shutdown).await
}

/// One structured line per request. Never plaintext, AAD, keys or signatures.
fn log_request(
    reply: &Reply,
    method: &http::Method,
    path: &str,
    peer: SocketAddr,
    latency: Duration,
) {
    let l = &reply.log;
    let dash = "-";
    tracing::info!(
        target: "xks_proxy::access",
        status = reply.status,
        operation = l.operation.map_or(dash, |o| o.as_str()),
        key_store = l.key_store.as_ref().map_or(dash, |k| k.name.as_str()),
        key_id = l.key_id.as_deref().unwrap_or(dash),
        kms_request_id = l.kms_request_id.as_deref().unwrap_or(dash),
        kms_operation = l.kms_operation.as_deref().unwrap_or(dash),
        principal = l.principal.as_deref().unwrap_or(dash),
        kms_key_arn = l.kms_key_arn.as_deref().unwrap_or(dash),
        access_key_id = l.access_key_id.as_deref().unwrap_or(dash),
        error = l.error.map_or(dash, |e| e.as_str()),
        detail = l.detail.as_deref().unwrap_or(dash),
        latency_us = latency.as_micros() as u64,
        %peer,
        %method,
        path,
        "request"
    );
}
