//! Requests as the suite means them, and their exact wire form (pure: the
//! caller passes the time). Well-formed requests are signed like KMS signs
//! them; the SigV4 cases describe one deliberate defect each, applied here.

use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// A request before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    pub method: &'static str,
    /// Absolute path (`{uri_path}/...`).
    pub path: String,
    pub body: Vec<u8>,
    pub signing: Signing,
}

impl Req {
    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Self {
        Req {
            method: "POST",
            path: path.into(),
            body,
            signing: Signing::default(),
        }
    }

    pub fn with(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }
}

/// How to sign, relative to the target's own credential (`None` = as KMS).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Signing {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
    pub service: Option<String>,
    /// Seconds added to the signing time (negative: in the past).
    pub skew_secs: i64,
    /// Headers signed in addition to `host;x-amz-date` (also sent).
    pub extra_signed: Vec<(String, String)>,
    /// Changes applied after signing.
    pub after: Vec<AfterSign>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A "wrong secret" differs from the real one in one character:
        // never print it.
        f.debug_struct("Signing")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("service", &self.service)
            .field("skew_secs", &self.skew_secs)
            .field("extra_signed", &self.extra_signed)
            .field("after", &self.after)
            .finish()
    }
}

/// A change made to a request after it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSign {
    RemoveHeader(&'static str),
    SetHeader(&'static str, String),
    AppendBody(Vec<u8>),
    /// Moves the credential scope date this many days back, leaving
    /// X-Amz-Date as signed.
    ScopeDateDaysBack(u64),
}

/// The target's own signing parameters.
#[derive(Clone)]
pub struct SigningTarget {
    /// Host header value (`host` or `host:port`).
    pub host: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for SigningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningTarget({}, {}, {}, <secret>)",
            self.host, self.region, self.access_key_id
        )
    }
}

/// A request exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub method: &'static str,
    pub path: String,
    /// Lower-case names, in sending order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Wire {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    let name = name.to_ascii_lowercase();
    match headers.iter_mut().find(|(n, _)| *n == name) {
        Some(h) => h.1 = value,
        None => headers.push((name, value)),
    }
}

fn shifted(now: SystemTime, secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        now + d
    } else {
        now.checked_sub(d).unwrap_or(now)
    }
}

/// Signs `req` for `target` at `now` and applies its post-signing changes.
pub fn finalize(req: &Req, target: &SigningTarget, now: SystemTime) -> Result<Wire, String> {
    let s = &req.signing;
    let mut headers: Vec<(String, String)> = vec![("host".into(), target.host.clone())];
    if req.method == "POST" {
        headers.push(("content-type".into(), xks_wire::CONTENT_TYPE.into()));
    }
    for (n, v) in &s.extra_signed {
        set_header(&mut headers, n, v.clone());
    }
    let credential = sigv4::Credential::new(
        s.access_key_id.as_deref().unwrap_or(&target.access_key_id),
        s.secret_access_key
            .as_deref()
            .unwrap_or(&target.secret_access_key),
    );
    let extra: Vec<(&str, &str)> = s
        .extra_signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let time = shifted(now, s.skew_secs);
    let sig = sigv4::sign(
        req.method,
        &target.host,
        &req.path,
        &extra,
        &req.body,
        &credential,
        s.region.as_deref().unwrap_or(&target.region),
        s.service.as_deref().unwrap_or(xks_wire::SIGV4_SERVICE),
        time,
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    headers.push(("x-amz-date".into(), sig.amz_date.clone()));
    headers.push(("authorization".into(), sig.authorization));
    let mut body = req.body.clone();
    for change in &s.after {
        match change {
            AfterSign::RemoveHeader(name) => headers.retain(|(n, _)| n != name),
            AfterSign::SetHeader(name, value) => set_header(&mut headers, name, value.clone()),
            AfterSign::AppendBody(extra) => body.extend_from_slice(extra),
            AfterSign::ScopeDateDaysBack(days) => {
                let signed_day = &sig.amz_date[..8];
                let other = sigv4::format_amz_date(shifted(time, -(*days as i64) * 86_400));
                let from = format!("/{signed_day}/");
                let to = format!("/{}/", &other[..8]);
                for (n, v) in headers.iter_mut() {
                    if n == "authorization" {
                        *v = v.replacen(&from, &to, 1);
                    }
                }
            }
        }
    }
    Ok(Wire {
        method: req.method,
        path: req.path.clone(),
        headers,
        body,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderMap;
    use sigv4::VerifyError;
    use std::time::UNIX_EPOCH;

    pub(crate) const AK: &str = "AKIAI2SFODNN7EXAMPLE";
    pub(crate) const SK: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";

    pub(crate) fn target() -> SigningTarget {
        SigningTarget {
            host: "xks.example.com:8443".into(),
            region: "us-east-1".into(),
            access_key_id: AK.into(),
            secret_access_key: Zeroizing::new(SK.into()),
        }
    }

    /// What the proxy's verifier says about a wire request.
    pub(crate) fn verify(w: &Wire, now: SystemTime) -> Result<sigv4::Verified, VerifyError> {
        let mut headers = HeaderMap::new();
        for (n, v) in &w.headers {
            headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let cred = sigv4::Credential::new(AK, SK);
        let parts = sigv4::RequestParts {
            method: w.method,
            path: &w.path,
            query: None,
            headers: &headers,
            authority: None,
            body: &w.body,
        };
        sigv4::verify(
            &parts,
            now,
            xks_wire::SIGV4_SERVICE,
            sigv4::DEFAULT_MAX_SKEW,
            |r| r == "us-east-1",
            |id| (id == AK).then_some(&cred),
        )
    }

    #[test]
    fn kms_style_requests_verify() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = Req::post("/kms/xks/v1/health", b"{}".to_vec());
        let w = finalize(&req, &target(), now).unwrap();
        assert!(w
            .header("authorization")
            .unwrap()
            .contains("SignedHeaders=host;x-amz-date,"));
        assert_eq!(w.header("content-type"), Some("application/json"));
        assert_eq!(w.header("host"), Some("xks.example.com:8443"));
        verify(&w, now).unwrap();
        // A GET carries no content type.
        let get = Req {
            method: "GET",
            ..Req::post("/kms/xks/v1/health", Vec::new())
        };
        let w = finalize(&get, &target(), now).unwrap();
        assert_eq!(w.header("content-type"), None);
    }

    #[test]
    fn scope_date_shift_changes_only_the_scope() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = Req::post("/kms/xks/v1/health", b"{}".to_vec()).with(Signing {
            after: vec![AfterSign::ScopeDateDaysBack(1)],
            ..Default::default()
        });
        let w = finalize(&req, &target(), now).unwrap();
        assert_eq!(w.header("x-amz-date"), Some("20231114T221320Z"));
        assert!(w
            .header("authorization")
            .unwrap()
            .contains("/20231113/us-east-1/"));
        assert_eq!(verify(&w, now), Err(VerifyError::ScopeDateMismatch));
    }
}
