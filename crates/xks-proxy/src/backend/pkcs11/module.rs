//! A loaded PKCS#11 library and the classification of its return codes.
//!
//! A library may be C_Initialize'd once per process, so every backend (and
//! the provisioning helpers) naming the same path shares one [`Module`].
//! After a device error the module is finalized and initialized again; a
//! generation number tells every token user that its sessions, slot ids
//! and object handles from before are void.

use crate::backend::BackendError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// One PKCS#11 library, initialized with OS locking (the library must be
/// thread-safe: sessions are used from several threads at once).
pub struct Module {
    pub path: PathBuf,
    state: RwLock<ModState>,
    generation: AtomicU64,
    last_reinit: Mutex<Option<Instant>>,
}

/// The live context. Operations hold a read guard for their whole call,
/// re-initialisation takes the write lock, so it never pulls a context away
/// from under a running call.
pub struct ModState {
    pub ctx: Pkcs11,
    pub generation: u64,
}

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Module {
    /// Loads and initializes the library at `path`, or returns the instance
    /// already loaded in this process.
    pub fn load(path: &Path) -> anyhow::Result<Arc<Module>> {
        let mut map = MODULES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = map.get(path) {
            return Ok(Arc::clone(m));
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot load PKCS#11 module {}: {}",
                path.display(),
                describe(&e)
            )
        })?;
        initialize(&ctx).map_err(|e| {
            anyhow::anyhow!(
                "PKCS#11 module {} failed to initialize: {}",
                path.display(),
                describe(&e)
            )
        })?;
        let m = Arc::new(Module {
            path: path.to_path_buf(),
            state: RwLock::new(ModState { ctx, generation: 0 }),
            generation: AtomicU64::new(0),
            last_reinit: Mutex::new(None),
        });
        map.insert(path.to_path_buf(), Arc::clone(&m));
        Ok(m)
    }

    pub fn state(&self) -> RwLockReadGuard<'_, ModState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current generation, without taking the lock.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Finalizes and initializes the library again, unless someone already
    /// did since generation `seen`, or the last attempt was less than
    /// `backoff` ago (a dead device is not hammered).
    pub fn reinit(&self, seen: u64, backoff: Duration) -> Result<(), String> {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if st.generation != seen {
            return Ok(());
        }
        {
            let mut last = self
                .last_reinit
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = *last {
                if at.elapsed() < backoff {
                    return Err(format!(
                        "module re-initialised {} ms ago; not retrying yet",
                        at.elapsed().as_millis()
                    ));
                }
            }
            *last = Some(Instant::now());
        }
        tracing::warn!(module = %self.path.display(), "re-initialising the PKCS#11 module after a device error");
        if let Err(e) = st.ctx.clone().finalize() {
            tracing::info!(error = %describe(&e), "C_Finalize before re-initialisation failed (continuing)");
        }
        // Everything from before is void even if C_Initialize fails now.
        st.generation += 1;
        self.generation.store(st.generation, Ordering::Release);
        initialize(&st.ctx).map_err(|e| format!("C_Initialize failed: {}", describe(&e)))
    }

    /// Test support: finalizes the library behind every user's back, as a
    /// device reset would, without telling anyone.
    #[doc(hidden)]
    pub fn finalize_behind_users_backs(&self) {
        let st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let _ = st.ctx.clone().finalize();
    }
}

/// `CKR_KEY_FUNCTION_NOT_PERMITTED` for `RvError::KeyFunctionNotPermitted`.
pub fn ckr_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED(0x{code:08x})"),
        RvError::UnknownErrorCode(code) => format!("CKR_UNKNOWN(0x{code:08x})"),
        other => {
            let camel = format!("{other:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            out.push_str("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

fn function_name(f: &Function) -> String {
    format!("C_{f:?}")
}

/// A one-line description naming the function and the CKR code, never any
/// data.
pub fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, f) => format!("{} returned {}", function_name(f), ckr_name(rv)),
        CkError::LibraryLoading(e) => format!("library loading failed: {e}"),
        other => other.to_string(),
    }
}

/// What a failed call means for the request, the session and the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request fails with this error; the session is fine.
    Request(BackendError),
    /// The session is unusable: close it, retry on another.
    Session(String),
    /// The device or library is in trouble: re-initialise, retry once.
    Device(String),
}

/// What the call was doing, for the mapping of codes whose meaning depends
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Find,
    Encrypt,
    Decrypt,
    Other,
}

/// Maps a PKCS#11 failure to what it means.
pub fn classify(op: Op, e: &CkError) -> Fault {
    let detail = describe(e);
    let CkError::Pkcs11(rv, _) = e else {
        return Fault::Request(BackendError::Internal(detail));
    };
    use RvError::*;
    match rv {
        KeyFunctionNotPermitted => Fault::Request(BackendError::InvalidKeyUsage),
        KeyHandleInvalid | ObjectHandleInvalid => Fault::Request(BackendError::KeyNotFound),
        // A bad tag (SoftHSM, most HSMs), or a ciphertext the mechanism
        // rejects outright.
        EncryptedDataInvalid | EncryptedDataLenRange | SignatureInvalid if op == Op::Decrypt => {
            Fault::Request(BackendError::InvalidCiphertext("authentication failed"))
        }
        MechanismParamInvalid | DataInvalid | DataLenRange if op == Op::Decrypt => Fault::Request(
            BackendError::InvalidCiphertext("the HSM rejected the IV, tag or ciphertext"),
        ),
        SessionHandleInvalid
        | SessionClosed
        | OperationActive
        | OperationNotInitialized
        | UserNotLoggedIn => Fault::Session(detail),
        // Out of sessions or memory: the token is overloaded, not broken.
        SessionCount | HostMemory => Fault::Request(BackendError::Unavailable(detail)),
        DeviceError
        | DeviceRemoved
        | DeviceMemory
        | TokenNotPresent
        | TokenNotRecognized
        | CryptokiNotInitialized
        | GeneralError
        | SlotIdInvalid => Fault::Device(detail),
        _ => Fault::Request(BackendError::Internal(detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(
            ckr_name(&RvError::KeyFunctionNotPermitted),
            "CKR_KEY_FUNCTION_NOT_PERMITTED"
        );
        assert_eq!(
            ckr_name(&RvError::EncryptedDataInvalid),
            "CKR_ENCRYPTED_DATA_INVALID"
        );
        assert_eq!(ckr_name(&RvError::DeviceError), "CKR_DEVICE_ERROR");
        assert_eq!(
            ckr_name(&RvError::VendorDefined(0x8000_0001)),
            "CKR_VENDOR_DEFINED(0x80000001)"
        );
        let e = CkError::Pkcs11(RvError::PinIncorrect, Function::Login);
        assert_eq!(describe(&e), "C_Login returned CKR_PIN_INCORRECT");
    }

    #[test]
    fn precise_mapping() {
        let f = |rv, op| classify(op, &CkError::Pkcs11(rv, Function::Encrypt));
        assert_eq!(
            f(RvError::KeyFunctionNotPermitted, Op::Encrypt),
            Fault::Request(BackendError::InvalidKeyUsage)
        );
        assert_eq!(
            f(RvError::KeyHandleInvalid, Op::Encrypt),
            Fault::Request(BackendError::KeyNotFound)
        );
        assert!(matches!(
            f(RvError::EncryptedDataInvalid, Op::Decrypt),
            Fault::Request(BackendError::InvalidCiphertext(_))
        ));
        // The same code outside a decryption is not the caller's fault.
        assert!(matches!(
            f(RvError::DataLenRange, Op::Encrypt),
            Fault::Request(BackendError::Internal(_))
        ));
        assert!(
            matches!(f(RvError::DeviceError, Op::Encrypt), Fault::Device(d) if d.contains("CKR_DEVICE_ERROR"))
        );
        assert!(matches!(
            f(RvError::CryptokiNotInitialized, Op::Find),
            Fault::Device(_)
        ));
        assert!(matches!(
            f(RvError::SessionHandleInvalid, Op::Other),
            Fault::Session(_)
        ));
        assert!(matches!(
            f(RvError::SessionCount, Op::Other),
            Fault::Request(BackendError::Unavailable(_))
        ));
        assert!(matches!(
            classify(Op::Other, &CkError::NotSupported),
            Fault::Request(BackendError::Internal(_))
        ));
    }
}
