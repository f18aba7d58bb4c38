//! The one bound on calls in flight across the whole run: fixed
//! ([`CallSlots::new`]) or sized by the run itself ([`CallSlots::auto`]) from what
//! keeps every partition at its pace at the latency it observes.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::inflight::auto_limit;

/// How soon a call gets a slot when calls wait for one. Which partition is the
/// critical path is known only from its pages: a partition with more pages to read
/// goes first, so it is not still pacing itself after every other one has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Calls whose order does not change the run's length (a light partition's later event names).
    Low,
    /// The default: discovery, AssumeRole, a partition's first call.
    Normal,
    /// A partition known to have more than one page: the run's critical path.
    High,
}

/// The single bound on calls in flight across the whole run. A slot is held only
/// for the duration of one HTTP call, never while waiting. Waiters are served by
/// [`Priority`], first come first served within one.
///
/// An automatic bound follows `demand × latency`: the calls per second the
/// running partitions may make (registered with [`CallSlots::demand`]) times the
/// mean time a slot is held (one round trip), with room for bursts, never above
/// the ceiling the open-file limit allows nor `--concurrency` when given.
#[derive(Clone)]
pub struct CallSlots {
    inner: Arc<SlotsInner>,
}

struct SlotsInner {
    state: Mutex<SlotsState>,
}

struct SlotsState {
    limit: usize,
    in_use: usize,
    next_seq: u64,
    waiting: BinaryHeap<Waiter>,
    auto: Option<Auto>,
}

/// What an automatic bound is computed from.
struct Auto {
    ceiling: usize,
    cap: Option<usize>,
    /// Calls per second the running partitions may make.
    demand: f64,
    /// Mean time a slot is held (seconds, moving average): the round trip.
    held_s: f64,
    /// The largest limit set so far, for the run's statistics.
    peak: usize,
}

impl Auto {
    fn limit(&self) -> usize {
        auto_limit(self.demand, self.held_s, self.ceiling, self.cap)
    }
}

/// Round trip assumed until the first call has come back.
const FIRST_GUESS_S: f64 = 0.25;

struct Waiter {
    priority: Priority,
    seq: u64,
    hand_over: oneshot::Sender<SlotPermit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// The heap's greatest is served first: highest priority, then the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// One call's slot; dropping it hands the slot to the next waiter.
pub struct SlotPermit {
    slots: Option<Arc<SlotsInner>>,
    since: Instant,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if let Some(s) = self.slots.take() {
            s.release(self.since.elapsed());
        }
    }
}

/// Calls per second a running partition (or account) may make, counted in the
/// automatic bound until this is dropped.
pub struct Demand {
    slots: Arc<SlotsInner>,
    rate: f64,
}

impl Drop for Demand {
    fn drop(&mut self) {
        let mut st = self.slots.lock();
        if let Some(a) = st.auto.as_mut() {
            a.demand = (a.demand - self.rate).max(0.0);
        }
        st.resize();
        drop(st);
    }
}

impl SlotsState {
    /// Recompute an automatic limit. Lowering it takes effect as calls end;
    /// raising it is served by [`SlotsInner::serve`].
    fn resize(&mut self) {
        if let Some(a) = self.auto.as_mut() {
            self.limit = a.limit();
            a.peak = a.peak.max(self.limit);
        }
    }
}

impl SlotsInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(self: &Arc<Self>, held: Duration) {
        let mut st = self.lock();
        st.in_use -= 1;
        if let Some(a) = st.auto.as_mut() {
            // A moving average over the last few dozen calls.
            a.held_s += (held.as_secs_f64() - a.held_s) / 32.0;
            st.resize();
        }
        self.serve(&mut st);
    }

    /// Hand free slots to waiters, highest priority first.
    fn serve(self: &Arc<Self>, st: &mut SlotsState) {
        while st.in_use < st.limit {
            let Some(w) = st.waiting.pop() else {
                return;
            };
            let permit = SlotPermit {
                slots: Some(self.clone()),
                since: Instant::now(),
            };
            st.in_use += 1;
            if let Err(mut p) = w.hand_over.send(permit) {
                // That waiter stopped waiting (its future was dropped): disarm the
                // returned permit (we hold the lock) and try the next one.
                p.slots = None;
                st.in_use -= 1;
            }
        }
    }
}

impl CallSlots {
    /// A fixed bound of `n` calls in flight.
    pub fn new(n: usize) -> Self {
        Self::with(n.max(1), None)
    }

    /// A bound sized by the run: `demand × latency` with room for bursts, at
    /// most `ceiling` (what the open-file limit allows) and at most `cap`
    /// (`--concurrency`) when given.
    pub fn auto(ceiling: usize, cap: Option<usize>) -> Self {
        let auto = Auto {
            ceiling: ceiling.max(1),
            cap,
            demand: 0.0,
            held_s: FIRST_GUESS_S,
            peak: 0,
        };
        let limit = auto.limit();
        Self::with(
            limit,
            Some(Auto {
                peak: limit,
                ..auto
            }),
        )
    }

    fn with(limit: usize, auto: Option<Auto>) -> Self {
        CallSlots {
            inner: Arc::new(SlotsInner {
                state: Mutex::new(SlotsState {
                    limit,
                    in_use: 0,
                    next_seq: 0,
                    waiting: BinaryHeap::new(),
                    auto,
                }),
            }),
        }
    }

    /// Count `rate` more calls per second in the automatic bound (no effect on
    /// a fixed one) until the returned guard is dropped.
    pub fn demand(&self, rate: f64) -> Demand {
        let mut st = self.inner.lock();
        if let Some(a) = st.auto.as_mut() {
            a.demand += rate.max(0.0);
        }
        st.resize();
        self.inner.serve(&mut st);
        drop(st);
        Demand {
            slots: self.inner.clone(),
            rate: rate.max(0.0),
        }
    }

    /// The bound now, and the largest it has been.
    pub fn limits(&self) -> (usize, usize) {
        let st = self.inner.lock();
        let peak = st.auto.as_ref().map_or(st.limit, |a| a.peak);
        (st.limit, peak)
    }

    /// A slot at [`Priority::Normal`].
    pub async fn acquire(&self) -> SlotPermit {
        self.acquire_at(Priority::Normal).await
    }

    pub async fn acquire_at(&self, priority: Priority) -> SlotPermit {
        let handed = {
            let mut st = self.inner.lock();
            // A free slot means nobody waits (release serves waiters first).
            if st.in_use < st.limit {
                st.in_use += 1;
                return SlotPermit {
                    slots: Some(self.inner.clone()),
                    since: Instant::now(),
                };
            }
            let (tx, rx) = oneshot::channel();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.waiting.push(Waiter {
                priority,
                seq,
                hand_over: tx,
            });
            rx
        };
        // The sender lives in the heap, which lives as long as `self.inner`.
        handed
            .await
            .expect("a waiting sender is never dropped unsent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_are_served_by_priority_then_in_order() {
        let slots = CallSlots::new(1);
        let held = slots.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, p) in [
            ("low1", Priority::Low),
            ("normal1", Priority::Normal),
            ("high1", Priority::High),
            ("low2", Priority::Low),
            ("high2", Priority::High),
        ] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = slots.acquire_at(p).await;
                order.lock().unwrap().push(name);
            }));
            // Let it queue before the next one.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["high1", "high2", "normal1", "low1", "low2"]
        );
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_lose_the_slot() {
        let slots = CallSlots::new(2);
        let a = slots.acquire().await;
        let b = slots.acquire().await;
        // Gives up while waiting.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), slots.acquire_at(Priority::High)).await;
        assert!(gave_up.is_err());
        drop(a);
        drop(b);
        // Both slots are back: two more fit at once.
        let c = tokio::time::timeout(Duration::from_millis(100), slots.acquire()).await;
        let d = tokio::time::timeout(Duration::from_millis(100), slots.acquire()).await;
        assert!(c.is_ok() && d.is_ok());
        let e = tokio::time::timeout(Duration::from_millis(10), slots.acquire()).await;
        assert!(e.is_err(), "a third slot appeared");
    }
}
