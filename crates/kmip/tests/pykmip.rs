//! Our client against a real PyKMIP server over TLS 1.2 with client
//! certificates: version negotiation, key life cycle, AES-GCM with AAD and
//! tag, result reasons, pooling, deadlines.

use kmip::spec::{usage, CryptographicAlgorithm, ObjectType, ResultReason, State};
use kmip::testing::PyKmip;
use kmip::{Client, ClientSettings, Error, ProtocolVersion};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENC_DEC: i32 = usage::ENCRYPT | usage::DECRYPT;

async fn active_key(c: &Client, name: &str, mask: i32) -> String {
    let uid = c.create_aes_key(name, 256, mask).await.unwrap();
    c.activate(&uid).await.unwrap();
    uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_and_aes_gcm_against_pykmip() {
    let server = PyKmip::start();
    let c = server.client();

    let uid = c
        .create_aes_key("lifecycle-key", 256, ENC_DEC)
        .await
        .unwrap();
    // PyKMIP answers Discover Versions; 1.4 is the one both speak.
    assert_eq!(c.negotiated_version(), Some(ProtocolVersion::V1_4));

    let a = c.key_attributes(&uid).await.unwrap();
    assert_eq!(a.object_type, Some(ObjectType::SymmetricKey));
    assert_eq!(a.algorithm, Some(CryptographicAlgorithm::Aes));
    assert_eq!(a.length, Some(256));
    assert_eq!(a.usage_mask, Some(ENC_DEC));
    assert_eq!(a.state, Some(State::PreActive));

    assert_eq!(
        c.locate_by_name("lifecycle-key").await.unwrap(),
        vec![uid.clone()]
    );
    assert!(c.locate_by_name("no-such-key").await.unwrap().is_empty());

    // A Pre-Active key cannot encrypt.
    let iv = [7u8; 12];
    let e = c.encrypt_gcm(&uid, b"x", &iv, b"").await.unwrap_err();
    assert_eq!(e.reason(), Some(ResultReason::PermissionDenied), "{e}");

    c.activate(&uid).await.unwrap();
    assert_eq!(
        c.key_attributes(&uid).await.unwrap().state,
        Some(State::Active)
    );

    // AES-256-GCM with AAD: the server uses our IV and returns a 16-byte tag.
    let (ct, tag) = c
        .encrypt_gcm(&uid, b"attack at dawn", &iv, b"header")
        .await
        .unwrap();
    assert_eq!(ct.len(), 14);
    assert_eq!(tag.len(), 16);
    let pt = c
        .decrypt_gcm(&uid, &ct, &iv, b"header", &tag)
        .await
        .unwrap();
    assert_eq!(pt.as_slice(), b"attack at dawn");

    // The AAD is really authenticated: another AAD, tag or ciphertext fails.
    // (PyKMIP reports a failed tag check as General Failure, not as the
    // Cryptographic Failure real servers use.)
    for (ct2, aad2, tag2) in [
        (ct.clone(), &b"other"[..], tag.clone()),
        (ct.clone(), &b"header"[..], {
            let mut t = tag.clone();
            t[0] ^= 1;
            t
        }),
        (
            {
                let mut x = ct.clone();
                x[0] ^= 1;
                x
            },
            &b"header"[..],
            tag.clone(),
        ),
    ] {
        let e = c
            .decrypt_gcm(&uid, &ct2, &iv, aad2, &tag2)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.reason(),
                Some(ResultReason::GeneralFailure | ResultReason::CryptographicFailure)
            ),
            "{e}"
        );
    }
    // Interoperable: the same key, IV and AAD decrypt what was encrypted
    // with empty AAD too.
    let (ct3, tag3) = c.encrypt_gcm(&uid, b"", &iv, b"").await.unwrap();
    assert!(ct3.is_empty());
    assert_eq!(
        c.decrypt_gcm(&uid, &ct3, &iv, b"", &tag3)
            .await
            .unwrap()
            .len(),
        0
    );

    // Revoke: Deactivated, unusable.
    c.revoke(&uid).await.unwrap();
    assert_eq!(
        c.key_attributes(&uid).await.unwrap().state,
        Some(State::Deactivated)
    );
    let e = c.encrypt_gcm(&uid, b"x", &iv, b"").await.unwrap_err();
    assert_eq!(e.reason(), Some(ResultReason::PermissionDenied), "{e}");

    // Destroy: gone.
    c.destroy(&uid).await.unwrap();
    let e = c.key_attributes(&uid).await.unwrap_err();
    assert_eq!(e.reason(), Some(ResultReason::ItemNotFound), "{e}");
    let e = c
        .encrypt_gcm("no-such-id", b"x", &iv, b"")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Some(ResultReason::ItemNotFound), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_mask_is_enforced_by_the_server() {
    let server = PyKmip::start();
    let c = server.client();
    let enc = active_key(&c, "enc-only", usage::ENCRYPT).await;
    let iv = [1u8; 12];
    let (ct, tag) = c.encrypt_gcm(&enc, b"data", &iv, b"").await.unwrap();
    let e = c.decrypt_gcm(&enc, &ct, &iv, b"", &tag).await.unwrap_err();
    assert_eq!(e.reason(), Some(ResultReason::PermissionDenied), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_serves_concurrent_callers_and_survives_idle_drops() {
    let server = PyKmip::start();
    let mut settings = server.settings();
    settings.pool_size = 4;
    // Correctness, not latency: PyKMIP serialises requests, and a loaded
    // CI machine makes 64 of them slow.
    settings.request_timeout = Duration::from_secs(60);
    let c = Arc::new(Client::new(settings).unwrap());
    let uid = active_key(&c, "pooled", ENC_DEC).await;
    let mut tasks = Vec::new();
    for i in 0..32u8 {
        let c = Arc::clone(&c);
        let uid = uid.clone();
        tasks.push(tokio::spawn(async move {
            let iv = [i; 12];
            let msg = vec![i; usize::from(i) * 10];
            let (ct, tag) = c.encrypt_gcm(&uid, &msg, &iv, &[i]).await.unwrap();
            let pt = c.decrypt_gcm(&uid, &ct, &iv, &[i], &tag).await.unwrap();
            assert_eq!(pt.as_slice(), msg.as_slice());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The server drops idle sessions; a server restart drops all of them.
    // The pooled connections are dead, and the next call still works.
    let mut server = server;
    server.restart();
    let (ct, tag) = c
        .encrypt_gcm(&uid, b"after restart", &[3; 12], b"")
        .await
        .unwrap();
    assert_eq!(
        c.decrypt_gcm(&uid, &ct, &[3; 12], b"", &tag)
            .await
            .unwrap()
            .as_slice(),
        b"after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_hung_servers_fail_within_the_deadline() {
    let mut server = PyKmip::start();
    let uid = active_key(&server.client(), "deadline", ENC_DEC).await;
    let mut settings: ClientSettings = server.settings();
    settings.request_timeout = Duration::from_millis(500);
    let c = Client::new(settings).unwrap();

    // Frozen: connections are accepted by the kernel but never answered.
    server.pause();
    let t = Instant::now();
    let e = c.encrypt_gcm(&uid, b"x", &[0; 12], b"").await.unwrap_err();
    assert!(matches!(e, Error::Timeout(500)), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    server.resume();

    // Gone: connection refused, immediately.
    server.stop();
    c.clear_idle();
    let t = Instant::now();
    let e = c.encrypt_gcm(&uid, b"x", &[0; 12], b"").await.unwrap_err();
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_certificate_is_refused() {
    let server = PyKmip::start();
    let other = PyKmip::start();
    // The other server's CA and client identity: the handshake fails.
    let mut settings = server.settings();
    settings.tls = other.identity();
    let c = Client::new(settings).unwrap();
    let e = c.locate_by_name("x").await.unwrap_err();
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_really_does_aes_256_gcm_with_the_aad() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let server = PyKmip::start();
    let c = server.client();
    let uid = active_key(&c, "checked", ENC_DEC).await;
    let iv = [0x5Au8; 12];
    let (ct, tag) = c
        .encrypt_gcm(&uid, b"checked independently", &iv, b"the aad")
        .await
        .unwrap();

    // The same computation with the key material and aws-lc: identical.
    let material = c.get_key_material(&uid).await.unwrap();
    assert_eq!(material.len(), 32);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).unwrap());
    let mut buf = b"checked independently".to_vec();
    let local_tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&b"the aad"[..]),
            &mut buf,
        )
        .unwrap();
    assert_eq!(buf, ct);
    assert_eq!(local_tag.as_ref(), tag.as_slice());

    // And what aws-lc seals, the server opens.
    let mut buf = b"the other way".to_vec();
    let t = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([7; 12]),
            Aad::from(&b"x"[..]),
            &mut buf,
        )
        .unwrap();
    let pt = c
        .decrypt_gcm(&uid, &buf, &[7; 12], b"x", t.as_ref())
        .await
        .unwrap();
    assert_eq!(pt.as_slice(), b"the other way");
}
