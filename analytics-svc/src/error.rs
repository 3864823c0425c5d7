//! analytics-svc's errors, and one `From<Error> for ApiError` into the
//! shared API error, whose mapping to gRPC codes is written once in
//! `popug-runtime`. Analytics only reads: besides a malformed request, what
//! can go wrong is shared by every service (the database, the calendar).

use popug_runtime::ApiError;
use tonic::Status;

/// Why an analytics call failed.
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
    /// A failure shared by every service: the database, the calendar, or
    /// anything unexpected.
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

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument { field, reason } => ApiError::InvalidArgument { field, reason },
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
