//! The transport against servers that misbehave in ways PyKMIP cannot be
//! made to: oversized frames, garbage, answers for another operation,
//! connections closed at once. Each is an error, never a panic, a hang
//! or a huge allocation.

use kmip::message::{ProtocolVersion, Request};
use kmip::spec::Operation;
use kmip::testing::test_pki;
use kmip::ttlv::{Item, Tag, Value};
use kmip::{Client, ClientSettings, Error};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Starts a TLS server answering every request with `reply(request)`:
/// `None` closes the connection, an empty answer leaves it silent.
async fn server(
    reply: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (ClientSettings, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (identity, cert, key) = test_pki(dir.path());
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let reply = Arc::clone(&reply);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                loop {
                    let mut header = [0u8; 8];
                    if tls.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                    let mut body = vec![0u8; len as usize];
                    if tls.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let mut request = header.to_vec();
                    request.extend_from_slice(&body);
                    match reply(&request) {
                        // An empty answer: stay silent, connection open.
                        Some(bytes) if bytes.is_empty() => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Some(bytes) => {
                            if tls.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            });
        }
    });
    let mut settings = ClientSettings::new(&addr.to_string(), "127.0.0.1", identity);
    settings.negotiate = false;
    settings.request_timeout = Duration::from_secs(5);
    (settings, dir)
}

fn response_for(op: Operation) -> Vec<u8> {
    let t = |n: u32| Tag(n);
    Item::structure(
        t(0x42007B),
        vec![
            Item::structure(
                t(0x42007A),
                vec![
                    Item::structure(
                        t(0x420069),
                        vec![
                            Item::new(t(0x42006A), Value::Integer(1)),
                            Item::new(t(0x42006B), Value::Integer(4)),
                        ],
                    ),
                    Item::new(t(0x420092), Value::DateTime(0)),
                    Item::new(t(0x42000D), Value::Integer(1)),
                ],
            ),
            Item::structure(
                t(0x42000F),
                vec![
                    Item::new(t(0x42005C), Value::Enumeration(op.to_u32())),
                    Item::new(t(0x42007F), Value::Enumeration(0)),
                    Item::structure(
                        t(0x42007C),
                        vec![Item::new(t(0x420094), Value::TextString("1".into()))],
                    ),
                ],
            ),
        ],
    )
    .encode()
    .to_vec()
}

#[tokio::test]
async fn oversized_frame_is_refused_without_allocating_it() {
    // A Response Message header claiming 0xFFFFFFF0 bytes.
    let (settings, _d) =
        server(|_| Some(vec![0x42, 0x00, 0x7B, 0x01, 0xFF, 0xFF, 0xFF, 0xF0])).await;
    let c = Client::new(settings).unwrap();
    let e = c.activate("1").await.unwrap_err();
    assert!(
        matches!(&e, Error::Malformed(m) if m.contains("exceeds")),
        "{e}"
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (settings, _d) = server(|_| Some(vec![0x42, 0x00, 0x7B, 0x0F, 0, 0, 0, 0])).await;
    let c = Client::new(settings).unwrap();
    let e = c.activate("1").await.unwrap_err();
    assert!(matches!(e, Error::Malformed(_)), "{e}");
}

#[tokio::test]
async fn an_answer_for_another_operation_is_malformed() {
    let (settings, _d) = server(|_| Some(response_for(Operation::Destroy))).await;
    let c = Client::new(settings).unwrap();
    let e = c.activate("1").await.unwrap_err();
    assert!(
        matches!(&e, Error::Malformed(m) if m.contains("Destroy")),
        "{e}"
    );
    // The right one works over the same kind of connection.
    let (settings, _d) = server(|_| Some(response_for(Operation::Activate))).await;
    let c = Client::new(settings).unwrap();
    c.activate("1").await.unwrap();
    c.activate("1").await.unwrap();
}

#[tokio::test]
async fn a_connection_closed_at_once_is_an_io_error() {
    let (settings, _d) = server(|_| None).await;
    let c = Client::new(settings).unwrap();
    let e = c.activate("1").await.unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (mut settings, _d) = server(|_| Some(Vec::new())).await;
    settings.request_timeout = Duration::from_millis(300);
    let c = Client::new(settings).unwrap();
    let e = c.activate("1").await.unwrap_err();
    assert_eq!(e, Error::Timeout(300));
}

#[tokio::test]
async fn requests_carry_the_chosen_version_and_one_batch_item() {
    let (settings, _d) = server(|req| {
        let root = Item::decode(req).unwrap();
        let header = root.child(Tag(0x420077)).unwrap();
        let v = header.child(Tag(0x420069)).unwrap();
        assert_eq!(v.child(Tag(0x42006B)).unwrap().as_i32(), Some(4));
        assert_eq!(root.children_with(Tag(0x42000F)).count(), 1);
        Some(response_for(Operation::Activate))
    })
    .await;
    let c = Client::new(settings).unwrap();
    c.activate("1").await.unwrap();
    assert_eq!(c.negotiated_version(), Some(ProtocolVersion::V1_4));
    let _ = Request::Activate {
        unique_identifier: "x",
    };
}

/// The operation of a request message.
fn operation_of(req: &[u8]) -> Operation {
    let root = Item::decode(req).unwrap();
    let op = root
        .child(Tag(0x42000F))
        .and_then(|b| b.child(Tag(0x42005C)))
        .and_then(Item::as_enum)
        .unwrap();
    Operation::from_u32(op)
}

fn discover_versions_answer(versions: &[(i32, i32)]) -> Vec<u8> {
    let mut root = Item::decode(&response_for(Operation::DiscoverVersions)).unwrap();
    if let Value::Structure(items) = &mut root.value {
        if let Value::Structure(batch) = &mut items[1].value {
            batch[2] = Item::structure(
                Tag(0x42007C),
                versions
                    .iter()
                    .map(|(ma, mi)| {
                        Item::structure(
                            Tag(0x420069),
                            vec![
                                Item::new(Tag(0x42006A), Value::Integer(*ma)),
                                Item::new(Tag(0x42006B), Value::Integer(*mi)),
                            ],
                        )
                    })
                    .collect(),
            );
        }
    }
    root.encode().to_vec()
}

fn failure(op: Operation, reason: u32) -> Vec<u8> {
    let mut root = Item::decode(&response_for(op)).unwrap();
    if let Value::Structure(items) = &mut root.value {
        if let Value::Structure(batch) = &mut items[1].value {
            batch[1] = Item::new(Tag(0x42007F), Value::Enumeration(1));
            batch[2] = Item::new(Tag(0x42007E), Value::Enumeration(reason));
        }
    }
    root.encode().to_vec()
}

/// A client that negotiates the version, of a server answering with `reply`.
async fn negotiating_client(
    reply: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (Client, tempfile::TempDir) {
    let (mut settings, dir) = server(reply).await;
    settings.negotiate = true;
    (Client::new(settings).unwrap(), dir)
}

#[tokio::test]
async fn negotiation_picks_1_4_and_refuses_servers_without_it() {
    // A server that speaks 1.4 (among others) answers our [1.4] with [1.4].
    let (c, _d) = negotiating_client(|req| match operation_of(req) {
        Operation::DiscoverVersions => Some(discover_versions_answer(&[(1, 4)])),
        op => Some(response_for(op)),
    })
    .await;
    c.activate("1").await.unwrap();
    assert_eq!(c.negotiated_version(), Some(ProtocolVersion::V1_4));

    // A server without 1.4 (say 1.2 only) answers with an empty list: none
    // in common, said clearly, nothing else sent.
    let (c, _d) = negotiating_client(|req| match operation_of(req) {
        Operation::DiscoverVersions => Some(discover_versions_answer(&[])),
        _ => panic!("no request may follow a failed negotiation"),
    })
    .await;
    let e = c.activate("1").await.unwrap_err();
    assert!(matches!(e, Error::NoCommonVersion { .. }), "{e}");
    assert_eq!(c.negotiated_version(), None);

    // A server without Discover Versions (Operation Not Supported): our
    // preferred version, 1.4.
    let (c, _d) = negotiating_client(|req| match operation_of(req) {
        Operation::DiscoverVersions => Some(failure(Operation::DiscoverVersions, 0x05)),
        op => Some(response_for(op)),
    })
    .await;
    c.activate("1").await.unwrap();
    assert_eq!(c.negotiated_version(), Some(ProtocolVersion::V1_4));
}
