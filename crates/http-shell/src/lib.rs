//! The protocol-independent HTTP/TLS server shell shared by xks-proxy and
//! kms-core: accept loop (connection caps, rate-limited accept errors with
//! backoff), deadlines for the TLS handshake, the first request and idle
//! connections, HTTP/1.1 and HTTP/2 (hyper-util auto, HTTP/2 keep-alive
//! pings), header limits, bounded body collection, and graceful shutdown.
//! Each server supplies a handler that turns a request into a response in
//! its own protocol.
#![forbid(unsafe_code)]

pub mod limits;
mod lograte;
#[cfg(feature = "prometheus")]
pub mod metrics;
mod registry;
pub mod stats;
pub mod tls;

pub use limits::{ClientKey, ConnectionLimits};
pub use lograte::LOG_PERIOD;
pub use stats::ShellStats;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use registry::{Admitted, Registry};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Limits the shell enforces before the core sees a request.
#[derive(Debug, Clone)]
pub struct ShellLimits {
    pub max_body_bytes: usize,
    /// Time to receive one request's body.
    pub request_timeout: Duration,
    pub max_header_bytes: usize,
    /// Deadlines and caps of connections.
    pub connections: ConnectionLimits,
}

impl Default for ShellLimits {
    fn default() -> Self {
        ShellLimits {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            connections: ConnectionLimits::default(),
        }
    }
}

/// How long connections may take to finish in-flight requests after
/// shutdown before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a connection closed for idleness may take to
/// say goodbye (HTTP/2 GOAWAY) before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Raises the process's open-file soft limit to its hard limit and logs
/// the number in force. Servers call it once at start: every connection is
/// a file descriptor, and the common default of 1,024 is soon exhausted.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::info!(
                open_file_limit = n,
                "open-file limit raised to the hard limit"
            );
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, open_file_limit = ?open_file_limit(), "could not raise the open-file limit");
            open_file_limit()
        }
    }
}

/// The process's open-file soft limit, when it can be read.
pub fn open_file_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Serves connections until `shutdown` completes, then stops every
/// connection gracefully: in-flight requests finish (within
/// [`SHUTDOWN_GRACE`]), idle keep-alive connections are closed, nothing new
/// is served. Connections are held to `limits.connections`.
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
    serve_counted(
        listener,
        tls,
        limits,
        Arc::new(ShellStats::default()),
        shutdown,
        handler,
    )
    .await
}

/// [`serve`], counting connections and TLS handshake failures in `stats`
/// (a server's metrics read them).
pub async fn serve_counted<H, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ShellLimits,
    stats: Arc<ShellStats>,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Body>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let conn_limits = Arc::new(limits.connections.clone());
    let nofile = open_file_limit();
    let max = conn_limits.effective_max_connections(nofile);
    tracing::info!(
        max_connections = max,
        max_connections_per_client = ?conn_limits.max_connections_per_client,
        open_file_limit = ?nofile,
        "connection limits"
    );
    let registry = Registry::new(max, conn_limits.max_connections_per_client);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conn_limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(conn_limits.h2_keepalive_interval)
        .keep_alive_timeout(conn_limits.h2_keepalive_timeout);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut backoff = lograte::AcceptBackoff::default();
    let mut accept_log = lograte::LogLimiter::default();
    let mut refuse_log = lograte::LogLimiter::default();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors: an idle connection gives one back.
                    let shed = lograte::is_fd_exhaustion(&e) && registry.shed_oldest_idle();
                    if let Some(suppressed) = accept_log.allow(Instant::now()) {
                        tracing::warn!(error = %e, suppressed, shed_idle = shed, "accept failed");
                    }
                    // Back off instead of spinning on a failing accept.
                    let pause = backoff.failed();
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            },
        };
        backoff.succeeded();
        let admitted = match registry.admit(peer.ip()) {
            Ok(a) => a,
            Err(reason) => {
                stats.refused();
                if let Some(suppressed) = refuse_log.allow(Instant::now()) {
                    tracing::warn!(%peer, %reason, suppressed, "connection refused");
                }
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            tls.clone(),
            Arc::clone(&builder),
            Arc::clone(&handler),
            admitted,
            Arc::clone(&conn_limits),
            stop_rx.clone(),
            stats.opened(),
        ));
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

/// One connection from accept to close: TLS handshake within its deadline,
/// then HTTP until the peer leaves, the server stops, the connection has
/// been idle too long, or it is shed to make room.
#[allow(clippy::too_many_arguments)]
async fn connection<H, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    handler: Arc<H>,
    admitted: Admitted,
    limits: Arc<ConnectionLimits>,
    stop: tokio::sync::watch::Receiver<bool>,
    open: stats::OpenConnection,
) where
    H: Fn(Request<Body>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let conn = Arc::clone(&admitted.conn);
    let registry = Arc::clone(&admitted.registry);
    let svc = {
        let conn = Arc::clone(&conn);
        let registry = Arc::clone(&registry);
        service_fn(move |req| {
            let in_flight = registry.begin_request(&conn);
            let fut = handler(req, peer);
            async move {
                let resp = fut.await;
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let watch = Watch {
        registry: &registry,
        conn: &conn,
        limits: &limits,
        stop,
    };
    match tls {
        Some(acceptor) => {
            let deadline = limits.handshake_timeout.min(limits.first_request_timeout);
            let handshake = tokio::time::timeout(deadline, acceptor.accept(stream));
            let tls_stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        open.stats().handshake_failed();
                        tracing::info!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        open.stats().handshake_timed_out();
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                _ = stopped(watch.stop.clone()) => return,
                _ = conn.shed.notified() => return,
            };
            serve_connection(&builder, TokioIo::new(tls_stream), svc, watch, peer).await;
        }
        None => serve_connection(&builder, TokioIo::new(stream), svc, watch, peer).await,
    }
    drop(admitted);
    drop(open);
}

/// What ends a connection besides the peer.
struct Watch<'a> {
    registry: &'a Registry,
    conn: &'a registry::Conn,
    limits: &'a ConnectionLimits,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Serves one connection until the peer leaves or [`Watch`] says to close:
/// then finishes in-flight requests (graceful shutdown) within a grace
/// period and closes it.
async fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: S,
    watch: Watch<'_>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Body>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let grace = tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped(watch.stop) => SHUTDOWN_GRACE,
        _ = watch.conn.shed.notified() => {
            // Closed at once: room is needed now (its descriptor too).
            tracing::debug!(%peer, "idle connection closed to make room");
            return;
        }
        _ = registry::idle_expired(
            watch.registry,
            watch.conn,
            watch.limits.first_request_timeout,
            watch.limits.idle_timeout,
        ) => {
            tracing::debug!(%peer, "idle connection closed");
            CLOSE_GRACE
        }
    };
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
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
