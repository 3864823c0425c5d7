//! auth-svc's rules, free of gRPC and SQL: what a valid login, password,
//! name and email are ([`account`]), how passwords are hashed
//! ([`password`]), and which event each account change produces ([`events`]).

pub mod account;
pub mod events;
pub mod password;
pub mod throttle;

pub use account::{Account, Credentials, Email, Login, Name, NewAccount, Password};
