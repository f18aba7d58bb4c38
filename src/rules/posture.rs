//! Rules about what Session Manager's own records say of each session (joined
//! in by `ssm::join`): `session-logging-off`, `active-session`, `no-reason`.
//! A session they do not know, or whose posture could not be read, fires
//! nothing here: "unknown" is never "off".

use super::*;
use crate::model::TranscriptStatus;

pub(super) fn per_session_posture(s: &Session, rules: &RuleConfig, out: &mut Vec<Pending>) {
    let who = clean(if s.principal_arn.is_empty() {
        &s.principal_type
    } else {
        &s.principal_arn
    });
    let sid = clean(&s.session_id);
    let target = clean(s.target.as_deref().unwrap_or("an unknown target"));
    let start = s.start_event_id.as_deref().zip(s.start_time);
    let mut push = |flag: Flag, ids: &[(&str, DateTime<Utc>)], detail: String| {
        out.push(pending(
            flag,
            super::sessions::session_about(s),
            Some(&s.session_id),
            ids,
            detail,
        ));
    };

    // session-logging-off: a shell session ran where no transcript can exist.
    if let (Some(start), Some(t)) = (start, &s.transcript) {
        if t.status == TranscriptStatus::None {
            let detail = format!(
                "session {sid} of {who} on {target} at {} ran where no transcript can exist: {} ({})",
                stamp(start.1),
                clean(&t.why),
                clean(&t.document)
            );
            push(Flag::SessionLoggingOff, &[start], detail);
        }
    }

    // active-session: still connected when Session Manager was asked.
    if s.active {
        let ids: Vec<(&str, DateTime<Utc>)> = match start {
            Some(st) => vec![st],
            // Connected, but started before the window: its calls in the window prove it.
            None => s
                .event_ids
                .iter()
                .map(|id| (id.as_str(), first_time(s)))
                .collect(),
        };
        let since = s
            .start_time
            .map(|t| format!(" since {}", stamp(t)))
            .unwrap_or_default();
        let at = s
            .observed_at
            .map(|t| format!(" at {}", stamp(t)))
            .unwrap_or_default();
        let status = clean(s.status.as_deref().unwrap_or("active"));
        let detail = format!(
            "session {sid} of {who} on {target}{since} was still {status}{at} (Session Manager's active sessions)"
        );
        if !ids.is_empty() {
            push(Flag::ActiveSession, &ids, detail);
        }
    }

    // no-reason: the StartSession gave none (nor does Session Manager know one).
    if rules.require_reason && s.reason.is_none() {
        if let Some(start) = start {
            let detail = format!(
                "{who} started session {sid} on {target} at {} without a reason (require_reason is set)",
                stamp(start.1)
            );
            push(Flag::NoReason, &[start], detail);
        }
    }
}

fn first_time(s: &Session) -> DateTime<Utc> {
    s.start_time
        .or_else(|| s.resumes.first().map(|r| r.time))
        .or(s.end_time)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EndSource, Transcript};
    use crate::session::build_sessions;
    use crate::session::test_support::*;

    fn rules(require_reason: bool) -> RuleConfig {
        let mut r = crate::config::resolve(
            &crate::config::FlagValues::default(),
            None,
            at("2025-03-10T00:00:00Z"),
        )
        .unwrap()
        .rules;
        r.require_reason = require_reason;
        r
    }

    fn transcript(status: TranscriptStatus) -> Option<Transcript> {
        Some(Transcript {
            status,
            destinations: vec![],
            document: "SSM-SessionManagerRunShell".into(),
            why: "because".into(),
        })
    }

    fn flags_of(sessions: &[Session], r: &RuleConfig) -> Vec<(Flag, Vec<String>)> {
        evaluate(&[], sessions, r, None)
            .into_iter()
            .map(|f| (f.flag, f.event_ids))
            .collect()
    }

    /// Tuesday 2025-03-04, in business hours.
    fn one(id: &str, reason: Option<&str>) -> Vec<Session> {
        let mut e = start(&format!("{id}-s"), "2025-03-04T10:00:00Z", id, "i-0web");
        e.reason = reason.map(str::to_string);
        build_sessions(&[e])
    }

    #[test]
    fn logging_off_fires_only_when_no_transcript_can_exist() {
        let r = rules(false);
        for (status, fires) in [
            (TranscriptStatus::None, true),
            (TranscriptStatus::Recorded, false),
            (TranscriptStatus::Unknown, false),
            (TranscriptStatus::NotCaptured, false),
        ] {
            let mut s = one("a", None);
            s[0].transcript = transcript(status);
            let got = flags_of(&s, &r);
            assert_eq!(
                got.iter().any(|(f, _)| *f == Flag::SessionLoggingOff),
                fires,
                "{status:?}: {got:?}"
            );
        }
        // No posture read at all: nothing.
        assert!(flags_of(&one("a", None), &r).is_empty());
        let mut s = one("a", None);
        s[0].transcript = transcript(TranscriptStatus::None);
        let f = &evaluate(&[], &s, &r, None)[0];
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.event_ids, ["a-s"]);
        assert!(
            f.detail.contains("no transcript can exist: because"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn active_session_and_no_reason() {
        let mut s = one("a", Some("OPS-1"));
        s[0].active = true;
        s[0].status = Some("Connected".into());
        s[0].observed_at = Some(at("2025-03-04T10:30:00Z"));
        let f = evaluate(&[], &s, &rules(true), None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].flag, Flag::ActiveSession);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(
            f[0].detail
                .contains("was still Connected at 2025-03-04T10:30:00Z"),
            "{}",
            f[0].detail
        );

        assert!(
            flags_of(&one("b", None), &rules(false)).is_empty(),
            "off by default"
        );
        let got = flags_of(&one("b", None), &rules(true));
        assert_eq!(got, [(Flag::NoReason, vec!["b-s".to_string()])]);
        assert!(flags_of(&one("c", Some("x")), &rules(true)).is_empty());
    }

    #[test]
    fn long_session_by_history_end_or_still_connected() {
        let r = rules(false);
        let mut s = one("h", Some("x"));
        s[0].real_end_time = Some(at("2025-03-04T19:00:00Z"));
        s[0].end_source = Some(EndSource::SessionManager);
        let f = evaluate(&[], &s, &r, None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].flag, Flag::LongSession);
        assert_eq!(f[0].event_ids, ["h-s"]);
        assert!(
            f[0].detail
                .contains("lasted 9h (end from Session Manager's history)"),
            "{}",
            f[0].detail
        );

        let mut s = one("c", Some("x"));
        s[0].active = true;
        s[0].observed_at = Some(at("2025-03-04T18:00:01Z"));
        let got = flags_of(&s, &r);
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [Flag::LongSession, Flag::ActiveSession]
        );
        let f = evaluate(&[], &s, &r, None);
        assert!(
            f[0].detail.contains("8h1s so far and is still connected"),
            "{}",
            f[1].detail
        );
        // Connected for exactly 8 h: not longer than 8 h.
        s[0].observed_at = Some(at("2025-03-04T18:00:00Z"));
        assert_eq!(flags_of(&s, &r).len(), 1);
    }
}
