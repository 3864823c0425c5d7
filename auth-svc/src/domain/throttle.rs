//! Failed sign-ins slow their source down. Each key (a login, a client
//! address) may fail a few times freely; after that each failure locks the
//! key for a delay that doubles from `first_delay` up to `max_delay`. While a
//! key is locked every attempt is refused without checking the password, and
//! a refused attempt does not count as a failure, so a flood cannot extend a
//! lock: nobody can be locked out for longer than `max_delay` at a time. A
//! success clears the key; a key unused for `forget_after` is forgotten.
//!
//! Pure: the caller passes the time, so the rules are tested without waiting.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// How one kind of key is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures that do not lock; the next one does.
    pub free_failures: u32,
    /// The first lock's length; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest lock.
    pub max_delay: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
}

impl Policy {
    /// The lock after the `failures`-th failure, if any.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free_failures.saturating_add(1))?;
        let factor = 1_u32.checked_shl(over).unwrap_or(u32::MAX);
        Some(
            self.first_delay
                .checked_mul(factor)
                .unwrap_or(self.max_delay)
                .min(self.max_delay),
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// The failures of every key, bounded in size.
#[derive(Debug)]
pub struct Throttle {
    policy: Policy,
    capacity: usize,
    entries: HashMap<String, Entry>,
}

impl Throttle {
    /// A throttle that remembers at most `capacity` keys.
    pub fn new(policy: Policy, capacity: usize) -> Self {
        Self {
            policy,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// `Ok` if `key` may try now, else how long until it may.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.entries.get(key).and_then(|entry| entry.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt of `key` (one that was checked, not refused).
    pub fn failed(&mut self, key: &str, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            self.forget_idle(now);
            if self.entries.len() >= self.capacity {
                // Under a flood of distinct keys, the oldest half goes.
                let mut ages: Vec<Instant> = self
                    .entries
                    .values()
                    .map(|entry| entry.last_failure)
                    .collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                self.entries.retain(|_, entry| entry.last_failure > cutoff);
            }
        }
        let forget_after = self.policy.forget_after;
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.duration_since(entry.last_failure) > forget_after {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.locked_until = self
            .policy
            .delay_after(entry.failures)
            .map(|delay| now + delay);
    }

    /// A successful attempt of `key`: its failures are forgotten.
    pub fn succeeded(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn forget_idle(&mut self, now: Instant) {
        let forget_after = self.policy.forget_after;
        self.entries
            .retain(|_, entry| now.duration_since(entry.last_failure) <= forget_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        free_failures: 3,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        forget_after: Duration::from_secs(900),
    };

    #[test]
    fn delays_double_after_the_free_failures_and_stop_at_the_cap() {
        let delays: Vec<Option<u64>> = (1..=10)
            .map(|n| POLICY.delay_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(30),
                Some(30)
            ]
        );
        assert_eq!(POLICY.delay_after(u32::MAX), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_locked_key_waits_and_a_flood_during_the_lock_does_not_extend_it() {
        let mut throttle = Throttle::new(POLICY, 100);
        let start = Instant::now();
        for _ in 0..4 {
            assert!(throttle.check("kesha", start).is_ok());
            throttle.failed("kesha", start);
        }
        assert_eq!(throttle.check("kesha", start), Err(Duration::from_secs(1)));
        // Refused attempts are not checked, so they are not failures: the
        // lock ends on time whatever arrives meanwhile.
        let later = start + Duration::from_millis(1_001);
        assert!(throttle.check("kesha", later).is_ok());
        assert!(
            throttle.check("chick", start).is_ok(),
            "other keys are free"
        );
        throttle.succeeded("kesha");
        throttle.failed("kesha", later);
        assert!(
            throttle.check("kesha", later).is_ok(),
            "a success starts afresh"
        );
    }

    #[test]
    fn old_failures_are_forgotten_and_memory_stays_bounded() {
        let mut throttle = Throttle::new(POLICY, 10);
        let start = Instant::now();
        throttle.failed("kesha", start);
        throttle.failed("kesha", start);
        let much_later = start + Duration::from_secs(901);
        throttle.failed("kesha", much_later);
        assert!(
            throttle.check("kesha", much_later).is_ok(),
            "counted from one again"
        );
        for n in 0..1_000 {
            throttle.failed(&format!("login-{n}"), much_later + Duration::from_millis(n));
            assert!(throttle.len() <= 10);
        }
    }
}
