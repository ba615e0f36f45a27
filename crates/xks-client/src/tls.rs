//! The rustls client configuration: aws-lc-rs provider, the configured CAs
//! only, optional client certificate, ALPN h2 then http/1.1.

use crate::config::{ConfigError, XksClientConfig};
use rustls::crypto::aws_lc_rs;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Builds the TLS configuration of one key store's client.
pub fn rustls_config(config: &XksClientConfig) -> Result<ClientConfig, ConfigError> {
    let cas = parse_certs(&config.trusted_ca_pem).map_err(ConfigError::TrustedCa)?;
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| ConfigError::TrustedCa(e.to_string()))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Http(e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match &config.client_identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = parse_certs(&id.cert_chain_pem).map_err(ConfigError::ClientIdentity)?;
            // The PEM error never carries key material.
            let key = PrivateKeyDer::from_pem_slice(&id.key_pem)
                .map_err(|e| ConfigError::ClientIdentity(format!("private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::ClientIdentity(e.to_string()))?
        }
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE in the PEM data".into());
    }
    Ok(certs)
}
