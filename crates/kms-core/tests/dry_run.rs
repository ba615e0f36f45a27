//! DryRun with DryRunModifiers IGNORE_CIPHERTEXT through aws-sdk-kms:
//! Decrypt and ReEncrypt evaluate authorization and the key's state only,
//! the ciphertext is not read; the key must then be named.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DryRunModifierType::IgnoreCiphertext;
use common::{client, code, start_dev};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_ciphertext_checks_the_named_key_only() {
    let h = start_dev().await;
    let c = client(h.addr, "111122223333", "x", "us-east-1");
    let new_key = || async {
        c.create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned()
    };
    let (a, b) = (new_key().await, new_key().await);
    let garbage = Blob::new(b"not a ciphertext at all".to_vec());

    // Without the modifier the ciphertext is read.
    let e = c
        .decrypt()
        .ciphertext_blob(garbage.clone())
        .key_id(&a)
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    // With it, only the key.
    let e = c
        .decrypt()
        .ciphertext_blob(garbage.clone())
        .key_id(&a)
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DryRunOperationException");
    let e = c
        .decrypt()
        .ciphertext_blob(garbage.clone())
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");
    // Without DryRun the modifier does nothing.
    let e = c
        .decrypt()
        .ciphertext_blob(garbage.clone())
        .key_id(&a)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    let e = c
        .re_encrypt()
        .ciphertext_blob(garbage.clone())
        .source_key_id(&a)
        .destination_key_id(&b)
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DryRunOperationException");
    let e = c
        .re_encrypt()
        .ciphertext_blob(garbage.clone())
        .destination_key_id(&b)
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");

    // The key's state still counts: a disabled source or destination.
    c.disable_key().key_id(&b).send().await.unwrap();
    let e = c
        .re_encrypt()
        .ciphertext_blob(garbage.clone())
        .source_key_id(&a)
        .destination_key_id(&b)
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let e = c
        .decrypt()
        .ciphertext_blob(garbage.clone())
        .key_id(&b)
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let e = c
        .decrypt()
        .ciphertext_blob(garbage)
        .key_id("alias/none")
        .dry_run(true)
        .dry_run_modifiers(IgnoreCiphertext)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    h.shutdown().await;
}
