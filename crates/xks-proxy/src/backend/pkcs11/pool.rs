//! Sessions on one token: a bounded pool, one login per module
//! generation, bounded waits, and the retry-after-recovery loop.
//!
//! Concurrency is limited by a semaphore of `max_sessions` permits taken
//! before a blocking task is spawned, so a hung HSM ties up at most that many
//! threads; everyone else waits at most `session_wait_ms` (and at most
//! `max_waiting` of them at once) and gets 503 instead of piling up.

use super::module::{classify, describe, Fault, ModState, Module, Op};
use crate::backend::BackendError;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

pub struct PoolSettings {
    pub max_sessions: usize,
    pub wait: Duration,
    pub max_waiting: usize,
    pub reinit_backoff: Duration,
}

/// What the token says about itself (for health reports).
#[derive(Debug, Clone)]
pub struct TokenDescription {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
}

pub struct Token {
    pub module: Arc<Module>,
    pub label: String,
    pin: AuthPin,
    settings: PoolSettings,
    slot: Mutex<Option<(u64, Slot)>>,
    /// Generation in which the user is logged in.
    logged_in: Mutex<Option<u64>>,
    idle: Mutex<Vec<(u64, Session)>>,
    open_sessions: AtomicUsize,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct WaitGuard(Arc<AtomicUsize>);

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // Close the idle sessions of the live generation (older handles are
        // void). Closing the last one logs this application out.
        let generation = self.module.generation();
        let st = self.module.state();
        if st.generation == generation {
            for (g, s) in lock(&self.idle).drain(..) {
                if g == generation {
                    let _ = s.close();
                }
            }
        }
    }
}

/// Finds the slot holding the token labelled `label`.
pub fn find_slot(st: &ModState, label: &str) -> Result<Slot, Fault> {
    let slots = st
        .ctx
        .get_slots_with_token()
        .map_err(|e| classify(Op::Other, &e))?;
    let mut found = Vec::new();
    let mut labels = Vec::new();
    for slot in slots {
        let info = st
            .ctx
            .get_token_info(slot)
            .map_err(|e| classify(Op::Other, &e))?;
        let l = info.label().trim_end();
        if l == label {
            found.push(slot);
        } else if info.token_initialized() {
            labels.push(l.to_owned());
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Fault::Device(format!(
            "no token labelled {label:?} (tokens present: {labels:?})"
        ))),
        _ => Err(Fault::Request(BackendError::Internal(format!(
            "{} tokens are labelled {label:?}; labels must be unique",
            found.len()
        )))),
    }
}

impl Token {
    /// (max sessions, sessions in use, calls waiting) for metrics.
    pub fn usage(&self) -> (usize, usize, usize) {
        let max = self.settings.max_sessions;
        (
            max,
            max.saturating_sub(self.permits.available_permits()),
            self.waiting.load(Ordering::Relaxed),
        )
    }

    /// Finds the token and logs in once, so that a wrong label or PIN is
    /// reported at startup.
    pub fn open(
        module: Arc<Module>,
        label: &str,
        pin: Zeroizing<String>,
        settings: PoolSettings,
    ) -> anyhow::Result<(Token, TokenDescription)> {
        let token = Token {
            module,
            label: label.to_owned(),
            pin: AuthPin::from(pin.as_str().to_owned()),
            permits: Arc::new(Semaphore::new(settings.max_sessions)),
            settings,
            slot: Mutex::new(None),
            logged_in: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            open_sessions: AtomicUsize::new(0),
            waiting: Arc::new(AtomicUsize::new(0)),
        };
        let description = {
            let st = token.module.state();
            let fail = |f: Fault| match f {
                Fault::Request(e) => anyhow::anyhow!("{e}"),
                Fault::Session(d) | Fault::Device(d) => anyhow::anyhow!("{d}"),
            };
            let slot = token.slot(&st).map_err(fail)?;
            let info = st
                .ctx
                .get_token_info(slot)
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            let session = token.checkout(&st).map_err(|f| {
                fail(f).context(format!("logging in to token {label:?} with the user PIN"))
            })?;
            token.checkin(st.generation, session);
            TokenDescription {
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
                serial: info.serial_number().trim_end().to_owned(),
            }
        };
        Ok((token, description))
    }

    fn slot(&self, st: &ModState) -> Result<Slot, Fault> {
        let mut cached = lock(&self.slot);
        if let Some((g, s)) = *cached {
            if g == st.generation {
                return Ok(s);
            }
        }
        let s = find_slot(st, &self.label)?;
        *cached = Some((st.generation, s));
        Ok(s)
    }

    fn login(&self, session: &Session, generation: u64) -> Result<(), Fault> {
        let mut logged = lock(&self.logged_in);
        if *logged == Some(generation) {
            return Ok(());
        }
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                *logged = Some(generation);
                Ok(())
            }
            Err(
                e @ CkError::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinExpired
                    | RvError::PinLenRange,
                    _,
                ),
            ) => Err(Fault::Request(BackendError::Unavailable(describe(&e)))),
            Err(e) => Err(classify(Op::Other, &e)),
        }
    }

    /// A logged-in session of the current generation.
    fn checkout(&self, st: &ModState) -> Result<Session, Fault> {
        {
            let mut idle = lock(&self.idle);
            while let Some((g, s)) = idle.pop() {
                if g == st.generation {
                    return Ok(s);
                }
                // From before a re-initialisation: the handle is void, and
                // closing it could close someone else's new session.
                self.open_sessions.fetch_sub(1, Ordering::AcqRel);
                drop(s);
            }
        }
        let slot = self.slot(st)?;
        let session = st
            .ctx
            .open_ro_session_no_drop(slot)
            .map_err(|e| classify(Op::Other, &e))?;
        self.open_sessions.fetch_add(1, Ordering::AcqRel);
        if let Err(f) = self.login(&session, st.generation) {
            self.discard(session);
            return Err(f);
        }
        Ok(session)
    }

    fn checkin(&self, generation: u64, session: Session) {
        lock(&self.idle).push((generation, session));
    }

    fn discard(&self, session: Session) {
        let _ = session.close();
        // Closing a token's last session logs the user out.
        if self.open_sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.logged_in) = None;
        }
    }

    /// Waits (boundedly) for the right to run one operation.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        self.acquire_within(self.settings.wait).await
    }

    /// Like [`Token::acquire`] with another bound on the wait.
    pub async fn acquire_within(
        &self,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, BackendError> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(p);
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _guard = WaitGuard(Arc::clone(&self.waiting));
        if before >= self.settings.max_waiting {
            return Err(BackendError::Unavailable(format!(
                "all {} PKCS#11 sessions are busy and {before} requests are already waiting",
                self.settings.max_sessions
            )));
        }
        match tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(BackendError::Unavailable("session pool closed".into())),
            Err(_) => Err(BackendError::Timeout),
        }
    }

    /// Test support: takes every session permit, as a hung HSM would.
    #[doc(hidden)]
    pub async fn occupy_all(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.permits)
            .acquire_many_owned(self.settings.max_sessions as u32)
            .await
            .expect("semaphore never closed")
    }

    /// Runs `f` (blocking) on a session of the current generation. Session
    /// faults retry on a fresh session, device faults re-initialise the
    /// module and retry, once.
    pub fn run<T>(
        &self,
        mut f: impl FnMut(&Session, u64) -> Result<T, Fault>,
    ) -> Result<T, BackendError> {
        let mut last = String::new();
        for attempt in 0..2 {
            let st = self.module.state();
            let generation = st.generation;
            let fault = match self.checkout(&st) {
                Ok(session) => match f(&session, generation) {
                    Ok(v) => {
                        self.checkin(generation, session);
                        return Ok(v);
                    }
                    Err(Fault::Request(e)) => {
                        self.checkin(generation, session);
                        return Err(e);
                    }
                    Err(fault) => {
                        self.discard(session);
                        fault
                    }
                },
                Err(fault) => fault,
            };
            drop(st);
            match fault {
                Fault::Request(e) => return Err(e),
                Fault::Session(d) => {
                    tracing::warn!(token = %self.label, detail = %d, attempt, "PKCS#11 session failed; retrying on a new session");
                    if d.contains("CKR_USER_NOT_LOGGED_IN") {
                        *lock(&self.logged_in) = None;
                    }
                    last = d;
                }
                Fault::Device(d) => {
                    tracing::error!(token = %self.label, detail = %d, attempt, "PKCS#11 device error");
                    if let Err(why) = self.module.reinit(generation, self.settings.reinit_backoff) {
                        return Err(BackendError::Unavailable(format!("{d}; {why}")));
                    }
                    last = d;
                }
            }
        }
        Err(BackendError::Unavailable(last))
    }
}
