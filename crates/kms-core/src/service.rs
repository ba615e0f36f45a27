//! The protocol core of kms-core: one request in, one reply out, no
//! sockets. The steps are in [`crate::pipeline`]; this holds what they
//! share (model, authentication, store, external key store connections,
//! authorizer).

use crate::api::error::KmsError;
use crate::api::model::{Model, ModelError};
use crate::api::protocol;
use crate::auth::{AuthMode, Caller};
use crate::context::{Peer, RequestContext};
use crate::pipeline::authorize::{Authorizer, PolicyAuthorizer};
use crate::pipeline::{self, Services};
use crate::store::Store;
use sigv4::RequestParts;
use std::sync::Arc;
use tracing::Instrument;

pub struct Kms {
    model: Model,
    /// Replaced whole on SIGHUP ([`Kms::reload_auth`]).
    auth: arc_swap::ArcSwap<AuthMode>,
    store: Arc<dyn Store>,
    xks: Arc<crate::xks::Registry>,
    authorizer: Arc<dyn Authorizer>,
    audit: Option<audit_sink::AuditSink>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Region of audit records of requests whose caller is unknown (the
/// credential scope was never verified).
pub const UNAUTHENTICATED_REGION: &str = "us-east-1";

/// The reply and what the access log records about it.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: String,
    pub operation: Option<String>,
    pub caller: Option<Caller>,
    pub error: Option<&'static str>,
    /// Everything the pipeline learned (operation, caller, keys, outcome).
    pub context: RequestContext,
}

impl Kms {
    pub fn new(auth: AuthMode, store: Arc<dyn Store>) -> Result<Kms, ModelError> {
        Ok(Kms {
            model: Model::load()?,
            auth: arc_swap::ArcSwap::from_pointee(auth),
            authorizer: Arc::new(PolicyAuthorizer::new(store.clone())),
            store,
            xks: crate::xks::Registry::new(crate::xks::XksSettings::default()),
            audit: None,
            metrics: None,
        })
    }

    /// Writes one CloudTrail-format record per request to `sink`.
    pub fn with_audit(mut self, sink: audit_sink::AuditSink) -> Kms {
        self.audit = Some(sink);
        self
    }

    /// The audit sink, when the audit log is on.
    pub fn audit(&self) -> Option<&audit_sink::AuditSink> {
        self.audit.as_ref()
    }

    /// Uses these external key store settings (TLS trust toward proxies,
    /// budget, health interval).
    pub fn with_xks_settings(mut self, settings: crate::xks::XksSettings) -> Kms {
        self.xks = crate::xks::Registry::new(settings);
        if let Some(m) = &self.metrics {
            self.xks.set_metrics(Arc::clone(m));
        }
        self
    }

    /// New external key store settings (SIGHUP): connected stores get
    /// clients with the new TLS trust and client identity without being
    /// disconnected. Returns how many stores' clients were replaced.
    pub fn reload_xks_settings(&self, settings: crate::xks::XksSettings) -> usize {
        let records = self.store.all_custom_key_stores();
        self.xks.reload_settings(settings, &records)
    }

    /// Counts requests and XKS calls in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Kms {
        self.xks.set_metrics(Arc::clone(&metrics));
        self.metrics = Some(metrics);
        self
    }

    pub fn metrics(&self) -> Option<&Arc<crate::metrics::Metrics>> {
        self.metrics.as_ref()
    }

    /// Uses this authorizer (the default is [`PolicyAuthorizer`]: key
    /// policies, identity policies and grants).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Kms {
        self.authorizer = authorizer;
        self
    }

    /// The external key store connections.
    pub fn xks(&self) -> &Arc<crate::xks::Registry> {
        &self.xks
    }

    /// Reconnects the external key stores that were connected when the
    /// service last stopped (call inside the runtime).
    pub fn resume_custom_key_stores(&self) {
        self.xks.resume(&self.store.all_custom_key_stores());
    }

    pub fn auth(&self) -> Arc<AuthMode> {
        self.auth.load_full()
    }

    /// Replaces the principals and credentials (SIGHUP): requests in
    /// flight finish with the old ones, new requests use the new ones.
    pub fn reload_auth(&self, auth: AuthMode) {
        self.auth.store(Arc::new(auth));
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Handles one request of an unknown peer.
    pub async fn handle(&self, req: &RequestParts<'_>) -> Reply {
        self.handle_from(req, Peer::default()).await
    }

    /// Handles one request from `peer`.
    pub async fn handle_from(&self, req: &RequestParts<'_>, peer: Peer) -> Reply {
        let mut cx = Self::context(req.headers, peer);
        let auth = self.auth.load();
        let services = Services {
            model: &self.model,
            auth: &auth,
            store: self.store.as_ref(),
            registry: &self.xks,
            authorizer: self.authorizer.as_ref(),
        };
        let fail_closed = self.audit.as_ref().is_some_and(|a| a.refuses());
        let result = if fail_closed {
            // Nothing happens that is not audited.
            Err(KmsError::Internal("the audit log cannot be written".into()))
        } else {
            let span = tracing::info_span!("request", request_id = %cx.request_id);
            pipeline::run(&services, req, &mut cx)
                .instrument(span)
                .await
        };
        self.finish(cx, result, fail_closed).await
    }

    /// A request whose body could not be read (too large, too slow): the
    /// error reply, audited like every other request.
    pub async fn refuse_unread(
        &self,
        headers: &http::HeaderMap,
        peer: Peer,
        error: KmsError,
    ) -> Reply {
        let cx = Self::context(headers, peer);
        let fail_closed = self.audit.as_ref().is_some_and(|a| a.refuses());
        self.finish(cx, Err(error), fail_closed).await
    }

    fn context(headers: &http::HeaderMap, peer: Peer) -> RequestContext {
        let mut cx = RequestContext::new(protocol::request_id());
        cx.source = peer.address;
        cx.tls = peer.tls;
        cx.user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        cx
    }

    /// Step 8 (encode) and the audit record.
    async fn finish(
        &self,
        mut cx: RequestContext,
        result: Result<Vec<u8>, KmsError>,
        fail_closed: bool,
    ) -> Reply {
        let (mut status, mut body) = pipeline::encode::reply(&mut cx, result);
        if let Some(sink) = &self.audit {
            let record = crate::audit::Record::from_context(&cx, UNAUTHENTICATED_REGION);
            if let Err(audit_sink::AuditError::Unavailable) = sink.record(&record).await {
                if !fail_closed {
                    // The sink failed while the request ran: withhold the
                    // result (fail closed).
                    let e = KmsError::Internal("the audit log cannot be written".into());
                    (status, body) = pipeline::encode::reply(&mut cx, Err(e));
                }
            }
        }
        Reply {
            status,
            body,
            request_id: cx.request_id.clone(),
            operation: cx.operation.map(|o| o.name().to_owned()),
            caller: cx.caller.clone(),
            error: match cx.outcome {
                crate::context::Outcome::Error(e) => Some(e),
                _ => None,
            },
            context: cx,
        }
    }
}

impl Kms {
    /// Runs `op` for `caller` from model validation on (no HTTP, no
    /// SigV4): kms-core's own calls, e.g. the demo stack's bootstrap.
    pub async fn call(
        &self,
        caller: &Caller,
        op: crate::api::Operation,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, KmsError> {
        let mut cx = RequestContext::new(protocol::request_id());
        let auth = self.auth.load();
        let services = Services {
            model: &self.model,
            auth: &auth,
            store: self.store.as_ref(),
            registry: &self.xks,
            authorizer: self.authorizer.as_ref(),
        };
        let out =
            pipeline::after_authentication(&services, &mut cx, caller.clone(), op, body).await?;
        serde_json::from_slice(&out)
            .map_err(|e| KmsError::Internal(format!("Failed to read the response: {e}")))
    }
}

/// An error reply outside the pipeline (a body that could not be read).
pub fn error_reply(e: &KmsError) -> (u16, Vec<u8>) {
    (e.status(), e.body())
}
