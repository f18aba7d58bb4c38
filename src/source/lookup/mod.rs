//! The live source: CloudTrail `LookupEvents` in every account and region.
//!
//! Accounts start as discovery hands them over, a bounded window of them at a
//! time; each gets its credentials (the caller's own, or the audit role) and
//! reads all its regions at once ([`partition`]). A failed account or region is
//! a value in the output, never an early return.

pub mod credentials;
pub mod partition;
pub mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use self::credentials::{AccountCredentials, RoleRequest};
use self::partition::{read_partition, LookupRun, LookupSettings, Partition, PartitionResult};
use super::{AccountFeed, AccountResult, Context, SourceDetails, SourceOutput};
use crate::call::{cancelled, CallFailure, ErrorClass};
use crate::config::RegionSelection;
use crate::model::{Account, AccountCoverage, AccountStatus, RegionCoverage, RegionStatus};
use crate::progress::ProgressEvent;
use crate::regions::{AccountRegions, Ec2Regions, Enablement, RegionAsker};

/// Every commercial region, for sources that cannot ask an account (an Athena
/// table without a region list). A live scan never uses it: `--regions all`
/// there means each account's enabled regions (see `crate::regions`).
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

/// One Session Manager endpoint per region (or why it has none), resolved
/// when a region is first read.
type SsmWires = Mutex<HashMap<String, Result<crate::ssm::SsmWire, String>>>;

/// What every account task of a run shares.
struct Shared {
    run: LookupRun,
    /// One CloudTrail endpoint per region, resolved when a region is first read
    /// and shared by every account (each call is signed with its account's
    /// credentials): `LookupEvents` outside the SDK's orchestrator (see `wire`).
    cloudtrail: Mutex<HashMap<String, Result<wire::LookupWire, String>>>,
    /// Session Manager's own records beside each partition (`None`: not read):
    /// what the reads share, and one endpoint per region, as CloudTrail's.
    ssm: Option<(crate::ssm::SsmRun, SsmWires)>,
    sts: aws_sdk_sts::Client,
    account_api: aws_sdk_account::Client,
    caller_account: String,
    /// The caller's partition (`aws`, `aws-us-gov`, `aws-cn`), for role ARNs.
    partition: String,
    ctx: Arc<Context>,
}

impl Shared {
    /// The region's CloudTrail endpoint, or why it has none.
    fn cloudtrail(&self, region: &str) -> Result<wire::LookupWire, String> {
        let mut m = self.cloudtrail.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(region.to_string())
            .or_insert_with(|| {
                wire::LookupWire::new(
                    self.ctx.clients.sdk(),
                    region,
                    self.ctx.cfg.scan.call_timeout,
                )
            })
            .clone()
    }

    /// The region's Session Manager endpoint, or why it has none (`wires`:
    /// those resolved so far).
    fn ssm_wire(&self, wires: &SsmWires, region: &str) -> Result<crate::ssm::SsmWire, String> {
        let mut m = wires.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(region.to_string())
            .or_insert_with(|| {
                crate::ssm::SsmWire::new(
                    self.ctx.clients.sdk(),
                    region,
                    self.ctx.cfg.scan.call_timeout,
                )
            })
            .clone()
    }

    fn role_arn(&self, account_id: &str) -> String {
        format!(
            "arn:{}:iam::{account_id}:role/{}",
            self.partition, self.ctx.cfg.accounts.role_name
        )
    }
}

/// Read every account the feed hands over, until it ends (or the run is cancelled).
pub async fn read(ctx: &Arc<Context>, mut feed: AccountFeed) -> SourceOutput {
    let cfg = &ctx.cfg;
    let caller_arn = ctx.caller.as_ref().map(|c| c.arn.as_str()).unwrap_or("");
    // Session Manager's records wait for the listing to end (`SsmRun::after_listing`),
    // or for the window of accounts to fill: accounts that wait on them must
    // not keep the listed ones from starting.
    let (listed_tx, listed_rx) = tokio::sync::watch::channel(false);
    let release = || {
        listed_tx.send_if_modified(|done| !std::mem::replace(done, true));
    };
    let caller_credentials = Arc::new(credentials::CallerCredentials::new(
        ctx.clients.sdk().credentials_provider(),
    ));
    let shared = Arc::new(Shared {
        run: LookupRun {
            slots: ctx.slots.clone(),
            settings: LookupSettings {
                event_names: cfg.scan.event_names.clone(),
                window: cfg.scan.window,
                starts: Arc::new(cfg.scan.plan.partition_starts.clone()),
                account_starts: Arc::new(cfg.scan.plan.account_starts.clone()),
                rate: cfg.scan.lookup_rate,
                retry_deadline: cfg.scan.retry_deadline,
            },
            progress: ctx.progress.clone(),
            cancel: ctx.cancel.clone(),
            caller_credentials: caller_credentials.clone(),
        },
        cloudtrail: Mutex::new(HashMap::new()),
        ssm: cfg.scan.session_manager.then(|| {
            let run = crate::ssm::SsmRun {
                slots: ctx.slots.clone(),
                cancel: ctx.cancel.clone(),
                retry_deadline: cfg.scan.retry_deadline,
                window: cfg.scan.window,
                tunnel_documents: cfg.rules.tunnel_documents.clone(),
                progress: ctx.progress.clone(),
                caller_credentials,
                listed: listed_rx,
                starts: Default::default(),
            };
            (run, Mutex::new(HashMap::new()))
        }),
        sts: ctx.clients.sts(),
        account_api: ctx.clients.account(),
        partition: crate::ids::partition_of_arn(caller_arn)
            .unwrap_or("aws")
            .to_string(),
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
        if !queue.is_empty() {
            release();
        }
        if !listing && running.is_empty() {
            break;
        }
        tokio::select! {
            // Interrupted: take no more accounts; running ones stop on their own.
            _ = cancelled(&ctx.cancel), if listing => {
                listing = false;
                release();
            }
            page = feed.next_page(), if listing => match page {
                Some(page) => queue.extend(
                    page.into_iter().filter(|d| d.skip.is_none()).map(|d| d.account),
                ),
                None => {
                    listing = false;
                    release();
                }
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
                    let r = crashed_account(account, &requested_regions(cfg), &e);
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
    // The regions the run covered: those asked for, or (`--regions all`) every
    // region some account has enabled.
    let regions = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => {
            let all: std::collections::BTreeSet<&String> = results
                .iter()
                .flat_map(|r| r.coverage.regions.keys())
                .collect();
            all.into_iter().cloned().collect()
        }
    };
    SourceOutput {
        regions,
        accounts: results,
        skipped: Vec::new(),
        reasons,
        details: SourceDetails::None,
    }
}

/// How many partitions an account is expected to have: its listed regions, or
/// every region for `all` (an overestimate only widens the bound on calls in flight).
fn partitions_per_account(cfg: &crate::config::Config) -> usize {
    match requested_regions(cfg).len() {
        0 => ALL_REGIONS.len(),
        n => n,
    }
}

/// The regions known before asking an account: the list, or none for `all`.
fn requested_regions(cfg: &crate::config::Config) -> Vec<String> {
    match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => Vec::new(),
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
    crate::failpoint::hit("account", &account.id);
    let cfg = &shared.ctx.cfg;
    // Its partitions' pace counts in the bound on calls in flight while it runs.
    let _demand = shared
        .run
        .slots
        .demand(partitions_per_account(cfg) as f64 * shared.run.settings.rate);
    let is_caller = account.id == shared.caller_account;
    let role_arn = shared.role_arn(&account.id);
    let credentials = if is_caller {
        AccountCredentials::caller()
    } else {
        AccountCredentials::assumed(
            shared.sts.clone(),
            RoleRequest {
                role_arn: role_arn.clone(),
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
        let reason = format!("AssumeRole {role_arn} failed: {f}");
        let regions = requested_regions(cfg)
            .into_iter()
            .map(|r| {
                let mut c = RegionCoverage::new(RegionStatus::Failed);
                c.error = Some(reason.clone());
                (r, c)
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

    // Which regions the account has enabled: asked, never guessed from an error.
    let asker = RegionAsker {
        account: &shared.account_api,
        ec2: Ec2Regions {
            sdk: shared.ctx.clients.sdk(),
            region: shared.ctx.clients.home_region().to_string(),
            call_timeout: cfg.scan.call_timeout,
        },
        slots: &shared.run.slots,
        deadline: shared.run.settings.retry_deadline,
    };
    let known = tokio::select! {
        k = asker.regions(&cfg.scan.regions, &account.id, is_caller, credentials.provider()) => k,
        _ = cancelled(&shared.run.cancel) => AccountRegions {
            regions: requested_regions(cfg)
                .into_iter()
                .map(|r| (r, Enablement::Unknown("interrupted before the account's regions were known".into())))
                .collect(),
            incomplete: None,
        },
    };

    let mut regions = BTreeMap::new();
    let mut to_read = Vec::new();
    for (region, state) in known.regions {
        match state {
            Enablement::NotEnabled => {
                let mut c = RegionCoverage::new(RegionStatus::NotEnabled);
                c.error = Some("the account has not enabled this region (account:ListRegions / ec2:DescribeRegions): it can hold no activity".into());
                regions.insert(region, c);
            }
            state => match shared.cloudtrail(&region) {
                Ok(wire) => to_read.push((region, state, wire)),
                Err(why) => {
                    let mut c = RegionCoverage::new(RegionStatus::Failed);
                    c.error = Some(why);
                    regions.insert(region, c);
                }
            },
        }
    }
    let partitions = to_read.iter().map(|(region, _, wire)| {
        let cloudtrail = read_partition(
            &shared.run,
            Partition {
                account_id: &account.id,
                region,
                wire,
                credentials: &credentials,
            },
        );
        let shared = &shared;
        let (account_id, credentials) = (&account.id, &credentials);
        async move {
            match &shared.ssm {
                // Session Manager's records, read beside LookupEvents once the
                // listing has ended (`SsmRun::after_listing`).
                Some((run, wires)) => match shared.ssm_wire(wires, region) {
                    Ok(wire) => {
                        let p = crate::ssm::SsmPartition {
                            account_id,
                            region,
                            wire: &wire,
                            credentials,
                        };
                        crate::ssm::enrich(run, p, cloudtrail).await
                    }
                    Err(why) => crate::ssm::enrich_unreachable(run, why, cloudtrail).await,
                },
                None => cloudtrail.await,
            }
        }
    });
    // Side by side in this one task, each polled only when it is woken, the
    // results in the regions' order: `join_all` of a few futures polls every
    // one of them on each wake-up, and a partition wakes a few times per call.
    let parts: Vec<PartitionResult> =
        futures::StreamExt::collect(partitions.collect::<futures::stream::FuturesOrdered<_>>())
            .await;

    let mut events = Vec::new();
    for (p, (_, state, _)) in parts.into_iter().zip(&to_read) {
        let mut cov = p.coverage;
        // A region whose enablement could not be asked refused the credentials:
        // that may mean "not enabled", or a credentials problem. Say which
        // permission would tell, never "not enabled".
        if let (Enablement::Unknown(why), RegionStatus::Failed) = (state, cov.status) {
            if cov
                .error
                .as_deref()
                .is_some_and(|e| e.contains("UnrecognizedClientException"))
            {
                cov.error = Some(why.clone());
            }
        }
        events.extend(p.events);
        regions.insert(p.region, cov);
    }
    let mut coverage = AccountCoverage::from_regions(regions);
    if let Some(why) = known.incomplete {
        if coverage.status == AccountStatus::Complete {
            coverage.status = AccountStatus::Partial;
        }
        coverage.reason = Some(match coverage.reason.take() {
            Some(r) => format!("{r}; {why}"),
            None => why,
        });
    }
    AccountResult {
        account,
        coverage,
        events,
    }
}
