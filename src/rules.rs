//! The flags of PRODUCT.md, as pure functions of events, sessions and the rule
//! config: no I/O, no clock, no SDK types. The same input gives the same
//! findings in the same order, whatever order the events came in.
//!
//! How many findings a rule gives (so a reviewer is not flooded):
//! - per call, grouped by (account, region, principal): `root-session`,
//!   `iam-user-session`, `instance-role-caller`, `cross-account-principal`,
//!   `unusual-region`, `new-principal`; `unapproved-source-ip` also by source IP.
//!   These look at every call, denied ones included: a denied StartSession by
//!   root is still worth knowing.
//! - per session (successful calls only): `off-hours`, `port-forwarding`,
//!   `resume-from-new-ip`, `long-session`.
//! - per burst of one principal in one account (across its regions):
//!   `denied-attempts`, `target-fanout`. A window is inclusive: calls exactly
//!   `window` apart are in the same window. Overlapping or touching qualifying
//!   windows (closer than `window`) are one burst.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::Value;

use crate::config::{BusinessHours, RuleConfig};
use crate::model::{Finding, Flag, FlagCount, Session, SessionEvent, Severity};
use crate::session::{cmp_events, RESUME_SESSION, START_SESSION};

/// The principals of an earlier report, for `new-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    principals: BTreeSet<String>,
}

/// Why a baseline report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("baseline has no `events` array: is it a report.json written by ssm-session-audit?")]
    NoEvents,
}

impl Baseline {
    /// Reads `events[].principal_arn` of a `report.json`; every other field is
    /// ignored and may be missing.
    pub fn from_report_json(text: &str) -> Result<Baseline, BaselineError> {
        let value: Value = serde_json::from_str(text).map_err(|e| BaselineError::NotJson {
            reason: e.to_string().chars().take(120).collect(),
        })?;
        let events = value
            .get("events")
            .and_then(Value::as_array)
            .ok_or(BaselineError::NoEvents)?;
        Ok(Baseline::from_principals(events.iter().filter_map(|e| {
            e.get("principal_arn")
                .and_then(Value::as_str)
                .map(str::to_string)
        })))
    }

    pub fn from_principals<I, S>(principals: I) -> Baseline
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Baseline {
            principals: principals
                .into_iter()
                .map(Into::into)
                .filter(|p: &String| !p.is_empty())
                .collect(),
        }
    }

    pub fn contains(&self, principal_arn: &str) -> bool {
        self.principals.contains(principal_arn)
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// Every finding for these events and sessions, sorted by (account, region,
/// flag, first event time, principal, session, event ids).
pub fn evaluate(
    events: &[SessionEvent],
    sessions: &[Session],
    rules: &RuleConfig,
    baseline: Option<&Baseline>,
) -> Vec<Finding> {
    // One canonical sequence: sorted by a total order, each event id once.
    let mut events: Vec<&SessionEvent> = events.iter().collect();
    events.sort_by(|a, b| cmp_events(a, b));
    let mut seen = BTreeSet::new();
    events.retain(|e| seen.insert(e.event_id.as_str()));

    let mut found = Vec::new();
    per_call(&events, rules, baseline, &mut found);
    for session in sessions {
        per_session(session, rules, &mut found);
    }
    bursts(&events, rules, &mut found);

    found.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    found.dedup_by(|a, b| a.finding == b.finding);
    found.into_iter().map(|p| p.finding).collect()
}

/// For the `flags` column of events.csv: every flag that names each event.
pub fn flags_for_event(findings: &[Finding]) -> BTreeMap<String, BTreeSet<Flag>> {
    let mut map: BTreeMap<String, BTreeSet<Flag>> = BTreeMap::new();
    for f in findings {
        for id in &f.event_ids {
            map.entry(id.clone()).or_default().insert(f.flag);
        }
    }
    map
}

/// One account's `flags[]` (count of findings per flag, most severe first, then
/// by flag) and its highest severity.
pub fn summarize(findings: &[Finding], account_id: &str) -> (Vec<FlagCount>, Option<Severity>) {
    let mut counts: BTreeMap<Flag, (Severity, u64)> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.account_id == account_id) {
        let entry = counts.entry(f.flag).or_insert((f.severity, 0));
        entry.0 = entry.0.max(f.severity);
        entry.1 += 1;
    }
    let mut flags: Vec<FlagCount> = counts
        .into_iter()
        .map(|(flag, (severity, count))| FlagCount {
            flag,
            severity,
            count,
        })
        .collect();
    flags.sort_by_key(|c| (Reverse(c.severity), c.flag));
    let max = flags.first().map(|c| c.severity);
    (flags, max)
}

/// Whether `time` falls in the business hours. The start is inclusive and the
/// end exclusive. When `end <= start` the hours run across midnight and belong
/// to the day they start on: with 22:00–06:00 on Mon–Fri, Saturday 02:00 is
/// inside (Friday's night) and Monday 02:00 is not (Sunday's night).
pub fn in_business_hours(time: DateTime<Utc>, hours: &BusinessHours) -> bool {
    let local = time.with_timezone(&hours.timezone);
    let (day, clock) = (local.weekday(), local.time());
    if hours.start < hours.end {
        hours.days.contains(&day) && clock >= hours.start && clock < hours.end
    } else {
        (clock >= hours.start && hours.days.contains(&day))
            || (clock < hours.end && hours.days.contains(&day.pred()))
    }
}

/// A tunnelling document: the configured name, or a longer name it is a prefix
/// of (`AWS-StartPortForwardingSession` covers `…ToRemoteHost`).
pub fn is_tunnel_document(document: &str, tunnel_documents: &[String]) -> bool {
    tunnel_documents
        .iter()
        .any(|t| !t.is_empty() && document.starts_with(t.as_str()))
}

/// An IP address outside every approved network. Anything that is not an IP
/// (`AWS Internal`, `ssm.amazonaws.com`, empty) is never unapproved.
pub fn is_unapproved_ip(source: &str, approved: &[ipnet::IpNet]) -> bool {
    if approved.is_empty() {
        return false;
    }
    let Some(ip) = parse_ip(source) else {
        return false;
    };
    // `::ffff:a.b.c.d` is the IPv4 address a.b.c.d.
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    !approved
        .iter()
        .any(|net| net.contains(&ip) || mapped.is_some_and(|v4| net.contains(&v4)))
}

fn parse_ip(source: &str) -> Option<IpAddr> {
    source.trim().parse().ok()
}

/// A finding and the time of its first event, for sorting.
struct Pending {
    first: Option<DateTime<Utc>>,
    finding: Finding,
}

type SortKey<'a> = (
    &'a str,
    &'a str,
    Flag,
    Option<DateTime<Utc>>,
    &'a str,
    Option<&'a str>,
    &'a [String],
);

fn sort_key(p: &Pending) -> SortKey<'_> {
    let f = &p.finding;
    (
        &f.account_id,
        &f.region,
        f.flag,
        p.first,
        &f.principal_arn,
        f.session_id.as_deref(),
        &f.event_ids,
    )
}

fn pending(
    flag: Flag,
    account_id: &str,
    region: &str,
    principal_arn: &str,
    session_id: Option<&str>,
    events: &[(&str, DateTime<Utc>)],
    detail: String,
) -> Pending {
    let ids: BTreeSet<&str> = events.iter().map(|(id, _)| *id).collect();
    Pending {
        first: events.iter().map(|(_, t)| *t).min(),
        finding: Finding {
            flag,
            severity: flag.default_severity(),
            account_id: account_id.to_string(),
            region: region.to_string(),
            principal_arn: principal_arn.to_string(),
            session_id: session_id.map(str::to_string),
            event_ids: ids.into_iter().map(str::to_string).collect(),
            detail,
        },
    }
}

// ---- per call ------------------------------------------------------------

fn per_call(
    events: &[&SessionEvent],
    rules: &RuleConfig,
    baseline: Option<&Baseline>,
    out: &mut Vec<Pending>,
) {
    // (flag, account, region, principal, source ip for unapproved-source-ip)
    type Key<'a> = (Flag, &'a str, &'a str, &'a str, &'a str);
    let mut groups: BTreeMap<Key, Vec<&SessionEvent>> = BTreeMap::new();
    for &e in events {
        let mut hit = |flag: Flag| {
            // Only unapproved-source-ip is split by address.
            let ip = match flag {
                Flag::UnapprovedSourceIp => e.source_ip.as_deref().unwrap_or_default(),
                _ => "",
            };
            groups
                .entry((flag, &e.account_id, &e.region, e.principal(), ip))
                .or_default()
                .push(e);
        };
        if e.principal_type == "Root" {
            hit(Flag::RootSession);
        }
        if e.principal_type == "IAMUser" {
            hit(Flag::IamUserSession);
        }
        if e.instance_role {
            hit(Flag::InstanceRoleCaller);
        }
        if let Some(p) = e.principal_account_id.as_deref() {
            if !p.is_empty()
                && !e.account_id.is_empty()
                && p != e.account_id
                && !rules.trusted_accounts.iter().any(|t| t == p)
            {
                hit(Flag::CrossAccountPrincipal);
            }
        }
        if let Some(ip) = e.source_ip.as_deref() {
            if is_unapproved_ip(ip, &rules.approved_cidrs) {
                hit(Flag::UnapprovedSourceIp);
            }
        }
        if !rules.allowed_regions.is_empty()
            && !e.region.is_empty()
            && !rules.allowed_regions.iter().any(|r| *r == e.region)
        {
            hit(Flag::UnusualRegion);
        }
        if let Some(b) = baseline {
            if !e.principal_arn.is_empty() && !b.contains(&e.principal_arn) {
                hit(Flag::NewPrincipal);
            }
        }
    }

    for ((flag, account, region, principal, ip), group) in groups {
        let first = group[0];
        let who = clean(principal);
        let calls = summarize_calls(&group);
        let detail = match flag {
            Flag::RootSession => format!("root user of account {account} made {calls}"),
            Flag::IamUserSession => format!(
                "IAM user {} (long-term keys) made {calls}",
                clean(first.user_name.as_deref().unwrap_or(principal))
            ),
            Flag::InstanceRoleCaller => {
                format!("EC2 instance role {who} (a machine, not a person) made {calls}")
            }
            Flag::CrossAccountPrincipal => format!(
                "{who} of account {} (not trusted) made {calls} in account {account}",
                clean(first.principal_account_id.as_deref().unwrap_or_default())
            ),
            Flag::UnapprovedSourceIp => format!(
                "{who} called from {}, outside approved_cidrs: {calls}",
                clean(ip)
            ),
            Flag::UnusualRegion => {
                format!("{who} made {calls} in {region}, outside allowed_regions")
            }
            Flag::NewPrincipal => format!("{who} is not in the baseline and made {calls}"),
            _ => calls,
        };
        let session = single_session(&group);
        let ids: Vec<(&str, DateTime<Utc>)> = group
            .iter()
            .map(|e| (e.event_id.as_str(), e.event_time))
            .collect();
        out.push(pending(
            flag,
            account,
            region,
            &first.principal_arn,
            session,
            &ids,
            detail,
        ));
    }
}

/// The session id when every event names the same one.
fn single_session<'a>(events: &[&'a SessionEvent]) -> Option<&'a str> {
    let ids: BTreeSet<Option<&str>> = events.iter().map(|e| e.session_id.as_deref()).collect();
    match ids.into_iter().collect::<Vec<_>>()[..] {
        [Some(id)] => Some(id),
        _ => None,
    }
}

/// "3 session calls (2 StartSession, 1 TerminateSession; 1 denied) from T1 to
/// T2 on i-1, i-2": how many, what, when, where.
fn summarize_calls(events: &[&SessionEvent]) -> String {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        *names.entry(e.event_name.as_str()).or_default() += 1;
    }
    let names: Vec<String> = names
        .iter()
        .map(|(name, n)| format!("{n} {}", clean(name)))
        .collect();
    let denied = events.iter().filter(|e| e.is_denied()).count();
    let denied = if denied > 0 {
        format!("; {denied} denied")
    } else {
        String::new()
    };
    let n = events.len();
    let plural = if n == 1 { "" } else { "s" };
    let when = time_span(events.iter().map(|e| e.event_time));
    let targets = list(events.iter().filter_map(|e| e.target.as_deref()));
    let on = if targets.is_empty() {
        String::new()
    } else {
        format!(" on {targets}")
    };
    format!(
        "{n} session call{plural} ({}{denied}) {when}{on}",
        names.join(", ")
    )
}

// ---- per session ---------------------------------------------------------

fn per_session(s: &Session, rules: &RuleConfig, out: &mut Vec<Pending>) {
    let who = clean(if s.principal_arn.is_empty() {
        &s.principal_type
    } else {
        &s.principal_arn
    });
    let sid = clean(&s.session_id);
    let target = clean(s.target.as_deref().unwrap_or("an unknown target"));
    let mut push = |flag: Flag, ids: &[(&str, DateTime<Utc>)], detail: String| {
        out.push(pending(
            flag,
            &s.account_id,
            &s.region,
            &s.principal_arn,
            Some(&s.session_id),
            ids,
            detail,
        ));
    };

    // off-hours: the Start and Resumes outside business hours.
    let hours = &rules.business_hours;
    let mut outside: Vec<(&str, DateTime<Utc>)> = Vec::new();
    if let (Some(t), Some(id)) = (s.start_time, s.start_event_id.as_deref()) {
        if !in_business_hours(t, hours) {
            outside.push((id, t));
        }
    }
    for r in &s.resumes {
        if !in_business_hours(r.time, hours) {
            outside.push((&r.event_id, r.time));
        }
    }
    if !outside.is_empty() {
        let local: Vec<String> = outside
            .iter()
            .map(|(_, t)| {
                t.with_timezone(&hours.timezone)
                    .format("%a %Y-%m-%d %H:%M")
                    .to_string()
            })
            .collect();
        let n = outside.len();
        let detail = format!(
            "{who} opened session {sid} on {target} outside business hours: {n} start/resume at {} ({})",
            list(local.iter().map(String::as_str)),
            hours.timezone.name()
        );
        push(Flag::OffHours, &outside, detail);
    }

    // port-forwarding: the document that opened the session tunnels ports.
    if let (Some(doc), Some(id), Some(t)) = (
        s.document_name.as_deref(),
        s.start_event_id.as_deref(),
        s.start_time,
    ) {
        if is_tunnel_document(doc, &rules.tunnel_documents) {
            let detail = format!(
                "{who} opened session {sid} on {target} with {} at {} (tunnels are not in session transcripts)",
                clean(doc),
                stamp(t)
            );
            push(Flag::PortForwarding, &[(id, t)], detail);
        }
    }

    // resume-from-new-ip: both addresses must be IPs (a service name says nothing).
    if let (Some(start_ip), Some(id), Some(t)) = (
        s.start_source_ip.as_deref().and_then(parse_ip),
        s.start_event_id.as_deref(),
        s.start_time,
    ) {
        let moved: Vec<_> = s
            .resumes
            .iter()
            .filter(|r| {
                r.source_ip
                    .as_deref()
                    .and_then(parse_ip)
                    .is_some_and(|ip| ip != start_ip)
            })
            .collect();
        if !moved.is_empty() {
            let mut ids = vec![(id, t)];
            ids.extend(moved.iter().map(|r| (r.event_id.as_str(), r.time)));
            let ips = list(moved.iter().filter_map(|r| r.source_ip.as_deref()));
            let detail = format!(
                "session {sid} of {who} on {target} started from {start_ip} at {} and was resumed from {ips} ({} resume{})",
                stamp(t),
                moved.len(),
                if moved.len() == 1 { "" } else { "s" }
            );
            push(Flag::ResumeFromNewIp, &ids, detail);
        }
    }

    // long-session: strictly longer than max_session; needs both ends.
    if let (Some(secs), Some(start), Some(end)) = (
        s.duration_seconds,
        s.start_event_id.as_deref().zip(s.start_time),
        s.end_event_id.as_deref().zip(s.end_time),
    ) {
        if secs > rules.max_session.num_seconds() {
            let detail = format!(
                "session {sid} of {who} on {target} lasted {} (max {}), {} to {}",
                human(TimeDelta::seconds(secs)),
                human(rules.max_session),
                stamp(start.1),
                stamp(end.1)
            );
            push(Flag::LongSession, &[start, end], detail);
        }
    }
}

// ---- bursts --------------------------------------------------------------

/// What a window must hold to qualify, kept up to date as calls enter and
/// leave it, so a busy principal costs O(n log n), not O(n²).
trait WindowTest {
    fn enter(&mut self, e: &SessionEvent);
    fn leave(&mut self, e: &SessionEvent);
    fn qualifies(&self) -> bool;
}

struct AtLeast {
    n: usize,
    threshold: usize,
}

impl WindowTest for AtLeast {
    fn enter(&mut self, _: &SessionEvent) {
        self.n += 1;
    }
    fn leave(&mut self, _: &SessionEvent) {
        self.n -= 1;
    }
    fn qualifies(&self) -> bool {
        self.n >= self.threshold
    }
}

struct MoreTargetsThan {
    targets: BTreeMap<String, usize>,
    limit: usize,
}

impl WindowTest for MoreTargetsThan {
    fn enter(&mut self, e: &SessionEvent) {
        *self
            .targets
            .entry(e.target.clone().unwrap_or_default())
            .or_default() += 1;
    }
    fn leave(&mut self, e: &SessionEvent) {
        let key = e.target.clone().unwrap_or_default();
        if let Some(n) = self.targets.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.targets.remove(&key);
            }
        }
    }
    fn qualifies(&self) -> bool {
        self.targets.len() > self.limit
    }
}

/// Splits time-sorted `calls` into bursts: the calls of every qualifying window
/// `[t, t + window]` (inclusive), with qualifying windows that overlap or lie
/// within `window` of each other merged into one burst.
fn find_bursts<'a>(
    calls: &[&'a SessionEvent],
    window: TimeDelta,
    mut test: impl WindowTest,
) -> Vec<Vec<&'a SessionEvent>> {
    let mut marked = vec![false; calls.len()];
    let mut end = 0; // calls[i..end] is the window starting at calls[i]
    let mut marked_to = 0;
    for i in 0..calls.len() {
        while end < calls.len() && calls[end].event_time - calls[i].event_time <= window {
            test.enter(calls[end]);
            end += 1;
        }
        if test.qualifies() {
            for m in &mut marked[marked_to.max(i)..end] {
                *m = true;
            }
            marked_to = end;
        }
        test.leave(calls[i]);
    }

    let mut bursts: Vec<Vec<&SessionEvent>> = Vec::new();
    for (call, _) in calls.iter().zip(&marked).filter(|(_, m)| **m) {
        match bursts.last_mut() {
            Some(b)
                if b.last()
                    .is_some_and(|l| call.event_time - l.event_time <= window) =>
            {
                b.push(call)
            }
            _ => bursts.push(vec![call]),
        }
    }
    bursts
}

fn bursts(events: &[&SessionEvent], rules: &RuleConfig, out: &mut Vec<Pending>) {
    // Per (account, principal), across the account's regions: a principal
    // spraying regions is one burst. `events` is time-sorted, so each group is.
    let mut denied: BTreeMap<(&str, &str), Vec<&SessionEvent>> = BTreeMap::new();
    let mut starts: BTreeMap<(&str, &str), Vec<&SessionEvent>> = BTreeMap::new();
    for &e in events {
        let key = (e.account_id.as_str(), e.principal());
        let opens = e.event_name == START_SESSION || e.event_name == RESUME_SESSION;
        if e.is_denied() && opens {
            denied.entry(key).or_default().push(e);
        } else if !e.is_denied() && e.event_name == START_SESSION && e.target.is_some() {
            starts.entry(key).or_default().push(e);
        }
    }

    for ((account, principal), calls) in denied {
        let test = AtLeast {
            n: 0,
            threshold: rules.denied_threshold.max(1),
        };
        for burst in find_bursts(&calls, rules.denied_window, test) {
            let codes = list(burst.iter().filter_map(|e| e.error_code.as_deref()));
            let detail = format!(
                "{} had {} denied StartSession/ResumeSession calls ({codes}) {} (threshold {} within {}){}",
                clean(principal),
                burst.len(),
                time_span(burst.iter().map(|e| e.event_time)),
                rules.denied_threshold,
                human(rules.denied_window),
                targets_suffix(&burst)
            );
            out.push(burst_finding(Flag::DeniedAttempts, account, &burst, detail));
        }
    }

    for ((account, principal), calls) in starts {
        let test = MoreTargetsThan {
            targets: BTreeMap::new(),
            limit: rules.fanout_targets,
        };
        for burst in find_bursts(&calls, rules.fanout_window, test) {
            let targets: BTreeSet<&str> =
                burst.iter().filter_map(|e| e.target.as_deref()).collect();
            let detail = format!(
                "{} started {} sessions on {} distinct targets {} (limit {} within {}): {}",
                clean(principal),
                burst.len(),
                targets.len(),
                time_span(burst.iter().map(|e| e.event_time)),
                rules.fanout_targets,
                human(rules.fanout_window),
                list(targets.iter().copied())
            );
            out.push(burst_finding(Flag::TargetFanout, account, &burst, detail));
        }
    }
}

fn targets_suffix(burst: &[&SessionEvent]) -> String {
    let targets = list(burst.iter().filter_map(|e| e.target.as_deref()));
    if targets.is_empty() {
        String::new()
    } else {
        format!(" on {targets}")
    }
}

/// A burst may span regions of its account: the finding's region lists them,
/// sorted and comma-separated.
fn burst_finding(flag: Flag, account: &str, burst: &[&SessionEvent], detail: String) -> Pending {
    let regions: BTreeSet<&str> = burst.iter().map(|e| e.region.as_str()).collect();
    let region = regions.into_iter().collect::<Vec<_>>().join(",");
    let ids: Vec<(&str, DateTime<Utc>)> = burst
        .iter()
        .map(|e| (e.event_id.as_str(), e.event_time))
        .collect();
    pending(
        flag,
        account,
        &region,
        &burst[0].principal_arn,
        single_session(burst),
        &ids,
        detail,
    )
}

// ---- text ----------------------------------------------------------------

/// Record text for a detail line: control characters escaped and at most
/// 120 characters, so a hostile field cannot break the line or flood it.
fn clean(s: &str) -> String {
    crate::event::escape_capped(s, 120)
}

/// Distinct values, sorted, at most five named.
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let distinct: BTreeSet<&str> = items.filter(|s| !s.is_empty()).collect();
    let mut shown: Vec<String> = distinct.iter().take(5).map(|s| clean(s)).collect();
    if distinct.len() > 5 {
        shown.push(format!("and {} more", distinct.len() - 5));
    }
    shown.join(", ")
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn time_span(times: impl Iterator<Item = DateTime<Utc>>) -> String {
    let times: Vec<DateTime<Utc>> = times.collect();
    match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("at {}", stamp(*a)),
        (Some(a), Some(b)) => format!("from {} to {}", stamp(*a), stamp(*b)),
        _ => String::new(),
    }
}

/// `9h30m`, `1h`, `45m`, `30s`, `2d3h`.
fn human(d: TimeDelta) -> String {
    let total = d.num_seconds();
    if total <= 0 {
        return format!("{total}s");
    }
    let parts = [
        (total / 86_400, "d"),
        (total % 86_400 / 3_600, "h"),
        (total % 3_600 / 60, "m"),
        (total % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}
