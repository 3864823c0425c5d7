//! The ops API's refusals: what an admin can act on, converted once into
//! the shared [`ApiError`], whose mapping to `tonic::Status` is
//! `popug-runtime`'s. The two `FAILED_PRECONDITION`s carry distinct reasons
//! ([`NO_CONSUMER`], [`DEAD_LETTER_QUEUE_MISSING`]).

use popug_runtime::{ApiError, error::Dependency};
use tonic::Status;

use crate::{broker::Broker, dead_letters};

/// Reason of [`OpsError::NoConsumer`].
pub const NO_CONSUMER: &str = "NO_CONSUMER";
/// Reason of [`OpsError::MissingDeadLetterQueue`].
pub const DEAD_LETTER_QUEUE_MISSING: &str = "DEAD_LETTER_QUEUE_MISSING";

/// Why an ops call failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The service consumes no events (auth), so it has no dead letters.
    #[error("this service consumes no events, so it has no dead letters")]
    NoConsumer,
    /// The consumer's dead-letter queue is not on the broker.
    #[error(
        "the dead-letter queue `{queue}` does not exist on the broker (deleted, or expired \
         through POPUG_QUEUE_TTL while no {consumer} service ran); the {consumer} \
         service declares it again when its consumer (re)connects"
    )]
    MissingDeadLetterQueue {
        /// The queue's name.
        queue: String,
        /// The consumer it belongs to.
        consumer: String,
    },
    /// No dead letter has this id.
    #[error("no dead letter has id {0}")]
    NoSuchDeadLetter(i64),
    /// A discard needs to know which admin asks: its audit record names who.
    #[error("discarding needs a signed-in admin: its audit record names who")]
    Anonymous,
    /// The broker failed or refused; the call may be retried.
    #[error("{0}")]
    Broker(String),
    /// A shared failure: a bad field, the database.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl OpsError {
    /// A failed broker call on `consumer`'s dead-letter queue: a missing
    /// queue is reported as missing, anything else as the broker being
    /// unavailable.
    pub fn queue(broker: &Broker, consumer: &str, error: &lapin::Error) -> Self {
        if dead_letters::is_missing_queue(error) {
            let queue = broker.topology().dead_letter_queue(consumer);
            tracing::warn!(%queue, %error, "ops: the dead-letter queue does not exist");
            return OpsError::MissingDeadLetterQueue {
                queue,
                consumer: consumer.to_owned(),
            };
        }
        OpsError::Broker(error.to_string())
    }

    /// A replay's failure: a missing dead-letter queue said as such, a
    /// database failure as the database's.
    pub fn replay(broker: &Broker, consumer: &str, error: dead_letters::ReplayError) -> Self {
        match error {
            dead_letters::ReplayError::Broker(lapin) => OpsError::queue(broker, consumer, &lapin),
            dead_letters::ReplayError::Database(cause) => OpsError::Api(ApiError::Unavailable {
                dependency: Dependency::Database,
                cause,
            }),
            refused @ dead_letters::ReplayError::Refused(_) => {
                OpsError::Broker(refused.to_string())
            }
        }
    }
}

impl From<diesel::result::Error> for OpsError {
    fn from(error: diesel::result::Error) -> Self {
        OpsError::Api(error.into())
    }
}

impl From<popug_input::Invalid> for OpsError {
    fn from(invalid: popug_input::Invalid) -> Self {
        OpsError::Api(invalid.into())
    }
}

impl From<OpsError> for ApiError {
    fn from(error: OpsError) -> Self {
        match error {
            OpsError::NoConsumer => ApiError::failed_precondition(NO_CONSUMER, error.to_string()),
            OpsError::MissingDeadLetterQueue { .. } => {
                ApiError::failed_precondition(DEAD_LETTER_QUEUE_MISSING, error.to_string())
            }
            OpsError::NoSuchDeadLetter(_) => ApiError::NotFound(error.to_string()),
            OpsError::Anonymous => ApiError::Unauthenticated(error.to_string()),
            OpsError::Broker(cause) => ApiError::Unavailable {
                dependency: Dependency::Broker,
                cause,
            },
            OpsError::Api(api) => api,
        }
    }
}

impl From<OpsError> for Status {
    fn from(error: OpsError) -> Self {
        ApiError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use popug_runtime::error::reason;
    use tonic::Code;

    use super::*;

    #[test]
    fn the_two_refusals_share_a_code_and_differ_by_reason() {
        let no_consumer = Status::from(OpsError::NoConsumer);
        let missing = Status::from(OpsError::MissingDeadLetterQueue {
            queue: "billing.events.dlq".into(),
            consumer: "billing".into(),
        });
        assert_eq!(no_consumer.code(), Code::FailedPrecondition);
        assert_eq!(missing.code(), Code::FailedPrecondition);
        assert_eq!(reason(&no_consumer).as_deref(), Some(NO_CONSUMER));
        assert_eq!(reason(&missing).as_deref(), Some(DEAD_LETTER_QUEUE_MISSING));
        assert!(missing.message().contains("`billing.events.dlq`"));
    }

    #[test]
    fn a_replay_that_lost_the_database_says_the_database() {
        let status = Status::from(OpsError::Api(ApiError::Unavailable {
            dependency: Dependency::Database,
            cause: "gone".into(),
        }));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("database"), "{status:?}");
        let broker = Status::from(OpsError::Broker("connection refused".into()));
        assert_eq!(broker.code(), Code::Unavailable);
        assert_eq!(
            broker.message(),
            "the broker is unavailable: connection refused"
        );
    }
}
