//! HTTP/2 when the proxy offers it (ALPN h2), with every request's SigV4
//! signature checked by `sigv4::verify` against `:authority`.

mod common;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use xks_client::{decrypt_request, encrypt_request, XksClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_used_when_offered_and_requests_verify() {
    let pki = Pki::new();
    let acceptor = TlsAcceptor::from(pki.server_tls(true, &[b"h2", b"http/1.1"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU32::new(0));
    let versions = Arc::new(Mutex::new(Vec::new()));
    let (conns, vers) = (connections.clone(), versions.clone());
    let server = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            conns.fetch_add(1, Ordering::SeqCst);
            let (acceptor, vers) = (acceptor.clone(), vers.clone());
            tasks.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let vers = vers.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        vers.lock().unwrap().push(parts.version);
                        let request = Request {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_owned(),
                            headers: parts.headers.clone(),
                            body: body.to_vec(),
                        };
                        // HTTP/2 carries the host in :authority, not Host.
                        let cred = sigv4::Credential::new(AKID, SECRET);
                        let signed = sigv4::RequestParts {
                            method: &request.method,
                            path: &request.path,
                            query: None,
                            headers: &parts.headers,
                            authority: parts.uri.authority().map(|a| a.as_str()),
                            body: &request.body,
                        };
                        let (status, answer) = match sigv4::verify(
                            &signed,
                            std::time::SystemTime::now(),
                            "kms-xks-proxy",
                            sigv4::DEFAULT_MAX_SKEW,
                            |r| r == REGION,
                            |id| (id == AKID).then_some(&cred),
                        ) {
                            Ok(_) => (200, proxy_answer(&request)),
                            Err(e) => (
                                401,
                                serde_json::json!({
                                    "errorName": "AuthenticationFailedException",
                                    "errorMessage": e.to_string(),
                                })
                                .to_string(),
                            ),
                        };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });

    let client = XksClient::new(&pki.mtls_client_config(addr)).unwrap();
    let plaintext = [9u8; 32];
    for _ in 0..3 {
        let sealed = client
            .encrypt(
                &key(),
                &encrypt_request(metadata("Encrypt"), &plaintext, Some(b"aad"), true),
            )
            .await
            .unwrap();
        let opened = client
            .decrypt(
                &key(),
                &decrypt_request(
                    metadata("Decrypt"),
                    &sealed.ciphertext.0,
                    sealed.ciphertext_metadata.as_ref().map(|m| &m.0[..]),
                    &sealed.initialization_vector.0,
                    &sealed.authentication_tag.0,
                    Some(b"aad"),
                ),
            )
            .await
            .unwrap();
        assert_eq!(opened.plaintext.as_ref(), &plaintext);
    }
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len(), 6);
    assert!(
        versions.iter().all(|v| *v == http::Version::HTTP_2),
        "{versions:?}"
    );
    // Pooled: one HTTP/2 connection for all six calls.
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    server.abort();
}
