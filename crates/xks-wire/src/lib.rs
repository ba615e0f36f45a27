//! The XKS Proxy API v1 (spec v1.0.3) on the wire, defined once.
//!
//! Everything here is plain data and pure functions: request and response
//! bodies, error names with their HTTP statuses, strict RFC 4648 Base64 fields,
//! the identifiers the spec constrains (`externalKeyId`, `XksProxyUriPath`),
//! the AES-GCM AAD binding the spec recommends, and the Ciphertext Data
//! Integrity Value of Appendix C. The proxy, the client and the conformance
//! suite all use these types, so the three cannot drift apart.
#![forbid(unsafe_code)]

pub mod b64;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod messages;
pub mod route;

pub use b64::{Bytes64, SecretBytes64};
pub use crypto::{cdiv_sha256, gcm_aad, CDIV_LEN};
pub use error::{ErrorBody, ErrorName};
pub use ids::{ExternalKeyId, IdError, UriPath};
pub use messages::*;
pub use route::{parse_api_path, ApiRoute, Operation, RouteError};

/// Largest `ciphertextMetadata` the spec allows (bytes, before Base64).
pub const MAX_CIPHERTEXT_METADATA: usize = 20;
/// AES-GCM authentication tag length the spec requires.
pub const TAG_LEN: usize = 16;
/// IV lengths the spec allows.
pub const IV_LENS: [usize; 2] = [12, 16];
/// Plaintext / ciphertext size every proxy must accept.
pub const MIN_SUPPORTED_PLAINTEXT: usize = 4300;
/// AAD size every proxy must accept.
pub const MIN_SUPPORTED_AAD: usize = 8192;
/// Most `keyUsage` entries a GetKeyMetadata response may carry.
pub const MAX_KEY_USAGE_ENTRIES: usize = 10;
/// Most `ekmFleetDetails` entries a GetHealthStatus response may carry.
pub const MAX_EKM_FLEET_ENTRIES: usize = 10;
/// The only encryption algorithm of spec v1.
pub const AES_GCM: &str = "AES_GCM";
/// The only CDIV algorithm of spec v1.
pub const SHA_256: &str = "SHA_256";
/// SigV4 service name for XKS requests.
pub const SIGV4_SERVICE: &str = "kms-xks-proxy";
/// The fixed tail of every XKS URI path.
pub const API_ROOT: &str = "/kms/xks/v1";
/// Content type of every request and response.
pub const CONTENT_TYPE: &str = "application/json";
