//! The proxy's request pipeline without sockets: SigV4 verification, JSON
//! decoding, validation, AES-GCM (with CDIV and verification decrypt) and
//! encoding, exactly as `Proxy::handle` runs them.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::time::SystemTime;
use xks_proxy::admin::{self, Action, Target};
use xks_proxy::backend::software::master::MasterKeySource;
use xks_proxy::backend::software::store::StoredUsage;
use xks_proxy::config::Config;
use xks_proxy::keystore::{open_backends, Routing};
use xks_proxy::service::{Incoming, Proxy, Settings};

const AK: &str = "AKIAAAAAAAAAAAAAAAAAAA22";
const SK: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA";

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Proxy {
    let target = Target {
        data_dir: dir.join("data"),
        master_key: MasterKeySource::File(dir.join("data/master.key")),
    };
    admin::run(
        &target,
        Action::Create {
            id: "k".into(),
            usage: StoredUsage::EncryptDecrypt,
        },
    )
    .unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
plain_http = true
[backends.b]
type = "software"
data_dir = "{}"
[[key_stores]]
name = "s"
uri_path = "/kms/xks/v1"
region = "us-east-1"
backend = "b"
rate_limit = {{ requests_per_second = 0 }}
[[key_stores.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
"#,
        dir.join("data").display()
    );
    let cfg = Config::parse(&text).unwrap();
    cfg.validate().unwrap();
    let _guard = rt.enter();
    let backends = open_backends(&cfg).unwrap();
    let routing = Routing::build(&cfg, &backends).unwrap();
    Proxy::new(
        routing,
        Settings {
            max_plaintext_bytes: 8192,
            max_aad_bytes: 16384,
            backend_timeout: std::time::Duration::from_millis(200),
            max_clock_skew: std::time::Duration::from_secs(300),
            load_balancer_health_path: "/ping".into(),
            fleet_size: 1,
            vendor: "v".into(),
            model: "m".into(),
        },
    )
}

struct Signed {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn signed(path: &str, body: serde_json::Value) -> Signed {
    let body = serde_json::to_vec(&body).unwrap();
    let cred = sigv4::Credential::new(AK, SK);
    let sig = sigv4::sign(
        "POST",
        "xks.example.com",
        path,
        &[],
        &body,
        &cred,
        "us-east-1",
        "kms-xks-proxy",
        SystemTime::now(),
    )
    .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "xks.example.com".parse().unwrap());
    headers.insert("x-amz-date", sig.amz_date.parse().unwrap());
    headers.insert("authorization", sig.authorization.parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    Signed {
        path: path.to_owned(),
        headers,
        body,
    }
}

fn md(op: &str) -> serde_json::Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::111122223333:role/app",
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let proxy = setup(&rt, dir.path());
    let aad = xks_wire::b64::encode(&[7u8; 64]);
    let method = http::Method::POST;
    let mut group = c.benchmark_group("proxy_pipeline");
    for size in [32usize, 4096] {
        let req = signed(
            "/kms/xks/v1/keys/k/encrypt",
            json!({"requestMetadata": md("GenerateDataKey"), "plaintext": xks_wire::b64::encode(&vec![1u8; size]),
                   "additionalAuthenticatedData": aad, "encryptionAlgorithm": "AES_GCM",
                   "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}),
        );
        let run = |r: &Signed| {
            rt.block_on(proxy.handle(Incoming {
                method: &method,
                path: &r.path,
                query: None,
                headers: &r.headers,
                authority: None,
                body: &r.body,
            }))
        };
        let first = run(&req);
        assert_eq!(
            first.status,
            200,
            "{}",
            String::from_utf8_lossy(&first.body)
        );
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("encrypt_{size}B_cdiv"), |b| b.iter(|| run(&req)));
        if size == 32 {
            let enc: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
            let dec = signed(
                "/kms/xks/v1/keys/k/decrypt",
                json!({"requestMetadata": md("Decrypt"), "ciphertext": enc["ciphertext"],
                       "ciphertextMetadata": enc["ciphertextMetadata"], "initializationVector": enc["initializationVector"],
                       "authenticationTag": enc["authenticationTag"], "additionalAuthenticatedData": aad,
                       "encryptionAlgorithm": "AES_GCM"}),
            );
            assert_eq!(run(&dec).status, 200);
            group.bench_function("decrypt_32B", |b| b.iter(|| run(&dec)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
