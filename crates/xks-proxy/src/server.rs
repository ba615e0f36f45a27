//! xks-proxy's HTTP handler on the shared shell ([`http_shell`]): collect
//! the body within limits, call the core, write the reply, log one line.

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
use xks_wire::ErrorName;

/// Serves the proxy until `shutdown` completes (see [`http_shell::serve`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    limits: ShellLimits,
    shutdown: impl Future<Output = ()>,
) {
    let shell_limits = limits.clone();
    http_shell::serve(listener, tls, shell_limits, shutdown, move |req, peer| {
        let proxy = Arc::clone(&proxy);
        let limits = limits.clone();
        async move { handle(&proxy, &limits, peer, req).await }
    })
    .await
}

async fn handle(
    proxy: &Proxy,
    limits: &ShellLimits,
    peer: SocketAddr,
    req: Request<Body>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
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
    let reply = match body {
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
