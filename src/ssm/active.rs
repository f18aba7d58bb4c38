//! `ssm-session-audit active`: the sessions connected right now, across the
//! organization. Discovery, credentials, then `DescribeSessions State=Active`
//! (every page) in every account and region at once; no CloudTrail.
//!
//! Coverage follows the scan's rules: the regions an account has enabled are
//! asked (`crate::regions`), never guessed from an error; an account or region
//! that could not be read is listed with the reason and makes the listing
//! incomplete. An empty list is "nobody is connected" only where every account
//! and region was read.
//! Renderers ([`write_table`], [`write_csv`], [`write_json`]) are pure and
//! write to any `io::Write`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::read::{read_active, SsmPartition, SsmRun};
use super::wire::SsmWire;
use crate::call::{call_with_retry, cancelled, CallFailure, CallSlots, ClientSettings, ErrorClass};
use crate::config::{Config, RegionSelection};
use crate::model::{Account, AccountStatus, RegionStatus, SessionRecord};
use crate::progress::NoProgress;
use crate::regions::{AccountRegions, Ec2Regions, Enablement, RegionAsker};
use crate::report::{neutralize_csv_cell, sanitize_terminal};
use crate::scan::ScanError;
use crate::source::lookup::credentials::{AccountCredentials, CallerCredentials, RoleRequest};

/// Schema id of the JSON output.
pub const ACTIVE_SCHEMA: &str = "ssm-session-audit/active/v1";
/// `active`'s calls in flight when neither the flag nor the file says: each
/// partition needs about one call, so the run is as long as the slowest answer
/// when they all go at once.
pub const DEFAULT_ACTIVE_CONCURRENCY: usize = 256;
/// At most this many accounts hold credentials at once.
const ACTIVE_ACCOUNTS: usize = 2_000;

/// How one region of one account went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRegion {
    pub status: RegionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sessions in the region's `Active` list.
    pub sessions: u64,
    pub pages: u64,
}

/// One account of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAccount {
    pub account_id: String,
    pub account_name: String,
    pub state: String,
    pub status: AccountStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub regions: BTreeMap<String, ActiveRegion>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveReport {
    pub schema: String,
    /// When the first `DescribeSessions` could have been sent.
    pub checked_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub caller_arn: Option<String>,
    pub regions: Vec<String>,
    /// Every account in scope and every region was read.
    pub complete: bool,
    pub interrupted: bool,
    /// Sorted by start time, then account, region, session id.
    pub sessions: Vec<SessionRecord>,
    /// Sorted by id.
    pub accounts: Vec<ActiveAccount>,
}

impl ActiveReport {
    /// `account/region: why` for everything that was not read.
    pub fn not_checked(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.accounts {
            match a.status {
                AccountStatus::Complete | AccountStatus::Skipped => {}
                _ if a.regions.is_empty() => out.push(format!(
                    "{}: {}",
                    a.account_id,
                    a.reason.as_deref().unwrap_or("failed")
                )),
                _ => {}
            }
            for (r, c) in &a.regions {
                if c.status == RegionStatus::Failed {
                    out.push(format!(
                        "{}/{r}: {}",
                        a.account_id,
                        c.error.as_deref().unwrap_or("failed")
                    ));
                }
            }
        }
        out
    }
}

/// Lists the sessions connected now in every account and region `cfg` scopes.
/// Only no credentials at all, or no account list, stop it.
pub async fn list_active(
    cfg: &Config,
    sdk: &SdkConfig,
    cancel: watch::Receiver<bool>,
) -> Result<ActiveReport, ScanError> {
    let checked_at = Utc::now();
    // `--concurrency` (or `scan.concurrency`) when given, else all at once.
    let slots = CallSlots::new(cfg.scan.concurrency.unwrap_or(DEFAULT_ACTIVE_CONCURRENCY));
    let clients = ClientSettings::new(sdk, cfg.scan.call_timeout);
    let deadline = cfg.scan.retry_deadline;
    let sts = clients.sts();
    let me = call_with_retry(Some(&slots), deadline, || sts.get_caller_identity().send())
        .await
        .map_err(ScanError::NoCredentials)?;
    let caller_account = me.account().unwrap_or_default().to_string();
    let caller_arn = me.arn().map(str::to_string).filter(|a| !a.is_empty());
    let partition = crate::ids::partition_of_arn(caller_arn.as_deref().unwrap_or(""))
        .unwrap_or("aws")
        .to_string();
    let run = Arc::new(Shared {
        run: SsmRun {
            slots: slots.clone(),
            cancel: cancel.clone(),
            retry_deadline: deadline,
            window: cfg.scan.window,
            tunnel_documents: Vec::new(),
            listed: super::read::already_listed(),
            starts: Default::default(),
            progress: Arc::new(NoProgress),
            caller_credentials: Arc::new(CallerCredentials::new(
                clients.sdk().credentials_provider(),
            )),
        },
        ssm: Mutex::new(HashMap::new()),
        account_api: clients.account(),
        clients: clients.clone(),
        sts: sts.clone(),
        caller_account,
        partition,
        cfg: cfg.clone(),
    });

    // Discovery streams its pages; accounts start as they arrive.
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Account>>();
    let orgs = clients.organizations();
    let (ous, d_slots) = (cfg.accounts.organizational_units.clone(), slots.clone());
    let discovery = tokio::spawn(async move {
        crate::org::discover_each(&orgs, &ous, &d_slots, deadline, |page| {
            let _ = tx.send(page);
        })
        .await
    });

    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<Account> = VecDeque::new();
    let mut accounts: Vec<ActiveAccount> = Vec::new();
    let mut sessions: Vec<SessionRecord> = Vec::new();
    let mut running = JoinSet::new();
    let mut listing = true;
    let include = &cfg.accounts.include;
    let exclude = &cfg.accounts.exclude;
    loop {
        while running.len() < ACTIVE_ACCOUNTS {
            let Some(a) = queue.pop_front() else { break };
            let run = run.clone();
            running.spawn(async move { one_account(run, a).await });
        }
        if !listing && running.is_empty() {
            break;
        }
        tokio::select! {
            _ = cancelled(&cancel), if listing => listing = false,
            page = rx.recv(), if listing => match page {
                Some(page) => {
                    for a in page {
                        if !seen.insert(a.id.clone()) {
                            continue;
                        }
                        match crate::org::skip_reason(&a, include, exclude) {
                            Some(reason) => accounts.push(skipped(&a, reason)),
                            None => queue.push_back(a),
                        }
                    }
                }
                None => listing = false,
            },
            joined = running.join_next(), if !running.is_empty() => match joined {
                Some(Ok((account, found))) => {
                    accounts.push(account);
                    sessions.extend(found);
                }
                Some(Err(e)) => tracing::error!(error = %e, "an account task failed unexpectedly"),
                None => {}
            },
        }
    }
    let interrupted = *cancel.borrow();
    // A listing that failed part-way leaves accounts nobody knows of: no answer
    // could say what it did not look at.
    if !interrupted {
        match discovery.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(ScanError::DiscoveryStopped),
        }
    } else {
        discovery.abort();
    }
    for id in include {
        if !seen.contains(id) {
            accounts.push(ActiveAccount {
                account_id: id.clone(),
                account_name: String::new(),
                state: "UNKNOWN".into(),
                status: AccountStatus::Failed,
                reason: Some("not found in the organization (or not under the given OUs)".into()),
                regions: BTreeMap::new(),
            });
        }
    }
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    sort_sessions(&mut sessions);
    // The regions asked for, or (`--regions all`) every region an account has enabled.
    let regions: Vec<String> = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => {
            let all: BTreeSet<&String> = accounts.iter().flat_map(|a| a.regions.keys()).collect();
            all.into_iter().cloned().collect()
        }
    };
    let complete = !interrupted
        && accounts
            .iter()
            .all(|a| matches!(a.status, AccountStatus::Complete | AccountStatus::Skipped));
    Ok(ActiveReport {
        schema: ACTIVE_SCHEMA.into(),
        checked_at,
        finished_at: Utc::now(),
        caller_arn,
        regions,
        complete,
        interrupted,
        sessions,
        accounts,
    })
}

/// By start time (unknown last), then account, region and session id.
pub fn sort_sessions(sessions: &mut [SessionRecord]) {
    sessions.sort_by(|a, b| {
        (
            a.start_time.is_none(),
            a.start_time,
            &a.account_id,
            &a.region,
            &a.session_id,
        )
            .cmp(&(
                b.start_time.is_none(),
                b.start_time,
                &b.account_id,
                &b.region,
                &b.session_id,
            ))
    });
}

struct Shared {
    run: SsmRun,
    /// One endpoint per region (or why it has none), resolved when first
    /// read, shared by every account.
    ssm: Mutex<HashMap<String, Result<SsmWire, String>>>,
    account_api: aws_sdk_account::Client,
    clients: ClientSettings,
    sts: aws_sdk_sts::Client,
    caller_account: String,
    /// The caller's partition (`aws`, `aws-us-gov`, `aws-cn`), for role ARNs.
    partition: String,
    cfg: Config,
}

impl Shared {
    fn ssm(&self, region: &str) -> Result<SsmWire, String> {
        let mut m = self.ssm.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(region.to_string())
            .or_insert_with(|| SsmWire::new(self.clients.sdk(), region, self.cfg.scan.call_timeout))
            .clone()
    }

    /// The regions known before asking an account: the list, or none for `all`.
    fn requested(&self) -> Vec<String> {
        match &self.cfg.scan.regions {
            RegionSelection::List(r) => r.clone(),
            RegionSelection::All => Vec::new(),
        }
    }
}

fn skipped(a: &Account, reason: String) -> ActiveAccount {
    ActiveAccount {
        account_id: a.id.clone(),
        account_name: a.name.clone(),
        state: a.state.clone(),
        status: AccountStatus::Skipped,
        reason: Some(reason),
        regions: BTreeMap::new(),
    }
}

async fn one_account(shared: Arc<Shared>, account: Account) -> (ActiveAccount, Vec<SessionRecord>) {
    let cfg = &shared.cfg;
    let role_arn = format!(
        "arn:{}:iam::{}:role/{}",
        shared.partition, account.id, cfg.accounts.role_name
    );
    let is_caller = account.id == shared.caller_account;
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
            shared.run.retry_deadline,
        )
    };
    let fresh = tokio::select! {
        r = credentials.ensure_fresh() => r,
        _ = cancelled(&shared.run.cancel) => Err(CallFailure {
            class: ErrorClass::Fatal,
            code: "interrupted".into(),
            message: "the run was interrupted before the role was assumed".into(),
        }),
    };
    let mut out = ActiveAccount {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        state: account.state.clone(),
        status: AccountStatus::Complete,
        reason: None,
        regions: BTreeMap::new(),
    };
    if let Err(f) = fresh {
        let reason = format!("AssumeRole {role_arn} failed: {f}");
        for r in shared.requested() {
            out.regions.insert(
                r,
                ActiveRegion {
                    status: RegionStatus::Failed,
                    error: Some(reason.clone()),
                    sessions: 0,
                    pages: 0,
                },
            );
        }
        out.status = AccountStatus::Failed;
        out.reason = Some(reason);
        return (out, Vec::new());
    }
    // Which regions the account has enabled: asked, never guessed from an error.
    let asker = RegionAsker {
        account: &shared.account_api,
        ec2: Ec2Regions {
            sdk: shared.clients.sdk(),
            region: shared.clients.home_region().to_string(),
            call_timeout: cfg.scan.call_timeout,
        },
        slots: &shared.run.slots,
        deadline: shared.run.retry_deadline,
    };
    let known = tokio::select! {
        k = asker.regions(&cfg.scan.regions, &account.id, is_caller, credentials.provider()) => k,
        _ = cancelled(&shared.run.cancel) => AccountRegions {
            regions: shared
                .requested()
                .into_iter()
                .map(|r| (r, Enablement::Unknown("interrupted before the account's regions were known".into())))
                .collect(),
            incomplete: None,
        },
    };
    let mut to_read = Vec::new();
    for (region, state) in known.regions {
        match state {
            Enablement::NotEnabled => {
                out.regions.insert(
                    region,
                    ActiveRegion {
                        status: RegionStatus::NotEnabled,
                        error: Some("the account has not enabled this region (account:ListRegions / ec2:DescribeRegions): it can hold no session".into()),
                        sessions: 0,
                        pages: 0,
                    },
                );
            }
            state => {
                let wire = shared.ssm(&region);
                to_read.push((region, state, wire));
            }
        }
    }
    let reads = to_read.iter().map(|(region, state, wire)| {
        let (run, credentials, account_id) = (&shared.run, &credentials, &account.id);
        async move {
            let read = match wire {
                Ok(wire) => {
                    let p = SsmPartition {
                        account_id,
                        region,
                        wire,
                        credentials,
                    };
                    read_active(run, &p).await
                }
                Err(why) => Err((crate::model::ReadStatus::Failed, why.clone())),
            };
            (region.clone(), state, read)
        }
    });
    let mut found = Vec::new();
    for (region, state, result) in futures::future::join_all(reads).await {
        let r = match result {
            Ok((list, pages)) => {
                let n = list.len() as u64;
                found.extend(list);
                ActiveRegion {
                    status: RegionStatus::Ok,
                    error: None,
                    sessions: n,
                    pages,
                }
            }
            // A region the account has enabled (or that could not be told)
            // refusing the credentials is failed, never "holds nothing"; where
            // the regions could not be asked, say which permission would tell.
            Err((status, error)) => ActiveRegion {
                status: RegionStatus::Failed,
                error: Some(match (state, status) {
                    (Enablement::Unknown(why), crate::model::ReadStatus::NotEnabled) => {
                        format!("{error}; {why}")
                    }
                    _ => error,
                }),
                sessions: 0,
                pages: 0,
            },
        };
        out.regions.insert(region, r);
    }
    let failed = out
        .regions
        .values()
        .filter(|r| r.status == RegionStatus::Failed)
        .count();
    let usable = out
        .regions
        .values()
        .filter(|r| r.status != RegionStatus::NotEnabled)
        .count();
    if failed > 0 {
        out.status = if failed == usable {
            AccountStatus::Failed
        } else {
            AccountStatus::Partial
        };
        out.reason = Some(format!(
            "{failed} of {} regions not read",
            out.regions.len()
        ));
    }
    if let Some(why) = known.incomplete {
        if out.status == AccountStatus::Complete {
            out.status = AccountStatus::Partial;
        }
        out.reason = Some(match out.reason.take() {
            Some(r) => format!("{r}; {why}"),
            None => why,
        });
    }
    (out, found)
}

// ------------------------------------------------------------ rendering

/// `2h05m` from `since` to `now`.
fn connected_for(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return String::new();
    };
    let m = (now - since).num_minutes().max(0);
    match (m / 1440, m % 1440 / 60, m % 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

fn stamp(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Sanitized and cut to `width` characters.
fn fit(s: &str, width: usize) -> String {
    let s = sanitize_terminal(s);
    if s.chars().count() <= width {
        s
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A table for people: one line per session, then what was not checked.
pub fn write_table(r: &ActiveReport, out: &mut dyn io::Write) -> io::Result<()> {
    let names: BTreeMap<&str, &str> = r
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.account_name.as_str()))
        .collect();
    let read: usize = r
        .accounts
        .iter()
        .map(|a| {
            a.regions
                .values()
                .filter(|c| c.status == RegionStatus::Ok)
                .count()
        })
        .sum();
    if r.sessions.is_empty() {
        if r.complete {
            writeln!(
                out,
                "Nobody is connected: no active session in {} account(s), {read} region(s) read.",
                r.accounts
                    .iter()
                    .filter(|a| a.status == AccountStatus::Complete)
                    .count()
            )?;
        } else {
            writeln!(
                out,
                "No active session where it could look; some accounts or regions could not be read (below): this is not \"nobody is connected\"."
            )?;
        }
    } else {
        let headers = [
            "SINCE", "FOR", "ACCOUNT", "NAME", "REGION", "OWNER", "TARGET", "STATUS", "ACCESS",
            "SESSION", "REASON",
        ];
        let rows: Vec<[String; 11]> = r
            .sessions
            .iter()
            .map(|s| {
                [
                    stamp(s.start_time),
                    connected_for(s.start_time, r.checked_at),
                    fit(&s.account_id, 12),
                    fit(names.get(s.account_id.as_str()).copied().unwrap_or(""), 20),
                    fit(&s.region, 16),
                    fit(s.owner.as_deref().unwrap_or(""), 64),
                    fit(s.target.as_deref().unwrap_or(""), 24),
                    fit(s.status.as_deref().unwrap_or(""), 12),
                    fit(s.access_type.as_deref().unwrap_or(""), 12),
                    fit(&s.session_id, 48),
                    fit(s.reason.as_deref().unwrap_or(""), 40),
                ]
            })
            .collect();
        let mut widths = headers.map(|h| h.chars().count());
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[&str]| -> String {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let w = widths[i];
                s.push_str(&format!("{c:<w$}  "));
            }
            s.trim_end().to_string()
        };
        writeln!(out, "{}", line(&headers))?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&cells))?;
        }
        writeln!(out)?;
        let accounts: BTreeSet<&str> = r.sessions.iter().map(|s| s.account_id.as_str()).collect();
        writeln!(
            out,
            "{} session(s) connected in {} account(s), at {}",
            r.sessions.len(),
            accounts.len(),
            stamp(Some(r.checked_at))
        )?;
    }
    let missing = r.not_checked();
    if !missing.is_empty() {
        writeln!(out)?;
        writeln!(out, "NOT CHECKED ({}):", missing.len())?;
        for m in missing.iter().take(50) {
            writeln!(out, "  {}", fit(m, 200))?;
        }
        if missing.len() > 50 {
            writeln!(
                out,
                "  … and {} more (see --format json)",
                missing.len() - 50
            )?;
        }
    }
    let status = if r.interrupted {
        "INTERRUPTED: not every account and region was read".to_string()
    } else if r.complete {
        "complete: every account and region was read".to_string()
    } else {
        "INCOMPLETE: some accounts or regions were not read".to_string()
    };
    writeln!(out, "Run: {status}")
}

/// One row per session; what was not checked is not a row (see the exit status).
pub fn write_csv(r: &ActiveReport, out: &mut dyn io::Write) -> io::Result<()> {
    let names: BTreeMap<&str, &str> = r
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.account_name.as_str()))
        .collect();
    let mut w = ::csv::WriterBuilder::new().from_writer(out);
    w.write_record([
        "account_id",
        "account_name",
        "region",
        "session_id",
        "owner",
        "target",
        "status",
        "start_time",
        "connected_minutes",
        "document_name",
        "access_type",
        "reason",
        "max_session_duration",
    ])?;
    for s in &r.sessions {
        let minutes = s
            .start_time
            .map(|t| (r.checked_at - t).num_minutes().max(0).to_string())
            .unwrap_or_default();
        let cells = [
            s.account_id.clone(),
            names
                .get(s.account_id.as_str())
                .copied()
                .unwrap_or("")
                .to_string(),
            s.region.clone(),
            s.session_id.clone(),
            s.owner.clone().unwrap_or_default(),
            s.target.clone().unwrap_or_default(),
            s.status.clone().unwrap_or_default(),
            stamp(s.start_time),
            minutes,
            s.document_name.clone().unwrap_or_default(),
            s.access_type.clone().unwrap_or_default(),
            s.reason.clone().unwrap_or_default(),
            s.max_session_duration.clone().unwrap_or_default(),
        ];
        w.write_record(cells.iter().map(|c| neutralize_csv_cell(c).into_owned()))?;
    }
    w.flush()
}

/// The whole answer, sessions and coverage.
pub fn write_json(r: &ActiveReport, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionState;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rec(account: &str, id: &str, start: Option<&str>) -> SessionRecord {
        SessionRecord {
            account_id: account.into(),
            region: "us-east-1".into(),
            session_id: id.into(),
            state: SessionState::Active,
            status: Some("Connected".into()),
            target: Some("i-0123".into()),
            start_time: start.map(at),
            end_time: None,
            document_name: Some("SSM-SessionManagerRunShell".into()),
            owner: Some("arn:aws:sts::111111111111:assumed-role/Admin/alice".into()),
            reason: Some("=HYPERLINK(\"x\")\u{1b}[2J".into()),
            access_type: Some("Standard".into()),
            max_session_duration: None,
        }
    }

    fn report(complete: bool) -> ActiveReport {
        let mut sessions = vec![
            rec("222222222222", "b-1", Some("2026-12-01T10:00:00Z")),
            rec("111111111111", "a-1", Some("2026-12-01T11:00:00Z")),
            rec("111111111111", "a-0", None),
            rec("111111111111", "a-2", Some("2026-12-01T10:00:00Z")),
        ];
        sort_sessions(&mut sessions);
        let mut regions = BTreeMap::new();
        regions.insert(
            "us-east-1".to_string(),
            ActiveRegion {
                status: RegionStatus::Ok,
                error: None,
                sessions: 3,
                pages: 1,
            },
        );
        let mut failed = regions.clone();
        failed.insert(
            "eu-west-1".to_string(),
            ActiveRegion {
                status: RegionStatus::Failed,
                error: Some("not readable: grant ssm:DescribeSessions to the audit role".into()),
                sessions: 0,
                pages: 0,
            },
        );
        ActiveReport {
            schema: ACTIVE_SCHEMA.into(),
            checked_at: at("2026-12-01T12:30:00Z"),
            finished_at: at("2026-12-01T12:30:02Z"),
            caller_arn: None,
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            complete,
            interrupted: false,
            sessions,
            accounts: vec![
                ActiveAccount {
                    account_id: "111111111111".into(),
                    account_name: "prod".into(),
                    state: "ACTIVE".into(),
                    status: AccountStatus::Complete,
                    reason: None,
                    regions: regions.clone(),
                },
                ActiveAccount {
                    account_id: "222222222222".into(),
                    account_name: "dev".into(),
                    state: "ACTIVE".into(),
                    status: if complete {
                        AccountStatus::Complete
                    } else {
                        AccountStatus::Partial
                    },
                    reason: None,
                    regions: if complete { regions } else { failed },
                },
            ],
        }
    }

    #[test]
    fn sessions_are_sorted_by_start_then_account() {
        let r = report(true);
        let ids: Vec<&str> = r.sessions.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids, ["a-2", "b-1", "a-1", "a-0"]);
    }

    #[test]
    fn the_table_is_plain_text_and_says_what_it_did_not_check() {
        let mut out = Vec::new();
        write_table(&report(false), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("2h30m"), "connected for: {text}");
        assert!(text.contains("NOT CHECKED (1)"), "{text}");
        assert!(text.contains("222222222222/eu-west-1: not readable: grant ssm:DescribeSessions"));
        assert!(text.contains("INCOMPLETE"));
        let mut empty = report(false);
        empty.sessions.clear();
        let mut out = Vec::new();
        write_table(&empty, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("this is not \"nobody is connected\""),
            "{text}"
        );
        let mut empty = report(true);
        empty.sessions.clear();
        let mut out = Vec::new();
        write_table(&empty, &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("Nobody is connected"));
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        let mut out = Vec::new();
        write_csv(&report(true), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut rows = ::csv::Reader::from_reader(text.as_bytes());
        let n = rows
            .records()
            .map(|r| {
                let r = r.unwrap();
                for cell in r.iter() {
                    assert!(!cell.starts_with('='), "{cell}");
                }
            })
            .count();
        assert_eq!(n, 4);
        let mut out = Vec::new();
        write_json(&report(true), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema"], ACTIVE_SCHEMA);
        assert_eq!(v["sessions"].as_array().unwrap().len(), 4);
    }
}
