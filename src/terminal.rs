//! The only place that touches the terminal while a scan runs.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ssm_session_audit::model::AccountStatus;
use ssm_session_audit::progress::{Progress, ProgressEvent};

/// Whether a progress display should be shown: only on a terminal, never with --quiet.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    throttles: AtomicU64,
    failed_calls: AtomicU64,
    events: AtomicU64,
    accounts_failed: AtomicU64,
}

/// A bar of accounts done of total, with calls, events and throttles.
pub struct TerminalProgress {
    bar: ProgressBar,
    counters: Arc<Counters>,
}

impl TerminalProgress {
    pub fn start() -> Arc<Self> {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} accounts {pos}/{len} [{bar:30}] {msg} · ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message("listing accounts…");
        bar.enable_steady_tick(Duration::from_millis(125));
        let me = Arc::new(TerminalProgress {
            bar,
            counters: Arc::default(),
        });
        // The message is refreshed on a timer, not on every call.
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else { break };
                if me.bar.is_finished() {
                    break;
                }
                let c = &me.counters;
                me.bar.set_message(format!(
                    "calls {} · events {} · throttles {} · errors {} · failed accounts {}",
                    c.calls.load(Relaxed),
                    c.events.load(Relaxed),
                    c.throttles.load(Relaxed),
                    c.failed_calls.load(Relaxed)
                        - c.throttles.load(Relaxed).min(c.failed_calls.load(Relaxed)),
                    c.accounts_failed.load(Relaxed),
                ));
            }
        });
        me
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TerminalProgress {
    fn on(&self, event: ProgressEvent) {
        match event {
            ProgressEvent::Discovered {
                accounts, skipped, ..
            } => {
                // Pages of the account listing arrive while the scan runs.
                self.bar.inc_length(accounts as u64);
                self.bar.inc(skipped as u64);
            }
            ProgressEvent::Call { failed, throttled } => {
                self.counters.calls.fetch_add(1, Relaxed);
                if failed {
                    self.counters.failed_calls.fetch_add(1, Relaxed);
                }
                if throttled {
                    self.counters.throttles.fetch_add(1, Relaxed);
                }
            }
            ProgressEvent::Page { events } => {
                self.counters.events.fetch_add(events as u64, Relaxed);
            }
            ProgressEvent::AccountDone { status } => {
                if matches!(status, AccountStatus::Failed | AccountStatus::Partial) {
                    self.counters.accounts_failed.fetch_add(1, Relaxed);
                }
                self.bar.inc(1);
            }
        }
    }
}
