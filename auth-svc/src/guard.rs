//! What keeps sign-ins from being turned against the service: failed
//! sign-ins throttled per login and per client address
//! ([`crate::domain::throttle`]), and password hashing (argon2id: 19 MiB and
//! tens of milliseconds of a core each) run a few at a time with a short
//! queue, so that a flood costs bounded memory and CPU, and the rest of the
//! service keeps answering. Excess callers are told `RESOURCE_EXHAUSTED` at
//! once, with when to retry.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
use tonic::Status;

use crate::domain::throttle::{Policy, Throttle};

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
        }
    }

    /// Refuses a sign-in of `login` from `client` while either is locked.
    /// A login is locked per client address: a stranger's failures cannot
    /// lock its owner out.
    pub fn admit(&self, login: &str, client: Option<IpAddr>) -> Result<(), Status> {
        let now = Instant::now();
        let login_wait = lock(&self.logins)
            .check(&login_key(login, client), now)
            .err()
            .map(|wait| (wait, "this login"));
        let locked = login_wait.or_else(|| {
            let ip = client?;
            lock(&self.clients)
                .check(&ip.to_string(), now)
                .err()
                .map(|wait| (wait, "this address"))
        });
        match locked {
            None => Ok(()),
            Some((wait, whom)) => {
                metrics::counter!("popug_auth_sign_ins_throttled_total").increment(1);
                Err(Status::resource_exhausted(format!(
                    "too many failed sign-ins from {whom}; retry in {} s",
                    wait.as_secs().max(1)
                )))
            }
        }
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
    pub async fn hash_permit(&self) -> Result<HashPermit, Status> {
        let busy = || {
            metrics::counter!("popug_auth_hashing_refused_total").increment(1);
            Status::resource_exhausted("too many sign-ins at once; retry in a moment")
        };
        if let Ok(permit) = Arc::clone(&self.hashing).try_acquire_owned() {
            return Ok(HashPermit(permit));
        }
        // Counted while waiting, and uncounted however the wait ends (a
        // caller that gives up drops this future mid-wait).
        let waiting = Waiting::join(&self.waiting);
        if waiting.ahead >= self.queue {
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
    ) -> Result<T, Status> {
        tokio::task::spawn_blocking(move || {
            let value = hash();
            drop(permit);
            value
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "a password hash panicked");
            Status::internal("internal error")
        })
    }

    /// Runs `hash` off the async runtime, in its turn.
    pub async fn hashing<T: Send + 'static>(
        &self,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
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

/// A place in the queue for a hash; leaving it (by drop) frees it.
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
