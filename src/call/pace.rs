//! The pace of one partition: AWS allows each (account, region) 2 LookupEvents
//! calls a second, and the pace is the one place that waits for that.

use std::time::Duration;

use tokio::time::Instant;

use super::retry::backoff;

/// Spaces one partition's calls `1/rate` apart. A partition has one call in
/// flight at a time, so the spacing is measured from each actual send.
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
        let base = Duration::from_secs_f64(1.0 / rate);
        Pace {
            base,
            interval: base,
            next: Instant::now(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Wait for this partition's next turn (holding no call slot).
    pub async fn wait(&self) {
        tokio::time::sleep_until(self.next).await;
    }

    /// A call was sent now: the next may go one interval later.
    pub fn sent(&mut self) {
        self.next = Instant::now() + self.interval;
    }

    /// The call succeeded: drift back toward the configured rate.
    pub fn succeeded(&mut self) {
        if self.interval > self.base {
            self.interval = (self.interval - (self.interval - self.base) / 8).max(self.base);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
