//! `[backends.<name>]` with `type = "pkcs11"`: typed settings and their
//! validation (everything that can be checked without loading the module).

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Settings of one PKCS#11 token used as a key manager.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the vendor's PKCS#11 shared library.
    pub module: PathBuf,
    /// CKA_LABEL of the token (slot ids change across reboots; labels do not).
    pub token_label: String,
    /// File holding the user (CKU_USER) PIN; surrounding whitespace is ignored.
    pub user_pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    pub user_pin_env: Option<String>,
    /// How an externalKeyId names a key.
    #[serde(default)]
    pub key_lookup: KeyLookup,
    /// How ENABLED/DISABLED is decided.
    #[serde(default)]
    pub key_status: KeyStatusSource,
    /// With `key_status = "allow_list"`: the keys that are ENABLED.
    pub enabled_keys: Option<Vec<String>>,
    /// Key used by the deep health check (never addressable by requests
    /// unless a key store lists it explicitly).
    pub health_key_label: String,
    /// Where AES-GCM IVs come from.
    #[serde(default)]
    pub iv_mode: IvMode,
    /// IV length in bytes: 12 (the GCM default) or 16 (e.g. Thales Luna
    /// in FIPS mode appends a 16-byte IV).
    #[serde(default = "default_iv_len")]
    pub iv_len: usize,
    /// Sessions kept open (and concurrent operations) on the token.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Longest wait for a free session before 503 DependencyTimeoutException.
    #[serde(default = "default_session_wait")]
    pub session_wait_ms: u64,
    /// Requests allowed to wait for a session at once; more are refused at once (503).
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    /// How long key handles and attributes are reused before the token is
    /// asked again (0: ask on every request).
    #[serde(default = "default_cache_ms")]
    pub key_cache_ms: u64,
    /// Shortest interval between two module re-initialisations after device errors.
    #[serde(default = "default_reinit_backoff")]
    pub reinit_backoff_ms: u64,
}

/// How an externalKeyId maps to a key object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLookup {
    /// CKA_LABEL equals the externalKeyId.
    #[default]
    Label,
    /// CKA_ID equals the externalKeyId's bytes.
    Id,
    /// CKA_ID equals the bytes the externalKeyId spells in hex.
    IdHex,
}

/// Where a key's ENABLED/DISABLED status comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusSource {
    /// DISABLED when CKA_ENCRYPT and CKA_DECRYPT are both false.
    #[default]
    Attributes,
    /// ENABLED only when listed in `enabled_keys`.
    AllowList,
}

/// IV handling of CKM_AES_GCM: HSMs differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IvMode {
    /// The proxy draws a 96-bit IV from the operating system's RNG and
    /// passes it in CK_GCM_PARAMS (SoftHSM, Thales Luna, most HSMs).
    #[default]
    ProxyOsRng,
    /// The proxy draws the IV from the token's RNG (C_GenerateRandom).
    ProxyHsmRng,
    /// The HSM generates the IV and writes it into CK_GCM_PARAMS.pIv
    /// (AWS CloudHSM; Luna with an IV-generating policy).
    HsmParams,
    /// The HSM generates the IV and appends it to the output:
    /// ciphertext ‖ tag ‖ IV (Thales Luna in FIPS mode, with `iv_len = 16`).
    HsmAppended,
}

fn default_iv_len() -> usize {
    12
}
fn default_max_sessions() -> usize {
    8
}
fn default_session_wait() -> u64 {
    150
}
fn default_max_waiting() -> usize {
    256
}
fn default_cache_ms() -> u64 {
    2000
}
fn default_reinit_backoff() -> u64 {
    1000
}

impl Pkcs11Config {
    /// Makes relative paths relative to the configuration file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        // The module path is left alone when it is a bare file name, so
        // that the dynamic loader's search path applies.
        if self.module.is_relative() && self.module.components().count() > 1 {
            self.module = base.join(&self.module);
        }
        if let Some(f) = &mut self.user_pin_file {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
    }

    /// Checks what can be checked without touching the module.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        let at = format!("[backends.{name}]");
        if self.module.as_os_str().is_empty() {
            bail!("{at} module must be the path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)");
        }
        if self.token_label.is_empty() || self.token_label.len() > 32 {
            bail!(
                "{at} token_label must be 1 to 32 characters (PKCS#11 token labels are 32 bytes)"
            );
        }
        match (&self.user_pin_file, &self.user_pin_env) {
            (Some(_), Some(_)) => bail!("{at} set user_pin_file or user_pin_env, not both"),
            (None, None) => bail!("{at} needs the user PIN: set user_pin_file or user_pin_env"),
            _ => {}
        }
        match (self.key_status, &self.enabled_keys) {
            (KeyStatusSource::AllowList, None) => {
                bail!("{at} key_status = \"allow_list\" needs enabled_keys = [...]")
            }
            (KeyStatusSource::Attributes, Some(_)) => {
                bail!("{at} enabled_keys is only used with key_status = \"allow_list\"")
            }
            _ => {}
        }
        for k in self.enabled_keys.iter().flatten() {
            k.parse::<xks_wire::ExternalKeyId>()
                .with_context(|| format!("{at} enabled_keys entry {k:?}"))?;
            self.key_lookup
                .object_id(k)
                .with_context(|| format!("{at} enabled_keys entry {k:?}"))?;
        }
        if self.health_key_label.is_empty() {
            bail!("{at} health_key_label must name a dedicated AES-256 key for health checks");
        }
        if !super::gcm::IV_LENS.contains(&self.iv_len) {
            bail!("{at} iv_len must be 12 or 16 (the IV lengths XKS carries)");
        }
        if self.max_sessions == 0 || self.max_sessions > 1024 {
            bail!("{at} max_sessions must be between 1 and 1024");
        }
        if self.session_wait_ms == 0 {
            bail!("{at} session_wait_ms must be positive");
        }
        if self.reinit_backoff_ms == 0 {
            bail!("{at} reinit_backoff_ms must be positive");
        }
        Ok(())
    }

    /// Reads the user PIN from wherever the configuration says it is.
    pub fn user_pin(&self) -> anyhow::Result<Zeroizing<String>> {
        let pin = if let Some(f) = &self.user_pin_file {
            let raw = Zeroizing::new(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading user PIN file {}", f.display()))?,
            );
            Zeroizing::new(raw.trim().to_owned())
        } else if let Some(var) = &self.user_pin_env {
            Zeroizing::new(
                std::env::var(var)
                    .with_context(|| format!("user PIN environment variable {var} is not set"))?,
            )
        } else {
            bail!("no user PIN source configured");
        };
        if pin.is_empty() {
            bail!("the user PIN is empty");
        }
        Ok(pin)
    }
}

impl KeyLookup {
    /// The bytes searched for (CKA_LABEL or CKA_ID) for an externalKeyId.
    pub fn object_id(self, key: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            KeyLookup::Label | KeyLookup::Id => Ok(key.as_bytes().to_vec()),
            KeyLookup::IdHex => hex::decode(key).map_err(|_| {
                anyhow::anyhow!(
                    "with key_lookup = \"id_hex\" a key id must be an even number of hex digits"
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Pkcs11Config {
        toml::from_str(
            r#"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "xks"
user_pin_env = "PIN"
health_key_label = "xks-health"
"#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_errors() {
        let c = base();
        c.validate("hsm").unwrap();
        assert_eq!(c.iv_mode, IvMode::ProxyOsRng);
        assert_eq!(c.key_lookup, KeyLookup::Label);
        assert_eq!(c.key_status, KeyStatusSource::Attributes);
        assert_eq!(c.max_sessions, 8);

        let err = |f: &dyn Fn(&mut Pkcs11Config)| {
            let mut c = base();
            f(&mut c);
            format!("{:#}", c.validate("hsm").unwrap_err())
        };
        assert!(err(&|c| c.user_pin_env = None).contains("needs the user PIN"));
        assert!(err(&|c| c.user_pin_file = Some("pin".into())).contains("not both"));
        assert!(err(&|c| c.key_status = KeyStatusSource::AllowList).contains("enabled_keys"));
        assert!(err(&|c| c.enabled_keys = Some(vec![])).contains("only used with"));
        assert!(err(&|c| c.token_label = "x".repeat(33)).contains("token_label"));
        assert!(err(&|c| c.max_sessions = 0).contains("max_sessions"));
        assert!(err(&|c| c.iv_len = 8).contains("iv_len must be 12 or 16"));
        assert!(err(&|c| c.health_key_label.clear()).contains("health_key_label"));
        assert!(err(&|c| {
            c.key_status = KeyStatusSource::AllowList;
            c.key_lookup = KeyLookup::IdHex;
            c.enabled_keys = Some(vec!["abc".into()]);
        })
        .contains("hex"));
        let unknown: Result<Pkcs11Config, _> = toml::from_str("module = \"m\"\nslot = 1\n");
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let bad_mode: Result<Pkcs11Config, _> = toml::from_str(
            "module = \"m\"\ntoken_label = \"t\"\nhealth_key_label = \"h\"\niv_mode = \"random\"\n",
        );
        assert!(bad_mode.unwrap_err().to_string().contains("proxy_os_rng"));
    }

    #[test]
    fn whole_config_with_a_pkcs11_backend() {
        let text = r#"
[server]
listen = "127.0.0.1:0"
plain_http = true

[backends.hsm]
type = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "xks"
user_pin_file = "pin.txt"
health_key_label = "xks-health"
iv_mode = "hsm_params"
key_status = "allow_list"
enabled_keys = ["k1"]

[[key_stores]]
name = "a"
uri_path = "/a/kms/xks/v1"
region = "us-east-1"
backend = "hsm"
[[key_stores.credentials]]
access_key_id = "AKIAI2SFODNN7EXAMPLE"
secret_access_key = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
"#;
        let cfg = crate::config::Config::parse(text).unwrap();
        cfg.validate().unwrap();
        let crate::config::BackendConfig::Pkcs11(p) = &cfg.backends["hsm"] else {
            panic!("not a pkcs11 backend");
        };
        assert_eq!(p.iv_mode, IvMode::HsmParams);
        let typo = text.replace("token_label", "token_name");
        let e = crate::config::Config::parse(&typo).unwrap_err().to_string();
        assert!(e.contains("unknown field `token_name`"), "{e}");
        let no_pin = text.replace("user_pin_file = \"pin.txt\"\n", "");
        let e = format!(
            "{:#}",
            crate::config::Config::parse(&no_pin)
                .unwrap()
                .validate()
                .unwrap_err()
        );
        assert!(e.contains("[backends.hsm] needs the user PIN"), "{e}");
    }

    #[test]
    fn id_hex_lookup() {
        assert_eq!(
            KeyLookup::IdHex.object_id("0aFF").unwrap(),
            vec![0x0a, 0xff]
        );
        assert_eq!(KeyLookup::Id.object_id("k1").unwrap(), b"k1".to_vec());
        assert!(KeyLookup::IdHex.object_id("0g").is_err());
    }

    #[test]
    fn relative_paths() {
        let mut c = base();
        c.module = "libvendor.so".into();
        c.user_pin_file = Some("secrets/pin".into());
        c.resolve_paths(Path::new("/etc/xks"));
        assert_eq!(c.module, PathBuf::from("libvendor.so"));
        assert_eq!(c.user_pin_file, Some(PathBuf::from("/etc/xks/secrets/pin")));
        c.module = "lib/libvendor.so".into();
        c.resolve_paths(Path::new("/etc/xks"));
        assert_eq!(c.module, PathBuf::from("/etc/xks/lib/libvendor.so"));
    }
}
