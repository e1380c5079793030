//! When a crashed service is started again, and when msvc gives up on it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Exponential backoff with jitter, capped, and a crash budget per time window.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub base: Duration,
    /// Longest delay between two restarts.
    pub cap: Duration,
    /// Crashes within `window` after which msvc gives up on the service.
    pub max_crashes: usize,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_crashes: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// What to do after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay; `crashes` counts the crashes in the window.
    Restart { delay: Duration, crashes: usize },
    /// Too many crashes in the window.
    GiveUp { crashes: usize },
}

/// The recent crashes of one instance.
#[derive(Debug, Clone, Default)]
pub struct CrashHistory {
    crashes: VecDeque<Instant>,
}

impl CrashHistory {
    pub fn clear(&mut self) {
        self.crashes.clear();
    }
}

impl RestartPolicy {
    /// Records a crash at `now` and decides; `random` in [0, 1) sets the jitter of the
    /// delay (see [`RestartPolicy::delay`]), passed in so that the caller owns the dice.
    pub fn after_crash(&self, history: &mut CrashHistory, now: Instant, random: f64) -> Decision {
        history.crashes.push_back(now);
        while history
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            history.crashes.pop_front();
        }
        let crashes = history.crashes.len();
        if crashes >= self.max_crashes {
            return Decision::GiveUp { crashes };
        }
        Decision::Restart {
            delay: self.delay(crashes, random),
            crashes,
        }
    }

    /// The delay after the `crashes`-th crash in the window; `random` in [0, 1) sets the
    /// jitter (±20 %) so that services crashing together do not restart in lockstep.
    pub fn delay(&self, crashes: usize, random: f64) -> Duration {
        let exponent = u32::try_from(crashes.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let raw = self.base.saturating_mul(1 << exponent).min(self.cap);
        let jittered = raw.mul_f64(0.8 + 0.4 * random);
        jittered.min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RestartPolicy::default();
        let mid = |n| p.delay(n, 0.5);
        assert_eq!(mid(1), Duration::from_millis(500));
        assert_eq!(mid(2), Duration::from_secs(1));
        assert_eq!(mid(3), Duration::from_secs(2));
        assert_eq!(mid(10), Duration::from_secs(30));
        assert_eq!(mid(1000), Duration::from_secs(30));
        assert!(p.delay(1, 0.0) >= Duration::from_millis(400));
        assert!(p.delay(1, 0.999) < Duration::from_millis(600));
    }

    #[test]
    fn gives_up_after_too_many_crashes_in_the_window() {
        let p = RestartPolicy::default();
        let mut h = CrashHistory::default();
        let t0 = Instant::now();
        for i in 0..4 {
            let d = p.after_crash(&mut h, t0 + Duration::from_secs(i), 0.5);
            assert!(matches!(d, Decision::Restart { .. }), "{d:?}");
        }
        assert_eq!(
            p.after_crash(&mut h, t0 + Duration::from_secs(4), 0.5),
            Decision::GiveUp { crashes: 5 }
        );
    }

    #[test]
    fn old_crashes_leave_the_window() {
        let p = RestartPolicy::default();
        let mut h = CrashHistory::default();
        let t0 = Instant::now();
        for i in 0..20u64 {
            let d = p.after_crash(&mut h, t0 + Duration::from_secs(i * 30), 0.5);
            assert!(
                matches!(d, Decision::Restart { crashes, .. } if crashes <= 3),
                "{d:?}"
            );
        }
    }
}
