//! The raw request path: HTTP/1.1 over rustls (or plain TCP) with hyper,
//! sending exactly the bytes a [`Wire`] describes and recording exactly
//! what comes back (status, headers, body). No judgement here.

use crate::check::{Observed, TlsObservation};
use crate::request::Wire;
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body read.
const MAX_BODY: usize = 1024 * 1024;

/// Where the proxy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// Host name or IP (IPv6 without brackets): TLS server name, DNS lookup.
    pub host: String,
    pub port: u16,
    /// Host header value: `host`, or `host:port` for a non-default port.
    pub authority: String,
}

/// Parses `https://host[:port]` (or `http://host[:port]` for a proxy
/// serving plain HTTP).
pub fn parse_endpoint(endpoint: &str) -> anyhow::Result<Endpoint> {
    if endpoint.starts_with("https://") {
        let e = xks_client::config::parse_endpoint(endpoint).context("--endpoint")?;
        return Ok(Endpoint {
            tls: true,
            host: e.host,
            port: e.port,
            authority: e.authority,
        });
    }
    let Some(rest) = endpoint.strip_prefix("http://") else {
        bail!("--endpoint must start with https:// (or http:// for a plain-HTTP proxy)");
    };
    let e = xks_client::config::parse_endpoint(&format!("https://{rest}")).context("--endpoint")?;
    let rest = rest.trim_end_matches('/');
    let explicit_port = rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let port = if explicit_port { e.port } else { 80 };
    let bracketed = if e.host.contains(':') {
        format!("[{}]", e.host)
    } else {
        e.host.clone()
    };
    let authority = if port == 80 {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    };
    Ok(Endpoint {
        tls: false,
        host: e.host,
        port,
        authority,
    })
}

/// "outer: inner: innermost", each message once.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// One keep-alive connection to the proxy, reopened when it closes.
pub struct Client {
    endpoint: Endpoint,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    sender: Option<Conn>,
}

/// An open HTTP/1.1 connection: the request handle, and the task driving
/// the connection, whose error (a TLS alert, say) explains a failed request.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<Result<(), String>>,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Why a request on this connection failed: the connection's own error
    /// when it has one (hyper only says "channel closed"), named by
    /// [`describe_tls_failure`].
    async fn explain(self, request_error: String) -> String {
        let driver = self.driver;
        match tokio::time::timeout(Duration::from_millis(500), driver).await {
            Ok(Ok(Err(conn_error))) => describe_tls_failure(&conn_error, false),
            _ => describe_tls_failure(&request_error, false),
        }
    }

    /// Sends `wire` once; on failure, the connection's explanation.
    async fn round_trip(mut self, wire: &Wire) -> Result<(Conn, Observed), String> {
        if let Err(e) = self.sender.ready().await {
            let why = format!("connection not ready: {}", error_chain(&e));
            return Err(self.explain(why).await);
        }
        match exchange(&mut self.sender, wire).await {
            Ok(o) => Ok((self, o)),
            Err(e) => Err(self.explain(e).await),
        }
    }
}

impl Client {
    pub async fn new(
        endpoint: Endpoint,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        let addr = resolve(&endpoint).await?;
        if endpoint.tls && tls.is_none() {
            bail!("an https endpoint needs a TLS configuration");
        }
        Ok(Client {
            endpoint,
            addr,
            tls,
            timeout,
            sender: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request. A failure on a reused connection (the proxy may
    /// have closed it between requests) is retried once on a new one.
    pub async fn send(&mut self, wire: &Wire) -> Result<Observed, String> {
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        match self.try_send(wire).await {
            Ok(o) => Ok(o),
            Err(first) if reused => self
                .try_send(wire)
                .await
                .map_err(|e| format!("{e} (and before that, on a reused connection: {first})")),
            Err(e) => Err(e),
        }
    }

    async fn try_send(&mut self, wire: &Wire) -> Result<Observed, String> {
        let result = tokio::time::timeout(self.timeout, async {
            let conn = match self.sender.take() {
                Some(s) if !s.is_closed() => s,
                _ => open(&self.endpoint, self.addr, self.tls.clone()).await?,
            };
            conn.round_trip(wire).await
        })
        .await;
        match result {
            Ok(Ok((sender, observed))) => {
                self.sender = Some(sender);
                Ok(observed)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "no response within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

async fn resolve(endpoint: &Endpoint) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .with_context(|| format!("resolving {}", endpoint.host))?
        .next()
        .with_context(|| format!("{} has no address", endpoint.host))
}

/// Opens a connection: TCP, TLS (if any), HTTP/1.1 handshake.
async fn open(
    endpoint: &Endpoint,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Conn, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(tls) => {
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("TLS server name {}: {e}", endpoint.host))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| describe_tls_failure(&error_chain(&e), true))?;
            http1(stream).await
        }
        None => http1(tcp).await,
    }
}

async fn http1<IO>(io: IO) -> Result<Conn, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake: {}", error_chain(&e)))?;
    let driver = tokio::spawn(async move { conn.await.map_err(|e| error_chain(&e)) });
    Ok(Conn { sender, driver })
}

/// Sends `wire` and reads the whole response.
async fn exchange(sender: &mut SendRequest<Full<Bytes>>, wire: &Wire) -> Result<Observed, String> {
    let mut builder = http::Request::builder()
        .method(wire.method)
        .uri(wire.path.as_str());
    for (name, value) in &wire.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let req = builder
        .body(Full::new(Bytes::from(wire.body.clone())))
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the response body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Observed {
        status,
        headers,
        body,
    })
}

/// Names a TLS failure for the reader: which side refused, with which
/// alert. `in_handshake`: the error came from the handshake itself
/// (otherwise from the first request after it, where TLS 1.3 reports a
/// client certificate the server refused).
pub fn describe_tls_failure(chain: &str, in_handshake: bool) -> String {
    if let Some(i) = chain.find("received fatal alert: ") {
        let alert: String = chain[i + 22..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        return format!(
            "TLS handshake refused by the proxy: fatal alert {alert}{}; {chain}",
            if in_handshake {
                ""
            } else {
                " after the client's Finished (TLS 1.3)"
            }
        );
    }
    if chain.contains("invalid peer certificate") {
        return format!(
            "TLS handshake refused by the suite: the proxy's server certificate is not valid for the given --ca-file and endpoint name: {chain}"
        );
    }
    if in_handshake {
        return format!("TLS handshake failed: {chain}");
    }
    let closed = [
        "channel closed",
        "connection closed",
        "unexpected EOF",
        "reset by peer",
    ];
    if closed.iter().any(|c| chain.contains(c)) {
        return format!(
            "the proxy closed the connection right after the TLS handshake without an HTTP response or an alert (how a TLS 1.3 server drops a client certificate it refuses): {chain}"
        );
    }
    chain.to_owned()
}

/// The proxy's TLS identity as the suite saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsIdentity {
    pub version: Option<String>,
    pub suite: Option<String>,
    pub server_subject: Option<String>,
}

/// Connects once and records the negotiated TLS version and cipher suite
/// and the subject of the proxy's certificate (for the report).
pub async fn tls_identity(
    endpoint: &Endpoint,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<TlsIdentity, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| format!("TLS server name {}: {e}", endpoint.host))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| describe_tls_failure(&error_chain(&e), true))?;
    let conn = stream.get_ref().1;
    let server_subject = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|der| {
            x509_parser::parse_x509_certificate(der.as_ref())
                .ok()
                .map(|(_, cert)| cert.subject().to_string())
        });
    Ok(TlsIdentity {
        version: conn.protocol_version().map(|v| format!("{v:?}")),
        suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite())),
        server_subject,
    })
}

/// Connects with `tls` (a configuration offering some client certificate,
/// or none), sends `wire` and reports whether the proxy answered or
/// refused. With TLS 1.3 a refused client certificate shows up after the
/// client's side of the handshake, as an alert or a close where the
/// response should be: both count as refused.
pub async fn probe(
    endpoint: &Endpoint,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    wire: &Wire,
    wait: Duration,
) -> TlsObservation {
    let attempt = async {
        let tcp = match tokio::net::TcpStream::connect(addr).await {
            Ok(t) => t,
            Err(e) => {
                return TlsObservation::Refused {
                    detail: format!("TCP connect failed: {e}"),
                }
            }
        };
        let name = match ServerName::try_from(endpoint.host.clone()) {
            Ok(n) => n,
            Err(e) => {
                return TlsObservation::Refused {
                    detail: format!("TLS server name: {e}"),
                }
            }
        };
        let stream = match tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                return TlsObservation::Refused {
                    detail: describe_tls_failure(&error_chain(&e), true),
                }
            }
        };
        let conn = match http1(stream).await {
            Ok(s) => s,
            Err(e) => {
                return TlsObservation::Refused {
                    detail: format!("after the handshake: {e}"),
                }
            }
        };
        match conn.round_trip(wire).await {
            Ok((_, obs)) => TlsObservation::Answered(obs),
            Err(e) => TlsObservation::Refused { detail: e },
        }
    };
    match tokio::time::timeout(wait, attempt).await {
        Ok(o) => o,
        Err(_) => TlsObservation::NoAnswer {
            waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_say_who_refused() {
        let d = describe_tls_failure("io: received fatal alert: CertificateRequired", true);
        assert!(
            d.starts_with("TLS handshake refused by the proxy: fatal alert CertificateRequired;"),
            "{d}"
        );
        let d = describe_tls_failure("hyper: received fatal alert: BadCertificate", false);
        assert!(
            d.contains("alert BadCertificate") && d.contains("TLS 1.3"),
            "{d}"
        );
        let d = describe_tls_failure("invalid peer certificate: UnknownIssuer", true);
        assert!(d.starts_with("TLS handshake refused by the suite"), "{d}");
        let d = describe_tls_failure("connection error: channel closed", false);
        assert!(
            d.contains("closed the connection right after the TLS handshake"),
            "{d}"
        );
        assert_eq!(describe_tls_failure("timeout", false), "timeout");
    }

    #[test]
    fn endpoints() {
        let e = parse_endpoint("https://xks.example.com:8443").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "xks.example.com".into(),
                port: 8443,
                authority: "xks.example.com:8443".into()
            }
        );
        let e = parse_endpoint("https://localhost").unwrap();
        assert_eq!((e.port, e.authority.as_str()), (443, "localhost"));
        let e = parse_endpoint("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (e.tls, e.port, e.authority.as_str()),
            (false, 8080, "127.0.0.1:8080")
        );
        let e = parse_endpoint("http://proxy.internal").unwrap();
        assert_eq!((e.port, e.authority.as_str()), (80, "proxy.internal"));
        let e = parse_endpoint("http://[::1]:81").unwrap();
        assert_eq!((e.host.as_str(), e.authority.as_str()), ("::1", "[::1]:81"));
        for bad in [
            "xks.example.com",
            "ftp://x",
            "https://x/kms/xks/v1",
            "https://",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
