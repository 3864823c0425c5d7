//! The errors every service's API returns, and their mapping to
//! `tonic::Status`, written once: `From<ApiError> for Status` below is the
//! only place a popug service turns an error into a gRPC answer.
//!
//! Each service has its own error enum (its `error.rs`) naming the refusals
//! a caller can act on; one `From` turns it into an [`ApiError`]. Database
//! trouble is classified here by its kind, not by its text: a pool that
//! gives no connection in time, and the errors
//! [`crate::database::is_transient`] classifies, are `UNAVAILABLE` (try
//! again); any other database error is `INTERNAL`.
//!
//! Two refusals with the same code that a caller must tell apart (billing's
//! "the day has not ended" and "days close in order") carry a stable reason:
//! a `google.rpc.ErrorInfo` in the status details (domain [`REASON_DOMAIN`],
//! reason such as `DAY_NOT_ENDED`), which [`reason`] reads back. The message
//! is for people and may change; the reason may not.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The `google.rpc.ErrorInfo` domain of every popug refusal reason.
pub const REASON_DOMAIN: &str = "popug";

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is malformed; names the field.
    #[error("invalid `{field}`: {reason}")]
    InvalidArgument {
        /// The field, as named in the `.proto` file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No such thing (account, task, dead letter).
    #[error("{0}")]
    NotFound(String),
    /// The thing exists already (a taken login).
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Bad credentials or an unusable token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The request is valid but the system is not in a state to allow it.
    #[error("{message}")]
    FailedPrecondition {
        /// Which refusal this is: stable, `UPPER_SNAKE`, sent as the
        /// `ErrorInfo` reason so that callers need not read the message.
        reason: &'static str,
        /// What a person is told.
        message: String,
    },
    /// Too many attempts or callers; the message says when to retry.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency is briefly unavailable or busy; the caller should retry.
    /// Logged as a warning, not as an internal error.
    #[error("{dependency} unavailable: {cause}")]
    Unavailable {
        /// What is unavailable.
        dependency: Dependency,
        /// Why, as the dependency said it.
        cause: String,
    },
    /// Anything unexpected; the cause is logged, the caller gets a plain message.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What an [`ApiError::Unavailable`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The service's own Postgres database. Its error text stays in the log.
    Database,
    /// RabbitMQ. Only the ops API (admins) waits for it; its error is shown.
    Broker,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dependency::Database => "database",
            Dependency::Broker => "broker",
        })
    }
}

impl ApiError {
    /// An internal error from a cause: an error, or a message (the caller
    /// sees "internal error").
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// An invalid-argument error for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// A refusal for the system's state, with its stable `reason`.
    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }
}

impl From<popug_input::Invalid> for ApiError {
    fn from(invalid: popug_input::Invalid) -> Self {
        ApiError::InvalidArgument {
            field: invalid.field,
            reason: invalid.reason,
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        if crate::database::is_transient(&error) {
            ApiError::Unavailable {
                dependency: Dependency::Database,
                cause: error.to_string(),
            }
        } else {
            ApiError::Internal(Box::new(error))
        }
    }
}

/// A pool that gives no connection (none free in time, or none can be
/// opened) means the database is unavailable, whatever the driver said.
impl From<diesel_async::pooled_connection::bb8::RunError> for ApiError {
    fn from(error: diesel_async::pooled_connection::bb8::RunError) -> Self {
        ApiError::Unavailable {
            dependency: Dependency::Database,
            cause: format!("database pool: {error}"),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            ApiError::NotFound(message) => Status::not_found(message),
            ApiError::AlreadyExists(message) => Status::already_exists(message),
            ApiError::PermissionDenied(message) => Status::permission_denied(message),
            ApiError::Unauthenticated(message) => Status::unauthenticated(message),
            ApiError::FailedPrecondition { reason, message } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_error_info(
                    reason,
                    REASON_DOMAIN,
                    std::collections::HashMap::new(),
                ),
            ),
            ApiError::ResourceExhausted(message) => Status::resource_exhausted(message),
            ApiError::Unavailable { dependency, cause } => {
                tracing::warn!(%dependency, %cause, "answered UNAVAILABLE");
                match dependency {
                    Dependency::Database => Status::unavailable(
                        "the service's database is unavailable or busy; try again",
                    ),
                    Dependency::Broker => {
                        Status::unavailable(format!("the broker is unavailable: {cause}"))
                    }
                }
            }
            ApiError::Internal(source) => {
                let mut chain = source.to_string();
                let mut cause = source.source();
                while let Some(next) = cause {
                    chain.push_str(": ");
                    chain.push_str(&next.to_string());
                    cause = next.source();
                }
                tracing::error!(error = %chain, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// The stable reason a refusal carries (see the module docs), if it carries
/// one from popug.
pub fn reason(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .filter(|info| info.domain == REASON_DOMAIN)
        .map(|info| info.reason.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_reason_and_keeps_its_message() {
        let status = Status::from(ApiError::failed_precondition(
            "DAY_NOT_ENDED",
            "2026-01-02 has not ended yet",
        ));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "2026-01-02 has not ended yet");
        assert_eq!(reason(&status).as_deref(), Some("DAY_NOT_ENDED"));
    }

    #[test]
    fn other_answers_carry_no_reason() {
        let status = Status::from(ApiError::NotFound("no account".into()));
        assert_eq!(reason(&status), None);
        assert_eq!(reason(&Status::failed_precondition("from elsewhere")), None);
    }

    #[test]
    fn database_trouble_is_unavailable_by_kind_and_bugs_are_internal() {
        use diesel::result::{DatabaseErrorKind, Error};
        let closed = Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("the pool or connection is fine".to_owned()),
        );
        assert_eq!(
            Status::from(ApiError::from(closed)).code(),
            Code::Unavailable
        );
        // Text that merely mentions a pool or a connection decides nothing.
        let unique = Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("connection pool".to_owned()),
        );
        assert_eq!(Status::from(ApiError::from(unique)).code(), Code::Internal);
        assert_eq!(
            Status::from(ApiError::from(Error::NotFound)).code(),
            Code::Internal
        );
        let timed_out = diesel_async::pooled_connection::bb8::RunError::TimedOut;
        let status = Status::from(ApiError::from(timed_out));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "the service's database is unavailable or busy; try again"
        );
    }
}
