//! Symmetric key operations through the official AWS SDK for Rust.

mod common;

use common::code;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};

async fn start() -> kms_core::server::KmsHandle {
    common::start_dev().await
}

fn client(addr: std::net::SocketAddr, account: &str, region: &str) -> aws_sdk_kms::Client {
    common::client(addr, account, "secret", region)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_and_every_reference_form() {
    let kms = start().await;
    let c = client(kms.addr, "111122223333", "eu-west-1");
    let created = c.create_key().description("orders").send().await.unwrap();
    let md = created.key_metadata().unwrap();
    let id = md.key_id().to_owned();
    let arn = md.arn().unwrap().to_owned();
    assert_eq!(arn, format!("arn:aws:kms:eu-west-1:111122223333:key/{id}"));
    assert_eq!(md.aws_account_id(), Some("111122223333"));
    assert_eq!(md.description(), Some("orders"));
    assert!(md.enabled());
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.key_spec().map(|s| s.as_str()), Some("SYMMETRIC_DEFAULT"));
    assert_eq!(md.key_usage().map(|s| s.as_str()), Some("ENCRYPT_DECRYPT"));
    assert_eq!(md.origin().map(|s| s.as_str()), Some("AWS_KMS"));
    assert_eq!(md.key_manager().map(|s| s.as_str()), Some("CUSTOMER"));
    assert_eq!(md.encryption_algorithms().len(), 1);
    assert_eq!(md.multi_region(), Some(false));
    assert!(md.creation_date().is_some());

    for reference in [id.as_str(), arn.as_str()] {
        let d = c.describe_key().key_id(reference).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), id);
    }
    let missing = "11111111-2222-4333-8444-555555555555";
    assert_eq!(
        code(c.describe_key().key_id(missing).send().await.unwrap_err()),
        "NotFoundException"
    );
    assert_eq!(
        code(
            c.describe_key()
                .key_id("alias/none")
                .send()
                .await
                .unwrap_err()
        ),
        "NotFoundException"
    );
    // The same key id in another region or account is another namespace.
    let other_region = client(kms.addr, "111122223333", "us-east-1");
    assert_eq!(
        code(
            other_region
                .describe_key()
                .key_id(&id)
                .send()
                .await
                .unwrap_err()
        ),
        "NotFoundException"
    );
    assert_eq!(
        code(
            other_region
                .describe_key()
                .key_id(&arn)
                .send()
                .await
                .unwrap_err()
        ),
        "NotFoundException"
    );
    let other_account = client(kms.addr, "444455556666", "eu-west-1");
    assert_eq!(
        code(
            other_account
                .describe_key()
                .key_id(&id)
                .send()
                .await
                .unwrap_err()
        ),
        "NotFoundException"
    );
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_decrypt_with_encryption_context() {
    let kms = start().await;
    let c = client(kms.addr, "111122223333", "us-east-1");
    let a = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let b = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let enc = c
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"attack at dawn".to_vec()))
        .encryption_context("purpose", "test")
        .encryption_context("tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(a.as_str()));
    let blob = enc.ciphertext_blob().unwrap().clone();
    // KeyId is optional for symmetric ciphertext; context order is irrelevant.
    let dec = c
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "acme")
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert_eq!(dec.key_id(), Some(a.as_str()));
    // Exact, case-sensitive match is required.
    for (k, v) in [("purpose", "Test"), ("Purpose", "test")] {
        let e = c
            .decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context(k, v)
            .encryption_context("tenant", "acme")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(e), "InvalidCiphertextException");
    }
    let e = c
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    // Naming another key is IncorrectKeyException.
    let e = c
        .decrypt()
        .key_id(&b)
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .encryption_context("tenant", "acme")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "IncorrectKeyException");
    // Tampering.
    let mut bytes = blob.as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let e = c
        .decrypt()
        .ciphertext_blob(Blob::new(bytes))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    // Plaintext limit: 4096 bytes.
    c.encrypt()
        .key_id(&a)
        .plaintext(Blob::new(vec![1; 4096]))
        .send()
        .await
        .unwrap();
    let e = c
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(vec![1; 4097]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");
    // DryRun answers after validation.
    let e = c
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"x".to_vec()))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DryRunOperationException");
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_keys_and_data_keys() {
    let kms = start().await;
    let c = client(kms.addr, "111122223333", "us-east-1");
    let key = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let dk = c
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = c
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), &plain[..]);
    let dk = c
        .generate_data_key()
        .key_id(&key)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 64);
    let without = c
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await
        .unwrap();
    let back = c
        .decrypt()
        .ciphertext_blob(without.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 16);

    c.disable_key().key_id(&key).send().await.unwrap();
    let md = c.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        md.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    assert!(!md.key_metadata().unwrap().enabled());
    let e = c
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let e = c
        .decrypt()
        .ciphertext_blob(without.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let e = c
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DisabledException");
    c.enable_key().key_id(&key).send().await.unwrap();
    c.encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_encrypt_and_list_pagination() {
    let kms = start().await;
    let c = client(kms.addr, "111122223333", "us-east-1");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            c.create_key()
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_owned(),
        );
    }
    let enc = c
        .encrypt()
        .key_id(&ids[0])
        .plaintext(Blob::new(b"move me".to_vec()))
        .send()
        .await
        .unwrap();
    let re = c
        .re_encrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .destination_key_id(&ids[1])
        .destination_encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert!(re.source_key_id().unwrap().ends_with(&ids[0]));
    assert!(re.key_id().unwrap().ends_with(&ids[1]));
    let dec = c
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"move me");

    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_owned()));
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    assert_eq!(pages, 3);
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    let e = c
        .list_keys()
        .marker("not-a-marker!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidMarkerException");
    kms.shutdown().await;
}
