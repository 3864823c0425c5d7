//! auth-svc's errors: variants a caller can act on, mapped to gRPC codes in
//! exactly one place.

use tonic::Status;

/// What went wrong, in terms a caller can act on.
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
    /// Anything unexpected; the cause is logged, the caller gets a plain message.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An invalid-argument error for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Internal(Box::new(error))
    }
}

impl From<popug_bus::OutboxError> for Error {
    fn from(error: popug_bus::OutboxError) -> Self {
        Error::Internal(Box::new(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            Error::NotFound(message) => Status::not_found(message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::Unauthenticated(message) => Status::unauthenticated(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Internal(source) => {
                let mut chain = source.to_string();
                let mut cause = source.source();
                while let Some(next) = cause {
                    chain.push_str(": ");
                    chain.push_str(&next.to_string());
                    cause = next.source();
                }
                tracing::error!(error = %chain, "internal error");
                if chain.contains("pool") || chain.contains("connection") {
                    Status::unavailable("the service's database is unavailable; try again")
                } else {
                    Status::internal("internal error")
                }
            }
        }
    }
}
