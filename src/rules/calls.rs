//! Rules about each call, grouped by (account, region, principal).

use super::*;

pub(super) fn per_call(
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
            && !rules.allowed_regions.contains(&e.region)
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
pub(super) fn single_session<'a>(events: &[&'a SessionEvent]) -> Option<&'a str> {
    let ids: BTreeSet<Option<&str>> = events.iter().map(|e| e.session_id.as_deref()).collect();
    match ids.into_iter().collect::<Vec<_>>()[..] {
        [Some(id)] => Some(id),
        _ => None,
    }
}

/// "3 session calls (2 StartSession, 1 TerminateSession; 1 denied) from T1 to
/// T2 on i-1, i-2": how many, what, when, where.
pub(super) fn summarize_calls(events: &[&SessionEvent]) -> String {
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
