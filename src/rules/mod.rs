//! The flags of PRODUCT.md, as pure functions of events, sessions and the rule
//! config: no I/O, no clock, no SDK types. The same input gives the same
//! findings in the same order, whatever order the events came in.
//!
//! A rule about a call applies to the call, whether or not it joined a session.
//! How many findings a rule gives (so a reviewer is not flooded):
//! - per call, grouped by (account, region, principal): `root-session`,
//!   `iam-user-session`, `instance-role-caller`, `cross-account-principal`,
//!   `unusual-region`, `new-principal`; `unapproved-source-ip` also by source IP.
//!   These look at every call, denied ones included: a denied StartSession by
//!   root is still worth knowing. So do `off-hours` (successful Start/Resume)
//!   and `port-forwarding` (StartSession with a tunnelling document, denied or
//!   failed ones included) for the calls that joined no session.
//! - per session (successful calls only): `off-hours`, `port-forwarding`,
//!   `resume-from-new-ip`, `long-session`; and from Session Manager's own
//!   records joined into the session: `session-logging-off`, `active-session`,
//!   `no-reason`.
//! - per burst of one actor in one account (across its regions):
//!   `denied-attempts` (access denials only: `TargetNotConnected` and other
//!   failures are not), `target-fanout` (StartSessions that succeeded or were
//!   denied: an attempt on a target counts). A window is inclusive: calls
//!   exactly `window` apart are in the same window. Overlapping or touching
//!   qualifying windows (closer than `window`) are one burst.
//!
//! Bursts and the baseline key on the **actor** ([`crate::event::actor_of`]): a
//! role's session names are picked by whoever assumes it, so rotating them
//! neither splits a burst nor makes a known role new. Every finding names the
//! actor and the exact principal ARN of its first call.
//!
//! IP addresses are compared as addresses: IPv4-mapped IPv6 (`::ffff:1.2.3.4`)
//! is its IPv4 address ([`crate::event::ip_of`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::Value;

mod baseline;
mod bursts;
mod calls;
mod config;
mod posture;
mod sessions;
#[cfg(test)]
mod tests;
mod text;

pub use self::baseline::{Baseline, BaselineError};
use self::bursts::*;
use self::calls::*;
pub use self::config::{BusinessHours, RuleConfig};
use self::posture::*;
use self::sessions::*;
use self::text::*;
use crate::event::ip_of;
use crate::model::{Finding, Flag, FlagCount, Session, SessionEvent, Severity};
use crate::session::{RESUME_SESSION, START_SESSION};

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
    crate::session::sort_events(&mut events);
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    events.retain(|e| seen.insert(e.event_id.as_str()));

    let mut found = Vec::new();
    per_call(&events, rules, baseline, &mut found);
    for session in sessions {
        per_session(session, rules, &mut found);
        per_session_posture(session, rules, &mut found);
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
pub type AccountFlags = (Vec<FlagCount>, Option<Severity>);

/// Every account's [`AccountFlags`], in one pass over the findings; an account
/// without findings is absent (its flags are empty, its severity none).
pub fn summarize(findings: &[Finding]) -> BTreeMap<&str, AccountFlags> {
    let mut counts: BTreeMap<&str, BTreeMap<Flag, (Severity, u64)>> = BTreeMap::new();
    for f in findings {
        let entry = counts
            .entry(f.account_id.as_str())
            .or_default()
            .entry(f.flag)
            .or_insert((f.severity, 0));
        entry.0 = entry.0.max(f.severity);
        entry.1 += 1;
    }
    counts
        .into_iter()
        .map(|(account, counts)| {
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
            (account, (flags, max))
        })
        .collect()
}

/// Whether `time` falls in the business hours. The start is inclusive and the
/// end exclusive. When `end <= start` the hours run across midnight and belong
/// to the day they start on: with 22:00–06:00 on Mon–Fri, Saturday 02:00 is
/// inside (Friday's night) and Monday 02:00 is not (Sunday's night); with
/// `start == end` each listed day has 24 hours from `start` (00:00–00:00 is the
/// whole day).
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
    let Some(ip) = ip_of(source) else {
        return false;
    };
    // `::ffff:a.b.c.d` is a.b.c.d (ip_of), but a network written in the mapped
    // form still holds it.
    let mapped = match ip {
        std::net::IpAddr::V4(v4) => Some(std::net::IpAddr::V6(v4.to_ipv6_mapped())),
        std::net::IpAddr::V6(_) => None,
    };
    !approved
        .iter()
        .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
}

/// An IP in the form it is compared and grouped by: IPv4-mapped IPv6 as its
/// IPv4 address, IPv6 in its canonical text; anything else as written.
pub(super) fn ip_key(source: &str) -> String {
    ip_of(source).map_or_else(|| source.to_string(), |ip| ip.to_string())
}

/// A finding and the time of its first event, for sorting.
pub(super) struct Pending {
    first: Option<DateTime<Utc>>,
    finding: Finding,
}

pub(super) type SortKey<'a> = (
    &'a str,
    &'a str,
    Flag,
    Option<DateTime<Utc>>,
    &'a str,
    Option<&'a str>,
    &'a [String],
);

pub(super) fn sort_key(p: &Pending) -> SortKey<'_> {
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

/// Where a finding is and who it is about.
pub(super) struct About<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    pub actor: &'a str,
    pub principal_arn: &'a str,
}

pub(super) fn pending(
    flag: Flag,
    about: About<'_>,
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
            account_id: about.account_id.to_string(),
            region: about.region.to_string(),
            actor: about.actor.to_string(),
            principal_arn: about.principal_arn.to_string(),
            session_id: session_id.map(str::to_string),
            event_ids: ids.into_iter().map(str::to_string).collect(),
            detail,
        },
    }
}
