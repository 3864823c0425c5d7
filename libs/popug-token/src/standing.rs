//! The caller's standing as the serving service knows it now: role and
//! active flag from its own records (auth's accounts, or a replica fed by
//! auth's account events), not from the token alone. A token stays valid
//! until it expires; a deactivation or a demotion must not wait for that.
//!
//! Each service supplies a [`Directory`] over its records; the [`AuthLayer`]
//! consults it on every authenticated call through [`Standings`], a cache
//! that keeps an answer for at most [`STANDING_TTL`] and that the service's
//! account handlers clear for an account they change, and rewrites the
//! claims' role (or refuses a deactivated caller) before any handler runs.
//! So every role check, `require_role` and the ops API's alike, judges the
//! current role: at once on the replica that applied the change, within
//! [`STANDING_TTL`] on the others.
//!
//! [`AuthLayer`]: crate::AuthLayer

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tonic::Status;
use uuid::Uuid;

use crate::{claims::Claims, role::Role};

/// How long a looked-up standing is reused: a change reaching a service's
/// records counts for every call within this time.
pub const STANDING_TTL: Duration = Duration::from_millis(500);

/// Most cached standings; past it the cache starts afresh.
const MAX_CACHED: usize = 100_000;

/// An account's role and active flag as a service knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The current role, if known (a replica may know an account's
    /// deactivation before its role).
    pub role: Option<Role>,
    /// False once the account was deactivated.
    pub active: bool,
}

/// Where a service looks up a caller's standing.
pub trait Directory: Send + Sync + 'static {
    /// The standing of `account_id`, or `None` if the service has not heard
    /// of the account yet (a replica lagging behind auth: the token's claims
    /// then stand). An error means the records cannot be read now.
    fn standing(&self, account_id: Uuid) -> BoxFuture<'_, Result<Option<Standing>, String>>;
}

/// Standings looked up, with when.
type Cache = HashMap<Uuid, (Instant, Option<Standing>)>;

/// A [`Directory`] with a short-lived cache; clones share it.
#[derive(Clone)]
pub struct Standings {
    directory: Arc<dyn Directory>,
    cache: Arc<Mutex<Cache>>,
}

impl Standings {
    /// Standings from `directory`.
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            cache: Arc::default(),
        }
    }

    /// Drops what is cached of `account_id`: its records just changed.
    pub fn forget(&self, account_id: Uuid) {
        self.lock().remove(&account_id);
    }

    /// `claims` with the caller's current role, or why the call is refused.
    pub(crate) async fn judge(&self, claims: Claims) -> Result<Claims, Status> {
        let now = Instant::now();
        let cached = self
            .lock()
            .get(&claims.account_id)
            .filter(|(at, _)| now.duration_since(*at) < STANDING_TTL)
            .map(|(_, standing)| *standing);
        let standing = match cached {
            Some(standing) => standing,
            None => {
                let standing =
                    self.directory
                        .standing(claims.account_id)
                        .await
                        .map_err(|cause| {
                            tracing::warn!(%cause, "cannot read callers' standing");
                            Status::unavailable(
                                "the service cannot check your account right now; try again",
                            )
                        })?;
                let mut cache = self.lock();
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(claims.account_id, (now, standing));
                standing
            }
        };
        judge(claims, standing)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The rule: a deactivated account is refused; a known role replaces the
/// token's; an account the service has not heard of keeps its token's role.
pub fn judge(claims: Claims, standing: Option<Standing>) -> Result<Claims, Status> {
    match standing {
        Some(Standing { active: false, .. }) => {
            Err(Status::unauthenticated("this account is deactivated"))
        }
        Some(Standing {
            role: Some(role), ..
        }) => Ok(Claims { role, ..claims }),
        _ => Ok(claims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role) -> Claims {
        Claims {
            account_id: Uuid::nil(),
            role,
            expires_at: u64::MAX,
        }
    }

    #[test]
    fn the_current_standing_rules_over_the_token() {
        let demoted = Standing {
            role: Some(Role::Worker),
            active: true,
        };
        let role = |judged: Result<Claims, Status>| judged.map(|c| c.role).map_err(|s| s.code());
        assert_eq!(
            role(judge(claims(Role::Admin), Some(demoted))),
            Ok(Role::Worker)
        );
        let gone = Standing {
            role: Some(Role::Admin),
            active: false,
        };
        assert_eq!(
            role(judge(claims(Role::Admin), Some(gone))),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(role(judge(claims(Role::Manager), None)), Ok(Role::Manager));
        let role_unknown = Standing {
            role: None,
            active: true,
        };
        assert_eq!(
            role(judge(claims(Role::Manager), Some(role_unknown))),
            Ok(Role::Manager)
        );
    }
}
