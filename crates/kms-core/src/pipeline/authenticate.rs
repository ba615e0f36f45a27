//! Step 2: SigV4, in the configured mode ([`crate::auth`]).

use crate::api::error::KmsError;
use crate::auth::{AuthMode, Caller};
use sigv4::RequestParts;
use std::time::SystemTime;

/// The caller, or AWS's authentication error.
pub fn authenticate(auth: &AuthMode, req: &RequestParts<'_>) -> Result<Caller, KmsError> {
    auth.authenticate(req, SystemTime::now())
}
