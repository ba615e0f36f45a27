//! Token and key provisioning through the same loaded module: used by the
//! tests (SoftHSM2 tokens made at test time) and usable by operators of
//! tokens that allow it. Real HSMs are usually provisioned with their
//! vendor's tools; the proxy only needs the keys to exist.

use super::module::{describe, Module};
use super::pool::find_slot;
use anyhow::{anyhow, bail, Context};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::Path;

/// A secret key to create.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub label: &'a str,
    pub id: Option<&'a [u8]>,
    /// Bytes (32 for AES-256; others exist only to test refusals).
    pub value_len: u64,
    pub encrypt: bool,
    pub decrypt: bool,
}

impl<'a> NewKey<'a> {
    /// An AES-256 key allowed to encrypt and decrypt.
    pub fn aes256(label: &'a str) -> Self {
        NewKey {
            label,
            id: None,
            value_len: 32,
            encrypt: true,
            decrypt: true,
        }
    }

    pub fn usage(mut self, encrypt: bool, decrypt: bool) -> Self {
        self.encrypt = encrypt;
        self.decrypt = decrypt;
        self
    }
}

fn ck(e: cryptoki::error::Error) -> anyhow::Error {
    anyhow!("{}", describe(&e))
}

/// Initializes the first uninitialized token of the module with `label`,
/// the SO PIN and the user PIN (SoftHSM2 always offers one such slot).
pub fn init_token(module: &Path, label: &str, so_pin: &str, user_pin: &str) -> anyhow::Result<()> {
    // Two initializations at once would pick the same free slot.
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = Module::load(module)?;
    let st = m.state();
    let mut free = None;
    for slot in st.ctx.get_slots_with_token().map_err(ck)? {
        let info = st.ctx.get_token_info(slot).map_err(ck)?;
        if info.token_initialized() {
            if info.label().trim_end() == label {
                bail!("a token labelled {label:?} already exists");
            }
        } else if free.is_none() {
            free = Some(slot);
        }
    }
    let slot =
        free.ok_or_else(|| anyhow!("no uninitialized token slot in {}", module.display()))?;
    let so = AuthPin::from(so_pin.to_owned());
    st.ctx
        .init_token(slot, &so, label)
        .map_err(ck)
        .context("C_InitToken")?;
    let s = st.ctx.open_rw_session(slot).map_err(ck)?;
    s.login(UserType::So, Some(&so)).map_err(ck)?;
    s.init_pin(&AuthPin::from(user_pin.to_owned()))
        .map_err(ck)
        .context("C_InitPIN")?;
    s.logout().map_err(ck)?;
    Ok(())
}

fn user_session(
    module: &Path,
    token: &str,
    user_pin: &str,
    f: impl FnOnce(&Session) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let m = Module::load(module)?;
    let st = m.state();
    let slot = find_slot(&st, token).map_err(|f| anyhow!("{f:?}"))?;
    let s = st.ctx.open_rw_session(slot).map_err(ck)?;
    match s.login(UserType::User, Some(&AuthPin::from(user_pin.to_owned()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(ck(e)).context("C_Login"),
    }
    f(&s)
}

fn find_label(s: &Session, label: &str) -> anyhow::Result<ObjectHandle> {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck)?;
    match found.as_slice() {
        [h] => Ok(*h),
        [] => bail!("no secret key labelled {label:?}"),
        _ => bail!("several secret keys labelled {label:?}"),
    }
}

/// Generates a persistent, sensitive, non-extractable AES key on the token
/// (C_GenerateKey with CKM_AES_KEY_GEN).
pub fn generate_key(
    module: &Path,
    token: &str,
    user_pin: &str,
    key: &NewKey<'_>,
) -> anyhow::Result<()> {
    user_session(module, token, user_pin, |s| {
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::ValueLen(key.value_len.into()),
            Attribute::Label(key.label.as_bytes().to_vec()),
            Attribute::Encrypt(key.encrypt),
            Attribute::Decrypt(key.decrypt),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
        ];
        if let Some(id) = key.id {
            template.push(Attribute::Id(id.to_vec()));
        }
        s.generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(ck)
            .with_context(|| format!("generating key {:?}", key.label))?;
        Ok(())
    })
}

/// Creates a generic secret (not AES) labelled `label`: for tests of the
/// refusal of non-AES objects.
pub fn generate_generic_secret(
    module: &Path,
    token: &str,
    user_pin: &str,
    label: &str,
) -> anyhow::Result<()> {
    user_session(module, token, user_pin, |s| {
        s.generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::ValueLen(32u64.into()),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .map_err(ck)?;
        Ok(())
    })
}

/// Sets CKA_ENCRYPT and CKA_DECRYPT of the key labelled `label`
/// (both false disables it under `key_status = "attributes"`).
pub fn set_usage(
    module: &Path,
    token: &str,
    user_pin: &str,
    label: &str,
    encrypt: bool,
    decrypt: bool,
) -> anyhow::Result<()> {
    user_session(module, token, user_pin, |s| {
        let h = find_label(s, label)?;
        s.update_attributes(
            h,
            &[Attribute::Encrypt(encrypt), Attribute::Decrypt(decrypt)],
        )
        .map_err(ck)
        .context("C_SetAttributeValue")?;
        Ok(())
    })
}

/// Destroys the key labelled `label`.
pub fn destroy_key(module: &Path, token: &str, user_pin: &str, label: &str) -> anyhow::Result<()> {
    user_session(module, token, user_pin, |s| {
        let h = find_label(s, label)?;
        s.destroy_object(h).map_err(ck)?;
        Ok(())
    })
}

/// SoftHSM2 set up at run time, for tests and benchmarks: one token
/// directory per process (SoftHSM reads `SOFTHSM2_CONF` at C_Initialize,
/// so the variable is set before the module is first loaded), any number
/// of tokens in it.
pub mod softhsm {
    use super::{generate_key, init_token, NewKey};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Debian's `softhsm2` package; `SOFTHSM2_MODULE` overrides it.
    pub const DEBIAN_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

    pub struct SoftHsm {
        pub dir: PathBuf,
        pub tokens: PathBuf,
        pub module: PathBuf,
        next: AtomicUsize,
    }

    /// A fresh token: label and user PIN.
    pub struct TestToken {
        pub label: String,
        pub user_pin: String,
    }

    static SHARED: OnceLock<Result<SoftHsm, String>> = OnceLock::new();

    /// This process's SoftHSM2. Fails with a clear message when the
    /// module is not installed (`apt-get install softhsm2`).
    pub fn shared() -> anyhow::Result<&'static SoftHsm> {
        SHARED
            .get_or_init(|| {
                let module = std::env::var_os("SOFTHSM2_MODULE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(DEBIAN_MODULE));
                if !module.exists() {
                    return Err(format!(
                        "SoftHSM2 module {} not found: install the softhsm2 package (scripts/test.sh does)",
                        module.display()
                    ));
                }
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let dir = std::env::temp_dir()
                    .join(format!("xks-softhsm-{}-{nanos}", std::process::id()));
                let tokens = dir.join("tokens");
                std::fs::create_dir_all(&tokens).map_err(|e| e.to_string())?;
                let conf = dir.join("softhsm2.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                        tokens.display()
                    ),
                )
                .map_err(|e| e.to_string())?;
                std::env::set_var("SOFTHSM2_CONF", &conf);
                Ok(SoftHsm {
                    dir,
                    tokens,
                    module,
                    next: AtomicUsize::new(0),
                })
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    impl SoftHsm {
        /// Initializes a new token (label `<prefix>-<n>`) with random PINs.
        pub fn new_token(&self, prefix: &str) -> anyhow::Result<TestToken> {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let label = format!("{prefix}-{n}");
            let pin = |tag: &str| format!("{tag}-{}-{n}", std::process::id());
            let token = TestToken {
                label,
                user_pin: pin("user"),
            };
            init_token(&self.module, &token.label, &pin("so"), &token.user_pin)?;
            Ok(token)
        }

        /// Generates a key on `token`.
        pub fn key(&self, token: &TestToken, key: &NewKey<'_>) -> anyhow::Result<()> {
            generate_key(&self.module, &token.label, &token.user_pin, key)
        }
    }
}
