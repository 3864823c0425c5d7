//! Which failures are retried how: a conflict between concurrent
//! transactions is retried at once, any other transient failure with
//! backoff, and a broker that cannot be reached at all is waited for.

use super::ConsumerError;

/// Why a batch must be applied again; nothing was committed.
pub(super) struct Retry {
    pub(super) error: String,
    /// A deadlock or serialization failure: retried at once, not backed off.
    pub(super) conflict: bool,
}

impl From<&diesel::result::Error> for Retry {
    fn from(error: &diesel::result::Error) -> Self {
        Self {
            error: error.to_string(),
            conflict: is_conflict(error),
        }
    }
}

/// A deadlock, a serialization failure or a lock wait that timed out
/// between concurrent transactions.
fn is_conflict(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        // A lock wait that ran out of time is a collision too: the holder
        // is slow or hung, and the server ends a hung one's transaction.
        Error::DatabaseError(_, info) => {
            info.message().contains("deadlock detected")
                || info
                    .message()
                    .contains("canceling statement due to lock timeout")
        }
        _ => false,
    }
}

/// Whether a consumer's failure was not reaching the broker at all.
pub(super) fn unreachable(error: &ConsumerError) -> bool {
    matches!(error, ConsumerError::Broker(error) if crate::broker::is_unreachable(error))
}

/// Database errors that say "try again later" (see
/// [`popug_runtime::database::is_transient`]).
pub use popug_runtime::database::is_transient;
