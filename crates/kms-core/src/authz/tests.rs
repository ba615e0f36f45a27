//! Table-driven tests of the policy grammar and the evaluator.

use super::condition::{parse_date, parse_operator, Operator, Qualifier};
use super::context::{AuthzInput, Caller, KeyFacts, RequestFacts};
use super::eval::{authorize, PolicySource, Reason};
use super::explain::{explain, ExplainRequest};
use super::grants::{Grant, GrantConstraints, GrantOperation};
use super::policy::{default_policy, PolicyDocument, PolicyKind, MAX_POLICY_BYTES};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Encryption context pairs of a table row.
type Pairs = &'static [(&'static str, &'static str)];

const A: &str = "111122223333";
const B: &str = "444455556666";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/session-1";
const OTHER: &str = "arn:aws:iam::444455556666:user/carol";

/// Owned request data; [`Fx::decide`] borrows it into an [`AuthzInput`].
struct Fx {
    caller: Caller,
    policy: PolicyDocument,
    action: String,
    key_arn: String,
    key_spec: String,
    key_usage: String,
    key_tags: BTreeMap<String, String>,
    aliases: Vec<String>,
    ctx: Option<BTreeMap<String, String>>,
    enc_alg: Option<String>,
    grant_ops: Option<Vec<String>>,
    request_alias: Option<String>,
    source_ip: Option<String>,
    secure: bool,
    now: String,
    request_tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
    window: Option<String>,
    grants: Vec<Arc<Grant>>,
    token_grants: Vec<Arc<Grant>>,
    strict: bool,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key_policy(json: &str) -> PolicyDocument {
    PolicyDocument::parse(json, PolicyKind::Key).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn identity(json: &str) -> Arc<PolicyDocument> {
    Arc::new(PolicyDocument::parse(json, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}")))
}

/// A key policy with one statement.
fn one(effect: &str, principal: &str, action: &str, extra: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":{principal},"Action":{action},"Resource":"*"{extra}}}]}}"#
    )
}

impl Fx {
    fn new(caller: &str, policy: &str) -> Fx {
        let account = caller.split(':').nth(4).unwrap_or("").to_owned();
        Fx {
            caller: Caller::new(caller, &account),
            policy: key_policy(policy),
            action: "kms:Decrypt".into(),
            key_arn: KEY.into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_tags: BTreeMap::new(),
            aliases: vec![],
            ctx: None,
            enc_alg: None,
            grant_ops: None,
            request_alias: None,
            source_ip: None,
            secure: true,
            now: "2026-06-01T12:00:00Z".into(),
            request_tags: None,
            tag_keys: None,
            window: None,
            grants: vec![],
            token_grants: vec![],
            strict: false,
        }
    }

    fn action(mut self, a: &str) -> Fx {
        self.action = a.into();
        self
    }

    fn ctx(mut self, pairs: &[(&str, &str)]) -> Fx {
        self.ctx = Some(map(pairs));
        self
    }

    fn strict(mut self) -> Fx {
        self.strict = true;
        self
    }

    fn identity(mut self, policies: &[&str]) -> Fx {
        self.caller = self
            .caller
            .with_identity_policies(policies.iter().map(|p| identity(p)).collect());
        self
    }

    fn run<T>(&self, f: impl FnOnce(&AuthzInput<'_>) -> T) -> T {
        let input = AuthzInput {
            caller: &self.caller,
            action: &self.action,
            key: KeyFacts {
                arn: &self.key_arn,
                account: self.key_arn.split(':').nth(4).unwrap_or(""),
                key_spec: &self.key_spec,
                key_usage: &self.key_usage,
                key_origin: "AWS_KMS",
                multi_region: false,
                tags: &self.key_tags,
                aliases: &self.aliases,
            },
            key_policy: &self.policy,
            request: RequestFacts {
                encryption_context: self.ctx.as_ref(),
                encryption_algorithm: self.enc_alg.as_deref(),
                grant_operations: self.grant_ops.as_deref(),
                request_alias: self.request_alias.as_deref(),
                source_ip: self.source_ip.as_deref(),
                secure_transport: self.secure,
                current_time: &self.now,
                request_tags: self.request_tags.as_ref(),
                tag_keys: self.tag_keys.as_deref(),
                pending_window_in_days: self.window.as_deref(),
                ..RequestFacts::default()
            },
            grants: &self.grants,
            token_grants: &self.token_grants,
            strict: self.strict,
        };
        f(&input)
    }

    fn allowed(&self) -> bool {
        self.run(|i| authorize(i).allowed)
    }

    fn summary(&self) -> String {
        self.run(|i| authorize(i).summary())
    }

    fn message(&self) -> Option<String> {
        self.run(|i| authorize(i).access_denied_message())
    }
}

/// Whether a statement allowing ALICE under `condition` allows the
/// request that `setup` prepares.
fn cond(condition: &str, setup: impl FnOnce(&mut Fx)) -> bool {
    let p = one(
        "Allow",
        &format!(r#"{{"AWS":"{ALICE}"}}"#),
        r#""kms:*""#,
        &format!(r#","Condition":{condition}"#),
    );
    let mut fx = Fx::new(ALICE, &p);
    setup(&mut fx);
    fx.allowed()
}

#[test]
fn default_policy_parses_and_delegates_to_the_account() {
    let text = default_policy(A);
    let p = key_policy(&text);
    assert_eq!(p.text(), text, "the original text is kept");
    assert_eq!(p.statements.len(), 1);
    assert_eq!(p.id.as_deref(), Some("key-default-1"));
    // Same-account principal without identity policies: implicit admin.
    let fx = Fx::new(ALICE, &text);
    assert!(fx.allowed());
    assert!(
        fx.summary().contains("treated as Allow kms:* on *"),
        "{}",
        fx.summary()
    );
    // Strict mode: no identity policy means no permission.
    let fx = Fx::new(ALICE, &text).strict();
    assert!(!fx.allowed());
    assert_eq!(
        fx.message().unwrap(),
        format!("User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {KEY} because no identity-based policy allows the kms:Decrypt action")
    );
    // The account root user is never limited by identity policies.
    assert!(Fx::new(&format!("arn:aws:iam::{A}:root"), &text)
        .strict()
        .allowed());
    // Another account's principal: the default policy does not name it.
    let fx = Fx::new(OTHER, &text);
    assert!(!fx.allowed());
    assert_eq!(
        fx.message().unwrap(),
        format!("User: {OTHER} is not authorized to perform: kms:Decrypt on resource: {KEY} because no resource-based policy allows the kms:Decrypt action")
    );
}

#[test]
fn delegation_needs_an_identity_allow() {
    let text = default_policy(A);
    let allow_decrypt = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"arn:aws:kms:*:111122223333:key/*"}}"#;
    let fx = Fx::new(ALICE, &text).identity(&[allow_decrypt]);
    assert!(fx.allowed());
    assert!(
        fx.summary().contains("identity policy 1 statement 1"),
        "{}",
        fx.summary()
    );
    assert!(!Fx::new(ALICE, &text)
        .identity(&[allow_decrypt])
        .action("kms:ScheduleKeyDeletion")
        .allowed());
    // An empty list of identity policies: no IAM permission even when not strict.
    assert!(!Fx::new(ALICE, &text).identity(&[]).allowed());
    // An identity policy on another resource does not help.
    let elsewhere = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:999999999999:key/*"}}"#;
    assert!(!Fx::new(ALICE, &text).identity(&[elsewhere]).allowed());
    // Identity policy alone (key policy does not delegate): denied.
    let only_bob = one("Allow", &format!(r#"{{"AWS":"{BOB}"}}"#), r#""kms:*""#, "");
    let fx = Fx::new(ALICE, &only_bob).identity(&[allow_decrypt]);
    assert!(!fx.allowed());
    assert!(fx.message().unwrap().contains("no resource-based policy"));
}

#[test]
fn direct_allow_in_the_key_policy_is_enough_in_the_same_account() {
    let p = one(
        "Allow",
        &format!(r#"{{"AWS":"{ALICE}"}}"#),
        r#""kms:Decrypt""#,
        "",
    );
    assert!(Fx::new(ALICE, &p).strict().allowed());
    assert!(!Fx::new(BOB, &p).allowed());
    // A role principal covers its assumed-role sessions.
    let p = one(
        "Allow",
        &format!(r#"{{"AWS":["{BOB}","{ROLE}"]}}"#),
        r#""kms:*""#,
        "",
    );
    assert!(Fx::new(SESSION, &p).strict().allowed());
    // A role with a path names the sessions of that role too.
    let p = one(
        "Allow",
        r#"{"AWS":"arn:aws:iam::111122223333:role/team/app"}"#,
        r#""kms:*""#,
        "",
    );
    assert!(Fx::new(SESSION, &p).strict().allowed());
    let p = p.replace("role/team/app", "role/team/other");
    assert!(!Fx::new(SESSION, &p).strict().allowed());
    // Principal "*" allows anyone of the account directly.
    let p = one("Allow", r#""*""#, r#""kms:Decrypt""#, "");
    assert!(Fx::new(BOB, &p).strict().allowed());
    // ...but another account's caller still needs its identity allow.
    assert!(
        Fx::new(OTHER, &p).allowed(),
        "no identity policies: implicit admin"
    );
    assert!(!Fx::new(OTHER, &p).strict().allowed());
}

#[test]
fn cross_account() {
    let p = format!(
        r#"{{"Statement":[{{"Sid":"Local","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"Partner","Effect":"Allow","Principal":{{"AWS":"{B}"}},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}"#
    );
    let allow = r#"{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}"#;
    let fx = Fx::new(OTHER, &p).identity(&[allow]);
    assert!(fx.allowed());
    assert!(fx.summary().contains("Sid \"Partner\""), "{}", fx.summary());
    assert!(!Fx::new(OTHER, &p)
        .identity(&[allow])
        .action("kms:Encrypt")
        .allowed());
    let fx = Fx::new(OTHER, &p).identity(&[]).action("kms:DescribeKey");
    assert!(!fx.allowed());
    assert!(fx
        .message()
        .unwrap()
        .contains("no identity-based policy allows the kms:DescribeKey action"));
    // The other account's root user has every IAM permission of its account.
    let other_root = format!("arn:aws:iam::{B}:root");
    assert!(Fx::new(&other_root, &p).strict().allowed());
    assert!(!Fx::new(&other_root, &p)
        .strict()
        .action("kms:Encrypt")
        .allowed());
    // A direct ARN of another account also needs the identity side.
    let p = one(
        "Allow",
        &format!(r#"{{"AWS":"{OTHER}"}}"#),
        r#""kms:*""#,
        "",
    );
    assert!(!Fx::new(OTHER, &p).strict().allowed());
    assert!(Fx::new(OTHER, &p).strict().identity(&[allow]).allowed());
}

#[test]
fn explicit_deny_wins_everywhere() {
    let p = format!(
        r#"{{"Statement":[
            {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let fx = Fx::new(ALICE, &p);
    assert!(!fx.allowed());
    assert_eq!(
        fx.message().unwrap(),
        format!("User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {KEY} with an explicit deny in a resource-based policy")
    );
    assert!(
        fx.summary()
            .contains("statement 2 (Sid \"NoDecrypt\") denies"),
        "{}",
        fx.summary()
    );
    assert!(Fx::new(ALICE, &p).action("kms:Encrypt").allowed());
    // Deny in an identity policy beats a direct key policy allow.
    let deny = r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},{"Sid":"x","Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]}"#;
    let fx = Fx::new(ALICE, &p).identity(&[deny]).action("kms:Encrypt");
    assert!(!fx.allowed());
    assert!(fx
        .message()
        .unwrap()
        .ends_with("with an explicit deny in an identity-based policy"));
    // ...and beats a grant.
    let mut fx = Fx::new(BOB, &p);
    fx.grants.push(grant(BOB, &[GrantOperation::Decrypt], None));
    assert!(!fx.allowed());
    assert!(fx.run(|i| matches!(
        authorize(i).reason,
        Reason::ExplicitDeny {
            source: PolicySource::KeyPolicy,
            ..
        }
    )));
}

#[test]
fn not_action_not_principal_not_resource() {
    // NotAction: everything but key deletion.
    let p = one(
        "Allow",
        &format!(r#"{{"AWS":"{ALICE}"}}"#),
        r#""kms:Decrypt""#,
        "",
    )
    .replace(
        r#""Action":"kms:Decrypt""#,
        r#""NotAction":["kms:ScheduleKeyDeletion","kms:Disable*"]"#,
    );
    assert!(Fx::new(ALICE, &p).strict().allowed());
    assert!(!Fx::new(ALICE, &p)
        .strict()
        .action("kms:ScheduleKeyDeletion")
        .allowed());
    assert!(!Fx::new(ALICE, &p)
        .strict()
        .action("kms:DisableKey")
        .allowed());
    // NotPrincipal with Deny: everyone but alice is denied.
    let p = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}},
            {{"Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","arn:aws:iam::{A}:root"]}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    assert!(Fx::new(ALICE, &p).allowed());
    assert!(
        !Fx::new(BOB, &p).allowed(),
        "an account in NotPrincipal excludes only its root"
    );
    assert!(Fx::new(&format!("arn:aws:iam::{A}:root"), &p).allowed());
    // NotResource in an identity policy.
    let ip =
        format!(r#"{{"Statement":{{"Effect":"Allow","Action":"kms:*","NotResource":"{KEY}"}}}}"#);
    assert!(!Fx::new(ALICE, &default_policy(A))
        .identity(&[&ip])
        .allowed());
    let ip = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","NotResource":"arn:aws:kms:*:*:key/other"}}"#;
    assert!(Fx::new(ALICE, &default_policy(A)).identity(&[ip]).allowed());
}

#[test]
fn action_and_resource_wildcards() {
    let cases: &[(&str, &str, bool)] = &[
        ("\"kms:*\"", "kms:Decrypt", true),
        ("\"*\"", "kms:Decrypt", true),
        ("\"kms:Re*\"", "kms:ReEncryptFrom", true),
        ("\"kms:Re*\"", "kms:Decrypt", false),
        ("\"KMS:decrypt\"", "kms:Decrypt", true),
        (
            "\"kms:Generate*\"",
            "kms:GenerateDataKeyWithoutPlaintext",
            true,
        ),
        ("\"kms:?ncrypt\"", "kms:Encrypt", true),
        ("\"kms:?ncrypt\"", "kms:Decrypt", false),
        ("[\"kms:Encrypt\",\"kms:Decrypt\"]", "kms:Decrypt", true),
        ("\"s3:*\"", "kms:Decrypt", false),
    ];
    for (action, asked, want) in cases {
        let p = one("Allow", &format!(r#"{{"AWS":"{ALICE}"}}"#), action, "");
        assert_eq!(
            Fx::new(ALICE, &p).action(asked).allowed(),
            *want,
            "{action} vs {asked}"
        );
    }
    for (resource, want) in [
        ("*", true),
        (KEY, true),
        ("arn:aws:kms:us-east-1:111122223333:key/*", true),
        ("arn:aws:kms:*:111122223333:*", true),
        ("arn:aws:kms:us-west-2:111122223333:key/*", false),
        ("arn:aws:kms:us-east-1:111122223333:alias/*", false),
    ] {
        let p = one(
            "Allow",
            &format!(r#"{{"AWS":"{ALICE}"}}"#),
            r#""kms:*""#,
            "",
        )
        .replace(r#""Resource":"*""#, &format!(r#""Resource":"{resource}""#));
        assert_eq!(Fx::new(ALICE, &p).allowed(), want, "{resource}");
    }
}

#[test]
fn string_operators() {
    let ec = |pairs: &'static [(&'static str, &'static str)]| {
        move |fx: &mut Fx| fx.ctx = Some(map(pairs))
    };
    let cases: Vec<(&str, Pairs, bool)> = vec![
        (
            r#"{"StringEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("Dept", "it")],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("dept", "IT")],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:Dept":["HR","IT"]}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringEquals":{"KMS:encryptioncontext:Dept":"IT"}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[],
            false,
        ),
        (
            r#"{"StringNotEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("Dept", "HR")],
            true,
        ),
        (
            r#"{"StringNotEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("Dept", "IT")],
            false,
        ),
        (
            r#"{"StringNotEquals":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[],
            true,
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"it"}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Dept":"it"}}"#,
            &[("Dept", "IT")],
            false,
        ),
        (
            r#"{"StringLike":{"kms:EncryptionContext:Dept":"I*"}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringLike":{"kms:EncryptionContext:Dept":"I?"}}"#,
            &[("Dept", "ITX")],
            false,
        ),
        (
            r#"{"StringNotLike":{"kms:EncryptionContext:Dept":"H*"}}"#,
            &[("Dept", "IT")],
            true,
        ),
        (
            r#"{"StringNotLike":{"kms:EncryptionContext:Dept":"I*"}}"#,
            &[("Dept", "IT")],
            false,
        ),
        (
            r#"{"StringEqualsIfExists":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[],
            true,
        ),
        (
            r#"{"StringEqualsIfExists":{"kms:EncryptionContext:Dept":"IT"}}"#,
            &[("Dept", "HR")],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:a":"1","kms:EncryptionContext:b":"2"}}"#,
            &[("a", "1"), ("b", "2")],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:a":"1","kms:EncryptionContext:b":"2"}}"#,
            &[("a", "1")],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:a":"1"},"StringLike":{"kms:EncryptionContext:b":"x*"}}"#,
            &[("a", "1"), ("b", "xy")],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:EncryptionContext:a":"1"},"StringLike":{"kms:EncryptionContext:b":"x*"}}"#,
            &[("a", "1"), ("b", "y")],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:CallerAccount":"111122223333"}}"#,
            &[],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:CallerAccount":"444455556666"}}"#,
            &[],
            false,
        ),
        (
            r#"{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}"#,
            &[],
            true,
        ),
        (
            r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}"#,
            &[],
            true,
        ),
        (
            r#"{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#,
            &[],
            false,
        ),
        (
            r#"{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT","kms:KeyUsage":"ENCRYPT_DECRYPT","kms:KeyOrigin":"AWS_KMS"}}"#,
            &[],
            true,
        ),
        (r#"{"StringEquals":{"kms:KeySpec":"RSA_2048"}}"#, &[], false),
        (r#"{"StringEquals":{"unknown:Key":"x"}}"#, &[], false),
        (r#"{"StringNotEquals":{"unknown:Key":"x"}}"#, &[], true),
    ];
    for (c, pairs, want) in cases {
        assert_eq!(cond(c, ec(pairs)), want, "{c} with {pairs:?}");
    }
}

#[test]
fn multivalued_keys_and_qualifiers() {
    let ec = |pairs: &'static [(&'static str, &'static str)]| {
        move |fx: &mut Fx| fx.ctx = Some(map(pairs))
    };
    let none = |fx: &mut Fx| fx.ctx = None;
    let k = "kms:EncryptionContextKeys";
    let cases: Vec<(String, Pairs, bool)> = vec![
        (
            format!(r#"{{"ForAnyValue:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[("a", "1"), ("z", "1")],
            true,
        ),
        (
            format!(r#"{{"ForAnyValue:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[("z", "1")],
            false,
        ),
        (
            format!(r#"{{"ForAnyValue:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[],
            false,
        ),
        (
            format!(r#"{{"ForAllValues:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[("a", "1"), ("b", "1")],
            true,
        ),
        (
            format!(r#"{{"ForAllValues:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[("a", "1"), ("z", "1")],
            false,
        ),
        (
            format!(r#"{{"ForAllValues:StringEquals":{{"{k}":["a","b"]}}}}"#),
            &[],
            true,
        ),
        (
            format!(r#"{{"ForAllValues:StringLike":{{"{k}":["app:*"]}}}}"#),
            &[("app:x", "1"), ("app:y", "1")],
            true,
        ),
        (
            format!(r#"{{"ForAnyValue:StringNotEquals":{{"{k}":["a"]}}}}"#),
            &[("a", "1"), ("b", "1")],
            true,
        ),
        (
            format!(r#"{{"ForAnyValue:StringNotEquals":{{"{k}":["a"]}}}}"#),
            &[("a", "1")],
            false,
        ),
        (
            format!(r#"{{"ForAllValues:StringNotEquals":{{"{k}":["secret"]}}}}"#),
            &[("a", "1")],
            true,
        ),
        (
            format!(r#"{{"ForAllValues:StringNotEquals":{{"{k}":["secret"]}}}}"#),
            &[("a", "1"), ("secret", "1")],
            false,
        ),
        // No qualifier on a multi-valued key: any value.
        (
            format!(r#"{{"StringEquals":{{"{k}":"a"}}}}"#),
            &[("a", "1"), ("b", "2")],
            true,
        ),
        (
            format!(r#"{{"StringNotEquals":{{"{k}":"a"}}}}"#),
            &[("a", "1"), ("b", "2")],
            false,
        ),
    ];
    for (c, pairs, want) in cases {
        assert_eq!(cond(&c, ec(pairs)), want, "{c} with {pairs:?}");
    }
    // Absent (not merely empty) encryption context.
    assert!(!cond(
        &format!(r#"{{"ForAnyValue:StringEquals":{{"{k}":"a"}}}}"#),
        none
    ));
    assert!(cond(
        &format!(r#"{{"ForAllValues:StringEquals":{{"{k}":"a"}}}}"#),
        none
    ));
    assert!(cond(
        &format!(r#"{{"ForAnyValue:StringEqualsIfExists":{{"{k}":"a"}}}}"#),
        none
    ));
    // kms:GrantOperations on CreateGrant.
    let ops = |v: &'static [&'static str]| {
        move |fx: &mut Fx| {
            fx.action = "kms:CreateGrant".into();
            fx.grant_ops = Some(v.iter().map(|s| s.to_string()).collect());
        }
    };
    let only_crypto =
        r#"{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]}}"#;
    assert!(cond(only_crypto, ops(&["Decrypt"])));
    assert!(!cond(only_crypto, ops(&["Decrypt", "CreateGrant"])));
    // kms:ResourceAliases (a list on the key).
    let aliases = |fx: &mut Fx| fx.aliases = vec!["alias/app".into(), "alias/prod-x".into()];
    assert!(cond(
        r#"{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/prod-*"}}"#,
        aliases
    ));
    assert!(!cond(
        r#"{"ForAllValues:StringLike":{"kms:ResourceAliases":"alias/prod-*"}}"#,
        aliases
    ));
}

#[test]
fn null_operator() {
    let with = |fx: &mut Fx| fx.ctx = Some(map(&[("Dept", "IT")]));
    let without = |fx: &mut Fx| fx.ctx = Some(map(&[]));
    let k = "kms:EncryptionContext:Dept";
    assert!(cond(&format!(r#"{{"Null":{{"{k}":"false"}}}}"#), with));
    assert!(!cond(&format!(r#"{{"Null":{{"{k}":"false"}}}}"#), without));
    assert!(cond(&format!(r#"{{"Null":{{"{k}":"true"}}}}"#), without));
    assert!(!cond(&format!(r#"{{"Null":{{"{k}":true}}}}"#), with));
    assert!(
        cond(r#"{"Null":{"kms:EncryptionContextKeys":"true"}}"#, without),
        "empty list is absent"
    );
    assert!(cond(r#"{"Null":{"kms:ViaService":"true"}}"#, |_| {}));
}

#[test]
fn numeric_date_bool_ip_arn_binary() {
    let window = |d: &'static str| {
        move |fx: &mut Fx| {
            fx.action = "kms:ScheduleKeyDeletion".into();
            fx.window = Some(d.into());
        }
    };
    let k = "kms:ScheduleKeyDeletionPendingWindowInDays";
    let cases: Vec<(&str, &str, bool)> = vec![
        ("NumericEquals", "7", false),
        ("NumericEquals", "30", true),
        ("NumericNotEquals", "30", false),
        ("NumericLessThan", "31", true),
        ("NumericLessThan", "30", false),
        ("NumericLessThanEquals", "30", true),
        ("NumericGreaterThan", "29", true),
        ("NumericGreaterThan", "30", false),
        ("NumericGreaterThanEquals", "30", true),
    ];
    for (op, v, want) in cases {
        assert_eq!(
            cond(&format!(r#"{{"{op}":{{"{k}":"{v}"}}}}"#), window("30")),
            want,
            "{op} {v}"
        );
    }
    assert!(cond(
        &format!(r#"{{"NumericGreaterThanEquals":{{"{k}":14}}}}"#),
        window("30")
    ));
    assert!(!cond(
        &format!(r#"{{"NumericGreaterThanEquals":{{"{k}":14}}}}"#),
        window("7")
    ));
    assert!(cond(
        &format!(r#"{{"NumericLessThanIfExists":{{"{k}":14}}}}"#),
        |_| {}
    ));
    assert!(!cond(
        &format!(r#"{{"NumericLessThan":{{"{k}":14}}}}"#),
        |_| {}
    ));
    assert!(
        cond(&format!(r#"{{"NumericNotEquals":{{"{k}":14}}}}"#), |_| {}),
        "negated, absent"
    );

    // Dates (aws:CurrentTime is 2026-06-01T12:00:00Z).
    let t = "aws:CurrentTime";
    let now = |_: &mut Fx| {};
    for (op, v, want) in [
        ("DateLessThan", "2027-01-01T00:00:00Z", true),
        ("DateLessThan", "2026-06-01T12:00:00Z", false),
        ("DateLessThanEquals", "2026-06-01T12:00:00Z", true),
        ("DateGreaterThan", "2026-01-01", true),
        ("DateGreaterThanEquals", "2026-06-01T14:00:00+02:00", true),
        ("DateEquals", "2026-06-01T12:00:00.000Z", true),
        ("DateNotEquals", "2026-06-01T12:00:00Z", false),
        ("DateGreaterThan", "1780315200", false),
        ("DateGreaterThanEquals", "1780315200", true),
    ] {
        assert_eq!(
            cond(&format!(r#"{{"{op}":{{"{t}":"{v}"}}}}"#), now),
            want,
            "{op} {v}"
        );
    }

    // Bool.
    assert!(cond(r#"{"Bool":{"aws:SecureTransport":"true"}}"#, |_| {}));
    assert!(!cond(r#"{"Bool":{"aws:SecureTransport":true}}"#, |fx| fx
        .secure =
        false));
    assert!(cond(r#"{"Bool":{"kms:MultiRegion":"false"}}"#, |_| {}));
    assert!(!cond(
        r#"{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}"#,
        |_| {}
    ));
    assert!(cond(
        r#"{"BoolIfExists":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}"#,
        |_| {}
    ));

    // IP addresses.
    let ip = |a: &'static str| move |fx: &mut Fx| fx.source_ip = Some(a.into());
    assert!(cond(
        r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        ip("10.1.2.3")
    ));
    assert!(!cond(
        r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        ip("11.1.2.3")
    ));
    assert!(cond(
        r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","127.0.0.1"]}}"#,
        ip("127.0.0.1")
    ));
    assert!(cond(
        r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
        ip("127.0.0.1")
    ));
    assert!(cond(
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
        ip("2001:db8::1")
    ));
    assert!(!cond(
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
        ip("2001:db9::1")
    ));
    assert!(cond(
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        ip("8.8.8.8")
    ));
    assert!(!cond(
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        |_| {}
    ));

    // ARNs.
    let role = |fx: &mut Fx| {
        fx.caller = Caller::new(SESSION, A);
        fx.policy = key_policy(&one(
            "Allow",
            r#""*""#,
            r#""kms:*""#,
            &format!(
                r#","Condition":{}"#,
                fx.policy.statements[0]
                    .conditions
                    .first()
                    .map_or("{}".to_string(), |c| format!(
                        r#"{{"{}":{{"{}":"{}"}}}}"#,
                        c.operator.as_str(),
                        c.key_name,
                        match &c.values {
                            super::condition::Values::Strings(s) => s[0].clone(),
                            _ => String::new(),
                        }
                    ))
            ),
        ));
    };
    assert!(cond(
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#,
        role
    ));
    assert!(cond(
        r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/app"}}"#,
        role
    ));
    assert!(!cond(
        r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/app"}}"#,
        role
    ));
    assert!(cond(
        r#"{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/other"}}"#,
        role
    ));

    // Binary (no kms-core key is binary: compares Base64 text values).
    assert!(!cond(
        r#"{"BinaryEquals":{"kms:EncryptionContext:b":"AAEC"}}"#,
        |_| {}
    ));
    assert!(cond(
        r#"{"BinaryEquals":{"kms:EncryptionContext:b":"AAEC"}}"#,
        |fx| fx.ctx = Some(map(&[("b", "AAEC")]))
    ));
}

#[test]
fn tags_and_algorithms() {
    assert!(cond(
        r#"{"StringEquals":{"aws:ResourceTag/Project":"blue"}}"#,
        |fx| { fx.key_tags = map(&[("project", "blue")]) }
    ));
    assert!(!cond(
        r#"{"StringEquals":{"aws:ResourceTag/Project":"blue"}}"#,
        |fx| { fx.key_tags = map(&[("Project", "green")]) }
    ));
    assert!(cond(
        r#"{"StringEquals":{"aws:PrincipalTag/team":"ops"}}"#,
        |fx| { fx.caller = Caller::new(ALICE, A).with_tags([("Team", "ops")]) }
    ));
    assert!(cond(
        r#"{"StringEquals":{"aws:RequestTag/env":"prod"}}"#,
        |fx| { fx.request_tags = Some(map(&[("env", "prod")])) }
    ));
    assert!(cond(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","owner"]}}"#,
        |fx| { fx.tag_keys = Some(vec!["env".into()]) }
    ));
    assert!(!cond(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","owner"]}}"#,
        |fx| { fx.tag_keys = Some(vec!["env".into(), "cost".into()]) }
    ));
    assert!(cond(
        r#"{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
        |fx| { fx.enc_alg = Some("SYMMETRIC_DEFAULT".into()) }
    ));
    assert!(!cond(
        r#"{"StringEquals":{"kms:EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}"#,
        |fx| { fx.enc_alg = Some("RSAES_OAEP_SHA_1".into()) }
    ));
    assert!(cond(
        r#"{"StringEquals":{"kms:RequestAlias":"alias/app"}}"#,
        |fx| { fx.request_alias = Some("alias/app".into()) }
    ));
}

fn grant(grantee: &str, ops: &[GrantOperation], c: Option<GrantConstraints>) -> Arc<Grant> {
    Arc::new(Grant {
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        key_arn: KEY.into(),
        account: A.into(),
        region: "us-east-1".into(),
        grant_id: "ab".repeat(32),
        name: None,
        grantee_principal: grantee.into(),
        retiring_principal: None,
        issuing_account: format!("arn:aws:iam::{A}:root"),
        operations: ops.to_vec(),
        constraints: c,
        creation_date: 0.0,
    })
}

#[test]
fn grants_allow_what_the_key_policy_does_not() {
    use GrantOperation as G;
    let only_alice = one(
        "Allow",
        &format!(r#"{{"AWS":"{ALICE}"}}"#),
        r#""kms:*""#,
        "",
    );
    let mut fx = Fx::new(BOB, &only_alice).strict();
    assert!(!fx.allowed());
    fx.grants.push(grant(BOB, &[G::Encrypt, G::Decrypt], None));
    assert!(fx.allowed());
    assert!(
        fx.summary().contains(&format!("grant {}", "ab".repeat(32))),
        "{}",
        fx.summary()
    );
    assert!(!Fx {
        action: "kms:ReEncryptFrom".into(),
        ..fx
    }
    .allowed());
    // By token, for a role session; grant constraints on the context.
    let c = GrantConstraints {
        encryption_context_subset: Some(map(&[("Dept", "IT")])),
        encryption_context_equals: None,
    };
    let mut fx = Fx::new(SESSION, &only_alice).strict();
    fx.token_grants.push(grant(ROLE, &[G::Decrypt], Some(c)));
    assert!(!fx.allowed(), "constraint not satisfied");
    let fx = fx.ctx(&[("dept", "IT"), ("x", "y")]);
    assert!(fx.allowed());
    assert!(fx.summary().contains("(by grant token)"));
    // A grant for another key's ARN does not apply.
    let mut fx = Fx::new(BOB, &only_alice);
    let mut g = (*grant(BOB, &[G::Decrypt], None)).clone();
    g.key_arn = "arn:aws:kms:us-east-1:111122223333:key/other".into();
    fx.grants.push(Arc::new(g));
    assert!(!fx.allowed());
    // Management operations are never allowed by grants.
    let mut fx = Fx::new(BOB, &only_alice).action("kms:PutKeyPolicy");
    fx.grants.push(grant(BOB, &GrantOperation::ALL, None));
    assert!(!fx.allowed());
    // A grant to another account's user works across accounts without an identity allow.
    let mut fx = Fx::new(OTHER, &only_alice).strict();
    fx.grants.push(grant(OTHER, &[G::Decrypt], None));
    assert!(fx.allowed());
    // A grant to an account needs the account's identity allow.
    let mut fx = Fx::new(OTHER, &only_alice).strict();
    fx.grants.push(grant(
        &format!("arn:aws:iam::{B}:root"),
        &[G::Decrypt],
        None,
    ));
    assert!(!fx.allowed());
    let fx =
        fx.identity(&[r#"{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}"#]);
    assert!(fx.allowed());
    // CreateGrant through a grant: only operations the grant has.
    let mut fx = Fx::new(BOB, &only_alice).action("kms:CreateGrant");
    fx.grants
        .push(grant(BOB, &[G::Decrypt, G::CreateGrant], None));
    fx.grant_ops = Some(vec!["Decrypt".into()]);
    assert!(fx.allowed());
    fx.grant_ops = Some(vec!["Decrypt".into(), "Encrypt".into()]);
    assert!(!fx.allowed());
}

#[test]
fn malformed_policies_have_precise_messages() {
    let ok_stmt =
        r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#;
    let doc = |stmt: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{stmt}]}}"#);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not valid JSON"),
        ("".into(), "empty"),
        ("[]".into(), "must be a JSON object"),
        (r#"{"Version":"2012-10-17"}"#.into(), "has no Statement"),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            "Statement list is empty",
        ),
        (
            r#"{"Version":"2013-01-01","Statement":[]}"#.into(),
            "Version must be",
        ),
        (
            r#"{"Version":2012,"Statement":[]}"#.into(),
            "Version must be a string",
        ),
        (
            format!(r#"{{"Statement":[{ok_stmt}],"Extra":1}}"#),
            "unknown element \"Extra\"",
        ),
        (
            r#"{"Statement":"x"}"#.into(),
            "Statement must be an object or a list",
        ),
        (
            doc(r#"{"Principal":"*","Action":"kms:*","Resource":"*"}"#),
            "Statement 1 has no Effect",
        ),
        (
            doc(r#"{"Effect":"Permit","Principal":"*","Action":"kms:*","Resource":"*"}"#),
            "Effect must be",
        ),
        (
            doc(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#),
            "has no Principal",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Resource":"*"}"#),
            "has no Action",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*"}"#),
            "has no Resource",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}"#,
            ),
            "both Action and NotAction",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Foo":1}"#),
            "unknown element \"Foo\"",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":"decrypt","Resource":"*"}"#),
            "is not \"*\" or \"<service>:<action>\"",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}"#),
            "Action is an empty list",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":42,"Resource":"*"}"#),
            "Action must be a string",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/x"}"#),
            "is not \"*\" or an ARN",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}"#),
            "invalid principals",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}"#,
            ),
            "invalid principals",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:group/g"},"Action":"kms:*","Resource":"*"}"#,
            ),
            "invalid principals",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"kms:*","Resource":"*"}"#),
            "unknown principal type \"Robot\"",
        ),
        (
            doc(r#"{"Effect":"Allow","Principal":"me","Action":"kms:*","Resource":"*"}"#),
            "invalid principals",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"kms:CallerAccount":"1"}}}"#,
            ),
            "unknown condition operator \"StringEqualz\"",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"a:b":"1"}}}"#,
            ),
            "qualifier",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NullIfExists":{"a:b":"true"}}}"#,
            ),
            "Null takes no IfExists",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"a:b":"ten"}}}"#,
            ),
            "is not a number",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"DateLessThan":{"a:b":"tomorrow"}}}"#,
            ),
            "is not a date",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"a:b":"yes"}}}"#,
            ),
            "true or false",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"IpAddress":{"a:b":"10.0.0.0/33"}}}"#,
            ),
            "CIDR",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"a:b":[]}}}"#,
            ),
            "empty list of values",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"a:b":{"x":1}}}}"#,
            ),
            "not a string, number or boolean",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"nocolon":"1"}}}"#,
            ),
            "is not a condition key",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":"x"}"#,
            ),
            "Condition must be a JSON object",
        ),
        (
            doc(
                r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{}}}"#,
            ),
            "has no condition keys",
        ),
        (
            doc(&format!(
                r#"{},{}"#,
                ok_stmt.replace("{\"Effect", "{\"Sid\":\"S\",\"Effect"),
                ok_stmt.replace("{\"Effect", "{\"Sid\":\"S\",\"Effect")
            )),
            "Sids must be unique",
        ),
        (doc("{\"Sid\":\"a\\u0007b\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}"), "control characters"),
        (
            format!(
                r#"{{"Statement":[{ok_stmt}],"Id":"{}"}}"#,
                "x".repeat(MAX_POLICY_BYTES)
            ),
            "the limit is 32768 bytes",
        ),
    ];
    for (text, want) in cases {
        let e = PolicyDocument::parse(&text, PolicyKind::Key).unwrap_err();
        assert!(
            e.0.contains(want),
            "{want:?} not in {:?} for {}",
            e.0,
            &text[..text.len().min(200)]
        );
        let k: crate::api::error::KmsError = e.into();
        assert_eq!(k.type_name(), "MalformedPolicyDocumentException");
    }
    // Identity policies must not name principals.
    let e = PolicyDocument::parse(&doc(ok_stmt), PolicyKind::Identity).unwrap_err();
    assert!(
        e.0.contains("identity policy may not have a Principal"),
        "{e}"
    );
    // Accepted forms: Statement as an object, principals as lists and
    // services, NotPrincipal with Allow, no Version.
    for text in [
        r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:sts::111122223333:assumed-role/r/s"]},"Action":"kms:*","Resource":"*"}}"#,
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["logs.us-east-1.amazonaws.com"],"AWS":"*"},"Action":["kms:Encrypt*"],"Resource":["*"]}}"#,
        r#"{"Statement":{"Sid":"Allow use of the key (prod.): apps","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}}"#,
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/path/r"},"Action":"*","NotResource":"arn:aws:kms:*:*:key/x"}}"#,
    ] {
        PolicyDocument::parse(text, PolicyKind::Key).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
    // The 32 KB limit is on bytes: exactly at the limit is accepted.
    let base = format!(r#"{{"Statement":[{ok_stmt}],"Id":""}}"#);
    let pad = "x".repeat(MAX_POLICY_BYTES - base.len());
    let at = base.replace(r#""Id":"""#, &format!(r#""Id":"{pad}""#));
    assert_eq!(at.len(), MAX_POLICY_BYTES);
    PolicyDocument::parse(&at, PolicyKind::Key).unwrap();
}

#[test]
fn operator_names() {
    assert_eq!(
        parse_operator("StringEquals").unwrap(),
        (Operator::StringEquals, Qualifier::None, false)
    );
    assert_eq!(
        parse_operator("stringequalsifexists").unwrap(),
        (Operator::StringEquals, Qualifier::None, true)
    );
    assert_eq!(
        parse_operator("ForAllValues:StringLikeIfExists").unwrap(),
        (Operator::StringLike, Qualifier::ForAllValues, true)
    );
    assert_eq!(
        parse_operator("ForAnyValue:ArnNotLike").unwrap().1,
        Qualifier::ForAnyValue
    );
    assert!(parse_operator("IfExists").is_err());
    assert!(parse_operator("Null").is_ok());
    assert!(parse_operator("ForAnyValue:Null").is_err());
}

#[test]
fn dates() {
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(parse_date("2026-06-01T12:00:00Z"), Some(1_780_315_200.0));
    assert_eq!(
        parse_date("2026-06-01T14:00:00+02:00"),
        Some(1_780_315_200.0)
    );
    assert_eq!(parse_date("2000-03-01"), Some(951_868_800.0));
    assert_eq!(parse_date("1780315200"), Some(1_780_315_200.0));
    for bad in [
        "2026-13-01",
        "2026-06-01T25:00:00Z",
        "2026/06/01",
        "",
        "2026-06-01Tx",
        "2026-06-01T12:00:00Q",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn explain_traces_every_statement() {
    let p = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"AppDecrypt","Effect":"Allow","Principal":{{"AWS":"{ROLE}"}},"Action":"kms:Decrypt","Resource":"*",
              "Condition":{{"StringEquals":{{"kms:EncryptionContext:app":"billing"}}}}}}]}}"#
    );
    let mut req = ExplainRequest {
        key_policy: &p,
        identity_policies: None,
        caller_arn: SESSION,
        action: "Decrypt",
        key_arn: KEY,
        strict: true,
        ..ExplainRequest::default()
    };
    let out = explain(&req).unwrap();
    assert!(out.starts_with("DENY kms:Decrypt"), "{out}");
    assert!(out.contains("AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/app/session-1 is not authorized"), "{out}");
    assert!(out.contains("AppDecrypt\") [Allow]: does not apply: condition StringEquals on kms:EncryptionContext:app (key absent from the request)"), "{out}");
    assert!(out.contains("delegation to identity policies"), "{out}");
    assert!(out.contains("strict mode: no IAM permission"), "{out}");
    req.encryption_context = map(&[("app", "billing")]);
    let out = explain(&req).unwrap();
    assert!(out.starts_with("ALLOW kms:Decrypt"), "{out}");
    assert!(
        out.contains("statement 2 (Sid \"AppDecrypt\") allows the caller"),
        "{out}"
    );
    assert!(!out.contains("AccessDeniedException"));
    req.encryption_context = map(&[("app", "other")]);
    assert!(explain(&req).unwrap().contains("(value does not match)"));
    // A policy that does not parse is reported as such.
    req.key_policy = "{";
    assert!(explain(&req)
        .unwrap_err()
        .0
        .starts_with("key policy: The policy document is not valid JSON"));
}

#[test]
fn denial_messages_never_echo_policy_text() {
    let p = r#"{"Statement":[{"Sid":"SecretSid","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:x":"hidden-value"}}}]}"#;
    let fx = Fx::new(ALICE, p).ctx(&[("x", "hidden-value")]);
    let m = fx.message().unwrap();
    assert!(
        !m.contains("SecretSid") && !m.contains("hidden-value"),
        "{m}"
    );
}

#[test]
fn lockout_safety_check() {
    use super::eval::{lockout_check, LOCKOUT_MESSAGE};
    let fx = Fx::new(ALICE, &default_policy(A))
        .strict()
        .identity(&[r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#]);
    // A policy that only lets bob administer the key locks alice out.
    let bob_only = key_policy(&one(
        "Allow",
        &format!(r#"{{"AWS":"{BOB}"}}"#),
        r#""kms:*""#,
        "",
    ));
    let e = fx.run(|i| lockout_check(&bob_only, i, false)).unwrap_err();
    assert_eq!(e.0, LOCKOUT_MESSAGE);
    let k: crate::api::error::KmsError = e.into();
    assert_eq!(k.type_name(), "MalformedPolicyDocumentException");
    assert!(
        fx.run(|i| lockout_check(&bob_only, i, true)).is_ok(),
        "bypass"
    );
    // The default policy keeps alice (delegation + her identity policy).
    let default = key_policy(&default_policy(A));
    assert!(fx.run(|i| lockout_check(&default, i, false)).is_ok());
    // A policy that allows her everything but PutKeyPolicy locks her out.
    let no_put = key_policy(
        &one(
            "Allow",
            &format!(r#"{{"AWS":"{ALICE}"}}"#),
            r#""kms:*""#,
            "",
        )
        .replace(r#""Action":"kms:*""#, r#""NotAction":"kms:PutKeyPolicy""#),
    );
    assert!(fx.run(|i| lockout_check(&no_put, i, false)).is_err());
}

#[test]
fn operations_without_a_key_use_identity_policies_only() {
    use super::eval::authorize_without_key;
    use super::policy::NO_POLICY;
    let mut fx = Fx::new(ALICE, &default_policy(A)).action("kms:CreateKey");
    fx.key_arn = String::new();
    fx.key_spec = "RSA_2048".into();
    let run = |fx: &Fx| {
        fx.run(|i| {
            let i = AuthzInput {
                key_policy: &NO_POLICY,
                ..i.clone()
            };
            let d = authorize_without_key(&i);
            (d.allowed, d.access_denied_message(), d.summary())
        })
    };
    assert!(run(&fx).0, "no identity policies: implicit admin");
    let mut strict = Fx { strict: true, ..fx };
    let (ok, msg, _) = run(&strict);
    assert!(!ok);
    assert_eq!(
        msg.unwrap(),
        format!("User: {ALICE} is not authorized to perform: kms:CreateKey because no identity-based policy allows the kms:CreateKey action")
    );
    strict.caller = strict.caller.clone().with_identity_policies(vec![identity(
        r#"{"Statement":[{"Effect":"Allow","Action":"kms:Create*","Resource":"*","Condition":{"StringLike":{"kms:KeySpec":"RSA_*"}}}]}"#,
    )]);
    let (ok, _, summary) = run(&strict);
    assert!(ok, "{summary}");
    assert!(
        summary.contains("identity policy 1 statement 1 allows"),
        "{summary}"
    );
    strict.key_spec = "HMAC_256".into();
    assert!(!run(&strict).0);
    // The key policy is not consulted (NO_POLICY has no statements).
    assert!(NO_POLICY.statements.is_empty());
}
