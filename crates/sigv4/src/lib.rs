//! AWS Signature Version 4, verified once for the whole workspace.
//!
//! Verification re-signs the received request with `aws-sigv4` — over exactly
//! the headers the client listed in `SignedHeaders`, the body as received, and
//! the time, region and service of the client's credential scope — then
//! compares the two signatures in constant time. Both servers (xks-proxy with
//! service `kms-xks-proxy`, kms-core with service `kms`) use [`verify`]; the
//! client side uses [`sign`].
//!
//! Pure functions over plain data: no sockets, no clocks (the caller passes
//! `now`), so every rule is unit-tested.
#![forbid(unsafe_code)]

mod auth_header;
mod time;

pub use auth_header::{parse_authorization, AuthorizationHeader};
pub use time::{format_amz_date, parse_amz_date};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// Clock skew the XKS spec (and AWS) tolerate in either direction.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);

/// One access key id and its secret, ready to sign with.
#[derive(Clone)]
pub struct Credential {
    access_key_id: String,
    identity: Identity,
}

impl Credential {
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Self {
        let creds = Credentials::new(access_key_id, secret_access_key, None, None, "configured");
        Credential {
            access_key_id: access_key_id.to_owned(),
            identity: creds.into(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Credential({}, <secret>)", self.access_key_id)
    }
}

/// The parts of a received request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Path exactly as received (percent-encoded form).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// `:authority` of an HTTP/2 request, used when there is no Host header.
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    pub signed_at: SystemTime,
}

/// Why a request failed authentication. The reason goes to the server log;
/// the client only learns that authentication failed (or, for kms-core, the
/// AWS error category).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no Authorization header")]
    MissingAuthorization,
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    #[error("unsupported signing algorithm")]
    UnsupportedAlgorithm,
    #[error("no X-Amz-Date header")]
    MissingDate,
    #[error("X-Amz-Date is not in YYYYMMDD'T'HHMMSS'Z' form")]
    MalformedDate,
    #[error("credential scope date does not match X-Amz-Date")]
    ScopeDateMismatch,
    #[error("credential scope service {0:?} is not the expected service")]
    WrongService(String),
    #[error("credential scope region {0:?} is not accepted here")]
    WrongRegion(String),
    #[error("unknown access key id")]
    UnknownAccessKey,
    #[error("SignedHeaders must include {0}")]
    RequiredHeaderNotSigned(&'static str),
    #[error("signed header {0:?} is absent from the request")]
    SignedHeaderAbsent(String),
    #[error("signed header {0:?} has a value that cannot be canonicalised")]
    BadHeaderValue(String),
    #[error("request time is {0} s away from the server clock")]
    Skew(u64),
    #[error("signature does not match")]
    SignatureMismatch,
    #[error("could not build the canonical request: {0}")]
    Canonicalization(String),
}

static VERIFY_SETTINGS: LazyLock<SigningSettings> = LazyLock::new(|| {
    let mut s = SigningSettings::default();
    // Sign exactly what the client listed: nothing is excluded.
    s.excluded_headers = None;
    s
});

/// Verifies a SigV4-signed request.
///
/// `lookup` maps an access key id to its credential; `region_ok` decides
/// whether the scope's region is acceptable. Checks run from cheapest to
/// most expensive; the signature is computed last.
pub fn verify<'c>(
    req: &RequestParts<'_>,
    now: SystemTime,
    service: &str,
    max_skew: Duration,
    region_ok: impl FnOnce(&str) -> bool,
    lookup: impl FnOnce(&str) -> Option<&'c Credential>,
) -> Result<Verified, VerifyError> {
    let auth = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(VerifyError::MissingAuthorization)?
        .to_str()
        .map_err(|_| VerifyError::MalformedAuthorization("not visible ASCII"))?;
    let auth = parse_authorization(auth)?;
    let amz_date = req
        .headers
        .get("x-amz-date")
        .ok_or(VerifyError::MissingDate)?
        .to_str()
        .map_err(|_| VerifyError::MalformedDate)?;
    let signed_at = parse_amz_date(amz_date).ok_or(VerifyError::MalformedDate)?;
    if !amz_date.starts_with(auth.date) {
        return Err(VerifyError::ScopeDateMismatch);
    }
    if auth.service != service {
        return Err(VerifyError::WrongService(auth.service.to_owned()));
    }
    if !region_ok(auth.region) {
        return Err(VerifyError::WrongRegion(auth.region.to_owned()));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(VerifyError::RequiredHeaderNotSigned(required));
        }
    }
    let skew = match now.duration_since(signed_at) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > max_skew {
        return Err(VerifyError::Skew(skew.as_secs()));
    }
    let credential = lookup(auth.access_key_id).ok_or(VerifyError::UnknownAccessKey)?;

    // The headers the client signed, with their received values. x-amz-date
    // is regenerated by the signer from `signed_at`.
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for &name in &auth.signed_headers {
        if name == "x-amz-date" {
            continue;
        }
        let mut values = req.headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            match (name, req.authority) {
                ("host", Some(authority)) => signed.push(("host", authority)),
                _ => return Err(VerifyError::SignedHeaderAbsent(name.to_owned())),
            }
            continue;
        }
        for v in values {
            let v = v
                .to_str()
                .map_err(|_| VerifyError::BadHeaderValue(name.to_owned()))?;
            signed.push((name, v));
        }
    }
    let expected = compute_signature(
        req,
        signed.into_iter(),
        &credential.identity,
        auth.region,
        service,
        signed_at,
        VERIFY_SETTINGS.clone(),
    )?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(Verified {
            access_key_id: credential.access_key_id.clone(),
            region: auth.region.to_owned(),
            service: service.to_owned(),
            signed_at,
        })
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

fn compute_signature<'a>(
    req: &RequestParts<'a>,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    identity: &Identity,
    region: &str,
    service: &str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<String, VerifyError> {
    let uri = match req.query {
        Some(q) if !q.is_empty() => format!("{}?{}", req.path, q),
        _ => req.path.to_owned(),
    };
    // aws-sigv4 panics on a request target that is not origin-form
    // (`/path[?query]`; found by the sigv4_authorization fuzz target). An
    // HTTP server never hands one over, but verify answers every input.
    if !uri.starts_with('/') || uri.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(VerifyError::Canonicalization(
            "the request target is not /path[?query]".into(),
        ));
    }
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| VerifyError::Canonicalization(e.to_string()))?
        .into();
    let signable = SignableRequest::new(req.method, uri, headers, SignableBody::Bytes(req.body))
        .map_err(|e| VerifyError::Canonicalization(e.to_string()))?;
    let out = http_request::sign(signable, &params)
        .map_err(|e| VerifyError::Canonicalization(e.to_string()))?;
    Ok(out.signature().to_owned())
}

/// Headers to add to a request so that it is SigV4-signed over
/// `host;x-amz-date` plus any `extra_signed` headers (as KMS signs XKS
/// requests when `extra_signed` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub authorization: String,
    pub amz_date: String,
}

/// Signs a request. `path` may carry a query string.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    path: &str,
    extra_signed: &[(&str, &str)],
    body: &[u8],
    credential: &Credential,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<SignatureHeaders, VerifyError> {
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let empty = HeaderMap::new();
    let parts = RequestParts {
        method,
        path: path_only,
        query,
        headers: &empty,
        authority: None,
        body,
    };
    let headers = std::iter::once(("host", host)).chain(extra_signed.iter().copied());
    let signature = compute_signature(
        &parts,
        headers,
        &credential.identity,
        region,
        service,
        time,
        settings,
    )?;
    let amz_date = format_amz_date(time);
    let mut names: Vec<String> = std::iter::once("host".to_owned())
        .chain(extra_signed.iter().map(|(n, _)| n.to_ascii_lowercase()))
        .chain(std::iter::once("x-amz-date".to_owned()))
        .collect();
    names.sort();
    names.dedup();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        credential.access_key_id,
        &amz_date[..8],
        region,
        service,
        names.join(";"),
        signature
    );
    Ok(SignatureHeaders {
        authorization,
        amz_date,
    })
}

#[cfg(test)]
mod tests;
