//! TLS for the listener: rustls with the aws-lc-rs provider.
//!
//! TLS 1.3 and 1.2, limited to the spec's cipher suites; ALPN offers h2 and
//! http/1.1. With mutual TLS, a client certificate must chain to the
//! configured CA (webpki, with validity dates) *and* carry one of the
//! configured subject names as a SAN DNS name or subject CN; otherwise the
//! handshake fails.

use crate::config::TlsConfig;
use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use http_shell::tls::{load_certs, load_key};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::aws_lc_rs::cipher_suite;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::sync::Arc;

/// The aws-lc-rs provider restricted to the suites the XKS spec lists.
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.cipher_suites = vec![
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    Arc::new(p)
}

/// Builds the server configuration. The certificate, key and client CA
/// live behind the returned [`TlsReloader`], so that SIGHUP can replace them
/// without a new listener: new handshakes use the new ones, established
/// connections are untouched.
pub fn server_config(
    tls: &TlsConfig,
    http2: bool,
) -> anyhow::Result<(Arc<ServerConfig>, TlsReloader)> {
    let provider = provider();
    let resolver = Arc::new(SwapResolver(ArcSwap::from(certified_key(tls, &provider)?)));
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let (builder, verifier) = match &tls.client_ca_file {
        None => (builder.with_no_client_auth(), None),
        Some(_) => {
            let v = Arc::new(SubjectNameVerifier {
                current: ArcSwap::from_pointee(client_verifier(tls, &provider)?),
            });
            (
                builder.with_client_cert_verifier(Arc::clone(&v) as Arc<dyn ClientCertVerifier>),
                Some(v),
            )
        }
    };
    let mut config = builder.with_cert_resolver(Arc::clone(&resolver) as _);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((
        Arc::new(config),
        TlsReloader {
            provider,
            resolver,
            verifier,
        },
    ))
}

/// Replaces the listener's certificate, key and client CA/names.
pub struct TlsReloader {
    provider: Arc<CryptoProvider>,
    resolver: Arc<SwapResolver>,
    verifier: Option<Arc<SubjectNameVerifier>>,
}

impl TlsReloader {
    /// Loads and checks everything first; on any error nothing changes.
    /// Turning mutual TLS on or off needs a restart.
    pub fn reload(&self, tls: &TlsConfig) -> anyhow::Result<()> {
        let key = certified_key(tls, &self.provider)?;
        let verifier = match (&self.verifier, &tls.client_ca_file) {
            (Some(_), Some(_)) => Some(client_verifier(tls, &self.provider)?),
            (None, None) => None,
            _ => bail!("turning mutual TLS on or off needs a restart"),
        };
        self.resolver.0.store(key);
        if let (Some(v), Some(new)) = (&self.verifier, verifier) {
            v.current.store(Arc::new(new));
        }
        Ok(())
    }
}

fn certified_key(tls: &TlsConfig, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = load_certs(&tls.cert_file)?;
    let key = load_key(&tls.key_file)?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("unsupported private key in {}", tls.key_file.display()))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .context("server certificate and key do not match")?;
    Ok(Arc::new(ck))
}

fn client_verifier(
    tls: &TlsConfig,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<VerifierState> {
    let ca = tls
        .client_ca_file
        .as_ref()
        .context("client_ca_file is not set")?;
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots
            .add(c)
            .with_context(|| format!("CA certificate in {}", ca.display()))?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .context("building the client certificate verifier")?;
    Ok(VerifierState {
        inner,
        names: tls.client_subject_names.clone(),
    })
}

/// The current certificate for every handshake.
#[derive(Debug)]
struct SwapResolver(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Names a certificate answers to: SAN DNS names and subject CNs.
pub fn certificate_names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push((*d).to_owned());
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_owned());
        }
    }
    Ok(names)
}

/// Chain verification by webpki, then a subject-name check; both
/// replaceable at run time.
#[derive(Debug)]
struct SubjectNameVerifier {
    current: ArcSwap<VerifierState>,
}

#[derive(Debug)]
struct VerifierState {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl ClientCertVerifier for SubjectNameVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The CA can change at run time and a borrowed list cannot follow
        // it: an empty list lets the client send its certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let state = self.current.load();
        let verified = state
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| tracing::warn!(error = %e, "client certificate refused"))?;
        let names = certificate_names(end_entity.as_ref()).map_err(|e| {
            tracing::warn!(error = %e, "client certificate cannot be parsed");
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
        })?;
        if names
            .iter()
            .any(|n| state.names.iter().any(|want| want.eq_ignore_ascii_case(n)))
        {
            Ok(verified)
        } else {
            tracing::warn!(presented = ?names, "client certificate refused: subject name not allowed");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .inner
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .inner
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().inner.supported_verify_schemes()
    }
}
