//! What every popug service runs on, written once: typed settings read from
//! the environment ([`settings`]), logs, traces and metrics ([`telemetry`],
//! [`instrument`]), business time ([`clock`]), list paging ([`paging`]), a Postgres pool
//! that creates its database and migrates it ([`database`]), and the gRPC
//! server with health, reflection and graceful shutdown wrapped in the
//! `Application::build` / `run_until_stopped` shape ([`server`]). Every
//! Postgres advisory lock any of them takes is named in [`advisory_locks`].

pub mod advisory_locks;
pub mod backoff;
pub mod calendar;
pub mod clock;
pub mod database;
pub mod directory;
pub mod error;
pub mod instrument;
pub mod paging;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod sql;
pub mod supervise;
pub mod telemetry;

pub use calendar::Timezone;
pub use clock::Clock;
pub use error::ApiError;
pub use server::{Application, Services, StartupError};
pub use settings::{Env, ProducerUsers, Service, Settings, SettingsError};
pub use supervise::BackgroundTask;
