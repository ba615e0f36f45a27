//! Client TLS settings for talking to a proxy under test.

use anyhow::Context;
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

/// Like [`client_config`], from PEM bytes: ALPN http/1.1 only. Built by
/// `dev_pki::client_config`, the workspace's one test/suite builder.
pub fn client_config_pem(
    trust: &ServerTrust,
    identity: Option<(&[u8], &[u8])>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let trust = match trust {
        ServerTrust::Insecure => dev_pki::Trust::AnyCertificate,
        ServerTrust::CaPem(pem) => dev_pki::Trust::CaPem(pem),
    };
    dev_pki::client_config(trust, identity, &[b"http/1.1"])
}
