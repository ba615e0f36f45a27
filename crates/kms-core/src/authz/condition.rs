//! The `Condition` element: operators, qualifiers, condition keys, and
//! their evaluation against a request's condition values.
//!
//! Semantics follow IAM's documentation:
//! * every operator block and every key inside it must hold (AND); the
//!   policy values of one key are alternatives (OR);
//! * a key absent from the request makes a positive operator false and a
//!   negated one (`StringNotEquals`, `ArnNotLike`, `NotIpAddress`, ...)
//!   true; `...IfExists` makes an absent key true; `Null` tests presence;
//! * `ForAnyValue:` — at least one request value matches; false when the
//!   key is absent or empty. `ForAllValues:` — every request value matches;
//!   true when the key is absent or empty;
//! * without a qualifier, a multi-valued key matches when any request
//!   value matches (a negated operator: when none does).
//!
//! Condition key names are case-insensitive, except the suffix of
//! `kms:EncryptionContext:<key>`, which is case-sensitive as the
//! encryption context is. Tag keys in `aws:*Tag/<key>` are matched
//! case-insensitively.

use super::wildcard;
use std::net::IpAddr;

/// The operator family (without qualifier or `IfExists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Operator {
    const ALL: [(Operator, &'static str); 27] = [
        (Operator::StringEquals, "StringEquals"),
        (Operator::StringNotEquals, "StringNotEquals"),
        (Operator::StringEqualsIgnoreCase, "StringEqualsIgnoreCase"),
        (
            Operator::StringNotEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase",
        ),
        (Operator::StringLike, "StringLike"),
        (Operator::StringNotLike, "StringNotLike"),
        (Operator::NumericEquals, "NumericEquals"),
        (Operator::NumericNotEquals, "NumericNotEquals"),
        (Operator::NumericLessThan, "NumericLessThan"),
        (Operator::NumericLessThanEquals, "NumericLessThanEquals"),
        (Operator::NumericGreaterThan, "NumericGreaterThan"),
        (
            Operator::NumericGreaterThanEquals,
            "NumericGreaterThanEquals",
        ),
        (Operator::DateEquals, "DateEquals"),
        (Operator::DateNotEquals, "DateNotEquals"),
        (Operator::DateLessThan, "DateLessThan"),
        (Operator::DateLessThanEquals, "DateLessThanEquals"),
        (Operator::DateGreaterThan, "DateGreaterThan"),
        (Operator::DateGreaterThanEquals, "DateGreaterThanEquals"),
        (Operator::Bool, "Bool"),
        (Operator::BinaryEquals, "BinaryEquals"),
        (Operator::IpAddress, "IpAddress"),
        (Operator::NotIpAddress, "NotIpAddress"),
        (Operator::ArnEquals, "ArnEquals"),
        (Operator::ArnLike, "ArnLike"),
        (Operator::ArnNotEquals, "ArnNotEquals"),
        (Operator::ArnNotLike, "ArnNotLike"),
        (Operator::Null, "Null"),
    ];

    /// The operator's name as policies spell it.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("", |(_, n)| n)
    }

    fn parse(s: &str) -> Option<Operator> {
        // Operator names are case-insensitive in IAM.
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(o, _)| *o)
    }

    /// Operators that are true when no request value matches.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NumericNotEquals
                | Operator::DateNotEquals
                | Operator::NotIpAddress
                | Operator::ArnNotEquals
                | Operator::ArnNotLike
        )
    }
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A condition key, resolved once at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKey {
    Known(KnownKey),
    /// `kms:EncryptionContext:<key>`: the suffix as written (case-sensitive).
    EncryptionContext(String),
    /// `aws:PrincipalTag/<key>` (tag key lowercased).
    PrincipalTag(String),
    /// `aws:RequestTag/<key>` (tag key lowercased).
    RequestTag(String),
    /// `aws:ResourceTag/<key>` (tag key lowercased).
    ResourceTag(String),
    /// Any other key: never present in kms-core's requests.
    Other(String),
}

/// The fixed condition keys kms-core supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownKey {
    CallerAccount,
    EncryptionContextKeys,
    EncryptionAlgorithm,
    SigningAlgorithm,
    MacAlgorithm,
    KeyAgreementAlgorithm,
    GrantOperations,
    GranteePrincipal,
    RetiringPrincipal,
    GrantConstraintType,
    GrantIsForAwsResource,
    KeySpec,
    KeyUsage,
    KeyOrigin,
    MultiRegion,
    RequestAlias,
    ResourceAliases,
    BypassPolicyLockoutSafetyCheck,
    ScheduleKeyDeletionPendingWindowInDays,
    ViaService,
    PrincipalArn,
    PrincipalAccount,
    SourceIp,
    SecureTransport,
    CurrentTime,
    EpochTime,
    TagKeys,
}

const KNOWN: [(KnownKey, &str); 27] = [
    (KnownKey::CallerAccount, "kms:calleraccount"),
    (KnownKey::EncryptionContextKeys, "kms:encryptioncontextkeys"),
    (KnownKey::EncryptionAlgorithm, "kms:encryptionalgorithm"),
    (KnownKey::SigningAlgorithm, "kms:signingalgorithm"),
    (KnownKey::MacAlgorithm, "kms:macalgorithm"),
    (KnownKey::KeyAgreementAlgorithm, "kms:keyagreementalgorithm"),
    (KnownKey::GrantOperations, "kms:grantoperations"),
    (KnownKey::GranteePrincipal, "kms:granteeprincipal"),
    (KnownKey::RetiringPrincipal, "kms:retiringprincipal"),
    (KnownKey::GrantConstraintType, "kms:grantconstrainttype"),
    (KnownKey::GrantIsForAwsResource, "kms:grantisforawsresource"),
    (KnownKey::KeySpec, "kms:keyspec"),
    (KnownKey::KeyUsage, "kms:keyusage"),
    (KnownKey::KeyOrigin, "kms:keyorigin"),
    (KnownKey::MultiRegion, "kms:multiregion"),
    (KnownKey::RequestAlias, "kms:requestalias"),
    (KnownKey::ResourceAliases, "kms:resourcealiases"),
    (
        KnownKey::BypassPolicyLockoutSafetyCheck,
        "kms:bypasspolicylockoutsafetycheck",
    ),
    (
        KnownKey::ScheduleKeyDeletionPendingWindowInDays,
        "kms:schedulekeydeletionpendingwindowindays",
    ),
    (KnownKey::ViaService, "kms:viaservice"),
    (KnownKey::PrincipalArn, "aws:principalarn"),
    (KnownKey::PrincipalAccount, "aws:principalaccount"),
    (KnownKey::SourceIp, "aws:sourceip"),
    (KnownKey::SecureTransport, "aws:securetransport"),
    (KnownKey::CurrentTime, "aws:currenttime"),
    (KnownKey::EpochTime, "aws:epochtime"),
    (KnownKey::TagKeys, "aws:tagkeys"),
];

impl ConditionKey {
    /// Resolves a key name as written in a policy.
    pub fn parse(name: &str) -> ConditionKey {
        const EC: &str = "kms:encryptioncontext:";
        if name.len() > EC.len()
            && name.is_char_boundary(EC.len())
            && name[..EC.len()].eq_ignore_ascii_case(EC)
        {
            return ConditionKey::EncryptionContext(name[EC.len()..].to_owned());
        }
        let lower = name.to_ascii_lowercase();
        for (prefix, make) in [
            (
                "aws:principaltag/",
                ConditionKey::PrincipalTag as fn(String) -> ConditionKey,
            ),
            ("aws:requesttag/", ConditionKey::RequestTag),
            ("aws:resourcetag/", ConditionKey::ResourceTag),
        ] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                return make(rest.to_owned());
            }
        }
        match KNOWN.iter().find(|(_, n)| *n == lower) {
            Some((k, _)) => ConditionKey::Known(*k),
            None => ConditionKey::Other(lower),
        }
    }
}

/// The policy values of one key, prepared for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    /// Epoch seconds.
    Dates(Vec<f64>),
    Bools(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Cidrs(Vec<Cidr>),
    /// `Null`: `true` means "the key must be absent".
    Null(bool),
}

/// One condition: operator, qualifier, `IfExists`, key and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub qualifier: Qualifier,
    pub if_exists: bool,
    pub key: ConditionKey,
    /// The key as written (for explanations).
    pub key_name: String,
    pub values: Values,
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or an address alone (a host).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V4(a)) => n.to_ipv4_mapped().is_some_and(|n4| {
                self.prefix >= 96 && {
                    let p = u32::from(self.prefix - 96);
                    let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
                    u32::from(n4) & mask == u32::from(a) & mask
                }
            }),
            (IpAddr::V4(_), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a4| {
                Cidr {
                    addr: self.addr,
                    prefix: self.prefix,
                }
                .contains(IpAddr::V4(a4))
            }),
        }
    }
}

/// Parses an operator name with its qualifier and `IfExists` suffix.
pub fn parse_operator(name: &str) -> Result<(Operator, Qualifier, bool), String> {
    let (qualifier, rest) = match name.split_once(':') {
        Some((q, rest)) if q.eq_ignore_ascii_case("ForAnyValue") => (Qualifier::ForAnyValue, rest),
        Some((q, rest)) if q.eq_ignore_ascii_case("ForAllValues") => {
            (Qualifier::ForAllValues, rest)
        }
        Some(_) => return Err(format!("unknown condition operator qualifier in {name:?}")),
        None => (Qualifier::None, name),
    };
    let (base, if_exists) = match rest.len().checked_sub("IfExists".len()) {
        Some(i)
            if rest.is_char_boundary(i)
                && rest[i..].eq_ignore_ascii_case("IfExists")
                && Operator::parse(rest).is_none() =>
        {
            (&rest[..i], true)
        }
        _ => (rest, false),
    };
    let op = Operator::parse(base).ok_or_else(|| format!("unknown condition operator {name:?}"))?;
    if op == Operator::Null && (if_exists || qualifier != Qualifier::None) {
        return Err(format!(
            "condition operator {name:?}: Null takes no IfExists suffix or qualifier"
        ));
    }
    Ok((op, qualifier, if_exists))
}

/// Parses one key's values (a scalar or a list of scalars) for `op`.
pub fn parse_values(op: Operator, v: &serde_json::Value) -> Result<Values, String> {
    use serde_json::Value as J;
    let items: Vec<&J> = match v {
        J::Array(a) if a.is_empty() => return Err("has an empty list of values".into()),
        J::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut strings = Vec::with_capacity(items.len());
    for item in items {
        strings.push(match item {
            J::String(s) => s.clone(),
            J::Number(n) => n.to_string(),
            J::Bool(b) => b.to_string(),
            _ => return Err("has a value that is not a string, number or boolean".into()),
        });
    }
    let bad = |what: &str, s: &str| format!("has a value {s:?} that is not {what}");
    Ok(match op {
        Operator::NumericEquals
        | Operator::NumericNotEquals
        | Operator::NumericLessThan
        | Operator::NumericLessThanEquals
        | Operator::NumericGreaterThan
        | Operator::NumericGreaterThanEquals => Values::Numbers(
            strings
                .iter()
                .map(|s| parse_number(s).ok_or_else(|| bad("a number", s)))
                .collect::<Result<_, _>>()?,
        ),
        Operator::DateEquals
        | Operator::DateNotEquals
        | Operator::DateLessThan
        | Operator::DateLessThanEquals
        | Operator::DateGreaterThan
        | Operator::DateGreaterThanEquals => Values::Dates(
            strings
                .iter()
                .map(|s| parse_date(s).ok_or_else(|| bad("a date", s)))
                .collect::<Result<_, _>>()?,
        ),
        Operator::Bool => Values::Bools(
            strings
                .iter()
                .map(|s| parse_bool(s).ok_or_else(|| bad("true or false", s)))
                .collect::<Result<_, _>>()?,
        ),
        Operator::Null => {
            let [s] = strings.as_slice() else {
                return Err("Null takes exactly one value".into());
            };
            Values::Null(parse_bool(s).ok_or_else(|| bad("true or false", s))?)
        }
        Operator::BinaryEquals => {
            use base64::Engine;
            Values::Binary(
                strings
                    .iter()
                    .map(|s| {
                        base64::engine::general_purpose::STANDARD
                            .decode(s)
                            .map_err(|_| bad("Base64", s))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Operator::IpAddress | Operator::NotIpAddress => Values::Cidrs(
            strings
                .iter()
                .map(|s| Cidr::parse(s).ok_or_else(|| bad("an IP address or CIDR block", s)))
                .collect::<Result<_, _>>()?,
        ),
        _ => Values::Strings(strings),
    })
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A date as IAM accepts it: epoch seconds, or ISO 8601
/// (`2026-01-02`, `2026-01-02T03:04:05Z`, fractional seconds, `+hh:mm`).
pub fn parse_date(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(n) = parse_number(s) {
        return Some(n);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) as f64 * 86_400.0;
    if b.len() == 10 {
        return Some(secs);
    }
    if !(b[10] == b'T' || b[10] == b't') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut sec = 0.0;
    if b.get(i) == Some(&b':') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
            end += 1;
        }
        sec = s.get(start..end)?.parse::<f64>().ok()?;
        i = end;
    }
    if h > 23 || mi > 59 || sec >= 61.0 {
        return None;
    }
    secs += (h * 3600 + mi * 60) as f64 + sec;
    match b.get(i) {
        None => {}
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => {}
        Some(&sign @ (b'+' | b'-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = if b.get(i + 3) == Some(&b':') {
                num(i + 4..i + 6)?
            } else {
                num(i + 3..i + 5)?
            };
            let off = (oh * 3600 + om * 60) as f64;
            secs += if sign == b'+' { -off } else { off };
        }
        _ => return None,
    }
    Some(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The request's values of one condition key: nothing, one value, or a
/// list. Borrowed from the request; evaluation allocates nothing.
#[derive(Debug, Clone)]
pub enum Found<'a> {
    Absent,
    One(&'a str),
    List(&'a [String]),
    Keys(std::collections::btree_map::Keys<'a, String, String>),
}

impl<'a> Found<'a> {
    /// Iterates the values.
    pub fn iter(&self) -> FoundIter<'a> {
        match self {
            Found::Absent => FoundIter::Empty,
            Found::One(s) => FoundIter::One(Some(s)),
            Found::List(l) => FoundIter::List(l.iter()),
            Found::Keys(k) => FoundIter::Keys(k.clone()),
        }
    }

    fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over [`Found`] values.
pub enum FoundIter<'a> {
    Empty,
    One(Option<&'a str>),
    List(std::slice::Iter<'a, String>),
    Keys(std::collections::btree_map::Keys<'a, String, String>),
}

impl<'a> Iterator for FoundIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match self {
            FoundIter::Empty => None,
            FoundIter::One(o) => o.take(),
            FoundIter::List(i) => i.next().map(String::as_str),
            FoundIter::Keys(k) => k.next().map(String::as_str),
        }
    }
}

impl Condition {
    /// Whether the condition holds for the request's values of its key.
    pub fn holds(&self, found: Found<'_>) -> bool {
        if let Values::Null(must_be_absent) = self.values {
            return found.is_empty() == must_be_absent;
        }
        let negated = self.operator.is_negated();
        match self.qualifier {
            Qualifier::None => {
                if found.is_empty() {
                    return self.if_exists || negated;
                }
                let any = found.iter().any(|v| self.value_matches(v));
                if negated {
                    !any
                } else {
                    any
                }
            }
            Qualifier::ForAnyValue => {
                if found.is_empty() {
                    return self.if_exists;
                }
                found.iter().any(|v| self.value_matches(v) != negated)
            }
            Qualifier::ForAllValues => found.iter().all(|v| self.value_matches(v) != negated),
        }
    }

    /// Whether one request value matches one of the policy values under
    /// the positive form of the operator (the negation is applied by
    /// [`Condition::holds`]).
    fn value_matches(&self, v: &str) -> bool {
        use Operator as O;
        match &self.values {
            Values::Strings(ps) => ps.iter().any(|p| match self.operator {
                O::StringEquals | O::StringNotEquals => p == v,
                O::StringEqualsIgnoreCase | O::StringNotEqualsIgnoreCase => {
                    p.eq_ignore_ascii_case(v)
                }
                O::StringLike | O::StringNotLike => wildcard::matches(p, v, false),
                O::ArnEquals | O::ArnNotEquals | O::ArnLike | O::ArnNotLike => {
                    wildcard::arn_matches(p, v)
                }
                _ => false,
            }),
            Values::Numbers(ps) => {
                parse_number(v).is_some_and(|x| ps.iter().any(|p| cmp(self.operator, x, *p)))
            }
            Values::Dates(ps) => {
                parse_date(v).is_some_and(|x| ps.iter().any(|p| cmp(self.operator, x, *p)))
            }
            Values::Bools(ps) => parse_bool(v).is_some_and(|x| ps.contains(&x)),
            Values::Binary(ps) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .is_ok_and(|x| ps.contains(&x))
            }
            Values::Cidrs(ps) => v
                .parse::<IpAddr>()
                .is_ok_and(|ip| ps.iter().any(|c| c.contains(ip))),
            Values::Null(_) => false,
        }
    }
}

fn cmp(op: Operator, x: f64, p: f64) -> bool {
    use Operator as O;
    match op {
        O::NumericEquals | O::NumericNotEquals | O::DateEquals | O::DateNotEquals => x == p,
        O::NumericLessThan | O::DateLessThan => x < p,
        O::NumericLessThanEquals | O::DateLessThanEquals => x <= p,
        O::NumericGreaterThan | O::DateGreaterThan => x > p,
        O::NumericGreaterThanEquals | O::DateGreaterThanEquals => x >= p,
        _ => false,
    }
}
