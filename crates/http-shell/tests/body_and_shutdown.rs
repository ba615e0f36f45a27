//! Body caps (`read_body`) and graceful shutdown on a real server.

mod common;

use common::*;
use http_shell::{ShellLimits, DRAIN_CAP, SHUTDOWN_GRACE};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn small_body_limits() -> ShellLimits {
    ShellLimits {
        max_body_bytes: 1000,
        request_timeout: Duration::from_secs(1),
        ..ShellLimits::default()
    }
}

#[tokio::test]
async fn bodies_within_the_cap_are_read_and_larger_ones_refused() {
    let server = Server::start(small_body_limits(), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = request(&mut s, "POST", "/body", &[7u8; 1000])
        .await
        .unwrap();
    assert_eq!((status, body), (200, b"1000".to_vec()));
    // One byte over: refused, and the connection stays usable (the excess
    // was drained, not left in the stream).
    let (status, _) = request(&mut s, "POST", "/body", &[7u8; 1001])
        .await
        .unwrap();
    assert_eq!(status, 413);
    let (status, body) = request(&mut s, "POST", "/body", b"abc").await.unwrap();
    assert_eq!((status, body), (200, b"3".to_vec()));
    // Chunked bodies are counted too.
    let chunked = format!(
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        1500,
        "a".repeat(1500)
    );
    s.write_all(chunked.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.unwrap().0, 413);
}

#[tokio::test]
async fn a_declared_length_over_the_drain_cap_is_refused_without_reading() {
    let server = Server::start(small_body_limits(), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        DRAIN_CAP + 1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let (status, _) = read_response(&mut s).await.unwrap();
    assert_eq!(status, 413);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "waited for the body"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_timeout() {
    let server = Server::start(small_body_limits(), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let t = Instant::now();
    let (status, _) = read_response(&mut s).await.unwrap();
    assert_eq!(status, 408);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_closes_idle_ones_and_accepts_nothing_new() {
    let mut server = Server::start(ShellLimits::default(), None).await;
    let addr = server.addr;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request(&mut idle, "GET", "/", b"").await.unwrap().0, 200);
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow?800 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || server
            .slow_in_flight
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    let t = Instant::now();
    server.stop();
    // The idle keep-alive connection is closed at once.
    tokio::time::timeout(Duration::from_secs(1), closed_by_peer(&mut idle))
        .await
        .expect("idle connection kept open after shutdown");
    // The in-flight request completes with its reply.
    let (status, body) = read_response(&mut busy).await.unwrap();
    assert_eq!((status, body), (200, b"slow".to_vec()));
    // The accept loop is over: nothing new is served.
    tokio::time::timeout(SHUTDOWN_GRACE, &mut server.task)
        .await
        .expect("serve did not return within the grace period")
        .unwrap();
    assert!(t.elapsed() < SHUTDOWN_GRACE);
    assert!(fresh_get(addr).await.is_err(), "served after shutdown");
}

#[tokio::test]
async fn shutdown_cuts_requests_still_running_after_the_grace_period() {
    let mut server = Server::start(ShellLimits::default(), None).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /slow?60000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || server
            .slow_in_flight
            .load(Ordering::SeqCst)
            == 1)
        .await
    );
    let t = Instant::now();
    server.stop();
    tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut server.task)
        .await
        .expect("serve did not return after the grace period")
        .unwrap();
    let waited = t.elapsed();
    assert!(
        waited >= SHUTDOWN_GRACE && waited < SHUTDOWN_GRACE + Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        read_response(&mut busy).await.is_err(),
        "the cut request got a reply"
    );
}
