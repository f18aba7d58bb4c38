//! The orchestrator: who is calling, which accounts, credentials per account,
//! every partition read (all in flight together, bounded by call slots), then
//! sessions, findings and the report. A failed account or region is a value in
//! the report; only no credentials at all, or no account list, stop a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_types::region::Region;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, RegionSelection, Source};
use crate::credentials::{AccountCredentials, RoleRequest};
use crate::lookup::{read_partition, LookupSettings, PartitionResult};
use crate::model::{
    Account, AccountCoverage, AccountReport, AccountStatus, Finding, RegionCoverage, RegionStatus,
    Report, RunInfo, RunStats, SessionEvent, REPORT_SCHEMA,
};
use crate::retry::{call_with_retry, CallFailure, CallSlots};
use crate::rules::Baseline;

/// Every commercial region, for `--regions all`. Regions an account has not
/// enabled answer `UnrecognizedClientException` and are reported `not-enabled`.
pub const ALL_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// At most this many accounts hold clients and credentials at once. Large enough
/// that every partition of an ordinary organization is in flight together, small
/// enough that memory does not grow with a 10,000-account organization.
const ACTIVE_ACCOUNTS: usize = 2_000;

/// What the scan tells whoever shows progress. Sent from many tasks.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
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
    #[error("{0}")]
    Source(String),
}

/// One account's finished scan.
struct AccountResult {
    account: Account,
    coverage: AccountCoverage,
    events: Vec<SessionEvent>,
}

/// Run the whole `scan` against whatever endpoints `sdk` points at.
pub async fn run_scan(
    cfg: &Config,
    sdk: &SdkConfig,
    progress: Arc<dyn Progress>,
    cancel: watch::Receiver<bool>,
) -> Result<Report, ScanError> {
    let started_at = Utc::now();
    let baseline = load_baseline(cfg)?;
    if cfg.scan.source != Source::LookupEvents {
        return Err(ScanError::Source(
            "trail-file sources (--source) are not available in this build yet".into(),
        ));
    }
    let sdk = &with_shared_http_client(sdk);
    let slots = CallSlots::new(cfg.scan.concurrency);
    let deadline = cfg.scan.retry_deadline;
    let home_region = sdk
        .region()
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(cfg.scan.call_timeout)
        .build();

    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(sdk)
            .region(home_region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .build(),
    );
    let orgs = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(sdk)
            .region(home_region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .build(),
    );

    let me = call_with_retry(Some(&slots), deadline, || sts.get_caller_identity().send())
        .await
        .map_err(ScanError::NoCredentials)?;
    let caller_account = me.account().unwrap_or_default().to_string();
    let caller_arn = me.arn().map(str::to_string);
    let organization_id = crate::org::organization_id(&orgs, &slots, deadline).await;
    let regions: Vec<String> = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => ALL_REGIONS.iter().map(|s| s.to_string()).collect(),
    };
    let settings = Arc::new(LookupSettings {
        event_names: cfg.scan.event_names.clone(),
        window: cfg.scan.window,
        rate: cfg.scan.lookup_rate,
        retry_deadline: deadline,
    });
    // One CloudTrail client per region, shared by every account (each call carries
    // its account's credentials): building a client costs about as much CPU as
    // three calls, and a 10,000-account scan would build 40,000 of them.
    let cloudtrail = regions
        .iter()
        .map(|region| {
            aws_sdk_cloudtrail::Client::from_conf(
                aws_sdk_cloudtrail::config::Builder::from(sdk)
                    .region(Region::new(region.clone()))
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(timeouts.clone())
                    .build(),
            )
        })
        .collect();
    let shared = Arc::new(Shared {
        cloudtrail,
        sts,
        slots: slots.clone(),
        settings,
        regions: regions.clone(),
        caller_account: caller_account.clone(),
        cfg: cfg.clone(),
        progress: progress.clone(),
        cancel,
    });

    // Accounts are scanned as their ListAccounts page arrives: the pages come one
    // after the other (20 accounts each), and waiting for the last one would leave
    // every call slot idle for N/20 round trips.
    let (page_tx, mut page_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Account>>();
    let discovery = crate::org::discover_each(
        &orgs,
        &cfg.accounts.organizational_units,
        &slots,
        deadline,
        move |page| {
            let _ = page_tx.send(page.to_vec());
        },
    );
    tokio::pin!(discovery);
    let mut discovering = true;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut skipped: Vec<AccountReport> = Vec::new();
    let mut pending: std::collections::VecDeque<Account> = Default::default();
    let mut scanned = 0usize;
    // Accounts done before the totals are known: reported after `Discovered`.
    let mut done_early: Vec<AccountStatus> = Vec::new();
    let mut results: Vec<AccountResult> = Vec::new();
    let mut running = JoinSet::new();
    let mut admit = |accounts: Vec<Account>,
                     pending: &mut std::collections::VecDeque<Account>,
                     skipped: &mut Vec<AccountReport>| {
        for a in accounts {
            if !seen.insert(a.id.clone()) {
                continue;
            }
            match crate::org::skip_reason(&a, &cfg.accounts.include, &cfg.accounts.exclude) {
                Some(reason) => skipped.push(skipped_report(&a, reason)),
                None => pending.push_back(a),
            }
        }
    };
    loop {
        // The one place that spawns: one task per account, a bounded window of them.
        while running.len() < ACTIVE_ACCOUNTS {
            let Some(account) = pending.pop_front() else {
                break;
            };
            scanned += 1;
            let shared = shared.clone();
            running.spawn(async move { scan_account(shared, account).await });
        }
        if !discovering && running.is_empty() {
            break;
        }
        tokio::select! {
            Some(page) = page_rx.recv(), if discovering => admit(page, &mut pending, &mut skipped),
            listed = &mut discovery, if discovering => {
                discovering = false;
                // On failure the account tasks are dropped (aborted) with `running`.
                let listed = listed?;
                while let Ok(page) = page_rx.try_recv() {
                    admit(page, &mut pending, &mut skipped);
                }
                // Accounts asked for by id but not in the organization are reported, not ignored.
                let known: BTreeSet<&str> = listed.iter().map(|a| a.id.as_str()).collect();
                for id in &cfg.accounts.include {
                    if !known.contains(id.as_str()) {
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
                let to_scan = scanned + pending.len();
                progress.on(ProgressEvent::Discovered {
                    accounts: to_scan + skipped.len(),
                    skipped: skipped.len(),
                    partitions: to_scan * regions.len(),
                });
                for status in done_early.drain(..) {
                    progress.on(ProgressEvent::AccountDone { status });
                }
            }
            Some(joined) = running.join_next(), if !running.is_empty() => match joined {
                Ok(r) => {
                    if discovering {
                        done_early.push(r.coverage.status);
                    } else {
                        progress.on(ProgressEvent::AccountDone {
                            status: r.coverage.status,
                        });
                    }
                    results.push(r);
                }
                // A panic in one account must not lose the others; it is a bug, say so.
                Err(e) => tracing::error!(error = %e, "an account task failed unexpectedly"),
            },
        }
    }

    let interrupted = *shared.cancel.borrow();
    Ok(build_report(ReportParts {
        cfg,
        started_at,
        regions,
        source: "lookup-events".into(),
        organization_id,
        caller_arn,
        results,
        skipped,
        baseline: baseline.as_ref(),
        interrupted,
    }))
}

struct Shared {
    /// One client per region of `regions`, in the same order.
    cloudtrail: Vec<aws_sdk_cloudtrail::Client>,
    sts: aws_sdk_sts::Client,
    slots: CallSlots,
    settings: Arc<LookupSettings>,
    regions: Vec<String>,
    caller_account: String,
    cfg: Config,
    progress: Arc<dyn Progress>,
    cancel: watch::Receiver<bool>,
}

async fn scan_account(shared: Arc<Shared>, account: Account) -> AccountResult {
    let cfg = &shared.cfg;
    let credentials = if account.id == shared.caller_account {
        AccountCredentials::caller()
    } else {
        AccountCredentials::assumed(
            shared.sts.clone(),
            RoleRequest {
                role_arn: format!(
                    "arn:aws:iam::{}:role/{}",
                    account.id, cfg.accounts.role_name
                ),
                session_name: cfg.accounts.session_name.clone(),
                external_id: cfg.accounts.external_id.clone(),
                duration: cfg.accounts.session_duration,
            },
            shared.slots.clone(),
            shared.settings.retry_deadline,
        )
    };
    if let Err(f) = credentials.ensure_fresh().await {
        let reason = format!(
            "AssumeRole arn:aws:iam::{}:role/{} failed: {f}",
            account.id, cfg.accounts.role_name
        );
        let regions = shared
            .regions
            .iter()
            .map(|r| {
                let mut c = RegionCoverage::new(RegionStatus::Failed);
                c.error = Some(reason.clone());
                (r.clone(), c)
            })
            .collect();
        let mut coverage = AccountCoverage::from_regions(regions);
        coverage.status = AccountStatus::Failed;
        coverage.reason = Some(reason);
        return AccountResult {
            account,
            coverage,
            events: Vec::new(),
        };
    }

    let partitions = shared
        .regions
        .iter()
        .zip(&shared.cloudtrail)
        .map(|(region, client)| {
            let shared = &shared;
            let credentials = &credentials;
            let account_id = &account.id;
            async move {
                read_partition(
                    client,
                    credentials,
                    &shared.slots,
                    &shared.settings,
                    account_id,
                    region,
                    shared.progress.as_ref(),
                    &shared.cancel,
                )
                .await
            }
        });
    let parts: Vec<PartitionResult> = futures::future::join_all(partitions).await;

    let mut events = Vec::new();
    let mut regions = BTreeMap::new();
    for p in parts {
        events.extend(p.events);
        regions.insert(p.region, p.coverage);
    }
    // "Not enabled" everywhere means the credentials were refused, not that every
    // region is an opt-in one: the account failed.
    let all_refused = !regions.is_empty()
        && regions
            .values()
            .all(|c: &RegionCoverage| c.status == RegionStatus::NotEnabled);
    if all_refused {
        for c in regions.values_mut() {
            c.status = RegionStatus::Failed;
        }
    }
    let coverage = AccountCoverage::from_regions(regions);
    AccountResult {
        account,
        coverage,
        events,
    }
}

/// The SDK's default HTTP client, built once for every SDK client of the run.
/// Left unset, each client (one per account and region) builds its own TLS
/// context and connection pool: ~0.2 MB each and a new connection per partition.
fn with_shared_http_client(sdk: &SdkConfig) -> SdkConfig {
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
    if sdk.http_client().is_some() {
        return sdk.clone();
    }
    let version = sdk
        .behavior_version()
        .unwrap_or_else(aws_config::BehaviorVersion::latest);
    let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(version);
    let http = plugin.and_then(|p| {
        p.runtime_components(&RuntimeComponentsBuilder::new("ssm-session-audit"))
            .http_client()
    });
    match http {
        Some(h) => sdk.to_builder().http_client(h).build(),
        None => sdk.clone(),
    }
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
    let sessions = crate::session::build_sessions(&events);
    let findings: Vec<Finding> =
        crate::rules::evaluate(&events, &sessions, &p.cfg.rules, p.baseline);

    // One pass over events and sessions, not one per account.
    let mut per_account: BTreeMap<&str, (u64, u64, BTreeSet<&str>)> = BTreeMap::new();
    for e in &events {
        let entry = per_account.entry(e.account_id.as_str()).or_default();
        entry.0 += 1;
        entry.2.insert(e.principal());
    }
    for s in &sessions {
        per_account.entry(s.account_id.as_str()).or_default().1 += 1;
    }
    for (account, coverage) in coverage_of {
        let (n_events, n_sessions, principals) =
            per_account.remove(account.id.as_str()).unwrap_or_default();
        let (flags, max_severity) = crate::rules::summarize(&findings, &account.id);
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
    Report {
        schema: REPORT_SCHEMA.to_string(),
        run: RunInfo {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: p.started_at,
            finished_at: Utc::now(),
            window: p.cfg.scan.window,
            regions: p.regions,
            event_names,
            source: p.source,
            organization_id: p.organization_id,
            caller_arn: p.caller_arn,
            config_digest: crate::config::config_digest(p.cfg),
            complete,
            interrupted: p.interrupted,
            stats,
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
    use crate::simulator::{Faults, SimConfig, Simulator};
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

    /// Accounts are scanned while later ListAccounts pages are still coming, but
    /// progress still hears the totals before any account is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_stream_from_discovery_and_progress_stays_in_order() {
        // One account a page, fast partitions: the first accounts are done long
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
        let discovered = events
            .iter()
            .position(|e| matches!(e, ProgressEvent::Discovered { .. }))
            .expect("totals announced");
        assert!(
            matches!(
                events[discovered],
                ProgressEvent::Discovered {
                    accounts: 13,
                    skipped: 0,
                    partitions: 26
                }
            ),
            "{events:?}"
        );
        let before = &events[..discovered];
        assert!(
            before
                .iter()
                .any(|e| matches!(e, ProgressEvent::Page { .. })),
            "no page was read before the last ListAccounts page: {events:?}"
        );
        assert!(
            !before
                .iter()
                .any(|e| matches!(e, ProgressEvent::AccountDone { .. })),
            "an account was reported done before the totals: {events:?}"
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
