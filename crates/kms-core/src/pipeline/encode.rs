//! Step 8: the reply. Errors become AWS's `{"__type", "message"}` body; an
//! internal error's cause is logged with the request id and never sent.

use crate::api::error::KmsError;
use crate::context::{Outcome, RequestContext};

/// (HTTP status, body) of a finished request; records the outcome.
pub fn reply(cx: &mut RequestContext, result: Result<Vec<u8>, KmsError>) -> (u16, Vec<u8>) {
    match result {
        Ok(body) => {
            cx.outcome = Outcome::Success;
            (200, body)
        }
        Err(e) => {
            if let Some(details) = e.details() {
                tracing::error!(
                    request_id = cx.request_id.as_str(),
                    operation = cx.operation.map(|o| o.name()).unwrap_or("-"),
                    cause = details,
                    "internal error"
                );
            }
            cx.outcome = Outcome::Error(e.type_name());
            cx.error_message = Some(e.public_message());
            (e.status(), e.body())
        }
    }
}

/// Serializes a typed response.
pub fn response<T: serde::Serialize>(out: &T) -> Result<Vec<u8>, KmsError> {
    serde_json::to_vec(out)
        .map_err(|e| KmsError::Internal(format!("Failed to encode the response: {e}")))
}
