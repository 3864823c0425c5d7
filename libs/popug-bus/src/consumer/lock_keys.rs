//! Handlers' lock keys (see [`crate::handlers::Handlers::locking`]) as
//! transaction-level advisory locks: each key hashed to a lock id, and a
//! batch's ids taken sorted, so competing workers and replicas wait for
//! each other instead of deadlocking.

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use popug_runtime::advisory_locks::HANDLER_KEY_CLASS;

use super::{Consumer, delivery::Parsed};

impl Consumer {
    /// Takes the batch's lock keys as transaction-level advisory locks,
    /// sorted, before anything else: every competing transaction then locks
    /// in the same order.
    pub(super) async fn lock_keys<'p>(
        &self,
        conn: &mut AsyncPgConnection,
        parsed: impl Iterator<Item = &'p Parsed>,
    ) -> Result<(), diesel::result::Error> {
        let mut locks: Vec<i32> = parsed
            .flat_map(|p| self.handlers.lock_keys(&p.meta.event_type, &p.decoded))
            .map(|key| lock_id(&key))
            .collect();
        if locks.is_empty() {
            return Ok(());
        }
        locks.sort_unstable();
        locks.dedup();
        // `unnest` yields the ids in array order, and each row's lock is
        // taken as the row is produced.
        popug_runtime::sql::query(format!(
            "SELECT pg_advisory_xact_lock({HANDLER_KEY_CLASS}, id) FROM unnest($1::int4[]) AS id"
        ))
        .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(&locks)
        .execute(conn)
        .await
        .map(drop)
    }
}

/// A lock key's advisory lock: FNV-1a, fixed so that replicas of different
/// builds agree. Two keys sharing an id only wait for each other.
pub(super) fn lock_id(key: &str) -> i32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}
