//! auth-svc's errors: the refusals a caller can act on, each named, and one
//! `From<Error> for ApiError` into the shared API error, whose mapping to
//! gRPC codes is written once in `popug-runtime`.
//!
//! The `FAILED_PRECONDITION` refusals carry distinct reasons (see
//! `popug_runtime::error`): `SIGN_UP_DISABLED`, `OWN_ROLE`,
//! `OWN_DEACTIVATION`, `OWN_PASSWORD`.

use popug_runtime::ApiError;
use tonic::Status;
use uuid::Uuid;

/// Why an auth call failed.
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
    /// Self sign-up is switched off: an admin creates accounts.
    #[error("self sign-up is disabled; ask an admin for an account")]
    SignUpDisabled,
    /// Login and password do not match (which one is wrong is not said).
    #[error("wrong login or password")]
    WrongCredentials,
    /// The account signing in or refreshing is deactivated.
    #[error("this account is deactivated")]
    Deactivated,
    /// The access token's account is deactivated or gone.
    #[error("the token's account is deactivated or gone")]
    CallerGone,
    /// The refresh token is not one this service issued.
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    /// The refresh token has expired.
    #[error("the refresh token has expired; log in again")]
    RefreshTokenExpired,
    /// A spent refresh token came back: every session of its account is
    /// revoked (a stolen token).
    #[error(
        "the refresh token was already used; every session of this account is revoked, log in again"
    )]
    RefreshTokenReused,
    /// An admin asked to change their own role.
    #[error("admins cannot change their own role; ask another admin")]
    OwnRole,
    /// An admin asked to deactivate themselves.
    #[error("admins cannot deactivate themselves; ask another admin")]
    OwnDeactivation,
    /// An admin asked to set their own password (`ChangePassword` is for that).
    #[error(
        "an admin sets other accounts' passwords; change your own with ChangePassword (`popug password`)"
    )]
    OwnPassword,
    /// No account has this id.
    #[error("no account {0}")]
    NoSuchAccount(Uuid),
    /// The login belongs to another account.
    #[error("login `{0}` is taken")]
    LoginTaken(String),
    /// Sign-ins of this login or from this address are locked for a while.
    #[error("too many failed sign-ins from {whom}; retry in {retry_in_secs} s")]
    Throttled {
        /// "this login" or "this address".
        whom: &'static str,
        /// Seconds until the lock ends (at least 1).
        retry_in_secs: u64,
    },
    /// Too many passwords are being hashed at once.
    #[error("too many sign-ins at once; retry in a moment")]
    Busy,
    /// A failure shared by every service: the database, paging, the
    /// outbox, or anything unexpected.
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

impl From<popug_input::Invalid> for Error {
    fn from(invalid: popug_input::Invalid) -> Self {
        Error::InvalidArgument {
            field: invalid.field,
            reason: invalid.reason,
        }
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
            Error::SignUpDisabled => {
                ApiError::failed_precondition("SIGN_UP_DISABLED", error.to_string())
            }
            Error::OwnRole => ApiError::failed_precondition("OWN_ROLE", error.to_string()),
            Error::OwnDeactivation => {
                ApiError::failed_precondition("OWN_DEACTIVATION", error.to_string())
            }
            Error::OwnPassword => ApiError::failed_precondition("OWN_PASSWORD", error.to_string()),
            Error::WrongCredentials
            | Error::Deactivated
            | Error::CallerGone
            | Error::UnknownRefreshToken
            | Error::RefreshTokenExpired
            | Error::RefreshTokenReused => ApiError::Unauthenticated(error.to_string()),
            Error::NoSuchAccount(_) => ApiError::NotFound(error.to_string()),
            Error::LoginTaken(_) => ApiError::AlreadyExists(error.to_string()),
            Error::Throttled { .. } | Error::Busy => ApiError::ResourceExhausted(error.to_string()),
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
