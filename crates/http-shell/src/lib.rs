//! The protocol-independent HTTP/TLS server shell shared by xks-proxy and
//! kms-core: accept loop, TLS handshake with a timeout, HTTP/1.1 and HTTP/2
//! (hyper-util auto), header limits, bounded body collection, and graceful
//! shutdown. Each server supplies a handler that turns a request into a
//! response in its own protocol.
#![forbid(unsafe_code)]

pub mod tls;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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
pub async fn serve<H, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ShellLimits,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Body>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
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
        let handler = Arc::clone(&handler);
        let limits = Arc::clone(&limits);
        let builder = Arc::clone(&builder);
        let tls = tls.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            let svc = service_fn(move |req| {
                let fut = handler(req, peer);
                async move { Ok::<_, Infallible>(fut.await) }
            });
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

/// Oversized bodies up to this size are read and discarded before the
/// error reply, so that a client still sending sees the reply rather than a
/// reset. Larger ones are cut.
pub const DRAIN_CAP: usize = 1024 * 1024;

/// Why a body could not be collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit (the excess was drained up to [`DRAIN_CAP`]).
    TooLarge,
    /// The connection failed while reading.
    Read(String),
    /// Not received within the request timeout.
    Timeout,
}

/// Collects at most `max` bytes; beyond that keeps draining (discarding) up
/// to [`DRAIN_CAP`] and reports `TooLarge`.
async fn read_body_inner(mut body: Body, max: usize) -> Result<Bytes, BodyError> {
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

/// Collects a request body of at most `limits.max_body_bytes` within
/// `limits.request_timeout`. A `Content-Length` over [`DRAIN_CAP`] is
/// refused without reading.
pub async fn read_body(
    req: Request<Body>,
    limits: &ShellLimits,
) -> (http::request::Parts, Result<Bytes, BodyError>) {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP) {
        return (parts, Err(BodyError::TooLarge));
    }
    let result = match tokio::time::timeout(
        limits.request_timeout,
        read_body_inner(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(BodyError::Timeout),
    };
    (parts, result)
}
