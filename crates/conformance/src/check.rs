//! Verdicts: pure functions from what a proxy answered to the list of spec
//! rules the answer breaks (empty = conformant). No sockets, no clocks, so
//! every rule is unit-tested against deliberately non-conformant answers.
//!
//! Every check is named (see [`checks`]) and reports the expected and the
//! observed value. Plaintext never appears in a report: a wrong plaintext
//! is described by its length and the first differing offset.

use serde::Serialize;
use serde_json::Value;
use xks_client::validate::is_json_content_type;
use xks_wire::error::sanitize_message;
use xks_wire::{
    cdiv_sha256, health_status, key_status, key_usage, DecryptResponse, EncryptResponse, ErrorBody,
    ErrorName, GetKeyMetadataResponse, HealthResponse, IV_LENS, MAX_CIPHERTEXT_METADATA,
    MAX_EKM_FLEET_ENTRIES, MAX_KEY_USAGE_ENTRIES, TAG_LEN,
};
use zeroize::Zeroizing;

/// Names of the individual checks, as they appear in reports.
pub mod checks {
    pub const TRANSPORT: &str = "HTTP response";
    pub const SETUP: &str = "setup";
    pub const STATUS: &str = "status";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const SHAPE: &str = "response shape";
    pub const ERROR_NAME: &str = "errorName";
    pub const ERROR_MESSAGE: &str = "errorMessage";
    pub const ALLOW: &str = "Allow header";
    pub const FLEET_SIZE: &str = "xksProxyFleetSize";
    pub const FLEET_ENTRIES: &str = "ekmFleetDetails entries";
    pub const HEALTH_STATUS: &str = "ekmFleetDetails healthStatus";
    pub const KEY_SPEC: &str = "keySpec";
    pub const KEY_USAGE: &str = "keyUsage";
    pub const KEY_USAGE_CASE: &str = "keyUsage case";
    pub const KEY_USAGE_COUNT: &str = "keyUsage entries";
    pub const KEY_STATUS: &str = "keyStatus";
    pub const CIPHERTEXT_LEN: &str = "ciphertext length";
    pub const IV_LEN: &str = "initializationVector length";
    pub const TAG_LEN: &str = "authenticationTag length";
    pub const METADATA_LEN: &str = "ciphertextMetadata length";
    pub const CDIV: &str = "ciphertextDataIntegrityValue";
    pub const PLAINTEXT_LEN: &str = "plaintext length";
    pub const PLAINTEXT: &str = "plaintext";
    pub const FRESH_IV: &str = "fresh IV";
    pub const HANDSHAKE: &str = "TLS handshake";
    pub const KMS_CLIENT: &str = "KMS client";
    pub const ANSWER: &str = "answer";
    pub const AMBIGUITY: &str = "ambiguity";
    pub const DEADLINE: &str = "deadline";
    pub const THROTTLING: &str = "throttling";
    pub const RECOVERY: &str = "recovery";
    pub const COMMAND: &str = "vendor command";
}

/// One HTTP response as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Observed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The `errorName` of the body, if it has one.
    pub fn error_name(&self) -> Option<String> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("errorName")?.as_str().map(short))
    }

    /// `status` plus the errorName when there is one: "404 KeyNotFoundException".
    pub fn describe_status(&self) -> String {
        match self.error_name() {
            Some(name) => format!("{} {name}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// One broken rule: which check, what the spec wants, what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub check: String,
    pub expected: String,
    pub observed: String,
}

impl Mismatch {
    pub fn new(check: &str, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Mismatch {
            check: check.to_owned(),
            expected: expected.into(),
            observed: observed.into(),
        }
    }

    /// The same mismatch, attributed to one step of a multi-step case.
    pub fn in_step(mut self, step: &str) -> Self {
        self.check = format!("{step}: {}", self.check);
        self
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, observed {}",
            self.check, self.expected, self.observed
        )
    }
}

/// Sanitized (printable ASCII) and cut to 120 characters.
pub fn short(s: &str) -> String {
    let clean = sanitize_message(s);
    if clean.chars().count() > 120 {
        let mut cut: String = clean.chars().take(117).collect();
        cut.push_str("...");
        cut
    } else {
        clean
    }
}

/// What a successful GetKeyMetadata must say about usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// ENCRYPT and DECRYPT.
    Both,
    EncryptOnly,
    DecryptOnly,
    /// Neither ENCRYPT nor DECRYPT.
    Neither,
    /// Anything (only the generic rules apply).
    Any,
}

impl Usage {
    fn wants(self) -> Option<(bool, bool)> {
        match self {
            Usage::Both => Some((true, true)),
            Usage::EncryptOnly => Some((true, false)),
            Usage::DecryptOnly => Some((false, true)),
            Usage::Neither => Some((false, false)),
            Usage::Any => None,
        }
    }
}

/// What an Encrypt answer is judged against: facts of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptExpect {
    pub plaintext_len: usize,
    /// The request's AAD (empty when absent).
    pub aad: Vec<u8>,
    pub cdiv_requested: bool,
}

/// The expected outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// An XKS error: the spec's status, `application/json`, the error body.
    Error(ErrorName),
    /// 405 with an `Allow` header that lists POST.
    MethodNotAllowed,
    /// A valid GetHealthStatus answer.
    Health,
    /// A valid GetKeyMetadata answer with this keyStatus and usage.
    KeyMetadata { status: &'static str, usage: Usage },
    /// A valid Encrypt answer for this request.
    Encrypt(EncryptExpect),
    /// A valid Decrypt answer holding exactly this plaintext.
    Decrypt(Zeroizing<Vec<u8>>),
    /// Any one of these answers is conformant (the spec allows each); the
    /// report says which one was seen.
    OneOf(Vec<Expect>),
    /// The spec and AWS's own tools disagree: both readings are carried,
    /// the one the run follows ([`Reading`]) passes, the other is a
    /// warning naming `clause`.
    Ambiguous(Box<Ambiguity>),
}

/// Two readings of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguity {
    /// What AWS's XKS proxy test client and the AWS sample proxy do.
    pub aws_tools: Expect,
    /// What the conflicting spec text, read literally, requires.
    pub spec_text: Expect,
    /// The spec text that conflicts with AWS's tools.
    pub clause: &'static str,
}

/// Which reading of an [`Ambiguity`] a run follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reading {
    /// AWS's test client and sample proxy (the default).
    #[default]
    AwsTools,
    /// The conflicting spec text read literally.
    SpecText,
}

/// A verdict over one response, with what to tell the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Pass,
    /// Passed; the note says which of several allowed answers was seen,
    /// or which reading of an ambiguity the answer follows.
    PassNote(String),
    /// The answer follows the other reading of an ambiguity.
    Warn(Vec<Mismatch>),
    Fail(Vec<Mismatch>),
}

impl Expect {
    /// One line for reports: what the case expects.
    pub fn summary(&self) -> String {
        match self {
            Expect::Error(e) => format!("{} {e}", e.status()),
            Expect::MethodNotAllowed => "405 with Allow: POST".into(),
            Expect::Health => "200 GetHealthStatus response".into(),
            Expect::KeyMetadata { status, .. } => format!("200 GetKeyMetadata, keyStatus {status}"),
            Expect::Encrypt(_) => "200 Encrypt response".into(),
            Expect::Decrypt(_) => "200 Decrypt response with the original plaintext".into(),
            Expect::OneOf(all) => all
                .iter()
                .map(Expect::summary)
                .collect::<Vec<_>>()
                .join(" or "),
            Expect::Ambiguous(a) => format!(
                "{} (AWS's tools) or {} (spec text)",
                a.aws_tools.summary(),
                a.spec_text.summary()
            ),
        }
    }
}

/// Judges one response, reporting ambiguities as such: the followed
/// reading passes with a note, the other reading warns, anything else
/// fails with the followed reading's mismatches.
pub fn verdict(expect: &Expect, obs: &Observed, follow: Reading) -> Judged {
    match expect {
        Expect::OneOf(all) => {
            let mut first_fail = None;
            for e in all {
                let m = verdict(e, obs, follow);
                match m {
                    Judged::Pass => {
                        return Judged::PassNote(format!(
                            "allowed answers: {}; observed: {}",
                            expect.summary(),
                            e.summary()
                        ))
                    }
                    Judged::PassNote(_) | Judged::Warn(_) => return m,
                    Judged::Fail(f) => {
                        // The alternative with the observed status explains best.
                        let close = e.status() == Some(obs.status);
                        if first_fail.is_none() || close {
                            first_fail = Some(f);
                        }
                    }
                }
            }
            let mut out = vec![Mismatch::new(
                checks::ANSWER,
                format!("one of: {}", expect.summary()),
                obs.describe_status(),
            )];
            out.extend(first_fail.unwrap_or_default());
            Judged::Fail(out)
        }
        Expect::Ambiguous(a) => {
            let (followed, other, followed_name, other_name) = match follow {
                Reading::AwsTools => (&a.aws_tools, &a.spec_text, "AWS's tools", "spec text"),
                Reading::SpecText => (&a.spec_text, &a.aws_tools, "spec text", "AWS's tools"),
            };
            let m = judge(followed, obs);
            if m.is_empty() {
                return Judged::PassNote(format!(
                    "ambiguity: follows {followed_name} ({}); the {other_name} reading ({}) would want {}",
                    followed.summary(),
                    a.clause,
                    other.summary()
                ));
            }
            if judge(other, obs).is_empty() {
                return Judged::Warn(vec![Mismatch::new(
                    checks::AMBIGUITY,
                    format!("{} ({followed_name})", followed.summary()),
                    format!(
                        "{}, as the {other_name} reads: {}",
                        obs.describe_status(),
                        a.clause
                    ),
                )]);
            }
            Judged::Fail(m)
        }
        e => match judge(e, obs) {
            m if m.is_empty() => Judged::Pass,
            m => Judged::Fail(m),
        },
    }
}

impl Expect {
    /// The HTTP status this expectation wants, when it wants one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Expect::Error(e) => Some(e.status()),
            Expect::MethodNotAllowed => Some(405),
            Expect::Health
            | Expect::KeyMetadata { .. }
            | Expect::Encrypt(_)
            | Expect::Decrypt(_) => Some(200),
            Expect::OneOf(_) | Expect::Ambiguous(_) => None,
        }
    }
}

/// Judges one response.
pub fn judge(expect: &Expect, obs: &Observed) -> Vec<Mismatch> {
    match expect {
        Expect::Error(name) => check_error(obs, *name),
        Expect::MethodNotAllowed => check_method_not_allowed(obs),
        Expect::Health => check_health(obs),
        Expect::KeyMetadata { status, usage } => check_key_metadata(obs, status, *usage),
        Expect::Encrypt(e) => check_encrypt(obs, e).0,
        Expect::Decrypt(p) => check_decrypt(obs, p),
        Expect::OneOf(_) | Expect::Ambiguous(_) => match verdict(expect, obs, Reading::AwsTools) {
            Judged::Pass | Judged::PassNote(_) => Vec::new(),
            Judged::Warn(m) | Judged::Fail(m) => m,
        },
    }
}

/// A request that got no HTTP response at all.
pub fn transport_failure(error: &str) -> Vec<Mismatch> {
    vec![Mismatch::new(
        checks::TRANSPORT,
        "an HTTP response",
        format!("transport error: {}", short(error)),
    )]
}

fn check_status(obs: &Observed, want: u16, out: &mut Vec<Mismatch>) {
    if obs.status != want {
        out.push(Mismatch::new(
            checks::STATUS,
            want.to_string(),
            obs.describe_status(),
        ));
    }
}

fn check_content_type(obs: &Observed, out: &mut Vec<Mismatch>) {
    let ok = obs.content_type().is_some_and(is_json_content_type);
    if !ok {
        out.push(Mismatch::new(
            checks::CONTENT_TYPE,
            xks_wire::CONTENT_TYPE,
            obs.content_type().map_or_else(|| "(none)".into(), short),
        ));
    }
}

/// Parses a JSON object body into `T`. Errors name the problem without
/// quoting the body when `secret` (Decrypt answers carry plaintext).
fn parse_object<T: serde::de::DeserializeOwned>(body: &[u8], secret: bool) -> Result<T, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        if secret {
            format!("not JSON (line {} column {})", e.line(), e.column())
        } else {
            format!("not JSON: {}", short(&e.to_string()))
        }
    })?;
    if !value.is_object() {
        return Err("JSON, but not an object".into());
    }
    serde_json::from_value(value).map_err(|e| {
        if secret {
            "missing or mistyped field (details withheld: the body may hold plaintext)".into()
        } else {
            short(&e.to_string())
        }
    })
}

/// An XKS error response: status, content type, error body, errorName,
/// errorMessage rules ("less than 512 characters", printable ASCII).
pub fn check_error(obs: &Observed, name: ErrorName) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_status(obs, name.status(), &mut out);
    check_content_type(obs, &mut out);
    match parse_object::<ErrorBody>(&obs.body, false) {
        Ok(body) => {
            if body.error_name != name.as_str() {
                out.push(Mismatch::new(
                    checks::ERROR_NAME,
                    name.as_str(),
                    short(&body.error_name),
                ));
            }
            if !body.message_is_valid() {
                let m = body.error_message.as_deref().unwrap_or("");
                out.push(Mismatch::new(
                    checks::ERROR_MESSAGE,
                    "fewer than 512 printable ASCII characters",
                    format!(
                        "{} characters{}",
                        m.chars().count(),
                        if m.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                            ""
                        } else {
                            ", some not printable ASCII"
                        }
                    ),
                ));
            }
        }
        Err(why) => {
            out.push(Mismatch::new(
                checks::SHAPE,
                "{\"errorName\": string, \"errorMessage\"?: string}",
                why,
            ));
            out.push(Mismatch::new(checks::ERROR_NAME, name.as_str(), "(none)"));
        }
    }
    out
}

/// 405 Method Not Allowed, with `Allow` listing POST (RFC 9110 §15.5.6).
pub fn check_method_not_allowed(obs: &Observed) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_status(obs, 405, &mut out);
    let allows_post = obs
        .header("allow")
        .is_some_and(|v| v.split(',').any(|m| m.trim().eq_ignore_ascii_case("POST")));
    if !allows_post {
        out.push(Mismatch::new(
            checks::ALLOW,
            "a list including POST",
            obs.header("allow").map_or_else(|| "(none)".into(), short),
        ));
    }
    out
}

fn check_success(obs: &Observed, out: &mut Vec<Mismatch>) {
    check_status(obs, 200, out);
    check_content_type(obs, out);
}

/// GetHealthStatus: 200, JSON, every field, fleet size > 0, 1 to 10
/// ekmFleetDetails with ACTIVE, DEGRADED or UNAVAILABLE.
pub fn check_health(obs: &Observed) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_success(obs, &mut out);
    if obs.status != 200 {
        return out;
    }
    let h: HealthResponse = match parse_object(&obs.body, false) {
        Ok(h) => h,
        Err(why) => {
            out.push(Mismatch::new(
                checks::SHAPE,
                "xksProxyFleetSize, xksProxyVendor, xksProxyModel, ekmVendor, ekmFleetDetails[{id, model, healthStatus}]",
                why,
            ));
            return out;
        }
    };
    if h.xks_proxy_fleet_size == 0 {
        out.push(Mismatch::new(checks::FLEET_SIZE, "an integer > 0", "0"));
    }
    let n = h.ekm_fleet_details.len();
    if n == 0 || n > MAX_EKM_FLEET_ENTRIES {
        out.push(Mismatch::new(
            checks::FLEET_ENTRIES,
            format!("1 to {MAX_EKM_FLEET_ENTRIES}"),
            n.to_string(),
        ));
    }
    for d in &h.ekm_fleet_details {
        if !health_status::ALL.contains(&d.health_status.as_str()) {
            out.push(Mismatch::new(
                checks::HEALTH_STATUS,
                health_status::ALL.join(" | "),
                short(&d.health_status),
            ));
        }
    }
    out
}

/// GetKeyMetadata: 200, JSON, keySpec AES_256, ENCRYPT/DECRYPT in upper
/// case as the key allows, at most 10 keyUsage values, the keyStatus.
pub fn check_key_metadata(obs: &Observed, status: &str, usage: Usage) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_success(obs, &mut out);
    if obs.status != 200 {
        return out;
    }
    let m: GetKeyMetadataResponse = match parse_object(&obs.body, false) {
        Ok(m) => m,
        Err(why) => {
            out.push(Mismatch::new(
                checks::SHAPE,
                "{keySpec: string, keyUsage: [string], keyStatus: string}",
                why,
            ));
            return out;
        }
    };
    if m.key_spec != xks_wire::KEY_SPEC_AES_256 {
        out.push(Mismatch::new(
            checks::KEY_SPEC,
            xks_wire::KEY_SPEC_AES_256,
            short(&m.key_spec),
        ));
    }
    if m.key_usage.len() > MAX_KEY_USAGE_ENTRIES {
        out.push(Mismatch::new(
            checks::KEY_USAGE_COUNT,
            format!("at most {MAX_KEY_USAGE_ENTRIES}"),
            m.key_usage.len().to_string(),
        ));
    }
    for u in &m.key_usage {
        let spec_name = [key_usage::ENCRYPT, key_usage::DECRYPT]
            .into_iter()
            .find(|s| u.eq_ignore_ascii_case(s));
        if let Some(s) = spec_name {
            if u != s {
                out.push(Mismatch::new(checks::KEY_USAGE_CASE, s, short(u)));
            }
        }
    }
    if let Some((want_enc, want_dec)) = usage.wants() {
        let has = |s: &str| m.key_usage.iter().any(|u| u == s);
        let (enc, dec) = (has(key_usage::ENCRYPT), has(key_usage::DECRYPT));
        if (enc, dec) != (want_enc, want_dec) {
            let list = |e: bool, d: bool| -> String {
                match (e, d) {
                    (true, true) => "ENCRYPT and DECRYPT".into(),
                    (true, false) => "ENCRYPT without DECRYPT".into(),
                    (false, true) => "DECRYPT without ENCRYPT".into(),
                    (false, false) => "neither ENCRYPT nor DECRYPT".into(),
                }
            };
            out.push(Mismatch::new(
                checks::KEY_USAGE,
                list(want_enc, want_dec),
                format!(
                    "{} ({})",
                    list(enc, dec),
                    short(&format!("{:?}", m.key_usage))
                ),
            ));
        }
    }
    if m.key_status != status {
        out.push(Mismatch::new(
            checks::KEY_STATUS,
            status,
            short(&m.key_status),
        ));
    }
    out
}

/// Encrypt: 200, JSON, ciphertext/IV/tag present in strict Base64,
/// ciphertext as long as the plaintext, IV 12 or 16 bytes, tag 16 bytes,
/// metadata at most 20 bytes, and a CDIV if and only if one was requested,
/// equal to SHA-256(aad || metadata || iv || ciphertext || tag) (Appendix C).
/// Returns the parsed response when its shape is right.
pub fn check_encrypt(
    obs: &Observed,
    exp: &EncryptExpect,
) -> (Vec<Mismatch>, Option<EncryptResponse>) {
    let mut out = Vec::new();
    check_success(obs, &mut out);
    if obs.status != 200 {
        return (out, None);
    }
    let r: EncryptResponse = match parse_object(&obs.body, false) {
        Ok(r) => r,
        Err(why) => {
            out.push(Mismatch::new(
                checks::SHAPE,
                "ciphertext, initializationVector, authenticationTag (standard Base64), optional ciphertextMetadata, ciphertextDataIntegrityValue",
                why,
            ));
            return (out, None);
        }
    };
    if r.ciphertext.0.len() != exp.plaintext_len {
        out.push(Mismatch::new(
            checks::CIPHERTEXT_LEN,
            format!("{} bytes (the plaintext length)", exp.plaintext_len),
            format!("{} bytes", r.ciphertext.0.len()),
        ));
    }
    let iv = r.initialization_vector.0.len();
    if !IV_LENS.contains(&iv) {
        out.push(Mismatch::new(
            checks::IV_LEN,
            "12 or 16 bytes",
            format!("{iv} bytes"),
        ));
    }
    let tag = r.authentication_tag.0.len();
    if tag != TAG_LEN {
        out.push(Mismatch::new(
            checks::TAG_LEN,
            format!("{TAG_LEN} bytes"),
            format!("{tag} bytes"),
        ));
    }
    let metadata = r.ciphertext_metadata.as_ref().map_or(&[][..], |m| &m.0[..]);
    if metadata.len() > MAX_CIPHERTEXT_METADATA {
        out.push(Mismatch::new(
            checks::METADATA_LEN,
            format!("at most {MAX_CIPHERTEXT_METADATA} bytes"),
            format!("{} bytes", metadata.len()),
        ));
    }
    match (&r.ciphertext_data_integrity_value, exp.cdiv_requested) {
        (None, true) => out.push(Mismatch::new(
            checks::CDIV,
            "present (ciphertextDataIntegrityValueAlgorithm was SHA_256)",
            "absent",
        )),
        (Some(_), false) => out.push(Mismatch::new(
            checks::CDIV,
            "absent (no ciphertextDataIntegrityValueAlgorithm in the request)",
            "present",
        )),
        (Some(got), true) => {
            let want = cdiv_sha256(
                &exp.aad,
                metadata,
                &r.initialization_vector.0,
                &r.ciphertext.0,
                &r.authentication_tag.0,
            );
            if got.0[..] != want[..] {
                out.push(Mismatch::new(
                    checks::CDIV,
                    format!(
                        "{} (SHA-256 of aad || ciphertextMetadata || iv || ciphertext || tag)",
                        xks_wire::b64::encode(&want)
                    ),
                    short(&xks_wire::b64::encode(&got.0)),
                ));
            }
        }
        (None, false) => {}
    }
    (out, Some(r))
}

/// Decrypt: 200, JSON, a strict Base64 plaintext equal to the original.
pub fn check_decrypt(obs: &Observed, plaintext: &[u8]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    check_success(obs, &mut out);
    if obs.status != 200 {
        return out;
    }
    let r: DecryptResponse = match parse_object(&obs.body, true) {
        Ok(r) => r,
        Err(why) => {
            out.push(Mismatch::new(
                checks::SHAPE,
                "{plaintext: standard Base64}",
                why,
            ));
            return out;
        }
    };
    let got: &[u8] = r.plaintext.as_ref();
    if got.len() != plaintext.len() {
        out.push(Mismatch::new(
            checks::PLAINTEXT_LEN,
            format!("{} bytes", plaintext.len()),
            format!("{} bytes", got.len()),
        ));
    } else if let Some(i) = got.iter().zip(plaintext).position(|(a, b)| a != b) {
        out.push(Mismatch::new(
            checks::PLAINTEXT,
            "the plaintext that was encrypted",
            format!("different bytes from offset {i}"),
        ));
    }
    out
}

/// Two encryptions of the same plaintext under the same key must not share
/// an IV (AES-GCM's security rests on IV uniqueness, NIST SP 800-38D §8).
pub fn check_fresh_iv(a: &EncryptResponse, b: &EncryptResponse) -> Vec<Mismatch> {
    if a.initialization_vector == b.initialization_vector {
        vec![Mismatch::new(
            checks::FRESH_IV,
            "a different IV for each encryption",
            format!(
                "the same IV twice ({})",
                xks_wire::b64::encode(&a.initialization_vector.0)
            ),
        )]
    } else {
        Vec::new()
    }
}

/// A burst above the proxy's rate: at least one answer is a well-formed
/// 429 ThrottlingException, and every other answer is a 200.
pub fn check_burst(answers: &[Result<Observed, String>]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut throttled = 0usize;
    let mut ok = 0usize;
    let mut other: Vec<String> = Vec::new();
    for a in answers {
        match a {
            Ok(obs) if obs.status == 429 => {
                throttled += 1;
                if throttled == 1 {
                    out.extend(
                        check_error(obs, ErrorName::ThrottlingException)
                            .into_iter()
                            .map(|m| m.in_step("first 429")),
                    );
                }
            }
            Ok(obs) if obs.status == 200 => ok += 1,
            Ok(obs) => other.push(obs.describe_status()),
            Err(e) => other.push(format!("transport error: {}", short(e))),
        }
    }
    if throttled == 0 {
        out.push(Mismatch::new(
            checks::THROTTLING,
            format!(
                "at least one 429 ThrottlingException among {} requests sent at once",
                answers.len()
            ),
            format!("{ok} answered 200, none throttled"),
        ));
    }
    if !other.is_empty() {
        other.sort();
        other.dedup();
        out.push(Mismatch::new(
            checks::THROTTLING,
            "200 or 429 ThrottlingException for every request",
            short(&other.join(", ")),
        ));
    }
    out
}

/// An answer about an unavailable key manager must come within the
/// proxy's deadline (KMS itself waits 250 ms).
pub fn check_deadline(took: std::time::Duration, deadline: std::time::Duration) -> Vec<Mismatch> {
    if took <= deadline {
        Vec::new()
    } else {
        vec![Mismatch::new(
            checks::DEADLINE,
            format!("an answer within {} ms", deadline.as_millis()),
            format!("{} ms", took.as_millis()),
        )]
    }
}

/// What happened when a TLS client offered a given certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsObservation {
    /// The connection failed before any HTTP response: during the
    /// handshake, or (TLS 1.3) with an alert or close right after it.
    Refused { detail: String },
    /// The proxy answered an HTTP request on the connection.
    Answered(Observed),
    /// Neither an answer nor a close within the wait.
    NoAnswer { waited_ms: u64 },
}

/// The proxy must terminate the handshake: no HTTP answer may come back.
pub fn check_refused(o: &TlsObservation) -> Vec<Mismatch> {
    match o {
        TlsObservation::Refused { .. } => Vec::new(),
        TlsObservation::Answered(obs) => vec![Mismatch::new(
            checks::HANDSHAKE,
            "terminated by the proxy (no HTTP response)",
            format!("completed; HTTP {}", obs.describe_status()),
        )],
        TlsObservation::NoAnswer { waited_ms } => vec![Mismatch::new(
            checks::HANDSHAKE,
            "terminated by the proxy (no HTTP response)",
            format!("connection neither answered nor closed within {waited_ms} ms"),
        )],
    }
}

/// The certificate must be accepted and the request answered like any
/// health check.
pub fn check_accepted(o: &TlsObservation) -> Vec<Mismatch> {
    match o {
        TlsObservation::Answered(obs) => check_health(obs),
        TlsObservation::Refused { detail } => vec![Mismatch::new(
            checks::HANDSHAKE,
            "completed, then a 200 GetHealthStatus response",
            format!("refused: {}", short(detail)),
        )],
        TlsObservation::NoAnswer { waited_ms } => vec![Mismatch::new(
            checks::HANDSHAKE,
            "completed, then a 200 GetHealthStatus response",
            format!("no answer within {waited_ms} ms"),
        )],
    }
}

/// A call made with the KMS-shaped client (`xks-client`): it succeeds only
/// if the proxy answered within KMS's time budget with a response KMS
/// accepts.
pub fn check_kms_call<T>(what: &str, r: &Result<T, xks_client::Error>) -> Vec<Mismatch> {
    match r {
        Ok(_) => Vec::new(),
        Err(e) => vec![Mismatch::new(
            checks::KMS_CLIENT,
            format!("{what} accepted by the KMS-side client within its time budget"),
            short(&e.to_string()),
        )],
    }
}

/// The GetKeyMetadata facts KMS's CreateKey insists on, over a typed answer.
pub fn check_kms_key_metadata(m: &GetKeyMetadataResponse) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if m.key_spec != xks_wire::KEY_SPEC_AES_256 {
        out.push(Mismatch::new(
            checks::KEY_SPEC,
            xks_wire::KEY_SPEC_AES_256,
            short(&m.key_spec),
        ));
    }
    for u in [key_usage::ENCRYPT, key_usage::DECRYPT] {
        if !m.key_usage.iter().any(|x| x == u) {
            out.push(Mismatch::new(
                checks::KEY_USAGE,
                format!("includes {u}"),
                short(&format!("{:?}", m.key_usage)),
            ));
        }
    }
    if m.key_status != key_status::ENABLED {
        out.push(Mismatch::new(
            checks::KEY_STATUS,
            key_status::ENABLED,
            short(&m.key_status),
        ));
    }
    out
}

/// A decrypted plaintext compared with the original (typed path).
pub fn check_same_plaintext(got: &[u8], want: &[u8]) -> Vec<Mismatch> {
    if got.len() != want.len() {
        return vec![Mismatch::new(
            checks::PLAINTEXT_LEN,
            format!("{} bytes", want.len()),
            format!("{} bytes", got.len()),
        )];
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => vec![Mismatch::new(
            checks::PLAINTEXT,
            "the plaintext that was encrypted",
            format!("different bytes from offset {i}"),
        )],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::checks::*;
    use super::*;
    use xks_wire::b64::encode;

    fn json(status: u16, body: &str) -> Observed {
        Observed {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn with_ct(mut o: Observed, ct: Option<&str>) -> Observed {
        o.headers.retain(|(n, _)| n != "content-type");
        if let Some(ct) = ct {
            o.headers.push(("content-type".into(), ct.into()));
        }
        o
    }

    /// The names of the checks that failed.
    fn failed(m: &[Mismatch]) -> Vec<&str> {
        m.iter().map(|m| m.check.as_str()).collect()
    }

    const HEALTH_OK: &str = r#"{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"1","model":"m","healthStatus":"ACTIVE"}]}"#;

    fn health_ambiguity() -> Expect {
        Expect::Ambiguous(Box::new(Ambiguity {
            aws_tools: Expect::Error(ErrorName::ValidationException),
            spec_text: Expect::Health,
            clause: "Error codes: all except GetHealthStatus",
        }))
    }

    /// The followed reading passes with a note naming the other; the other
    /// reading warns (expected vs observed, with the clause); anything
    /// else fails. --follow spec-text swaps the first two.
    #[test]
    fn ambiguities_pass_warn_or_fail_and_never_silently() {
        let e = health_ambiguity();
        let validation = json(400, r#"{"errorName":"ValidationException"}"#);
        let ok = json(200, HEALTH_OK);
        let other = json(500, r#"{"errorName":"InternalException"}"#);
        match verdict(&e, &validation, Reading::AwsTools) {
            Judged::PassNote(n) => {
                assert!(
                    n.contains("follows AWS's tools") && n.contains("all except GetHealthStatus"),
                    "{n}"
                )
            }
            j => panic!("{j:?}"),
        }
        match verdict(&e, &ok, Reading::AwsTools) {
            Judged::Warn(m) => {
                assert_eq!(failed(&m), [AMBIGUITY]);
                assert_eq!(m[0].expected, "400 ValidationException (AWS's tools)");
                assert!(m[0]
                    .observed
                    .starts_with("200, as the spec text reads: Error codes"));
            }
            j => panic!("{j:?}"),
        }
        assert!(
            matches!(verdict(&e, &other, Reading::AwsTools), Judged::Fail(m) if failed(&m).contains(&STATUS))
        );
        assert!(matches!(
            verdict(&e, &ok, Reading::SpecText),
            Judged::PassNote(_)
        ));
        assert!(matches!(
            verdict(&e, &validation, Reading::SpecText),
            Judged::Warn(_)
        ));
        // judge() (used where no reading is chosen) follows AWS's tools.
        assert!(judge(&e, &validation).is_empty());
        assert!(!judge(&e, &ok).is_empty());
    }

    #[test]
    fn one_of_says_which_answer_was_seen() {
        let e = Expect::OneOf(vec![
            Expect::Health,
            Expect::Error(ErrorName::AccessDeniedException),
        ]);
        match verdict(
            &e,
            &json(403, r#"{"errorName":"AccessDeniedException"}"#),
            Reading::AwsTools,
        ) {
            Judged::PassNote(n) => {
                assert!(n.ends_with("observed: 403 AccessDeniedException"), "{n}")
            }
            j => panic!("{j:?}"),
        }
        assert!(matches!(
            verdict(&e, &json(200, HEALTH_OK), Reading::AwsTools),
            Judged::PassNote(_)
        ));
        // A 403 with the wrong name: the 403 alternative explains.
        match verdict(
            &e,
            &json(403, r#"{"errorName":"ValidationException"}"#),
            Reading::AwsTools,
        ) {
            Judged::Fail(m) => {
                assert_eq!(failed(&m), [ANSWER, ERROR_NAME]);
                assert_eq!(
                    m[0].expected,
                    "one of: 200 GetHealthStatus response or 403 AccessDeniedException"
                );
            }
            j => panic!("{j:?}"),
        }
    }

    #[test]
    fn bursts_need_a_well_formed_429_and_nothing_but_200() {
        let ok = || Ok(json(200, HEALTH_OK));
        let throttled = || Ok(json(429, r#"{"errorName":"ThrottlingException"}"#));
        assert!(check_burst(&[ok(), throttled(), throttled()]).is_empty());
        let none = check_burst(&[ok(), ok()]);
        assert_eq!(failed(&none), [THROTTLING]);
        assert!(none[0].observed.contains("2 answered 200, none throttled"));
        let bad = check_burst(&[
            ok(),
            Ok(json(429, "{}")),
            Ok(json(500, "{}")),
            Err("reset".into()),
        ]);
        assert_eq!(
            failed(&bad),
            [
                "first 429: response shape",
                "first 429: errorName",
                THROTTLING
            ]
        );
        assert!(
            bad[2].observed.contains("500") && bad[2].observed.contains("transport error: reset")
        );
        use std::time::Duration;
        assert!(check_deadline(Duration::from_millis(10), Duration::from_millis(10)).is_empty());
        assert_eq!(
            failed(&check_deadline(
                Duration::from_millis(11),
                Duration::from_millis(10)
            )),
            [DEADLINE]
        );
    }

    #[test]
    fn error_checks_each_fail_alone() {
        let good = json(
            404,
            r#"{"errorName":"KeyNotFoundException","errorMessage":"no such key"}"#,
        );
        let name = ErrorName::KeyNotFoundException;
        assert!(check_error(&good, name).is_empty());
        // errorMessage is optional; charset parameters are fine.
        let no_msg = json(404, r#"{"errorName":"KeyNotFoundException"}"#);
        assert!(check_error(&no_msg, name).is_empty());
        let charset = with_ct(good.clone(), Some("application/json; charset=utf-8"));
        assert!(check_error(&charset, name).is_empty());

        // Status alone.
        let m = check_error(
            &Observed {
                status: 400,
                ..good.clone()
            },
            name,
        );
        assert_eq!(failed(&m), [STATUS]);
        assert_eq!(m[0].expected, "404");
        assert_eq!(m[0].observed, "400 KeyNotFoundException");
        // Content type alone: absent, wrong.
        for ct in [None, Some("text/plain"), Some("application/x-amz-json-1.1")] {
            let m = check_error(&with_ct(good.clone(), ct), name);
            assert_eq!(failed(&m), [CONTENT_TYPE], "{ct:?}");
        }
        // errorName alone.
        let m = check_error(
            &json(404, r#"{"errorName":"InvalidUriPathException"}"#),
            name,
        );
        assert_eq!(failed(&m), [ERROR_NAME]);
        assert_eq!(m[0].observed, "InvalidUriPathException");
        // errorMessage rules alone: too long, not printable ASCII.
        let long = format!(
            r#"{{"errorName":"KeyNotFoundException","errorMessage":"{}"}}"#,
            "x".repeat(512)
        );
        assert_eq!(
            failed(&check_error(&json(404, &long), name)),
            [ERROR_MESSAGE]
        );
        let ctl = r#"{"errorName":"KeyNotFoundException","errorMessage":"tab\there"}"#;
        assert_eq!(failed(&check_error(&json(404, ctl), name)), [ERROR_MESSAGE]);
        // Shape: not JSON, not an object, errorName of the wrong type.
        for body in [
            "<html>Not Found</html>",
            r#"["KeyNotFoundException"]"#,
            r#"{"errorName":404}"#,
            r#"{"error":"KeyNotFoundException"}"#,
            "",
        ] {
            let m = check_error(&json(404, body), name);
            assert_eq!(failed(&m), [SHAPE, ERROR_NAME], "{body}");
        }
    }

    #[test]
    fn method_not_allowed_checks() {
        let mut good = Observed {
            status: 405,
            headers: vec![("allow".into(), "POST".into())],
            body: vec![],
        };
        assert!(check_method_not_allowed(&good).is_empty());
        good.headers[0].1 = "GET, POST".into();
        assert!(check_method_not_allowed(&good).is_empty());
        let m = check_method_not_allowed(&Observed {
            status: 404,
            ..good.clone()
        });
        assert_eq!(failed(&m), [STATUS]);
        let m = check_method_not_allowed(&Observed {
            headers: vec![],
            ..good.clone()
        });
        assert_eq!(failed(&m), [ALLOW]);
        let m = check_method_not_allowed(&Observed {
            headers: vec![("allow".into(), "GET, PUT".into())],
            ..good
        });
        assert_eq!(failed(&m), [ALLOW]);
    }

    const HEALTH: &str = r#"{"xksProxyFleetSize":2,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"h1","model":"m","healthStatus":"ACTIVE"}]}"#;

    fn health_with(entries: usize, status: &str) -> String {
        let entry = format!(r#"{{"id":"h","model":"m","healthStatus":"{status}"}}"#);
        let list = vec![entry; entries].join(",");
        format!(
            r#"{{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{list}]}}"#
        )
    }

    #[test]
    fn health_checks_each_fail_alone() {
        assert!(check_health(&json(200, HEALTH)).is_empty());
        for s in health_status::ALL {
            assert!(check_health(&json(200, &health_with(10, s))).is_empty());
        }
        // Never 403 (or anything but 200).
        let m = check_health(&json(403, r#"{"errorName":"AccessDeniedException"}"#));
        assert_eq!(failed(&m), [STATUS]);
        assert_eq!(m[0].observed, "403 AccessDeniedException");
        assert_eq!(
            failed(&check_health(&with_ct(
                json(200, HEALTH),
                Some("text/html")
            ))),
            [CONTENT_TYPE]
        );
        let zero = HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":0"#);
        assert_eq!(failed(&check_health(&json(200, &zero))), [FLEET_SIZE]);
        assert_eq!(
            failed(&check_health(&json(200, &health_with(0, "ACTIVE")))),
            [FLEET_ENTRIES]
        );
        assert_eq!(
            failed(&check_health(&json(200, &health_with(11, "ACTIVE")))),
            [FLEET_ENTRIES]
        );
        assert_eq!(
            failed(&check_health(&json(200, &health_with(1, "active")))),
            [HEALTH_STATUS]
        );
        // Shape: a missing field, a negative or fractional fleet size.
        for bad in [
            HEALTH.replace(r#""ekmVendor":"e","#, ""),
            HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":-1"#),
            HEALTH.replace(r#""xksProxyFleetSize":2"#, r#""xksProxyFleetSize":1.5"#),
            HEALTH.replace(r#""id":"h1","#, ""),
        ] {
            assert_eq!(failed(&check_health(&json(200, &bad))), [SHAPE], "{bad}");
        }
    }

    const META: &str =
        r#"{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}"#;

    #[test]
    fn key_metadata_checks_each_fail_alone() {
        let ok = |body: &str, status, usage| check_key_metadata(&json(200, body), status, usage);
        assert!(ok(META, "ENABLED", Usage::Both).is_empty());
        assert!(ok(META, "ENABLED", Usage::Any).is_empty());
        // Extra usages are allowed.
        let extra = META.replace(r#""DECRYPT"]"#, r#""DECRYPT","WRAP","UNWRAP"]"#);
        assert!(ok(&extra, "ENABLED", Usage::Both).is_empty());

        let m = check_key_metadata(
            &json(404, r#"{"errorName":"KeyNotFoundException"}"#),
            "ENABLED",
            Usage::Both,
        );
        assert_eq!(failed(&m), [STATUS]);
        let m = check_key_metadata(&with_ct(json(200, META), None), "ENABLED", Usage::Both);
        assert_eq!(failed(&m), [CONTENT_TYPE]);
        let m = ok(&META.replace("AES_256", "AES_128"), "ENABLED", Usage::Both);
        assert_eq!(failed(&m), [KEY_SPEC]);
        let m = ok(&META.replace(r#","DECRYPT""#, ""), "ENABLED", Usage::Both);
        assert_eq!(failed(&m), [KEY_USAGE]);
        let m = ok(&META.replace(r#""ENCRYPT","#, ""), "ENABLED", Usage::Both);
        assert_eq!(failed(&m), [KEY_USAGE]);
        // Lower case: both the case rule and the usage rule break.
        let m = ok(
            &META.replace("\"ENCRYPT\"", "\"encrypt\""),
            "ENABLED",
            Usage::Any,
        );
        assert_eq!(failed(&m), [KEY_USAGE_CASE]);
        let eleven = format!(
            r#"{{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT",{}],"keyStatus":"ENABLED"}}"#,
            [r#""SIGN""#; 9].join(",")
        );
        assert_eq!(
            failed(&ok(&eleven, "ENABLED", Usage::Both)),
            [KEY_USAGE_COUNT]
        );
        let m = ok(META, "DISABLED", Usage::Both);
        assert_eq!(failed(&m), [KEY_STATUS]);
        assert_eq!(
            (m[0].expected.as_str(), m[0].observed.as_str()),
            ("DISABLED", "ENABLED")
        );
        // Usage restrictions.
        assert_eq!(
            failed(&ok(META, "ENABLED", Usage::EncryptOnly)),
            [KEY_USAGE]
        );
        assert_eq!(
            failed(&ok(META, "ENABLED", Usage::DecryptOnly)),
            [KEY_USAGE]
        );
        assert_eq!(failed(&ok(META, "ENABLED", Usage::Neither)), [KEY_USAGE]);
        let enc = META.replace(r#","DECRYPT""#, "");
        assert!(ok(&enc, "ENABLED", Usage::EncryptOnly).is_empty());
        let none = META.replace(r#""ENCRYPT","DECRYPT""#, "");
        assert!(ok(&none, "ENABLED", Usage::Neither).is_empty());
        // Shape.
        for bad in [
            META.replace(r#""keySpec":"AES_256","#, ""),
            META.replace(r#"["ENCRYPT","DECRYPT"]"#, r#""ENCRYPT,DECRYPT""#),
            "[]".to_owned(),
        ] {
            assert_eq!(failed(&ok(&bad, "ENABLED", Usage::Both)), [SHAPE], "{bad}");
        }
    }

    /// A conformant Encrypt answer built with the spec's Appendix C values.
    fn appendix_c() -> (EncryptExpect, String) {
        let exp = EncryptExpect {
            plaintext_len: 12,
            aad: b"project=nile,department=marketing".to_vec(),
            cdiv_requested: true,
        };
        let body = r#"{"authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==","ciphertext":"ghxkK1txeDNn3q8Y","ciphertextDataIntegrityValue":"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=","ciphertextMetadata":"a2V5X3ZlcnNpb249MQ==","initializationVector":"HMrlRw85cAJUd5Ax"}"#;
        (exp, body.to_owned())
    }

    #[test]
    fn encrypt_accepts_the_spec_example_and_appendix_c() {
        let (exp, body) = appendix_c();
        let (m, r) = check_encrypt(&json(200, &body), &exp);
        assert!(m.is_empty(), "{m:?}");
        assert!(r.is_some());
        // 16-byte IVs are allowed (the CDIV then differs, so recompute it).
        let iv16 = vec![7u8; 16];
        let meta = b"key_version=1";
        let ct = xks_wire::b64::decode("ghxkK1txeDNn3q8Y").unwrap();
        let tag = xks_wire::b64::decode("vBxN2ncH1oEkR8WVXpmyYQ==").unwrap();
        let cdiv = cdiv_sha256(&exp.aad, meta, &iv16, &ct, &tag);
        let body16 = body.replace("HMrlRw85cAJUd5Ax", &encode(&iv16)).replace(
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
            &encode(&cdiv),
        );
        assert!(check_encrypt(&json(200, &body16), &exp).0.is_empty());
    }

    #[test]
    fn encrypt_checks_each_fail_alone() {
        let (exp, body) = appendix_c();
        let run = |b: &str, e: &EncryptExpect| check_encrypt(&json(200, b), e).0;
        let m = check_encrypt(&json(500, r#"{"errorName":"InternalException"}"#), &exp).0;
        assert_eq!(failed(&m), [STATUS]);
        let m = check_encrypt(&with_ct(json(200, &body), Some("text/plain")), &exp).0;
        assert_eq!(failed(&m), [CONTENT_TYPE]);
        // Ciphertext length differs from the plaintext length.
        let m = run(
            &body,
            &EncryptExpect {
                plaintext_len: 13,
                ..exp.clone()
            },
        );
        assert_eq!(failed(&m), [CIPHERTEXT_LEN]);
        // IV of 8 bytes, tag of 12 bytes, metadata of 21 bytes: each breaks
        // its length rule and (since the CDIV covers them) the CDIV.
        let no_cdiv = EncryptExpect {
            cdiv_requested: false,
            ..exp.clone()
        };
        let strip = |b: &str| {
            b.replace(
                r#""ciphertextDataIntegrityValue":"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=","#,
                "",
            )
        };
        let m = run(
            &strip(&body.replace("HMrlRw85cAJUd5Ax", &encode(&[1; 8]))),
            &no_cdiv,
        );
        assert_eq!(failed(&m), [IV_LEN]);
        let m = run(
            &strip(&body.replace("vBxN2ncH1oEkR8WVXpmyYQ==", &encode(&[1; 12]))),
            &no_cdiv,
        );
        assert_eq!(failed(&m), [checks::TAG_LEN]);
        let m = run(
            &strip(&body.replace("a2V5X3ZlcnNpb249MQ==", &encode(&[1; 21]))),
            &no_cdiv,
        );
        assert_eq!(failed(&m), [METADATA_LEN]);
        // CDIV: absent when requested, present when not, wrong value.
        let m = run(&strip(&body), &exp);
        assert_eq!(failed(&m), [CDIV]);
        assert_eq!(m[0].observed, "absent");
        let m = run(&body, &no_cdiv);
        assert_eq!(failed(&m), [CDIV]);
        let wrong = body.replace(
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
            &encode(&[0; 32]),
        );
        let m = run(&wrong, &exp);
        assert_eq!(failed(&m), [CDIV]);
        assert!(m[0]
            .expected
            .starts_with("qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="));
        // The CDIV is over the request's AAD: a different AAD breaks it.
        let m = run(
            &body,
            &EncryptExpect {
                aad: b"other".to_vec(),
                ..exp.clone()
            },
        );
        assert_eq!(failed(&m), [CDIV]);
        // Shape: missing tag, URL-safe Base64, unpadded Base64, not JSON.
        for bad in [
            body.replace(r#""authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==","#, ""),
            body.replace(
                "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
                "qHA_ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
            ),
            body.replace("vBxN2ncH1oEkR8WVXpmyYQ==", "vBxN2ncH1oEkR8WVXpmyYQ"),
            "ciphertext=abc".to_owned(),
        ] {
            let (m, r) = check_encrypt(&json(200, &bad), &exp);
            assert_eq!(failed(&m), [SHAPE], "{bad}");
            assert!(r.is_none());
        }
    }

    #[test]
    fn decrypt_checks_each_fail_alone() {
        let pt = b"Hello World!";
        let good = json(200, &format!(r#"{{"plaintext":"{}"}}"#, encode(pt)));
        assert!(check_decrypt(&good, pt).is_empty());
        let m = check_decrypt(
            &json(400, r#"{"errorName":"InvalidCiphertextException"}"#),
            pt,
        );
        assert_eq!(failed(&m), [STATUS]);
        assert_eq!(
            failed(&check_decrypt(&with_ct(good.clone(), None), pt)),
            [CONTENT_TYPE]
        );
        let m = check_decrypt(
            &json(
                200,
                &format!(r#"{{"plaintext":"{}"}}"#, encode(b"Hello World")),
            ),
            pt,
        );
        assert_eq!(failed(&m), [PLAINTEXT_LEN]);
        let m = check_decrypt(
            &json(
                200,
                &format!(r#"{{"plaintext":"{}"}}"#, encode(b"Hello World?")),
            ),
            pt,
        );
        assert_eq!(failed(&m), [PLAINTEXT]);
        assert_eq!(m[0].observed, "different bytes from offset 11");
        for bad in [
            r#"{"plaintext":5}"#,
            r#"{"plain":"SGk="}"#,
            r#"{"plaintext":"SGVsbG8gV29ybGQh\n"}"#,
            "SGVsbG8=",
        ] {
            let m = check_decrypt(&json(200, bad), pt);
            assert_eq!(failed(&m), [SHAPE], "{bad}");
            // Plaintext never leaks into a report.
            assert!(!m[0].observed.contains("SGVsbG8"), "{}", m[0].observed);
        }
    }

    #[test]
    fn fresh_iv_check() {
        let (exp, body) = appendix_c();
        let a = check_encrypt(&json(200, &body), &exp).1.unwrap();
        let mut b = a.clone();
        assert_eq!(failed(&check_fresh_iv(&a, &b)), [FRESH_IV]);
        b.initialization_vector.0[0] ^= 1;
        assert!(check_fresh_iv(&a, &b).is_empty());
    }

    #[test]
    fn tls_checks() {
        let refused = TlsObservation::Refused {
            detail: "received fatal alert: CertificateRequired".into(),
        };
        let answered = TlsObservation::Answered(json(200, HEALTH));
        let denied =
            TlsObservation::Answered(json(403, r#"{"errorName":"AccessDeniedException"}"#));
        let hung = TlsObservation::NoAnswer { waited_ms: 5000 };
        assert!(check_refused(&refused).is_empty());
        assert_eq!(failed(&check_refused(&answered)), [HANDSHAKE]);
        // An HTTP-level refusal is not a terminated handshake.
        let m = check_refused(&denied);
        assert_eq!(failed(&m), [HANDSHAKE]);
        assert!(m[0].observed.contains("403 AccessDeniedException"));
        assert_eq!(failed(&check_refused(&hung)), [HANDSHAKE]);
        assert!(check_accepted(&answered).is_empty());
        assert_eq!(failed(&check_accepted(&refused)), [HANDSHAKE]);
        assert_eq!(failed(&check_accepted(&hung)), [HANDSHAKE]);
        assert_eq!(failed(&check_accepted(&denied)), [STATUS]);
    }

    #[test]
    fn judge_dispatches_and_transport_failures_fail() {
        let e = Expect::Error(ErrorName::ValidationException);
        let good = json(400, r#"{"errorName":"ValidationException"}"#);
        assert!(judge(&e, &good).is_empty());
        assert_eq!(failed(&judge(&Expect::Health, &good)), [STATUS]);
        assert_eq!(failed(&transport_failure("connection reset")), [TRANSPORT]);
        let d = Expect::Decrypt(Zeroizing::new(b"x".to_vec()));
        assert_eq!(failed(&judge(&d, &good)), [STATUS]);
        assert_eq!(
            Expect::Error(ErrorName::KeyNotFoundException).summary(),
            "404 KeyNotFoundException"
        );
    }

    #[test]
    fn kms_client_checks() {
        let ok: Result<(), xks_client::Error> = Ok(());
        assert!(check_kms_call("GetHealthStatus", &ok).is_empty());
        let err: Result<(), xks_client::Error> = Err(xks_client::Error::Timeout {
            attempts: 2,
            elapsed: std::time::Duration::from_millis(500),
        });
        assert_eq!(
            failed(&check_kms_call("GetHealthStatus", &err)),
            [KMS_CLIENT]
        );
        let good = GetKeyMetadataResponse {
            key_spec: "AES_256".into(),
            key_usage: vec!["ENCRYPT".into(), "DECRYPT".into()],
            key_status: "ENABLED".into(),
        };
        assert!(check_kms_key_metadata(&good).is_empty());
        let bad = GetKeyMetadataResponse {
            key_spec: "AES_128".into(),
            key_usage: vec!["ENCRYPT".into()],
            key_status: "DISABLED".into(),
        };
        assert_eq!(
            failed(&check_kms_key_metadata(&bad)),
            [KEY_SPEC, KEY_USAGE, KEY_STATUS]
        );
        assert!(check_same_plaintext(b"abc", b"abc").is_empty());
        assert_eq!(
            failed(&check_same_plaintext(b"ab", b"abc")),
            [PLAINTEXT_LEN]
        );
        assert_eq!(failed(&check_same_plaintext(b"abd", b"abc")), [PLAINTEXT]);
    }

    #[test]
    fn short_sanitizes_and_truncates() {
        assert_eq!(short("a\nb"), "a?b");
        let s = short(&"x".repeat(500));
        assert_eq!(s.len(), 120);
        assert!(s.ends_with("..."));
    }
}
