//! The errors every service's API returns: variants a caller can act on,
//! mapped to gRPC codes in exactly one place.

use tonic::Status;

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
    /// No such account.
    #[error("{0}")]
    NotFound(String),
    /// The login is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Bad credentials or an unusable token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The request is valid but the system is not in a state to allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (the database) is briefly unavailable or busy; the
    /// caller should retry. Logged as a warning, not as an internal error.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected; the cause is logged, the caller gets a plain message.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An internal error with a message (the caller sees "internal error").
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into().into())
    }

    /// An invalid-argument error for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            field,
            reason: reason.into(),
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
            ApiError::Unavailable(format!("database: {error}"))
        } else {
            ApiError::Internal(Box::new(error))
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
            ApiError::FailedPrecondition(message) => Status::failed_precondition(message),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "answered UNAVAILABLE");
                Status::unavailable("the service's database is unavailable or busy; try again")
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
