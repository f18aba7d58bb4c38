//! The short table printed at the end of a run: the accounts that need a look
//! (not complete, or flagged), worst first, then the totals. Every piece of
//! record-derived text passes [`sanitize_terminal`].

use std::cmp::Reverse;
use std::io;

use super::sanitize_terminal;
use crate::model::{AccountReport, AccountStatus, RegionStatus, Report, Severity};

/// Rows shown before the table says how many more there are.
pub const SUMMARY_MAX_ROWS: usize = 30;

const NAME_WIDTH: usize = 24;
const DETAIL_WIDTH: usize = 72;

/// How much an account needs a look: its worst finding, with a failed
/// account counted as high and a partial one as medium (what was not read
/// may hide anything).
fn concern(a: &AccountReport) -> u8 {
    let sev = a.max_severity.map_or(0, |s| s as u8 + 1);
    let cov = match a.coverage.status {
        AccountStatus::Failed => Severity::High as u8 + 1,
        AccountStatus::Partial => Severity::Medium as u8 + 1,
        AccountStatus::Complete | AccountStatus::Skipped => 0,
    };
    sev.max(cov)
}

fn coverage_rank(s: AccountStatus) -> u8 {
    match s {
        AccountStatus::Failed => 0,
        AccountStatus::Partial => 1,
        AccountStatus::Complete => 2,
        AccountStatus::Skipped => 3,
    }
}

fn needs_a_row(a: &AccountReport) -> bool {
    a.coverage.status != AccountStatus::Complete
        || !a.flags.is_empty()
        || !posture_not_read(a).is_empty()
}

/// Regions whose Session Manager records could not be read in full.
fn posture_not_read(a: &AccountReport) -> Vec<&str> {
    a.coverage
        .regions
        .iter()
        .filter(|(_, r)| r.session_manager.as_ref().is_some_and(|p| !p.readable))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Sanitized and cut to `width` characters.
fn fit(s: &str, width: usize) -> String {
    let s = sanitize_terminal(s);
    if s.chars().count() <= width {
        s
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn color_of(s: Severity) -> Option<&'static str> {
    match s {
        Severity::Critical => Some("\x1b[1;31m"),
        Severity::High => Some("\x1b[31m"),
        Severity::Medium => Some("\x1b[33m"),
        Severity::Low => Some("\x1b[36m"),
        Severity::Info => None,
    }
}

/// `text` padded to `width`, colored by `sev` when asked; the padding stays
/// outside the color codes so the columns line up either way.
fn severity_cell(text: &str, sev: Option<Severity>, width: usize, color: bool) -> String {
    let pad = " ".repeat(width.saturating_sub(text.chars().count()));
    match (color, sev.and_then(color_of)) {
        (true, Some(code)) => format!("{code}{text}\x1b[0m{pad}"),
        _ => format!("{text}{pad}"),
    }
}

/// The row's last column: why it is not complete, which regions failed, and its flags.
fn detail(a: &AccountReport) -> String {
    let mut parts = Vec::new();
    let failed: Vec<&str> = a
        .coverage
        .regions
        .iter()
        .filter(|(_, r)| r.status == RegionStatus::Failed)
        .map(|(name, _)| name.as_str())
        .collect();
    match (&a.coverage.reason, failed.is_empty()) {
        (Some(reason), true) => parts.push(reason.clone()),
        (Some(reason), false) => parts.push(format!("{reason}: {}", failed.join(", "))),
        (None, false) => parts.push(format!("failed: {}", failed.join(", "))),
        (None, true) => {}
    }
    let not_read = posture_not_read(a);
    if !not_read.is_empty() {
        parts.push(format!("Session Manager not read: {}", not_read.join(", ")));
    }
    if !a.flags.is_empty() {
        let mut flags = a.flags.clone();
        flags.sort_by_key(|f| (Reverse(f.severity), f.flag));
        let flags: Vec<String> = flags
            .iter()
            .map(|f| format!("{}={}", f.flag, f.count))
            .collect();
        parts.push(flags.join(", "));
    }
    parts.join("; ")
}

/// Writes the summary table and totals. `color` adds ANSI colors to severities only.
pub fn write_summary(report: &Report, out: &mut dyn io::Write, color: bool) -> io::Result<()> {
    let mut rows: Vec<&AccountReport> = report.accounts.iter().filter(|a| needs_a_row(a)).collect();
    rows.sort_by_key(|a| {
        (
            Reverse(concern(a)),
            coverage_rank(a.coverage.status),
            a.account_id.as_str(),
        )
    });
    let hidden = rows.len().saturating_sub(SUMMARY_MAX_ROWS);
    rows.truncate(SUMMARY_MAX_ROWS);

    if rows.is_empty() {
        writeln!(
            out,
            "All {} accounts complete, no findings.",
            report.accounts.len()
        )?;
    } else {
        let cells: Vec<[String; 7]> = rows
            .iter()
            .map(|a| {
                [
                    fit(&a.account_id, NAME_WIDTH),
                    fit(&a.account_name, NAME_WIDTH),
                    a.coverage.status.as_str().to_string(),
                    a.events.to_string(),
                    a.sessions.to_string(),
                    a.max_severity.map_or("-", |s| s.as_str()).to_string(),
                    fit(&detail(a), DETAIL_WIDTH),
                ]
            })
            .collect();
        let headers = [
            "ACCOUNT", "NAME", "STATUS", "EVENTS", "SESSIONS", "SEVERITY", "DETAIL",
        ];
        let mut widths = headers.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: [&str; 7], sev: Option<Severity>, color: bool| -> String {
            let mut s = String::new();
            for (i, c) in cols.iter().enumerate() {
                let w = widths[i];
                let cell = match i {
                    // Numbers align right.
                    3 | 4 => format!("{c:>w$}"),
                    5 => severity_cell(c, sev, w, color),
                    6 => c.to_string(),
                    _ => format!("{c:<w$}"),
                };
                s.push_str(&cell);
                if i < 6 {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string()
        };
        writeln!(out, "{}", line(headers, None, false))?;
        for (a, row) in rows.iter().zip(&cells) {
            let cols = [
                row[0].as_str(),
                row[1].as_str(),
                row[2].as_str(),
                row[3].as_str(),
                row[4].as_str(),
                row[5].as_str(),
                row[6].as_str(),
            ];
            writeln!(out, "{}", line(cols, a.max_severity, color))?;
        }
        if hidden > 0 {
            writeln!(
                out,
                "… and {hidden} more account{} not shown (see accounts.csv or report.json)",
                if hidden == 1 { "" } else { "s" }
            )?;
        }
    }
    writeln!(out)?;
    write_totals(report, out, color)
}

fn write_totals(report: &Report, out: &mut dyn io::Write, color: bool) -> io::Result<()> {
    let count = |s: AccountStatus| {
        report
            .accounts
            .iter()
            .filter(|a| a.coverage.status == s)
            .count()
    };
    let (complete, partial, failed, skipped) = (
        count(AccountStatus::Complete),
        count(AccountStatus::Partial),
        count(AccountStatus::Failed),
        count(AccountStatus::Skipped),
    );
    writeln!(
        out,
        "Accounts:  {complete} complete, {partial} partial, {failed} failed, {skipped} skipped ({} total)",
        report.accounts.len()
    )?;
    writeln!(
        out,
        "Activity:  {} events, {} sessions",
        report.events.len(),
        report.sessions.len()
    )?;
    if let Some(sm) = &report.run.session_manager {
        let mut parts = vec![format!("{} region(s) read", sm.partitions_read)];
        if !sm.logging_off.is_empty() {
            let shown: Vec<&str> = sm.logging_off.iter().take(3).map(String::as_str).collect();
            let more = match sm.logging_off.len() {
                n if n > 3 => format!(", and {} more", n - 3),
                _ => String::new(),
            };
            parts.push(format!(
                "{} log no transcript ({}{more})",
                sm.logging_off.len(),
                shown.join(", ")
            ));
        }
        if !sm.not_read.is_empty() {
            parts.push(format!(
                "{} not read (where denied, grant ssm:DescribeSessions / ssm:GetDocument; run.session_manager.not_read says why)",
                sm.not_read.len()
            ));
        }
        parts.push(format!("{} connected now", sm.active_sessions));
        if sm.discrepancies > 0 {
            parts.push(format!(
                "{} session(s) known to only one of CloudTrail and Session Manager",
                sm.discrepancies
            ));
        }
        writeln!(
            out,
            "Posture:   {}",
            fit(&parts.join("; "), 6 * DETAIL_WIDTH)
        )?;
    }
    let by_sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|&s| {
            let n = report.findings.iter().filter(|f| f.severity == s).count();
            let name = match (color && n > 0, color_of(s)) {
                (true, Some(code)) => format!("{code}{s}\x1b[0m"),
                _ => s.to_string(),
            };
            format!("{n} {name}")
        })
        .collect();
    writeln!(out, "Findings:  {}", by_sev.join(", "))?;
    let run = if report.run.interrupted {
        "INTERRUPTED before it finished: coverage is incomplete".to_string()
    } else if report.run.complete {
        "complete: every account and region was read".to_string()
    } else {
        match report.run.incomplete_reasons.as_slice() {
            [] => format!(
                "INCOMPLETE: {partial} partial and {failed} failed account(s) were not fully read"
            ),
            [one] => format!("INCOMPLETE: {}", sanitize_terminal(one)),
            _ => "INCOMPLETE:".to_string(),
        }
    };
    writeln!(out, "Run:       {run}")?;
    if !report.run.complete && report.run.incomplete_reasons.len() > 1 {
        for reason in &report.run.incomplete_reasons {
            writeln!(out, "           - {}", sanitize_terminal(reason))?;
        }
    }
    if let Some(sh) = &report.run.security_hub {
        let mut line = format!(
            "Security Hub: {} of {} findings imported into {}",
            sh.imported, sh.findings, sh.region
        );
        if !sh.failed.is_empty() {
            line.push_str(&format!(", {} refused", sh.failed.len()));
        }
        if let Some(e) = &sh.error {
            line.push_str(&format!("; stopped: {e}"));
        }
        writeln!(out, "{}", sanitize_terminal(&line))?;
        for f in sh.failed.iter().take(SUMMARY_MAX_ROWS) {
            writeln!(
                out,
                "  refused {}: {}: {}",
                sanitize_terminal(&f.id),
                sanitize_terminal(&f.error_code),
                sanitize_terminal(&f.error_message)
            )?;
        }
    }
    write_window(report, out)
}

/// What the window holds that a reader could mistake: an end so recent that
/// CloudTrail may still deliver events before it, what was read again, and
/// the run this one goes on from.
fn write_window(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let w = &report.run.window;
    let time = super::time;
    if w.settled_until < w.end {
        let minutes = (w.end - w.settled_until).num_minutes().max(1);
        writeln!(
            out,
            "Window:    {} to {}, settled until {}: CloudTrail may still deliver events of the last {minutes} min; the next --since last run reads them again from there",
            time(w.start),
            time(w.end),
            time(w.settled_until)
        )?;
    }
    let earlier = w
        .partition_starts
        .values()
        .flat_map(|r| r.values())
        .chain(w.account_starts.values())
        .filter(|t| **t < w.start)
        .count();
    if earlier > 0 {
        writeln!(
            out,
            "Re-read:   {earlier} partition(s) from before {}: what an earlier run failed to read",
            time(w.start)
        )?;
    }
    if let Some(p) = &report.run.previous {
        writeln!(
            out,
            "Continues: {} (settled until {}{}); {} event(s) read again were in it already, {} call(s) of sessions it left open joined",
            fit(&p.location, DETAIL_WIDTH),
            time(p.settled_until),
            if p.complete { "" } else { ", incomplete" },
            p.already_reported,
            p.joined_events
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountCoverage, Flag, RegionCoverage};
    use crate::report::fixture;
    use std::collections::BTreeMap;

    fn render(report: &Report, color: bool) -> String {
        let mut out = Vec::new();
        write_summary(report, &mut out, color).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Removes exactly the color codes the summary may add.
    fn strip_colors(s: &str) -> String {
        let mut s = s.to_string();
        for code in ["\x1b[1;31m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m"] {
            s = s.replace(code, "");
        }
        s
    }

    #[test]
    fn session_manager_line_and_details() {
        let text = render(&fixture::report_with_posture(), false);
        assert!(
            text.contains("Posture:   2 region(s) read; 1 log no transcript (111111111111/eu-west-1); 1 not read (where denied, grant ssm:DescribeSessions / ssm:GetDocument; run.session_manager.not_read says why); 1 connected now"),
            "{text}"
        );
        assert!(
            text.contains("Session Manager not read: us-east-1"),
            "{text}"
        );
        // Without Session Manager's records (trail files, Athena): no line.
        assert!(!render(&fixture::report(), false).contains("Posture:"));
    }

    #[test]
    fn summary_snapshot() {
        insta::assert_snapshot!("summary", render(&fixture::report(), false));
    }

    #[test]
    fn summary_color_snapshot() {
        let text = render(&fixture::report(), true);
        assert!(text.contains("\x1b[1;31mcritical\x1b[0m"));
        insta::assert_snapshot!("summary_color", text.replace('\x1b', "<ESC>"));
    }

    #[test]
    fn no_control_character_reaches_the_terminal() {
        let mut report = fixture::report();
        report.accounts[0].account_name = "prod\u{9b}2J\u{202e}".into();
        report.accounts[2].coverage.reason = Some("denied\r\n\x1b]8;;http://x\x07".into());
        for color in [false, true] {
            let text = strip_colors(&render(&report, color));
            assert!(
                !text
                    .chars()
                    .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
                "{text:?}"
            );
        }
        let plain = render(&report, false);
        assert!(plain.contains("dev\\x1b[31m team"));
        assert!(plain.contains("prod\\u{9b}2J\\u{202e}"));
        assert_eq!(strip_colors(&render(&report, true)), plain);
    }

    #[test]
    fn rows_are_worst_first_and_clean_accounts_are_left_out() {
        let text = render(&fixture::report(), false);
        let pos = |id: &str| text.find(id).unwrap_or_else(|| panic!("{id} missing"));
        assert!(pos("111111111111") < pos("333333333333"), "critical first");
        assert!(
            pos("333333333333") < pos("222222222222"),
            "failed before partial"
        );
        assert!(pos("222222222222") < pos("444444444444"), "skipped last");
        assert!(!text.contains("555555555555"), "complete and clean: no row");
        assert!(text.contains("1 complete") || text.contains("2 complete"));
        assert!(text.contains("Run:       INCOMPLETE"));
    }

    fn flagged(i: usize, sev_flag: Flag) -> AccountReport {
        fixture::account(
            &format!("{:012}", 100_000 + i),
            &format!("acct-{i}"),
            AccountCoverage::from_regions(BTreeMap::from([(
                "us-east-1".to_string(),
                RegionCoverage::new(RegionStatus::Ok),
            )])),
            vec![fixture::flag(sev_flag, 1)],
        )
    }

    #[test]
    fn long_tables_show_the_worst_rows_and_count_the_rest() {
        let mut report = fixture::report();
        report.accounts = (0..34).map(|i| flagged(i, Flag::OffHours)).collect();
        report.accounts.push(flagged(99, Flag::RootSession));
        let text = render(&report, false);
        let table_rows = text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| l.starts_with("000000"))
            .count();
        assert_eq!(table_rows, SUMMARY_MAX_ROWS);
        assert!(text.contains("… and 5 more accounts not shown"), "{text}");
        assert!(
            text.contains("000000100099"),
            "the critical account is shown"
        );
        assert!(
            !text.contains("000000100033"),
            "the last low account is cut"
        );
    }

    #[test]
    fn all_clean() {
        let mut report = fixture::report();
        report.accounts.retain(|a| a.account_id == "555555555555");
        report.findings.clear();
        report.run.complete = true;
        let text = render(&report, true);
        assert!(text.starts_with("All 1 accounts complete, no findings.\n"));
        assert!(text.contains("Run:       complete"));
        assert!(!text.contains('\x1b'), "no color without severities");
    }

    #[test]
    fn a_recent_end_says_what_is_not_settled_and_what_continues() {
        let mut report = fixture::report();
        let text = render(&report, false);
        assert!(
            !text.contains("settled until"),
            "a settled window says nothing: {text}"
        );
        report.run.window.settled_until = fixture::t("2025-03-01T11:45:00Z");
        report.run.window.partition_starts = BTreeMap::from([(
            "111111111111".to_string(),
            BTreeMap::from([("us-east-1".to_string(), fixture::t("2025-02-20T00:00:00Z"))]),
        )]);
        report.run.previous = Some(crate::model::PreviousRun {
            location: "s3://evidence/runs/2025-02-22T12-00-00Z/\x1b[2J".into(),
            started_at: fixture::t("2025-02-22T12:00:00Z"),
            window: crate::model::TimeWindow {
                start: fixture::t("2025-02-21T12:00:00Z"),
                end: fixture::t("2025-02-22T12:00:00Z"),
            },
            settled_until: fixture::t("2025-02-22T11:45:00Z"),
            complete: false,
            already_reported: 2,
            joined_events: 1,
        });
        let text = render(&report, false);
        assert!(text.contains("settled until 2025-03-01T11:45:00Z: CloudTrail may still deliver events of the last 15 min"), "{text}");
        assert!(
            text.contains("Re-read:   1 partition(s) from before 2025-02-22T12:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("Continues: s3://evidence/runs/2025-02-22T12-00-00Z/"),
            "{text}"
        );
        assert!(
            text.contains("incomplete); 2 event(s) read again were in it already, 1 call(s)"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn long_fields_are_cut() {
        let mut report = fixture::report();
        report.accounts[2].coverage.reason = Some("x".repeat(500));
        report.accounts[2].account_name = "n".repeat(100);
        let text = render(&report, false);
        assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
        assert!(text.contains(&format!("{}…", "n".repeat(NAME_WIDTH - 1))));
    }
}
