//! The CSV files: one row per event, session, account and finding. Every cell
//! passes [`neutralize_csv_cell`]; the csv crate does the quoting.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use super::{neutralize_csv_cell, time, ReportWriter};
use crate::model::{
    EndSource, Flag, RegionStatus, Report, SessionManagerPosture, TranscriptStatus,
};

type Out<'a> = ::csv::Writer<&'a mut dyn io::Write>;

fn writer(out: &mut dyn io::Write) -> Out<'_> {
    ::csv::WriterBuilder::new().from_writer(out)
}

fn row(w: &mut Out<'_>, cells: &[String]) -> io::Result<()> {
    let cells: Vec<_> = cells.iter().map(|c| neutralize_csv_cell(c)).collect();
    w.write_record(cells.iter().map(|c| c.as_bytes()))?;
    Ok(())
}

fn header(w: &mut Out<'_>, names: &[&str]) -> io::Result<()> {
    w.write_record(names)?;
    Ok(())
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn join<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    v.join(";")
}

fn flag_names(flags: Option<&BTreeSet<Flag>>) -> String {
    flags
        .map(|f| join(f.iter().map(|f| f.as_str())))
        .unwrap_or_default()
}

/// Account id → name, from the report's accounts.
fn account_names(report: &Report) -> HashMap<&str, &str> {
    report
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.account_name.as_str()))
        .collect()
}

/// Event id → the flags of every finding that lists it. Event ids are
/// CloudTrail's globally unique ids, so the id alone is the key.
fn event_flags(report: &Report) -> HashMap<&str, BTreeSet<Flag>> {
    let mut map: HashMap<&str, BTreeSet<Flag>> = HashMap::new();
    for f in &report.findings {
        for id in &f.event_ids {
            map.entry(id.as_str()).or_default().insert(f.flag);
        }
    }
    map
}

pub struct EventsCsv;

impl ReportWriter for EventsCsv {
    fn file_name(&self) -> &'static str {
        "events.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        let names = account_names(report);
        let flags = event_flags(report);
        let mut w = writer(out);
        header(
            &mut w,
            &[
                "account_id",
                "account_name",
                "region",
                "event_time",
                "event_name",
                "event_id",
                "session_id",
                "principal_type",
                "principal_arn",
                "principal_account_id",
                "user_name",
                "source_ip",
                "user_agent",
                "target",
                "document_name",
                "error_code",
                "error_message",
                "flags",
                // Added after the first v1 files: last, so column positions hold.
                "actor",
                "access_key_id",
            ],
        )?;
        for e in &report.events {
            row(
                &mut w,
                &[
                    e.account_id.clone(),
                    names.get(e.account_id.as_str()).unwrap_or(&"").to_string(),
                    e.region.clone(),
                    time(e.event_time),
                    e.event_name.clone(),
                    e.event_id.clone(),
                    opt(&e.session_id),
                    e.principal_type.clone(),
                    e.principal_arn.clone(),
                    opt(&e.principal_account_id),
                    opt(&e.user_name),
                    opt(&e.source_ip),
                    opt(&e.user_agent),
                    opt(&e.target),
                    opt(&e.document_name),
                    opt(&e.error_code),
                    opt(&e.error_message),
                    flag_names(flags.get(e.event_id.as_str())),
                    e.actor().to_string(),
                    opt(&e.access_key_id),
                ],
            )?;
        }
        w.flush()
    }
}

pub struct SessionsCsv;

impl ReportWriter for SessionsCsv {
    fn file_name(&self) -> &'static str {
        "sessions.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        let names = account_names(report);
        let by_event = event_flags(report);
        // A session's flags: findings about the session itself, and findings
        // that cite any of its events.
        let mut by_session: HashMap<(&str, &str), BTreeSet<Flag>> = HashMap::new();
        for f in &report.findings {
            if let Some(sid) = &f.session_id {
                by_session
                    .entry((f.account_id.as_str(), sid.as_str()))
                    .or_default()
                    .insert(f.flag);
            }
        }
        let mut w = writer(out);
        header(
            &mut w,
            &[
                "session_id",
                "account_id",
                "account_name",
                "region",
                "principal_arn",
                "principal_type",
                "target",
                "document_name",
                "start_time",
                "end_time",
                "duration_seconds",
                "resumes",
                "source_ips",
                "event_ids",
                "flags",
                // Session Manager's own records (empty where not read).
                "status",
                "active",
                "real_end_time",
                "end_source",
                "reason",
                "access_type",
                "owner",
                "transcript",
                "transcript_to",
            ],
        )?;
        for s in &report.sessions {
            let mut flags = by_session
                .get(&(s.account_id.as_str(), s.session_id.as_str()))
                .cloned()
                .unwrap_or_default();
            for id in &s.event_ids {
                if let Some(f) = by_event.get(id.as_str()) {
                    flags.extend(f);
                }
            }
            row(
                &mut w,
                &[
                    s.session_id.clone(),
                    s.account_id.clone(),
                    names.get(s.account_id.as_str()).unwrap_or(&"").to_string(),
                    s.region.clone(),
                    s.principal_arn.clone(),
                    s.principal_type.clone(),
                    opt(&s.target),
                    opt(&s.document_name),
                    s.start_time.map(time).unwrap_or_default(),
                    s.end_time.map(time).unwrap_or_default(),
                    s.duration_seconds
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    s.resumes.len().to_string(),
                    join(&s.source_ips),
                    join(&s.event_ids),
                    flag_names(Some(&flags)),
                    opt(&s.status),
                    if s.active {
                        "true".into()
                    } else {
                        String::new()
                    },
                    s.real_end_time.map(time).unwrap_or_default(),
                    s.end_source.map(end_source).unwrap_or_default(),
                    opt(&s.reason),
                    opt(&s.access_type),
                    opt(&s.owner),
                    s.transcript
                        .as_ref()
                        .map(|t| transcript_status(t.status))
                        .unwrap_or_default(),
                    s.transcript
                        .as_ref()
                        .map(|t| join(&t.destinations))
                        .unwrap_or_default(),
                ],
            )?;
        }
        w.flush()
    }
}

pub struct AccountsCsv;

impl ReportWriter for AccountsCsv {
    fn file_name(&self) -> &'static str {
        "accounts.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        let mut w = writer(out);
        header(
            &mut w,
            &[
                "account_id",
                "account_name",
                "state",
                "status",
                "reason",
                "regions_ok",
                "regions_not_enabled",
                "regions_failed",
                "failed_regions",
                "events",
                "sessions",
                "principals",
                "pages",
                "files",
                "retries",
                "throttles",
                "malformed",
                "flags",
                "max_severity",
                // Session Manager's posture per region (live scans).
                "transcripts",
                "session_manager_not_read",
                "active_sessions",
                "discrepancies",
            ],
        )?;
        for a in &report.accounts {
            let regions = &a.coverage.regions;
            let mut by_status: BTreeMap<RegionStatus, u64> = BTreeMap::new();
            for r in regions.values() {
                *by_status.entry(r.status).or_default() += 1;
            }
            let count = |s| by_status.get(&s).copied().unwrap_or(0).to_string();
            let failed = join(
                regions
                    .iter()
                    .filter(|(_, r)| r.status == RegionStatus::Failed)
                    .map(|(name, r)| format!("{name}: {}", r.error.as_deref().unwrap_or("failed"))),
            );
            let sum = |f: fn(&crate::model::RegionCoverage) -> u64| -> String {
                regions.values().map(f).sum::<u64>().to_string()
            };
            row(
                &mut w,
                &[
                    a.account_id.clone(),
                    a.account_name.clone(),
                    a.state.clone(),
                    a.coverage.status.as_str().to_string(),
                    opt(&a.coverage.reason),
                    count(RegionStatus::Ok),
                    count(RegionStatus::NotEnabled),
                    count(RegionStatus::Failed),
                    failed,
                    a.events.to_string(),
                    a.sessions.to_string(),
                    a.principals.to_string(),
                    sum(|r| r.pages),
                    sum(|r| r.files),
                    sum(|r| r.retries),
                    sum(|r| r.throttles),
                    sum(|r| r.malformed),
                    join(a.flags.iter().map(|f| format!("{}={}", f.flag, f.count))),
                    a.max_severity
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    join(regions.iter().filter_map(|(name, r)| {
                        let p = r.session_manager.as_ref()?;
                        let logging = match p.preferences.status.known() {
                            true => p.preferences.logging.as_str(),
                            false => "unknown",
                        };
                        Some(format!("{name}={logging}"))
                    })),
                    join(regions.iter().filter_map(|(name, r)| {
                        let p = r.session_manager.as_ref().filter(|p| !p.readable)?;
                        Some(format!("{name}: {}", p.summary))
                    })),
                    sum_posture(regions, |p| p.history.active),
                    sum_posture(regions, |p| p.discrepancies.len() as u64),
                ],
            )?;
        }
        w.flush()
    }
}

fn end_source(e: EndSource) -> String {
    match e {
        EndSource::TerminateSession => "TerminateSession".into(),
        EndSource::SessionManager => "session-manager".into(),
    }
}

fn transcript_status(t: TranscriptStatus) -> String {
    match t {
        TranscriptStatus::Recorded => "recorded",
        TranscriptStatus::None => "none",
        TranscriptStatus::NotCaptured => "not-captured",
        TranscriptStatus::Unknown => "unknown",
    }
    .into()
}

/// Sum over the regions that carry a posture; empty when none does.
fn sum_posture(
    regions: &BTreeMap<String, crate::model::RegionCoverage>,
    f: fn(&SessionManagerPosture) -> u64,
) -> String {
    let postures: Vec<&SessionManagerPosture> = regions
        .values()
        .filter_map(|r| r.session_manager.as_ref())
        .collect();
    if postures.is_empty() {
        return String::new();
    }
    postures.into_iter().map(f).sum::<u64>().to_string()
}

pub struct FindingsCsv;

impl ReportWriter for FindingsCsv {
    fn file_name(&self) -> &'static str {
        "findings.csv"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        let names = account_names(report);
        let mut w = writer(out);
        header(
            &mut w,
            &[
                "flag",
                "severity",
                "account_id",
                "account_name",
                "region",
                "principal_arn",
                "session_id",
                "event_ids",
                "detail",
                // Added after the first v1 files: last, so column positions hold.
                "actor",
            ],
        )?;
        for f in &report.findings {
            row(
                &mut w,
                &[
                    f.flag.as_str().to_string(),
                    f.severity.as_str().to_string(),
                    f.account_id.clone(),
                    names.get(f.account_id.as_str()).unwrap_or(&"").to_string(),
                    f.region.clone(),
                    f.principal_arn.clone(),
                    opt(&f.session_id),
                    join(&f.event_ids),
                    f.detail.clone(),
                    f.actor.clone(),
                ],
            )?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn render(w: &dyn ReportWriter, report: &Report) -> String {
        let mut out = Vec::new();
        w.write(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn records(text: &str) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
        let i = rows[0].iter().position(|h| h == name).unwrap();
        rows[1..].iter().map(|r| r[i].clone()).collect()
    }

    #[test]
    fn events_csv_snapshot() {
        insta::assert_snapshot!("events_csv", render(&EventsCsv, &fixture::report()));
    }

    #[test]
    fn sessions_csv_snapshot() {
        insta::assert_snapshot!("sessions_csv", render(&SessionsCsv, &fixture::report()));
    }

    #[test]
    fn accounts_csv_snapshot() {
        insta::assert_snapshot!("accounts_csv", render(&AccountsCsv, &fixture::report()));
    }

    #[test]
    fn findings_csv_snapshot() {
        insta::assert_snapshot!("findings_csv", render(&FindingsCsv, &fixture::report()));
    }

    #[test]
    fn events_csv_columns_and_flags() {
        let report = fixture::report();
        let rows = records(&render(&EventsCsv, &report));
        assert_eq!(
            rows[0].join(","),
            "account_id,account_name,region,event_time,event_name,event_id,session_id,\
             principal_type,principal_arn,principal_account_id,user_name,source_ip,user_agent,\
             target,document_name,error_code,error_message,flags,actor,access_key_id"
        );
        assert_eq!(rows.len(), 1 + report.events.len());
        assert!(rows.iter().all(|r| r.len() == 20));
        // Kept in the report's order.
        let ids: Vec<String> = report.events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(column(&rows, "event_id"), ids);
        assert_eq!(
            column(&rows, "flags"),
            [
                "root-session",
                "",
                "",
                "off-hours;port-forwarding",
                "off-hours;resume-from-new-ip"
            ]
        );
        assert_eq!(column(&rows, "account_name")[0], "prod");
        assert_eq!(column(&rows, "event_time")[0], "2025-02-19T20:13:49Z");
        // The formula is neutralized, the newline and quotes survive quoting.
        assert!(column(&rows, "user_agent")[0].starts_with("'=HYPERLINK("));
        assert!(column(&rows, "user_agent")[4].starts_with("'-cmd"));
        assert!(column(&rows, "error_message")[2].contains(",\nsee \"policy\""));
        assert_eq!(column(&rows, "actor")[0], "arn:aws:iam::111111111111:root");
        assert_eq!(column(&rows, "access_key_id")[2], "AKIAEXAMPLEBOB000001");
    }

    #[test]
    fn sessions_csv_rows() {
        let rows = records(&render(&SessionsCsv, &fixture::report()));
        assert_eq!(rows.len(), 3);
        assert_eq!(column(&rows, "resumes"), ["1", "0"]);
        assert_eq!(column(&rows, "duration_seconds"), ["", "600"]);
        assert_eq!(column(&rows, "end_time"), ["", "2025-02-19T20:23:49Z"]);
        assert_eq!(column(&rows, "source_ips")[0], "192.0.2.77;198.51.100.4");
        assert_eq!(
            column(&rows, "flags"),
            [
                "off-hours;port-forwarding;resume-from-new-ip",
                "root-session"
            ]
        );
    }

    #[test]
    fn accounts_csv_coverage_columns() {
        let rows = records(&render(&AccountsCsv, &fixture::report()));
        assert_eq!(rows.len(), 6);
        assert_eq!(
            column(&rows, "status"),
            ["complete", "partial", "failed", "skipped", "complete"]
        );
        assert_eq!(column(&rows, "regions_ok")[1], "1");
        assert_eq!(column(&rows, "regions_not_enabled")[1], "1");
        assert_eq!(column(&rows, "regions_failed")[1], "1");
        assert_eq!(
            column(&rows, "failed_regions")[1],
            "eu-west-1: ThrottlingException: Rate exceeded"
        );
        assert_eq!(column(&rows, "pages")[0], "4");
        assert_eq!(column(&rows, "throttles")[1], "3");
        assert_eq!(
            column(&rows, "flags")[0],
            "root-session=1;off-hours=1;port-forwarding=1;resume-from-new-ip=1"
        );
        assert_eq!(column(&rows, "max_severity"), ["critical", "", "", "", ""]);
    }

    #[test]
    fn session_manager_columns() {
        let report = fixture::report_with_posture();
        let rows = records(&render(&AccountsCsv, &report));
        assert_eq!(
            column(&rows, "transcripts"),
            [
                "eu-west-1=none;us-east-1=s3+cloudwatch",
                "us-east-1=unknown",
                "",
                "",
                ""
            ]
        );
        assert_eq!(
            column(&rows, "session_manager_not_read")[1],
            "us-east-1: not readable: grant ssm:DescribeSessions / ssm:GetDocument to the audit role"
        );
        assert_eq!(column(&rows, "active_sessions"), ["1", "0", "", "", ""]);
        assert_eq!(column(&rows, "discrepancies"), ["0", "0", "", "", ""]);
        let rows = records(&render(&SessionsCsv, &report));
        assert_eq!(column(&rows, "active"), ["true", ""]);
        assert_eq!(column(&rows, "status"), ["Connected", ""]);
        assert_eq!(column(&rows, "access_type"), ["JustInTime", ""]);
        assert_eq!(column(&rows, "reason"), ["'@ticket", ""]);
        assert_eq!(column(&rows, "transcript"), ["not-captured", ""]);
        assert_eq!(column(&rows, "end_source"), ["", "TerminateSession"]);
    }

    #[test]
    fn no_cell_of_any_file_starts_like_a_formula() {
        let mut report = fixture::report_with_posture();
        // Hostile text in every kind of field.
        report.accounts[0].account_name = "+SUM(1)".into();
        report.events[0].error_message = Some("@cmd".into());
        report.events[0].target = Some("\ti-1".into());
        report.findings[0].detail = "\r=1".into();
        report.sessions[0].document_name = Some("-x".into());
        for w in [
            &EventsCsv as &dyn ReportWriter,
            &SessionsCsv,
            &AccountsCsv,
            &FindingsCsv,
        ] {
            for row in records(&render(w, &report)) {
                for cell in row {
                    assert!(
                        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                        "{}: {cell:?}",
                        w.file_name()
                    );
                }
            }
        }
    }
}
