//! Cost of verifying one SigV4 signature (what every XKS and KMS request pays).

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, SystemTime};

fn bench(c: &mut Criterion) {
    let cred = sigv4::Credential::new(
        "AKIAAAAAAAAAAAAAAAAAAA22",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA",
    );
    let body = vec![b'x'; 300];
    let path = "/kms/xks/v1/keys/k/encrypt";
    let now = SystemTime::now();
    let sig = sigv4::sign(
        "POST",
        "xks.example.com",
        path,
        &[],
        &body,
        &cred,
        "us-east-1",
        "kms-xks-proxy",
        now,
    )
    .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "xks.example.com".parse().unwrap());
    headers.insert("x-amz-date", sig.amz_date.parse().unwrap());
    headers.insert("authorization", sig.authorization.parse().unwrap());
    let parts = sigv4::RequestParts {
        method: "POST",
        path,
        query: None,
        headers: &headers,
        authority: None,
        body: &body,
    };
    c.bench_function("sigv4_verify_300B_body", |b| {
        b.iter(|| {
            sigv4::verify(
                &parts,
                now,
                "kms-xks-proxy",
                Duration::from_secs(300),
                |_| true,
                |_| Some(&cred),
            )
            .unwrap()
        })
    });
    c.bench_function("sigv4_sign_300B_body", |b| {
        b.iter(|| {
            sigv4::sign(
                "POST",
                "xks.example.com",
                path,
                &[],
                &body,
                &cred,
                "us-east-1",
                "kms-xks-proxy",
                now,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
