//! What a scan tells whoever shows its progress. The scan only emits events;
//! the binary's terminal display (or nobody, in tests and cron) consumes them.

use crate::model::AccountStatus;

/// One thing that happened. Sent from many tasks.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// More accounts were listed (counts of this page, not totals).
    Discovered {
        accounts: usize,
        skipped: usize,
        partitions: usize,
    },
    Call {
        failed: bool,
        throttled: bool,
    },
    Page {
        events: usize,
    },
    AccountDone {
        status: AccountStatus,
    },
}

pub trait Progress: Send + Sync {
    fn on(&self, event: ProgressEvent);
}

/// Progress for nobody (tests, cron).
pub struct NoProgress;
impl Progress for NoProgress {
    fn on(&self, _: ProgressEvent) {}
}
