//! Shared by the http-shell integration tests: a real server on 127.0.0.1
//! port 0 (plain or TLS with the dev-pki CA), a minimal HTTP/1.1 client on
//! raw sockets, and waits on conditions with deadlines.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use http_shell::{read_body, BodyError, ShellLimits};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A running shell with the test handler:
/// `/` → 200 "ok"; `/slow?MS` → 200 after MS milliseconds; `/body` → the
/// body read with `read_body`: 200 with its length, 413 too large, 408
/// timeout, 400 read error.
pub struct Server {
    pub addr: SocketAddr,
    /// `/slow` requests being handled right now.
    pub slow_in_flight: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl Server {
    pub async fn start(limits: ShellLimits, tls: Option<TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, limits, tls)
    }

    pub fn start_on(
        listener: TcpListener,
        limits: ShellLimits,
        tls: Option<TlsAcceptor>,
    ) -> Server {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handler_limits = limits.clone();
        let slow_in_flight = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&slow_in_flight);
        let task = tokio::spawn(http_shell::serve(
            listener,
            tls,
            limits,
            async {
                let _ = rx.await;
            },
            move |req, _peer| {
                let limits = handler_limits.clone();
                let counter = Arc::clone(&counter);
                async move { handle(req, &limits, &counter).await }
            },
        ));
        Server {
            addr,
            slow_in_flight,
            stop: Some(tx),
            task,
        }
    }

    /// Tells the server to stop; the task ends when connections drained.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    req: http::Request<hyper::body::Incoming>,
    limits: &ShellLimits,
    slow: &AtomicUsize,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    match req.uri().path() {
        "/slow" => {
            let ms = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
            slow.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            slow.fetch_sub(1, Ordering::SeqCst);
            reply(StatusCode::OK, "slow".into())
        }
        "/body" => {
            let (_, body) = read_body(req, limits).await;
            match body {
                Ok(b) => reply(StatusCode::OK, b.len().to_string()),
                Err(BodyError::TooLarge) => {
                    reply(StatusCode::PAYLOAD_TOO_LARGE, "too large".into())
                }
                Err(BodyError::Timeout) => reply(StatusCode::REQUEST_TIMEOUT, "timeout".into()),
                Err(BodyError::Read(_)) => reply(StatusCode::BAD_REQUEST, "read".into()),
            }
        }
        _ => reply(StatusCode::OK, "ok".into()),
    }
}

/// A CA, a server acceptor for `localhost`, and a client connector trusting the CA.
pub fn tls_pair() -> (TlsAcceptor, TlsConnector) {
    let ca = dev_pki::Ca::new("http-shell test CA").unwrap();
    let issued = ca.server(&["localhost"]).unwrap();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// One HTTP/1.1 request on `s` (kept alive); returns status and body.
pub async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    read_response(s).await
}

/// Reads one response with a Content-Length body.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body))
}

/// `GET /` on a fresh plain connection; returns the latency.
pub async fn fresh_get(addr: SocketAddr) -> std::io::Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    let (status, body) = request(&mut s, "GET", "/", b"").await?;
    if status != 200 || body != b"ok" {
        return Err(std::io::Error::other(format!("unexpected reply {status}")));
    }
    Ok(t.elapsed())
}

/// Resolves when the peer has closed `s` (EOF or reset), reading and
/// discarding anything the server sends first (HTTP/2 SETTINGS, GOAWAY).
pub async fn closed_by_peer<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Waits until `cond` holds, polling every 10 ms, for at most `deadline`.
pub async fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Latency figures of an ordinary client's requests.
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v[((v.len() as f64 - 1.0) * q).round() as usize]
    }
    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// A server on a runtime of its own (two worker threads), as if it were
/// another process: the test's load does not delay its tasks.
pub struct IsolatedServer {
    pub server: Server,
    rt: Option<tokio::runtime::Runtime>,
}

impl IsolatedServer {
    pub fn start(limits: ShellLimits, tls: Option<TlsAcceptor>) -> IsolatedServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = {
            let _in_rt = rt.enter();
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            Server::start_on(sock.listen(4096).unwrap(), limits, tls)
        };
        IsolatedServer {
            server,
            rt: Some(rt),
        }
    }
}

impl Drop for IsolatedServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// An ordinary client on a thread of its own: a fresh connection (over
/// TLS with `tls`) and `GET /` every 20 ms until the returned flag is set;
/// every request must succeed within 5 s.
pub fn ordinary_client(
    addr: SocketAddr,
    tls: Option<TlsConnector>,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Latencies>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut lat = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let once = async {
                    let t = Instant::now();
                    let tcp = TcpStream::connect(addr).await?;
                    let reply = match &tls {
                        Some(c) => {
                            let mut s = c.connect(server_name(), tcp).await?;
                            request(&mut s, "GET", "/", b"").await?
                        }
                        None => {
                            let mut s = tcp;
                            request(&mut s, "GET", "/", b"").await?
                        }
                    };
                    std::io::Result::Ok((reply, t.elapsed()))
                };
                match tokio::time::timeout(Duration::from_secs(5), once).await {
                    Ok(Ok(((200, _), d))) => lat.push(d),
                    Ok(Ok(((status, _), _))) => panic!("ordinary client got {status}"),
                    Ok(Err(e)) => {
                        panic!("ordinary client failed after {} requests: {e}", lat.len())
                    }
                    Err(_) => panic!("ordinary client timed out after {} requests", lat.len()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Latencies(lat)
        })
    });
    (stop, thread)
}
