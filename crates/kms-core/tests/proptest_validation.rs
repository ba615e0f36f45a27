//! Property tests of model validation (`api::validate::validate_input`, the
//! AWS KMS API model as data): arbitrary JSON never panics it, and for
//! every constrained member of every operation's input, a value the model
//! forbids (below min, above max, outside the enum) is refused with a
//! ValidationException naming that member. The constraints are read from
//! the vendored model file itself, so every one is covered.

use kms_core::api::model::Model;
use kms_core::api::validate::{validate_input, RequestError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

fn raw_model() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/model/kms-2014-11-01.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `cases` by default (CI), `PROPTEST_CASES` for a longer run.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    })
}

/// (operation, member, forbidden value, what is violated)
type Violation = (String, String, Value, String);

/// Every forbidden value the model's constraints define for top-level
/// input members, `excess` beyond the bound.
fn violations(raw: &Value, excess: u64) -> Vec<Violation> {
    let shapes = &raw["shapes"];
    let mut out = Vec::new();
    let ops = raw["operations"].as_object().unwrap();
    for (op, def) in ops {
        let Some(input) = def["input"]["shape"].as_str() else {
            continue;
        };
        let Some(members) = shapes[input]["members"].as_object() else {
            continue;
        };
        for (member, m) in members {
            let shape = &shapes[m["shape"].as_str().unwrap()];
            let ty = shape["type"].as_str().unwrap_or("");
            let min = shape["min"].as_i64();
            let max = shape["max"].as_i64();
            let mut add =
                |v: Value, why: &str| out.push((op.clone(), member.clone(), v, why.to_string()));
            match ty {
                "integer" | "long" => {
                    if let Some(min) = min {
                        add(json!(min - excess as i64), "min");
                    }
                    if let Some(max) = max {
                        add(json!(max + excess as i64), "max");
                    }
                }
                "string" => {
                    if let Some(e) = shape["enum"].as_array() {
                        let _ = e;
                        add(json!(format!("NOT_A_VALUE_{excess}")), "enum");
                    } else {
                        if min.is_some_and(|m| m >= 1) {
                            add(json!(""), "min");
                        }
                        if let Some(max) = max {
                            add(json!("a".repeat((max as u64 + excess) as usize)), "max");
                        }
                    }
                }
                "blob" => {
                    use base64::Engine as _;
                    let b64 = base64::engine::general_purpose::STANDARD;
                    if min.is_some_and(|m| m >= 1) {
                        add(json!(""), "min");
                    }
                    if let Some(max) = max {
                        add(
                            json!(b64.encode(vec![0u8; (max as u64 + excess) as usize])),
                            "max",
                        );
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// `KeyId` → `keyId`: how AWS names members in validation messages.
fn wire_name(member: &str) -> String {
    let mut c = member.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[test]
fn every_model_constraint_refuses_what_it_forbids() {
    let raw = raw_model();
    let model = Model::load().unwrap();
    let all = violations(&raw, 1);
    assert!(all.len() > 150, "only {} constraints found", all.len());
    // Each constraint at its first forbidden value...
    for (op, member, value, why) in &all {
        let body = json!({ member.as_str(): value });
        match validate_input(&model, op, &body) {
            Err(RequestError::Validation(msg)) => assert!(
                msg.contains(&format!("'{}'", wire_name(member))),
                "{op}.{member} ({why}): message does not name the member: {msg}"
            ),
            other => {
                panic!("{op}.{member} ({why}) = {value:.60}: accepted or wrong error: {other:?}")
            }
        }
    }
    // ...and further beyond it.
    runner(64)
        .run(
            &(1u64..5000, any::<prop::sample::Index>()),
            |(excess, pick)| {
                let list = violations(&raw, excess);
                let (op, member, value, why) = &list[pick.index(list.len())];
                let body = json!({ member.as_str(): value });
                let r = validate_input(&model, op, &body);
                prop_assert!(
                    matches!(r, Err(RequestError::Validation(_))),
                    "{}.{} ({}) +{}: {:?}",
                    op,
                    member,
                    why,
                    excess,
                    r
                );
                Ok(())
            },
        )
        .unwrap();
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,40}".prop_map(Value::String),
        "[A-Za-z0-9+/]{0,40}={0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[A-Za-z]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn arbitrary_json_never_panics_validation() {
    let raw = raw_model();
    let model = Model::load().unwrap();
    let ops: Vec<(String, Vec<String>)> = raw["operations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, def)| {
            let members = def["input"]["shape"]
                .as_str()
                .and_then(|s| raw["shapes"][s]["members"].as_object())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            (name.clone(), members)
        })
        .collect();
    runner(1024)
        .run(
            &(
                any::<prop::sample::Index>(),
                prop::collection::vec((any::<prop::sample::Index>(), arbitrary_json()), 0..6),
                arbitrary_json(),
            ),
            |(op, fields, whole)| {
                let (name, members) = &ops[op.index(ops.len())];
                // The operation's real member names with arbitrary values...
                let mut body = Map::new();
                for (i, v) in fields {
                    if !members.is_empty() {
                        body.insert(members[i.index(members.len())].clone(), v);
                    }
                }
                let _ = validate_input(&model, name, &Value::Object(body));
                // ...and any JSON at all.
                let _ = validate_input(&model, name, &whole);
                Ok(())
            },
        )
        .unwrap();
}
