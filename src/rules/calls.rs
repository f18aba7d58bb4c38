//! Rules about each call, grouped by (account, region, principal).

use super::*;

/// Long-term IAM user keys: an `AKIA…` access key id. A record without a key id
/// counts as long-term unless its session context shows temporary credentials
/// (`mfaAuthenticated` is only there for console sign-in and GetSessionToken):
/// a missing field must not silence the rule.
pub(super) fn uses_long_term_keys(e: &SessionEvent) -> bool {
    match e.access_key_id.as_deref() {
        Some(key) => key.starts_with("AKIA"),
        None => e.mfa_authenticated.is_none(),
    }
}

/// A successful Start or Resume that joined no session: the per-session rules
/// never see it, so the per-call ones do.
fn opened_without_a_session(e: &SessionEvent) -> bool {
    !e.is_failed()
        && (e.event_name == START_SESSION || e.event_name == RESUME_SESSION)
        && e.session_id.as_deref().is_none_or(str::is_empty)
}

/// A StartSession asking for a tunnel that no session stands for: it failed
/// (denied or otherwise) or joined no session.
fn tunnel_without_a_session(e: &SessionEvent, rules: &RuleConfig) -> bool {
    e.event_name == START_SESSION
        && e.document_name
            .as_deref()
            .is_some_and(|d| is_tunnel_document(d, &rules.tunnel_documents))
        && (e.is_failed() || e.session_id.as_deref().is_none_or(str::is_empty))
}

pub(super) fn per_call(
    events: &[&SessionEvent],
    rules: &RuleConfig,
    baseline: Option<&Baseline>,
    out: &mut Vec<Pending>,
) {
    // (flag, account, region, principal, source ip for unapproved-source-ip)
    type Key<'a> = (Flag, &'a str, &'a str, &'a str, String);
    let mut groups: BTreeMap<Key, Vec<&SessionEvent>> = BTreeMap::new();
    for &e in events {
        let mut hit = |flag: Flag| {
            // Only unapproved-source-ip is split by address, compared as one.
            let ip = match flag {
                Flag::UnapprovedSourceIp => ip_key(e.source_ip.as_deref().unwrap_or_default()),
                _ => String::new(),
            };
            groups
                .entry((flag, &e.account_id, &e.region, e.principal(), ip))
                .or_default()
                .push(e);
        };
        if e.principal_type == "Root" {
            hit(Flag::RootSession);
        }
        if e.principal_type == "IAMUser" && uses_long_term_keys(e) {
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
        if opened_without_a_session(e) && !in_business_hours(e.event_time, &rules.business_hours) {
            hit(Flag::OffHours);
        }
        if tunnel_without_a_session(e, rules) {
            hit(Flag::PortForwarding);
        }
        if !rules.allowed_regions.is_empty()
            && !e.region.is_empty()
            && !rules.allowed_regions.contains(&e.region)
        {
            hit(Flag::UnusualRegion);
        }
        if let Some(b) = baseline {
            // A call without a principal names nobody who could be new.
            if !e.principal_arn.is_empty() && !b.knows(e) {
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
            Flag::IamUserSession => {
                let keys = list(group.iter().filter_map(|e| e.access_key_id.as_deref()));
                let keys = if keys.is_empty() {
                    "long-term keys: no access key id recorded".to_string()
                } else {
                    format!("long-term keys {keys}")
                };
                format!(
                    "IAM user {} ({keys}) made {calls}",
                    clean(first.user_name.as_deref().unwrap_or(principal))
                )
            }
            Flag::InstanceRoleCaller => {
                format!("EC2 instance role {who} (a machine, not a person) made {calls}")
            }
            Flag::CrossAccountPrincipal => format!(
                "{who} of account {} (not trusted) made {calls} in account {account}",
                clean(first.principal_account_id.as_deref().unwrap_or_default())
            ),
            Flag::UnapprovedSourceIp => format!(
                "{who} called from {}, outside approved_cidrs: {calls}",
                clean(&ip)
            ),
            Flag::OffHours => {
                let hours = &rules.business_hours;
                let local: Vec<String> = group
                    .iter()
                    .map(|e| {
                        e.event_time
                            .with_timezone(&hours.timezone)
                            .format("%a %Y-%m-%d %H:%M")
                            .to_string()
                    })
                    .collect();
                format!(
                    "{who} made {calls} outside business hours, at {} ({}), joining no session",
                    list(local.iter().map(String::as_str)),
                    hours.timezone.name()
                )
            }
            Flag::PortForwarding => format!(
                "{who} asked for a tunnel with {} and no session stands for it: {calls} (tunnels are not in session transcripts)",
                list(group.iter().filter_map(|e| e.document_name.as_deref()))
            ),
            Flag::UnusualRegion => {
                format!("{who} made {calls} in {region}, outside allowed_regions")
            }
            Flag::NewPrincipal => {
                let actor = first.actor();
                let of = if actor == principal {
                    String::new()
                } else {
                    format!(" (actor {})", clean(actor))
                };
                format!("{who}{of} is not in the baseline and made {calls}")
            }
            _ => calls,
        };
        let session = single_session(&group);
        let ids: Vec<(&str, DateTime<Utc>)> = group
            .iter()
            .map(|e| (e.event_id.as_str(), e.event_time))
            .collect();
        out.push(pending(
            flag,
            About {
                account_id: account,
                region,
                actor: first.actor(),
                principal_arn: &first.principal_arn,
            },
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

/// "3 session calls (2 StartSession, 1 TerminateSession; 1 denied, 1 failed)
/// from T1 to T2 on i-1, i-2": how many, what, how they ended, when, where.
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
    let failed = events.iter().filter(|e| e.is_failed()).count() - denied;
    let outcome: Vec<String> = [(denied, "denied"), (failed, "failed")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    let outcome = if outcome.is_empty() {
        String::new()
    } else {
        format!("; {}", outcome.join(", "))
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
        "{n} session call{plural} ({}{outcome}) {when}{on}",
        names.join(", ")
    )
}
