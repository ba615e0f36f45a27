//! The policy language: a key policy or identity policy document parsed
//! into typed form, once, with a precise message for every grammar error
//! (the text of `MalformedPolicyDocumentException`).
//!
//! A [`PolicyDocument`] keeps the text it was parsed from, so GetKeyPolicy
//! returns exactly what was stored; nothing that fails [`PolicyDocument::parse`]
//! is ever stored.

use super::condition::{self, Condition, ConditionKey};
use super::wildcard;
use serde_json::{Map, Value};

/// The largest policy document AWS KMS accepts (bytes).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// The default key policy AWS attaches when CreateKey has no Policy (the
/// one definition lives beside the key record).
pub use crate::keys::default_policy;

/// Which kind of document is parsed: key policies must name principals,
/// identity policies must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Key,
    Identity,
}

/// A grammar error; the message is what MalformedPolicyDocumentException
/// carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl From<PolicyError> for crate::api::error::KmsError {
    fn from(e: PolicyError) -> Self {
        crate::api::error::KmsError::MalformedPolicyDocument(e.0)
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of `Principal: {"AWS": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"*"`.
    Any,
    /// A 12-digit account id or `arn:aws:iam::<account>:root`: every
    /// principal of the account, as far as its identity policies allow.
    Account(String),
    /// A user, role, assumed-role or federated-user ARN.
    Arn(String),
}

/// The principals a statement names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principals {
    /// `"Principal": "*"`.
    pub any: bool,
    pub aws: Vec<AwsPrincipal>,
    /// `{"Service": ...}` (parsed; no service calls kms-core).
    pub service: Vec<String>,
    /// `{"Federated": ...}` / `{"CanonicalUser": ...}` (parsed; never match).
    pub other: Vec<String>,
}

/// `Action` / `NotAction`, `Resource` / `NotResource`, `Principal` /
/// `NotPrincipal`: the list and whether it is negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negatable<T> {
    pub not: bool,
    pub items: T,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Position in the document (0-based), for explanations.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// Absent in identity policies.
    pub principal: Option<Negatable<Principals>>,
    /// Lowercased patterns (`kms:*`, `kms:generate*`, `*`).
    pub action: Negatable<Vec<String>>,
    /// Resource ARN patterns (`*` or ARNs with wildcards).
    pub resource: Negatable<Vec<String>>,
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// `Sid "x"` or `statement 3` (1-based) for messages and explanations.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(s) if !s.is_empty() => format!("statement {} (Sid {s:?})", self.index + 1),
            _ => format!("statement {}", self.index + 1),
        }
    }

    /// Whether the statement's Action / NotAction covers `action`
    /// (`kms:Decrypt`; compared case-insensitively).
    pub fn covers_action(&self, action: &str) -> bool {
        let m = self
            .action
            .items
            .iter()
            .any(|p| wildcard::matches(p, action, true));
        m != self.action.not
    }

    /// Whether Resource / NotResource covers `arn`.
    pub fn covers_resource(&self, arn: &str) -> bool {
        let m = self.resource.items.iter().any(|p| {
            if wildcard::has_wildcard(p) {
                wildcard::matches(p, arn, false)
            } else {
                p == arn
            }
        });
        m != self.resource.not
    }
}

/// A parsed policy document with its original text.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    text: String,
    pub kind: PolicyKind,
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// A key policy with no statements, for operations that name no key
/// ([`super::eval::authorize_without_key`] ignores it).
pub static NO_POLICY: PolicyDocument = PolicyDocument {
    text: String::new(),
    kind: PolicyKind::Key,
    version: None,
    id: None,
    statements: Vec::new(),
};

const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

fn err<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

impl PolicyDocument {
    /// Parses and checks a document.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return err(format!(
                "The policy document is {} bytes; the limit is {MAX_POLICY_BYTES} bytes.",
                text.len()
            ));
        }
        if text.trim().is_empty() {
            return err("The policy document is empty.");
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PolicyError(format!(
                "The policy document is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(top) = value else {
            return err("The policy document must be a JSON object.");
        };
        let mut version = None;
        let mut id = None;
        let mut statement = None;
        for (k, v) in &top {
            match k.as_str() {
                "Version" => match v {
                    Value::String(s) if VERSIONS.contains(&s.as_str()) => version = Some(s.clone()),
                    Value::String(_) => {
                        return err(
                            "The policy Version must be \"2012-10-17\" or \"2008-10-17\".",
                        )
                    }
                    _ => return err("The policy Version must be a string."),
                },
                "Id" => match v {
                    Value::String(s) => id = Some(s.clone()),
                    _ => return err("The policy Id must be a string."),
                },
                "Statement" => statement = Some(v),
                other => {
                    return err(format!(
                        "The policy document has an unknown element {other:?} (expected Version, Id, Statement)."
                    ))
                }
            }
        }
        let list: Vec<&Value> = match statement {
            None => return err("The policy document has no Statement."),
            Some(Value::Array(a)) if a.is_empty() => {
                return err("The policy document's Statement list is empty.")
            }
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => return err("Statement must be an object or a list of objects."),
        };
        let mut statements = Vec::with_capacity(list.len());
        for (index, v) in list.into_iter().enumerate() {
            let s = parse_statement(index, v, kind)?;
            if let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty()) {
                if statements
                    .iter()
                    .any(|o: &Statement| o.sid.as_deref() == Some(sid))
                {
                    return err(format!(
                        "Statement {}: the Sid {sid:?} is used by another statement; Sids must be unique.",
                        index + 1
                    ));
                }
            }
            statements.push(s);
        }
        Ok(PolicyDocument {
            text: text.to_owned(),
            kind,
            version,
            id,
            statements,
        })
    }

    /// The document exactly as it was given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a condition names `kms:ResourceAliases`: only then does the
    /// authorize step look the key's aliases up.
    pub fn uses_resource_aliases(&self) -> bool {
        self.statements.iter().any(|s| {
            s.conditions.iter().any(|c| {
                c.key
                    == super::condition::ConditionKey::Known(
                        super::condition::KnownKey::ResourceAliases,
                    )
            })
        })
    }
}

fn parse_statement(index: usize, v: &Value, kind: PolicyKind) -> Result<Statement, PolicyError> {
    let n = index + 1;
    let Value::Object(m) = v else {
        return err(format!("Statement {n} must be a JSON object."));
    };
    for k in m.keys() {
        if ![
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ]
        .contains(&k.as_str())
        {
            return err(format!("Statement {n} has an unknown element {k:?}."));
        }
    }
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            // Key policies use free-text Sids ("Enable IAM User
            // Permissions"); only control characters are refused.
            if s.chars().any(char::is_control) {
                return err(format!(
                    "Statement {n}: the Sid may not contain control characters."
                ));
            }
            Some(s.clone())
        }
        Some(_) => return err(format!("Statement {n}: Sid must be a string.")),
    };
    let effect = match m.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(_) => {
            return err(format!(
                "Statement {n}: Effect must be \"Allow\" or \"Deny\"."
            ))
        }
        None => return err(format!("Statement {n} has no Effect.")),
    };
    let principal = match (m.get("Principal"), m.get("NotPrincipal"), kind) {
        (Some(_), Some(_), _) => {
            return err(format!(
                "Statement {n} has both Principal and NotPrincipal."
            ))
        }
        (None, None, PolicyKind::Key) => {
            return err(format!(
                "Statement {n} has no Principal; every key policy statement must name one."
            ))
        }
        (None, None, PolicyKind::Identity) => None,
        (Some(_), None, PolicyKind::Identity) | (None, Some(_), PolicyKind::Identity) => {
            return err(format!(
                "Statement {n}: an identity policy may not have a Principal or NotPrincipal."
            ))
        }
        (Some(p), None, PolicyKind::Key) => Some(Negatable {
            not: false,
            items: parse_principals(n, "Principal", p)?,
        }),
        (None, Some(p), PolicyKind::Key) => Some(Negatable {
            not: true,
            items: parse_principals(n, "NotPrincipal", p)?,
        }),
    };
    let action = match (m.get("Action"), m.get("NotAction")) {
        (Some(_), Some(_)) => return err(format!("Statement {n} has both Action and NotAction.")),
        (None, None) => return err(format!("Statement {n} has no Action.")),
        (Some(a), None) => Negatable {
            not: false,
            items: parse_actions(n, "Action", a)?,
        },
        (None, Some(a)) => Negatable {
            not: true,
            items: parse_actions(n, "NotAction", a)?,
        },
    };
    let resource = match (m.get("Resource"), m.get("NotResource")) {
        (Some(_), Some(_)) => {
            return err(format!("Statement {n} has both Resource and NotResource."))
        }
        (None, None) => return err(format!("Statement {n} has no Resource.")),
        (Some(r), None) => Negatable {
            not: false,
            items: parse_resources(n, "Resource", r)?,
        },
        (None, Some(r)) => Negatable {
            not: true,
            items: parse_resources(n, "NotResource", r)?,
        },
    };
    let conditions = match m.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(c)) => parse_conditions(n, c)?,
        Some(_) => return err(format!("Statement {n}: Condition must be a JSON object.")),
    };
    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// A string or a non-empty list of strings.
fn strings<'a>(n: usize, element: &str, v: &'a Value) -> Result<Vec<&'a str>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(a) if a.is_empty() => {
            err(format!("Statement {n}: {element} is an empty list."))
        }
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.as_str()),
                _ => err(format!(
                    "Statement {n}: {element} must be a string or a list of strings."
                )),
            })
            .collect(),
        _ => err(format!(
            "Statement {n}: {element} must be a string or a list of strings."
        )),
    }
}

fn parse_actions(n: usize, element: &str, v: &Value) -> Result<Vec<String>, PolicyError> {
    strings(n, element, v)?
        .into_iter()
        .map(|a| {
            let ok = a == "*"
                || a.split_once(':').is_some_and(|(svc, name)| {
                    !svc.is_empty()
                        && svc.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                        && !name.is_empty()
                        && name
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'*' || c == b'?')
                });
            if ok {
                Ok(a.to_ascii_lowercase())
            } else {
                err(format!(
                    "Statement {n}: {element} {a:?} is not \"*\" or \"<service>:<action>\"."
                ))
            }
        })
        .collect()
}

fn parse_resources(n: usize, element: &str, v: &Value) -> Result<Vec<String>, PolicyError> {
    strings(n, element, v)?
        .into_iter()
        .map(|r| {
            if r == "*" || (r.starts_with("arn:") && r.split(':').count() >= 6) {
                Ok(r.to_owned())
            } else {
                err(format!(
                    "Statement {n}: {element} {r:?} is not \"*\" or an ARN."
                ))
            }
        })
        .collect()
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Parses one `"AWS"` principal value.
pub fn parse_aws_principal(p: &str) -> Option<AwsPrincipal> {
    if p == "*" {
        return Some(AwsPrincipal::Any);
    }
    if is_account_id(p) {
        return Some(AwsPrincipal::Account(p.to_owned()));
    }
    if wildcard::has_wildcard(p) {
        // IAM allows a wildcard only as the whole principal.
        return None;
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    if *arn != "arn" || partition.is_empty() || !region.is_empty() || !is_account_id(account) {
        return None;
    }
    let named = |prefix: &str| {
        resource
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
    };
    match *service {
        "iam" if *resource == "root" => Some(AwsPrincipal::Account((*account).to_owned())),
        "iam" if named("user/") || named("role/") => Some(AwsPrincipal::Arn(p.to_owned())),
        "sts" if named("assumed-role/") || named("federated-user/") => {
            Some(AwsPrincipal::Arn(p.to_owned()))
        }
        _ => None,
    }
}

fn parse_principals(n: usize, element: &str, v: &Value) -> Result<Principals, PolicyError> {
    let invalid = || {
        err(format!(
            "Statement {n}: Policy contains a statement with one or more invalid principals ({element})."
        ))
    };
    match v {
        Value::String(s) if s == "*" => Ok(Principals {
            any: true,
            ..Principals::default()
        }),
        Value::String(_) => invalid(),
        Value::Object(m) => {
            if m.is_empty() {
                return invalid();
            }
            let mut out = Principals::default();
            for (k, v) in m {
                let list = strings(n, &format!("{element}.{k}"), v)?;
                match k.as_str() {
                    "AWS" => {
                        for p in list {
                            match parse_aws_principal(p) {
                                Some(a) => out.aws.push(a),
                                None => return invalid(),
                            }
                        }
                    }
                    "Service" => {
                        for p in list {
                            if p.is_empty() || p.contains(char::is_whitespace) {
                                return invalid();
                            }
                            out.service.push(p.to_owned());
                        }
                    }
                    "Federated" | "CanonicalUser" => {
                        out.other.extend(list.into_iter().map(str::to_owned));
                    }
                    other => {
                        return err(format!(
                            "Statement {n}: {element} has an unknown principal type {other:?} (expected AWS, Service, Federated or CanonicalUser)."
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => err(format!(
            "Statement {n}: {element} must be \"*\" or an object such as {{\"AWS\": ...}}."
        )),
    }
}

fn parse_conditions(n: usize, block: &Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op_name, keys) in block {
        let (operator, qualifier, if_exists) = condition::parse_operator(op_name)
            .map_err(|e| PolicyError(format!("Statement {n}: {e}.")))?;
        let Value::Object(keys) = keys else {
            return err(format!(
                "Statement {n}: condition operator {op_name:?} must map condition keys to values."
            ));
        };
        if keys.is_empty() {
            return err(format!(
                "Statement {n}: condition operator {op_name:?} has no condition keys."
            ));
        }
        for (key_name, values) in keys {
            if key_name.is_empty() || !key_name.contains(':') {
                return err(format!(
                    "Statement {n}: {key_name:?} is not a condition key (expected \"<service>:<name>\")."
                ));
            }
            let values = condition::parse_values(operator, values).map_err(|e| {
                PolicyError(format!(
                    "Statement {n}: condition {op_name:?} on key {key_name:?} {e}."
                ))
            })?;
            out.push(Condition {
                operator,
                qualifier,
                if_exists,
                key: ConditionKey::parse(key_name),
                key_name: key_name.clone(),
                values,
            });
        }
    }
    Ok(out)
}
