//! Client TLS settings for talking to a proxy under test.

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// Who the client trusts for the proxy's server certificate.
#[derive(Clone)]
pub enum ServerTrust {
    /// PEM bundle of CA certificates.
    CaPem(Vec<u8>),
    /// `--insecure`: no server certificate check.
    Insecure,
}

impl std::fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerTrust::CaPem(p) => write!(f, "CaPem({} bytes)", p.len()),
            ServerTrust::Insecure => f.write_str("Insecure"),
        }
    }
}

/// Builds a client config trusting `ca_file` (or nothing at all with
/// `insecure`), optionally presenting a client certificate.
pub fn client_config(
    ca_file: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
    insecure: bool,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let trust = if insecure {
        ServerTrust::Insecure
    } else {
        let ca =
            ca_file.context("give --ca-file (or --insecure to skip server certificate checks)")?;
        ServerTrust::CaPem(std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?)
    };
    let identity = match client_cert {
        None => None,
        Some((cert, key)) => Some((
            std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            zeroize::Zeroizing::new(
                std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
            ),
        )),
    };
    client_config_pem(
        &trust,
        identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
    )
}

/// Like [`client_config`], from PEM bytes: ALPN http/1.1 only.
pub fn client_config_pem(
    trust: &ServerTrust,
    identity: Option<(&[u8], &[u8])>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match trust {
        ServerTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider))),
        ServerTrust::CaPem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                roots.add(c.context("reading the CA certificates")?)?;
            }
            if roots.is_empty() {
                anyhow::bail!("the CA file holds no certificate");
            }
            builder.with_root_certificates(roots)
        }
    };
    let mut cfg = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .context("reading the client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key).context("reading the client key")?;
            builder.with_client_auth_cert(certs, key)?
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--insecure`: accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
