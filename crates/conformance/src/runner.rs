//! Runs the catalogue against a proxy: prepares fixtures, sends each
//! case's requests (raw path, the KMS-side client, or TLS probes) and
//! hands what came back to the pure verdicts of [`crate::check`].

use crate::cases::{
    self, catalogue, other_region, round_trip_decrypt, round_trip_encrypt, CertChoice, Ctx,
    FaultStep, FixtureId, KmsOp, NotRun, Plan,
};
use crate::check::{self, checks, EncryptExpect, Mismatch, Reading, TlsObservation};
use crate::mtls::{self, Ca, Identity};
use crate::report::{CaseResult, Outcome, Report, TargetInfo};
use crate::request::{finalize, Req, SigningTarget, Wire};
use crate::tls::{client_config_pem, ServerTrust};
use crate::transport::{self, Client, Endpoint};
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xks_client::{XksClient, XksClientConfig};
use xks_wire::{EncryptResponse, ExternalKeyId};
use zeroize::Zeroizing;

/// mTLS inputs.
#[derive(Debug, Clone, Default)]
pub struct MtlsSettings {
    /// The proxy requires client certificates (`--expect-mtls`).
    pub expect: bool,
    /// The CA the proxy trusts for client certificates, with its key.
    pub ca: Option<Identity>,
    /// The subject the proxy expects (default `cks.kms.<region>.amazonaws.com`).
    pub subject: Option<String>,
}

/// Everything a run needs.
#[derive(Clone)]
pub struct Settings {
    pub endpoint: String,
    pub uri_path: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub trust: ServerTrust,
    /// The client certificate to present (minted from `mtls.ca` if absent).
    pub client_identity: Option<Identity>,
    pub keys: cases::Keys,
    pub second_uri_path: Option<String>,
    pub mtls: MtlsSettings,
    pub principal_arn: Option<String>,
    pub kms_key_arn: Option<String>,
    /// Case id prefixes to run (all when empty).
    pub only: Vec<String>,
    /// Limit for one raw request.
    pub request_timeout: Duration,
    /// Per-attempt timeout of the KMS-side client (KMS: 250 ms).
    pub kms_attempt_timeout: Duration,
    /// Which reading of an ambiguous rule passes (the other warns).
    pub follow: Reading,
    /// Throttling group: requests sent at once, more than the proxy's
    /// configured rate admits (the group is skipped without it).
    pub throttling_burst: Option<usize>,
    /// Backend-fault group: shell commands that stop (freeze) and resume
    /// the vendor's key manager (the group is skipped without them).
    pub backend_stop_cmd: Option<String>,
    pub backend_resume_cmd: Option<String>,
    /// The proxy's deadline for a key manager that does not answer: a
    /// stopped backend's error must come back within it.
    pub backend_deadline: Duration,
    /// How long throttling or a resumed key manager may take to recover.
    pub recovery_timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("uri_path", &self.uri_path)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("trust", &self.trust)
            .field("client_identity", &self.client_identity)
            .field("keys", &self.keys)
            .field("second_uri_path", &self.second_uri_path)
            .field("mtls", &self.mtls)
            .field("only", &self.only)
            .field("follow", &self.follow)
            .field("throttling_burst", &self.throttling_burst)
            .field("backend_stop_cmd", &self.backend_stop_cmd)
            .field("backend_resume_cmd", &self.backend_resume_cmd)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings with the defaults for everything optional.
    pub fn new(
        endpoint: impl Into<String>,
        uri_path: impl Into<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        trust: ServerTrust,
        key_id: impl Into<String>,
    ) -> Self {
        Settings {
            endpoint: endpoint.into(),
            uri_path: uri_path.into(),
            region: region.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            trust,
            client_identity: None,
            keys: cases::Keys {
                main: key_id.into(),
                ..Default::default()
            },
            second_uri_path: None,
            mtls: MtlsSettings::default(),
            principal_arn: None,
            kms_key_arn: None,
            only: Vec::new(),
            request_timeout: Duration::from_secs(10),
            kms_attempt_timeout: xks_client::DEFAULT_ATTEMPT_TIMEOUT,
            follow: Reading::AwsTools,
            throttling_burst: None,
            backend_stop_cmd: None,
            backend_resume_cmd: None,
            backend_deadline: Duration::from_secs(5),
            recovery_timeout: Duration::from_secs(30),
        }
    }
}

/// How long a TLS probe waits for an answer or a refusal.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// What the cases run against.
struct Env {
    settings: Settings,
    endpoint: Endpoint,
    client: Client,
    target: SigningTarget,
    ctx: Ctx,
    mtls_expected: bool,
    mtls_ca: Option<Ca>,
    subject: String,
    kms: Result<XksClient, NotRun>,
    /// The vendor's key manager is stopped (by --backend-stop-cmd).
    backend_stopped: bool,
    /// TLS client settings of the raw path (for extra connections).
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Runs the selected cases and reports on every one of them.
pub async fn run(settings: Settings) -> anyhow::Result<Report> {
    let started = Instant::now();
    settings
        .uri_path
        .parse::<xks_wire::UriPath>()
        .map_err(|e| anyhow::anyhow!("--uri-path {}: {e}", settings.uri_path))?;
    let endpoint = transport::parse_endpoint(&settings.endpoint)?;
    let subject = settings
        .mtls
        .subject
        .clone()
        .unwrap_or_else(|| mtls::kms_subject(&settings.region));
    let mtls_ca = match &settings.mtls.ca {
        Some(id) => {
            Some(Ca::from_pem(&id.cert_pem, &id.key_pem).context("--mtls-ca-file/--mtls-ca-key")?)
        }
        None => None,
    };
    let identity = match (&settings.client_identity, &mtls_ca) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(ca)) => Some(ca.client(&subject, false)?),
        (None, None) => None,
    };
    let tls = if endpoint.tls {
        Some(client_config_pem(
            &settings.trust,
            identity
                .as_ref()
                .map(|i| (i.cert_pem.as_bytes(), i.key_pem.as_bytes())),
        )?)
    } else {
        None
    };
    let client = Client::new(endpoint.clone(), tls.clone(), settings.request_timeout).await?;
    let target = SigningTarget {
        host: endpoint.authority.clone(),
        region: settings.region.clone(),
        access_key_id: settings.access_key_id.clone(),
        secret_access_key: settings.secret_access_key.clone(),
    };
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut ctx = Ctx::new(
        settings.uri_path.clone(),
        settings.region.clone(),
        settings.access_key_id.clone(),
        settings.secret_access_key.clone(),
        settings.keys.clone(),
        run_id,
    );
    ctx.second_uri_path = settings.second_uri_path.clone();
    if let Some(p) = &settings.principal_arn {
        ctx.principal_arn = p.clone();
    }
    if let Some(k) = &settings.kms_key_arn {
        ctx.kms_key_arn = k.clone();
    }
    let kms = kms_client(&settings, &endpoint, identity.as_ref());
    let mut env = Env {
        mtls_expected: settings.mtls.expect || mtls_ca.is_some(),
        settings,
        endpoint,
        client,
        target,
        ctx,
        mtls_ca,
        subject,
        kms,
        backend_stopped: false,
        tls,
    };
    let selected: Vec<cases::Case> = catalogue()
        .into_iter()
        .filter(|c| cases::selected(&c.id, &env.settings.only))
        .collect();
    let identity = match &env.tls {
        Some(tls) => transport::tls_identity(&env.endpoint, env.client.addr(), Arc::clone(tls))
            .await
            .unwrap_or_default(),
        None => transport::TlsIdentity::default(),
    };
    prepare_fixtures(&mut env).await;
    let mut results = Vec::with_capacity(selected.len());
    for case in &selected {
        let t = Instant::now();
        let outcome = run_case(&mut env, case).await;
        results.push(CaseResult::new(
            &case.id,
            case.group,
            &case.description,
            case.clause,
            outcome,
            millis(t.elapsed()),
        ));
    }
    if env.backend_stopped {
        // Never leave the vendor's key manager stopped.
        let _ = resume_backend(&mut env).await;
    }
    Ok(Report::new(
        TargetInfo {
            endpoint: env.settings.endpoint.clone(),
            uri_path: env.settings.uri_path.clone(),
            region: env.settings.region.clone(),
            tls_version: identity.version,
            tls_suite: identity.suite,
            server_subject: identity.server_subject,
        },
        results,
        millis(started.elapsed()),
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Env {
    fn wire(&self, req: &Req) -> Result<Wire, String> {
        finalize(req, &self.target, SystemTime::now())
    }

    async fn send(&mut self, req: &Req) -> Result<check::Observed, String> {
        let wire = self.wire(req)?;
        self.client.send(&wire).await
    }

    /// Encrypt + check; the parsed response when the shape was right.
    async fn encrypt(
        &mut self,
        req: &Req,
        exp: &EncryptExpect,
    ) -> (Vec<Mismatch>, Option<EncryptResponse>) {
        match self.send(req).await {
            Ok(obs) => check::check_encrypt(&obs, exp),
            Err(e) => (check::transport_failure(&e), None),
        }
    }
}

async fn prepare_fixtures(env: &mut Env) {
    for id in FixtureId::ALL {
        let Some((req, exp, mut fixture)) = cases::fixture_encrypt(&env.ctx, id) else {
            continue;
        };
        let (m, resp) = env.encrypt(&req, &exp).await;
        let result = match (resp, m.is_empty()) {
            (Some(r), true) => {
                fixture.response = r;
                Ok(fixture)
            }
            _ => Err(format!(
                "the Encrypt on {} that this case decrypts failed: {}",
                fixture.key,
                m.iter()
                    .map(Mismatch::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
        env.ctx.fixtures.push((id, result));
    }
}

fn setup_failed(why: String) -> Outcome {
    Outcome::Fail(vec![Mismatch::new(
        checks::SETUP,
        "the preparatory request to succeed",
        why,
    )])
}

async fn run_case(env: &mut Env, case: &cases::Case) -> Outcome {
    match &case.plan {
        Plan::Request(build) => match build(&env.ctx) {
            Err(NotRun::Skip(reason)) => Outcome::Skip(reason),
            Err(NotRun::Setup(why)) => setup_failed(why),
            Ok(step) => match env.send(&step.req).await {
                Ok(obs) => check::verdict(&step.expect, &obs, env.settings.follow).into(),
                Err(e) => Outcome::Fail(check::transport_failure(&e)),
            },
        },
        Plan::RoundTrip { size, aad_len } => round_trip(env, *size, *aad_len).await,
        Plan::FreshIv => fresh_iv(env).await,
        Plan::Handshake { cert, refused } => handshake(env, *cert, *refused).await,
        Plan::KmsClient(op) => kms_call(env, *op).await,
        Plan::Throttle { recover } => throttle(env, *recover).await,
        Plan::BackendFault(step) => backend_fault(env, *step).await,
    }
}

/// A signed health check (what the throttling group sends).
fn health_req(ctx: &Ctx) -> Req {
    Req::post(
        ctx.health_path(),
        serde_json::to_vec(&cases::health_value(ctx, "KmsHealthCheck")).unwrap_or_default(),
    )
}

async fn throttle(env: &mut Env, recover: bool) -> Outcome {
    let Some(burst) = env.settings.throttling_burst else {
        return Outcome::Skip(
            "needs --throttling-burst N (more requests than the proxy's configured rate admits at once)"
                .into(),
        );
    };
    if recover {
        let deadline = Instant::now() + env.settings.recovery_timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let req = health_req(&env.ctx);
            match env.send(&req).await {
                Ok(obs) if obs.status == 200 => {
                    return Outcome::from_mismatches(check::check_health(&obs))
                }
                Ok(obs) => last = obs.describe_status(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return Outcome::Fail(vec![Mismatch::new(
            checks::RECOVERY,
            format!(
                "200 within {} s of the burst",
                env.settings.recovery_timeout.as_secs()
            ),
            format!("still {}", check::short(&last)),
        )]);
    }
    // Signed up front, sent at once over several connections.
    let wires: Vec<Wire> = match (0..burst)
        .map(|_| env.wire(&health_req(&env.ctx)))
        .collect()
    {
        Ok(w) => w,
        Err(e) => return setup_failed(e),
    };
    let lanes = burst.clamp(1, 16);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let mine: Vec<Wire> = wires.iter().skip(lane).step_by(lanes).cloned().collect();
        let client = Client::new(
            env.endpoint.clone(),
            env.tls.clone(),
            env.settings.request_timeout,
        )
        .await;
        tasks.spawn(async move {
            let mut client = match client {
                Ok(c) => c,
                Err(e) => return vec![Err(format!("{e:#}"))],
            };
            let mut out = Vec::with_capacity(mine.len());
            for w in &mine {
                out.push(client.send(w).await);
            }
            out
        });
    }
    let mut answers = Vec::with_capacity(burst);
    while let Some(r) = tasks.join_next().await {
        answers.extend(r.unwrap_or_else(|e| vec![Err(format!("task failed: {e}"))]));
    }
    Outcome::from_mismatches(check::check_burst(&answers))
}

/// Runs a vendor command through `sh -c`.
async fn vendor_command(cmd: &str) -> Result<(), String> {
    let owned = cmd.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&owned)
            .output()
    })
    .await
    .map_err(|e| format!("cannot run `{cmd}`: {e}"))?
    .map_err(|e| format!("cannot run `{cmd}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd}` exited with {}: {}",
            out.status,
            check::short(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

async fn resume_backend(env: &mut Env) -> Result<(), String> {
    let cmd = env.settings.backend_resume_cmd.clone().unwrap_or_default();
    vendor_command(&cmd).await?;
    env.backend_stopped = false;
    Ok(())
}

async fn backend_fault(env: &mut Env, step: FaultStep) -> Outcome {
    let (Some(stop), Some(_)) = (
        env.settings.backend_stop_cmd.clone(),
        env.settings.backend_resume_cmd.clone(),
    ) else {
        return Outcome::Skip(
            "needs --backend-stop-cmd and --backend-resume-cmd (commands that stop and resume your key manager)"
                .into(),
        );
    };
    if step == FaultStep::Recover {
        if env.backend_stopped {
            if let Err(e) = resume_backend(env).await {
                return Outcome::Fail(vec![Mismatch::new(checks::COMMAND, "success", e)]);
            }
        }
        let deadline = Instant::now() + env.settings.recovery_timeout;
        let mut last;
        loop {
            let (req, exp, plaintext, aad) = round_trip_encrypt(&env.ctx, 32, Some(16));
            let (m, resp) = env.encrypt(&req, &exp).await;
            last = m;
            if let (true, Some(r)) = (last.is_empty(), resp) {
                let dec = round_trip_decrypt(&env.ctx, &env.ctx.keys.main, &r, aad.as_deref());
                return Outcome::from_mismatches(match env.send(&dec).await {
                    Ok(obs) => check::check_decrypt(&obs, &plaintext),
                    Err(e) => check::transport_failure(&e),
                });
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut out = vec![Mismatch::new(
            checks::RECOVERY,
            format!(
                "a successful Encrypt within {} s of resuming",
                env.settings.recovery_timeout.as_secs()
            ),
            "none",
        )];
        out.extend(last.into_iter().map(|m| m.in_step("last encrypt")));
        return Outcome::Fail(out);
    }
    if !env.backend_stopped {
        if let Err(e) = vendor_command(&stop).await {
            return Outcome::Fail(vec![Mismatch::new(checks::COMMAND, "success", e)]);
        }
        env.backend_stopped = true;
    }
    let ctx = &env.ctx;
    let main = ctx.keys.main.clone();
    let req = match step {
        FaultStep::Encrypt => {
            let v = cases::encrypt_value(ctx, b"backend fault", None, true);
            Req::post(
                ctx.key_path(&main, xks_wire::Operation::Encrypt),
                serde_json::to_vec(&v).unwrap_or_default(),
            )
        }
        FaultStep::Decrypt => match ctx.fixture(FixtureId::MainWithAad) {
            Ok(f) => Req::post(
                ctx.key_path(&main, xks_wire::Operation::Decrypt),
                serde_json::to_vec(&cases::decrypt_value(ctx, f)).unwrap_or_default(),
            ),
            Err(NotRun::Skip(r)) => return Outcome::Skip(r),
            Err(NotRun::Setup(e)) => return setup_failed(e),
        },
        _ => Req::post(
            ctx.key_path(&main, xks_wire::Operation::GetKeyMetadata),
            serde_json::to_vec(&cases::metadata_value(ctx, "DescribeKey")).unwrap_or_default(),
        ),
    };
    let t = Instant::now();
    let sent = env.send(&req).await;
    let took = t.elapsed();
    let mut m = match sent {
        Ok(obs) => check::check_error(&obs, xks_wire::ErrorName::DependencyTimeoutException),
        Err(e) => check::transport_failure(&e),
    };
    m.extend(check::check_deadline(took, env.settings.backend_deadline));
    Outcome::from_mismatches(m)
}

async fn round_trip(env: &mut Env, size: usize, aad_len: Option<usize>) -> Outcome {
    let (req, exp, plaintext, aad) = round_trip_encrypt(&env.ctx, size, aad_len);
    let (m, resp) = env.encrypt(&req, &exp).await;
    let mut all: Vec<Mismatch> = m.into_iter().map(|m| m.in_step("encrypt")).collect();
    if let Some(r) = resp {
        let dec = round_trip_decrypt(&env.ctx, &env.ctx.keys.main, &r, aad.as_deref());
        let m = match env.send(&dec).await {
            Ok(obs) => check::check_decrypt(&obs, &plaintext),
            Err(e) => check::transport_failure(&e),
        };
        all.extend(m.into_iter().map(|m| m.in_step("decrypt")));
    }
    Outcome::from_mismatches(all)
}

async fn fresh_iv(env: &mut Env) -> Outcome {
    let mut all = Vec::new();
    let mut responses = Vec::new();
    for n in ["first encrypt", "second encrypt"] {
        let v = cases::encrypt_value(&env.ctx, &cases::pattern(32, 3), None, true);
        let req = Req::post(
            env.ctx
                .key_path(&env.ctx.keys.main, xks_wire::Operation::Encrypt),
            serde_json::to_vec(&v).unwrap_or_default(),
        );
        let exp = EncryptExpect {
            plaintext_len: 32,
            aad: Vec::new(),
            cdiv_requested: true,
        };
        let (m, r) = env.encrypt(&req, &exp).await;
        all.extend(m.into_iter().map(|m| m.in_step(n)));
        responses.extend(r);
    }
    if let [a, b] = responses.as_slice() {
        all.extend(check::check_fresh_iv(a, b));
    }
    Outcome::from_mismatches(all)
}

/// Why a handshake case cannot run, if it cannot (pure).
pub fn handshake_skip(
    cert: CertChoice,
    tls: bool,
    mtls_expected: bool,
    ca_given: bool,
) -> Option<String> {
    if !tls {
        return Some("the endpoint is plain HTTP: no TLS, no mTLS".into());
    }
    if !mtls_expected {
        return Some(
            "mTLS is not expected of this proxy: give --expect-mtls, or --mtls-ca-file and --mtls-ca-key"
                .into(),
        );
    }
    if cert.needs_ca() && !ca_given {
        return Some(
            "needs --mtls-ca-file and --mtls-ca-key (the CA the proxy trusts) to mint this certificate"
                .into(),
        );
    }
    None
}

async fn handshake(env: &mut Env, cert: CertChoice, refused: bool) -> Outcome {
    if let Some(reason) = handshake_skip(
        cert,
        env.endpoint.tls,
        env.mtls_expected,
        env.mtls_ca.is_some(),
    ) {
        return Outcome::Skip(reason);
    }
    let minted: anyhow::Result<Option<Identity>> = match (cert, &env.mtls_ca) {
        (CertChoice::None, _) => Ok(None),
        (CertChoice::SelfSigned, _) => mtls::self_signed(&env.subject).map(Some),
        (CertChoice::UntrustedCa, _) => Ca::generate("xks-conformance untrusted CA")
            .and_then(|ca| ca.client(&env.subject, false))
            .map(Some),
        (CertChoice::Expired, Some(ca)) => ca.client(&env.subject, true).map(Some),
        (CertChoice::WrongSubject, Some(ca)) => ca
            .client(
                &mtls::kms_subject(&other_region(&env.settings.region)),
                false,
            )
            .map(Some),
        (CertChoice::Trusted, Some(ca)) => ca.client(&env.subject, false).map(Some),
        (_, None) => Err(anyhow::anyhow!("no CA to mint with")),
    };
    let identity = match minted {
        Ok(i) => i,
        Err(e) => return setup_failed(format!("minting the certificate: {e:#}")),
    };
    let tls = match client_config_pem(
        &env.settings.trust,
        identity
            .as_ref()
            .map(|i| (i.cert_pem.as_bytes(), i.key_pem.as_bytes())),
    ) {
        Ok(t) => t,
        Err(e) => return setup_failed(format!("building the TLS client: {e:#}")),
    };
    let body =
        serde_json::to_vec(&cases::health_value(&env.ctx, "KmsHealthCheck")).unwrap_or_default();
    let wire = match env.wire(&Req::post(env.ctx.health_path(), body)) {
        Ok(w) => w,
        Err(e) => return setup_failed(e),
    };
    let observed: TlsObservation = transport::probe(
        &env.endpoint,
        env.client.addr(),
        Arc::clone(&tls),
        &wire,
        PROBE_WAIT,
    )
    .await;
    Outcome::from_mismatches(if refused {
        check::check_refused(&observed)
    } else {
        check::check_accepted(&observed)
    })
}

/// The KMS-side client, or why the kms-client cases cannot use it.
fn kms_client(
    s: &Settings,
    endpoint: &Endpoint,
    identity: Option<&Identity>,
) -> Result<XksClient, NotRun> {
    if !endpoint.tls {
        return Err(NotRun::Skip(
            "the endpoint is plain HTTP; KMS only connects over HTTPS".into(),
        ));
    }
    let ca = match &s.trust {
        ServerTrust::CaPem(pem) => pem.clone(),
        ServerTrust::Insecure => {
            return Err(NotRun::Skip(
                "--insecure: the KMS-side client always verifies the proxy's certificate; give --ca-file"
                    .into(),
            ))
        }
    };
    let attempt = s.kms_attempt_timeout;
    let mut config = XksClientConfig::new(
        s.endpoint.trim_end_matches('/'),
        s.uri_path.clone(),
        s.region.clone(),
        s.access_key_id.clone(),
        s.secret_access_key.to_string(),
        ca,
    )
    .with_budget(attempt, attempt * 2);
    if let Some(id) = identity {
        config = config.with_client_identity(id.cert_pem.as_bytes(), id.key_pem.as_bytes());
    }
    XksClient::new(&config)
        .map_err(|e| NotRun::Setup(format!("KMS would not accept this configuration: {e}")))
}

async fn kms_call(env: &mut Env, op: KmsOp) -> Outcome {
    let client = match &env.kms {
        Ok(c) => c.clone(),
        Err(NotRun::Skip(r)) => return Outcome::Skip(r.clone()),
        Err(NotRun::Setup(e)) => return setup_failed(e.clone()),
    };
    let key: Result<ExternalKeyId, _> = env.ctx.keys.main.parse();
    let ctx = &env.ctx;
    let mismatches = match op {
        KmsOp::Health => {
            let r = client
                .get_health_status(&ctx.health_metadata("KmsHealthCheck"))
                .await;
            check::check_kms_call("GetHealthStatus", &r)
        }
        KmsOp::KeyMetadata | KmsOp::RoundTrip => {
            let key = match key {
                Ok(k) => k,
                Err(e) => {
                    return Outcome::Fail(vec![Mismatch::new(
                        checks::KMS_CLIENT,
                        "--key-id to be a valid externalKeyId",
                        e.to_string(),
                    )])
                }
            };
            if op == KmsOp::KeyMetadata {
                let r = client
                    .get_key_metadata(&key, &ctx.metadata("DescribeKey"))
                    .await;
                let mut m = check::check_kms_call("GetKeyMetadata", &r);
                if let Ok(meta) = &r {
                    m.extend(check::check_kms_key_metadata(meta));
                }
                m
            } else {
                let plaintext = Zeroizing::new(cases::pattern(32, 11));
                let aad = b"kms-ciphertext-header";
                let req = xks_client::encrypt_request(
                    ctx.metadata("GenerateDataKey"),
                    &plaintext,
                    Some(aad),
                    true,
                );
                let sealed = client.encrypt(&key, &req).await;
                let mut m = check::check_kms_call("Encrypt", &sealed);
                if let Ok(r) = &sealed {
                    let dreq = xks_client::decrypt_request(
                        ctx.metadata("Decrypt"),
                        &r.ciphertext.0,
                        r.ciphertext_metadata.as_ref().map(|x| x.0.as_slice()),
                        &r.initialization_vector.0,
                        &r.authentication_tag.0,
                        Some(aad),
                    );
                    let opened = client.decrypt(&key, &dreq).await;
                    m.extend(check::check_kms_call("Decrypt", &opened));
                    if let Ok(d) = &opened {
                        m.extend(check::check_same_plaintext(
                            d.plaintext.as_ref(),
                            &plaintext,
                        ));
                    }
                }
                m
            }
        }
    };
    Outcome::from_mismatches(mismatches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_skips() {
        assert!(handshake_skip(CertChoice::None, false, true, true)
            .unwrap()
            .contains("plain HTTP"));
        assert!(handshake_skip(CertChoice::None, true, false, false)
            .unwrap()
            .contains("--expect-mtls"));
        assert_eq!(handshake_skip(CertChoice::None, true, true, false), None);
        assert_eq!(
            handshake_skip(CertChoice::SelfSigned, true, true, false),
            None
        );
        assert_eq!(
            handshake_skip(CertChoice::UntrustedCa, true, true, false),
            None
        );
        for c in [
            CertChoice::Expired,
            CertChoice::WrongSubject,
            CertChoice::Trusted,
        ] {
            assert!(handshake_skip(c, true, true, false)
                .unwrap()
                .contains("--mtls-ca-file"));
            assert_eq!(handshake_skip(c, true, true, true), None);
        }
    }

    #[test]
    fn kms_client_needs_https_and_a_ca() {
        let s = Settings::new(
            "https://localhost:8443",
            "/kms/xks/v1",
            "us-east-1",
            "AKIAI2SFODNN7EXAMPLE",
            "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE",
            ServerTrust::Insecure,
            "k",
        );
        let ep = transport::parse_endpoint(&s.endpoint).unwrap();
        assert!(
            matches!(kms_client(&s, &ep, None), Err(NotRun::Skip(r)) if r.contains("--insecure"))
        );
        let plain = transport::parse_endpoint("http://localhost:8080").unwrap();
        assert!(
            matches!(kms_client(&s, &plain, None), Err(NotRun::Skip(r)) if r.contains("HTTPS"))
        );
        let bad = Settings {
            access_key_id: "lowercase-key".into(),
            trust: ServerTrust::CaPem(b"not a pem".to_vec()),
            ..s
        };
        assert!(matches!(kms_client(&bad, &ep, None), Err(NotRun::Setup(_))));
        let shown = format!("{bad:?}");
        assert!(!shown.contains("FYtE5EFA5FT0mCc3"), "{shown}");
    }
}
