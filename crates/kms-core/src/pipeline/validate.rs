//! Step 4: the model's constraints with AWS's messages
//! ([`crate::api::validate`]), then the typed request, parsed once.

use crate::api::error::KmsError;
use crate::api::model::Model;
use crate::api::{validate, Operation, Request};

/// Validates `body` against the input shape of `op` and deserializes it.
pub fn typed(model: &Model, op: Operation, body: serde_json::Value) -> Result<Request, KmsError> {
    validate::validate_input(model, op.name(), &body)?;
    // Validation checked every member's type and constraint, so a failure
    // here is a body the model's checks do not cover (e.g. an integer out
    // of the Rust type's range).
    Request::decode(op, body)
        .map_err(|e| KmsError::Serialization(format!("The request body does not match {op}: {e}")))
}
