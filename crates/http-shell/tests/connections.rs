//! Connection limits on a real server: silent connections (plain, after
//! TLS, HTTP/2 preface only) closed at their deadline while an ordinary
//! client is served, idle keep-alive connections closed, the connection cap
//! shedding the longest idle connection then refusing, the per-client cap.

mod common;

use common::*;
use http_shell::{ConnectionLimits, ShellLimits};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// Allowed lateness of a close after its deadline (timer granularity,
/// scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1500);
const SILENT: usize = 2000;

fn limits(c: ConnectionLimits) -> ShellLimits {
    ShellLimits {
        connections: c,
        ..ShellLimits::default()
    }
}

/// Checks the ordinary client's latencies: the bar is 100 ms; one slow
/// outlier in twenty is tolerated on a shared machine, none over 1 s.
fn check_latencies(what: &str, lat: &Latencies) {
    let (p50, p95, max) = (lat.quantile(0.5), lat.quantile(0.95), lat.max());
    eprintln!(
        "{what}: ordinary client {} requests, p50 {p50:?}, p95 {p95:?}, max {max:?}",
        lat.0.len()
    );
    assert!(lat.0.len() >= 10, "too few requests: {}", lat.0.len());
    assert!(p95 <= Duration::from_millis(100), "p95 {p95:?} over 100 ms");
    assert!(max <= Duration::from_secs(1), "max {max:?} over 1 s");
}

/// Checks that every silent connection was closed by the server, no
/// earlier than the deadline (minus what connect/handshake took) and no
/// later than deadline + SLACK.
fn check_closed(what: &str, deadline: Duration, closes: &[Duration]) {
    assert_eq!(closes.len(), SILENT);
    let min = closes.iter().min().copied().unwrap_or_default();
    let max = closes.iter().max().copied().unwrap_or_default();
    eprintln!("{what}: {} silent connections closed between {min:?} and {max:?} after opening (deadline {deadline:?})", closes.len());
    assert!(min >= deadline.mul_f64(0.8), "closed too early: {min:?}");
    assert!(max <= deadline + SLACK, "closed too late: {max:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tcp_connections_are_closed_at_the_first_request_deadline() {
    http_shell::raise_open_file_limit();
    let deadline = Duration::from_secs(2);
    let isolated = IsolatedServer::start(
        limits(ConnectionLimits {
            first_request_timeout: deadline,
            ..ConnectionLimits::default()
        }),
        None,
    );
    let server = &isolated.server;
    let (stop_client, client) = ordinary_client(server.addr, None);
    let mut silent = JoinSet::new();
    for _ in 0..SILENT {
        let opened = Instant::now();
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        silent.spawn(async move {
            tokio::time::timeout(deadline + SLACK * 2, closed_by_peer(&mut s))
                .await
                .map(|_| opened.elapsed())
        });
    }
    let mut closes = Vec::new();
    while let Some(r) = silent.join_next().await {
        closes.push(
            r.unwrap()
                .expect("a silent connection stayed open past its deadline"),
        );
    }
    stop_client.store(true, Ordering::SeqCst);
    check_latencies("plain", &client.join().unwrap());
    check_closed("plain", deadline, &closes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_silent_after_the_tls_handshake_are_closed_at_the_deadline() {
    http_shell::raise_open_file_limit();
    let deadline = Duration::from_secs(3);
    let (acceptor, connector) = tls_pair();
    let isolated = IsolatedServer::start(
        limits(ConnectionLimits {
            first_request_timeout: deadline,
            ..ConnectionLimits::default()
        }),
        Some(acceptor),
    );
    let server = &isolated.server;
    let (stop_client, client) = ordinary_client(server.addr, Some(connector.clone()));
    let mut silent = JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..SILENT {
        let connector = connector.clone();
        let addr = server.addr;
        let permit = std::sync::Arc::clone(&gate).acquire_owned().await.unwrap();
        silent.spawn(async move {
            let opened = Instant::now();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut s = connector.connect(server_name(), tcp).await.unwrap();
            drop(permit);
            tokio::time::timeout(deadline + SLACK * 2, closed_by_peer(&mut s))
                .await
                .map(|_| opened.elapsed())
        });
    }
    let mut closes = Vec::new();
    while let Some(r) = silent.join_next().await {
        closes.push(
            r.unwrap()
                .expect("a TLS connection stayed open past its deadline"),
        );
    }
    stop_client.store(true, Ordering::SeqCst);
    check_closed("tls", deadline, &closes);
    check_latencies(
        "tls (a fresh TLS connection per request)",
        &client.join().unwrap(),
    );
}

/// An HTTP/2 client that sends the preface and SETTINGS and then nothing
/// gets keep-alive PINGs and is closed at the first-request deadline.
#[tokio::test]
async fn http2_preface_only_is_closed_after_pings() {
    let deadline = Duration::from_secs(2);
    let server = Server::start(
        limits(ConnectionLimits {
            first_request_timeout: deadline,
            h2_keepalive_interval: Some(Duration::from_millis(300)),
            ..ConnectionLimits::default()
        }),
        None,
    )
    .await;
    let t = Instant::now();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut frame_types = Vec::new();
    let read_frames = async {
        loop {
            let mut head = [0u8; 9];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if s.read_exact(&mut payload).await.is_err() {
                return;
            }
            frame_types.push((head[3], head[4]));
        }
    };
    tokio::time::timeout(deadline + SLACK, read_frames)
        .await
        .expect("the preface-only connection stays open");
    let elapsed = t.elapsed();
    assert!(
        elapsed >= deadline.mul_f64(0.9),
        "closed early: {elapsed:?}"
    );
    // 0x6 = PING without the ACK flag.
    assert!(
        frame_types
            .iter()
            .any(|&(ty, flags)| ty == 6 && flags & 1 == 0),
        "no keep-alive PING seen: {frame_types:?}"
    );
    // 0x7 = GOAWAY: the close is graceful.
    assert!(
        frame_types.iter().any(|&(ty, _)| ty == 7),
        "no GOAWAY: {frame_types:?}"
    );
}

#[tokio::test]
async fn keep_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let server = Server::start(
        limits(ConnectionLimits {
            idle_timeout: idle,
            ..ConnectionLimits::default()
        }),
        None,
    )
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        assert_eq!(request(&mut s, "GET", "/", b"").await.unwrap().0, 200);
    }
    // A request longer than the idle timeout is not cut: only idleness counts.
    assert_eq!(
        request(&mut s, "GET", "/slow?1500", b"").await.unwrap().0,
        200
    );
    let t = Instant::now();
    tokio::time::timeout(idle + SLACK, closed_by_peer(&mut s))
        .await
        .expect("idle keep-alive connection stays open");
    assert!(
        t.elapsed() >= idle.mul_f64(0.9),
        "closed early: {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn full_server_sheds_the_longest_idle_connection_then_refuses() {
    let server = Server::start(
        limits(ConnectionLimits {
            max_connections: 20,
            first_request_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        }),
        None,
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        // Each is admitted (and so older than the next) once it is served.
        assert_eq!(request(&mut s, "GET", "/", b"").await.unwrap().0, 200);
        idle.push(s);
    }
    // Full: a new client is served; the connection idle the longest goes.
    fresh_get(server.addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), closed_by_peer(&mut idle[0]))
        .await
        .expect("the oldest idle connection was not shed");
    // The others are still usable.
    assert_eq!(
        request(&mut idle[19], "GET", "/", b"").await.unwrap().0,
        200
    );
    drop(idle);

    // All busy: a new connection is refused (closed without a reply).
    let server = Server::start(
        limits(ConnectionLimits {
            max_connections: 3,
            ..ConnectionLimits::default()
        }),
        None,
    )
    .await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /slow?3000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
    }
    assert!(
        wait_until(Duration::from_secs(5), || server
            .slow_in_flight
            .load(Ordering::SeqCst)
            == 3)
        .await
    );
    let refused = fresh_get(server.addr).await;
    assert!(
        refused.is_err(),
        "a fourth connection was served: {refused:?}"
    );
    // The busy ones finish normally.
    for s in &mut busy {
        assert_eq!(read_response(s).await.unwrap().0, 200);
    }
    // Now idle: the next newcomer sheds one and is served.
    fresh_get(server.addr).await.unwrap();
}

async fn connect_from(local: &str, server: std::net::SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    sock.connect(server).await.unwrap()
}

#[tokio::test]
async fn per_client_cap_refuses_only_the_busy_client() {
    let server = Server::start(
        limits(ConnectionLimits {
            max_connections_per_client: Some(2),
            ..ConnectionLimits::default()
        }),
        None,
    )
    .await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.1", server.addr).await;
        s.write_all(b"GET /slow?3000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
    }
    assert!(
        wait_until(Duration::from_secs(5), || server
            .slow_in_flight
            .load(Ordering::SeqCst)
            == 2)
        .await
    );
    let mut third = connect_from("127.0.0.1", server.addr).await;
    assert!(
        request(&mut third, "GET", "/", b"").await.is_err(),
        "third connection of one client served"
    );
    let mut other = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(request(&mut other, "GET", "/", b"").await.unwrap().0, 200);
    for s in &mut busy {
        assert_eq!(read_response(s).await.unwrap().0, 200);
    }
}
