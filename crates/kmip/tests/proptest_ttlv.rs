//! Property test: TTLV encode → decode is the identity for any item tree
//! (every item type, nesting up to the decoder's depth limit), and the
//! encoding has the length `encoded_len` announces, padded to 8 bytes.

use kmip::ttlv::{Item, Tag, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn tag() -> impl Strategy<Value = Tag> {
    // KMIP tags are 0x42xxxx (standard) or 0x54xxxx (extensions).
    prop_oneof![0x420000u32..=0x42FFFF, 0x540000u32..=0x54FFFF].prop_map(Tag)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        (1usize..5)
            .prop_flat_map(|words| prop::collection::vec(any::<u8>(), words * 8))
            .prop_map(Value::BigInteger),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        "\\PC{0,40}".prop_map(Value::TextString),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::ByteString(b.into())),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    let leaf_item = (tag(), leaf()).prop_map(|(t, v)| Item::new(t, v));
    leaf_item.prop_recursive(8, 128, 6, |inner| {
        (tag(), prop::collection::vec(inner, 0..6)).prop_map(|(t, items)| Item::structure(t, items))
    })
}

#[test]
fn encode_then_decode_is_the_identity() {
    let mut runner = TestRunner::new(Config {
        // PROPTEST_CASES for a longer run.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&item(), |it| {
            let bytes = it.encode();
            prop_assert_eq!(bytes.len(), it.encoded_len());
            prop_assert_eq!(bytes.len() % 8, 0);
            prop_assert_eq!(Item::decode(&bytes).unwrap(), it.clone());
            // Any strict prefix is refused, never misread.
            for cut in [1usize, 7, 8, bytes.len() / 2] {
                if cut < bytes.len() {
                    prop_assert!(Item::decode(&bytes[..bytes.len() - cut]).is_err());
                }
            }
            Ok(())
        })
        .unwrap();
}
