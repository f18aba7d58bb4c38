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
    Trail(#[from] crate::trail::TrailError),
    #[error("account discovery stopped unexpectedly")]
    DiscoveryStopped,
}

/// One account's finished scan.
struct AccountResult {
    account: Account,
    coverage: AccountCoverage,
    events: Vec<SessionEvent>,
}

/// How every client of a run is built: our timeouts, no SDK retries (the scan
/// retries itself, paced and counted), and the home region for global services.
#[derive(Clone)]
struct ClientSettings {
    sdk: SdkConfig,
    home_region: Region,
    timeouts: TimeoutConfig,
}

impl ClientSettings {
    fn new(sdk: &SdkConfig, cfg: &Config) -> Self {
        ClientSettings {
            sdk: with_shared_http_client(sdk),
            home_region: sdk
                .region()
                .cloned()
                .unwrap_or_else(|| Region::new("us-east-1")),
            timeouts: TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(cfg.scan.call_timeout)
                .build(),
        }
    }

    fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.sdk)
                .region(self.home_region.clone())
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.sdk)
                .region(self.home_region.clone())
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(self.home_region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(self.timeouts.clone());
        // A custom endpoint (moto, MinIO, a VPC endpoint by IP) needs path-style addressing.
        if self.sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
            b = b.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// One CloudTrail client per region, shared by every account: each call
    /// carries its account's credentials (see `lookup::read_partition`), because
    /// building a client costs about as much CPU as three calls.
    fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }
}

/// Run the whole `scan` against whatever endpoints `sdk` points at: CloudTrail
/// lookups, or trail files when `scan.source` names a folder or an S3 prefix.
pub async fn run_scan(
    cfg: &Config,
    sdk: &SdkConfig,
    progress: Arc<dyn Progress>,
    cancel: watch::Receiver<bool>,
) -> Result<Report, ScanError> {
    let started_at = Utc::now();
    let baseline = load_baseline(cfg)?;
    if cfg.scan.source != Source::LookupEvents {
        return scan_trail(cfg, sdk, progress, started_at, baseline.as_ref()).await;
    }
    let slots = CallSlots::new(cfg.scan.concurrency);
    let deadline = cfg.scan.retry_deadline;
    let clients = ClientSettings::new(sdk, cfg);
    let sts = clients.sts();
    let orgs = clients.organizations();

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
    let cloudtrail = regions.iter().map(|r| clients.cloudtrail(r)).collect();
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

    // Discovery streams: an account starts as soon as its ListAccounts page
    // arrives, so the listing of a large organization overlaps the scan.
    let (found_tx, mut found) = tokio::sync::mpsc::unbounded_channel::<Vec<Account>>();
    let mut discovery = {
        let (orgs, slots, ous) = (
            orgs.clone(),
            slots.clone(),
            cfg.accounts.organizational_units.clone(),
        );
        tokio::spawn(async move {
            crate::org::discover_each(&orgs, &ous, &slots, deadline, |page| {
                let _ = found_tx.send(page);
            })
            .await
        })
    };

    // The one place that spawns: one task per account, a bounded window of them.
    let mut skipped: Vec<AccountReport> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: std::collections::VecDeque<Account> = Default::default();
    let mut results: Vec<AccountResult> = Vec::new();
    let mut running = JoinSet::new();
    let mut listing = true;
    let cancel = shared.cancel.clone();
    loop {
        while running.len() < ACTIVE_ACCOUNTS {
            let Some(account) = queue.pop_front() else {
                break;
            };
            let shared = shared.clone();
            running.spawn(async move { scan_account(shared, account).await });
        }
        if !listing && running.is_empty() {
            break;
        }
        tokio::select! {
            // Interrupted: list no further; running accounts stop on their own.
            _ = crate::lookup::cancelled(&cancel), if listing => {
                discovery.abort();
                listing = false;
            }
            page = found.recv(), if listing => {
                let Some(page) = page else {
                    listing = false;
                    continue;
                };
                let (mut new, mut new_skipped) = (0, 0);
                for a in page {
                    if !seen.insert(a.id.clone()) {
                        continue;
                    }
                    new += 1;
                    match crate::org::skip_reason(&a, &cfg.accounts.include, &cfg.accounts.exclude) {
                        Some(reason) => {
                            new_skipped += 1;
                            skipped.push(skipped_report(&a, reason));
                        }
                        None => queue.push_back(a),
                    }
                }
                progress.on(ProgressEvent::Discovered {
                    accounts: new,
                    skipped: new_skipped,
                    partitions: (new - new_skipped) * regions.len(),
                });
            }
            joined = running.join_next(), if !running.is_empty() => match joined {
                Some(Ok(r)) => {
                    progress.on(ProgressEvent::AccountDone { status: r.coverage.status });
                    results.push(r);
                }
                Some(Err(e)) => {
                    // A panic in one account must not lose the others; it is a bug, say so.
                    tracing::error!(error = %e, "an account task failed unexpectedly");
                }
                None => {}
            },
        }
    }
    // A listing that failed part-way leaves accounts nobody knows of: no report
    // could say what it did not cover, so the run stops (as if it had failed first).
    match (&mut discovery).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            tracing::error!(error = %e, "account discovery stopped unexpectedly");
            return Err(ScanError::DiscoveryStopped);
        }
    }

    // Accounts asked for by id but not in the organization are reported, not ignored.
    for id in &cfg.accounts.include {
        if !seen.contains(id) {
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

/// The same report from trail files: names from Organizations when it answers,
/// the account ids alone when it does not (a local folder needs no credentials).
async fn scan_trail(
    cfg: &Config,
    sdk: &SdkConfig,
    progress: Arc<dyn Progress>,
    started_at: chrono::DateTime<Utc>,
    baseline: Option<&Baseline>,
) -> Result<Report, ScanError> {
    let slots = CallSlots::new(cfg.scan.concurrency);
    let clients = ClientSettings::new(sdk, cfg);
    let org = trail_org_lookup(cfg, &clients, &slots).await;

    let regions: Vec<String> = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => Vec::new(),
    };
    let query = crate::trail::TrailQuery {
        accounts: (!cfg.accounts.include.is_empty())
            .then(|| cfg.accounts.include.iter().cloned().collect()),
        regions: (!regions.is_empty()).then(|| regions.iter().cloned().collect()),
        window: cfg.scan.window,
        event_names: cfg.scan.event_names.clone(),
        now: Utc::now(),
    };
    let (source, result) = match &cfg.scan.source {
        Source::Dir(root) => {
            let source = format!("dir:{}", root.display());
            let root = root.clone();
            let q = query.clone();
            let read = tokio::task::spawn_blocking(move || crate::trail::read_dir(&root, &q, 0))
                .await
                .map_err(|_| crate::trail::TrailError::Worker)??;
            (source, read)
        }
        Source::S3 { bucket, prefix } => {
            let s3 = clients.s3();
            let (window, deadline) = (cfg.scan.window, cfg.scan.retry_deadline);
            let (clients_ref, slots_ref) = (&clients, &slots);
            // Digest signatures: the keys CloudTrail lists in the trail's home region.
            let keys = move |region: String| -> futures::future::BoxFuture<'_, crate::trail::digest::Keys> {
                Box::pin(async move {
                    let ct = clients_ref.cloudtrail(&region);
                    crate::trail::list_public_keys(&ct, &region, window, slots_ref, deadline).await
                })
            };
            let read = crate::trail::read_s3_with_keys(
                &s3, bucket, prefix, &query, &slots, deadline, &keys,
            )
            .await?;
            (format!("s3://{bucket}/{prefix}"), read)
        }
        Source::LookupEvents => unreachable!("handled by run_scan"),
    };

    // Accounts: those the trail holds, plus those Organizations knows (an account
    // with no trail file at all must not look like an account with no activity).
    let known: BTreeMap<String, Account> = org
        .as_ref()
        .map(|o| {
            o.accounts
                .iter()
                .map(|a| (a.id.clone(), a.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut ids: BTreeSet<String> = result.coverage.partitions.keys().cloned().collect();
    ids.extend(result.coverage.failed_accounts.keys().cloned());
    ids.extend(known.keys().cloned());
    ids.extend(cfg.accounts.include.iter().cloned());
    let mut events_of: BTreeMap<String, Vec<SessionEvent>> = BTreeMap::new();
    for e in result.events {
        events_of.entry(e.account_id.clone()).or_default().push(e);
    }
    let mut skipped = Vec::new();
    let mut results = Vec::new();
    for id in ids {
        let account = known.get(&id).cloned().unwrap_or_else(|| Account {
            id: id.clone(),
            name: String::new(),
            state: "UNKNOWN".into(),
        });
        if !cfg.accounts.include.is_empty() && !cfg.accounts.include.contains(&id) {
            continue;
        }
        // With --ou, only the accounts Organizations lists under those OUs.
        if !cfg.accounts.organizational_units.is_empty()
            && org.is_some()
            && !known.contains_key(&id)
        {
            continue;
        }
        if cfg.accounts.exclude.contains(&id) {
            skipped.push(skipped_report(
                &account,
                "excluded by --exclude-accounts / accounts.exclude".into(),
            ));
            continue;
        }
        // Suspended and closed accounts are skipped as in a live scan: their
        // missing files are expected, not a failure of the scan.
        if matches!(
            account.state.as_str(),
            "SUSPENDED" | "CLOSED" | "PENDING_CLOSURE"
        ) {
            skipped.push(skipped_report(
                &account,
                format!("account state is {}", account.state),
            ));
            continue;
        }
        let parts = result.coverage.partitions.get(&id);
        let mut regions_cov: BTreeMap<String, RegionCoverage> = parts
            .map(|p| {
                p.iter()
                    .map(|(r, c)| (r.clone(), c.to_region_coverage()))
                    .collect()
            })
            .unwrap_or_default();
        // A requested region without a single file is a gap: an organization
        // trail delivers every few minutes wherever anything happens.
        for r in &regions {
            regions_cov.entry(r.clone()).or_insert_with(|| {
                let mut c = RegionCoverage::new(RegionStatus::Failed);
                c.error = Some("no trail file for this region in the window".into());
                c
            });
        }
        let mut coverage = AccountCoverage::from_regions(regions_cov);
        if let Some(err) = result.coverage.failed_accounts.get(&id) {
            coverage.status = AccountStatus::Failed;
            coverage.reason = Some(format!("listing its trail files failed: {err}"));
        } else if parts.is_none() {
            coverage.status = AccountStatus::Failed;
            coverage.reason = Some(
                "no trail file for this account in the window: is it covered by the trail?".into(),
            );
        }
        progress.on(ProgressEvent::AccountDone {
            status: coverage.status,
        });
        let events = events_of.remove(&id).unwrap_or_default();
        results.push(AccountResult {
            account,
            coverage,
            events,
        });
    }
    let mut report = build_report(ReportParts {
        cfg,
        started_at,
        regions,
        source,
        organization_id: org.as_ref().and_then(|o| o.organization_id.clone()),
        caller_arn: org.as_ref().and_then(|o| o.caller_arn.clone()),
        results,
        skipped,
        baseline,
        interrupted: false,
    });
    report.run.trail = serde_json::to_value(&result.coverage).ok();
    Ok(report)
}

struct OrgView {
    organization_id: Option<String>,
    caller_arn: Option<String>,
    accounts: Vec<Account>,
}

/// Account names for a trail scan, if the caller may list them; quick to give up.
async fn trail_org_lookup(
    cfg: &Config,
    clients: &ClientSettings,
    slots: &CallSlots,
) -> Option<OrgView> {
    let quick = Duration::from_secs(5);
    let sts = clients.sts();
    let me = match call_with_retry(Some(slots), quick, || sts.get_caller_identity().send()).await {
        Ok(me) => me,
        Err(f) => {
            tracing::info!(error = %f, "no AWS credentials: trail accounts are named by id only");
            return None;
        }
    };
    let orgs = clients.organizations();
    let accounts = match crate::org::discover(
        &orgs,
        &cfg.accounts.organizational_units,
        slots,
        quick,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(error = %e, "Organizations not reachable: trail accounts are named by id only");
            return None;
        }
    };
    Some(OrgView {
        organization_id: crate::org::organization_id(&orgs, slots, quick).await,
        caller_arn: me.arn().map(str::to_string),
        accounts,
    })
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
    // A cancelled run does not wait for AssumeRole calls queued behind the call slots.
    let fresh = tokio::select! {
        r = credentials.ensure_fresh() => r,
        _ = crate::lookup::cancelled(&shared.cancel) => Err(CallFailure {
            class: crate::retry::ErrorClass::Fatal,
            code: "interrupted".into(),
            message: "the run was interrupted before the role was assumed".into(),
        }),
    };
    if let Err(f) = fresh {
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
            trail: None,
        },
        accounts,
        findings,
        sessions,
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
