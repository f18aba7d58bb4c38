//! The live source: CloudTrail `LookupEvents` in every account and region.
//!
//! Accounts start as discovery hands them over, a bounded window of them at a
//! time; each gets its credentials (the caller's own, or the audit role) and
//! reads all its regions at once ([`partition`]). A failed account or region is
//! a value in the output, never an early return.

pub mod credentials;
pub mod partition;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::task::JoinSet;

use self::credentials::{AccountCredentials, RoleRequest};
use self::partition::{read_partition, LookupRun, LookupSettings, Partition, PartitionResult};
use super::{AccountFeed, AccountResult, Context, SourceDetails, SourceOutput};
use crate::call::{cancelled, CallFailure, ErrorClass};
use crate::config::RegionSelection;
use crate::model::{Account, AccountCoverage, AccountStatus, RegionCoverage, RegionStatus};
use crate::progress::ProgressEvent;

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

/// What every account task of a run shares.
struct Shared {
    run: LookupRun,
    /// One client per region of `regions`, in the same order: the caller's
    /// own credentials, and every assumed account's (see `credentials::ScopedProvider`).
    cloudtrail: Vec<aws_sdk_cloudtrail::Client>,
    cloudtrail_assumed: Vec<aws_sdk_cloudtrail::Client>,
    sts: aws_sdk_sts::Client,
    regions: Vec<String>,
    caller_account: String,
    ctx: Arc<Context>,
}

/// Read every account the feed hands over, until it ends (or the run is cancelled).
pub async fn read(ctx: &Arc<Context>, mut feed: AccountFeed) -> SourceOutput {
    let cfg = &ctx.cfg;
    let regions: Vec<String> = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => ALL_REGIONS.iter().map(|s| s.to_string()).collect(),
    };
    let shared = Arc::new(Shared {
        run: LookupRun {
            slots: ctx.slots.clone(),
            settings: LookupSettings {
                event_names: cfg.scan.event_names.clone(),
                window: cfg.scan.window,
                rate: cfg.scan.lookup_rate,
                retry_deadline: cfg.scan.retry_deadline,
            },
            progress: ctx.progress.clone(),
            cancel: ctx.cancel.clone(),
        },
        cloudtrail: regions.iter().map(|r| ctx.clients.cloudtrail(r)).collect(),
        cloudtrail_assumed: regions
            .iter()
            .map(|r| {
                let scoped = aws_credential_types::provider::SharedCredentialsProvider::new(
                    credentials::ScopedProvider,
                );
                ctx.clients.cloudtrail_with(r, Some(scoped))
            })
            .collect(),
        sts: ctx.clients.sts(),
        regions: regions.clone(),
        caller_account: ctx
            .caller
            .as_ref()
            .map(|c| c.account_id.clone())
            .unwrap_or_default(),
        ctx: ctx.clone(),
    });

    // The one place that spawns: one task per account, a bounded window of them.
    let mut queue: VecDeque<Account> = VecDeque::new();
    let mut results: Vec<AccountResult> = Vec::new();
    let mut running = JoinSet::new();
    // Which account each task reads, so a task that crashes is still its
    // account's line in the report (failed, with why), never a missing one.
    let mut tasks: HashMap<tokio::task::Id, Account> = HashMap::new();
    let mut crashed = 0usize;
    let mut listing = true;
    loop {
        while running.len() < ACTIVE_ACCOUNTS {
            let Some(account) = queue.pop_front() else {
                break;
            };
            let shared = shared.clone();
            let a = account.clone();
            let handle = running.spawn(async move { scan_account(shared, a).await });
            tasks.insert(handle.id(), account);
        }
        if !listing && running.is_empty() {
            break;
        }
        tokio::select! {
            // Interrupted: take no more accounts; running ones stop on their own.
            _ = cancelled(&ctx.cancel), if listing => listing = false,
            page = feed.next_page(), if listing => match page {
                Some(page) => queue.extend(
                    page.into_iter().filter(|d| d.skip.is_none()).map(|d| d.account),
                ),
                None => listing = false,
            },
            joined = running.join_next_with_id(), if !running.is_empty() => match joined {
                Some(Ok((id, r))) => {
                    tasks.remove(&id);
                    ctx.progress.on(ProgressEvent::AccountDone { status: r.coverage.status });
                    results.push(r);
                }
                Some(Err(e)) => {
                    // A panic in one account must not lose the others, nor that
                    // account: it is a bug, and the report says so.
                    let Some(account) = tasks.remove(&e.id()) else {
                        tracing::error!(error = %e, "a task of unknown account failed");
                        continue;
                    };
                    tracing::error!(account = %account.id, error = %e, "an account task failed unexpectedly");
                    crashed += 1;
                    let r = crashed_account(account, &regions, &e);
                    ctx.progress.on(ProgressEvent::AccountDone { status: r.coverage.status });
                    results.push(r);
                }
                None => {}
            },
        }
    }
    let (_, peak) = ctx.slots.limits();
    tracing::debug!(peak, "largest bound on calls in flight");
    let mut reasons = Vec::new();
    if crashed > 0 {
        reasons.push(format!(
            "the scan of {crashed} account(s) stopped on an internal error (a bug; see their coverage)"
        ));
    }
    SourceOutput {
        regions,
        accounts: results,
        skipped: Vec::new(),
        reasons,
        details: SourceDetails::None,
    }
}

/// The line of an account whose task crashed: failed in every region.
fn crashed_account(
    account: Account,
    regions: &[String],
    e: &tokio::task::JoinError,
) -> AccountResult {
    let what = if e.is_panic() {
        "crashed"
    } else {
        "was cancelled"
    };
    let reason = format!(
        "the scan of this account {what} (an internal error, please report it); nothing of it is in the report"
    );
    let regions = regions
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
    AccountResult {
        account,
        coverage,
        events: Vec::new(),
    }
}

async fn scan_account(shared: Arc<Shared>, account: Account) -> AccountResult {
    let cfg = &shared.ctx.cfg;
    // Its partitions' pace counts in the bound on calls in flight while it runs.
    let _demand = shared
        .run
        .slots
        .demand(shared.regions.len() as f64 * shared.run.settings.rate);
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
            shared.run.slots.clone(),
            shared.run.settings.retry_deadline,
        )
    };
    // A cancelled run does not wait for AssumeRole calls queued behind the call slots.
    let fresh = tokio::select! {
        r = credentials.ensure_fresh() => r,
        _ = cancelled(&shared.run.cancel) => Err(CallFailure {
            class: ErrorClass::Fatal,
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

    let clients = match credentials.is_assumed() {
        true => &shared.cloudtrail_assumed,
        false => &shared.cloudtrail,
    };
    let partitions = shared
        .regions
        .iter()
        .zip(clients)
        .map(|(region, client)| {
            read_partition(
                &shared.run,
                Partition {
                    account_id: &account.id,
                    region,
                    client,
                    credentials: &credentials,
                },
            )
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
