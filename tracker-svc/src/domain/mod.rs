//! tracker-svc's rules, free of gRPC and SQL: what a valid task is
//! ([`task`]), which events each change produces ([`events`]) and the
//! history of assignments and completions kept beside them ([`history`]).

pub mod events;
pub mod history;
pub mod task;

pub use history::{HistoryEntry, HistoryKind};
pub use task::{Description, JiraId, NewTask, Task, TaskStatus, Title};
