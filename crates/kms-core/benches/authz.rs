//! Cost of one authorization decision (what every kms-core request will
//! pay): the default key policy, and a 20-statement policy with conditions
//! whose allowing statement is the last one.

use criterion::{criterion_group, criterion_main, Criterion};
use kms_core::authz::grants::{Grant, GrantOperation};
use kms_core::authz::{
    authorize, AuthzInput, Caller, KeyFacts, PolicyDocument, PolicyKind, RequestFacts,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

const A: &str = "111122223333";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/session-1";

/// Nineteen statements that do not apply to the request (other principals,
/// other actions, failing conditions, a Deny on other actions) and a last
/// one that allows it under three conditions.
fn twenty_statements() -> String {
    let mut st = Vec::new();
    for i in 0..19 {
        st.push(match i % 4 {
            0 => format!(
                r#"{{"Sid":"Other{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:user/u{i}"}},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}}"#
            ),
            1 => format!(
                r#"{{"Sid":"Admin{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:role/admin{i}"}},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"}}"#
            ),
            2 => format!(
                r#"{{"Sid":"Cond{i}","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"999999999999","kms:EncryptionContext:tenant":"t{i}"}},"Bool":{{"aws:SecureTransport":"true"}}}}}}"#
            ),
            _ => format!(
                r#"{{"Sid":"Deny{i}","Effect":"Deny","Principal":"*","Action":["kms:ScheduleKeyDeletion","kms:PutKeyPolicy"],"Resource":"*","Condition":{{"StringNotEquals":{{"aws:PrincipalArn":"arn:aws:iam::{A}:role/admin"}}}}}}"#
            ),
        });
    }
    st.push(format!(
        r#"{{"Sid":"App","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:role/app"}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"{A}","kms:EncryptionContext:tenant":"acme"}},"ForAllValues:StringLike":{{"kms:EncryptionContextKeys":["tenant","purpose*"]}},"Bool":{{"aws:SecureTransport":"true"}}}}}}"#
    ));
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        st.join(",")
    )
}

fn bench(c: &mut Criterion) {
    let default =
        PolicyDocument::parse(&kms_core::keys::default_policy(A), PolicyKind::Key).unwrap();
    let twenty = PolicyDocument::parse(&twenty_statements(), PolicyKind::Key).unwrap();
    assert_eq!(twenty.statements.len(), 20);
    let user = Caller::new(&format!("arn:aws:iam::{A}:user/alice"), A);
    let app = Caller::new(ROLE_SESSION, A);
    let tags = BTreeMap::new();
    let ctx: BTreeMap<String, String> = [("tenant", "acme"), ("purpose", "billing")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let key = KeyFacts {
        arn: KEY,
        account: A,
        key_spec: "SYMMETRIC_DEFAULT",
        key_usage: "ENCRYPT_DECRYPT",
        key_origin: "AWS_KMS",
        multi_region: false,
        tags: &tags,
        aliases: &[],
    };
    let request = RequestFacts {
        encryption_context: Some(&ctx),
        encryption_algorithm: Some("SYMMETRIC_DEFAULT"),
        secure_transport: true,
        current_time: "2026-06-01T12:00:00Z",
        ..RequestFacts::default()
    };
    let input = |caller, policy, grants| AuthzInput {
        caller,
        action: "kms:Decrypt",
        key,
        key_policy: policy,
        request: request.clone(),
        grants,
        token_grants: &[],
        strict: false,
    };
    let none: &[Arc<Grant>] = &[];
    let i = input(&user, &default, none);
    assert!(authorize(&i).allowed);
    c.bench_function("authz_default_policy", |b| {
        b.iter(|| black_box(authorize(black_box(&i)).allowed))
    });
    let i = input(&app, &twenty, none);
    assert!(authorize(&i).allowed);
    c.bench_function("authz_20_statements_with_conditions", |b| {
        b.iter(|| black_box(authorize(black_box(&i)).allowed))
    });
    // A denial through all 20 statements, then 10 grants (the worst case:
    // nothing applies).
    let grants: Vec<Arc<Grant>> = (0..10)
        .map(|n| {
            Arc::new(Grant {
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                key_arn: KEY.into(),
                account: A.into(),
                region: "us-east-1".into(),
                grant_id: format!("{n:064x}"),
                name: None,
                grantee_principal: format!("arn:aws:iam::{A}:role/other{n}"),
                retiring_principal: None,
                issuing_account: format!("arn:aws:iam::{A}:root"),
                operations: vec![GrantOperation::Decrypt],
                constraints: None,
                creation_date: 0.0,
            })
        })
        .collect();
    let i = input(&user, &twenty, &grants);
    assert!(!authorize(&i).allowed);
    c.bench_function("authz_20_statements_10_grants_denied", |b| {
        b.iter(|| black_box(authorize(black_box(&i)).allowed))
    });
    c.bench_function("authz_parse_20_statements", |b| {
        let text = twenty_statements();
        b.iter(|| black_box(PolicyDocument::parse(black_box(&text), PolicyKind::Key).is_ok()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
