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

use super::{limit, now, store_error, Ctx};
use crate::api::error::KmsError;
use crate::api::types::*;
use crate::keys::KeyRecord;
use crate::store::{paginate, CksChange, CustomKeyStoreRecord, StoreError};
use crate::xks::errors::{self, ks, KeyStoreErrorKind as K};
use crate::xks::registry::{service_metadata, WrongState};
use serde::Serialize;
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
    let bytes = crate::crypto::random_bytes(9)?;
    let hex = hex::encode(bytes.expose());
    Ok(format!("cks-{}", &hex[..17]))
}

/// The credential members, validated by the model already.
fn credential(
    c: &Option<XksProxyAuthenticationCredentialType>,
) -> Option<(String, Zeroizing<String>)> {
    let c = c.as_ref()?;
    Some((
        c.access_key_id.as_str().to_owned(),
        Zeroizing::new(c.raw_secret_access_key.as_str().to_owned()),
    ))
}

fn check_endpoint(endpoint: &str) -> Result<(), KmsError> {
    xks_client::config::parse_endpoint(endpoint)
        .map(|_| ())
        .map_err(|e| validation(format!("XksProxyUriEndpoint {endpoint} is not valid: {e}")))
}

fn check_connectivity(
    connectivity: Option<XksProxyConnectivityType>,
    vpc_name: &Option<String>,
    vpc_owner: &Option<String>,
) -> Result<(), KmsError> {
    match connectivity {
        None | Some(XksProxyConnectivityType::PublicEndpoint) => {}
        Some(other) => {
            return Err(KmsError::UnsupportedOperation(format!(
                "XksProxyConnectivity {other} is not supported by kms-core; use {PUBLIC_ENDPOINT}."
            )))
        }
    }
    for (vpc, value) in [
        ("XksProxyVpcEndpointServiceName", vpc_name),
        ("XksProxyVpcEndpointServiceOwner", vpc_owner),
    ] {
        if value.is_some() {
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
    x: &Ctx<'_>,
    r: &CustomKeyStoreRecord,
    operation: &str,
) -> Result<xks_client::XksClient, KmsError> {
    let config = x.registry.client_config(r).map_err(|m| {
        ks(
            K::XksProxyUriUnreachable,
            format!("KMS cannot reach the external key store proxy: {m}."),
        )
    })?;
    let client = xks_client::XksClient::new(&config)
        .map_err(|e| errors::management_error(&e))?
        .with_stats(x.registry.call_stats(&r.id));
    let mut metadata = service_metadata(operation);
    metadata.kms_request_id = Some(x.request_id.to_owned());
    metadata.aws_principal_arn = Some(x.caller.principal_arn.clone());
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
    (ctx.account(), ctx.region())
}

fn find(ctx: &Ctx<'_>, id: &str) -> Result<CustomKeyStoreRecord, KmsError> {
    let (account, region) = ns(ctx);
    ctx.store
        .custom_key_stores(account, region)
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| not_found(id))
}

pub async fn create(
    ctx: &Ctx<'_>,
    req: CreateCustomKeyStoreRequest,
) -> Result<CreateCustomKeyStoreResponse, KmsError> {
    match req.custom_key_store_type {
        Some(CustomKeyStoreType::ExternalKeyStore) => {}
        None | Some(CustomKeyStoreType::AwsCloudhsm) => {
            return Err(KmsError::UnsupportedOperation(
                "CloudHSM key stores are not supported by kms-core; use CustomKeyStoreType EXTERNAL_KEY_STORE.".into(),
            ))
        }
    }
    for (cloudhsm, given) in [
        ("CloudHsmClusterId", req.cloud_hsm_cluster_id.is_some()),
        ("KeyStorePassword", req.key_store_password.is_some()),
        (
            "TrustAnchorCertificate",
            req.trust_anchor_certificate.is_some(),
        ),
    ] {
        if given {
            return Err(validation(format!(
                "{cloudhsm} is valid only for AWS_CLOUDHSM key stores."
            )));
        }
    }
    let required = |name: &str, value: &Option<String>| {
        value.clone().ok_or_else(|| {
            validation(format!(
                "{name} is required when CustomKeyStoreType is EXTERNAL_KEY_STORE."
            ))
        })
    };
    let uri_endpoint = required("XksProxyUriEndpoint", &req.xks_proxy_uri_endpoint)?;
    let uri_path = required("XksProxyUriPath", &req.xks_proxy_uri_path)?;
    if req.xks_proxy_connectivity.is_none() {
        return Err(validation(
            "XksProxyConnectivity is required when CustomKeyStoreType is EXTERNAL_KEY_STORE.",
        ));
    }
    check_connectivity(
        req.xks_proxy_connectivity,
        &req.xks_proxy_vpc_endpoint_service_name,
        &req.xks_proxy_vpc_endpoint_service_owner,
    )?;
    check_endpoint(&uri_endpoint)?;
    let (access_key_id, secret) =
        credential(&req.xks_proxy_authentication_credential).ok_or_else(|| {
            validation(
                "XksProxyAuthenticationCredential is required when CustomKeyStoreType is EXTERNAL_KEY_STORE.",
            )
        })?;
    let (account, region) = ns(ctx);
    let created = now();
    let record = CustomKeyStoreRecord {
        id: new_id()?,
        account: account.to_owned(),
        region: region.to_owned(),
        name: req.custom_key_store_name.clone(),
        creation_date: created,
        credential_date: created,
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
    probe(ctx, &record, "CreateCustomKeyStore").await?;
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
    Ok(CreateCustomKeyStoreResponse {
        custom_key_store_id: Some(id),
    })
}

/// A described store: the model's entry and kms-core's extension (not in
/// the AWS model; SDKs ignore it), the latest health check of a connected
/// store.
#[derive(Debug, Serialize)]
pub struct DescribedStore {
    #[serde(flatten)]
    pub entry: CustomKeyStoresListEntry,
    #[serde(rename = "XksProxyHealth", skip_serializing_if = "Option::is_none")]
    pub health: Option<StoreHealth>,
}

/// kms-core's `XksProxyHealth` extension.
#[derive(Debug, Serialize)]
pub struct StoreHealth {
    #[serde(rename = "LastCheckedDate")]
    pub last_checked_date: f64,
    #[serde(rename = "Status")]
    pub status: &'static str,
    #[serde(rename = "XksProxyFleetSize", skip_serializing_if = "Option::is_none")]
    pub fleet_size: Option<u64>,
    #[serde(rename = "EkmFleetDetails", skip_serializing_if = "Option::is_none")]
    pub ekm_fleet_details: Option<Vec<EkmInstance>>,
}

/// One external key manager instance in [`StoreHealth`].
#[derive(Debug, Serialize)]
pub struct EkmInstance {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Model")]
    pub model: String,
    #[serde(rename = "HealthStatus")]
    pub health_status: String,
}

/// DescribeCustomKeyStores' response with the extension.
#[derive(Debug, Serialize)]
pub struct DescribeResponse {
    #[serde(rename = "CustomKeyStores")]
    pub custom_key_stores: Vec<DescribedStore>,
    #[serde(rename = "Truncated")]
    pub truncated: bool,
    #[serde(rename = "NextMarker", skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

fn entry(ctx: &Ctx<'_>, r: &CustomKeyStoreRecord) -> DescribedStore {
    let (state, code) = ctx.registry.describe(&r.id);
    let health = ctx
        .registry
        .conn(&r.id)
        .and_then(|c| c.health.clone())
        .map(|h| StoreHealth {
            last_checked_date: h.checked_at,
            status: if h.error_code.is_none() {
                "HEALTHY"
            } else {
                "UNHEALTHY"
            },
            fleet_size: h
                .response
                .as_ref()
                .map(|r| u64::from(r.xks_proxy_fleet_size)),
            ekm_fleet_details: h.response.as_ref().map(|r| {
                r.ekm_fleet_details
                    .iter()
                    .map(|d| EkmInstance {
                        id: d.id.clone(),
                        model: d.model.clone(),
                        health_status: d.health_status.clone(),
                    })
                    .collect()
            }),
        });
    DescribedStore {
        entry: CustomKeyStoresListEntry {
            custom_key_store_id: Some(r.id.clone()),
            custom_key_store_name: Some(r.name.clone()),
            custom_key_store_type: CustomKeyStoreType::parse(&r.store_type),
            connection_state: ConnectionStateType::parse(state),
            connection_error_code: code.and_then(ConnectionErrorCodeType::parse),
            creation_date: Some(r.creation_date),
            xks_proxy_configuration: Some(XksProxyConfigurationType {
                access_key_id: Some(crate::api::blob::SensitiveString(Zeroizing::new(
                    r.access_key_id.clone(),
                ))),
                connectivity: XksProxyConnectivityType::parse(&r.connectivity),
                uri_endpoint: Some(r.uri_endpoint.clone()),
                uri_path: Some(r.uri_path.clone()),
                vpc_endpoint_service_name: None,
                vpc_endpoint_service_owner: None,
            }),
            cloud_hsm_cluster_id: None,
            trust_anchor_certificate: None,
        },
        health,
    }
}

pub fn describe(
    ctx: &Ctx<'_>,
    req: DescribeCustomKeyStoresRequest,
) -> Result<DescribeResponse, KmsError> {
    let (account, region) = ns(ctx);
    let by_id = req.custom_key_store_id.as_deref();
    let by_name = req.custom_key_store_name.as_deref();
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
    let page = paginate(
        selected.into_iter().map(|r| (r.id.clone(), r)),
        limit(req.limit),
        req.marker.as_deref(),
    )
    .map_err(|_| KmsError::InvalidMarker("Invalid marker".into()))?;
    Ok(DescribeResponse {
        custom_key_stores: page.items.iter().map(|r| entry(ctx, r)).collect(),
        truncated: page.next_marker.is_some(),
        next_marker: page.next_marker,
    })
}

pub async fn update(ctx: &Ctx<'_>, req: UpdateCustomKeyStoreRequest) -> Result<(), KmsError> {
    let x = ctx;
    let (account, region) = ns(ctx);
    let id = req.custom_key_store_id.clone();
    let current = find(ctx, &id)?;
    for (cloudhsm, given) in [
        ("CloudHsmClusterId", req.cloud_hsm_cluster_id.is_some()),
        ("KeyStorePassword", req.key_store_password.is_some()),
    ] {
        if given {
            return Err(validation(format!(
                "{cloudhsm} is valid only for AWS_CLOUDHSM key stores."
            )));
        }
    }
    check_connectivity(
        req.xks_proxy_connectivity,
        &req.xks_proxy_vpc_endpoint_service_name,
        &req.xks_proxy_vpc_endpoint_service_owner,
    )?;
    let (state, _) = x.registry.describe(&id);
    let mut next = current.clone();
    if let Some(n) = &req.new_custom_key_store_name {
        next.name.clone_from(n);
    }
    if let Some((ak, sk)) = credential(&req.xks_proxy_authentication_credential) {
        if ak != current.access_key_id || sk != current.secret_access_key {
            next.credential_date = now();
        }
        next.access_key_id = ak;
        next.secret_access_key = sk;
    }
    if let Some(p) = &req.xks_proxy_uri_path {
        next.uri_path.clone_from(p);
    }
    let endpoint_changes = req
        .xks_proxy_uri_endpoint
        .as_ref()
        .is_some_and(|e| *e != current.uri_endpoint)
        || req
            .xks_proxy_connectivity
            .is_some_and(|c| c.as_str() != current.connectivity);
    if let Some(e) = &req.xks_proxy_uri_endpoint {
        check_endpoint(e)?;
        next.uri_endpoint.clone_from(e);
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
    Ok(())
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

pub fn connect(x: &Ctx<'_>, req: ConnectCustomKeyStoreRequest) -> Result<(), KmsError> {
    let id = req.custom_key_store_id.as_str();
    find(x, id)?;
    if let (state @ "FAILED", _) = x.registry.describe(id) {
        return Err(invalid_state(
            id,
            state,
            "disconnected before it is connected again",
        ));
    }
    let record = set_connect_requested(x, id, true)?;
    x.registry.connect(&record).map_err(|WrongState(s)| {
        invalid_state(id, s, "disconnected before it is connected again")
    })?;
    Ok(())
}

pub fn disconnect(x: &Ctx<'_>, req: DisconnectCustomKeyStoreRequest) -> Result<(), KmsError> {
    let id = req.custom_key_store_id.as_str();
    find(x, id)?;
    if x.registry.describe(id).0 == "DISCONNECTED" {
        return Err(invalid_state(
            id,
            "DISCONNECTED",
            "connected, connecting or failed",
        ));
    }
    set_connect_requested(x, id, false)?;
    x.registry
        .disconnect(id)
        .map_err(|WrongState(s)| invalid_state(id, s, "connected, connecting or failed"))?;
    Ok(())
}

pub fn delete(ctx: &Ctx<'_>, req: DeleteCustomKeyStoreRequest) -> Result<(), KmsError> {
    let x = ctx;
    let id = req.custom_key_store_id;
    find(ctx, &id)?;
    let (state, _) = x.registry.describe(&id);
    if state != "DISCONNECTED" {
        return Err(invalid_state(&id, state, "DISCONNECTED"));
    }
    let keys = keys_of_store(ctx, &id)?;
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
    Ok(())
}

/// The KMS keys of a custom key store (every state).
pub fn keys_of_store(ctx: &Ctx<'_>, store_id: &str) -> Result<Vec<KeyRecord>, KmsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .store
            .list_keys(ctx.account(), ctx.region(), 1000, marker.as_deref())
            .map_err(|e| store_error(e, ""))?;
        out.extend(
            page.items
                .into_iter()
                .filter(|r| r.custom_key_store_id.as_deref() == Some(store_id)),
        );
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => return Ok(out),
        }
    }
}
