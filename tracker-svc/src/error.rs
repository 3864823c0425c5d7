//! tracker-svc's errors: the refusals a caller can act on, each named, and
//! one `From<Error> for ApiError` into the shared API error, whose mapping
//! to gRPC codes is written once in `popug-runtime`.
//!
//! The `FAILED_PRECONDITION` refusals carry distinct reasons (see
//! `popug_runtime::error`): [`NO_WORKER`] (wait for a worker, as
//! `popug simulate` does) and [`TASK_DONE`].

use popug_runtime::ApiError;
use tonic::Status;

/// Reason of [`Error::NoWorker`].
pub const NO_WORKER: &str = "NO_WORKER";
/// Reason of [`Error::AlreadyDone`].
pub const TASK_DONE: &str = "TASK_DONE";

/// Why a tracker call failed.
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
    /// No active worker to assign a task to (none created yet, or the
    /// tracker has not heard of one yet).
    #[error("there is no active worker to assign tasks to; ask an admin to create one")]
    NoWorker,
    /// No such task; names it as the caller did (an id or `POPUG-<n>`).
    #[error("no task {0}")]
    NoSuchTask(String),
    /// Only a task's assignee completes it.
    #[error("only the task's assignee can complete it")]
    NotAssignee,
    /// Only a task's assignee, managers and admins see it.
    #[error("only the assignee, managers and admins see a task")]
    NotYours,
    /// The task is done already; names its key.
    #[error("{0} is already done")]
    AlreadyDone(String),
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
            Error::NoWorker => ApiError::failed_precondition(NO_WORKER, error.to_string()),
            Error::AlreadyDone(_) => ApiError::failed_precondition(TASK_DONE, error.to_string()),
            Error::NoSuchTask(_) => ApiError::NotFound(error.to_string()),
            Error::NotAssignee | Error::NotYours => ApiError::PermissionDenied(error.to_string()),
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
