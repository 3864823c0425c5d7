//! billing-svc's errors: the refusals a caller can act on, each named, and
//! one `From<Error> for ApiError` into the shared API error, whose mapping
//! to gRPC codes is written once in `popug-runtime`.
//!
//! `CloseDay`'s refusals are all `FAILED_PRECONDITION`, and a caller acts
//! on each differently (wait for the day to end; close the days in order;
//! look into an account), so each carries its own reason (see
//! `popug_runtime::error`): [`DAY_NOT_ENDED`], [`DAYS_CLOSE_IN_ORDER`],
//! [`PAYOUT_TOO_LARGE`].

use popug_runtime::ApiError;
use tonic::Status;
use uuid::Uuid;

use crate::domain::ledger::CloseRefusal;

/// Reason of [`CloseRefusal::NotEnded`]: the day is today or later.
pub const DAY_NOT_ENDED: &str = "DAY_NOT_ENDED";
/// Reason of [`CloseRefusal::OutOfOrder`]: a later day is closed already.
pub const DAYS_CLOSE_IN_ORDER: &str = "DAYS_CLOSE_IN_ORDER";
/// Reason of [`CloseRefusal::PayoutTooLarge`]: an account to look into.
pub const PAYOUT_TOO_LARGE: &str = "PAYOUT_TOO_LARGE";

/// Why a billing call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is malformed; names the field.
    #[error("invalid `{field}`: {reason}")]
    InvalidArgument {
        /// The field, as named in the `.proto` file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Billing has no account with this id (not heard of it yet, or none).
    #[error("billing has no account {0}")]
    NoSuchAccount(Uuid),
    /// The day cannot be closed now.
    #[error(transparent)]
    CloseRefused(#[from] CloseRefusal),
    /// A failure shared by every service: the database, paging, the
    /// calendar, the outbox, or anything unexpected.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl Error {
    /// An invalid-argument error for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// An unexpected failure (the caller sees "internal error").
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Api(ApiError::internal(cause))
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Api(error.into())
    }
}

impl From<popug_bus::outbox::OutboxError> for Error {
    fn from(error: popug_bus::outbox::OutboxError) -> Self {
        Error::Api(error.into())
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument { field, reason } => ApiError::InvalidArgument { field, reason },
            Error::NoSuchAccount(_) => ApiError::NotFound(error.to_string()),
            Error::CloseRefused(refusal) => {
                let reason = match refusal {
                    CloseRefusal::NotEnded { .. } => DAY_NOT_ENDED,
                    CloseRefusal::OutOfOrder { .. } => DAYS_CLOSE_IN_ORDER,
                    CloseRefusal::PayoutTooLarge { .. } => PAYOUT_TOO_LARGE,
                };
                ApiError::failed_precondition(reason, refusal.to_string())
            }
            Error::Api(api) => api,
        }
    }
}

/// The gRPC answer: through [`ApiError`], whose mapping is the only one.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        ApiError::from(error).into()
    }
}
