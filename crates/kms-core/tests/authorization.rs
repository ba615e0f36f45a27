//! Authorization through the official SDK over a real socket: key
//! policies, identity policies (strict mode), grants and grant tokens,
//! conditions, the lockout check and cross-account use, with several
//! configured principals.

mod common;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{EncryptionAlgorithmSpec, GrantConstraints, GrantOperation};
use kms_core::auth::AuthMode;
use std::sync::Arc;

const SECRET: &str = "secret-secret-secret-secret";
const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";

/// Alice may Encrypt/Decrypt only with team=blue, and DescribeKey.
const ALICE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
   "Condition":{"StringEquals":{"kms:EncryptionContext:team":"blue"}}},
  {"Effect":"Allow","Action":"kms:DescribeKey","Resource":"arn:aws:kms:*:111122223333:key/*"}]}"#;

/// Carol (another account) may use any key for Encrypt/Decrypt.
const CAROL_POLICY: &str =
    r#"{"Statement":{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#;

fn credentials() -> String {
    let entry = |ak: &str, account: &str, arn: Option<&str>, extra: &str| {
        format!(
            "[[credentials]]\naccess_key_id = \"{ak}\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{account}\"\n{}{extra}\n",
            arn.map(|a| format!("principal_arn = \"{a}\"\n")).unwrap_or_default()
        )
    };
    [
        "strict_identity_policies = true\n".to_owned(),
        entry("AKIAADMIN0000000001", ACCOUNT, None, ""),
        entry(
            "AKIAALICE0000000001",
            ACCOUNT,
            Some("arn:aws:iam::111122223333:user/alice"),
            &format!(
                "identity_policies = ['''{ALICE_POLICY}''']\n[credentials.tags]\nteam = \"blue\""
            ),
        ),
        entry(
            "AKIABOB00000000001",
            ACCOUNT,
            Some("arn:aws:iam::111122223333:user/bob"),
            "",
        ),
        entry(
            "AKIACAROL000000001",
            OTHER,
            Some("arn:aws:iam::444455556666:user/carol"),
            &format!("identity_policies = ['''{CAROL_POLICY}''']"),
        ),
    ]
    .concat()
}

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("?").to_owned()
}

fn message<E: ProvideErrorMetadata>(e: &E) -> String {
    e.message().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_policies_grants_and_cross_account() {
    let auth = AuthMode::configured_from_toml(&credentials()).unwrap();
    let kms = common::start_with(auth, Arc::new(kms_core::store::MemoryStore::in_memory())).await;
    let c = |ak: &str| common::client(kms.addr, ak, SECRET, "eu-central-1");
    let (admin, alice, bob, carol) = (
        c("AKIAADMIN0000000001"),
        c("AKIAALICE0000000001"),
        c("AKIABOB00000000001"),
        c("AKIACAROL000000001"),
    );

    // The account root creates a key with the default policy and uses it.
    let key = admin.create_key().send().await.unwrap();
    let meta = key.key_metadata().unwrap();
    let (key_id, key_arn) = (meta.key_id().to_owned(), meta.arn().unwrap().to_owned());
    admin
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let policy = admin.get_key_policy().key_id(&key_id).send().await.unwrap();
    assert!(policy
        .policy()
        .unwrap()
        .contains("\"AWS\" : \"arn:aws:iam::111122223333:root\""));

    // Alice: her identity policy's encryption context condition.
    let enc = |who: &aws_sdk_kms::Client, team: &str| {
        who.encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new("secret"))
            .encryption_context("team", team)
            .send()
    };
    let ct = enc(&alice, "blue").await.unwrap();
    alice
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .encryption_context("team", "blue")
        .send()
        .await
        .unwrap();
    let e = enc(&alice, "red").await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert_eq!(
        message(&e),
        format!("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt on resource: {key_arn} because no identity-based policy allows the kms:Encrypt action")
    );
    alice.describe_key().key_id(&key_id).send().await.unwrap();
    let e = alice
        .disable_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");

    // Bob has no identity policy in strict mode: nothing, not even ListKeys.
    let e = enc(&bob, "blue").await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    let e = bob
        .list_keys()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(message(&e).contains("kms:ListKeys"), "{}", message(&e));

    // A grant to Bob with a constraint, usable at once by its token.
    let g1 = admin
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/bob")
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "x")
                .build(),
        )
        .name("bob-app-x")
        .send()
        .await
        .unwrap();
    let (g1_id, g1_token) = (
        g1.grant_id().unwrap().to_owned(),
        g1.grant_token().unwrap().to_owned(),
    );
    let bob_enc = |ctx: Option<&str>| {
        let mut r = bob
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new("b"))
            .grant_tokens(&g1_token);
        if let Some(v) = ctx {
            r = r.encryption_context("app", v);
        }
        r.send()
    };
    let ct = bob_enc(Some("x")).await.unwrap();
    let e = bob_enc(Some("y")).await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert_eq!(
        message(&e),
        format!("User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:Encrypt on resource: {key_arn} because no identity-based policy allows the kms:Encrypt action")
    );
    bob.decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .encryption_context("app", "x")
        .send()
        .await
        .unwrap();
    // A token that is not one.
    let e = bob
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new("b"))
        .grant_tokens("not-a-token")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "InvalidGrantTokenException");
    // Name idempotency: the same grant again answers with the same id.
    let again = admin
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/bob")
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::Encrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "x")
                .build(),
        )
        .name("bob-app-x")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(g1_id.as_str()));
    // DryRun creates nothing.
    let e = admin
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/alice")
        .operations(GrantOperation::Decrypt)
        .dry_run(true)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "DryRunOperationException");

    // A second grant Bob may retire (retiring principal).
    let g2 = admin
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/alice")
        .retiring_principal("arn:aws:iam::111122223333:user/bob")
        .operations(GrantOperation::GenerateDataKey)
        .send()
        .await
        .unwrap();
    let g2_id = g2.grant_id().unwrap().to_owned();
    let all = admin.list_grants().key_id(&key_id).send().await.unwrap();
    assert_eq!(all.grants().len(), 2);
    let page = admin
        .list_grants()
        .key_id(&key_id)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.grants().len(), 1);
    assert!(page.truncated());
    let rest = admin
        .list_grants()
        .key_id(&key_id)
        .limit(1)
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.grants().len(), 1);
    assert_ne!(rest.grants()[0].grant_id(), page.grants()[0].grant_id());
    let bobs = admin
        .list_grants()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/bob")
        .send()
        .await
        .unwrap();
    assert_eq!(bobs.grants().len(), 1);
    assert_eq!(bobs.grants()[0].grant_id(), Some(g1_id.as_str()));
    assert_eq!(bobs.grants()[0].key_id(), Some(key_arn.as_str()));
    let retirable = admin
        .list_retirable_grants()
        .retiring_principal("arn:aws:iam::111122223333:user/bob")
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);
    // The retiring principal must be of the caller's account; another
    // Region of the same account has its own grants.
    let e = carol
        .list_retirable_grants()
        .retiring_principal("arn:aws:iam::111122223333:user/bob")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    let elsewhere = common::client(kms.addr, "AKIAADMIN0000000001", SECRET, "us-west-2")
        .list_retirable_grants()
        .retiring_principal("arn:aws:iam::111122223333:user/bob")
        .send()
        .await
        .unwrap();
    assert!(elsewhere.grants().is_empty());

    // Bob may not retire g1 (not its retiring principal, no RetireGrant in
    // it, no policy), but may retire g2.
    let e = bob
        .retire_grant()
        .key_id(&key_arn)
        .grant_id(&g1_id)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    bob.retire_grant()
        .key_id(&key_arn)
        .grant_id(&g2_id)
        .send()
        .await
        .unwrap();
    let e = admin
        .revoke_grant()
        .key_id(&key_id)
        .grant_id(&g2_id)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "NotFoundException");
    let e = admin
        .revoke_grant()
        .key_id(&key_id)
        .grant_id("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "InvalidGrantIdException");
    // Revoked: Bob's token and grant no longer work.
    admin
        .revoke_grant()
        .key_id(&key_id)
        .grant_id(&g1_id)
        .send()
        .await
        .unwrap();
    let e = bob_enc(Some("x")).await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");

    // A key policy with an algorithm condition (explicit deny) and a
    // statement naming Bob directly.
    let k2 = admin.create_key().send().await.unwrap();
    let k2_id = k2.key_metadata().unwrap().key_id().to_owned();
    let k2_policy = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"Bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Encrypt","Resource":"*"},
      {"Sid":"NoExplicitAlg","Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*",
       "Condition":{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}}]}"#;
    admin
        .put_key_policy()
        .key_id(&k2_id)
        .policy(k2_policy)
        .send()
        .await
        .unwrap();
    // GetKeyPolicy returns exactly what was stored.
    let got = admin.get_key_policy().key_id(&k2_id).send().await.unwrap();
    assert_eq!(got.policy(), Some(k2_policy));
    bob.encrypt()
        .key_id(&k2_id)
        .plaintext(Blob::new("b"))
        .send()
        .await
        .unwrap();
    let e = bob
        .encrypt()
        .key_id(&k2_id)
        .plaintext(Blob::new("b"))
        .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(
        message(&e).ends_with("with an explicit deny in a resource-based policy"),
        "{}",
        message(&e)
    );
    assert!(!message(&e).contains("NoExplicitAlg"));

    // Malformed policies are refused precisely and never stored.
    for (bad, needle) in [
        ("{}", "Statement"),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}"#,
            "Action",
        ),
    ] {
        let e = admin
            .put_key_policy()
            .key_id(&k2_id)
            .policy(bad)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(code(&e), "MalformedPolicyDocumentException");
        assert!(message(&e).contains(needle), "{}", message(&e));
    }
    let big = format!(
        r#"{{"Statement":{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}}}"#,
        "a".repeat(33_000)
    );
    let e = admin
        .put_key_policy()
        .key_id(&k2_id)
        .policy(big)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        ["MalformedPolicyDocumentException", "ValidationException"].contains(&code(&e).as_str()),
        "{}",
        code(&e)
    );
    let got = admin.get_key_policy().key_id(&k2_id).send().await.unwrap();
    assert_eq!(got.policy(), Some(k2_policy));

    // The lockout safety check: a policy that would lock the caller out.
    let bob_only = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}]}"#;
    let e = admin
        .put_key_policy()
        .key_id(&k2_id)
        .policy(bob_only)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocumentException");
    assert_eq!(
        message(&e),
        "The new key policy will not allow you to update the key policy in the future."
    );
    let e = admin
        .create_key()
        .policy(bob_only)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocumentException");
    admin
        .put_key_policy()
        .key_id(&k2_id)
        .policy(bob_only)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    let e = admin
        .describe_key()
        .key_id(&k2_id)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");

    // Cross-account: a key whose policy allows the other account.
    let k3 = admin.create_key().send().await.unwrap();
    let k3_meta = k3.key_metadata().unwrap();
    let (k3_id, k3_arn) = (
        k3_meta.key_id().to_owned(),
        k3_meta.arn().unwrap().to_owned(),
    );
    let k3_policy = format!(
        r#"{{"Statement":[
      {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
      {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OTHER}:root"}},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}"#
    );
    admin
        .put_key_policy()
        .key_id(&k3_id)
        .policy(k3_policy)
        .send()
        .await
        .unwrap();
    let ct = carol
        .encrypt()
        .key_id(&k3_arn)
        .plaintext(Blob::new("cross"))
        .send()
        .await
        .unwrap();
    let pt = carol
        .decrypt()
        .key_id(&k3_arn)
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"cross");
    // Without KeyId the ciphertext names the other account's key.
    let pt = carol
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"cross");
    assert_eq!(pt.key_id(), Some(k3_arn.as_str()));
    // ... but only when that key's policy allows her account.
    let own = admin
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new("mine"))
        .send()
        .await
        .unwrap();
    let e = carol
        .decrypt()
        .ciphertext_blob(own.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    // The key policy allows DescribeKey, Carol's identity policy does not.
    let e = carol
        .describe_key()
        .key_id(&k3_arn)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    // A key whose policy does not name Carol's account.
    let e = carol
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new("cross"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    // Operations AWS refuses across accounts; lists show only her account.
    let e = carol
        .disable_key()
        .key_id(&k3_arn)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "NotFoundException");
    let e = carol
        .list_keys()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    // Carol's identity policy does not allow ListKeys (strict mode).
    assert_eq!(code(&e), "AccessDeniedException");
    let keys = admin.list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 3);

    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_policies_principals_are_administrators() {
    // Not strict: a user without identity policies may do what the
    // default key policy delegates to its account.
    let auth = AuthMode::configured_from_toml(&format!(
        "[[credentials]]\naccess_key_id = \"AKIADAVE0000000001\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{ACCOUNT}\"\nprincipal_arn = \"arn:aws:iam::{ACCOUNT}:user/dave\"\n\
         [[credentials]]\naccess_key_id = \"AKIAERIN0000000001\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{OTHER}\"\nprincipal_arn = \"arn:aws:iam::{OTHER}:user/erin\"\n"
    ))
    .unwrap();
    let kms = common::start_with(auth, Arc::new(kms_core::store::MemoryStore::in_memory())).await;
    let dave = common::client(kms.addr, "AKIADAVE0000000001", SECRET, "eu-central-1");
    let erin = common::client(kms.addr, "AKIAERIN0000000001", SECRET, "eu-central-1");
    let k = dave.create_key().send().await.unwrap();
    let arn = k.key_metadata().unwrap().arn().unwrap().to_owned();
    dave.encrypt()
        .key_id(&arn)
        .plaintext(Blob::new("d"))
        .send()
        .await
        .unwrap();
    assert_eq!(dave.list_keys().send().await.unwrap().keys().len(), 1);
    // The default key policy allows no other account.
    let e = erin
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new("e"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert_eq!(erin.list_keys().send().await.unwrap().keys().len(), 0);
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_aliases_condition_follows_the_keys_aliases() {
    let auth = AuthMode::configured_from_toml(&credentials()).unwrap();
    let kms = common::start_with(auth, Arc::new(kms_core::store::MemoryStore::in_memory())).await;
    let admin = common::client(kms.addr, "AKIAADMIN0000000001", SECRET, "eu-central-1");
    let policy = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"frozen","Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*",
       "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/frozen"}}}]}"#;
    let key = admin.create_key().policy(policy).send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let encrypt = || {
        admin
            .encrypt()
            .key_id(&key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
    };
    encrypt().await.unwrap();
    admin
        .create_alias()
        .alias_name("alias/other")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    encrypt().await.unwrap();
    admin
        .create_alias()
        .alias_name("alias/frozen")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let e = encrypt().await.unwrap_err().into_service_error();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(message(&e).contains("explicit deny"), "{}", message(&e));
    admin
        .delete_alias()
        .alias_name("alias/frozen")
        .send()
        .await
        .unwrap();
    encrypt().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_pass_on_only_as_strict_and_retire_by_token() {
    let auth = AuthMode::configured_from_toml(&credentials()).unwrap();
    let kms = common::start_with(auth, Arc::new(kms_core::store::MemoryStore::in_memory())).await;
    let c = |ak: &str| common::client(kms.addr, ak, SECRET, "eu-central-1");
    let (admin, alice, bob) = (
        c("AKIAADMIN0000000001"),
        c("AKIAALICE0000000001"),
        c("AKIABOB00000000001"),
    );
    let key_id = admin
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    // Bob may encrypt and create grants, under app=x.
    let parent = admin
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("arn:aws:iam::111122223333:user/bob")
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::CreateGrant)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "x")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let parent_token = parent.grant_token().unwrap().to_owned();
    let child = |ops: GrantOperation, c: Option<GrantConstraints>| {
        bob.create_grant()
            .key_id(&key_id)
            .grantee_principal("arn:aws:iam::111122223333:user/alice")
            .retiring_principal("arn:aws:iam::111122223333:user/bob")
            .operations(ops)
            .set_constraints(c)
            .grant_tokens(&parent_token)
            .send()
    };
    // Looser constraints, or an operation the parent lacks: refused.
    for (ops, c) in [
        (GrantOperation::Encrypt, None),
        (
            GrantOperation::Encrypt,
            Some(
                GrantConstraints::builder()
                    .encryption_context_subset("app", "y")
                    .build(),
            ),
        ),
        (
            GrantOperation::Decrypt,
            Some(
                GrantConstraints::builder()
                    .encryption_context_subset("app", "x")
                    .build(),
            ),
        ),
    ] {
        let e = child(ops, c).await.unwrap_err().into_service_error();
        assert_eq!(code(&e), "AccessDeniedException");
    }
    // Stricter: allowed.
    let strict = GrantConstraints::builder()
        .encryption_context_equals("app", "x")
        .encryption_context_equals("env", "prod")
        .build();
    let g = child(GrantOperation::Encrypt, Some(strict)).await.unwrap();
    let token = g.grant_token().unwrap().to_owned();
    let alice_enc = || {
        alice
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new("a"))
            .encryption_context("app", "x")
            .encryption_context("env", "prod")
            .grant_tokens(&token)
            .send()
    };
    alice_enc().await.unwrap();
    // Bob, its retiring principal, retires it by token; the token is dead.
    bob.retire_grant().grant_token(&token).send().await.unwrap();
    let e = alice_enc().await.unwrap_err().into_service_error();
    assert!(
        ["AccessDeniedException", "InvalidGrantTokenException"].contains(&code(&e).as_str()),
        "{}",
        code(&e)
    );
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_check_sees_the_requests_source_address() {
    let auth = AuthMode::configured_from_toml(&credentials()).unwrap();
    let kms = common::start_with(auth, Arc::new(kms_core::store::MemoryStore::in_memory())).await;
    let admin = common::client(kms.addr, "AKIAADMIN0000000001", SECRET, "eu-central-1");
    let policy = |cidr: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":"{cidr}"}}}}}}]}}"#
        )
    };
    // The administrator statement holds for callers from 127.0.0.1 (this
    // one): accepted. From elsewhere only: a lockout, refused.
    let key = admin
        .create_key()
        .policy(policy("127.0.0.0/8"))
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let e = admin
        .put_key_policy()
        .key_id(&key_id)
        .policy(policy("192.0.2.0/24"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "MalformedPolicyDocumentException");
    admin
        .put_key_policy()
        .key_id(&key_id)
        .policy(policy("127.0.0.1/32"))
        .send()
        .await
        .unwrap();
    kms.shutdown().await;
}
