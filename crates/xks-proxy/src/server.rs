//! The HTTP/TLS shell around [`Proxy`]: accept, handshake, collect the body
//! within limits, call the core, write the reply, log one line.

use crate::service::{Incoming, Proxy, Reply};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use xks_wire::ErrorName;

/// Limits the shell enforces before the core sees a request.
#[derive(Debug, Clone)]
pub struct ShellLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_header_bytes: usize,
}

/// How long connections may take to finish in-flight requests after
/// shutdown before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves connections until `shutdown` completes, then stops every
/// connection gracefully: in-flight requests finish (within
/// [`SHUTDOWN_GRACE`]), idle keep-alive connections are closed, nothing new
/// is served.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    limits: ShellLimits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let proxy = Arc::clone(&proxy);
        let limits = Arc::clone(&limits);
        let builder = Arc::clone(&builder);
        let tls = tls.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            let svc = {
                let limits = Arc::clone(&limits);
                service_fn(move |req| {
                    let proxy = Arc::clone(&proxy);
                    let limits = Arc::clone(&limits);
                    async move { Ok::<_, Infallible>(handle(&proxy, &limits, peer, req).await) }
                })
            };
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                    let tls_stream = tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::info!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::info!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = stopped(stop.clone()) => return,
                    };
                    serve_until_stopped(&builder, TokioIo::new(tls_stream), svc, stop).await;
                }
                None => serve_until_stopped(&builder, TokioIo::new(stream), svc, stop).await,
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "connections still busy after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection; when `stop` turns true, finishes in-flight
/// requests and closes it.
async fn serve_until_stopped<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: S,
    stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Body>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the server is told to stop (or the sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn handle(
    proxy: &Proxy,
    limits: &ShellLimits,
    peer: SocketAddr,
    req: Request<Body>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        crate::error::XksError::new(
            ErrorName::UnsupportedOperationException,
            format!(
                "Request bodies larger than {} bytes are not supported.",
                limits.max_body_bytes
            ),
        )
    };
    let reply = if declared.is_some_and(|n| n > DRAIN_CAP) {
        // Too large to even drain: answer at once (the client may see a reset).
        Reply::error(too_large(), Default::default())
    } else {
        match tokio::time::timeout(
            limits.request_timeout,
            read_body(body, limits.max_body_bytes),
        )
        .await
        {
            Ok(Ok(body)) => {
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
            Ok(Err(BodyError::TooLarge)) => Reply::error(too_large(), Default::default()),
            Ok(Err(BodyError::Read(e))) => Reply::error(
                crate::error::XksError::validation("The request body could not be read.")
                    .with_detail(e),
                Default::default(),
            ),
            Err(_) => Reply::error(
                crate::error::XksError::validation("The request body was not received in time."),
                Default::default(),
            ),
        }
    };
    log_request(
        &reply,
        &parts.method,
        parts.uri.path(),
        peer,
        start.elapsed(),
    );
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

/// Oversized bodies up to this size are read and discarded before the 501
/// reply, so that a client still sending sees the reply rather than a reset.
const DRAIN_CAP: usize = 1024 * 1024;

enum BodyError {
    TooLarge,
    Read(String),
}

/// Collects at most `max` bytes; beyond that keeps draining (discarding) up
/// to [`DRAIN_CAP`] and reports `TooLarge`.
async fn read_body(mut body: Body, max: usize) -> Result<Bytes, BodyError> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= max {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_CAP {
                return Err(BodyError::TooLarge);
            }
        }
    }
    if total > max {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(buf))
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
