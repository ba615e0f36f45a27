//! The AWS JSON 1.1 protocol as plain functions: which operation a request
//! names, what its body is, what a reply looks like.

use crate::api::error::KmsError;
use crate::api::model::Model;
use crate::api::Operation;
use serde_json::Value;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const TARGET_HEADER: &str = "x-amz-target";
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The operation named by `X-Amz-Target: TrentService.<Operation>`, checked
/// against the model.
pub fn operation(model: &Model, target: Option<&str>) -> Result<Operation, KmsError> {
    let target =
        target.ok_or_else(|| KmsError::UnknownOperation("(no X-Amz-Target header)".into()))?;
    let name = target
        .strip_prefix(model.metadata.target_prefix.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or_else(|| KmsError::UnknownOperation(target.to_owned()))?;
    Operation::from_name(name)
        .filter(|op| model.operation(op.name()).is_some())
        .ok_or_else(|| KmsError::UnknownOperation(name.to_owned()))
}

/// Whether a request's content type is one the JSON 1.1 protocol accepts.
pub fn content_type_ok(value: Option<&str>) -> bool {
    let Some(v) = value else { return true };
    let base = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    base == CONTENT_TYPE || base == "application/json"
}

/// Parses the body: empty means `{}`; anything but a JSON object is a
/// SerializationException.
pub fn parse_body(body: &[u8]) -> Result<Value, KmsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| KmsError::Serialization(format!("The request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(KmsError::Serialization(
            "The request body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

/// A new request id (UUID v4 form), as AWS sends in `x-amzn-RequestId`.
pub fn request_id() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 16];
    // A failed RNG leaves zeros: the id only correlates logs, it is no secret.
    let _ = SystemRandom::new().fill(&mut b);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let m = Model::load().unwrap();
        assert_eq!(
            operation(&m, Some("TrentService.Encrypt")).unwrap(),
            Operation::Encrypt
        );
        for bad in [
            None,
            Some("TrentService.Nope"),
            Some("Other.Encrypt"),
            Some("TrentServiceEncrypt"),
            Some("encrypt"),
        ] {
            let e = operation(&m, bad).unwrap_err();
            assert_eq!(e.type_name(), "UnknownOperationException", "{bad:?}");
        }
    }

    #[test]
    fn bodies_and_content_types() {
        assert_eq!(parse_body(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body(b" {\"A\":1} ").unwrap()["A"], 1);
        assert_eq!(
            parse_body(b"[1]").unwrap_err().type_name(),
            "SerializationException"
        );
        assert_eq!(
            parse_body(b"{").unwrap_err().type_name(),
            "SerializationException"
        );
        assert!(content_type_ok(Some("application/x-amz-json-1.1")));
        assert!(content_type_ok(Some(
            "application/x-amz-json-1.1; charset=utf-8"
        )));
        assert!(content_type_ok(None));
        assert!(!content_type_ok(Some("text/plain")));
        assert_ne!(request_id(), request_id());
    }
}
