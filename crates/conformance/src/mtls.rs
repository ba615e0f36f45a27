//! Client certificates for the mTLS cases, minted with the workspace's one
//! test PKI (`dev-pki`): a CA given as PEM files (the one the proxy trusts
//! for client certificates), a freshly generated untrusted CA, self-signed
//! and expired certificates. Every certificate carries its name as AWS
//! KMS's does: in the subject CN and in a SAN DNS entry.

use anyhow::Context;
use zeroize::Zeroizing;

pub use dev_pki::kms_subject;

/// A certificate (chain) and its private key, both PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({} bytes of certificate, <key redacted>)",
            self.cert_pem.len()
        )
    }
}

impl From<dev_pki::Issued> for Identity {
    fn from(i: dev_pki::Issued) -> Identity {
        Identity {
            cert_pem: i.cert_pem,
            key_pem: Zeroizing::new(i.key_pem),
        }
    }
}

/// A certificate authority that can sign client certificates.
#[derive(Debug)]
pub struct Ca(dev_pki::Ca);

impl Ca {
    /// A new self-signed CA.
    pub fn generate(common_name: &str) -> anyhow::Result<Ca> {
        dev_pki::Ca::new(common_name).map(Ca)
    }

    /// A CA from its certificate and private key (PEM, PKCS#8 or SEC1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        dev_pki::Ca::from_pem(cert_pem, key_pem).map(Ca)
    }

    pub fn cert_pem(&self) -> String {
        self.0.cert_pem()
    }

    /// The CA's own certificate and key (to hand to a proxy in tests).
    pub fn identity(&self) -> Identity {
        Identity {
            cert_pem: self.0.cert_pem(),
            key_pem: Zeroizing::new(self.0.key_pem().to_owned()),
        }
    }

    /// A client certificate for `name` (CN and SAN DNS, as KMS's);
    /// `expired` puts its validity in 2000-2001.
    pub fn client(&self, name: &str, expired: bool) -> anyhow::Result<Identity> {
        self.0
            .kms_client(name, expired.then(dev_pki::expired))
            .context("minting a client certificate")
            .map(Identity::from)
    }

    /// A server certificate for `names` (DNS names or IP addresses), for
    /// tests that stand up a proxy.
    pub fn server(&self, names: &[&str]) -> anyhow::Result<Identity> {
        self.0.server(names).map(Identity::from)
    }
}

/// A self-signed client certificate (no CA at all).
pub fn self_signed(name: &str) -> anyhow::Result<Identity> {
    dev_pki::self_signed_client(name).map(Identity::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    /// Minting from a CA loaded from PEM yields certificates that chain to
    /// it, as webpki (what rustls-based proxies use) checks.
    #[test]
    fn minted_certificates_chain_to_a_pem_loaded_ca() {
        let generated = Ca::generate("xks-conformance test CA").unwrap();
        let id = generated.identity();
        let loaded = Ca::from_pem(&id.cert_pem, &id.key_pem).unwrap();
        let client = loaded.client(&kms_subject("us-east-1"), false).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&generated.cert_pem())).unwrap();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(provider),
        )
        .build()
        .unwrap();
        let now = rustls_pki_types::UnixTime::now();
        assert!(verifier
            .verify_client_cert(&der(&client.cert_pem), &[], now)
            .is_ok());
        let expired = loaded.client(&kms_subject("us-east-1"), true).unwrap();
        assert!(verifier
            .verify_client_cert(&der(&expired.cert_pem), &[], now)
            .is_err());
        let other = Ca::generate("other").unwrap().client("x", false).unwrap();
        assert!(verifier
            .verify_client_cert(&der(&other.cert_pem), &[], now)
            .is_err());
        let own = self_signed(&kms_subject("us-east-1")).unwrap();
        assert!(verifier
            .verify_client_cert(&der(&own.cert_pem), &[], now)
            .is_err());
        assert!(!format!("{:?}", client).contains("PRIVATE"));
        // The name is in a SAN DNS entry too, as in KMS's certificate.
        let client_der = der(&client.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(client_der.as_ref()).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(format!("{:?}", san.value).contains("cks.kms.us-east-1.amazonaws.com"));
    }
}
