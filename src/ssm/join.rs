//! Session Manager's records joined to the CloudTrail sessions, by (account,
//! region, session id): status, the real end where no TerminateSession exists,
//! reason, access type, owner, whether the session is still connected, and
//! whether its transcript can exist. Sessions one side knows and the other
//! does not are listed per region as discrepancies — only inside the time both
//! cover, and only where both were read in full. Pure: no clock, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::document::{transcript, PREFERENCES_DOCUMENT};
use super::read::HISTORY_DAYS;
use crate::model::{
    AccountCoverage, Discrepancy, EndSource, KnownBy, Logging, ReadStatus, RegionStatus, Session,
    SessionManagerPosture, SessionManagerRun, SessionRecord, SessionState, TimeWindow,
};
use crate::session::START_SESSION;

/// CloudTrail's event history has most events within about 5 minutes, not all:
/// the last minutes before the records were read are not compared.
pub const DELIVERY_MARGIN: TimeDelta = TimeDelta::minutes(15);
/// Sessions near the edge of the 30 days may have left the history between
/// the listing and now: the first hour is not compared.
pub const RETENTION_MARGIN: TimeDelta = TimeDelta::hours(1);

/// What the join needs to know about the scan.
pub struct JoinSettings<'a> {
    pub window: TimeWindow,
    /// The event names CloudTrail was read for: without StartSession nothing is compared.
    pub event_names: &'a [String],
    pub tunnel_documents: &'a [String],
}

/// Joins every partition's records into `sessions` and lists the discrepancies
/// into each partition's posture.
pub fn join(
    sessions: &mut [Session],
    coverage: &mut [(String, &mut AccountCoverage)],
    settings: &JoinSettings<'_>,
) {
    // (account, region) → indexes of its sessions.
    let mut by_partition: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, s) in sessions.iter().enumerate() {
        by_partition
            .entry((s.account_id.as_str(), s.region.as_str()))
            .or_default()
            .push(i);
    }
    let by_partition: BTreeMap<(String, String), Vec<usize>> = by_partition
        .into_iter()
        .map(|((a, r), v)| ((a.to_string(), r.to_string()), v))
        .collect();
    let read_starts = settings.event_names.iter().any(|n| n == START_SESSION);
    for (account, cov) in coverage.iter_mut() {
        for (region, rc) in cov.regions.iter_mut() {
            let Some(posture) = rc.session_manager.as_mut() else {
                continue;
            };
            let idx = by_partition
                .get(&(account.clone(), region.clone()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let cloudtrail_complete = rc.status == RegionStatus::Ok && read_starts;
            join_partition(sessions, idx, posture, cloudtrail_complete, settings);
        }
    }
}

/// The time both records cover, or `None` when there is none.
pub fn compared_window(window: &TimeWindow, read_at: DateTime<Utc>) -> Option<TimeWindow> {
    let start = window
        .start
        .max(read_at - TimeDelta::days(HISTORY_DAYS) + RETENTION_MARGIN);
    let end = window.end.min(read_at - DELIVERY_MARGIN);
    (start < end).then_some(TimeWindow { start, end })
}

fn in_window(t: Option<DateTime<Utc>>, w: &TimeWindow) -> bool {
    t.is_some_and(|t| t >= w.start && t < w.end)
}

fn join_partition(
    sessions: &mut [Session],
    idx: &[usize],
    posture: &mut SessionManagerPosture,
    cloudtrail_complete: bool,
    settings: &JoinSettings<'_>,
) {
    // One record per session id: the History one wins over the Active one (a
    // session that ended between the two listings).
    let mut records: BTreeMap<&str, &SessionRecord> = BTreeMap::new();
    for r in &posture.records {
        match records.get(r.session_id.as_str()) {
            Some(old) if old.state == SessionState::History => {}
            _ => {
                records.insert(r.session_id.as_str(), r);
            }
        }
    }
    let history_read = posture.history.status == ReadStatus::Read;
    let mut started: BTreeSet<&str> = BTreeSet::new();
    for &i in idx {
        let s = &mut sessions[i];
        if let Some(r) = records.get(s.session_id.as_str()) {
            apply(s, r, posture.read_at);
        }
        // A session with a StartSession in CloudTrail: which settings applied.
        if s.start_event_id.is_some() {
            let doc = s.document_name.as_deref();
            let tunnel =
                doc.is_some_and(|d| crate::rules::is_tunnel_document(d, settings.tunnel_documents));
            s.transcript = Some(transcript(
                doc,
                tunnel,
                &posture.preferences,
                &posture.documents,
            ));
        }
    }
    for &i in idx {
        let s = &sessions[i];
        if s.start_event_id.is_some() {
            started.insert(s.session_id.as_str());
        }
    }

    posture.compared = None;
    posture.discrepancies.clear();
    if !(history_read && cloudtrail_complete) {
        return;
    }
    let Some(w) = compared_window(&settings.window, posture.read_at) else {
        return;
    };
    let mut found = Vec::new();
    for r in records.values() {
        if in_window(r.start_time, &w) && !started.contains(r.session_id.as_str()) {
            found.push(Discrepancy {
                session_id: r.session_id.clone(),
                known_by: KnownBy::SessionManager,
                start_time: r.start_time,
                principal: r.owner.clone(),
                target: r.target.clone(),
                status: r.status.clone(),
            });
        }
    }
    for &i in idx {
        let s = &sessions[i];
        if s.start_event_id.is_some()
            && in_window(s.start_time, &w)
            && !records.contains_key(s.session_id.as_str())
        {
            found.push(Discrepancy {
                session_id: s.session_id.clone(),
                known_by: KnownBy::CloudTrail,
                start_time: s.start_time,
                principal: Some(s.principal_arn.clone()).filter(|p| !p.is_empty()),
                target: s.target.clone(),
                status: None,
            });
        }
    }
    found.sort_by(|a, b| {
        (a.start_time, &a.session_id, a.known_by).cmp(&(b.start_time, &b.session_id, b.known_by))
    });
    posture.compared = Some(w);
    posture.discrepancies = found;
}

/// What one record adds to its session.
fn apply(s: &mut Session, r: &SessionRecord, read_at: DateTime<Utc>) {
    s.status = r.status.clone();
    s.active = r.state == SessionState::Active;
    s.observed_at = s.active.then_some(read_at);
    s.access_type = r.access_type.clone();
    s.owner = r.owner.clone();
    if s.reason.is_none() {
        s.reason = r.reason.clone();
    }
    if s.target.is_none() {
        s.target = r.target.clone();
    }
    // The default shell is `SSM-SessionManagerRunShell` in the history and no
    // document at all in CloudTrail.
    if s.document_name.is_none() {
        s.document_name = r
            .document_name
            .clone()
            .filter(|d| d != PREFERENCES_DOCUMENT);
    }
    if s.end_event_id.is_none() && r.state == SessionState::History {
        if let Some(end) = r.end_time {
            s.real_end_time = Some(end);
            s.end_source = Some(EndSource::SessionManager);
        }
    }
    if let (Some(start), Some(end)) = (s.start_time, s.real_end_time) {
        s.duration_seconds = Some((end - start).num_seconds());
    }
}

/// The run's view of Session Manager's records, from every account's coverage.
/// `None` when no partition carries a posture (a source other than LookupEvents).
pub fn run_summary<'a>(
    accounts: impl Iterator<Item = (&'a str, &'a AccountCoverage)>,
) -> Option<SessionManagerRun> {
    let mut run = SessionManagerRun::default();
    let mut any = false;
    for (account, cov) in accounts {
        for (region, rc) in &cov.regions {
            let Some(p) = &rc.session_manager else {
                continue;
            };
            any = true;
            if p.readable {
                run.partitions_read += 1;
            } else {
                run.not_read
                    .push(format!("{account}/{region}: {}", p.summary));
            }
            if p.preferences.status.known() && p.preferences.logging == Logging::None {
                run.logging_off.push(format!("{account}/{region}"));
            }
            run.discrepancies += p.discrepancies.len() as u64;
            run.active_sessions += p.history.active;
        }
    }
    any.then_some(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DocumentPosture, HistoryRead, RegionCoverage, TranscriptStatus};
    use crate::session::build_sessions;
    use crate::session::test_support::*;
    use crate::ssm::document;

    const A: &str = "111111111111";
    const R: &str = "us-east-1";

    fn record(id: &str, state: SessionState, start: &str, end: Option<&str>) -> SessionRecord {
        SessionRecord {
            account_id: A.into(),
            region: R.into(),
            session_id: id.into(),
            state,
            status: Some(match state {
                SessionState::Active => "Connected".into(),
                SessionState::History => "Terminated".into(),
            }),
            target: Some("i-0aaa".into()),
            start_time: Some(at(start)),
            end_time: end.map(at),
            document_name: Some(PREFERENCES_DOCUMENT.into()),
            owner: Some(format!(
                "arn:aws:sts::{A}:assumed-role/AWSReservedSSO_Admin_0123/alice"
            )),
            reason: Some("ticket OPS-1".into()),
            access_type: Some("Standard".into()),
            max_session_duration: None,
        }
    }

    fn posture(
        read_at: &str,
        records: Vec<SessionRecord>,
        prefs: DocumentPosture,
    ) -> SessionManagerPosture {
        SessionManagerPosture {
            read_at: at(read_at),
            summary: String::new(),
            readable: true,
            preferences: prefs,
            documents: vec![],
            history: HistoryRead {
                status: ReadStatus::Read,
                error: None,
                since: at("2025-03-01T00:00:00Z"),
                active: records
                    .iter()
                    .filter(|r| r.state == SessionState::Active)
                    .count() as u64,
                history: 0,
                pages: 1,
            },
            compared: None,
            discrepancies: vec![],
            calls: 3,
            retries: 0,
            throttles: 0,
            records,
        }
    }

    fn settings() -> (TimeWindow, Vec<String>, Vec<String>) {
        (
            TimeWindow {
                start: at("2025-03-01T00:00:00Z"),
                end: at("2025-03-08T00:00:00Z"),
            },
            crate::model::DEFAULT_EVENT_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            vec!["AWS-StartSSHSession".into()],
        )
    }

    fn run_join(
        events: &[crate::model::SessionEvent],
        p: SessionManagerPosture,
    ) -> (Vec<Session>, SessionManagerPosture) {
        let mut sessions = build_sessions(events);
        let mut rc = RegionCoverage::new(RegionStatus::Ok);
        rc.session_manager = Some(p);
        let mut cov = AccountCoverage::from_regions([(R.to_string(), rc)].into_iter().collect());
        let (window, names, tunnels) = settings();
        join(
            &mut sessions,
            &mut [(A.to_string(), &mut cov)],
            &JoinSettings {
                window,
                event_names: &names,
                tunnel_documents: &tunnels,
            },
        );
        let p = cov.regions.remove(R).unwrap().session_manager.unwrap();
        (sessions, p)
    }

    #[test]
    fn history_gives_status_end_reason_access_and_owner() {
        let events = vec![
            start("s1", "2025-03-03T09:00:00Z", "alice-1", "i-0aaa"),
            start("s2", "2025-03-03T10:00:00Z", "alice-2", "i-0aaa").reason("deploy"),
            terminate("t2", "2025-03-03T10:30:00Z", "alice-2"),
            start("s3", "2025-03-07T20:00:00Z", "alice-3", "i-0aaa"),
        ];
        let mut jit = record(
            "alice-2",
            SessionState::History,
            "2025-03-03T10:00:01Z",
            Some("2025-03-03T10:30:05Z"),
        );
        jit.access_type = Some("JustInTime".into());
        let p = posture(
            "2025-03-08T12:00:00Z",
            vec![
                record(
                    "alice-1",
                    SessionState::History,
                    "2025-03-03T09:00:01Z",
                    Some("2025-03-03T18:00:00Z"),
                ),
                jit,
                record(
                    "alice-3",
                    SessionState::Active,
                    "2025-03-07T20:00:01Z",
                    None,
                ),
            ],
            document::parse(
                PREFERENCES_DOCUMENT,
                r#"{"sessionType":"Standard_Stream","inputs":{"cloudWatchLogGroupName":"/ssm"}}"#,
            ),
        );
        let (sessions, p) = run_join(&events, p);
        let s1 = &sessions[0];
        assert_eq!(s1.session_id, "alice-1");
        assert_eq!(s1.end_time, None, "no TerminateSession");
        assert_eq!(s1.real_end_time, Some(at("2025-03-03T18:00:00Z")));
        assert_eq!(s1.end_source, Some(EndSource::SessionManager));
        assert_eq!(s1.duration_seconds, Some(9 * 3600));
        assert_eq!(s1.status.as_deref(), Some("Terminated"));
        assert_eq!(
            s1.reason.as_deref(),
            Some("ticket OPS-1"),
            "history's reason"
        );
        assert!(!s1.active);
        let s2 = &sessions[1];
        assert_eq!(
            s2.reason.as_deref(),
            Some("deploy"),
            "CloudTrail's reason wins"
        );
        assert_eq!(
            s2.real_end_time,
            Some(at("2025-03-03T10:30:00Z")),
            "TerminateSession wins"
        );
        assert_eq!(s2.end_source, Some(EndSource::TerminateSession));
        assert_eq!(s2.access_type.as_deref(), Some("JustInTime"));
        let s3 = &sessions[2];
        assert!(s3.active);
        assert_eq!(s3.observed_at, Some(at("2025-03-08T12:00:00Z")));
        assert_eq!(s3.duration_seconds, None);
        assert!(s3.owner.as_deref().unwrap().ends_with("/alice"));
        for s in &sessions {
            let t = s.transcript.as_ref().unwrap();
            assert_eq!(t.status, TranscriptStatus::Recorded);
            assert_eq!(t.destinations, ["cloudwatch:/ssm"]);
        }
        assert!(p.discrepancies.is_empty(), "{:?}", p.discrepancies);
        assert_eq!(
            p.compared,
            Some(TimeWindow {
                start: at("2025-03-01T00:00:00Z"),
                end: at("2025-03-08T00:00:00Z"),
            })
        );
    }

    #[test]
    fn discrepancies_only_inside_what_both_cover_and_both_read() {
        let events = vec![
            // CloudTrail only.
            start("s1", "2025-03-03T09:00:00Z", "ct-only", "i-0aaa"),
            // Both.
            start("s2", "2025-03-03T10:00:00Z", "both", "i-0aaa"),
            // CloudTrail only, but in the last minutes before the read: not compared.
            start("s3", "2025-03-07T23:50:00Z", "too-recent", "i-0aaa"),
            // No StartSession in the window: not a session CloudTrail "knows started".
            terminate("t4", "2025-03-02T10:00:00Z", "old"),
        ];
        let records = vec![
            record(
                "both",
                SessionState::History,
                "2025-03-03T10:00:00Z",
                Some("2025-03-03T11:00:00Z"),
            ),
            record(
                "sm-only",
                SessionState::History,
                "2025-03-04T10:00:00Z",
                Some("2025-03-04T11:00:00Z"),
            ),
            record(
                "old",
                SessionState::History,
                "2025-03-02T09:00:00Z",
                Some("2025-03-02T10:00:00Z"),
            ),
        ];
        let p = posture(
            "2025-03-08T00:00:00Z",
            records.clone(),
            document::never_saved(),
        );
        let (sessions, p) = run_join(&events, p);
        let got: Vec<(&str, KnownBy)> = p
            .discrepancies
            .iter()
            .map(|d| (d.session_id.as_str(), d.known_by))
            .collect();
        // `old` is known to CloudTrail only by its Terminate: Session Manager's
        // record of its start is the only one, and it counts.
        assert_eq!(
            got,
            [
                ("old", KnownBy::SessionManager),
                ("ct-only", KnownBy::CloudTrail),
                ("sm-only", KnownBy::SessionManager),
            ]
        );
        let w = p.compared.unwrap();
        assert_eq!(w.end, at("2025-03-07T23:45:00Z"));
        // The region never saved preferences: no transcript can exist.
        let s = sessions.iter().find(|s| s.session_id == "both").unwrap();
        assert_eq!(
            s.transcript.as_ref().unwrap().status,
            TranscriptStatus::None
        );

        // History not read in full: nothing is compared, nothing is guessed.
        let mut p2 = posture("2025-03-08T00:00:00Z", records, document::never_saved());
        p2.history.status = ReadStatus::NotReadable;
        p2.records.clear();
        let (_, p2) = run_join(&events, p2);
        assert!(p2.discrepancies.is_empty());
        assert_eq!(p2.compared, None);
    }

    #[test]
    fn a_failed_cloudtrail_region_is_not_compared() {
        let mut sessions = build_sessions(&[start("s1", "2025-03-03T09:00:00Z", "x", "i-1")]);
        let mut rc = RegionCoverage::new(RegionStatus::Failed);
        rc.session_manager = Some(posture(
            "2025-03-08T00:00:00Z",
            vec![record(
                "y",
                SessionState::History,
                "2025-03-03T10:00:00Z",
                None,
            )],
            document::never_saved(),
        ));
        let mut cov = AccountCoverage::from_regions([(R.to_string(), rc)].into_iter().collect());
        let (window, names, tunnels) = settings();
        join(
            &mut sessions,
            &mut [(A.to_string(), &mut cov)],
            &JoinSettings {
                window,
                event_names: &names,
                tunnel_documents: &tunnels,
            },
        );
        let p = cov.regions[R].session_manager.as_ref().unwrap();
        assert!(p.discrepancies.is_empty());
        assert_eq!(p.compared, None);
    }

    #[test]
    fn the_compared_window_respects_retention_and_delivery() {
        let w = TimeWindow {
            start: at("2025-01-01T00:00:00Z"),
            end: at("2025-03-08T00:00:00Z"),
        };
        let c = compared_window(&w, at("2025-03-31T00:00:00Z")).unwrap();
        assert_eq!(c.start, at("2025-03-01T01:00:00Z"));
        assert_eq!(c.end, at("2025-03-08T00:00:00Z"));
        // A window that ended more than 30 days ago: nothing to compare.
        assert_eq!(compared_window(&w, at("2025-05-01T00:00:00Z")), None);
    }
}
