//! Step 1 and 3: which operation (`POST`, `X-Amz-Target`), the content
//! type, and the JSON body.

use crate::api::error::KmsError;
use crate::api::model::Model;
use crate::api::{protocol, Operation};
use sigv4::RequestParts;

/// The operation a request names; its content type must be JSON 1.1.
pub fn operation(model: &Model, req: &RequestParts<'_>) -> Result<Operation, KmsError> {
    if req.method != "POST" {
        return Err(KmsError::UnknownOperation(format!(
            "{} {}",
            req.method, req.path
        )));
    }
    let target = req
        .headers
        .get(protocol::TARGET_HEADER)
        .and_then(|v| v.to_str().ok());
    let op = protocol::operation(model, target)?;
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !protocol::content_type_ok(content_type) {
        return Err(KmsError::Serialization(format!(
            "Content-Type must be {}",
            protocol::CONTENT_TYPE
        )));
    }
    Ok(op)
}

/// The body as a JSON object (empty means `{}`).
pub fn body(bytes: &[u8]) -> Result<serde_json::Value, KmsError> {
    protocol::parse_body(bytes)
}
