//! The pace of one partition: AWS allows each (account, region) 2 LookupEvents
//! calls a second, and the pace is the one place that waits for that.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::lock;
use super::retry::backoff;
use super::written::Written;

/// Spaces one partition's calls `1/rate` apart. Several chains of calls may
/// share one partition's pace: each takes its own turn with [`take_turn`].
///
/// The spacing adapts: a throttle widens it (a server may count "2 per second"
/// by a stricter window than a token bucket, and latency jitter moves arrival
/// times), and each success narrows it back toward `1/rate`.
pub struct Pace {
    base: Duration,
    interval: Duration,
    next: Instant,
    /// Callers of [`take_turn`] waiting for a turn: (ticket, its claim: the most goes first).
    waiting: Vec<(u64, f64)>,
    /// The last ticket given out: tickets go up, so a lower one asked first.
    tickets: u64,
    /// When the last call was sent ([`Pace::sent`]).
    last_sent: Option<Instant>,
    /// Calls sent ([`Pace::sent`]).
    sent_calls: u32,
    /// When the last call went on the wire, if its body says (see
    /// [`super::written`]): later than [`Pace::sent`] by any connect or any
    /// queue in the HTTP client, and the next call waits an interval from it.
    written: Arc<Written>,
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
            waiting: Vec::new(),
            tickets: 0,
            last_sent: None,
            sent_calls: 0,
            written: Written::new(),
        }
    }

    /// What a call's body marks when it goes on the wire.
    pub fn written(&self) -> &Arc<Written> {
        &self.written
    }

    /// When the next call may go: its turn, and an interval (and any
    /// [`Pace::extra`]) after the last call.
    fn due(&self) -> Instant {
        match self.after_last() {
            Some(after) => self.next.max(after),
            None => self.next,
        }
    }

    /// The last call: when it went on the wire, or was sent if later.
    fn last_call(&self) -> Option<Instant> {
        self.last_sent.max(self.written.last())
    }

    /// The earliest the next call may follow the last one.
    fn after_last(&self) -> Option<Instant> {
        self.last_call()
            .map(|last| last + self.interval + self.extra())
    }

    /// How much more than an interval the next call waits: a fifth of one
    /// after each of the partition's first [`MARGINED_CALLS`] calls, then
    /// none. Those meet the run's busiest seconds (every partition starting,
    /// thousands of connections opening): a server on the same two cores
    /// counted some of them up to 150 ms after they left, and they met the
    /// next call, half a second later, less than 0.5 s apart. A bucket of one
    /// token threw back 4.8 % of a@800's calls with no margin, 0.7-1.9 % with
    /// one after the first call only (then the third calls met the second),
    /// none with one after each of the first two. It costs the deepest
    /// partition 0.2 s once.
    fn extra(&self) -> Duration {
        match self.sent_calls {
            1..=MARGINED_CALLS => self.base / 5,
            _ => Duration::ZERO,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Claim the next turn: the instant this call may be sent, one interval
    /// after the turn claimed before it ([`take_turn`] claims it once due).
    fn reserve(&mut self) -> Instant {
        let at = self.due().max(Instant::now());
        self.next = at + self.interval;
        at
    }

    /// Wait for this partition's next turn (holding no call slot).
    pub async fn wait(&self) {
        until(self.due()).await;
    }

    /// A call was sent now: the next may go one interval later, not sooner
    /// than the turn already claimed. A call that waited after its turn (for a
    /// call slot) pushes the next turn back with it: counted from the turns
    /// alone, the next call could follow it by less than an interval, which a
    /// bucket of one token (two calls pass only an interval apart) throttles.
    pub fn sent(&mut self) {
        let now = Instant::now();
        self.sent_calls += 1;
        self.last_sent = Some(now);
        self.next = self.next.max(now + self.interval + self.extra());
    }

    /// For callers that share the pace and may wait after their turn: marks
    /// the call sent now ([`Pace::sent`]) and says true, unless the last call
    /// went less than an interval ago (another caller's, late for a slot after
    /// an earlier turn): then false, and the next turn is one interval after
    /// that call.
    pub fn try_send(&mut self) -> bool {
        match self.after_last() {
            Some(after) if Instant::now() < after => {
                self.next = self.next.max(after);
                false
            }
            _ => {
                self.sent();
                true
            }
        }
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

    /// The call was throttled (`consecutive` times in a row): space calls
    /// wider (at most 3x) and wait before the next. After a first throttle,
    /// one widened interval from its answer: the call was counted before it
    /// was answered, so a retry that late arrives at least that long after
    /// it, when a bucket at the rate holds a token again. A throttle of a
    /// deep partition's last chain is that chain's whole wait, and a random
    /// one to two intervals more made it cost a second at 800 ms (the
    /// simulator, with the round trip spent before its bucket looks). A
    /// throttle again backs off exponentially, from one to two intervals.
    pub fn throttled(&mut self, consecutive: u32) {
        self.interval = (self.interval.mul_f64(1.25)).min(self.base * 3);
        let wait = match consecutive {
            0 | 1 => self.interval,
            n => backoff(self.interval * 2, Duration::from_secs(8), n - 1),
        };
        self.delay(wait);
    }

    /// Push the next turn back, e.g. after a failure.
    pub fn delay(&mut self, by: Duration) {
        self.next = self.next.max(Instant::now() + by);
    }
}

/// How many of a partition's first calls are followed by a fifth of an
/// interval more (see `Pace::extra`).
const MARGINED_CALLS: u32 = 2;

/// Wait for a turn of the pace in `shared` (reached with `pace`) and take it;
/// the instant it was due. Of the callers waiting for a turn, the one with the
/// most `left` to read takes it (on a tie, the one that asked first; a
/// partition's chains claim with the seconds of their range still to read).
/// Taken in the order they were asked for, the last pages of a partition fall
/// to one chain, which then reads them a round trip apart rather than at the
/// pace: at 800 ms, a 25-call partition ended 0.7 s after its floor. Longest
/// first, its chains end together.
pub async fn take_turn<S>(
    shared: &Mutex<S>,
    pace: impl Fn(&mut S) -> &mut Pace,
    left: f64,
) -> Instant {
    let mut ticket = Ticket {
        shared,
        pace: &pace,
        number: None,
    };
    loop {
        let wake = {
            let mut guard = lock(shared);
            let p = pace(&mut guard);
            let number = match ticket.number {
                Some(n) => n,
                None => {
                    p.tickets += 1;
                    p.waiting.push((p.tickets, left));
                    ticket.number = Some(p.tickets);
                    p.tickets
                }
            };
            let first = goes_first(&p.waiting, number, left);
            let due = p.due();
            if first && due <= Instant::now() {
                p.waiting.retain(|&(t, _)| t != number);
                ticket.number = None;
                return p.reserve();
            }
            // The caller that goes first waits for this same turn, and takes it.
            match first {
                true => due,
                false => due.max(Instant::now()) + p.interval,
            }
        };
        until(wake).await;
    }
}

/// Whether the caller holding `ticket`, with `left` calls to make, goes before
/// every other one waiting.
fn goes_first(waiting: &[(u64, f64)], ticket: u64, left: f64) -> bool {
    waiting
        .iter()
        .all(|&(t, l)| t == ticket || l < left || (l == left && t > ticket))
}

/// A caller's place among those waiting for a turn; dropped while it waits
/// (the run cancelled), it leaves, so nobody waits behind a caller that is gone.
struct Ticket<'a, S, F: Fn(&mut S) -> &mut Pace> {
    shared: &'a Mutex<S>,
    pace: &'a F,
    number: Option<u64>,
}

impl<S, F: Fn(&mut S) -> &mut Pace> Drop for Ticket<'_, S, F> {
    fn drop(&mut self) {
        if let Some(n) = self.number {
            let mut guard = lock(self.shared);
            (self.pace)(&mut guard).waiting.retain(|&(t, _)| t != n);
        }
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
    fn a_call_late_after_its_turn_sets_the_next_and_one_right_after_it_waits() {
        let mut p = Pace::new(2.0);
        let turn = p.reserve();
        // Late for a slot: sent 200 ms after its turn.
        std::thread::sleep(Duration::from_millis(200));
        assert!(p.try_send());
        let sent = Instant::now();
        assert!(
            p.next >= turn + Duration::from_millis(700),
            "{:?}",
            p.next - turn
        );
        assert!(p.next >= sent + Duration::from_millis(499));
        // Another caller with a turn claimed before: not sent, a later turn
        // (after a partition's first call, a fifth of an interval later still).
        assert!(!p.try_send());
        std::thread::sleep(Duration::from_millis(510));
        assert!(!p.try_send());
        std::thread::sleep(Duration::from_millis(100));
        assert!(p.try_send());
        // After the second call, a fifth more again; after the third, the
        // interval alone.
        let second = Instant::now();
        assert!(p.next >= second + Duration::from_millis(599));
        std::thread::sleep(Duration::from_millis(610));
        assert!(p.try_send());
        let third = Instant::now();
        assert!(p.next >= third + Duration::from_millis(499));
        assert!(
            p.next <= third + Duration::from_millis(520),
            "{:?}",
            p.next - third
        );
    }

    /// A call that left later than it was sent (a slow connect, a busy
    /// client: its body says when) holds the next one an interval from then.
    #[tokio::test(start_paused = true)]
    async fn the_next_call_waits_an_interval_from_when_the_last_went_on_the_wire() {
        let shared = Mutex::new(Pace::new(2.0));
        let t0 = Instant::now();
        for _ in 0..2 {
            take_turn(&shared, |p| p, 1.0).await;
            assert!(lock(&shared).try_send());
        }
        // The second call, sent at 0.6 s (a fifth more after the first), went
        // on the wire 0.3 s later: the third an interval and a fifth after.
        assert_eq!(Instant::now() - t0, Duration::from_millis(600));
        let written = lock(&shared).written().clone();
        tokio::time::sleep(Duration::from_millis(300)).await;
        written.mark();
        take_turn(&shared, |p| p, 1.0).await;
        let third = Instant::now() - t0;
        assert_eq!(third, Duration::from_millis(1500), "{third:?}");
        // One sent before then is refused, and the next turn moved with it.
        let mut p = Pace::new(2.0);
        assert!(p.try_send());
        p.written().mark();
        tokio::time::sleep(Duration::from_millis(550)).await;
        p.written().mark();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!p.try_send(), "0.1 s after the last call left");
        assert!(p.due() >= Instant::now() + Duration::from_millis(399));
    }

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

    /// A first throttle holds the next turn back one widened interval from
    /// now, no more; a second in a row at least that, up to twice as long.
    #[tokio::test(start_paused = true)]
    async fn a_first_throttle_waits_one_interval_and_a_second_backs_off() {
        let mut p = Pace::new(2.0);
        p.reserve();
        let now = Instant::now();
        p.throttled(1);
        assert_eq!(p.next - now, Duration::from_millis(625));
        p.throttled(2);
        let wait = p.next - now;
        assert!(
            (Duration::from_millis(781)..=Duration::from_millis(1563)).contains(&wait),
            "{wait:?}"
        );
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

    /// Chains of `pages` pages each share one pace of 2 calls/s at an 800 ms
    /// round trip; a chain knows how many pages it has left once it has read
    /// one (`longest_first`), or says nothing (every caller equal: turns go
    /// in the order asked). Returns the virtual seconds until the last page.
    async fn chains_end_after(pages: &[u32], longest_first: bool) -> f64 {
        let shared = Mutex::new(Pace::new(2.0));
        let started = Instant::now();
        let chains = pages.iter().map(|&n| {
            let shared = &shared;
            async move {
                for read in 0..n {
                    let left = match (longest_first, read) {
                        (false, _) => 0.0,
                        (true, 0) => f64::INFINITY,
                        (true, r) => (n - r) as f64,
                    };
                    take_turn(shared, |p| p, left).await;
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
            }
        });
        futures::future::join_all(chains).await;
        started.elapsed().as_secs_f64()
    }

    /// The deepest partition of workload (a) at 800 ms: its event names take
    /// 12, 9 and 4 pages. Turns in the order asked left its last two pages to
    /// one chain, a round trip apart (0.7 s late in the benchmark); longest
    /// first, it ends at its floor, (25 − 1) / 2 s + 0.8 s.
    #[tokio::test(start_paused = true)]
    async fn the_chain_with_most_pages_left_takes_the_turn_so_chains_end_together() {
        let pages = [12, 9, 4];
        let floor = (pages.iter().sum::<u32>() - 1) as f64 * 0.5 + 0.8;
        let in_order = chains_end_after(&pages, false).await;
        let longest_first = chains_end_after(&pages, true).await;
        assert!(
            (longest_first - floor).abs() < 0.01,
            "longest first: {longest_first} s, floor {floor} s"
        );
        assert!(
            in_order > floor + 0.5,
            "in the order asked: {in_order} s, floor {floor} s (the case this guards against)"
        );
    }

    /// A caller that stops waiting (its run cancelled) leaves the queue: the
    /// one behind it is not held up.
    #[tokio::test(start_paused = true)]
    async fn a_caller_dropped_while_waiting_holds_up_nobody() {
        let shared = Mutex::new(Pace::new(2.0));
        take_turn(&shared, |p| p, 1.0).await;
        // The next turn is 500 ms away; a caller with more pages left waits for it.
        let gone =
            tokio::time::timeout(Duration::from_millis(100), take_turn(&shared, |p| p, 100.0))
                .await;
        assert!(gone.is_err(), "the turn was not due yet");
        assert!(lock(&shared).waiting.is_empty(), "the dropped caller left");
        let asked = Instant::now();
        take_turn(&shared, |p| p, 1.0).await;
        let waited = asked.elapsed();
        assert!(
            waited <= Duration::from_millis(401),
            "waited {waited:?} for a turn due 400 ms later"
        );
    }
}
