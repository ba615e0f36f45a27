//! Client certificates for the mTLS cases (rcgen, ECDSA P-256): a CA given
//! as PEM files (the one the proxy trusts for client certificates), a
//! freshly generated untrusted CA, self-signed and expired certificates.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use zeroize::Zeroizing;

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

/// A certificate authority that can sign client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca(<key redacted>)")
    }
}

/// The subject AWS KMS presents in a region: `cks.kms.<region>.amazonaws.com`.
pub fn kms_subject(region: &str) -> String {
    format!("cks.kms.{region}.amazonaws.com")
}

impl Ca {
    /// A new self-signed CA.
    pub fn generate(common_name: &str) -> anyhow::Result<Ca> {
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
        let key = KeyPair::generate().context("generating a CA key")?;
        let cert = params.self_signed(&key).context("self-signing the CA")?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// A CA from its certificate and private key (PEM, PKCS#8 or SEC1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("parsing the CA private key")?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).context("parsing the CA certificate")?;
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: Zeroizing::new(key_pem.to_owned()),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's own certificate and key (to hand to a proxy in tests).
    pub fn identity(&self) -> Identity {
        Identity {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }

    /// A client certificate with subject CN `cn`; `expired` puts its
    /// validity in 2000-2001.
    pub fn client(&self, cn: &str, expired: bool) -> anyhow::Result<Identity> {
        let params = client_params(cn, expired)?;
        let key = KeyPair::generate().context("generating a client key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing the client certificate")?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses), for
    /// tests that stand up a proxy.
    pub fn server(&self, names: &[&str]) -> anyhow::Result<Identity> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().context("generating a server key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing the server certificate")?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }
}

fn client_params(cn: &str, expired: bool) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    Ok(params)
}

/// A self-signed client certificate (no CA at all).
pub fn self_signed(cn: &str) -> anyhow::Result<Identity> {
    let params = client_params(cn, false)?;
    let key = KeyPair::generate().context("generating a client key")?;
    let cert = params.self_signed(&key).context("self-signing")?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
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
        roots.add(der(generated.cert_pem())).unwrap();
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
    }
}
