//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. Stored, not
//! evaluated yet (authorization plugs into the pipeline's authorize step).

use super::keys::modify;
use super::{state_error, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::context::KeyRole;
use crate::keys::{Operation, DEFAULT_POLICY_NAME};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A JSON object whose members are not looked at.
type Object = BTreeMap<String, IgnoredAny>;

/// The outline of a key policy: an object whose `Statement` is one
/// statement object or a list of them.
#[derive(Deserialize)]
struct Outline {
    #[serde(rename = "Statement")]
    statement: Option<Statements>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Statements {
    // Read only to tell the two forms apart.
    One(#[allow(dead_code)] Object),
    Many(Vec<Object>),
}

/// A key policy must be a JSON object with at least one `Statement`
/// object (CreateKey and PutKeyPolicy alike).
pub fn check_policy(policy: &str) -> Result<(), KmsError> {
    serde_json::from_str::<IgnoredAny>(policy).map_err(|e| {
        KmsError::MalformedPolicyDocument(format!("The key policy is not valid JSON: {e}"))
    })?;
    let ok = match serde_json::from_str::<Outline>(policy) {
        Ok(Outline {
            statement: Some(Statements::One(_)),
        }) => true,
        Ok(Outline {
            statement: Some(Statements::Many(list)),
        }) => !list.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(KmsError::MalformedPolicyDocument(
            "The key policy must be a JSON object with at least one Statement".into(),
        ));
    }
    Ok(())
}

fn policy_name(name: Option<&str>) -> Result<&str, KmsError> {
    let name = name.unwrap_or(DEFAULT_POLICY_NAME);
    if name != DEFAULT_POLICY_NAME {
        return Err(KmsError::NotFound(format!(
            "Policy {name} does not exist; the only key policy name is \"default\""
        )));
    }
    Ok(name)
}

pub fn get_key_policy(
    ctx: &Ctx<'_>,
    req: GetKeyPolicyRequest,
) -> Result<GetKeyPolicyResponse, KmsError> {
    let name = policy_name(req.policy_name.as_deref())?;
    let entry = ctx.key(KeyRole::Key)?;
    entry
        .record
        .check(Operation::GetKeyPolicy)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(GetKeyPolicyResponse {
        policy: Some(entry.record.policy.clone()),
        policy_name: Some(name.to_owned()),
    })
}

pub fn put_key_policy(ctx: &Ctx<'_>, req: PutKeyPolicyRequest) -> Result<(), KmsError> {
    policy_name(req.policy_name.as_deref())?;
    check_policy(&req.policy)?;
    modify(ctx, Operation::PutKeyPolicy, &mut |r| {
        r.policy.clone_from(&req.policy);
        Ok(())
    })?;
    Ok(())
}

pub fn list_key_policies(
    ctx: &Ctx<'_>,
    _req: ListKeyPoliciesRequest,
) -> Result<ListKeyPoliciesResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    entry
        .record
        .check(Operation::ListKeyPolicies)
        .map_err(|e| state_error(e, &entry.record.arn))?;
    Ok(ListKeyPoliciesResponse {
        policy_names: Some(vec![DEFAULT_POLICY_NAME.to_owned()]),
        truncated: Some(false),
        next_marker: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_outline() {
        assert!(check_policy(r#"{"Statement":{"Effect":"Allow"}}"#).is_ok());
        assert!(check_policy(r#"{"Statement":[{"Effect":"Allow"}]}"#).is_ok());
        for bad in [
            "not json",
            "[]",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[1]}"#,
            "{}",
        ] {
            assert_eq!(
                check_policy(bad).unwrap_err().type_name(),
                "MalformedPolicyDocumentException",
                "{bad}"
            );
        }
    }
}
