//! Request validation driven by the model, with AWS's messages.
//!
//! AWS answers constraint violations with a `ValidationException` whose
//! message lists every violation:
//! `2 validation errors detected: Value 'x' at 'keyId' failed to satisfy
//! constraint: Member must have length greater than or equal to 1; Value null
//! at 'plaintext' failed to satisfy constraint: Member must not be null`.
//! Member paths are the lower-camel member names, list elements
//! `name.<1-based index>.member`. Sensitive values (plaintext, secrets) and
//! blobs are never echoed. A body that does not match the model's types is a
//! `SerializationException`, as on the AWS JSON protocol.

use crate::api::model::{Model, Shape, ShapeType};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON of the expected shape (wrong type, bad Base64).
    #[error("{0}")]
    Serialization(String),
    /// Constraint violations, already formatted as AWS does.
    #[error("{0}")]
    Validation(String),
}

/// Validates the input of `operation` (a model operation name).
pub fn validate_input(model: &Model, operation: &str, body: &Value) -> Result<(), RequestError> {
    let Some(input) = model.operation(operation).and_then(|o| o.input.as_ref()) else {
        return Ok(());
    };
    let mut v = Validator {
        model,
        violations: Vec::new(),
    };
    v.structure(&input.shape, body, "")?;
    match v.violations.len() {
        0 => Ok(()),
        1 => Err(RequestError::Validation(format!(
            "1 validation error detected: {}",
            v.violations[0]
        ))),
        n => Err(RequestError::Validation(format!(
            "{n} validation errors detected: {}",
            v.violations.join("; ")
        ))),
    }
}

/// `KeyId` → `keyId`, as AWS names members in messages.
pub fn member_path(parent: &str, member: &str) -> String {
    let mut chars = member.chars();
    let lower: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    if parent.is_empty() {
        lower
    } else {
        format!("{parent}.{lower}")
    }
}

struct Validator<'m> {
    model: &'m Model,
    violations: Vec<String>,
}

fn type_error(path: &str, expected: &str) -> RequestError {
    let at = if path.is_empty() {
        "the request body"
    } else {
        path
    };
    RequestError::Serialization(format!("Expected {expected} at '{at}'"))
}

impl<'m> Validator<'m> {
    /// Borrows from the model, not from `self`, so violations can be
    /// recorded while a shape is in use.
    fn shape(&self, name: &str) -> Result<&'m Shape, RequestError> {
        let model: &'m Model = self.model;
        model
            .shape(name)
            .ok_or_else(|| RequestError::Serialization(format!("unknown shape {name}")))
    }

    fn violation(&mut self, value: Option<String>, path: &str, constraint: String) {
        let shown = match value {
            Some(v) => format!("Value {v} at '{path}'"),
            None => format!("Value at '{path}'"),
        };
        self.violations.push(format!(
            "{shown} failed to satisfy constraint: {constraint}"
        ));
    }

    fn structure(
        &mut self,
        shape_name: &str,
        value: &Value,
        path: &str,
    ) -> Result<(), RequestError> {
        let shape = self.shape(shape_name)?;
        let Some(obj) = value.as_object() else {
            return Err(type_error(path, "an object"));
        };
        for (member, target) in &shape.members {
            let member_path = member_path(path, member);
            match obj.get(member) {
                None | Some(Value::Null) => {
                    if shape.required.iter().any(|r| r == member) {
                        self.violation(
                            Some("null".into()),
                            &member_path,
                            "Member must not be null".into(),
                        );
                    }
                }
                Some(v) => self.value(&target.shape, v, &member_path)?,
            }
        }
        Ok(())
    }

    fn value(&mut self, shape_name: &str, value: &Value, path: &str) -> Result<(), RequestError> {
        let shape = self.shape(shape_name)?;
        match shape.kind {
            ShapeType::Structure => self.structure(shape_name, value, path)?,
            ShapeType::String => {
                let s = value.as_str().ok_or_else(|| type_error(path, "a string"))?;
                let shown = (!shape.sensitive).then(|| format!("'{s}'"));
                if let Some(allowed) = &shape.enum_values {
                    if !allowed.iter().any(|a| a == s) {
                        self.violation(
                            shown.clone(),
                            path,
                            format!(
                                "Member must satisfy enum value set: [{}]",
                                allowed.join(", ")
                            ),
                        );
                    }
                }
                self.length(shape, s.chars().count(), shown.clone(), path);
                if let (Some(p), Some(re)) = (&shape.pattern, self.model.pattern(shape_name)) {
                    if !re.is_match(s) {
                        self.violation(
                            shown,
                            path,
                            format!("Member must satisfy regular expression pattern: {p}"),
                        );
                    }
                }
            }
            ShapeType::Blob => {
                let s = value
                    .as_str()
                    .ok_or_else(|| type_error(path, "a Base64 string"))?;
                let bytes = STANDARD
                    .decode(s)
                    .map_err(|_| type_error(path, "valid Base64"))?;
                self.length(shape, bytes.len(), None, path);
            }
            ShapeType::Integer | ShapeType::Long => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| type_error(path, "an integer"))?;
                let shown = Some(format!("'{n}'"));
                if let Some(min) = shape.min.filter(|m| n < *m) {
                    self.violation(
                        shown.clone(),
                        path,
                        format!("Member must have value greater than or equal to {min}"),
                    );
                }
                if let Some(max) = shape.max.filter(|m| n > *m) {
                    self.violation(
                        shown,
                        path,
                        format!("Member must have value less than or equal to {max}"),
                    );
                }
            }
            ShapeType::Boolean => {
                value
                    .as_bool()
                    .ok_or_else(|| type_error(path, "a boolean"))?;
            }
            ShapeType::Timestamp => {
                value
                    .as_f64()
                    .ok_or_else(|| type_error(path, "a timestamp (epoch seconds)"))?;
            }
            ShapeType::List => {
                let items = value.as_array().ok_or_else(|| type_error(path, "a list"))?;
                self.length(shape, items.len(), None, path);
                if let Some(member) = &shape.member {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{path}.{}.member", i + 1);
                        if item.is_null() {
                            self.violation(
                                Some("null".into()),
                                &item_path,
                                "Member must not be null".into(),
                            );
                        } else {
                            self.value(&member.shape, item, &item_path)?;
                        }
                    }
                }
            }
            ShapeType::Map => {
                let map = value.as_object().ok_or_else(|| type_error(path, "a map"))?;
                self.length(shape, map.len(), None, path);
                for (k, v) in map {
                    if let Some(key) = &shape.key {
                        self.value(&key.shape, &Value::String(k.clone()), path)?;
                    }
                    if let Some(val) = &shape.value {
                        if v.is_null() {
                            self.violation(
                                Some("null".into()),
                                path,
                                "Map value must not be null".into(),
                            );
                        } else {
                            self.value(&val.shape, v, path)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn length(&mut self, shape: &Shape, len: usize, shown: Option<String>, path: &str) {
        let len = len as i64;
        if let Some(min) = shape.min.filter(|m| len < *m) {
            self.violation(
                shown.clone(),
                path,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = shape.max.filter(|m| len > *m) {
            self.violation(
                shown,
                path,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::LazyLock;

    static MODEL: LazyLock<Model> = LazyLock::new(|| Model::load().unwrap());

    fn check(op: &str, body: Value) -> Result<(), RequestError> {
        validate_input(&MODEL, op, &body)
    }

    #[test]
    fn valid_requests_pass() {
        check("CreateKey", json!({})).unwrap();
        check(
            "Encrypt",
            json!({"KeyId": "alias/app", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b"}}),
        )
        .unwrap();
        check("GenerateRandom", json!({"NumberOfBytes": 1024})).unwrap();
        check("ListKeys", json!({"Limit": 1000, "Marker": "abc"})).unwrap();
        // Unknown members are ignored, as AWS does.
        check("DescribeKey", json!({"KeyId": "k", "Extra": 1})).unwrap();
    }

    #[test]
    fn required_members_and_message_format() {
        assert_eq!(
            check("Encrypt", json!({})),
            Err(RequestError::Validation(
                "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null".into()
            ))
        );
        assert_eq!(
            check("DescribeKey", json!({"KeyId": ""})),
            Err(RequestError::Validation(
                "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1".into()
            ))
        );
    }

    #[test]
    fn constraints_from_the_model() {
        let e = check("GenerateRandom", json!({"NumberOfBytes": 1025})).unwrap_err();
        assert_eq!(e.to_string(), "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024");
        let e = check(
            "CreateAlias",
            json!({"AliasName": "alias/has space", "TargetKeyId": "k"}),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"),
            "{e}"
        );
        let e = check("CreateKey", json!({"KeySpec": "AES_512"})).unwrap_err();
        assert!(e.to_string().contains("Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["), "{e}");
        let e = check("ListKeys", json!({"Limit": 0})).unwrap_err();
        assert!(e.to_string().contains("greater than or equal to 1"), "{e}");
        let long = "x".repeat(2049);
        let e = check("DescribeKey", json!({"KeyId": long})).unwrap_err();
        assert!(e.to_string().contains("less than or equal to 2048"), "{e}");
    }

    #[test]
    fn sensitive_and_blob_values_are_not_echoed() {
        let big = STANDARD.encode(vec![0u8; 4097]);
        let e = check("Encrypt", json!({"KeyId": "k", "Plaintext": big})).unwrap_err();
        assert_eq!(e.to_string(), "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096");
    }

    #[test]
    fn list_elements_use_indexed_paths() {
        let e = check(
            "TagResource",
            json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": "c"}]}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "1 validation error detected: Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null");
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        assert!(matches!(
            check("DescribeKey", json!({"KeyId": 5})),
            Err(RequestError::Serialization(_))
        ));
        assert!(matches!(
            check("DescribeKey", json!("x")),
            Err(RequestError::Serialization(_))
        ));
        assert!(matches!(
            check("Encrypt", json!({"KeyId": "k", "Plaintext": "not base64!"})),
            Err(RequestError::Serialization(_))
        ));
        assert!(matches!(
            check("GenerateRandom", json!({"NumberOfBytes": "12"})),
            Err(RequestError::Serialization(_))
        ));
    }

    #[test]
    fn every_operation_accepts_its_minimal_input() {
        // Build the smallest body that has every required member as the
        // right type, and check only constraint violations (never type
        // errors) come back: the validator understands every shape.
        fn minimal(model: &Model, shape: &str) -> Value {
            let s = model.shape(shape).unwrap();
            match s.kind {
                ShapeType::Structure => {
                    let mut m = serde_json::Map::new();
                    for r in &s.required {
                        m.insert(r.clone(), minimal(model, &s.members[r].shape));
                    }
                    Value::Object(m)
                }
                ShapeType::String => Value::String(
                    s.enum_values
                        .as_ref()
                        .map(|e| e[0].clone())
                        .unwrap_or_else(|| "x".into()),
                ),
                ShapeType::Blob => Value::String("eA==".into()),
                ShapeType::Integer | ShapeType::Long => json!(s.min.unwrap_or(1).max(1)),
                ShapeType::Boolean => json!(true),
                ShapeType::Timestamp => json!(0),
                ShapeType::List => json!([]),
                ShapeType::Map => json!({}),
            }
        }
        for (name, op) in &MODEL.operations {
            let Some(input) = &op.input else { continue };
            let body = minimal(&MODEL, &input.shape);
            match validate_input(&MODEL, name, &body) {
                Ok(()) | Err(RequestError::Validation(_)) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}
