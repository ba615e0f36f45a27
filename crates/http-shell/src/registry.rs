//! The open connections: admission under the connection caps (shed the
//! connection idle the longest, then refuse), per-connection activity for
//! the idle deadlines. One short lock on accept and close; requests only
//! touch their own connection's atomics.

use crate::limits::ClientKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` open and none of them idle.
    Full,
    /// The client's cap reached and none of its connections idle.
    ClientFull,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Full => "connection limit reached and no connection is idle",
            Refused::ClientFull => {
                "per-client connection limit reached and none of its connections is idle"
            }
        })
    }
}

/// One open connection's activity.
pub(crate) struct Conn {
    id: u64,
    client: ClientKey,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds since the registry's epoch of the last activity (accept,
    /// request start, request end).
    last_active_ms: AtomicU64,
    /// Global activity order: the smallest idle one is idle the longest.
    last_active_seq: AtomicU64,
    /// Told when the connection must close to make room.
    pub(crate) shed: Notify,
    /// Told when a request starts or ends (the idle deadline moves).
    activity: Notify,
}

impl Conn {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }
}

/// Tracks a request for as long as it is alive (dropped when its response
/// future completes or is cancelled).
pub(crate) struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.registry.touch(&self.conn);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.conn.activity.notify_one();
    }
}

pub(crate) struct Registry {
    epoch: Instant,
    max: usize,
    per_client: Option<usize>,
    seq: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    clients: HashMap<ClientKey, usize>,
}

impl Inner {
    /// The connection idle the longest, among those `filter` accepts.
    fn oldest_idle(&self, filter: impl Fn(&Conn) -> bool) -> Option<u64> {
        self.conns
            .values()
            .filter(|c| c.in_flight() == 0 && filter(c))
            .min_by_key(|c| c.last_active_seq.load(Ordering::Acquire))
            .map(|c| c.id)
    }

    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.clients.get_mut(&conn.client) {
            *n -= 1;
            if *n == 0 {
                self.clients.remove(&conn.client);
            }
        }
        Some(conn)
    }

    /// Removes `id` and tells its task to close.
    fn shed(&mut self, id: u64) {
        if let Some(conn) = self.remove(id) {
            conn.shed.notify_one();
        }
    }
}

/// An admitted connection; leaving the registry when dropped.
pub(crate) struct Admitted {
    pub(crate) conn: Arc<Conn>,
    pub(crate) registry: Arc<Registry>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.lock().remove(self.conn.id);
    }
}

impl Registry {
    pub(crate) fn new(max: usize, per_client: Option<usize>) -> Arc<Registry> {
        Arc::new(Registry {
            epoch: Instant::now(),
            max: max.max(1),
            per_client: per_client.map(|n| n.max(1)),
            seq: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than refusing service would.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self, conn: &Conn) {
        conn.last_active_ms.store(self.now_ms(), Ordering::Release);
        conn.last_active_seq
            .store(self.seq.fetch_add(1, Ordering::AcqRel), Ordering::Release);
    }

    /// Number of connections counted (admitted and neither closed nor shed).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Admits a connection from `ip`, shedding the oldest idle connection
    /// (of that client for the per-client cap) when a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let client = ClientKey::of(ip);
        let mut inner = self.lock();
        if let Some(cap) = self.per_client {
            if inner.clients.get(&client).copied().unwrap_or(0) >= cap {
                let victim = inner
                    .oldest_idle(|c| c.client == client)
                    .ok_or(Refused::ClientFull)?;
                inner.shed(victim);
            }
        }
        if inner.conns.len() >= self.max {
            let victim = inner.oldest_idle(|_| true).ok_or(Refused::Full)?;
            inner.shed(victim);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            id,
            client,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            last_active_seq: AtomicU64::new(0),
            shed: Notify::new(),
            activity: Notify::new(),
        });
        self.touch(&conn);
        inner.conns.insert(id, Arc::clone(&conn));
        *inner.clients.entry(client).or_insert(0) += 1;
        Ok(Admitted {
            conn,
            registry: Arc::clone(self),
        })
    }

    /// Closes the connection idle the longest (file descriptors ran out).
    /// Returns whether there was one.
    pub(crate) fn shed_oldest_idle(&self) -> bool {
        let mut inner = self.lock();
        match inner.oldest_idle(|_| true) {
            Some(id) => {
                inner.shed(id);
                true
            }
            None => false,
        }
    }

    /// Marks a request started on `conn`; it ends when the guard is dropped.
    pub(crate) fn begin_request(self: &Arc<Self>, conn: &Arc<Conn>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.requests.fetch_add(1, Ordering::AcqRel);
        self.touch(conn);
        conn.activity.notify_one();
        InFlight {
            conn: Arc::clone(conn),
            registry: Arc::clone(self),
        }
    }

    /// How long until `conn` must close for idleness (zero: now), or `None`
    /// while a request is in flight. The first request is timed from the
    /// accept with `first`, later idleness with `idle`.
    pub(crate) fn idle_remaining(
        &self,
        conn: &Conn,
        first: Duration,
        idle: Duration,
    ) -> Option<Duration> {
        if conn.in_flight() > 0 {
            return None;
        }
        let limit = if conn.requests() == 0 { first } else { idle };
        let since = Duration::from_millis(
            self.now_ms()
                .saturating_sub(conn.last_active_ms.load(Ordering::Acquire)),
        );
        Some(limit.saturating_sub(since))
    }
}

/// Resolves when `conn` has been idle past its deadline.
pub(crate) async fn idle_expired(
    registry: &Registry,
    conn: &Conn,
    first: Duration,
    idle: Duration,
) {
    loop {
        match registry.idle_remaining(conn, first, idle) {
            Some(d) if d.is_zero() => return,
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = conn.activity.notified() => {}
                }
            }
            // A request in flight: nothing to time until it ends.
            None => conn.activity.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn full_registry_sheds_the_longest_idle_then_refuses() {
        let r = Registry::new(3, None);
        let a = r.admit(ip("127.0.0.1")).unwrap();
        let b = r.admit(ip("127.0.0.2")).unwrap();
        let c = r.admit(ip("127.0.0.3")).unwrap();
        // a becomes busy; b is now the one idle the longest.
        let _busy_a = r.begin_request(&a.conn);
        let d = r.admit(ip("127.0.0.4")).unwrap();
        assert_eq!(r.len(), 3);
        assert!(!r.lock().conns.contains_key(&b.conn.id), "b was shed");
        // c finishes a request after d arrived: d is now the oldest idle.
        drop(r.begin_request(&c.conn));
        let _e = r.admit(ip("127.0.0.5")).unwrap();
        assert!(!r.lock().conns.contains_key(&d.conn.id), "d was shed");
        assert!(r.lock().conns.contains_key(&c.conn.id));
        // Everyone busy: refused.
        let _busy_c = r.begin_request(&c.conn);
        let _busy_e = r.begin_request(&_e.conn);
        assert_eq!(r.admit(ip("127.0.0.6")).err(), Some(Refused::Full));
        // Closing one makes room without shedding.
        drop(_busy_e);
        drop(_e);
        assert_eq!(r.len(), 2);
        let _f = r.admit(ip("127.0.0.6")).unwrap();
        assert_eq!(r.len(), 3);
        // Dropping a shed connection's handle changes nothing.
        drop(b);
        drop(d);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn per_client_cap_counts_ipv6_by_64() {
        let r = Registry::new(100, Some(2));
        let a = r.admit(ip("2001:db8::1")).unwrap();
        let _busy = r.begin_request(&a.conn);
        let b = r.admit(ip("2001:db8::2")).unwrap();
        let _busy_b = r.begin_request(&b.conn);
        assert_eq!(r.admit(ip("2001:db8::3")).err(), Some(Refused::ClientFull));
        // Another /64 and another IPv4 address are not affected.
        let _c = r.admit(ip("2001:db8:0:1::1")).unwrap();
        let _d = r.admit(ip("10.0.0.1")).unwrap();
        // Once one of the client's connections is idle it is shed for the new one.
        drop(_busy_b);
        let _e = r.admit(ip("2001:db8::4")).unwrap();
        assert!(!r.lock().conns.contains_key(&b.conn.id));
        assert_eq!(
            r.lock().clients.get(&ClientKey::of(ip("2001:db8::9"))),
            Some(&2)
        );
    }

    #[test]
    fn idle_deadline_uses_first_request_timeout_until_a_request_arrives() {
        let r = Registry::new(10, None);
        let a = r.admit(ip("127.0.0.1")).unwrap();
        let first = Duration::from_secs(5);
        let idle = Duration::from_secs(60);
        let left = r.idle_remaining(&a.conn, first, idle).unwrap();
        assert!(left <= first && left > Duration::from_secs(4));
        let g = r.begin_request(&a.conn);
        assert_eq!(r.idle_remaining(&a.conn, first, idle), None);
        drop(g);
        let left = r.idle_remaining(&a.conn, first, idle).unwrap();
        assert!(left > Duration::from_secs(59));
        assert!(r
            .idle_remaining(&a.conn, first, Duration::ZERO)
            .unwrap()
            .is_zero());
    }

    #[test]
    fn shed_oldest_idle_notifies_the_connection() {
        let r = Registry::new(10, None);
        let a = r.admit(ip("127.0.0.1")).unwrap();
        assert!(r.shed_oldest_idle());
        assert!(!r.shed_oldest_idle());
        // The permit is stored: the task sees it even if it waits later.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), a.conn.shed.notified())
                .await
                .expect("shed notification")
        });
    }
}
