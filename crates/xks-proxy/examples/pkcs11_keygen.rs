//! Generates AES-256 keys on a PKCS#11 token (C_GenerateKey with
//! CKM_AES_KEY_GEN; persistent, sensitive, non-extractable), for
//! benchmarks and trials with SoftHSM2. Real HSMs are usually provisioned
//! with the vendor's tools.
//!
//! ```text
//! XKS_PKCS11_PIN=... cargo run --example pkcs11_keygen -- MODULE TOKEN_LABEL KEY_LABEL...
//! ```
use std::path::PathBuf;
use xks_proxy::backend::pkcs11::provision::{generate_key, NewKey};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: pkcs11_keygen MODULE TOKEN_LABEL KEY_LABEL... (user PIN in XKS_PKCS11_PIN)";
    let module = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!(usage))?);
    let token = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let pin = std::env::var("XKS_PKCS11_PIN").map_err(|_| anyhow::anyhow!(usage))?;
    let labels: Vec<String> = args.collect();
    if labels.is_empty() {
        anyhow::bail!(usage);
    }
    for label in &labels {
        generate_key(&module, &token, &pin, &NewKey::aes256(label))?;
        println!("generated AES-256 key {label:?} on token {token:?}");
    }
    Ok(())
}
