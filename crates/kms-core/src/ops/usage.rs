//! GetKeyLastUsage, and recording a successful cryptographic operation
//! (called once per request by the dispatch step; memory only, see
//! [`crate::keys::usage`]).

use super::{now, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::api::Operation;
use crate::context::KeyRole;
use crate::keys::usage::{tracked, Usage};

/// Records that `op` succeeded with every key the request used (both keys
/// of a ReEncrypt).
pub fn record(ctx: &Ctx<'_>, op: Operation) {
    let Some(operation) = tracked(op) else {
        return;
    };
    let at = now();
    for role in [KeyRole::Key, KeyRole::Source, KeyRole::Destination] {
        if let Some(entry) = ctx.resolved.get(role) {
            entry.usage.record(Usage {
                operation,
                timestamp: at,
                request_id: ctx.request_id.to_owned(),
            });
        }
    }
}

pub fn get_key_last_usage(
    ctx: &Ctx<'_>,
    _req: GetKeyLastUsageRequest,
) -> Result<GetKeyLastUsageResponse, KmsError> {
    let entry = ctx.key(KeyRole::Key)?;
    let r = &entry.record;
    let last = entry.usage.get();
    Ok(GetKeyLastUsageResponse {
        key_id: Some(r.key_id.clone()),
        key_creation_date: Some(r.creation_date),
        tracking_start_date: Some(ctx.store.usage_tracking_start().max(r.creation_date)),
        // An empty object when the key has not been used since tracking
        // began, as the model says.
        key_last_usage: Some(match last {
            Some(u) => KeyLastUsageData {
                operation: Some(u.operation),
                timestamp: Some(u.timestamp),
                kms_request_id: Some(u.request_id),
                cloud_trail_event_id: None,
            },
            None => KeyLastUsageData::default(),
        }),
    })
}
