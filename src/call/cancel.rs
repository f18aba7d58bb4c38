//! Cancellation: the run's one `watch` channel, set by the first SIGINT/SIGTERM.

use tokio::sync::watch;

/// Resolves once the run is cancelled. A dropped sender means nobody can cancel
/// any more, which is not a cancellation: then it never resolves.
pub async fn cancelled(cancel: &watch::Receiver<bool>) {
    let mut rx = cancel.clone();
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `step`'s output, or `None` once the run is cancelled: one wait beside the
/// cancellation for a whole step (credentials, pace, slot, call), not one
/// for each of its waits (each registers and removes a waiter).
pub async fn unless_cancelled<F: std::future::Future>(
    cancel: &watch::Receiver<bool>,
    step: F,
) -> Option<F::Output> {
    tokio::select! {
        r = step => Some(r),
        _ = cancelled(cancel) => None,
    }
}
