//! Parsing of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.

use crate::VerifyError;

/// A parsed SigV4 Authorization header, borrowing from the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    pub access_key_id: &'a str,
    /// Scope date, `YYYYMMDD`.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lowercase header names, in the order given.
    pub signed_headers: Vec<&'a str>,
    /// Lowercase hex signature.
    pub signature: &'a str,
}

/// Parses the header. Components may appear in any order, separated by
/// commas with optional spaces; each must appear exactly once.
pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, VerifyError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(VerifyError::UnsupportedAlgorithm)?;
    if !rest.starts_with(' ') {
        return Err(VerifyError::UnsupportedAlgorithm);
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (key, val) = part
            .split_once('=')
            .ok_or(VerifyError::MalformedAuthorization("component without '='"))?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(VerifyError::MalformedAuthorization("unknown component")),
        };
        if slot.replace(val).is_some() {
            return Err(VerifyError::MalformedAuthorization("repeated component"));
        }
    }
    let credential = credential.ok_or(VerifyError::MalformedAuthorization("no Credential"))?;
    let signed = signed.ok_or(VerifyError::MalformedAuthorization("no SignedHeaders"))?;
    let signature = signature.ok_or(VerifyError::MalformedAuthorization("no Signature"))?;

    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(term), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(VerifyError::MalformedAuthorization(
            "Credential is not <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if term != "aws4_request" {
        return Err(VerifyError::MalformedAuthorization(
            "credential scope must end in aws4_request",
        ));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(VerifyError::MalformedAuthorization(
            "empty credential component",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedAuthorization(
            "scope date is not YYYYMMDD",
        ));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(VerifyError::MalformedAuthorization(
            "Signature is not 64 lowercase hex digits",
        ));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(VerifyError::MalformedAuthorization(
            "SignedHeaders must be lowercase names separated by ';'",
        ));
    }
    Ok(AuthorizationHeader {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}
