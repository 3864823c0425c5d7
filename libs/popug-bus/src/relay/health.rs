//! The relay's health as the ops service and the metrics see it: connected
//! or not, blocked by the broker or not, and the last error.

use std::sync::Mutex;

/// The relay's health, shared with the ops service.
#[derive(Debug, Default)]
pub struct RelayHealth {
    inner: Mutex<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    connected: bool,
    blocked: bool,
    last_error: Option<String>,
}

impl RelayHealth {
    /// Whether the relay holds a broker connection, and its last error.
    pub fn snapshot(&self) -> (bool, Option<String>) {
        let inner = self.lock();
        (inner.connected, inner.last_error.clone())
    }

    /// Whether the broker blocks the relay's publishing (see the module
    /// docs); the reason is the last error.
    pub fn blocked(&self) -> bool {
        self.lock().blocked
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn record(&self, connected: bool, blocked: bool, last_error: Option<String>) {
        *self.lock() = HealthInner {
            connected,
            blocked,
            last_error,
        };
    }
}
