//! Behaviour every [`Store`] implementation must have.

use super::*;
use crate::crypto::{canonical_context, Blob};
use crate::keys::{check_state, KeyState, Operation};

pub const A: &str = "111122223333";
pub const R: &str = "us-east-1";
pub const K1: &str = "11111111-1111-4111-8111-111111111111";
pub const K2: &str = "22222222-2222-4222-8222-222222222222";

fn rec(id: &str, account: &str, region: &str) -> KeyRecord {
    KeyRecord::new_symmetric(id, account, region, "desc", 1_700_000_000.5, None)
}

fn material(b: u8) -> Secret {
    Secret::from_slice(&[b; 32])
}

fn alias(name: &str, key: &str) -> AliasRecord {
    AliasRecord {
        account: A.into(),
        region: R.into(),
        name: name.into(),
        target_key_id: key.into(),
        creation_date: 1.0,
        last_updated_date: 1.0,
    }
}

pub fn store_contract(s: &dyn Store) {
    // Create and look up; namespaces are separate.
    let e = s.create_key(rec(K1, A, R), &material(1)).unwrap();
    assert_eq!(e.record.key_id, K1);
    assert!(matches!(
        s.create_key(rec(K1, A, R), &material(1)),
        Err(StoreError::AlreadyExists)
    ));
    assert!(s.key(A, R, K1).is_some());
    assert!(s.key(A, "eu-west-1", K1).is_none());
    assert!(s.key("444455556666", R, K1).is_none());
    s.create_key(rec(K2, A, R), &material(2)).unwrap();

    // Crypto through the cached key.
    let k = s.key(A, R, K1).unwrap();
    let ctx = canonical_context([("a", "b")]);
    let blob = k.current().unwrap().encrypt(b"pt", &ctx).unwrap();
    let parsed = Blob::parse(&blob).unwrap();
    assert_eq!(parsed.key_id_string(), K1);
    let key = s.key(A, R, &parsed.key_id_string()).unwrap();
    assert_eq!(
        key.version(parsed.version)
            .unwrap()
            .decrypt(&parsed, &ctx)
            .unwrap()
            .expose(),
        b"pt"
    );

    // Modify with a state check inside; a refusal writes nothing.
    let e = s
        .modify_key(A, R, K1, &mut |r| {
            check_state(r.key_state, Operation::DisableKey)?;
            r.enabled = false;
            r.key_state = KeyState::Disabled;
            r.key_id = "hijack".into(); // ignored
            Ok(())
        })
        .unwrap();
    assert_eq!(e.record.key_state, KeyState::Disabled);
    assert_eq!(s.key(A, R, K1).unwrap().record.key_id, K1);
    let err = s
        .modify_key(A, R, K1, &mut |r| {
            check_state(r.key_state, Operation::Encrypt)?;
            r.description = "changed".into();
            Ok(())
        })
        .unwrap_err();
    match err {
        StoreError::Rejected(b) => {
            let se = b.downcast_ref::<crate::keys::StateError>().unwrap();
            assert_eq!(se.kind.type_name(), "DisabledException");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.key(A, R, K1).unwrap().record.description, "desc");
    assert!(matches!(
        s.modify_key(A, "eu-west-1", K1, &mut |_| Ok(())),
        Err(StoreError::NotFound)
    ));

    // Rotation keeps old versions usable.
    let e = s.add_key_version(A, R, K1, 2, &material(9)).unwrap();
    assert_eq!(e.record.current_version, 2);
    assert_eq!(e.version_numbers(), vec![1, 2]);
    assert_eq!(
        e.version(1)
            .unwrap()
            .decrypt(&parsed, &ctx)
            .unwrap()
            .expose(),
        b"pt"
    );
    assert!(matches!(
        s.add_key_version(A, R, K1, 2, &material(9)),
        Err(StoreError::AlreadyExists)
    ));

    // Pagination of keys.
    let p = s.list_keys(A, R, 1, None).unwrap();
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.items[0].key_id, K1);
    let m = p.next_marker.unwrap();
    let p2 = s.list_keys(A, R, 1, Some(&m)).unwrap();
    assert_eq!(p2.items[0].key_id, K2);
    assert!(p2.next_marker.is_none());
    assert_eq!(s.list_keys(A, R, 100, None).unwrap().items.len(), 2);
    assert!(s
        .list_keys("444455556666", R, 10, None)
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        s.list_keys(A, R, 10, Some("%%%")),
        Err(StoreError::InvalidMarker)
    ));

    // Aliases.
    s.create_alias(alias("alias/one", K1)).unwrap();
    s.create_alias(alias("alias/two", K1)).unwrap();
    s.create_alias(alias("alias/three", K2)).unwrap();
    assert!(matches!(
        s.create_alias(alias("alias/one", K2)),
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        s.create_alias(alias("alias/x", "33333333-3333-4333-8333-333333333333")),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.alias(A, R, "alias/one").unwrap().target_key_id, K1);
    assert!(s.alias(A, "eu-west-1", "alias/one").is_none());
    let u = s.update_alias(A, R, "alias/two", K2, 5.0).unwrap();
    assert_eq!(
        (
            u.target_key_id.as_str(),
            u.last_updated_date,
            u.creation_date
        ),
        (K2, 5.0, 1.0)
    );
    assert!(matches!(
        s.update_alias(A, R, "alias/none", K2, 5.0),
        Err(StoreError::NotFound)
    ));
    let names = |p: Page<AliasRecord>| p.items.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_aliases(A, R, None, 10, None).unwrap()),
        ["alias/one", "alias/three", "alias/two"]
    );
    assert_eq!(
        names(s.list_aliases(A, R, Some(K2), 10, None).unwrap()),
        ["alias/three", "alias/two"]
    );
    let p = s.list_aliases(A, R, None, 2, None).unwrap();
    let p2 = s
        .list_aliases(A, R, None, 2, p.next_marker.as_deref())
        .unwrap();
    assert_eq!(names(p2), ["alias/two"]);
    s.delete_alias(A, R, "alias/three").unwrap();
    assert!(matches!(
        s.delete_alias(A, R, "alias/three"),
        Err(StoreError::NotFound)
    ));

    // Tags and policies.
    s.tag_key(
        A,
        R,
        K2,
        &[("b".into(), "2".into()), ("a".into(), "1".into())],
    )
    .unwrap();
    s.tag_key(A, R, K2, &[("a".into(), "one".into())]).unwrap();
    let t = s.list_tags(A, R, K2, 1, None).unwrap();
    assert_eq!(t.items, [("a".to_string(), "one".to_string())]);
    let t2 = s.list_tags(A, R, K2, 10, t.next_marker.as_deref()).unwrap();
    assert_eq!(t2.items, [("b".to_string(), "2".to_string())]);
    s.untag_key(A, R, K2, &["b".into(), "zz".into()]).unwrap();
    assert_eq!(s.list_tags(A, R, K2, 10, None).unwrap().items.len(), 1);
    assert!(s
        .key_policy(A, R, K2, "default")
        .unwrap()
        .unwrap()
        .contains(A));
    assert_eq!(s.key_policy(A, R, K2, "other").unwrap(), None);
    s.put_key_policy(A, R, K2, "{\"Version\":\"2012-10-17\"}")
        .unwrap();
    assert_eq!(
        s.key_policy(A, R, K2, "default").unwrap().unwrap(),
        "{\"Version\":\"2012-10-17\"}"
    );
    assert_eq!(
        s.list_key_policies(A, R, K2, 10, None).unwrap().items,
        ["default"]
    );
    assert!(matches!(
        s.list_tags(A, "x", K2, 10, None),
        Err(StoreError::NotFound)
    ));

    // Deletion sweep and delete (aliases go with the key).
    s.modify_key(A, R, K2, &mut |r| {
        r.key_state = KeyState::PendingDeletion;
        r.deletion_date = Some(100.0);
        r.pending_deletion_window_days = Some(7);
        Ok(())
    })
    .unwrap();
    assert!(s.due_for_deletion(99.0).is_empty());
    assert_eq!(
        s.due_for_deletion(100.0),
        [(A.to_string(), R.to_string(), K2.to_string())]
    );
    s.delete_key(A, R, K2).unwrap();
    assert!(s.key(A, R, K2).is_none());
    assert!(s.alias(A, R, "alias/two").is_none());
    assert_eq!(s.list_keys(A, R, 10, None).unwrap().items.len(), 1);
    assert!(matches!(s.delete_key(A, R, K2), Err(StoreError::NotFound)));
}

/// Fills a store; returns a ciphertext of K1 and its context.
pub fn populate(s: &dyn Store) -> (Vec<u8>, Vec<u8>) {
    s.create_key(rec(K1, A, R), &Secret::from_slice(&[0x5a; 32]))
        .unwrap();
    s.create_key(rec(K2, A, "eu-west-1"), &material(2)).unwrap();
    s.add_key_version(A, R, K1, 2, &Secret::from_slice(&[0x5a; 32]))
        .unwrap();
    s.create_alias(alias("alias/app", K1)).unwrap();
    s.tag_key(A, R, K1, &[("team".into(), "x".into())]).unwrap();
    s.modify_key(A, R, K1, &mut |r| {
        r.description = "updated".into();
        r.enabled = false;
        r.key_state = KeyState::Disabled;
        Ok(())
    })
    .unwrap();
    let ctx = canonical_context([("purpose", "restart")]);
    let blob = s
        .key(A, R, K1)
        .unwrap()
        .version(1)
        .unwrap()
        .encrypt(b"survives", &ctx)
        .unwrap();
    (blob, ctx)
}

pub fn check_populated(s: &dyn Store, blob: &[u8], ctx: &[u8]) {
    let k = s.key(A, R, K1).unwrap();
    assert_eq!(k.record.description, "updated");
    assert_eq!(k.record.key_state, KeyState::Disabled);
    assert_eq!(k.record.current_version, 2);
    assert_eq!(k.record.tags.get("team").map(String::as_str), Some("x"));
    let parsed = Blob::parse(blob).unwrap();
    assert_eq!(
        k.version(parsed.version)
            .unwrap()
            .decrypt(&parsed, ctx)
            .unwrap()
            .expose(),
        b"survives"
    );
    assert!(k.current().is_some());
    assert!(s.key(A, "eu-west-1", K2).is_some());
    assert_eq!(s.alias(A, R, "alias/app").unwrap().target_key_id, K1);
    assert_eq!(s.list_keys(A, R, 10, None).unwrap().items.len(), 1);
}

/// A grant of `key` for `grantee` (ids are 64 hex digits).
pub fn grant(key: &str, id: u8, name: Option<&str>, grantee: &str) -> crate::authz::grants::Grant {
    use crate::authz::grants::{Grant, GrantOperation};
    Grant {
        key_id: key.into(),
        key_arn: crate::keys::key_arn(R, A, key),
        account: A.into(),
        region: R.into(),
        grant_id: format!("{id:02x}").repeat(32),
        name: name.map(str::to_owned),
        grantee_principal: grantee.into(),
        retiring_principal: Some(format!("arn:aws:iam::{A}:user/ops")),
        issuing_account: format!("arn:aws:iam::{A}:root"),
        operations: vec![GrantOperation::Decrypt, GrantOperation::Encrypt],
        constraints: None,
        creation_date: 1.0 + f64::from(id),
    }
}

/// Grant behaviour every [`Store`] must have; `s` is empty.
pub fn grants_contract(s: &dyn Store) {
    let alice = "arn:aws:iam::111122223333:user/alice";
    let bob = "arn:aws:iam::111122223333:user/bob";
    s.create_key(rec(K1, A, R), &material(1)).unwrap();
    s.create_key(rec(K2, A, R), &material(2)).unwrap();
    assert!(s.grants_of_key(K1).is_empty());

    // Create; the token digest finds the grant at once.
    let c = s
        .create_grant(grant(K1, 1, Some("g"), alice), "d1")
        .unwrap();
    assert!(!c.existed);
    assert_eq!(s.grant_by_token("d1").unwrap().grant_id, "01".repeat(32));
    assert!(s.grant_by_token("unknown").is_none());
    // Same Name and parameters: the existing grant answers, the new token works too.
    let again = s
        .create_grant(grant(K1, 9, Some("g"), alice), "d2")
        .unwrap();
    assert!(again.existed);
    assert_eq!(again.grant.grant_id, "01".repeat(32));
    assert_eq!(s.grant_by_token("d2").unwrap().grant_id, "01".repeat(32));
    // Same Name, other parameters: a new grant.
    assert!(
        !s.create_grant(grant(K1, 2, Some("g"), bob), "d3")
            .unwrap()
            .existed
    );
    // No Name: never idempotent.
    s.create_grant(grant(K1, 3, None, alice), "d4").unwrap();
    s.create_grant(grant(K2, 4, None, bob), "d5").unwrap();
    assert_eq!(s.grants_of_key(K1).len(), 3);
    // The key must exist in the namespace; ids are unique per key.
    let mut other = grant(K1, 5, None, alice);
    other.account = "444455556666".into();
    assert!(matches!(
        s.create_grant(other, "d6"),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.create_grant(grant(K1, 3, None, bob), "d7"),
        Err(StoreError::AlreadyExists)
    ));

    // ListGrants: filters and pagination.
    let all = s.list_grants(A, R, K1, None, None, 50, None).unwrap();
    assert_eq!(all.items.len(), 3);
    assert!(all.next_marker.is_none());
    let p1 = s.list_grants(A, R, K1, None, None, 2, None).unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s
        .list_grants(A, R, K1, None, None, 2, p1.next_marker.as_deref())
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_marker.is_none());
    assert_eq!(
        s.list_grants(A, R, K1, None, Some(bob), 50, None)
            .unwrap()
            .items
            .len(),
        1
    );
    let id3 = "03".repeat(32);
    let one = s.list_grants(A, R, K1, Some(&id3), None, 50, None).unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].grant_id, id3);
    assert!(matches!(
        s.list_grants(A, R, K1, None, None, 50, Some("%%%")),
        Err(StoreError::InvalidMarker)
    ));
    assert!(matches!(
        s.list_grants("444455556666", R, K1, None, None, 50, None),
        Err(StoreError::NotFound)
    ));

    // ListRetirableGrants spans keys.
    let ops = format!("arn:aws:iam::{A}:user/ops");
    let r = s.list_retirable_grants(&ops, R, 3, None).unwrap();
    assert_eq!(r.items.len(), 3);
    let r2 = s
        .list_retirable_grants(&ops, R, 3, r.next_marker.as_deref())
        .unwrap();
    assert_eq!(r2.items.len(), 1);
    assert!(s
        .list_retirable_grants(alice, R, 50, None)
        .unwrap()
        .items
        .is_empty());

    // Delete one: its tokens go with it.
    let gone = s.delete_grant(A, R, K1, &"01".repeat(32)).unwrap();
    assert_eq!(gone.name.as_deref(), Some("g"));
    assert!(s.grant_by_token("d1").is_none() && s.grant_by_token("d2").is_none());
    assert!(matches!(
        s.delete_grant(A, R, K1, &"01".repeat(32)),
        Err(StoreError::NotFound)
    ));

    // Deleting all of a key's grants, and deleting a key, drop them.
    assert_eq!(s.delete_grants_of_key(A, R, K1).unwrap(), 2);
    assert!(s.grants_of_key(K1).is_empty());
    assert!(s.grant_by_token("d3").is_none());
    s.delete_key(A, R, K2).unwrap();
    assert!(s.grants_of_key(K2).is_empty());
    assert!(s.grant_by_token("d5").is_none());
    assert!(s
        .list_retirable_grants(&ops, R, 50, None)
        .unwrap()
        .items
        .is_empty());
}
