//! The workspace's one development and test PKI: a tiny certificate authority
//! (rcgen, ECDSA P-256) minting CA, server and client certificates for the
//! proxy demo, kms-core's `--demo-xks` stack and the tests.
#![forbid(unsafe_code)]

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// A certificate and its private key, PEM-encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>.key` (the key with mode 0600).
    pub fn write(&self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::write(dir.join(format!("{stem}.pem")), &self.cert_pem)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(format!("{stem}.key")))?;
        f.write_all(self.key_pem.as_bytes())?;
        Ok(())
    }
}

/// A certificate authority: generated here, or loaded from PEM (a CA a
/// proxy under test trusts for client certificates).
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca(<key redacted>)")
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Issued({} bytes of certificate, <key redacted>)",
            self.cert_pem.len()
        )
    }
}

/// The subject AWS KMS presents in a region: `cks.kms.<region>.amazonaws.com`.
pub fn kms_subject(region: &str) -> String {
    format!("cks.kms.{region}.amazonaws.com")
}

/// Validity window override (for expired-certificate tests).
pub type Validity = (time::OffsetDateTime, time::OffsetDateTime);

impl Ca {
    pub fn new(common_name: &str) -> anyhow::Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().context("generating CA key")?;
        let cert = params.self_signed(&key).context("self-signing CA")?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// A CA from its certificate and private key (PEM; PKCS#8 or SEC1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("parsing the CA private key")?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).context("parsing the CA certificate")?;
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA's private key (PEM), to hand to a suite that mints its own
    /// client certificates.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A client certificate as AWS KMS's: the name (e.g. [`kms_subject`])
    /// in the subject CN and in a SAN DNS entry, so that proxies matching
    /// either accept it.
    pub fn kms_client(&self, name: &str, validity: Option<Validity>) -> anyhow::Result<Issued> {
        self.client(name, &[name], validity)
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> anyhow::Result<Issued> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with subject CN `cn` and optional SAN DNS names.
    pub fn client(
        &self,
        cn: &str,
        sans: &[&str],
        validity: Option<Validity>,
    ) -> anyhow::Result<Issued> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some((from, to)) = validity {
            params.not_before = from;
            params.not_after = to;
        }
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<Issued> {
        let key = KeyPair::generate().context("generating key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing certificate")?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A validity window entirely in the past.
pub fn expired() -> Validity {
    (
        rcgen::date_time_ymd(2000, 1, 1),
        rcgen::date_time_ymd(2001, 1, 1),
    )
}

/// A self-signed client certificate (no CA at all), `cn` in the CN and a
/// SAN DNS entry like [`Ca::kms_client`].
pub fn self_signed_client(cn: &str) -> anyhow::Result<Issued> {
    let mut params = CertificateParams::new(vec![cn.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().context("generating key")?;
    let cert = params.self_signed(&key).context("self-signing")?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Whom a client trusts for the server's certificate.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// The CA certificates of this PEM bundle.
    CaPem(&'a [u8]),
    /// Any certificate (signatures are still checked): the conformance
    /// suite's `--insecure`.
    AnyCertificate,
}

/// The one rustls client configuration of the workspace's tests and of
/// the conformance suite: aws-lc-rs, TLS 1.3 and 1.2, `trust`, optionally
/// a client certificate and key (PEM), and `alpn`. (The production
/// clients, xks-client and kmip, build theirs from their own typed
/// configuration.)
pub fn client_config(
    trust: Trust<'_>,
    identity: Option<(&[u8], &[u8])>,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match trust {
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider))),
        Trust::CaPem(pem) => {
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
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Accepts any server certificate; handshake signatures are still checked.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_client_certificates_name_the_subject_in_cn_and_san() {
        let ca = Ca::new("test CA").unwrap();
        let c = ca.kms_client(&kms_subject("us-east-1"), None).unwrap();
        let der = pem_der(&c.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "CN=cks.kms.us-east-1.amazonaws.com"
        );
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", san.value.general_names),
            r#"[DNSName("cks.kms.us-east-1.amazonaws.com")]"#
        );
        // A CA reloaded from its PEM files signs certificates that chain
        // to the same certificate.
        let loaded = Ca::from_pem(&ca.cert_pem(), ca.key_pem()).unwrap();
        let again = loaded.kms_client("x.example", Some(expired())).unwrap();
        let der2 = pem_der(&again.cert_pem);
        let (_, c2) = x509_parser::parse_x509_certificate(&der2).unwrap();
        assert_eq!(c2.issuer(), cert.issuer());
        assert!(!c2.validity().is_valid());
        assert!(!format!("{again:?} {loaded:?}").contains("PRIVATE"));
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    }
}
