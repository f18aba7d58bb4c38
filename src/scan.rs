//! The orchestrator: who is calling, which accounts (discovery streams them to
//! the source as their pages arrive), the source's read, then sessions,
//! findings and the report. It knows no source's insides: [`crate::source::read`]
//! picks the source. A failed account or region is a value in the report; only
//! no credentials at all, or no account list, stop a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use chrono::Utc;
use tokio::sync::{mpsc, watch};

use crate::call::{call_with_retry, CallFailure, CallSlots, ClientSettings};
use crate::config::{Config, RegionSelection};
use crate::model::{
    Account, AccountCoverage, AccountReport, AccountStatus, Report, RunInfo, RunStats, RunWindow,
    SessionEvent, REPORT_SCHEMA,
};
use crate::progress::{Progress, ProgressEvent};
use crate::rules::Baseline;
use crate::source::{
    AccountFeed, AccountResult, Caller, Context, Discovered, Discovery, FeedItem, ListingEnd,
    SourceError,
};

/// How long a source that can do without Organizations waits for it.
const BEST_EFFORT_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no usable AWS credentials (sts:GetCallerIdentity failed: {0}). Configure credentials the usual AWS way: AWS_PROFILE, `aws sso login`, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role")]
    NoCredentials(CallFailure),
    #[error(transparent)]
    Discovery(#[from] crate::org::DiscoveryError),
    #[error("cannot read the baseline report {path}: {source}")]
    Baseline {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("account discovery stopped unexpectedly")]
    DiscoveryStopped,
    #[error("--since last: the window was not set from the last run (chain::continue_from) before the scan")]
    NotContinued,
}

/// Run the whole `scan` against whatever endpoints `sdk` points at, from the
/// source `cfg.scan.source` names.
pub async fn run_scan(
    cfg: &Config,
    sdk: &SdkConfig,
    progress: Arc<dyn Progress>,
    cancel: watch::Receiver<bool>,
) -> Result<Report, ScanError> {
    let started_at = Utc::now();
    if cfg.scan.since_last && cfg.scan.plan.previous.is_none() {
        return Err(ScanError::NotContinued);
    }
    let baseline = load_baseline(cfg)?;
    let policy = cfg.scan.source.discovery();
    let deadline = match policy {
        Discovery::Required => cfg.scan.retry_deadline,
        Discovery::BestEffort => BEST_EFFORT_DEADLINE,
    };
    let slots = CallSlots::new(cfg.scan.concurrency);
    let clients = ClientSettings::new(sdk, cfg.scan.call_timeout);
    let sts = clients.sts();
    let orgs = clients.organizations();

    let caller =
        match call_with_retry(Some(&slots), deadline, || sts.get_caller_identity().send()).await {
            Ok(me) => Some(Caller {
                account_id: me.account().unwrap_or_default().to_string(),
                arn: me.arn().unwrap_or_default().to_string(),
            }),
            Err(f) if policy == Discovery::Required => return Err(ScanError::NoCredentials(f)),
            Err(f) => {
                tracing::info!(error = %f, "no AWS credentials: accounts are named by id only");
                None
            }
        };
    let organization_id = match caller {
        Some(_) => crate::org::organization_id(&orgs, &slots, deadline).await,
        None => None,
    };
    let region_count = match &cfg.scan.regions {
        RegionSelection::List(r) => r.len(),
        RegionSelection::All => 0,
    };
    let ctx = Arc::new(Context {
        cfg: cfg.clone(),
        clients,
        slots: slots.clone(),
        progress: progress.clone(),
        cancel,
        caller: caller.clone(),
    });

    // Discovery streams: an account starts as soon as its ListAccounts page
    // arrives, so the listing of a large organization overlaps the scan.
    let (feed_tx, feed) = AccountFeed::channel();
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<Discovered>();
    let discovery = match caller {
        Some(_) => {
            let (ous, include, exclude) = (
                cfg.accounts.organizational_units.clone(),
                cfg.accounts.include.clone(),
                cfg.accounts.exclude.clone(),
            );
            let (slots, progress, feed_tx) = (slots.clone(), progress.clone(), feed_tx.clone());
            Some(tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                let listed = crate::org::discover_each(&orgs, &ous, &slots, deadline, |page| {
                    let mut out = Vec::new();
                    let (mut new, mut skipped) = (0, 0);
                    for a in page {
                        // An account can come twice (under two of the given OUs).
                        if !seen.insert(a.id.clone()) {
                            continue;
                        }
                        new += 1;
                        let skip = crate::org::skip_reason(&a, &include, &exclude);
                        skipped += usize::from(skip.is_some());
                        let d = Discovered { account: a, skip };
                        let _ = log_tx.send(d.clone());
                        out.push(d);
                    }
                    progress.on(ProgressEvent::Discovered {
                        accounts: new,
                        skipped,
                        partitions: (new - skipped) * region_count,
                    });
                    let _ = feed_tx.send(FeedItem::Page(out));
                })
                .await;
                let end = match &listed {
                    Ok(()) => ListingEnd::Complete,
                    Err(e) if policy == Discovery::BestEffort => {
                        ListingEnd::Unavailable(e.to_string())
                    }
                    Err(e) => ListingEnd::Failed(e.to_string()),
                };
                let _ = feed_tx.send(FeedItem::End(end));
                listed
            }))
        }
        None => {
            let _ = feed_tx.send(FeedItem::End(ListingEnd::Unavailable(
                "no AWS credentials".into(),
            )));
            None
        }
    };
    drop(feed_tx);

    // Interrupted: list no further; the source stops on its own.
    let mut output = {
        let read = crate::source::read(&ctx, feed);
        tokio::pin!(read);
        let mut stopped = false;
        loop {
            tokio::select! {
                out = &mut read => break out?,
                _ = crate::call::cancelled(&ctx.cancel), if !stopped => {
                    if let Some(d) = &discovery {
                        d.abort();
                    }
                    stopped = true;
                }
            }
        }
    };

    // A listing that failed part-way leaves accounts nobody knows of: no report
    // could say what it did not cover, so the run stops (as if it had failed first).
    let mut whole_listing = true;
    if let Some(d) = discovery {
        match d.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) if policy == Discovery::BestEffort => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) if e.is_cancelled() => whole_listing = false,
            Err(e) => {
                tracing::error!(error = %e, "account discovery stopped unexpectedly");
                return Err(ScanError::DiscoveryStopped);
            }
        }
    }

    let mut skipped: Vec<AccountReport> = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    while let Ok(d) = log_rx.try_recv() {
        covered.insert(d.account.id.clone());
        if let Some(reason) = d.skip {
            skipped.push(skipped_report(&d.account, reason));
        }
    }
    for (a, reason) in output.skipped {
        covered.insert(a.id.clone());
        skipped.push(skipped_report(&a, reason));
    }
    covered.extend(output.accounts.iter().map(|r| r.account.id.clone()));
    // Accounts asked for by id but not in the organization are reported, not ignored.
    for id in &cfg.accounts.include {
        if !covered.contains(id) {
            skipped.push(skipped_report(
                &Account {
                    id: id.clone(),
                    name: String::new(),
                    state: "UNKNOWN".into(),
                },
                "not found in the organization (or not under the given OUs)".into(),
            ));
        }
    }

    let interrupted = ctx.cancelled();
    // `--since last`: each partition's own window, and nothing an earlier report holds.
    let already_reported = crate::chain::keep_new(&cfg.scan, &mut output.accounts);
    let mut report = build_report(ReportParts {
        cfg,
        started_at,
        regions: output.regions,
        source: cfg.scan.source.describe(),
        organization_id,
        caller_arn: caller.map(|c| c.arn).filter(|a| !a.is_empty()),
        results: output.accounts,
        skipped,
        baseline: baseline.as_ref(),
        interrupted,
        whole_listing: whole_listing && !interrupted,
        already_reported,
    });
    output.details.apply(&mut report.run);
    Ok(report)
}

fn skipped_report(a: &Account, reason: String) -> AccountReport {
    AccountReport {
        account_id: a.id.clone(),
        account_name: a.name.clone(),
        state: a.state.clone(),
        coverage: AccountCoverage {
            status: AccountStatus::Skipped,
            reason: Some(reason),
            regions: BTreeMap::new(),
        },
        events: 0,
        sessions: 0,
        principals: 0,
        flags: Vec::new(),
        max_severity: None,
    }
}

fn load_baseline(cfg: &Config) -> Result<Option<Baseline>, ScanError> {
    let Some(path) = &cfg.baseline else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| ScanError::Baseline {
        path: path.clone(),
        source: Box::new(e),
    })?;
    Baseline::from_report_json(&text)
        .map(Some)
        .map_err(|e| ScanError::Baseline {
            path: path.clone(),
            source: Box::new(e),
        })
}

/// Everything `build_report` joins; shared by every source.
struct ReportParts<'a> {
    cfg: &'a Config,
    started_at: chrono::DateTime<Utc>,
    regions: Vec<String>,
    source: String,
    organization_id: Option<String>,
    caller_arn: Option<String>,
    results: Vec<AccountResult>,
    skipped: Vec<AccountReport>,
    baseline: Option<&'a Baseline>,
    interrupted: bool,
    /// Every account of the scope reached the source (for the continuation).
    whole_listing: bool,
    already_reported: u64,
}

/// Sessions, findings, per-account lines and the run header, sorted so the same
/// input gives the same bytes.
fn build_report(p: ReportParts<'_>) -> Report {
    let mut events: Vec<SessionEvent> = Vec::new();
    let mut accounts: Vec<AccountReport> = p.skipped;
    let mut stats = RunStats {
        accounts_total: (p.results.len() + accounts.len()) as u64,
        accounts_scanned: p.results.len() as u64,
        ..RunStats::default()
    };
    let mut coverage_of = Vec::new();
    for r in p.results {
        for c in r.coverage.regions.values() {
            stats.partitions += 1;
            stats.pages += c.pages;
            stats.files += c.files;
            stats.throttles += c.throttles;
            stats.retries += c.retries;
            stats.malformed += c.malformed;
            stats.duplicates += c.duplicates;
        }
        stats.calls = stats.pages + stats.retries;
        events.extend(r.events);
        coverage_of.push((r.account, r.coverage));
    }
    events.sort_by(|a, b| {
        (&a.account_id, &a.region, a.event_time, &a.event_id).cmp(&(
            &b.account_id,
            &b.region,
            b.event_time,
            &b.event_id,
        ))
    });
    stats.events = events.len() as u64;
    stats.already_reported = p.already_reported;
    // `--since last`: this run's calls join the sessions the last run left open.
    let joined = crate::chain::sessions_and_findings(&p.cfg.scan.plan, &events, |all, sessions| {
        crate::rules::evaluate(all, sessions, &p.cfg.rules, p.baseline)
    });

    // One pass over events and sessions, not one per account.
    let mut per_account: BTreeMap<&str, (u64, u64, BTreeSet<&str>)> = BTreeMap::new();
    for e in &events {
        let entry = per_account.entry(e.account_id.as_str()).or_default();
        entry.0 += 1;
        entry.2.insert(e.principal());
    }
    for s in &joined.sessions {
        per_account.entry(s.account_id.as_str()).or_default().1 += 1;
    }
    for (account, coverage) in coverage_of {
        let (n_events, n_sessions, principals) =
            per_account.remove(account.id.as_str()).unwrap_or_default();
        let (flags, max_severity) = crate::rules::summarize(&joined.findings, &account.id);
        accounts.push(AccountReport {
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            state: account.state.clone(),
            coverage,
            events: n_events,
            sessions: n_sessions,
            principals: principals.len() as u64,
            flags,
            max_severity,
        });
    }
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let complete = !p.interrupted
        && accounts.iter().all(|a| {
            matches!(
                a.coverage.status,
                AccountStatus::Complete | AccountStatus::Skipped
            )
        });
    let mut event_names = p.cfg.scan.event_names.clone();
    event_names.sort();
    let scan = &p.cfg.scan;
    let continuation = joined.continuation(scan, &accounts, &events, p.whole_listing);
    let previous = joined.previous(scan, p.already_reported);
    let (sessions, findings) = joined.into_parts();
    Report {
        schema: REPORT_SCHEMA.to_string(),
        run: RunInfo {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: p.started_at,
            finished_at: Utc::now(),
            window: RunWindow {
                start: scan.window.start,
                end: scan.window.end,
                settled_until: scan.settled_until,
                partition_starts: scan.plan.partition_starts.clone(),
            },
            regions: p.regions,
            event_names,
            source: p.source,
            organization_id: p.organization_id,
            caller_arn: p.caller_arn,
            config_digest: crate::config::config_digest(p.cfg),
            complete,
            interrupted: p.interrupted,
            stats,
            trail: None,
            athena: None,
            previous,
            continuation: Some(continuation),
        },
        accounts,
        findings,
        sessions,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FlagValues;
    use crate::progress::NoProgress;
    use aws_types::region::Region;
    use sim::{Faults, SimConfig, Simulator};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<ProgressEvent>>);
    impl Progress for Recorder {
        fn on(&self, event: ProgressEvent) {
            if !matches!(event, ProgressEvent::Call { .. }) {
                self.0.lock().unwrap().push(event);
            }
        }
    }

    async fn setup(sim: &SimConfig, endpoint: &str) -> (Config, SdkConfig) {
        let flags = FlagValues {
            start: Some(sim.window_start().to_rfc3339()),
            end: Some(sim.window_end.to_rfc3339()),
            regions: Some(sim.regions.clone()),
            ..FlagValues::default()
        };
        let cfg = crate::config::resolve(&flags, None, sim.window_end).unwrap();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIATESTMANAGEMENT01",
                "test-secret",
                None,
                None,
                "test",
            ))
            .load()
            .await;
        (cfg, sdk)
    }

    /// Accounts are scanned while later ListAccounts pages are still coming, and
    /// the pages' counts add up to the organization.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_stream_from_discovery() {
        // One account a page, fast partitions: the first accounts are read long
        // before the last page.
        let sim_cfg = SimConfig {
            accounts: 13,
            org_page_size: 1,
            empty_pages: true,
            latency: Duration::from_millis(5),
            lookup_rate: 100.0,
            ..SimConfig::default()
        };
        let sim = Simulator::start(sim_cfg.clone()).await.unwrap();
        let (mut cfg, sdk) = setup(&sim_cfg, &sim.endpoint()).await;
        cfg.scan.lookup_rate = 100.0;
        let rec = Arc::new(Recorder::default());
        let (_tx, cancel) = watch::channel(false);
        let report = run_scan(&cfg, &sdk, rec.clone(), cancel).await.unwrap();
        sim.shutdown().await;
        assert!(report.run.complete);
        assert_eq!(report.accounts.len(), 13);
        let events = rec.0.lock().unwrap();
        let (mut accounts, mut skipped, mut partitions) = (0, 0, 0);
        let mut last_listing = 0;
        for (i, e) in events.iter().enumerate() {
            if let ProgressEvent::Discovered {
                accounts: a,
                skipped: s,
                partitions: p,
            } = e
            {
                accounts += a;
                skipped += s;
                partitions += p;
                last_listing = i;
            }
        }
        assert_eq!((accounts, skipped, partitions), (13, 0, 26), "{events:?}");
        assert!(
            events[..last_listing]
                .iter()
                .any(|e| matches!(e, ProgressEvent::Page { .. })),
            "no page was read before the last ListAccounts page: {events:?}"
        );
        let done = events
            .iter()
            .filter(|e| matches!(e, ProgressEvent::AccountDone { .. }))
            .count();
        assert_eq!(done, 13);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_discovery_that_fails_midway_fails_the_run() {
        let sim_cfg = SimConfig {
            accounts: 6,
            org_page_size: 2,
            faults: Faults {
                org_throttle_rate: 0.6,
                ..Faults::default()
            },
            ..SimConfig::default()
        };
        let sim = Simulator::start(sim_cfg.clone()).await.unwrap();
        let (mut cfg, sdk) = setup(&sim_cfg, &sim.endpoint()).await;
        // Too short to ride out a throttle: some ListAccounts page fails for good.
        cfg.scan.retry_deadline = Duration::ZERO;
        let mut failed = 0;
        for _ in 0..8 {
            let (_tx, cancel) = watch::channel(false);
            match run_scan(&cfg, &sdk, Arc::new(NoProgress), cancel).await {
                Err(ScanError::Discovery(_)) => failed += 1,
                Err(e) => panic!("unexpected error {e}"),
                Ok(r) => assert_eq!(r.accounts.len(), 6),
            }
        }
        sim.shutdown().await;
        assert!(failed > 0, "no run met a failing page in 8 tries");
    }
}
