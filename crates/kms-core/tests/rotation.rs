//! Versioned key material and rotation through aws-sdk-kms: material ids
//! in every response that names one, EnableKeyRotation /
//! DisableKeyRotation / GetKeyRotationStatus / RotateKeyOnDemand /
//! ListKeyRotations with AWS's errors, and — on the real binary with its
//! SQLite store — the material list, the rotation schedule and the
//! on-demand limit surviving `kill -9`, and automatic rotation performed by
//! the background sweeper once the service clock passes the due date.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    IncludeKeyMaterial, KeyMaterialState, KeySpec, KeyUsageType, RotationType,
};
use common::{client, code, start_dev};
use std::process::Child;
use std::time::Duration;

const DAY: f64 = 86_400.0;

fn epoch(d: &aws_sdk_kms::primitives::DateTime) -> f64 {
    d.as_secs_f64()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn is_material_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn current_id(c: &aws_sdk_kms::Client, key: &str) -> String {
    c.describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .expect("CurrentKeyMaterialId")
        .to_owned()
}

async fn encrypt(c: &aws_sdk_kms::Client, key: &str, pt: &[u8]) -> Blob {
    c.encrypt()
        .key_id(key)
        .plaintext(Blob::new(pt.to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

/// (plaintext, KeyMaterialId) of a Decrypt.
async fn decrypt(c: &aws_sdk_kms::Client, blob: &Blob) -> (Vec<u8>, String) {
    let d = c
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    (
        d.plaintext().unwrap().as_ref().to_vec(),
        d.key_material_id().expect("KeyMaterialId").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn material_ids_and_rotation_operations() {
    let h = start_dev().await;
    let c = client(h.addr, "111122223333", "x", "us-east-1");
    let key = c.create_key().send().await.unwrap();
    let meta = key.key_metadata().unwrap();
    let id = meta.key_id().to_owned();
    let first = meta.current_key_material_id().unwrap().to_owned();
    assert!(is_material_id(&first), "{first}");
    assert_eq!(current_id(&c, &id).await, first);

    // Every response naming a material names the current one.
    let blob1 = encrypt(&c, &id, b"one").await;
    assert_eq!(decrypt(&c, &blob1).await, (b"one".to_vec(), first.clone()));
    let g = c
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_eq!(g.key_material_id(), Some(first.as_str()));
    let g = c
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_eq!(g.key_material_id(), Some(first.as_str()));

    // Not enabled yet.
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!s.key_rotation_enabled());
    assert_eq!(s.rotation_period_in_days(), None);
    assert_eq!(s.next_rotation_date(), None);

    // The period's range comes from the model.
    for bad in [89, 2561] {
        let e = c
            .enable_key_rotation()
            .key_id(&id)
            .rotation_period_in_days(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(e), "ValidationException", "{bad}");
    }
    let before = now();
    c.enable_key_rotation().key_id(&id).send().await.unwrap();
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(s.key_rotation_enabled());
    assert_eq!(s.rotation_period_in_days(), Some(365));
    let next = epoch(s.next_rotation_date().unwrap());
    assert!(
        next >= before + 365.0 * DAY - 1.0 && next <= now() + 365.0 * DAY + 1.0,
        "{next}"
    );
    assert!(s.key_id().unwrap().ends_with(&id));
    c.enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(s.rotation_period_in_days(), Some(90));

    // On demand: a new current material; old ciphertexts still decrypt
    // with their own.
    let r = c.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    assert!(r.key_id().unwrap().ends_with(&id));
    let second = current_id(&c, &id).await;
    assert!(is_material_id(&second));
    assert_ne!(second, first);
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(s.on_demand_rotation_start_date(), None, "completed");
    assert_eq!(s.rotation_period_in_days(), Some(90), "schedule unchanged");
    assert_eq!(decrypt(&c, &blob1).await.1, first);
    let blob2 = encrypt(&c, &id, b"two").await;
    assert_eq!(decrypt(&c, &blob2).await, (b"two".to_vec(), second.clone()));

    // ReEncrypt names both materials.
    let re = c
        .re_encrypt()
        .ciphertext_blob(blob1.clone())
        .destination_key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(re.source_key_material_id(), Some(first.as_str()));
    assert_eq!(re.destination_key_material_id(), Some(second.as_str()));

    // ListKeyRotations: rotations only by default; every material on
    // request; pagination.
    let l = c.list_key_rotations().key_id(&id).send().await.unwrap();
    let rot = l.rotations();
    assert_eq!(rot.len(), 1);
    assert_eq!(rot[0].key_material_id(), Some(second.as_str()));
    assert_eq!(rot[0].rotation_type(), Some(&RotationType::OnDemand));
    assert_eq!(
        rot[0].key_material_state(),
        Some(&KeyMaterialState::Current)
    );
    assert!(rot[0].rotation_date().is_some());
    assert_eq!(rot[0].key_id(), Some(id.as_str()));
    assert!(!l.truncated());
    c.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let third = current_id(&c, &id).await;
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let mut req = c
            .list_key_rotations()
            .key_id(&id)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .limit(1);
        if let Some(m) = marker.take() {
            req = req.marker(m);
        }
        let page = req.send().await.unwrap();
        assert_eq!(page.rotations().len(), 1);
        seen.push(page.rotations()[0].clone());
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    let ids: Vec<_> = seen.iter().map(|r| r.key_material_id().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str(), third.as_str()]);
    assert_eq!(seen[0].rotation_type(), None, "the first material");
    assert_eq!(seen[0].rotation_date(), None);
    assert_eq!(
        seen[0].key_material_state(),
        Some(&KeyMaterialState::NonCurrent)
    );
    assert_eq!(
        seen[1].key_material_state(),
        Some(&KeyMaterialState::NonCurrent)
    );
    assert_eq!(
        seen[2].key_material_state(),
        Some(&KeyMaterialState::Current)
    );
    let e = c
        .list_key_rotations()
        .key_id(&id)
        .marker("not-a-marker!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidMarkerException");

    // Disable: status false, rotating on demand still allowed.
    c.disable_key_rotation().key_id(&id).send().await.unwrap();
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!s.key_rotation_enabled());
    assert_eq!(s.next_rotation_date(), None);

    // A disabled key: DisabledException; pending deletion:
    // KMSInvalidStateException, rotation status reads false.
    c.enable_key_rotation().key_id(&id).send().await.unwrap();
    c.disable_key().key_id(&id).send().await.unwrap();
    for e in [
        code(
            c.enable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            c.disable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            c.rotate_key_on_demand()
                .key_id(&id)
                .send()
                .await
                .unwrap_err(),
        ),
    ] {
        assert_eq!(e, "DisabledException");
    }
    c.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = c
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!s.key_rotation_enabled());
    c.cancel_key_deletion().key_id(&id).send().await.unwrap();
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        s.key_rotation_enabled(),
        "the status returns after cancelling"
    );

    // Keys that cannot rotate: HMAC, asymmetric; no material ids.
    for (spec, usage) in [
        (KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac),
        (KeySpec::EccNistP256, KeyUsageType::SignVerify),
    ] {
        let k = c
            .create_key()
            .key_spec(spec.clone())
            .key_usage(usage)
            .send()
            .await
            .unwrap();
        let m = k.key_metadata().unwrap();
        assert_eq!(m.current_key_material_id(), None, "{spec:?}");
        let kid = m.key_id();
        for e in [
            code(
                c.enable_key_rotation()
                    .key_id(kid)
                    .send()
                    .await
                    .unwrap_err(),
            ),
            code(
                c.disable_key_rotation()
                    .key_id(kid)
                    .send()
                    .await
                    .unwrap_err(),
            ),
            code(
                c.rotate_key_on_demand()
                    .key_id(kid)
                    .send()
                    .await
                    .unwrap_err(),
            ),
            code(c.list_key_rotations().key_id(kid).send().await.unwrap_err()),
            code(
                c.get_key_rotation_status()
                    .key_id(kid)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ] {
            assert_eq!(e, "UnsupportedOperationException", "{spec:?}");
        }
    }
    // Unknown keys.
    let e = c
        .rotate_key_on_demand()
        .key_id("11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    h.shutdown().await;
}

fn spawn(data: &std::path::Path, clock_offset: f64) -> (Child, u16) {
    spawn_with(data, clock_offset, &[])
}

fn spawn_with(data: &std::path::Path, clock_offset: f64, extra: &[&str]) -> (Child, u16) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--on-demand-rotation-limit".as_ref(),
        "2".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let offset = clock_offset.to_string();
    common::spawn_binary(
        &args,
        &[
            ("KMS_CORE_SWEEP_INTERVAL_MS", "200"),
            ("KMS_CORE_CLOCK_OFFSET_SECONDS", &offset),
        ],
    )
}

fn sdk(port: u16) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("111122223333", "x", None, None, "test"))
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_survive_kill_9_and_automatic_rotation_runs_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn(dir.path(), 0.0);
    let c = sdk(port);
    let id = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let first = current_id(&c, &id).await;
    let blob1 = encrypt(&c, &id, b"before").await;
    c.enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let next = epoch(
        c.get_key_rotation_status()
            .key_id(&id)
            .send()
            .await
            .unwrap()
            .next_rotation_date()
            .unwrap(),
    );
    // The configured lifetime limit (2 here).
    c.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    c.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let e = c
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "LimitExceededException");
    let third = current_id(&c, &id).await;
    let blob3 = encrypt(&c, &id, b"after").await;
    child.kill().unwrap();
    child.wait().unwrap();

    // After kill -9: materials, schedule and the count are all there.
    let (mut child, port) = spawn(dir.path(), 0.0);
    let c = sdk(port);
    assert_eq!(current_id(&c, &id).await, third);
    assert_eq!(
        decrypt(&c, &blob1).await,
        (b"before".to_vec(), first.clone())
    );
    assert_eq!(
        decrypt(&c, &blob3).await,
        (b"after".to_vec(), third.clone())
    );
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(s.rotation_period_in_days(), Some(90));
    // The same date (to the microsecond: stored and sent as f64 seconds).
    let after_restart = epoch(s.next_rotation_date().unwrap());
    assert!(
        (after_restart - next).abs() < 1e-3,
        "{after_restart} vs {next}"
    );
    let e = c
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "LimitExceededException");
    child.kill().unwrap();
    child.wait().unwrap();

    // 91 days later: the sweeper rotates automatically (a RotateKey
    // service event in the audit log).
    let audit = dir.path().join("audit.log");
    let (mut child, port) = spawn_with(
        dir.path(),
        91.0 * DAY,
        &["--audit-log", audit.to_str().unwrap()],
    );
    let c = sdk(port);
    let mut fourth = third.clone();
    for _ in 0..100 {
        fourth = current_id(&c, &id).await;
        if fourth != third {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(fourth, third, "automatic rotation did not happen");
    let mut event = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        event = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["eventName"] == "RotateKey");
        if event.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = event.expect("a RotateKey audit record");
    assert_eq!(event["eventType"], "AwsServiceEvent");
    assert_eq!(event["serviceEventDetails"]["rotationType"], "AUTOMATIC");
    assert_eq!(
        event["serviceEventDetails"]["keyMaterialId"],
        fourth.as_str()
    );
    assert_eq!(
        event["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some(id.as_str())
    );
    let l = c.list_key_rotations().key_id(&id).send().await.unwrap();
    let kinds: Vec<_> = l
        .rotations()
        .iter()
        .map(|r| r.rotation_type().cloned())
        .collect();
    assert_eq!(
        kinds,
        [
            Some(RotationType::OnDemand),
            Some(RotationType::OnDemand),
            Some(RotationType::Automatic)
        ]
    );
    let s = c
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let new_next = epoch(s.next_rotation_date().unwrap());
    assert!(new_next >= next + 90.0 * DAY, "{new_next} vs {next}");
    // Once per period: no second rotation.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(current_id(&c, &id).await, fourth);
    assert_eq!(decrypt(&c, &blob1).await.1, first);
    let blob4 = encrypt(&c, &id, b"later").await;
    assert_eq!(decrypt(&c, &blob4).await.1, fourth);
    child.kill().unwrap();
    child.wait().unwrap();
}
