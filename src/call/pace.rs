//! The pace of one partition: AWS allows each (account, region) 2 LookupEvents
//! calls a second, and the pace is the one place that waits for that.

use std::time::Duration;

use tokio::time::Instant;

use super::retry::backoff;

/// Spaces one partition's calls `1/rate` apart. Several chains of calls may
/// share one partition's pace: each claims its own turn with [`Pace::reserve`].
///
/// The spacing adapts: a throttle widens it (a server may count "2 per second"
/// by a stricter window than a token bucket, and latency jitter moves arrival
/// times), and each success narrows it back toward `1/rate`.
pub struct Pace {
    base: Duration,
    interval: Duration,
    next: Instant,
}

impl Pace {
    pub fn new(rate: f64) -> Self {
        // The config refuses rates that make no sense; whatever comes, never panic.
        let base = Duration::try_from_secs_f64(1.0 / rate)
            .unwrap_or(Duration::from_secs(100))
            .min(Duration::from_secs(100));
        Pace {
            base,
            interval: base,
            next: Instant::now(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Claim the next turn: the instant this call may be sent, one interval
    /// after the turn claimed before it. The caller sleeps until then, holding
    /// no call slot.
    pub fn reserve(&mut self) -> Instant {
        let at = self.next.max(Instant::now());
        self.next = at + self.interval;
        at
    }

    /// Wait for this partition's next turn (holding no call slot).
    pub async fn wait(&self) {
        until(self.next).await;
    }

    /// A call was sent now: the next may go one interval later.
    pub fn sent(&mut self) {
        self.next = Instant::now() + self.interval;
    }

    /// The call succeeded: back toward the configured rate, half the way each
    /// time. A single throttle (two calls that met at the server after a
    /// stall on the way) used to cost a deep partition about a second: each
    /// success took back an eighth of the widening, so its next dozen calls
    /// were all late.
    pub fn succeeded(&mut self) {
        if self.interval > self.base {
            self.interval = (self.interval - (self.interval - self.base) / 2).max(self.base);
        }
    }

    /// The call was throttled: space calls wider (at most 3x) and wait before the next.
    pub fn throttled(&mut self, consecutive: u32) {
        self.interval = (self.interval.mul_f64(1.25)).min(self.base * 3);
        let wait = backoff(self.interval * 2, Duration::from_secs(8), consecutive);
        self.delay(wait);
    }

    /// Push the next turn back, e.g. after a failure.
    pub fn delay(&mut self, by: Duration) {
        self.next = self.next.max(Instant::now() + by);
    }
}

/// Sleep until `at`, arming no timer for a turn already due.
pub async fn until(at: Instant) {
    if at > Instant::now() {
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_turns_are_one_interval_apart() {
        let mut p = Pace::new(2.0);
        let t0 = p.reserve();
        let t1 = p.reserve();
        let t2 = p.reserve();
        assert_eq!(t1 - t0, Duration::from_millis(500));
        assert_eq!(t2 - t1, Duration::from_millis(500));
        // Idle for a while: the next turn is now, not in the past.
        std::thread::sleep(Duration::from_millis(1200));
        assert!(p.reserve() >= Instant::now() - Duration::from_millis(50));
    }

    #[test]
    fn pace_widens_on_throttles_and_returns_to_the_rate() {
        let mut p = Pace::new(2.0);
        assert_eq!(p.interval(), Duration::from_millis(500));
        for n in 1..20 {
            p.throttled(n);
        }
        assert_eq!(p.interval(), Duration::from_millis(1500), "capped at 3x");
        for _ in 0..200 {
            p.succeeded();
        }
        assert!(
            p.interval() < Duration::from_millis(501),
            "{:?}",
            p.interval()
        );
        assert!(p.interval() >= Duration::from_millis(500));
    }

    /// One throttle costs a few calls, not a dozen: four successes bring the
    /// pace back within 10 ms of the rate (an eighth a success left 73 ms).
    #[test]
    fn one_throttle_is_taken_back_within_a_few_successes() {
        let mut p = Pace::new(2.0);
        p.throttled(1);
        assert_eq!(p.interval(), Duration::from_millis(625));
        for _ in 0..4 {
            p.succeeded();
        }
        assert!(
            p.interval() <= Duration::from_millis(510),
            "{:?}",
            p.interval()
        );
    }
}
