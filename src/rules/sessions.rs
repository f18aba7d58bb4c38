//! Rules about each session (successful calls only).

use super::*;

/// Who a session's findings are about: its actor, else its principal, else
/// the principal's type. Every per-session rule family uses this.
pub(super) fn session_about(s: &Session) -> About<'_> {
    let actor = match (s.actor.as_str(), s.principal_arn.as_str()) {
        ("", "") => s.principal_type.as_str(),
        ("", arn) => arn,
        (actor, _) => actor,
    };
    About {
        account_id: &s.account_id,
        region: &s.region,
        actor,
        principal_arn: &s.principal_arn,
    }
}

pub(super) fn per_session(s: &Session, rules: &RuleConfig, out: &mut Vec<Pending>) {
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
            session_about(s),
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

    // resume-from-new-ip: both addresses must be IPs (a service name says
    // nothing), compared as addresses (`::ffff:1.2.3.4` is 1.2.3.4).
    if let (Some(start_ip), Some(id), Some(t)) = (
        s.start_source_ip.as_deref().and_then(ip_of),
        s.start_event_id.as_deref(),
        s.start_time,
    ) {
        let moved: Vec<_> = s
            .resumes
            .iter()
            .filter(|r| {
                r.source_ip
                    .as_deref()
                    .and_then(ip_of)
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

    // long-session: strictly longer than max_session, from the start to the
    // real end (TerminateSession, else Session Manager's history) or, for a
    // session still connected, to when Session Manager was asked.
    if let Some(start) = s.start_event_id.as_deref().zip(s.start_time) {
        let terminate = s.end_event_id.as_deref().zip(s.end_time);
        let (end, how) = match (terminate, s.real_end_time, s.active, s.observed_at) {
            (Some((_, t)), _, _, _) => (Some(t), ""),
            (None, Some(t), _, _) => (Some(t), " (end from Session Manager's history)"),
            (None, None, true, Some(t)) => (Some(t), " so far and is still connected"),
            _ => (None, ""),
        };
        if let Some(end) = end {
            let secs = (end - start.1).num_seconds();
            if secs > rules.max_session.num_seconds() {
                let detail = format!(
                    "session {sid} of {who} on {target} lasted {}{how} (max {}), {} to {}",
                    human(TimeDelta::seconds(secs)),
                    human(rules.max_session),
                    stamp(start.1),
                    stamp(end)
                );
                let mut ids = vec![start];
                ids.extend(terminate);
                push(Flag::LongSession, &ids, detail);
            }
        }
    }
}
