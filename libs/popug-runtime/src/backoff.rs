//! Growing pauses between retries, shared by everything that retries: the
//! relay and consumers reconnecting to the broker, and the supervisor
//! restarting background work ([`crate::supervise`]).

use std::time::Duration;

/// Growing pauses between retries: 1, 3, 5, 10, 30 s, then every 30 s
/// (as the business asked for publishing).
#[derive(Debug, Clone)]
pub struct Backoff {
    schedule: Vec<Duration>,
    attempt: usize,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new([1, 3, 5, 10, 30].map(Duration::from_secs).to_vec())
    }
}

impl Backoff {
    /// A schedule; its last pause repeats. Tests use a faster one.
    pub fn new(schedule: Vec<Duration>) -> Self {
        assert!(
            !schedule.is_empty(),
            "a retry schedule needs at least one pause"
        );
        Self {
            schedule,
            attempt: 0,
        }
    }

    /// The pause before the next retry.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.schedule[self.attempt.min(self.schedule.len() - 1)];
        self.attempt += 1;
        pause
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> usize {
        self.attempt
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_then_repeats_its_last_pause() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..7).map(|_| backoff.next_pause().as_secs()).collect();
        assert_eq!(pauses, [1, 3, 5, 10, 30, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_pause().as_secs(), 1);
    }
}
