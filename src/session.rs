//! Session events → sessions: Start, Resume and Terminate joined on
//! (account, session id). Session Manager's own records (status, real end,
//! reason, access type, transcript) are joined in afterwards by `ssm::join`.
//!
//! Failed calls (denied or any other error) and events without a session id open
//! no session (AWS refused them, or they name none); they still reach the rules
//! as events. The output depends only on the set of events, never on their order.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use crate::model::{EndSource, Resume, Session, SessionEvent};

pub const START_SESSION: &str = "StartSession";
pub const RESUME_SESSION: &str = "ResumeSession";
pub const TERMINATE_SESSION: &str = "TerminateSession";

/// Joins the events into sessions, sorted by (account, region, start time or
/// first event time, session id).
pub fn build_sessions(events: &[SessionEvent]) -> Vec<Session> {
    // Hashed, not ordered: the sessions are sorted at the end, and an ordered
    // map compared the keys' strings, read from all over the heap, for every
    // one of 343,000 events.
    let mut groups: HashMap<(&str, &str), Vec<&SessionEvent>> = HashMap::new();
    for event in events {
        if event.is_failed() {
            continue;
        }
        if let Some(id) = event.session_id.as_deref().filter(|id| !id.is_empty()) {
            groups
                .entry((event.account_id.as_str(), id))
                .or_default()
                .push(event);
        }
    }

    let mut sessions: Vec<Session> = groups
        .into_iter()
        .map(|((_, id), mut group)| {
            group.sort_by(|a, b| cmp_events(a, b));
            // The same event id twice (a page returned twice) is one event; the
            // order is total, so which copy is kept does not depend on the input.
            let mut seen = BTreeSet::new();
            group.retain(|e| seen.insert(e.event_id.as_str()));
            join(id, &group)
        })
        .collect();
    sessions.sort_by(|a, b| {
        (&a.account_id, &a.region, first_time(a), &a.session_id).cmp(&(
            &b.account_id,
            &b.region,
            first_time(b),
            &b.session_id,
        ))
    });
    sessions
}

/// `group` is sorted by [`cmp_events`] and not empty.
fn join(session_id: &str, group: &[&SessionEvent]) -> Session {
    let start = group.iter().find(|e| e.event_name == START_SESSION);
    // A second TerminateSession changes nothing: the first one ended it.
    let end = group.iter().find(|e| e.event_name == TERMINATE_SESSION);
    let origin = start.or(group.first()).copied();
    let resumes = group
        .iter()
        .filter(|e| e.event_name == RESUME_SESSION)
        .map(|e| Resume {
            time: e.event_time,
            event_id: e.event_id.clone(),
            source_ip: e.source_ip.clone(),
        })
        .collect();
    // One address once, whichever way it is written (`::ffff:1.2.3.4` is 1.2.3.4).
    let source_ips: BTreeSet<String> = group
        .iter()
        .filter_map(|e| e.source_ip.as_deref())
        .filter(|ip| !ip.is_empty())
        .map(|ip| crate::event::ip_of(ip).map_or_else(|| ip.to_string(), |a| a.to_string()))
        .collect();
    let event_ids: BTreeSet<&str> = group.iter().map(|e| e.event_id.as_str()).collect();
    let start_time = start.map(|e| e.event_time);
    let end_time = end.map(|e| e.event_time);

    Session {
        session_id: session_id.to_string(),
        account_id: origin.map(|e| e.account_id.clone()).unwrap_or_default(),
        region: origin.map(|e| e.region.clone()).unwrap_or_default(),
        principal_arn: origin.map(|e| e.principal_arn.clone()).unwrap_or_default(),
        principal_type: origin.map(|e| e.principal_type.clone()).unwrap_or_default(),
        actor: origin.map(|e| e.actor().to_string()).unwrap_or_default(),
        target: origin.and_then(|e| e.target.clone()),
        document_name: origin.and_then(|e| e.document_name.clone()),
        start_time,
        start_event_id: start.map(|e| e.event_id.clone()),
        start_source_ip: start.and_then(|e| e.source_ip.clone()),
        resumes,
        end_time,
        end_event_id: end.map(|e| e.event_id.clone()),
        duration_seconds: match (start_time, end_time) {
            (Some(s), Some(e)) => Some((e - s).num_seconds()),
            _ => None,
        },
        source_ips: source_ips.into_iter().collect(),
        event_ids: event_ids.into_iter().map(str::to_string).collect(),
        reason: start.and_then(|e| e.reason.clone()),
        // Session Manager's history may give the end later (`ssm::join`).
        real_end_time: end_time,
        end_source: end.map(|_| EndSource::TerminateSession),
        ..Session::default()
    }
}

fn first_time(s: &Session) -> Option<chrono::DateTime<chrono::Utc>> {
    s.start_time
        .or_else(|| s.resumes.first().map(|r| r.time))
        .or(s.end_time)
}

/// Start before Resume before Terminate at the same instant.
fn call_rank(name: &str) -> u8 {
    match name {
        START_SESSION => 0,
        RESUME_SESSION => 1,
        TERMINATE_SESSION => 2,
        _ => 3,
    }
}

/// Sorts by [`cmp_events`], most comparisons decided by a key held beside
/// each reference (time, call): comparing the events themselves read their
/// strings from all over the heap, a large share of the rules' time on a
/// large report.
pub fn sort_events(events: &mut [&SessionEvent]) {
    let mut keyed: Vec<((i64, u32, u8), &SessionEvent)> = events
        .iter()
        .map(|e| {
            let t = e.event_time;
            (
                (
                    t.timestamp(),
                    t.timestamp_subsec_nanos(),
                    call_rank(&e.event_name),
                ),
                *e,
            )
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp_events(a.1, b.1)));
    for (slot, (_, e)) in events.iter_mut().zip(keyed) {
        *slot = e;
    }
}

/// A total order on events (time, call, id, then every other field), so that
/// sorting gives the same sequence whatever order the events came in.
pub fn cmp_events(a: &SessionEvent, b: &SessionEvent) -> Ordering {
    fn key(e: &SessionEvent) -> (chrono::DateTime<chrono::Utc>, u8, &str, &str) {
        (
            e.event_time,
            call_rank(&e.event_name),
            &e.event_id,
            &e.event_name,
        )
    }
    type Identity<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<bool>,
        bool,
    );
    fn identity(e: &SessionEvent) -> Identity<'_> {
        (
            &e.account_id,
            &e.region,
            e.session_id.as_deref(),
            &e.principal_type,
            &e.principal_arn,
            e.principal_account_id.as_deref(),
            e.user_name.as_deref(),
            e.session_issuer_arn.as_deref(),
            e.mfa_authenticated,
            e.instance_role,
        )
    }
    type Call<'a> = [Option<&'a str>; 10];
    fn call(e: &SessionEvent) -> Call<'_> {
        [
            e.source_ip.as_deref(),
            e.user_agent.as_deref(),
            e.target.as_deref(),
            e.document_name.as_deref(),
            e.error_code.as_deref(),
            e.error_message.as_deref(),
            Some(e.actor.as_str()),
            e.access_key_id.as_deref(),
            e.reason.as_deref(),
            e.parse_error.as_deref(),
        ]
    }
    key(a)
        .cmp(&key(b))
        .then_with(|| identity(a).cmp(&identity(b)))
        .then_with(|| call(a).cmp(&call(b)))
}

/// Hand-built events for the tests of this module and of the rules.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{DateTime, Utc};

    use crate::model::SessionEvent;

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    /// A successful call by an SSO role of account 111111111111 in us-east-1,
    /// from an office IP, with no document (the default shell).
    pub fn ev(id: &str, name: &str, time: &str) -> SessionEvent {
        SessionEvent {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            event_time: at(time),
            event_name: name.into(),
            event_id: id.into(),
            session_id: None,
            principal_type: "AssumedRole".into(),
            principal_arn: "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/alice"
                .into(),
            actor: "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/alice".into(),
            principal_account_id: Some("111111111111".into()),
            user_name: Some("alice".into()),
            session_issuer_arn: Some(
                "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123".into(),
            ),
            access_key_id: Some("ASIAEXAMPLEALICE0001".into()),
            mfa_authenticated: Some(false),
            instance_role: false,
            source_ip: Some("203.0.113.10".into()),
            user_agent: Some("aws-cli/2.15.0".into()),
            target: None,
            document_name: None,
            reason: None,
            error_code: None,
            error_message: None,
            parse_error: None,
        }
    }

    /// Builder-style tweaks, so each test states only what matters to it.
    pub trait With: Sized {
        fn session(self, id: &str) -> Self;
        fn target(self, t: &str) -> Self;
        fn doc(self, d: &str) -> Self;
        fn reason(self, r: &str) -> Self;
        fn ip(self, ip: Option<&str>) -> Self;
        fn denied(self) -> Self;
        /// Failed with `code`, which may or may not be a denial.
        fn failed(self, code: &str) -> Self;
        /// Assumed from `role` (its issuer ARN) under the session name `session`.
        fn role_session(self, role: &str, session: &str) -> Self;
        fn key(self, access_key_id: Option<&str>) -> Self;
        fn account(self, a: &str) -> Self;
        fn region(self, r: &str) -> Self;
        fn principal(self, kind: &str, arn: &str, account: Option<&str>) -> Self;
    }

    impl With for SessionEvent {
        fn session(mut self, id: &str) -> Self {
            self.session_id = Some(id.into());
            self
        }
        fn target(mut self, t: &str) -> Self {
            self.target = Some(t.into());
            self
        }
        fn doc(mut self, d: &str) -> Self {
            self.document_name = Some(d.into());
            self
        }
        fn reason(mut self, r: &str) -> Self {
            self.reason = Some(r.into());
            self
        }
        fn ip(mut self, ip: Option<&str>) -> Self {
            self.source_ip = ip.map(Into::into);
            self
        }
        fn denied(self) -> Self {
            self.failed("AccessDeniedException")
        }
        fn failed(mut self, code: &str) -> Self {
            self.error_code = Some(code.into());
            self.error_message = Some("not authorized".into());
            self.session_id = None;
            self
        }
        fn role_session(mut self, role: &str, session: &str) -> Self {
            let (head, name) = role.split_once(":role/").expect("a role ARN");
            let account = head.rsplit(':').next().unwrap_or_default();
            let name = name.rsplit('/').next().unwrap_or_default();
            self.principal_type = "AssumedRole".into();
            self.principal_arn = format!("arn:aws:sts::{account}:assumed-role/{name}/{session}");
            self.principal_account_id = Some(account.into());
            self.user_name = Some(session.into());
            self.session_issuer_arn = Some(role.into());
            self.actor = role.into();
            self
        }
        fn key(mut self, access_key_id: Option<&str>) -> Self {
            self.access_key_id = access_key_id.map(Into::into);
            self
        }
        /// Moves the call, and its same-account principal, to account `a`.
        fn account(mut self, a: &str) -> Self {
            self.account_id = a.into();
            self.principal_account_id = Some(a.into());
            self
        }
        fn region(mut self, r: &str) -> Self {
            self.region = r.into();
            self
        }
        fn principal(mut self, kind: &str, arn: &str, account: Option<&str>) -> Self {
            self.principal_type = kind.into();
            self.principal_arn = arn.into();
            self.principal_account_id = account.map(Into::into);
            self.user_name = arn.rsplit_once('/').map(|(_, n)| n.to_string());
            self.session_issuer_arn = None;
            self.actor = crate::event::actor_of(kind, arn, None, None);
            // Long-term keys for an IAM user, temporary ones otherwise.
            self.access_key_id = Some(
                if kind == "IAMUser" {
                    "AKIAEXAMPLE00000001"
                } else {
                    "ASIAEXAMPLE00000001"
                }
                .into(),
            );
            self
        }
    }

    pub fn start(id: &str, time: &str, session: &str, target: &str) -> SessionEvent {
        ev(id, "StartSession", time).session(session).target(target)
    }
    pub fn resume(id: &str, time: &str, session: &str) -> SessionEvent {
        ev(id, "ResumeSession", time).session(session)
    }
    pub fn terminate(id: &str, time: &str, session: &str) -> SessionEvent {
        ev(id, "TerminateSession", time).session(session)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn joins_start_resume_terminate() {
        let events = vec![
            terminate("e3", "2025-03-03T11:00:00Z", "alice-1").ip(Some("198.51.100.7")),
            start("e1", "2025-03-03T09:00:00Z", "alice-1", "i-0aaa1111").doc("AWS-StartSSHSession"),
            resume("e2", "2025-03-03T10:00:00Z", "alice-1").ip(Some("198.51.100.7")),
        ];
        let sessions = build_sessions(&events);
        assert_eq!(sessions.len(), 1);
        let s = &sessions[0];
        assert_eq!(s.session_id, "alice-1");
        assert_eq!(s.account_id, "111111111111");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.target.as_deref(), Some("i-0aaa1111"));
        assert_eq!(s.document_name.as_deref(), Some("AWS-StartSSHSession"));
        assert_eq!(s.start_time, Some(at("2025-03-03T09:00:00Z")));
        assert_eq!(s.start_event_id.as_deref(), Some("e1"));
        assert_eq!(s.start_source_ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(
            s.resumes,
            vec![Resume {
                time: at("2025-03-03T10:00:00Z"),
                event_id: "e2".into(),
                source_ip: Some("198.51.100.7".into()),
            }]
        );
        assert_eq!(s.end_time, Some(at("2025-03-03T11:00:00Z")));
        assert_eq!(s.end_event_id.as_deref(), Some("e3"));
        assert_eq!(s.duration_seconds, Some(7200));
        assert_eq!(s.source_ips, vec!["198.51.100.7", "203.0.113.10"]);
        assert_eq!(s.event_ids, vec!["e1", "e2", "e3"]);
    }

    #[test]
    fn denied_and_id_less_events_open_no_session() {
        let events = vec![
            ev("d1", "StartSession", "2025-03-03T09:00:00Z")
                .target("i-1")
                .denied(),
            // A denied Resume still names the session in its request: not part of it.
            resume("d2", "2025-03-03T09:10:00Z", "alice-1").denied(),
            ev("x", "StartSession", "2025-03-03T09:00:00Z").target("i-1"),
            // Failed for another reason: no session either, even naming one.
            start("f", "2025-03-03T09:05:00Z", "alice-1", "i-1").failed("TargetNotConnected"),
            resume("g", "2025-03-03T09:06:00Z", "alice-1")
                .failed("ThrottlingException")
                .session("alice-1"),
            start("s", "2025-03-03T09:00:00Z", "alice-1", "i-1"),
        ];
        let sessions = build_sessions(&events);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].event_ids, vec!["s"]);
    }

    #[test]
    fn a_session_keeps_its_actor_and_lists_an_address_once() {
        let role = "arn:aws:iam::111111111111:role/ops";
        let events = vec![
            start("e1", "2025-03-03T09:00:00Z", "s-1", "i-1")
                .role_session(role, "s")
                .ip(Some("198.51.100.7")),
            resume("e2", "2025-03-03T09:10:00Z", "s-1").ip(Some("::ffff:198.51.100.7")),
            resume("e3", "2025-03-03T09:20:00Z", "s-1").ip(Some("AWS Internal")),
        ];
        let s = &build_sessions(&events)[0];
        assert_eq!(s.actor, role);
        assert_eq!(s.source_ips, vec!["198.51.100.7", "AWS Internal"]);
    }

    #[test]
    fn without_a_start_the_first_event_names_the_session() {
        let events = vec![
            terminate("t", "2025-03-03T12:00:00Z", "bob-9").region("eu-west-1"),
            resume("r", "2025-03-03T10:00:00Z", "bob-9").region("eu-west-1"),
        ];
        let s = &build_sessions(&events)[0];
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.start_time, None);
        assert_eq!(s.start_source_ip, None);
        assert_eq!(s.target, None);
        assert_eq!(s.end_time, Some(at("2025-03-03T12:00:00Z")));
        assert_eq!(s.duration_seconds, None, "no start: no duration");
        assert_eq!(s.resumes.len(), 1);
    }

    #[test]
    fn same_session_id_in_two_accounts_is_two_sessions() {
        let events = vec![
            start("a", "2025-03-03T09:00:00Z", "x-1", "i-1").account("222222222222"),
            start("b", "2025-03-03T09:00:00Z", "x-1", "i-1"),
        ];
        let sessions = build_sessions(&events);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].account_id, "111111111111");
        assert_eq!(sessions[1].account_id, "222222222222");
    }

    #[test]
    fn sorted_by_account_region_time_id() {
        let events = vec![
            start("1", "2025-03-03T09:00:00Z", "b", "i-1"),
            start("2", "2025-03-03T08:00:00Z", "c", "i-1"),
            start("3", "2025-03-03T09:00:00Z", "a", "i-1"),
            start("4", "2025-03-03T07:00:00Z", "d", "i-1").region("us-west-2"),
            start("5", "2025-03-03T07:00:00Z", "e", "i-1").account("000000000000"),
        ];
        let order: Vec<_> = build_sessions(&events)
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        assert_eq!(order, vec!["e", "c", "a", "b", "d"]);
    }

    #[test]
    fn a_duplicated_event_counts_once() {
        let s = start("e1", "2025-03-03T09:00:00Z", "a", "i-1");
        let sessions = build_sessions(&[s.clone(), s]);
        assert_eq!(sessions[0].event_ids, vec!["e1"]);
    }

    #[test]
    fn missing_source_ip_is_not_listed() {
        let events = vec![
            start("e1", "2025-03-03T09:00:00Z", "a", "i-1").ip(None),
            resume("e2", "2025-03-03T09:30:00Z", "a").ip(Some("")),
        ];
        let s = &build_sessions(&events)[0];
        assert!(s.source_ips.is_empty());
        assert_eq!(s.start_source_ip, None);
    }

    fn arb_events() -> impl Strategy<Value = Vec<SessionEvent>> {
        let one = (
            0u8..3,
            0i64..6,
            0u8..4,
            0u8..3,
            0u8..2,
            0u8..3,
            any::<bool>(),
        )
            .prop_map(|(name, minute, session, ip, account, id, denied)| {
                let name = ["StartSession", "ResumeSession", "TerminateSession"][name as usize];
                let time = format!("2025-03-03T09:0{minute}:00Z");
                let mut e = ev(&format!("e{id}{name}{minute}"), name, &time)
                    .ip([None, Some("10.0.0.1"), Some("10.0.0.2")][ip as usize])
                    .account(["111111111111", "222222222222"][account as usize]);
                if session > 0 {
                    e = e.session(&format!("s{session}"));
                }
                if denied {
                    e = e.denied();
                }
                e
            });
        prop::collection::vec(one, 0..24)
    }

    proptest! {
        #[test]
        fn independent_of_input_order(events in arb_events(), seed in any::<u64>()) {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let mut shuffled = events.clone();
            shuffled.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
            prop_assert_eq!(build_sessions(&events), build_sessions(&shuffled));
            let mut reversed = events.clone();
            reversed.reverse();
            prop_assert_eq!(build_sessions(&events), build_sessions(&reversed));
        }

        /// The keyed sort is `cmp_events`' order, whatever the input order.
        #[test]
        fn keyed_sort_is_cmp_events(events in arb_events(), seed in any::<u64>()) {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let mut refs: Vec<&SessionEvent> = events.iter().collect();
            refs.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
            let mut expected = refs.clone();
            expected.sort_by(|a, b| cmp_events(a, b));
            sort_events(&mut refs);
            prop_assert_eq!(refs, expected);
        }
    }
}
