//! The one bound on calls in flight across the whole run.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

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

/// The single bound on calls in flight across the whole run (`--concurrency`).
/// A slot is held only for the duration of one HTTP call, never while waiting.
/// Waiters are served by [`Priority`], first come first served within one.
#[derive(Clone)]
pub struct CallSlots {
    inner: Arc<SlotsInner>,
}

struct SlotsInner {
    state: Mutex<SlotsState>,
}

struct SlotsState {
    free: usize,
    next_seq: u64,
    waiting: BinaryHeap<Waiter>,
}

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
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if let Some(s) = self.slots.take() {
            s.release();
        }
    }
}

impl SlotsInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(self: Arc<Self>) {
        let mut st = self.lock();
        while let Some(w) = st.waiting.pop() {
            let permit = SlotPermit {
                slots: Some(self.clone()),
            };
            match w.hand_over.send(permit) {
                Ok(()) => return,
                // That waiter stopped waiting (its future was dropped): disarm the
                // returned permit (we hold the lock) and try the next one.
                Err(mut p) => {
                    p.slots = None;
                }
            }
        }
        st.free += 1;
    }
}

impl CallSlots {
    pub fn new(n: usize) -> Self {
        CallSlots {
            inner: Arc::new(SlotsInner {
                state: Mutex::new(SlotsState {
                    free: n.max(1),
                    next_seq: 0,
                    waiting: BinaryHeap::new(),
                }),
            }),
        }
    }

    /// A slot at [`Priority::Normal`].
    pub async fn acquire(&self) -> SlotPermit {
        self.acquire_at(Priority::Normal).await
    }

    pub async fn acquire_at(&self, priority: Priority) -> SlotPermit {
        let handed = {
            let mut st = self.inner.lock();
            // A free slot means nobody waits (release serves waiters first).
            if st.free > 0 {
                st.free -= 1;
                return SlotPermit {
                    slots: Some(self.inner.clone()),
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
