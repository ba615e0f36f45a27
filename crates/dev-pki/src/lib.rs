//! The workspace's one development and test PKI: a tiny certificate authority
//! (rcgen, ECDSA P-256) minting CA, server and client certificates for the
//! proxy demo, kms-core's `--demo-xks` stack and the tests.
#![forbid(unsafe_code)]

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;

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
