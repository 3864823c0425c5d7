//! What keeps sign-ins from being turned against the service: failed
//! sign-ins throttled per login and per client address
//! ([`crate::domain::throttle`]), and password hashing (argon2id: 19 MiB and
//! tens of milliseconds of a core each) run a few at a time with a short
//! queue, so that a flood costs bounded memory and CPU, and the rest of the
//! service keeps answering. Excess callers are told `RESOURCE_EXHAUSTED`,
//! with when to retry.
//!
//! A refusal is not answered at once: the caller is held (a timer, no work)
//! for the rest of its lock, at most [`MAX_HOLD`], or for a second when the
//! hash queue is full. A client that retries the moment it is refused would
//! otherwise make thousands of attempts a second and take the CPU from
//! everyone else; held, a thousand concurrent attempts cost a few hundred
//! answers a second. At most [`MAX_HELD`] callers are held at once; beyond
//! that they are refused at once.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    domain::throttle::{Policy, Throttle},
    error::Error,
};
use tokio::sync::Semaphore;

/// Failed sign-ins per login and client address: five free, then 1 s
/// doubling up to 30 s.
const LOGIN_POLICY: Policy = Policy {
    free_failures: 5,
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
    forget_after: Duration::from_secs(15 * 60),
};

/// Failed sign-ins per client address, whatever the login: generous (many
/// people may share an address), to stop one client trying many logins.
const CLIENT_POLICY: Policy = Policy {
    free_failures: 100,
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
    forget_after: Duration::from_secs(15 * 60),
};

/// The longest a refused sign-in is held before its answer.
pub const MAX_HOLD: Duration = Duration::from_secs(5);

/// How long a sign-in refused for a full hash queue is held.
const BUSY_HOLD: Duration = Duration::from_secs(1);

/// The most refused sign-ins held at once.
pub const MAX_HELD: usize = 10_000;

/// Keys remembered per throttle.
const THROTTLE_CAPACITY: usize = 100_000;

/// Sign-in guard of one auth-svc replica (its memory is per replica).
#[derive(Clone)]
pub struct Guard {
    logins: Arc<Mutex<Throttle>>,
    clients: Arc<Mutex<Throttle>>,
    hashing: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    held: Arc<AtomicUsize>,
}

/// A password hash allowed to run; holds its place until dropped.
pub struct HashPermit(
    #[allow(dead_code, reason = "held for its drop")] tokio::sync::OwnedSemaphorePermit,
);

impl Guard {
    /// A guard running at most `concurrency` hashes at once, with at most
    /// `queue` callers waiting for one.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            logins: Arc::new(Mutex::new(Throttle::new(LOGIN_POLICY, THROTTLE_CAPACITY))),
            clients: Arc::new(Mutex::new(Throttle::new(CLIENT_POLICY, THROTTLE_CAPACITY))),
            hashing: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Refuses a sign-in of `login` from `client` while either is locked,
    /// after holding it (see the module docs). A login is locked per client
    /// address: a stranger's failures cannot lock its owner out.
    pub async fn admit(&self, login: &str, client: Option<IpAddr>) -> Result<(), Error> {
        match self.locked(login, client) {
            None => Ok(()),
            Some((wait, whom)) => Err(self.refuse(wait, whom).await),
        }
    }

    /// [`Guard::admit`] for a caller that holds a place to hash: the place
    /// is given up before the caller is held, so hashing goes on for others.
    pub async fn admit_holding(
        &self,
        login: &str,
        client: Option<IpAddr>,
        permit: HashPermit,
    ) -> Result<HashPermit, Error> {
        match self.locked(login, client) {
            None => Ok(permit),
            Some((wait, whom)) => {
                drop(permit);
                Err(self.refuse(wait, whom).await)
            }
        }
    }

    /// How long `login` from `client` is still locked, and by which lock.
    fn locked(&self, login: &str, client: Option<IpAddr>) -> Option<(Duration, &'static str)> {
        let now = Instant::now();
        let login_wait = lock(&self.logins)
            .check(&login_key(login, client), now)
            .err()
            .map(|wait| (wait, "this login"));
        login_wait.or_else(|| {
            let ip = client?;
            lock(&self.clients)
                .check(&ip.to_string(), now)
                .err()
                .map(|wait| (wait, "this address"))
        })
    }

    async fn refuse(&self, wait: Duration, whom: &'static str) -> Error {
        metrics::counter!("popug_auth_sign_ins_throttled_total").increment(1);
        let held = self.hold(wait.min(MAX_HOLD)).await;
        Error::Throttled {
            whom,
            retry_in_secs: wait.saturating_sub(held).as_secs().max(1),
        }
    }

    /// Holds a refused caller for `hold` unless too many are held already;
    /// returns how long it was held.
    async fn hold(&self, hold: Duration) -> Duration {
        let held = Waiting::join(&self.held);
        if held.ahead >= MAX_HELD {
            return Duration::ZERO;
        }
        tokio::time::sleep(hold).await;
        hold
    }

    /// Records the outcome of a checked sign-in.
    pub fn record(&self, login: &str, client: Option<IpAddr>, succeeded: bool) {
        let now = Instant::now();
        let key = login_key(login, client);
        if succeeded {
            lock(&self.logins).succeeded(&key);
        } else {
            metrics::counter!("popug_auth_sign_in_failures_total").increment(1);
            lock(&self.logins).failed(&key, now);
            if let Some(ip) = client {
                lock(&self.clients).failed(&ip.to_string(), now);
            }
        }
    }

    /// A place to hash a password, waiting briefly for one; refused when too
    /// many callers wait already.
    pub async fn hash_permit(&self) -> Result<HashPermit, Error> {
        let busy = || {
            metrics::counter!("popug_auth_hashing_refused_total").increment(1);
            Error::Busy
        };
        if let Ok(permit) = Arc::clone(&self.hashing).try_acquire_owned() {
            return Ok(HashPermit(permit));
        }
        // Counted while waiting, and uncounted however the wait ends (a
        // caller that gives up drops this future mid-wait).
        let waiting = Waiting::join(&self.waiting);
        if waiting.ahead >= self.queue {
            drop(waiting);
            self.hold(BUSY_HOLD).await;
            return Err(busy());
        }
        let permit = tokio::time::timeout(
            Duration::from_secs(2),
            Arc::clone(&self.hashing).acquire_owned(),
        )
        .await;
        drop(waiting);
        match permit {
            Ok(Ok(permit)) => Ok(HashPermit(permit)),
            _ => Err(busy()),
        }
    }

    /// Runs `hash` (a password hash or check) off the async runtime in the
    /// place `permit` holds.
    pub async fn run<T: Send + 'static>(
        &self,
        permit: HashPermit,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        tokio::task::spawn_blocking(move || {
            let value = hash();
            drop(permit);
            value
        })
        .await
        .map_err(|error| Error::internal(format!("a password hash panicked: {error}")))
    }

    /// Runs `hash` off the async runtime, in its turn.
    pub async fn hashing<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self.hash_permit().await?;
        self.run(permit, hash).await
    }
}

/// The throttle key of `login` signing in from `client`.
fn login_key(login: &str, client: Option<IpAddr>) -> String {
    match client {
        Some(ip) => format!("{login} {ip}"),
        None => login.to_owned(),
    }
}

/// A place among counted callers (waiting for a hash, or held); leaving it
/// (by drop, however the caller's future ends) frees it.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// Callers waiting before this one joined.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        let ahead = count.fetch_add(1, Ordering::SeqCst);
        Self { count, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock(throttle: &Mutex<Throttle>) -> std::sync::MutexGuard<'_, Throttle> {
    throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
