//! tracker-svc's rules, free of gRPC and SQL: what a valid task is
//! ([`task`]) and which events each change produces ([`events`]).

pub mod events;
pub mod task;

pub use task::{Description, JiraId, NewTask, Task, TaskStatus, Title};
