//! Who is calling: SigV4 (service `kms`) in two modes.
//!
//! * **Development** (the default on loopback): any credentials are
//!   accepted — the signature cannot be checked without the secret — but the
//!   Authorization header must be well formed. A 12-digit access key id
//!   selects that account; any other uses `000000000000`. The region comes
//!   from the credential scope.
//! * **Configured**: a credentials file maps access key id → secret,
//!   account and principal ARN; signatures are verified with the workspace's
//!   one SigV4 verifier and failures map to AWS's errors.
//!
//! Every (account, region) pair is its own namespace ([`Scope`]).

use crate::api::error::KmsError;
use crate::authz;
use crate::keys::ids::{AccountId, Scope};
use serde::Deserialize;
use sigv4::{Credential, RequestParts, VerifyError};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

pub const SERVICE: &str = "kms";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub principal_arn: String,
    pub access_key_id: String,
    /// What authorization evaluates: ARN, account, principal tags and
    /// identity policies (parsed once per principal, shared).
    pub principal: Arc<authz::Caller>,
}

impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        self.scope == other.scope
            && self.principal_arn == other.principal_arn
            && self.access_key_id == other.access_key_id
    }
}

impl Eq for Caller {}

impl Caller {
    /// The account root user of `scope` (development mode, kms-core's own
    /// calls): no identity policies, so every IAM permission.
    pub fn root(scope: Scope, access_key_id: &str) -> Caller {
        let arn = format!("arn:aws:iam::{}:root", scope.account);
        Caller {
            principal: Arc::new(authz::Caller::new(&arn, scope.account.as_str())),
            scope,
            principal_arn: arn,
            access_key_id: access_key_id.to_owned(),
        }
    }
}

/// One configured identity.
#[derive(Debug, Clone)]
pub struct Identity {
    credential: Credential,
    pub account: AccountId,
    pub principal_arn: String,
    pub principal: Arc<authz::Caller>,
}

#[derive(Debug, Clone)]
pub enum AuthMode {
    Development,
    Configured(HashMap<String, Identity>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    /// Strict mode: a principal without identity policies has no IAM
    /// permission (instead of "Allow kms:* on *").
    #[serde(default)]
    strict_identity_policies: bool,
    credentials: Vec<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
    account_id: String,
    /// Defaults to the account root, `arn:aws:iam::<account>:root`.
    principal_arn: Option<String>,
    /// Inline identity policies (JSON text).
    #[serde(default)]
    identity_policies: Vec<String>,
    /// Identity policy files (relative to the credentials file).
    #[serde(default)]
    identity_policy_files: Vec<String>,
    /// Principal tags (`aws:PrincipalTag/<k>`).
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl AuthMode {
    /// Parses a credentials file (TOML, `[[credentials]]` entries);
    /// identity policy files are relative to the working directory.
    pub fn configured_from_toml(text: &str) -> Result<AuthMode, String> {
        AuthMode::configured_from_toml_at(text, Path::new("."))
    }

    /// Parses a credentials file whose identity policy files are relative
    /// to `base` (the file's directory).
    pub fn configured_from_toml_at(text: &str, base: &Path) -> Result<AuthMode, String> {
        let file: CredentialsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut map = HashMap::new();
        for (i, c) in file.credentials.into_iter().enumerate() {
            let at = format!("credentials entry {}", i + 1);
            if c.access_key_id.len() < 16
                || !c.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(format!(
                    "{at}: access_key_id must be at least 16 letters or digits"
                ));
            }
            if c.secret_access_key.len() < 16 {
                return Err(format!("{at}: secret_access_key is too short"));
            }
            let account = AccountId::parse(&c.account_id).map_err(|e| format!("{at}: {e}"))?;
            let principal_arn = match c.principal_arn {
                Some(arn)
                    if arn.starts_with("arn:aws:iam::") || arn.starts_with("arn:aws:sts::") =>
                {
                    arn
                }
                Some(arn) => {
                    return Err(format!(
                        "{at}: principal_arn {arn:?} is not an IAM or STS ARN"
                    ))
                }
                None => format!("arn:aws:iam::{account}:root"),
            };
            let mut texts: Vec<(String, String)> = c
                .identity_policies
                .into_iter()
                .enumerate()
                .map(|(n, t)| (format!("identity policy {}", n + 1), t))
                .collect();
            for f in &c.identity_policy_files {
                let path = base.join(f);
                let t = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{at}: identity policy file {}: {e}", path.display()))?;
                texts.push((format!("identity policy file {}", path.display()), t));
            }
            let mut policies = Vec::with_capacity(texts.len());
            for (what, t) in texts {
                let p = authz::PolicyDocument::parse(&t, authz::PolicyKind::Identity)
                    .map_err(|e| format!("{at}: {what}: {}", e.0))?;
                policies.push(Arc::new(p));
            }
            let mut principal = authz::Caller::new(&principal_arn, account.as_str())
                .with_tags(c.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if !policies.is_empty() || file.strict_identity_policies {
                principal = principal.with_identity_policies(policies);
            }
            let identity = Identity {
                credential: Credential::new(&c.access_key_id, &c.secret_access_key),
                account,
                principal_arn,
                principal: Arc::new(principal),
            };
            if map.insert(c.access_key_id.clone(), identity).is_some() {
                return Err(format!(
                    "{at}: access key id {} appears twice",
                    c.access_key_id
                ));
            }
        }
        if map.is_empty() {
            return Err("the credentials file has no [[credentials]] entry".into());
        }
        Ok(AuthMode::Configured(map))
    }

    /// The configured principal with this ARN (the first entry naming it),
    /// for `kms-core authz explain`.
    pub fn principal(&self, arn: &str) -> Option<Arc<authz::Caller>> {
        match self {
            AuthMode::Development => None,
            AuthMode::Configured(ids) => ids
                .values()
                .find(|i| i.principal_arn == arn)
                .map(|i| i.principal.clone()),
        }
    }

    /// Development mode accepts anyone: refuse it on a non-loopback
    /// address unless explicitly forced.
    pub fn check_bind(&self, addr: SocketAddr, force: bool) -> Result<(), String> {
        match self {
            AuthMode::Development if !addr.ip().is_loopback() && !force => Err(format!(
                "refusing to serve development-mode authentication (any credentials accepted) on {addr}: bind to 127.0.0.1, give a credentials file, or force it"
            )),
            _ => Ok(()),
        }
    }

    pub fn authenticate(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
    ) -> Result<Caller, KmsError> {
        match self {
            AuthMode::Development => development(req),
            AuthMode::Configured(ids) => {
                let verified = sigv4::verify(
                    req,
                    now,
                    SERVICE,
                    sigv4::DEFAULT_MAX_SKEW,
                    is_region_name,
                    |ak| ids.get(ak).map(|i| &i.credential),
                )
                .map_err(map_verify_error)?;
                let identity = ids
                    .get(&verified.access_key_id)
                    .ok_or(KmsError::UnrecognizedClient)?;
                Ok(Caller {
                    scope: Scope {
                        account: identity.account.clone(),
                        region: verified.region,
                    },
                    principal_arn: identity.principal_arn.clone(),
                    access_key_id: verified.access_key_id,
                    principal: identity.principal.clone(),
                })
            }
        }
    }
}

fn is_region_name(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn development(req: &RequestParts<'_>) -> Result<Caller, KmsError> {
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(KmsError::MissingAuthenticationToken)?
        .to_str()
        .map_err(|_| {
            KmsError::IncompleteSignature("Authorization header is not valid ASCII".into())
        })?;
    let auth = sigv4::parse_authorization(header).map_err(map_verify_error)?;
    if auth.service != SERVICE {
        return Err(map_verify_error(VerifyError::WrongService(
            auth.service.to_owned(),
        )));
    }
    if !is_region_name(auth.region) {
        return Err(map_verify_error(VerifyError::WrongRegion(
            auth.region.to_owned(),
        )));
    }
    let account =
        AccountId::parse(auth.access_key_id).unwrap_or_else(|_| AccountId::default_account());
    Ok(Caller::root(
        Scope {
            account,
            region: auth.region.to_owned(),
        },
        auth.access_key_id,
    ))
}

/// AWS's error for each way a signature can fail.
pub fn map_verify_error(e: VerifyError) -> KmsError {
    match e {
        VerifyError::MissingAuthorization => KmsError::MissingAuthenticationToken,
        VerifyError::UnknownAccessKey => KmsError::UnrecognizedClient,
        VerifyError::SignatureMismatch => KmsError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ),
        VerifyError::Skew(secs) => KmsError::InvalidSignature(format!(
            "Signature expired: the request was signed {secs} s away from the server time; the limit is 5 minutes."
        )),
        VerifyError::WrongService(s) => KmsError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{SERVICE}', not '{s}'."
        )),
        VerifyError::WrongRegion(r) => {
            KmsError::InvalidSignature(format!("Credential should be scoped to a valid region, not '{r}'."))
        }
        VerifyError::MissingDate => KmsError::IncompleteSignature(
            "Authorization header requires existence of the 'X-Amz-Date' header.".into(),
        ),
        VerifyError::UnsupportedAlgorithm => KmsError::IncompleteSignature(
            "Unsupported Authorization Type: only AWS4-HMAC-SHA256 is accepted.".into(),
        ),
        other @ (VerifyError::MalformedAuthorization(_)
        | VerifyError::MalformedDate
        | VerifyError::ScopeDateMismatch
        | VerifyError::RequiredHeaderNotSigned(_)
        | VerifyError::SignedHeaderAbsent(_)
        | VerifyError::BadHeaderValue(_)
        | VerifyError::Canonicalization(_)) => KmsError::IncompleteSignature(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use std::time::Duration;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn signed(
        ak: &str,
        sk: &str,
        region: &str,
        service: &str,
        time: SystemTime,
        body: &[u8],
    ) -> HeaderMap {
        let s = sigv4::sign(
            "POST",
            "kms.local:4000",
            "/",
            &[],
            body,
            &Credential::new(ak, sk),
            region,
            service,
            time,
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "kms.local:4000".parse().unwrap());
        h.insert("x-amz-date", s.amz_date.parse().unwrap());
        h.insert("authorization", s.authorization.parse().unwrap());
        h
    }

    fn parts<'a>(h: &'a HeaderMap, body: &'a [u8]) -> RequestParts<'a> {
        RequestParts {
            method: "POST",
            path: "/",
            query: None,
            headers: h,
            authority: None,
            body,
        }
    }

    fn configured() -> AuthMode {
        AuthMode::configured_from_toml(&format!(
            "[[credentials]]\naccess_key_id = \"{AK}\"\nsecret_access_key = \"{SK}\"\naccount_id = \"111122223333\"\nprincipal_arn = \"arn:aws:iam::111122223333:user/alice\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn development_mode_takes_account_and_region_from_the_request() {
        let now = SystemTime::now();
        let h = signed(
            "123456789012",
            "anything-at-all",
            "eu-west-3",
            "kms",
            now,
            b"{}",
        );
        let c = AuthMode::Development
            .authenticate(&parts(&h, b"{}"), now)
            .unwrap();
        assert_eq!(c.scope.account.as_str(), "123456789012");
        assert_eq!(c.scope.region, "eu-west-3");
        assert_eq!(c.principal_arn, "arn:aws:iam::123456789012:root");
        let h = signed("AKIAANYTHING", "x", "us-east-1", "kms", now, b"{}");
        let c = AuthMode::Development
            .authenticate(&parts(&h, b"{}"), now)
            .unwrap();
        assert_eq!(c.scope.account.as_str(), "000000000000");
        // Still needs a well-formed header for the right service.
        let empty = HeaderMap::new();
        assert_eq!(
            AuthMode::Development.authenticate(&parts(&empty, b""), now),
            Err(KmsError::MissingAuthenticationToken)
        );
        let h = signed("123456789012", "x", "us-east-1", "s3", now, b"{}");
        assert!(matches!(
            AuthMode::Development.authenticate(&parts(&h, b"{}"), now),
            Err(KmsError::InvalidSignature(_))
        ));
    }

    #[test]
    fn configured_mode_verifies() {
        let mode = configured();
        let now = SystemTime::now();
        let h = signed(AK, SK, "us-west-2", "kms", now, b"{}");
        let c = mode.authenticate(&parts(&h, b"{}"), now).unwrap();
        assert_eq!(
            (c.scope.account.as_str(), c.scope.region.as_str()),
            ("111122223333", "us-west-2")
        );
        assert_eq!(c.principal_arn, "arn:aws:iam::111122223333:user/alice");

        let err = |h: &HeaderMap, body: &[u8], now| {
            mode.authenticate(&parts(h, body), now)
                .unwrap_err()
                .type_name()
        };
        assert_eq!(err(&h, b"{ }", now), "InvalidSignatureException");
        assert_eq!(
            err(
                &signed(
                    AK,
                    "wrong-secret-wrong-secret",
                    "us-west-2",
                    "kms",
                    now,
                    b"{}"
                ),
                b"{}",
                now
            ),
            "InvalidSignatureException"
        );
        assert_eq!(
            err(
                &signed("AKIAUNKNOWNUNKNOWN12", SK, "us-west-2", "kms", now, b"{}"),
                b"{}",
                now
            ),
            "UnrecognizedClientException"
        );
        assert_eq!(
            err(&h, b"{}", now + Duration::from_secs(400)),
            "InvalidSignatureException"
        );
        assert_eq!(
            err(&HeaderMap::new(), b"{}", now),
            "MissingAuthenticationTokenException"
        );
        let mut no_date = h.clone();
        no_date.remove("x-amz-date");
        assert_eq!(err(&no_date, b"{}", now), "IncompleteSignatureException");
    }

    #[test]
    fn credentials_file_errors_are_precise() {
        let bad = |t: &str| AuthMode::configured_from_toml(t).unwrap_err();
        assert!(bad("").contains("credentials"));
        assert!(bad("[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG\"\naccount_id = \"12\"\n").contains("12 digits"));
        assert!(bad("[[credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG\"\naccount_id = \"111122223333\"\n").contains("access_key_id"));
    }

    #[test]
    fn development_mode_stays_on_loopback_unless_forced() {
        let lo: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        assert!(AuthMode::Development.check_bind(lo, false).is_ok());
        assert!(AuthMode::Development.check_bind(any, false).is_err());
        assert!(AuthMode::Development.check_bind(any, true).is_ok());
        assert!(configured().check_bind(any, false).is_ok());
    }
}
