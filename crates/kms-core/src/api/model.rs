//! The AWS KMS API model (botocore's `service-2.json`, documentation
//! stripped), loaded as data: operations, shapes, constraints, enums, errors.

use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

const MODEL_JSON: &str = include_str!("../../model/kms-2014-11-01.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub target_prefix: String,
    pub json_version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShapeRef {
    pub shape: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OperationDef {
    pub name: String,
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Structure,
    String,
    List,
    Map,
    Blob,
    Integer,
    Long,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: ShapeType,
    #[serde(default)]
    pub members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub pattern: Option<String>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    pub member: Option<ShapeRef>,
    pub key: Option<ShapeRef>,
    pub value: Option<ShapeRef>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the embedded KMS model does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("pattern {pattern:?} of shape {shape} does not compile: {error}")]
    Pattern {
        shape: String,
        pattern: String,
        error: regex::Error,
    },
    #[error("shape {0} is referenced but not defined")]
    MissingShape(String),
}

/// XksProxyUriEndpoint: AWS's `^https://[a-zA-Z0-9.-]+$` plus an optional port.
pub const XKS_ENDPOINT_PATTERN: &str = "^https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?$";

/// The loaded model with its patterns compiled.
#[derive(Debug)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, OperationDef>,
    pub shapes: BTreeMap<String, Shape>,
    patterns: HashMap<String, Regex>,
}

#[derive(Deserialize)]
struct RawModel {
    metadata: Metadata,
    operations: BTreeMap<String, OperationDef>,
    shapes: BTreeMap<String, Shape>,
}

impl Model {
    /// Parses the embedded model and compiles every pattern. Done once at
    /// startup.
    pub fn load() -> Result<Model, ModelError> {
        let mut raw: RawModel = serde_json::from_str(MODEL_JSON)?;
        // Documented superset of AWS: proxy endpoints may carry a port.
        if let Some(s) = raw.shapes.get_mut("XksProxyUriEndpointType") {
            s.pattern = Some(XKS_ENDPOINT_PATTERN.to_owned());
        }
        let mut patterns = HashMap::new();
        for (name, shape) in &raw.shapes {
            if let Some(p) = &shape.pattern {
                // Smithy patterns are ECMAScript regular expressions matched
                // anywhere in the value (not implicitly anchored); `\w` is ASCII.
                let re = Regex::new(&format!("(?-u:{p})"))
                    .or_else(|_| Regex::new(p))
                    .map_err(|error| ModelError::Pattern {
                        shape: name.clone(),
                        pattern: p.clone(),
                        error,
                    })?;
                patterns.insert(name.clone(), re);
            }
            for r in shape
                .members
                .values()
                .chain(shape.member.iter())
                .chain(shape.key.iter())
                .chain(shape.value.iter())
            {
                if !raw.shapes.contains_key(&r.shape) {
                    return Err(ModelError::MissingShape(r.shape.clone()));
                }
            }
        }
        Ok(Model {
            metadata: raw.metadata,
            operations: raw.operations,
            shapes: raw.shapes,
            patterns,
        })
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    pub fn pattern(&self, shape: &str) -> Option<&Regex> {
        self.patterns.get(shape)
    }

    pub fn operation(&self, name: &str) -> Option<&OperationDef> {
        self.operations.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_with_every_pattern_compiled() {
        let m = Model::load().unwrap();
        assert_eq!(m.metadata.target_prefix, "TrentService");
        assert_eq!(m.metadata.json_version, "1.1");
        assert_eq!(m.operations.len(), 56);
        let with_pattern = m.shapes.values().filter(|s| s.pattern.is_some()).count();
        assert_eq!(m.patterns.len(), with_pattern);
        let alias = m.pattern("AliasNameType").unwrap();
        assert!(alias.is_match("alias/my-key_1"));
        assert!(!alias.is_match("alias/bad key!"));
        let kid = m.pattern("XksKeyIdType").unwrap();
        assert!(kid.is_match("a-b_c.d"));
        assert!(!kid.is_match("a/b"));
    }
}
