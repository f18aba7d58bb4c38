//! Everything about one AWS call: what an error means ([`classify`]), trying
//! again ([`retry`]), the one bound on calls in flight ([`slots`], sized by
//! [`inflight`]), each
//! partition's pace ([`pace`]), how clients are built ([`clients`]) and how a run
//! is cancelled ([`cancel`]). Nothing outside this folder sleeps for a retry or
//! bounds concurrency.

pub mod cancel;
pub mod classify;
pub mod clients;
pub mod inflight;
pub mod pace;
pub mod paging;
pub mod retry;
pub mod sigv4;
pub mod slots;
pub mod wire;
pub mod written;

pub use cancel::{cancelled, unless_cancelled};
pub use classify::{classify, classify_service, short, source_chain, CallFailure, ErrorClass};
pub use clients::ClientSettings;
pub use pace::Pace;
pub use paging::{PagingError, Tokens};
pub use retry::{backoff, call_with_retry, call_with_retry_checked};
pub use slots::{CallSlots, Demand, Priority, SlotPermit};

/// A mutex's guard even if another holder panicked: what it guards is still
/// whole (no holder leaves it half-changed), and a scan goes on.
pub(crate) fn lock<S>(m: &std::sync::Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
