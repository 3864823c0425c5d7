//! Business time: when a task was created, which billing day an entry
//! belongs to, which day is "today". Services read it from a [`Clock`]
//! rather than from the system directly, so `popug simulate` and the
//! end-to-end tests can play whole working days in seconds and close them,
//! while production runs on the system clock, which it cannot move.
//!
//! Token lifetimes, retry pauses and timeouts stay on real time: they are
//! about the machine, not about the business.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Utc};

/// The source of business time. Cloning shares it: every service of one
/// simulated company reads the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Microseconds added to the system time; `None` on the system clock.
    /// Time still flows on a simulated clock, so event order is kept.
    offset_micros: Option<Arc<AtomicI64>>,
}

/// A simulated clock may only move forward; this names the refused move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The system clock is not ours to move.
    #[error("the system clock cannot be moved")]
    System,
    /// Business time never runs backwards.
    #[error("cannot move the clock back from {now} to {to}")]
    Backwards {
        /// The clock's time when asked.
        now: DateTime<Utc>,
        /// The time asked for.
        to: DateTime<Utc>,
    },
}

impl Clock {
    /// The system clock (production).
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and then runs at real speed until it is
    /// moved forward with [`Clock::advance_to`].
    pub fn simulated(start: DateTime<Utc>) -> Self {
        let offset = (start - Utc::now()).num_microseconds().unwrap_or(0);
        Self {
            offset_micros: Some(Arc::new(AtomicI64::new(offset))),
        }
    }

    /// The current business time.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.offset_micros {
            None => now,
            Some(offset) => now + chrono::Duration::microseconds(offset.load(Ordering::SeqCst)),
        }
    }

    /// Moves a simulated clock forward to `to`.
    pub fn advance_to(&self, to: DateTime<Utc>) -> Result<(), ClockError> {
        let offset = self.offset_micros.as_ref().ok_or(ClockError::System)?;
        let now = self.now();
        if to < now {
            return Err(ClockError::Backwards { now, to });
        }
        offset.fetch_add((to - now).num_microseconds().unwrap_or(0), Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_moves_forward_only() {
        let start = "2026-01-05T09:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        let clock = Clock::simulated(start);
        let shared = clock.clone();
        assert!((clock.now() - start).num_seconds().abs() < 5);
        let evening = "2026-01-05T23:59:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        clock.advance_to(evening).expect("forward");
        assert!(shared.now() >= evening, "clones share the time");
        assert!(matches!(
            clock.advance_to(start),
            Err(ClockError::Backwards { .. })
        ));
        assert_eq!(Clock::system().advance_to(start), Err(ClockError::System));
    }
}
