//! Round trips against the real `xks-proxy`, in-process on 127.0.0.1, over
//! mutual TLS with keep-alive (one pooled connection, HTTP/2 via ALPN):
//! a 32-byte Encrypt with CDIV (the proxy also decrypts to verify it), and
//! a 32-byte Decrypt. For contrast, an Encrypt from a new client each time
//! (client construction, TCP, full mTLS handshake).
//!
//! The proxy runs on a 2-worker multi-thread Tokio runtime; criterion drives
//! the client through `block_on` on the same runtime. The key store's rate
//! limit is off so that the proxy never throttles the benchmark.

#[path = "../tests/real_proxy/mod.rs"]
mod real_proxy;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use real_proxy::*;
use std::hint::black_box;
use xks_client::{decrypt_request, encrypt_request, XksClient};
use xks_wire::ExternalKeyId;

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (env, proxy) = rt.block_on(start(&Options {
        main_requests_per_second: 0,
        ..Default::default()
    }));
    let config = env.client_config(proxy.addr, PATH_MAIN, SECRET);
    let client = XksClient::new(&config).expect("client");
    let key: ExternalKeyId = KEY.parse().expect("key id");
    let plaintext = pattern(32, 7);

    let encrypt = encrypt_request(metadata(ALICE, "Encrypt"), &plaintext, None, true);
    // Also opens the pooled connection before measuring.
    let sealed = rt
        .block_on(client.encrypt(&key, &encrypt))
        .expect("warm-up encrypt");
    let decrypt = decrypt_request(
        metadata(ALICE, "Decrypt"),
        &sealed.ciphertext.0,
        sealed.ciphertext_metadata.as_ref().map(|m| &m.0[..]),
        &sealed.initialization_vector.0,
        &sealed.authentication_tag.0,
        None,
    );
    let opened = rt
        .block_on(client.decrypt(&key, &decrypt))
        .expect("warm-up decrypt");
    assert_eq!(opened.plaintext.as_ref(), &plaintext[..]);

    let mut group = c.benchmark_group("xks_proxy_mtls");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt_32B_cdiv_keepalive", |b| {
        b.iter(|| {
            let sealed = rt
                .block_on(client.encrypt(&key, black_box(&encrypt)))
                .expect("encrypt");
            black_box(sealed)
        })
    });
    group.bench_function("decrypt_32B_keepalive", |b| {
        b.iter(|| {
            let opened = rt
                .block_on(client.decrypt(&key, black_box(&decrypt)))
                .expect("decrypt");
            assert_eq!(opened.plaintext.0.len(), 32);
            black_box(opened)
        })
    });
    group.bench_function("encrypt_32B_cdiv_new_client", |b| {
        b.iter(|| {
            let fresh = XksClient::new(&config).expect("client");
            let sealed = rt
                .block_on(fresh.encrypt(&key, black_box(&encrypt)))
                .expect("encrypt");
            black_box(sealed)
        })
    });
    group.finish();
    rt.block_on(proxy.shutdown());
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
