//! Aliases, tags, key policies, descriptions, scheduled deletion and
//! rotation status through the official AWS SDK for Rust.

mod common;

use common::code;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};
use kms_core::auth::AuthMode;
use kms_core::store::{MemoryStore, Store};
use std::sync::Arc;

async fn start() -> (
    kms_core::server::KmsHandle,
    Arc<dyn Store>,
    aws_sdk_kms::Client,
) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::in_memory());
    let handle = common::start_with(AuthMode::Development, Arc::clone(&store)).await;
    let client = common::client(handle.addr, "111122223333", "x", "us-east-1");
    (handle, store, client)
}

async fn new_key(c: &aws_sdk_kms::Client) -> String {
    c.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases() {
    let (kms, _, c) = start().await;
    let k1 = new_key(&c).await;
    let k2 = new_key(&c).await;
    c.create_alias()
        .alias_name("alias/orders")
        .target_key_id(&k1)
        .send()
        .await
        .unwrap();
    let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/orders";
    for reference in ["alias/orders", alias_arn] {
        let d = c.describe_key().key_id(reference).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), k1);
    }
    let enc = c
        .encrypt()
        .key_id("alias/orders")
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(enc.key_id().unwrap().ends_with(&k1));

    let e = c
        .create_alias()
        .alias_name("alias/orders")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "AlreadyExistsException");
    let e = c
        .create_alias()
        .alias_name("alias/aws/s3")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidAliasNameException");
    let e = c
        .create_alias()
        .alias_name("orders")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap_err();
    // AWS: ValidationException for a name without `alias/` (issue 15).
    assert_eq!(code(e), "ValidationException");
    let e = c
        .create_alias()
        .alias_name("alias/x")
        .target_key_id("alias/orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");

    c.create_alias()
        .alias_name("alias/billing")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap();
    let all = c.list_aliases().send().await.unwrap();
    let names: Vec<&str> = all
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .collect();
    assert_eq!(names, vec!["alias/billing", "alias/orders"]);
    let for_k1 = c.list_aliases().key_id(&k1).send().await.unwrap();
    assert_eq!(for_k1.aliases().len(), 1);
    assert_eq!(for_k1.aliases()[0].alias_arn(), Some(alias_arn));
    assert_eq!(for_k1.aliases()[0].target_key_id(), Some(k1.as_str()));
    let page = c.list_aliases().limit(1).send().await.unwrap();
    assert!(page.truncated());

    c.update_alias()
        .alias_name("alias/orders")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap();
    let d = c
        .describe_key()
        .key_id("alias/orders")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), k2);
    c.delete_alias()
        .alias_name("alias/orders")
        .send()
        .await
        .unwrap();
    let e = c
        .describe_key()
        .key_id("alias/orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    let e = c
        .delete_alias()
        .alias_name("alias/orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_policies_and_description() {
    let (kms, _, c) = start().await;
    let k = new_key(&c).await;
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    c.tag_resource()
        .key_id(&k)
        .tags(tag("team", "a"))
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    c.tag_resource()
        .key_id(&k)
        .tags(tag("team", "b"))
        .send()
        .await
        .unwrap();
    let tags = c.list_resource_tags().key_id(&k).send().await.unwrap();
    let pairs: Vec<(&str, &str)> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(pairs, vec![("env", "prod"), ("team", "b")]);
    let first = c
        .list_resource_tags()
        .key_id(&k)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first.tags().len(), 1);
    assert!(first.truncated());
    c.untag_resource()
        .key_id(&k)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.list_resource_tags()
            .key_id(&k)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );
    let e = c
        .tag_resource()
        .key_id(&k)
        .tags(tag("aws:reserved", "x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "TagException");

    let p = c
        .get_key_policy()
        .key_id(&k)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    assert!(p
        .policy()
        .unwrap()
        .contains("arn:aws:iam::111122223333:root"));
    let custom = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
    c.put_key_policy()
        .key_id(&k)
        .policy_name("default")
        .policy(custom)
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.get_key_policy().key_id(&k).send().await.unwrap().policy(),
        Some(custom)
    );
    let e = c
        .put_key_policy()
        .key_id(&k)
        .policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "MalformedPolicyDocumentException");
    let names = c.list_key_policies().key_id(&k).send().await.unwrap();
    assert_eq!(names.policy_names(), &["default".to_string()]);

    c.update_key_description()
        .key_id(&k)
        .description("renamed")
        .send()
        .await
        .unwrap();
    let d = c.describe_key().key_id(&k).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("renamed"));
    let r = c.get_key_rotation_status().key_id(&k).send().await.unwrap();
    assert!(!r.key_rotation_enabled());
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_deletion_cancel_and_sweep() {
    let (kms, store, c) = start().await;
    let k = new_key(&c).await;
    let s = c.schedule_key_deletion().key_id(&k).send().await.unwrap();
    assert_eq!(s.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(s.pending_window_in_days(), Some(30));
    let d = c.describe_key().key_id(&k).send().await.unwrap();
    let md = d.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(md.pending_deletion_window_in_days(), Some(30));
    let days =
        (md.deletion_date().unwrap().secs() - md.creation_date().unwrap().secs()) as f64 / 86_400.0;
    assert!((29.9..30.1).contains(&days), "{days}");
    let e = c
        .encrypt()
        .key_id(&k)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    let e = c.enable_key().key_id(&k).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    let e = c
        .schedule_key_deletion()
        .key_id(&k)
        .pending_window_in_days(6)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");

    c.cancel_key_deletion().key_id(&k).send().await.unwrap();
    let md = c.describe_key().key_id(&k).send().await.unwrap();
    assert_eq!(
        md.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    assert!(md.key_metadata().unwrap().deletion_date().is_none());
    let e = c.cancel_key_deletion().key_id(&k).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    c.enable_key().key_id(&k).send().await.unwrap();

    // Once the waiting period is over the sweeper really deletes the key.
    c.schedule_key_deletion()
        .key_id(&k)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(
        kms_core::resourceops::sweep(store.as_ref(), now + 6.0 * 86_400.0),
        0
    );
    assert_eq!(
        kms_core::resourceops::sweep(store.as_ref(), now + 7.1 * 86_400.0),
        1
    );
    let e = c.describe_key().key_id(&k).send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    kms.shutdown().await;
}
