//! Fuzz body: the proxy side of the XKS wire: URI routing and every
//! request body (`serde_json` into the `xks_wire` types, then `validate`).
//! Input: first line the URI path, the rest the JSON body.

use xks_wire::messages::{DecryptRequest, EncryptRequest, GetKeyMetadataRequest, HealthRequest};

pub fn run(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let path = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or(&[]);
    let _ = xks_wire::route::parse_api_path(&path);
    if let Ok(r) = serde_json::from_slice::<EncryptRequest>(body) {
        let _ = r.validate();
    }
    if let Ok(r) = serde_json::from_slice::<DecryptRequest>(body) {
        let _ = r.validate();
    }
    if let Ok(r) = serde_json::from_slice::<GetKeyMetadataRequest>(body) {
        let _ = r.validate();
    }
    let _ = serde_json::from_slice::<HealthRequest>(body);
}
