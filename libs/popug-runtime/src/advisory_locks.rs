//! Every Postgres advisory lock popug takes, named in one place with what it
//! guards, so that no two mechanisms share a lock by accident.
//!
//! One-part locks (`pg_advisory_lock(bigint)`) guard one mechanism each.
//! Handlers' lock keys use two-part locks (`pg_advisory_xact_lock(int, int)`)
//! under [`HANDLER_KEY_CLASS`]; Postgres keeps the two kinds apart, so a
//! two-part lock never meets a one-part one.

/// The migrations of a database run one replica at a time: held for the
/// session that migrates ("popug" in ASCII).
pub const MIGRATION: i64 = 0x0070_6f70_7567;

/// One outbox relay publishes at a time; the others stand by: held for a
/// relay step's transaction ("relay" in ASCII).
pub const RELAY: i64 = 0x0072_656c_6179;

/// Billing's bookings (shared) against a day's close (exclusive): no entry
/// lands in a day while it closes (`c105e0`: "close").
pub const DAY_CLOSE: i64 = 0x00c1_05e0;

/// The tracker's shuffles run one at a time, so a second one sees the first
/// one's assignees as the previous ones and the two cannot deadlock.
pub const SHUFFLE: i64 = 7_370_726_570;

/// The first half of the two-part locks taken for handlers' lock keys
/// ("popk" in ASCII); the second half is the key's hash.
pub const HANDLER_KEY_CLASS: i32 = 0x706f_706b;

/// Every one-part lock, for the check that they are distinct.
pub const ONE_PART: [i64; 4] = [MIGRATION, RELAY, DAY_CLOSE, SHUFFLE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_part_locks_are_distinct() {
        let mut ids = ONE_PART.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            ONE_PART.len(),
            "two locks share an id: {ONE_PART:?}"
        );
    }
}
