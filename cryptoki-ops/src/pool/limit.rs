//! How many sessions the pool lets work at once: its size while the HSM keeps up, fewer while
//! it throttles. Additive increase, multiplicative decrease (AIMD, as TCP's congestion control,
//! RFC 5681 §3.1), with one refinement for an HSM's sharp capacity:
//!
//! - A refused request lowers the limit to 9/10 of the sessions that were in use, once per round
//!   of requests: a request started before the last decrease does not lower it by 9/10 again,
//!   but by one more request (a burst of k refusals among n in flight says the HSM took about
//!   n − k), so 64 callers against a capacity of 14 come down to it in one round.
//! - Each success raises the limit by 1/limit, about one session per round of requests, up to
//!   just below the number in use at the last refusal (about the HSM's capacity); from there on
//!   eight times slower, probing whether the HSM can take more now. Never above the pool's size.
//!
//! Callers above the limit wait in the checkout (bounded by its timeout) instead of sending
//! requests the HSM would refuse, so they see a longer wait rather than an error (AWS user
//! guide, "HSM throttling": lower the load or retry with back-off).

use std::time::Instant;

/// The factor of the decrease.
const DECREASE: f64 = 0.9;
/// How much slower the limit grows beyond the last refusal's level.
const PROBE_SLOWER: f64 = 8.0;

/// The limit of sessions in use at once; see the module documentation.
#[derive(Debug)]
pub(crate) struct Limit {
    value: f64,
    max: f64,
    /// Sessions in use (less the other refusals of the round) when the HSM last refused one
    /// more: about its capacity plus one. The pool's size until the first refusal.
    ceiling: f64,
    /// When the limit was last lowered by the factor.
    lowered: Option<Instant>,
}

impl Limit {
    /// A limit at the pool's size `max` (at least 1).
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            value: max,
            max,
            ceiling: max,
            lowered: None,
        }
    }

    /// Sessions that may be in use now (at least 1).
    pub(crate) fn allowed(&self) -> usize {
        (self.value as usize).max(1)
    }

    /// A request succeeded: raises the limit; whether one more session is allowed now.
    pub(crate) fn succeeded(&mut self) -> bool {
        if self.value >= self.max {
            return false;
        }
        let before = self.allowed();
        let step = if self.value + 1.0 < self.ceiling {
            1.0 / self.value
        } else {
            1.0 / (PROBE_SLOWER * self.value)
        };
        self.value = (self.value + step).min(self.max);
        self.allowed() > before
    }

    /// A request started at `started` was refused while `in_use` sessions were in use.
    pub(crate) fn throttled(&mut self, started: Instant, in_use: usize) {
        if self.lowered.is_some_and(|lowered| started <= lowered) {
            // Another refusal of the round already counted: one request more than it took.
            self.ceiling = (self.ceiling - 1.0).max(1.0);
        } else {
            self.ceiling = self.value.min(in_use as f64).max(1.0);
            self.lowered = Some(Instant::now());
        }
        self.value = (self.ceiling * DECREASE).max(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_refusals_brings_the_limit_to_what_the_hsm_took_in_one_round() {
        let mut limit = Limit::new(64);
        assert_eq!(limit.allowed(), 64);
        // 64 in flight, 50 refused: the HSM took 14.
        let started = Instant::now();
        for _ in 0..50 {
            limit.throttled(started, 64);
        }
        assert_eq!(limit.allowed(), 13, "9/10 of 15");
        // A request sent after the decrease and refused lowers it by the factor again.
        std::thread::sleep(Duration::from_millis(1));
        limit.throttled(Instant::now(), 13);
        assert_eq!(limit.allowed(), 11);
    }

    #[test]
    fn the_limit_follows_the_sessions_in_use_and_never_falls_below_one() {
        let mut limit = Limit::new(64);
        limit.throttled(Instant::now(), 8);
        assert_eq!(limit.allowed(), 7, "9/10 of the 8 in use, not of 64");
        let started = Instant::now();
        for _ in 0..20 {
            limit.throttled(started, 1);
        }
        assert_eq!(limit.allowed(), 1);
    }

    #[test]
    fn successes_raise_it_fast_below_the_last_refusal_and_slowly_beyond() {
        let mut limit = Limit::new(32);
        limit.throttled(Instant::now(), 20);
        assert_eq!(limit.allowed(), 18, "9/10 of 20");
        // About one round of successes (18) per session below the level of the refusal.
        let grew = (0..19).filter(|_| limit.succeeded()).count();
        assert_eq!((grew, limit.allowed()), (1, 19));
        // From 19 (one below the 20 refused) on, eight rounds per session.
        for _ in 0..19 * 4 {
            limit.succeeded();
        }
        assert_eq!(limit.allowed(), 19, "probing slowly");
        for _ in 0..19 * 5 {
            limit.succeeded();
        }
        assert_eq!(limit.allowed(), 20);
        for _ in 0..100_000 {
            limit.succeeded();
        }
        assert_eq!(limit.allowed(), 32, "back to the pool's size, never above");
        assert!(!limit.succeeded());
    }
}
