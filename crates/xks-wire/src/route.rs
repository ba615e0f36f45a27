//! URI paths of the four operations.

use crate::ids::ExternalKeyId;
use std::fmt;

/// The four XKS operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    GetKeyMetadata,
    Encrypt,
    Decrypt,
    GetHealthStatus,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetKeyMetadata => "GetKeyMetadata",
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::GetHealthStatus => "GetHealthStatus",
        }
    }

    /// Last path segment of a key operation (`None` for health).
    pub fn key_suffix(self) -> Option<&'static str> {
        match self {
            Operation::GetKeyMetadata => Some("metadata"),
            Operation::Encrypt => Some("encrypt"),
            Operation::Decrypt => Some("decrypt"),
            Operation::GetHealthStatus => None,
        }
    }

    /// Path of this operation below a `UriPath` (`/kms/xks/v1` included).
    pub fn path(self, uri_path: &str, key: Option<&ExternalKeyId>) -> String {
        match (self.key_suffix(), key) {
            (Some(suffix), Some(key)) => format!("{uri_path}/keys/{key}/{suffix}"),
            _ => format!("{uri_path}/health"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request path resolved to an operation, before key-store lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute<'a> {
    /// Everything before `/kms/xks/v1` (`""` when there is no prefix).
    pub prefix: &'a str,
    pub operation: Operation,
    /// The raw key segment (validated into [`ExternalKeyId`] by the caller
    /// so that an invalid id can be reported precisely).
    pub key: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("the URI path is not an XKS API path")]
    NotApi,
}

/// Splits `{prefix}/kms/xks/v1/{health | keys/{id}/{metadata|encrypt|decrypt}}`.
///
/// The prefix is everything before the last `/kms/xks/v1/`, so a prefix may
/// not itself end in `/kms/xks/v1` (KMS's own pattern makes that moot).
/// Query strings must already be removed; trailing slashes are not API paths.
pub fn parse_api_path(path: &str) -> Result<ApiRoute<'_>, RouteError> {
    const ROOT: &str = "/kms/xks/v1/";
    let cut = path.rfind(ROOT).ok_or(RouteError::NotApi)?;
    // "/kms/xks/v1/keys/<id>/..." could itself contain ROOT only if the key
    // id held slashes, which ids cannot; rfind would then find the later one.
    let prefix = &path[..cut];
    let rest = &path[cut + ROOT.len()..];
    if rest == "health" {
        return Ok(ApiRoute {
            prefix,
            operation: Operation::GetHealthStatus,
            key: None,
        });
    }
    let rest = rest.strip_prefix("keys/").ok_or(RouteError::NotApi)?;
    let (key, op) = rest.split_once('/').ok_or(RouteError::NotApi)?;
    let operation = match op {
        "metadata" => Operation::GetKeyMetadata,
        "encrypt" => Operation::Encrypt,
        "decrypt" => Operation::Decrypt,
        _ => return Err(RouteError::NotApi),
    };
    if key.is_empty() {
        return Err(RouteError::NotApi);
    }
    Ok(ApiRoute {
        prefix,
        operation,
        key: Some(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = parse_api_path("/kms/xks/v1/health").unwrap();
        assert_eq!(
            (r.prefix, r.operation, r.key),
            ("", Operation::GetHealthStatus, None)
        );
        let r = parse_api_path("/p/q/kms/xks/v1/keys/k-1/encrypt").unwrap();
        assert_eq!(
            (r.prefix, r.operation, r.key),
            ("/p/q", Operation::Encrypt, Some("k-1"))
        );
        assert_eq!(
            parse_api_path("/kms/xks/v1/keys/k/metadata")
                .unwrap()
                .operation,
            Operation::GetKeyMetadata
        );
        for bad in [
            "/kms/xks/v1/health/",
            "/kms/xks/v1/keys/k/encrypt/",
            "/kms/xks/v1/keys/k/sign",
            "/kms/xks/v1/keys//encrypt",
            "/kms/xks/v1/keys/a/b/encrypt",
            "/kms/xks/v2/health",
            "/health",
            "/",
        ] {
            assert_eq!(parse_api_path(bad), Err(RouteError::NotApi), "{bad}");
        }
    }

    #[test]
    fn paths_for_operations() {
        let k: ExternalKeyId = "k".parse().unwrap();
        assert_eq!(
            Operation::Decrypt.path("/x/kms/xks/v1", Some(&k)),
            "/x/kms/xks/v1/keys/k/decrypt"
        );
        assert_eq!(
            Operation::GetHealthStatus.path("/kms/xks/v1", None),
            "/kms/xks/v1/health"
        );
    }
}
