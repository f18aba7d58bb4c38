//! Runs that go on from each other (`--since last`), so that consecutive runs
//! neither miss nor count twice an event. Pure functions over plain data.
//!
//! Every report carries a [`Continuation`] (`run.continuation`): where the next
//! run starts each partition, which events at or after those starts the report
//! (or an earlier one) already holds, and the calls of sessions still open. A
//! `--since last` run reads it from the last run in the output location
//! ([`continue_from`]), reads each partition `[its start, now)`, leaves out what
//! an earlier report holds ([`keep_new`]), joins its calls to the open sessions
//! ([`joined`]), and writes the continuation for the run after it ([`next`]).
//!
//! Why this holds every event exactly once: windows are half-open; a partition a
//! run read to the last page is next read from the run's *settled* point (not
//! its end), because CloudTrail may still deliver events before the end; what
//! the run reported after that point is listed in `reported` and left out when
//! read again. A partition a run failed to read is next read again from that
//! run's own start for it, and what the failed read did report is in `reported`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::ScanConfig;
use crate::model::{
    AccountReport, AccountStatus, Continuation, Finding, PartitionMap, PreviousRun, RegionStatus,
    ReportedEvent, RunInfo, Session, SessionEvent, TimeWindow,
};
use crate::source::AccountResult;

/// A session still open at the end of a run is carried to the next one while
/// its last call is this recent: Session Manager's longest session setting
/// (`maxSessionDuration`) is 1,440 minutes, and idle sessions end after at most 60.
pub const OPEN_SESSION_HORIZON: TimeDelta = TimeDelta::hours(24);

/// What a run takes over from the one it continues; empty for a fresh window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Partitions that start elsewhere than the window's start.
    pub partition_starts: PartitionMap<DateTime<Utc>>,
    /// Accounts whose partitions not in `partition_starts` start elsewhere.
    pub account_starts: BTreeMap<String, DateTime<Utc>>,
    /// Per partition, the events an earlier report holds (id → time).
    pub reported: PartitionMap<BTreeMap<String, DateTime<Utc>>>,
    /// Calls of sessions an earlier run left open.
    pub open_sessions: Vec<SessionEvent>,
    /// The run this one continues.
    pub previous: Option<PreviousRun>,
}

impl Plan {
    fn reported_in(&self, account: &str, region: &str) -> Option<&BTreeMap<String, DateTime<Utc>>> {
        self.reported.get(account)?.get(region)
    }
}

/// The last run in an output location, as its report.json has it.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// The folder, or `s3://bucket/prefix/RUN/`.
    pub location: String,
    pub run: RunInfo,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("the last run in {location} (ssm-session-audit {version}) did not record where the next run starts; begin a new chain once with --since DURATION or --start TIME")]
    NoContinuation { location: String, version: String },
    #[error("nothing to read yet: the last run in {location} was settled until {settled}, and it is {now} now; run again later")]
    NothingNew {
        location: String,
        settled: String,
        now: String,
    },
    #[error("--since last would read {partition} from {start}, more than {days} days ago, beyond what CloudTrail LookupEvents keeps (the partition has failed since then); read trail files with --source for that time, or begin a new chain with --start TIME")]
    TooOld {
        partition: String,
        start: String,
        days: i64,
    },
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Points `scan` (resolved with `--since last`) at the continuation of `last`:
/// the window ends at `scan.resolved_at` and starts where `last` says, and
/// the plan takes over its partition starts, reported events and open sessions.
/// `oldest` is the earliest start the source can read (LookupEvents: 90 days).
pub fn continue_from(
    scan: &mut ScanConfig,
    last: &LastRun,
    oldest: Option<DateTime<Utc>>,
) -> Result<(), ChainError> {
    let c = last
        .run
        .continuation
        .as_ref()
        .ok_or_else(|| ChainError::NoContinuation {
            location: last.location.clone(),
            version: last.run.tool_version.clone(),
        })?;
    let end = scan.resolved_at;
    if c.start >= end {
        return Err(ChainError::NothingNew {
            location: last.location.clone(),
            settled: text(c.start),
            now: text(end),
        });
    }
    let mut partition_starts = c.partition_starts.clone();
    // A partition the last run read past this run's end has nothing to read yet.
    let mut account_starts = c.account_starts.clone();
    for t in partition_starts
        .values_mut()
        .flat_map(|r| r.values_mut())
        .chain(account_starts.values_mut())
    {
        *t = (*t).min(end);
    }
    if let Some(oldest) = oldest {
        let too_old = std::iter::once(("every partition".to_string(), c.start))
            .chain(partition_starts.iter().flat_map(|(a, r)| {
                r.iter()
                    .map(move |(region, t)| (format!("{a}/{region}"), *t))
            }))
            .chain(
                account_starts
                    .iter()
                    .map(|(a, t)| (format!("{a} (every region)"), *t)),
            )
            .find(|(_, t)| *t < oldest);
        if let Some((partition, start)) = too_old {
            return Err(ChainError::TooOld {
                partition,
                start: text(start),
                days: (end - oldest).num_days(),
            });
        }
    }
    scan.window = TimeWindow {
        start: c.start,
        end,
    };
    scan.settled_until = crate::config::settled_point(scan.window, end, scan.settle);
    scan.plan = Plan {
        partition_starts,
        account_starts,
        reported: c
            .reported
            .iter()
            .map(|(a, regions)| {
                let regions = regions
                    .iter()
                    .map(|(r, evs)| {
                        let ids = evs
                            .iter()
                            .map(|e| (e.event_id.clone(), e.event_time))
                            .collect();
                        (r.clone(), ids)
                    })
                    .collect();
                (a.clone(), regions)
            })
            .collect(),
        open_sessions: c.open_sessions.clone(),
        previous: Some(PreviousRun {
            location: last.location.clone(),
            started_at: last.run.started_at,
            window: TimeWindow {
                start: last.run.window.start,
                end: last.run.window.end,
            },
            settled_until: last.run.window.settled_until,
            complete: last.run.complete,
            already_reported: 0,
            joined_events: 0,
        }),
    };
    Ok(())
}

/// Keeps, in every account's events, those in their partition's own window and
/// not already in an earlier report; fixes the regions' counts to match.
/// Returns how many were left out as already reported.
pub fn keep_new(scan: &ScanConfig, results: &mut [AccountResult]) -> u64 {
    let mut already = 0;
    for r in results.iter_mut() {
        let mut dropped: HashMap<String, (u64, u64)> = HashMap::new();
        r.events.retain(|e| {
            let start = scan.start_of(&e.account_id, &e.region);
            let in_window = start <= e.event_time && e.event_time < scan.window.end;
            let reported = scan
                .plan
                .reported_in(&e.account_id, &e.region)
                .is_some_and(|ids| ids.contains_key(&e.event_id));
            if in_window && !reported {
                return true;
            }
            let d = dropped.entry(e.region.clone()).or_default();
            d.0 += 1;
            d.1 += u64::from(reported);
            false
        });
        for (region, (n, reported)) in dropped {
            if let Some(c) = r.coverage.regions.get_mut(&region) {
                c.events = c.events.saturating_sub(n);
                c.already_reported += reported;
            }
            already += reported;
        }
    }
    already
}

/// The calls of open sessions carried from the last run that this run does not
/// hold itself: the context its own calls are joined to.
pub fn joined(plan: &Plan, events: &[SessionEvent]) -> Vec<SessionEvent> {
    if plan.open_sessions.is_empty() {
        return Vec::new();
    }
    let own: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mut seen = HashSet::new();
    plan.open_sessions
        .iter()
        .filter(|e| !own.contains(e.event_id.as_str()) && seen.insert(e.event_id.clone()))
        .cloned()
        .collect()
}

/// A run's sessions and findings, its calls joined to the open sessions of
/// the run it continues.
pub struct Joined {
    /// The carried calls this run does not hold itself.
    pub context: Vec<SessionEvent>,
    /// Sessions with at least one call of this run.
    pub sessions: Vec<Session>,
    /// Every session, the carried-only ones included (`None`: `sessions`).
    all_sessions: Option<Vec<Session>>,
    /// Findings citing at least one call of this run (what only the carried
    /// calls prove is in the earlier report).
    pub findings: Vec<Finding>,
}

/// Builds the sessions of `events` plus the carried calls, lets `enrich` add
/// to them (Session Manager's records), and evaluates the rules (`evaluate`)
/// over both; without carried calls, just over `events`.
pub fn sessions_and_findings(
    plan: &Plan,
    events: &[SessionEvent],
    enrich: impl FnOnce(&mut [Session]),
    evaluate: impl Fn(&[SessionEvent], &[Session]) -> Vec<Finding>,
) -> Joined {
    let context = joined(plan, events);
    if context.is_empty() {
        let mut sessions = crate::session::build_sessions(events);
        enrich(&mut sessions);
        let findings = evaluate(events, &sessions);
        return Joined {
            context,
            all_sessions: None,
            sessions,
            findings,
        };
    }
    let mut all = events.to_vec();
    all.extend(context.iter().cloned());
    all.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    let mut all_sessions = crate::session::build_sessions(&all);
    enrich(&mut all_sessions);
    let own: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mine = |ids: &[String]| ids.iter().any(|id| own.contains(id.as_str()));
    let findings = evaluate(&all, &all_sessions)
        .into_iter()
        .filter(|f| mine(&f.event_ids))
        .collect();
    let sessions = all_sessions
        .iter()
        .filter(|s| mine(&s.event_ids))
        .cloned()
        .collect();
    Joined {
        context,
        sessions,
        all_sessions: Some(all_sessions),
        findings,
    }
}

impl Joined {
    /// A run's own sessions and findings, nothing carried from an earlier run.
    pub fn own(sessions: Vec<Session>, findings: Vec<Finding>) -> Joined {
        Joined {
            context: Vec::new(),
            sessions,
            all_sessions: None,
            findings,
        }
    }

    /// The continuation for the run after this one (see [`next`]).
    pub fn continuation(
        &self,
        scan: &ScanConfig,
        accounts: &[AccountReport],
        events: &[SessionEvent],
        whole_listing: bool,
    ) -> Continuation {
        let all = self.all_sessions.as_deref().unwrap_or(&self.sessions);
        next(scan, accounts, events, &self.context, all, whole_listing)
    }

    /// The report's sessions and findings.
    pub fn into_parts(self) -> (Vec<Session>, Vec<Finding>) {
        (self.sessions, self.findings)
    }

    /// `run.previous`, with what was left out and what was joined.
    pub fn previous(&self, scan: &ScanConfig, already_reported: u64) -> Option<PreviousRun> {
        let mut prev = scan.plan.previous.clone()?;
        prev.already_reported = already_reported;
        let in_sessions: HashSet<&str> = self
            .sessions
            .iter()
            .flat_map(|s| s.event_ids.iter().map(String::as_str))
            .collect();
        prev.joined_events = self
            .context
            .iter()
            .filter(|e| in_sessions.contains(e.event_id.as_str()))
            .count() as u64;
        Some(prev)
    }
}

/// What the run after this one needs. `accounts` are this run's lines (their
/// coverage says which partitions were read to the end), `events` its own
/// calls, `context` the carried calls it joined them to, `sessions` every
/// session of both. `whole_listing`: every account of the scope was handed to
/// the source (the listing ended, and the run was not interrupted), so a
/// partition the report does not name is new to the chain.
pub fn next(
    scan: &ScanConfig,
    accounts: &[AccountReport],
    events: &[SessionEvent],
    context: &[SessionEvent],
    sessions: &[Session],
    whole_listing: bool,
) -> Continuation {
    let settled = scan.settled_until;
    let default = if whole_listing {
        settled
    } else {
        scan.window.start
    };
    // Where the next run starts each partition this run knows of.
    let mut starts: PartitionMap<DateTime<Utc>> = BTreeMap::new();
    for a in accounts {
        for (region, cov) in &a.coverage.regions {
            let next = match cov.status {
                RegionStatus::Ok | RegionStatus::NotEnabled => settled,
                RegionStatus::Failed => scan.start_of(&a.account_id, region),
            };
            starts
                .entry(a.account_id.clone())
                .or_default()
                .insert(region.clone(), next);
        }
    }
    // Under `--regions all`, an account not read in full may have regions its
    // coverage does not name (no role, or its regions could not be listed):
    // those start again where this run started the account, and the starts
    // it had for regions it did not name go on. (With a list of regions,
    // every one of them is named.)
    let unnamed_regions = scan.regions == crate::config::RegionSelection::All;
    let reached: HashSet<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    let mut account_starts: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut carried: HashSet<&str> = HashSet::new();
    for a in accounts {
        if unnamed_regions
            && matches!(
                a.coverage.status,
                AccountStatus::Partial | AccountStatus::Failed
            )
        {
            let own = scan
                .plan
                .account_starts
                .get(&a.account_id)
                .copied()
                .unwrap_or(scan.window.start);
            account_starts.insert(a.account_id.clone(), own);
            carried.insert(a.account_id.as_str());
        }
    }
    if !whole_listing {
        // Accounts this run never reached keep the starts it had for them.
        for (account, t) in &scan.plan.account_starts {
            if !reached.contains(account.as_str()) {
                account_starts.insert(account.clone(), *t);
            }
        }
    }
    // Partitions this run never read keep the start it had for them.
    for (account, regions) in &scan.plan.partition_starts {
        let keep = if reached.contains(account.as_str()) {
            carried.contains(account.as_str())
        } else {
            !whole_listing
        };
        if !keep {
            continue;
        }
        for (region, t) in regions {
            starts
                .entry(account.clone())
                .or_default()
                .entry(region.clone())
                .or_insert(*t);
        }
    }
    let start_of = |account: &str, region: &str| {
        crate::model::start_in(&starts, &account_starts, default, account, region)
    };

    let mut reported: PartitionMap<BTreeSet<ReportedEvent>> = BTreeMap::new();
    let mut add = |account: &str, region: &str, id: &str, t: DateTime<Utc>| {
        if t >= start_of(account, region) {
            reported
                .entry(account.to_string())
                .or_default()
                .entry(region.to_string())
                .or_default()
                .insert(ReportedEvent {
                    event_id: id.to_string(),
                    event_time: t,
                });
        }
    };
    for (account, regions) in &scan.plan.reported {
        for (region, ids) in regions {
            for (id, t) in ids {
                add(account, region, id, *t);
            }
        }
    }
    for e in events {
        add(&e.account_id, &e.region, &e.event_id, e.event_time);
    }

    // Sessions without an end whose last call is recent: their calls go on.
    let horizon = settled - OPEN_SESSION_HORIZON;
    let by_id: HashMap<&str, &SessionEvent> = events
        .iter()
        .chain(context)
        .map(|e| (e.event_id.as_str(), e))
        .collect();
    let mut open_sessions: Vec<SessionEvent> = Vec::new();
    for s in sessions.iter().filter(|s| s.end_time.is_none()) {
        let last = s.resumes.iter().map(|r| r.time).chain(s.start_time).max();
        if last.is_none_or(|t| t < horizon) {
            continue;
        }
        open_sessions.extend(
            s.event_ids
                .iter()
                .filter_map(|id| by_id.get(id.as_str()))
                .map(|e| (*e).clone()),
        );
    }
    open_sessions.sort_by(|a, b| {
        (&a.account_id, &a.region, a.event_time, &a.event_id).cmp(&(
            &b.account_id,
            &b.region,
            b.event_time,
            &b.event_id,
        ))
    });
    open_sessions.dedup_by(|a, b| a.event_id == b.event_id);

    // Only what differs from the chain's start is written; an account with
    // its own start keeps every region it named, so none falls back to it.
    let partition_starts = starts
        .into_iter()
        .filter_map(|(a, regions)| {
            let own = account_starts.contains_key(&a);
            let regions: BTreeMap<String, DateTime<Utc>> = regions
                .into_iter()
                .filter(|(_, t)| own || *t != default)
                .collect();
            (!regions.is_empty()).then_some((a, regions))
        })
        .collect();
    Continuation {
        start: default,
        partition_starts,
        account_starts,
        reported: reported
            .into_iter()
            .map(|(a, regions)| {
                let regions = regions
                    .into_iter()
                    .map(|(r, set)| {
                        let mut v: Vec<ReportedEvent> = set.into_iter().collect();
                        v.sort_by(|x, y| {
                            (x.event_time, &x.event_id).cmp(&(y.event_time, &y.event_id))
                        });
                        (r, v)
                    })
                    .collect();
                (a, regions)
            })
            .collect(),
        open_sessions,
    }
}

#[cfg(test)]
mod tests;
