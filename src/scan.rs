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
    Account, AccountCoverage, AccountReport, AccountStatus, Finding, Report, RunInfo, RunStats,
    RunWindow, Session, SessionEvent, REPORT_SCHEMA,
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

/// The run's bound on calls in flight: sized by the run (see `call::inflight`)
/// within the open-file limit, raised first; `--concurrency` caps it.
fn call_slots(cap: Option<usize>) -> CallSlots {
    let files = crate::call::inflight::raise_open_files();
    let ceiling = files.ceiling();
    if let Some(why) = &files.problem {
        // Fewer calls in flight than a slow round trip could use: slower, never wrong.
        if cap.is_none_or(|c| c > ceiling) {
            tracing::warn!(
                "{why}: at most {ceiling} calls in flight; raise it with `ulimit -n` (or the service's LimitNOFILE) for a faster scan at long round trips"
            );
        }
    }
    tracing::debug!(
        soft = files.soft,
        hard = files.hard,
        ceiling,
        ?cap,
        "calls in flight"
    );
    CallSlots::auto(ceiling, cap)
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
    let slots = call_slots(cfg.scan.concurrency);
    let clients = ClientSettings::new(sdk, cfg.scan.call_timeout);
    let sts = clients.sts();
    let orgs = clients.organizations();

    let region_count = match &cfg.scan.regions {
        RegionSelection::List(r) => r.len(),
        RegionSelection::All => 0,
    };

    // Discovery streams: an account starts as soon as its ListAccounts page
    // arrives, so the listing of a large organization overlaps the scan. It
    // starts beside GetCallerIdentity, not after it: the first page is then
    // one round trip sooner, and its accounts wait in the feed for the caller.
    let (feed_tx, mut feed) = AccountFeed::channel();
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<Discovered>();
    let mut discovery = {
        let (ous, include, exclude) = (
            cfg.accounts.organizational_units.clone(),
            cfg.accounts.include.clone(),
            cfg.accounts.exclude.clone(),
        );
        let (orgs, slots, progress, feed_tx) = (
            orgs.clone(),
            slots.clone(),
            progress.clone(),
            feed_tx.clone(),
        );
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
                Err(e) if policy == Discovery::BestEffort => ListingEnd::Unavailable(e.to_string()),
                Err(e) => ListingEnd::Failed(e.to_string()),
            };
            let _ = feed_tx.send(FeedItem::End(end));
            listed
        }))
    };
    drop(feed_tx);

    let caller =
        match call_with_retry(Some(&slots), deadline, || sts.get_caller_identity().send()).await {
            Ok(me) => Some(Caller {
                account_id: me.account().unwrap_or_default().to_string(),
                arn: me.arn().unwrap_or_default().to_string(),
            }),
            Err(f) if policy == Discovery::Required => {
                if let Some(d) = discovery.take() {
                    d.abort();
                }
                return Err(ScanError::NoCredentials(f));
            }
            Err(f) => {
                tracing::info!(error = %f, "no AWS credentials: accounts are named by id only");
                None
            }
        };
    // Without credentials nothing the listing may have named is used: the
    // source reads what it can without the organization.
    if caller.is_none() {
        if let Some(d) = discovery.take() {
            d.abort();
            let _ = d.await;
        }
        let (tx, rx) = AccountFeed::channel();
        let _ = tx.send(FeedItem::End(ListingEnd::Unavailable(
            "no AWS credentials".into(),
        )));
        feed = rx;
        log_rx = mpsc::unbounded_channel::<Discovered>().1;
    }
    // Only the report needs it: asked beside the listing, not before it, so the
    // first accounts start one round trip sooner.
    let organization_id = match caller {
        Some(_) => {
            let (orgs, slots) = (orgs.clone(), slots.clone());
            Some(tokio::spawn(async move {
                crate::org::organization_id(&orgs, &slots, deadline).await
            }))
        }
        None => None,
    };
    let ctx = Arc::new(Context {
        cfg: cfg.clone(),
        clients,
        slots: slots.clone(),
        progress: progress.clone(),
        cancel,
        caller: caller.clone(),
    });

    // Interrupted: list no further; the source stops on its own.
    let output = {
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

    let mut reasons = output.reasons;
    let mut listed = 0usize;
    let mut discovered: Vec<Discovered> = Vec::new();
    while let Ok(d) = log_rx.try_recv() {
        listed += 1;
        discovered.push(d);
    }
    // A listing that failed before naming any account leaves nothing scanned:
    // the run stops with the error (exit 2). One that failed part-way keeps
    // what was read, and says the rest of the organization was not.
    let mut listing_failed = false;
    // Every account of the scope reached the source: what the next --since last
    // run may start at this run's settled point.
    let mut whole_listing = true;
    if let Some(d) = discovery {
        let failure = match d.await {
            Ok(Ok(())) => None,
            Ok(Err(_)) if policy == Discovery::BestEffort => None,
            Ok(Err(e)) if listed == 0 => return Err(e.into()),
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) if e.is_cancelled() => {
                whole_listing = false;
                None
            }
            Err(e) if listed == 0 => {
                tracing::error!(error = %e, "account discovery stopped unexpectedly");
                return Err(ScanError::DiscoveryStopped);
            }
            Err(e) => Some(format!("account discovery stopped unexpectedly: {e}")),
        };
        if let Some(f) = failure {
            listing_failed = true;
            whole_listing = false;
            reasons.push(format!(
                "the organization's account listing failed after {listed} account(s), so any account after them was not scanned: {f}"
            ));
        }
    }

    let mut results = output.accounts;
    let mut skipped: Vec<AccountReport> = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for d in discovered {
        covered.insert(d.account.id.clone());
        if let Some(reason) = d.skip {
            skipped.push(skipped_report(&d.account, reason));
        }
    }
    for (a, reason) in output.skipped {
        covered.insert(a.id.clone());
        skipped.push(skipped_report(&a, reason));
    }
    covered.extend(results.iter().map(|r| r.account.id.clone()));
    // An account asked for by id that the organization does not hold is a
    // failed account, not a quiet one: nobody read it.
    for id in &cfg.accounts.include {
        if !covered.contains(id) {
            let reason = if listing_failed {
                "asked for by id, but the organization's listing failed before it was found"
            } else if cfg.accounts.organizational_units.is_empty() {
                "asked for by id, but not in the organization"
            } else {
                "asked for by id, but not in the organization under the given OUs"
            };
            let mut coverage = AccountCoverage::from_regions(BTreeMap::new());
            coverage.status = AccountStatus::Failed;
            coverage.reason = Some(reason.to_string());
            results.push(AccountResult {
                account: Account {
                    id: id.clone(),
                    name: String::new(),
                    state: "NOT-FOUND".into(),
                },
                coverage,
                events: Vec::new(),
            });
        }
    }

    let organization_id = match organization_id {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let interrupted = ctx.cancelled();
    tracing::debug!("scan: every partition read");
    // `--since last`: each partition's own window, and nothing an earlier report holds.
    let already_reported = crate::chain::keep_new(&cfg.scan, &mut results);
    let mut report = build_report(ReportParts {
        cfg,
        started_at,
        regions: output.regions,
        source: cfg.scan.source.describe(),
        organization_id,
        caller_arn: caller.map(|c| c.arn).filter(|a| !a.is_empty()),
        results,
        skipped,
        baseline: baseline.as_ref(),
        interrupted,
        whole_listing: whole_listing && !interrupted,
        already_reported,
        reasons,
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
    /// What the orchestrator or the source knows kept the run from reading
    /// everything (a listing that failed, a crashed task, ...).
    reasons: Vec<String>,
}

/// Every reason the run is not complete. "Complete" means every session call
/// in scope is in the report: an account not fully read, a record not read in
/// full, an interruption, or anything the orchestrator or the source reports
/// each say so, and nothing else may make an empty result look like no activity.
fn incomplete_reasons(
    accounts: &[AccountReport],
    stats: &RunStats,
    interrupted: bool,
    mut given: Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if interrupted {
        out.push("the run was interrupted (SIGINT/SIGTERM) before it finished".to_string());
    }
    let count = |s: AccountStatus| accounts.iter().filter(|a| a.coverage.status == s).count();
    let (partial, failed) = (count(AccountStatus::Partial), count(AccountStatus::Failed));
    if partial + failed > 0 {
        out.push(format!(
            "{partial} partial and {failed} failed account(s) were not fully read"
        ));
    }
    if stats.malformed > 0 {
        out.push(format!(
            "{} record(s) could not be read in full (kept with what could be read; their event ids are in the regions' malformed_event_ids)",
            stats.malformed
        ));
    }
    if accounts
        .iter()
        .all(|a| a.coverage.status == AccountStatus::Skipped)
    {
        out.push(if accounts.is_empty() {
            "no account was found to scan: the organization's listing (or the source) named none"
                .to_string()
        } else {
            "every account was skipped: nothing was scanned".to_string()
        });
    }
    out.append(&mut given);
    out
}

/// A run's own sessions and findings (nothing carried from an earlier run),
/// the accounts cut into `parts` runs of about as many events, each on a
/// thread. Sessions, Session Manager's records and every rule are per
/// account, and the lists are sorted account first: the parts one after the
/// other are the lists built from the whole (at 10,000 accounts and 343,000
/// events, 4.8 s on one thread while the other core had nothing to do).
/// `events` are sorted account first; each event is of its partition's account.
fn own_sessions_and_findings(
    events: &[SessionEvent],
    coverage: &mut [(Account, AccountCoverage)],
    settings: &crate::ssm::join::JoinSettings<'_>,
    evaluate: &(impl Fn(&[SessionEvent], &[Session]) -> Vec<Finding> + Sync),
    parts: usize,
) -> crate::chain::Joined {
    // Where each part starts: about len/parts events in, moved on to the
    // next account's first event.
    let mut starts = vec![0usize];
    for k in 1..parts.max(1) {
        let mut cut = (events.len() * k / parts).max(*starts.last().unwrap_or(&0));
        while cut > 0 && cut < events.len() && events[cut].account_id == events[cut - 1].account_id
        {
            cut += 1;
        }
        if cut > *starts.last().unwrap_or(&0) && cut < events.len() {
            starts.push(cut);
        }
    }
    // Each part's accounts: from its first event's account up to the next
    // part's (the first part from the start, the last to the end), those
    // without events included, so every account's records are joined once.
    let bounds: Vec<&str> = starts[1..]
        .iter()
        .map(|&i| events[i].account_id.as_str())
        .collect();
    let mut accounts: Vec<Vec<(String, &mut AccountCoverage)>> =
        (0..starts.len()).map(|_| Vec::new()).collect();
    for (a, c) in coverage.iter_mut() {
        let part = bounds.partition_point(|b| *b <= a.id.as_str());
        accounts[part].push((a.id.clone(), c));
    }
    let ranges: Vec<&[SessionEvent]> = starts
        .iter()
        .zip(starts[1..].iter().chain([&events.len()]))
        .map(|(&from, &to)| &events[from..to])
        .collect();
    let part = |events: &[SessionEvent], mut accounts: Vec<(String, &mut AccountCoverage)>| {
        let mut sessions = crate::session::build_sessions(events);
        crate::ssm::join::join(&mut sessions, &mut accounts, settings);
        let findings = evaluate(events, &sessions);
        (sessions, findings)
    };
    let results: Vec<(Vec<Session>, Vec<Finding>)> = std::thread::scope(|scope| {
        let mut work = ranges.into_iter().zip(accounts);
        let first = work.next();
        let others: Vec<_> = work
            .map(|(events, accounts)| scope.spawn(move || part(events, accounts)))
            .collect();
        let mut results = Vec::new();
        if let Some((events, accounts)) = first {
            results.push(part(events, accounts));
        }
        for handle in others {
            match handle.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    let (mut sessions, mut findings) = (Vec::new(), Vec::new());
    for (s, f) in results {
        sessions.extend(s);
        findings.extend(f);
    }
    crate::chain::Joined::own(sessions, findings)
}

/// Sessions, findings, per-account lines and the run header, sorted so the same
/// input gives the same bytes.
fn build_report(p: ReportParts<'_>) -> Report {
    let began = std::time::Instant::now();
    let mut accounts: Vec<AccountReport> = p.skipped;
    let mut stats = RunStats {
        accounts_total: (p.results.len() + accounts.len()) as u64,
        accounts_scanned: p.results.len() as u64,
        ..RunStats::default()
    };
    let mut coverage_of = Vec::new();
    let mut groups: Vec<Vec<SessionEvent>> = Vec::new();
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
        groups.push(r.events);
        coverage_of.push((r.account, r.coverage));
    }
    // Each account's events sorted on their own, then the accounts in order:
    // one sort of every event compared keys scattered over the heap (140 ms
    // for 37,000 events). Events hold their partition's account, so this is
    // the order of the whole; a hand-built result that breaks that is
    // sorted again as a whole.
    let by_key = |a: &SessionEvent, b: &SessionEvent| {
        (&a.account_id, &a.region, a.event_time, &a.event_id).cmp(&(
            &b.account_id,
            &b.region,
            b.event_time,
            &b.event_id,
        ))
    };
    for g in &mut groups {
        g.sort_by(by_key);
    }
    groups.sort_by(|a, b| match (a.first(), b.first()) {
        (Some(a), Some(b)) => by_key(a, b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    });
    let mut events: Vec<SessionEvent> = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    for g in groups {
        events.extend(g);
    }
    if !events.is_sorted_by(|a, b| by_key(a, b).is_le()) {
        events.sort_by(by_key);
    }
    stats.events = events.len() as u64;
    stats.already_reported = p.already_reported;
    tracing::debug!(
        ms = began.elapsed().as_millis() as u64,
        "report: events sorted"
    );
    // `--since last`: this run's calls join the sessions the last run left open.
    // Session Manager's own records (live scans) add status, real end, reason
    // and transcript to them, and discrepancies to each region's posture.
    let settings = crate::ssm::join::JoinSettings {
        window: p.cfg.scan.window,
        event_names: &p.cfg.scan.event_names,
        tunnel_documents: &p.cfg.rules.tunnel_documents,
    };
    let evaluate = |all: &[SessionEvent], sessions: &[Session]| {
        crate::rules::evaluate(all, sessions, &p.cfg.rules, p.baseline)
    };
    let joined = if p.cfg.scan.plan.open_sessions.is_empty() {
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        own_sessions_and_findings(&events, &mut coverage_of, &settings, &evaluate, parts)
    } else {
        crate::chain::sessions_and_findings(
            &p.cfg.scan.plan,
            &events,
            |sessions| {
                let mut partitions: Vec<(String, &mut AccountCoverage)> = coverage_of
                    .iter_mut()
                    .map(|(a, c)| (a.id.clone(), c))
                    .collect();
                crate::ssm::join::join(sessions, &mut partitions, &settings);
            },
            evaluate,
        )
    };

    tracing::debug!(
        ms = began.elapsed().as_millis() as u64,
        "report: sessions and findings"
    );
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
    let mut flags_of = crate::rules::summarize(&joined.findings);
    for (account, coverage) in coverage_of {
        let (n_events, n_sessions, principals) =
            per_account.remove(account.id.as_str()).unwrap_or_default();
        let (flags, max_severity) = flags_of.remove(account.id.as_str()).unwrap_or_default();
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
    let reasons = incomplete_reasons(&accounts, &stats, p.interrupted, p.reasons);
    let complete = reasons.is_empty();
    let session_manager = crate::ssm::join::run_summary(
        accounts
            .iter()
            .map(|a| (a.account_id.as_str(), &a.coverage)),
    );
    let mut event_names = p.cfg.scan.event_names.clone();
    event_names.sort();
    let scan = &p.cfg.scan;
    let continuation = joined.continuation(scan, &accounts, &events, p.whole_listing);
    let previous = joined.previous(scan, p.already_reported);
    let (sessions, findings) = joined.into_parts();
    tracing::debug!(ms = began.elapsed().as_millis() as u64, "report: built");
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
                account_starts: scan.plan.account_starts.clone(),
            },
            regions: p.regions,
            event_names,
            source: p.source,
            organization_id: p.organization_id,
            caller_arn: p.caller_arn,
            config_digest: crate::config::config_digest(p.cfg),
            complete,
            incomplete_reasons: reasons,
            interrupted: p.interrupted,
            stats,
            trail: None,
            athena: None,
            session_manager,
            previous,
            continuation: Some(continuation),
            security_hub: None,
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

    /// Sessions and findings built in parts, on threads, are those built from
    /// the whole, and so is what Session Manager's records add to each
    /// account's coverage: on the demo organization, every flag, records in
    /// every account, cut into 1 to 4 parts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_and_findings_in_parts_are_those_of_the_whole() {
        let sim_cfg = SimConfig {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            ..SimConfig::demo()
        };
        let sim = Simulator::start(sim_cfg.clone()).await.unwrap();
        let (cfg, sdk) = setup(&sim_cfg, &sim.endpoint()).await;
        let (_tx, cancel) = watch::channel(false);
        let report = run_scan(&cfg, &sdk, Arc::new(NoProgress), cancel)
            .await
            .unwrap();
        sim.shutdown().await;
        let coverage: Vec<(Account, AccountCoverage)> = report
            .accounts
            .iter()
            .map(|a| {
                let account = Account {
                    id: a.account_id.clone(),
                    name: a.account_name.clone(),
                    state: a.state.clone(),
                };
                // What the join writes, for it to write again.
                let mut coverage = a.coverage.clone();
                for r in coverage.regions.values_mut() {
                    if let Some(p) = r.session_manager.as_mut() {
                        p.discrepancies.clear();
                    }
                }
                (account, coverage)
            })
            .collect();
        let settings = crate::ssm::join::JoinSettings {
            window: cfg.scan.window,
            event_names: &cfg.scan.event_names,
            tunnel_documents: &cfg.rules.tunnel_documents,
        };
        let evaluate = |all: &[SessionEvent], sessions: &[Session]| {
            crate::rules::evaluate(all, sessions, &cfg.rules, None)
        };
        let build = |parts| {
            let mut coverage = coverage.clone();
            let j = own_sessions_and_findings(
                &report.events,
                &mut coverage,
                &settings,
                &evaluate,
                parts,
            );
            let (sessions, findings) = j.into_parts();
            (sessions, findings, coverage)
        };
        let whole = build(1);
        let accounts_with_events: BTreeSet<&str> = report
            .events
            .iter()
            .map(|e| e.account_id.as_str())
            .collect();
        assert!(accounts_with_events.len() >= 4, "{accounts_with_events:?}");
        assert!(!whole.0.is_empty() && !whole.1.is_empty());
        let discrepancies = |c: &[(Account, AccountCoverage)]| {
            c.iter()
                .flat_map(|(_, c)| c.regions.values())
                .filter_map(|r| r.session_manager.as_ref())
                .map(|p| p.discrepancies.len())
                .sum::<usize>()
        };
        assert!(
            discrepancies(&whole.2) > 0,
            "no Session Manager record was joined"
        );
        for parts in 2..=4 {
            assert!(build(parts) == whole, "{parts} parts");
        }
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
    async fn a_discovery_that_fails_keeps_what_it_listed() {
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
        let (mut first_page, mut midway) = (0, 0);
        let listing_failed = |r: &Report| {
            r.run
                .incomplete_reasons
                .iter()
                .any(|m| m.contains("account listing failed after"))
        };
        for _ in 0..12 {
            let (_tx, cancel) = watch::channel(false);
            match run_scan(&cfg, &sdk, Arc::new(NoProgress), cancel).await {
                // Nothing was listed: nothing can be scanned.
                Err(ScanError::Discovery(_)) => first_page += 1,
                Err(e) => panic!("unexpected error {e}"),
                // (Runs back to back drain the simulator's rate buckets, so some
                // partitions may fail their lookups: only the listing is checked.)
                Ok(r) if !listing_failed(&r) => assert_eq!(r.accounts.len(), 6),
                // Part-way: what was listed is kept, and the run says the rest was not read.
                Ok(r) => {
                    midway += 1;
                    assert!(!r.run.complete);
                    // (A failure on an empty last page leaves every account listed.)
                    assert!(!r.accounts.is_empty(), "{:?}", r.accounts);
                }
            }
        }
        sim.shutdown().await;
        assert!(
            first_page > 0,
            "no run failed on its first page in 12 tries"
        );
        assert!(midway > 0, "no run failed part-way in 12 tries");
    }
}
