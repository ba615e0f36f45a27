//! Secondary authorization on `requestMetadata`.
//!
//! A key store may list rules. Each rule matches when every condition it
//! states matches (a condition is a list of patterns where `*` matches any
//! run of characters and `?` one character; a condition on a field the
//! request does not carry does not match). Evaluation follows IAM: any
//! matching `deny` wins, otherwise any matching `allow` allows, otherwise
//! the request is denied. With no rules, everything authenticated is allowed.
//! GetHealthStatus is never subject to these rules (spec: MUST be excluded).

use anyhow::bail;
use serde::Deserialize;
use xks_wire::RequestMetadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub effect: Effect,
    pub principals: Option<Vec<String>>,
    pub kms_operations: Option<Vec<String>>,
    pub kms_key_arns: Option<Vec<String>>,
    pub via_services: Option<Vec<String>>,
    pub source_vpcs: Option<Vec<String>>,
    pub source_vpces: Option<Vec<String>>,
    pub external_key_ids: Option<Vec<String>>,
}

impl RuleConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty() {
            bail!("an authorization rule has an empty name");
        }
        let lists = [
            &self.principals,
            &self.kms_operations,
            &self.kms_key_arns,
            &self.via_services,
            &self.source_vpcs,
            &self.source_vpces,
            &self.external_key_ids,
        ];
        if lists.iter().any(|l| l.as_ref().is_some_and(Vec::is_empty)) {
            bail!(
                "authorization rule {:?}: an empty condition list can never match; remove it to match anything",
                self.name
            );
        }
        Ok(())
    }
}

/// The outcome, with the rule responsible (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { rule: Option<String> },
    Deny { rule: Option<String> },
}

#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    rules: Vec<RuleConfig>,
}

impl Authorizer {
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        Authorizer { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn decide(&self, md: &RequestMetadata, external_key_id: &str) -> Decision {
        if self.rules.is_empty() {
            return Decision::Allow { rule: None };
        }
        let mut allowed_by = None;
        for rule in &self.rules {
            if !matches_rule(rule, md, external_key_id) {
                continue;
            }
            match rule.effect {
                Effect::Deny => {
                    return Decision::Deny {
                        rule: Some(rule.name.clone()),
                    }
                }
                Effect::Allow => {
                    if allowed_by.is_none() {
                        allowed_by = Some(rule.name.clone());
                    }
                }
            }
        }
        match allowed_by {
            Some(rule) => Decision::Allow { rule: Some(rule) },
            None => Decision::Deny { rule: None },
        }
    }
}

fn matches_rule(rule: &RuleConfig, md: &RequestMetadata, key: &str) -> bool {
    let cond = |patterns: &Option<Vec<String>>, value: Option<&str>| match patterns {
        None => true,
        Some(ps) => value.is_some_and(|v| ps.iter().any(|p| glob(p, v))),
    };
    cond(&rule.principals, md.aws_principal_arn.as_deref())
        && cond(&rule.kms_operations, md.kms_operation.as_deref())
        && cond(&rule.kms_key_arns, md.kms_key_arn.as_deref())
        && cond(&rule.via_services, md.kms_via_service.as_deref())
        && cond(&rule.source_vpcs, md.aws_source_vpc.as_deref())
        && cond(&rule.source_vpces, md.aws_source_vpce.as_deref())
        && cond(&rule.external_key_ids, Some(key))
}

/// Wildcard match: `*` any run (including empty), `?` exactly one char.
/// Linear-time greedy algorithm with one backtrack point.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob("*", ""));
        assert!(glob("arn:aws:iam::*:role/*", "arn:aws:iam::123:role/app"));
        assert!(!glob("arn:aws:iam::*:role/*", "arn:aws:iam::123:user/app"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*x*y", "axxxby"));
        assert!(!glob("abc", "abcd"));
        assert!(glob("Encrypt", "Encrypt"));
        assert!(!glob("Encrypt", "encrypt"));
    }

    fn md(principal: &str, op: &str) -> RequestMetadata {
        RequestMetadata {
            aws_principal_arn: Some(principal.into()),
            kms_operation: Some(op.into()),
            kms_request_id: Some("r".into()),
            kms_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            ..Default::default()
        }
    }

    fn rule(name: &str, effect: Effect) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            effect,
            principals: None,
            kms_operations: None,
            kms_key_arns: None,
            via_services: None,
            source_vpcs: None,
            source_vpces: None,
            external_key_ids: None,
        }
    }

    #[test]
    fn deny_wins_and_default_denies() {
        let mut allow_alice = rule("allow-alice", Effect::Allow);
        allow_alice.principals = Some(vec!["arn:aws:iam::*:user/Alice".into()]);
        let mut no_decrypt_vpc = rule("no-decrypt-outside-vpc", Effect::Deny);
        no_decrypt_vpc.kms_operations = Some(vec!["Decrypt".into()]);
        no_decrypt_vpc.source_vpcs = Some(vec!["vpc-bad*".into()]);
        let mut only_key = rule("only-key-k1", Effect::Deny);
        only_key.external_key_ids = Some(vec!["secret-*".into()]);
        let a = Authorizer::new(vec![allow_alice, no_decrypt_vpc, only_key]);

        assert_eq!(
            a.decide(&md("arn:aws:iam::1:user/Alice", "Encrypt"), "k1"),
            Decision::Allow {
                rule: Some("allow-alice".into())
            }
        );
        assert_eq!(
            a.decide(&md("arn:aws:iam::1:user/Bob", "Encrypt"), "k1"),
            Decision::Deny { rule: None }
        );
        let mut m = md("arn:aws:iam::1:user/Alice", "Decrypt");
        // A condition on an absent field does not match: the deny does not apply.
        assert!(matches!(a.decide(&m, "k1"), Decision::Allow { .. }));
        m.aws_source_vpc = Some("vpc-bad-1".into());
        assert_eq!(
            a.decide(&m, "k1"),
            Decision::Deny {
                rule: Some("no-decrypt-outside-vpc".into())
            }
        );
        assert_eq!(
            a.decide(&md("arn:aws:iam::1:user/Alice", "Encrypt"), "secret-1"),
            Decision::Deny {
                rule: Some("only-key-k1".into())
            }
        );
        // Unknown operations are not rejected as invalid; rules decide.
        assert!(matches!(
            a.decide(&md("arn:aws:iam::1:user/Alice", "BulkEncrypt"), "k1"),
            Decision::Allow { .. }
        ));
        assert_eq!(
            Authorizer::default().decide(&md("x", "y"), "k"),
            Decision::Allow { rule: None }
        );
    }

    #[test]
    fn empty_list_is_a_config_error() {
        let mut r = rule("r", Effect::Allow);
        r.principals = Some(vec![]);
        assert!(r.validate().is_err());
    }
}
