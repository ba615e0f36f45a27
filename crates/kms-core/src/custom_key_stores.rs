//! The custom key store operations for external key stores:
//! CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
//! ConnectCustomKeyStore, DisconnectCustomKeyStore, DeleteCustomKeyStore.
//!
//! Rules (AWS's): names are unique in the account and Region; the proxy
//! API address (endpoint + path) is unique among external key stores of
//! the account and Region; Create and Update probe the proxy with
//! GetHealthStatus; Connect is asynchronous (CONNECTING → CONNECTED or
//! FAILED with a ConnectionErrorCode); Update of the endpoint or
//! connectivity needs DISCONNECTED (name, credential and path can change
//! while CONNECTED); Delete needs DISCONNECTED and no KMS keys.
//! Superset of AWS: endpoints may carry a port and name `localhost` or an
//! IP address. Only PUBLIC_ENDPOINT connectivity exists here (no VPC).

use crate::api::error::KmsError;
use crate::keyops::{str_field, Ctx};
use crate::store::{paginate, CksChange, CustomKeyStoreRecord, StoreError};
use crate::xks::errors::{self, ks, KeyStoreErrorKind as K};
use crate::xks::keys::XCtx;
use crate::xks::registry::{service_metadata, WrongState};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

pub const EXTERNAL_KEY_STORE: &str = "EXTERNAL_KEY_STORE";
pub const PUBLIC_ENDPOINT: &str = "PUBLIC_ENDPOINT";
/// AWS's quota of custom key stores per account and Region.
pub const MAX_CUSTOM_KEY_STORES: usize = 10;

fn not_found(id: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!("Custom key store {id} does not exist."))
}

fn invalid_state(id: &str, state: &str, needed: &str) -> KmsError {
    ks(
        K::InvalidState,
        format!("Custom key store {id} is {state}; this operation requires it to be {needed}."),
    )
}

fn validation(m: impl Into<String>) -> KmsError {
    KmsError::Validation(m.into())
}

/// A refusal from inside a store transaction, back to its KmsError.
fn unwrap_refusal(e: StoreError, id: &str) -> KmsError {
    match e {
        StoreError::NotFound => not_found(id),
        StoreError::Rejected(r) => match r.downcast::<KmsError>() {
            Ok(k) => *k,
            Err(other) => KmsError::Internal(other.to_string()),
        },
        other => KmsError::Internal(format!("The key store failed: {other}")),
    }
}

fn refuse(e: KmsError) -> crate::store::Refusal {
    Box::new(e)
}

/// A new custom key store id: `cks-` and 17 hex digits.
fn new_id() -> Result<String, KmsError> {
    let bytes = crate::crypto::random_bytes(9).map_err(crate::keyops::crypto_internal)?;
    let hex: String = bytes.expose().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("cks-{}", &hex[..17]))
}

/// The credential members, validated by the model already.
fn credential(body: &Value) -> Option<(String, Zeroizing<String>)> {
    let c = body.get("XksProxyAuthenticationCredential")?;
    Some((
        str_field(c, "AccessKeyId")?.to_owned(),
        Zeroizing::new(str_field(c, "RawSecretAccessKey")?.to_owned()),
    ))
}

fn check_endpoint(endpoint: &str) -> Result<(), KmsError> {
    xks_client::config::parse_endpoint(endpoint)
        .map(|_| ())
        .map_err(|e| validation(format!("XksProxyUriEndpoint {endpoint} is not valid: {e}")))
}

fn check_connectivity(body: &Value) -> Result<(), KmsError> {
    match str_field(body, "XksProxyConnectivity") {
        None | Some(PUBLIC_ENDPOINT) => {}
        Some(other) => {
            return Err(KmsError::UnsupportedOperation(format!(
                "XksProxyConnectivity {other} is not supported by kms-core; use {PUBLIC_ENDPOINT}."
            )))
        }
    }
    for vpc in [
        "XksProxyVpcEndpointServiceName",
        "XksProxyVpcEndpointServiceOwner",
    ] {
        if body.get(vpc).is_some_and(|v| !v.is_null()) {
            return Err(validation(format!(
                "{vpc} is valid only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE."
            )));
        }
    }
    Ok(())
}

fn uniqueness(
    candidate: &CustomKeyStoreRecord,
    others: &[CustomKeyStoreRecord],
) -> Result<(), KmsError> {
    for o in others.iter().filter(|o| o.id != candidate.id) {
        if o.name == candidate.name {
            return Err(ks(
                K::NameInUse,
                format!(
                    "The custom key store name {} is already assigned to another custom key store in the account.",
                    candidate.name
                ),
            ));
        }
        if crate::xks::settings::endpoint_key(&o.uri_endpoint)
            == crate::xks::settings::endpoint_key(&candidate.uri_endpoint)
            && o.uri_path == candidate.uri_path
        {
            return Err(ks(
                K::XksProxyUriInUse,
                format!(
                    "The proxy URI {}{} is already associated with external key store {}.",
                    candidate.uri_endpoint, candidate.uri_path, o.id
                ),
            ));
        }
    }
    Ok(())
}

/// GetHealthStatus with the record's settings (Create/UpdateCustomKeyStore).
async fn probe(
    x: &XCtx<'_>,
    r: &CustomKeyStoreRecord,
    operation: &str,
) -> Result<xks_client::XksClient, KmsError> {
    let config = x.registry.client_config(r).map_err(|m| {
        ks(
            K::XksProxyUriUnreachable,
            format!("KMS cannot reach the external key store proxy: {m}."),
        )
    })?;
    let client = xks_client::XksClient::new(&config).map_err(|e| errors::management_error(&e))?;
    let mut metadata = service_metadata(operation);
    metadata.kms_request_id = Some(x.request_id.to_owned());
    metadata.aws_principal_arn = Some(x.ctx.caller.principal_arn.clone());
    let health = client
        .get_health_status(&metadata)
        .await
        .map_err(|e| errors::management_error(&e))?;
    if !health.ekm_fleet_details.is_empty()
        && health
            .ekm_fleet_details
            .iter()
            .all(|d| d.health_status.eq_ignore_ascii_case("UNAVAILABLE"))
    {
        return Err(ks(
            K::XksProxyUriUnreachable,
            "The external key store proxy reports that every external key manager instance is unavailable.",
        ));
    }
    Ok(client)
}

fn ns<'a>(ctx: &'a Ctx<'_>) -> (&'a str, &'a str) {
    (
        ctx.caller.scope.account.as_str(),
        ctx.caller.scope.region.as_str(),
    )
}

fn find(ctx: &Ctx<'_>, id: &str) -> Result<CustomKeyStoreRecord, KmsError> {
    let (account, region) = ns(ctx);
    ctx.store
        .custom_key_stores(account, region)
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| not_found(id))
}

pub async fn create(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let ctx = x.ctx;
    match str_field(body, "CustomKeyStoreType") {
        Some(EXTERNAL_KEY_STORE) => {}
        None | Some("AWS_CLOUDHSM") => {
            return Err(KmsError::UnsupportedOperation(
                "CloudHSM key stores are not supported by kms-core; use CustomKeyStoreType EXTERNAL_KEY_STORE.".into(),
            ))
        }
        Some(other) => return Err(validation(format!("Unknown CustomKeyStoreType {other}."))),
    }
    for cloudhsm in [
        "CloudHsmClusterId",
        "KeyStorePassword",
        "TrustAnchorCertificate",
    ] {
        if body.get(cloudhsm).is_some_and(|v| !v.is_null()) {
            return Err(validation(format!(
                "{cloudhsm} is valid only for AWS_CLOUDHSM key stores."
            )));
        }
    }
    let required = |name: &str| {
        str_field(body, name).map(str::to_owned).ok_or_else(|| {
            validation(format!(
                "{name} is required when CustomKeyStoreType is EXTERNAL_KEY_STORE."
            ))
        })
    };
    let uri_endpoint = required("XksProxyUriEndpoint")?;
    let uri_path = required("XksProxyUriPath")?;
    required("XksProxyConnectivity")?;
    check_connectivity(body)?;
    check_endpoint(&uri_endpoint)?;
    let (access_key_id, secret) = credential(body).ok_or_else(|| {
        validation(
            "XksProxyAuthenticationCredential is required when CustomKeyStoreType is EXTERNAL_KEY_STORE.",
        )
    })?;
    let (account, region) = ns(ctx);
    let record = CustomKeyStoreRecord {
        id: new_id()?,
        account: account.to_owned(),
        region: region.to_owned(),
        name: str_field(body, "CustomKeyStoreName")
            .unwrap_or_default()
            .to_owned(),
        creation_date: crate::keyops::now(),
        store_type: EXTERNAL_KEY_STORE.to_owned(),
        uri_endpoint,
        uri_path,
        connectivity: PUBLIC_ENDPOINT.to_owned(),
        access_key_id,
        secret_access_key: secret,
        connect_requested: false,
    };
    // Cheap checks first, the proxy probe after, and the checks again
    // atomically with the insert.
    let existing = ctx.store.custom_key_stores(account, region);
    uniqueness(&record, &existing)?;
    probe(x, &record, "CreateCustomKeyStore").await?;
    let id = record.id.clone();
    let mut pending = Some(record);
    ctx.store
        .change_custom_key_store(account, region, &id, &mut |_, all| {
            let r = pending.take().ok_or_else(|| refuse(KmsError::Internal("retry".into())))?;
            if all.len() >= MAX_CUSTOM_KEY_STORES {
                return Err(refuse(KmsError::LimitExceeded(format!(
                    "You cannot create more than {MAX_CUSTOM_KEY_STORES} custom key stores in an account and Region."
                ))));
            }
            uniqueness(&r, all).map_err(refuse)?;
            Ok(CksChange::Put(Box::new(r)))
        })
        .map_err(|e| unwrap_refusal(e, &id))?;
    Ok(json!({ "CustomKeyStoreId": id }))
}

fn entry(x: &XCtx<'_>, r: &CustomKeyStoreRecord) -> Value {
    let (state, code) = x.registry.describe(&r.id);
    let mut m = Map::new();
    m.insert("CustomKeyStoreId".into(), json!(r.id));
    m.insert("CustomKeyStoreName".into(), json!(r.name));
    m.insert("CustomKeyStoreType".into(), json!(r.store_type));
    m.insert("ConnectionState".into(), json!(state));
    if let Some(code) = code {
        m.insert("ConnectionErrorCode".into(), json!(code));
    }
    m.insert("CreationDate".into(), json!(r.creation_date));
    m.insert(
        "XksProxyConfiguration".into(),
        json!({
            "AccessKeyId": r.access_key_id,
            "Connectivity": r.connectivity,
            "UriEndpoint": r.uri_endpoint,
            "UriPath": r.uri_path,
        }),
    );
    // kms-core extension (not in the AWS model; SDKs ignore it): the
    // latest health check of a connected store.
    if let Some(h) = x.registry.conn(&r.id).and_then(|c| c.health.clone()) {
        let mut health = json!({
            "LastCheckedDate": h.checked_at,
            "Status": if h.error_code.is_none() { "HEALTHY" } else { "UNHEALTHY" },
        });
        if let Some(resp) = &h.response {
            health["XksProxyFleetSize"] = json!(resp.xks_proxy_fleet_size);
            health["EkmFleetDetails"] = json!(resp
                .ekm_fleet_details
                .iter()
                .map(|d| json!({"Id": d.id, "Model": d.model, "HealthStatus": d.health_status}))
                .collect::<Vec<_>>());
        }
        m.insert("XksProxyHealth".into(), health);
    }
    Value::Object(m)
}

pub fn describe(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let ctx = x.ctx;
    let (account, region) = ns(ctx);
    let by_id = str_field(body, "CustomKeyStoreId");
    let by_name = str_field(body, "CustomKeyStoreName");
    if by_id.is_some() && by_name.is_some() {
        return Err(validation(
            "Specify either CustomKeyStoreId or CustomKeyStoreName, not both.",
        ));
    }
    let all = ctx.store.custom_key_stores(account, region);
    let selected: Vec<&CustomKeyStoreRecord> = all
        .iter()
        .filter(|r| by_id.is_none_or(|id| r.id == id))
        .filter(|r| by_name.is_none_or(|n| r.name == n))
        .collect();
    if selected.is_empty() {
        if let Some(id) = by_id {
            return Err(not_found(id));
        }
        if let Some(name) = by_name {
            return Err(KmsError::CustomKeyStoreNotFound(format!(
                "Custom key store with name {name} does not exist."
            )));
        }
    }
    let limit = body.get("Limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let page = paginate(
        selected.into_iter().map(|r| (r.id.clone(), r)),
        limit,
        str_field(body, "Marker"),
    )
    .map_err(|_| KmsError::InvalidMarker("Invalid marker".into()))?;
    let stores: Vec<Value> = page.items.iter().map(|r| entry(x, r)).collect();
    let mut out = json!({ "CustomKeyStores": stores, "Truncated": page.next_marker.is_some() });
    if let Some(m) = page.next_marker {
        out["NextMarker"] = json!(m);
    }
    Ok(out)
}

pub async fn update(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let ctx = x.ctx;
    let (account, region) = ns(ctx);
    let id = str_field(body, "CustomKeyStoreId")
        .unwrap_or_default()
        .to_owned();
    let current = find(ctx, &id)?;
    for cloudhsm in ["CloudHsmClusterId", "KeyStorePassword"] {
        if body.get(cloudhsm).is_some_and(|v| !v.is_null()) {
            return Err(validation(format!(
                "{cloudhsm} is valid only for AWS_CLOUDHSM key stores."
            )));
        }
    }
    check_connectivity(body)?;
    let (state, _) = x.registry.describe(&id);
    let mut next = current.clone();
    if let Some(n) = str_field(body, "NewCustomKeyStoreName") {
        next.name = n.to_owned();
    }
    if let Some((ak, sk)) = credential(body) {
        next.access_key_id = ak;
        next.secret_access_key = sk;
    }
    if let Some(p) = str_field(body, "XksProxyUriPath") {
        next.uri_path = p.to_owned();
    }
    let endpoint_changes = str_field(body, "XksProxyUriEndpoint")
        .is_some_and(|e| e != current.uri_endpoint)
        || str_field(body, "XksProxyConnectivity").is_some_and(|c| c != current.connectivity);
    if let Some(e) = str_field(body, "XksProxyUriEndpoint") {
        check_endpoint(e)?;
        next.uri_endpoint = e.to_owned();
    }
    if endpoint_changes && state != "DISCONNECTED" {
        return Err(invalid_state(
            &id,
            state,
            "DISCONNECTED to change its XksProxyUriEndpoint or XksProxyConnectivity",
        ));
    }
    uniqueness(&next, &ctx.store.custom_key_stores(account, region))?;
    let proxy_changes = next.uri_endpoint != current.uri_endpoint
        || next.uri_path != current.uri_path
        || next.access_key_id != current.access_key_id
        || next.secret_access_key != current.secret_access_key;
    let client = if proxy_changes {
        Some(probe(x, &next, "UpdateCustomKeyStore").await?)
    } else {
        None
    };
    let mut pending = Some(next);
    ctx.store
        .change_custom_key_store(account, region, &id, &mut |cur, all| {
            let mut r = pending
                .take()
                .ok_or_else(|| refuse(KmsError::Internal("retry".into())))?;
            let cur = cur.ok_or_else(|| refuse(not_found(&id)))?;
            r.connect_requested = cur.connect_requested;
            uniqueness(&r, all).map_err(refuse)?;
            Ok(CksChange::Put(Box::new(r)))
        })
        .map_err(|e| unwrap_refusal(e, &id))?;
    if let Some(client) = client {
        // A connected store continues with the new credential/path.
        x.registry.replace_client(&id, client);
    }
    Ok(json!({}))
}

fn set_connect_requested(
    ctx: &Ctx<'_>,
    id: &str,
    value: bool,
) -> Result<CustomKeyStoreRecord, KmsError> {
    let (account, region) = ns(ctx);
    ctx.store
        .change_custom_key_store(account, region, id, &mut |cur, _| {
            let mut r = cur.cloned().ok_or_else(|| refuse(not_found(id)))?;
            r.connect_requested = value;
            Ok(CksChange::Put(Box::new(r)))
        })
        .map_err(|e| unwrap_refusal(e, id))?
        .ok_or_else(|| not_found(id))
}

pub fn connect(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let id = str_field(body, "CustomKeyStoreId").unwrap_or_default();
    find(x.ctx, id)?;
    if let (state @ "FAILED", _) = x.registry.describe(id) {
        return Err(invalid_state(
            id,
            state,
            "disconnected before it is connected again",
        ));
    }
    let record = set_connect_requested(x.ctx, id, true)?;
    x.registry.connect(&record).map_err(|WrongState(s)| {
        invalid_state(id, s, "disconnected before it is connected again")
    })?;
    Ok(json!({}))
}

pub fn disconnect(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let id = str_field(body, "CustomKeyStoreId").unwrap_or_default();
    find(x.ctx, id)?;
    if x.registry.describe(id).0 == "DISCONNECTED" {
        return Err(invalid_state(
            id,
            "DISCONNECTED",
            "connected, connecting or failed",
        ));
    }
    set_connect_requested(x.ctx, id, false)?;
    x.registry
        .disconnect(id)
        .map_err(|WrongState(s)| invalid_state(id, s, "connected, connecting or failed"))?;
    Ok(json!({}))
}

pub fn delete(x: &XCtx<'_>, body: &Value) -> Result<Value, KmsError> {
    let ctx = x.ctx;
    let id = str_field(body, "CustomKeyStoreId")
        .unwrap_or_default()
        .to_owned();
    find(ctx, &id)?;
    let (state, _) = x.registry.describe(&id);
    if state != "DISCONNECTED" {
        return Err(invalid_state(&id, state, "DISCONNECTED"));
    }
    let keys = crate::xks::keys::keys_of_store(ctx, &id)?;
    if !keys.is_empty() {
        return Err(ks(
            K::HasCmks,
            format!(
                "Custom key store {id} contains {} KMS key(s). Delete them (ScheduleKeyDeletion) before deleting the custom key store.",
                keys.len()
            ),
        ));
    }
    let (account, region) = ns(ctx);
    ctx.store
        .change_custom_key_store(account, region, &id, &mut |cur, _| {
            cur.ok_or_else(|| refuse(not_found(&id)))?;
            Ok(CksChange::Delete)
        })
        .map_err(|e| unwrap_refusal(e, &id))?;
    Ok(json!({}))
}
