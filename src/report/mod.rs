//! The report: `report.json`, the CSV files, `report.html`, the OCSF files,
//! `SHA256SUMS`, and the short summary table for the terminal.
//!
//! Every file format sits behind [`ReportWriter`], which writes to any
//! `io::Write`; [`write_report_dir`] is the one place that turns writers into
//! files (atomically, checksums last), and the S3 writer uploads those same
//! staged files ([`s3`]); [`Evidence`] is either. Writers keep the order of the `Report`:
//! the caller sorts it, so the same input gives the same bytes.

mod config;
mod csv;
mod direct;
pub mod html;
mod json;
pub mod last;
pub mod ocsf;
mod output;
pub mod s3;
mod sanitize;
pub mod security_hub;
mod summary;
mod write;

use std::io;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

pub use self::config::{Format, OutputLocation, ReportConfig, SecurityHubConfig, DEFAULT_FORMATS};
pub use self::output::{Evidence, Written};
use crate::model::Report;

pub use self::csv::{AccountsCsv, EventsCsv, FindingsCsv, SessionsCsv};
pub use self::html::HtmlReport;
pub use self::json::JsonReport;
pub use self::ocsf::{OcsfEvents, OcsfFindings};
pub use self::sanitize::{
    escape_terminal, neutralize_csv_cell, sanitize_terminal, MAX_TERMINAL_FIELD,
};
pub use self::summary::{write_summary, SUMMARY_MAX_ROWS};
pub use self::write::{abandon_staging, check_output_dir, write_report_dir, write_with, SUMS_FILE};

/// One output file of the report.
pub trait ReportWriter {
    /// The file's name in the output folder.
    fn file_name(&self) -> &'static str;
    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()>;
}

/// The writers for the requested formats, each file once:
/// json → `report.json`; csv → `events.csv`, `sessions.csv`, `accounts.csv`, `findings.csv`;
/// html → `report.html`; ocsf → `events.ocsf.jsonl`, `findings.ocsf.jsonl`.
pub fn writers(formats: &[Format]) -> Vec<Box<dyn ReportWriter>> {
    let mut formats = formats.to_vec();
    formats.sort();
    formats.dedup();
    let mut out: Vec<Box<dyn ReportWriter>> = Vec::new();
    for f in formats {
        match f {
            Format::Json => out.push(Box::new(JsonReport)),
            Format::Csv => {
                out.push(Box::new(EventsCsv));
                out.push(Box::new(SessionsCsv));
                out.push(Box::new(AccountsCsv));
                out.push(Box::new(FindingsCsv));
            }
            Format::Html => out.push(Box::new(HtmlReport)),
            Format::Ocsf => {
                out.push(Box::new(OcsfEvents));
                out.push(Box::new(OcsfFindings));
            }
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create the output folder {}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the output path {} exists and is not a folder", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("the output folder {} is not writable", dir.display())]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the report file {}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {} to {}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove the previous {}", file.display())]
    Remove {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("S3 {operation} {location} failed: {failure}")]
    S3 {
        operation: &'static str,
        location: String,
        failure: String,
    },
    #[error("the last run in {location} cannot be continued: {problem}")]
    LastRun { location: String, problem: String },
}

/// A finding's stable id, the same in every run that finds it (OCSF
/// `finding_info.uid`, the ASFF `Id`, so a rerun updates and never duplicates):
/// flag, account and region in clear, then a digest of everything that makes
/// it this finding (flag, account, region, principal, session, proving events).
pub fn finding_id(f: &crate::model::Finding) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        f.flag.as_str(),
        &f.account_id,
        &f.region,
        &f.principal_arn,
        f.session_id.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    for id in &f.event_ids {
        h.update(id.as_bytes());
        h.update([0x1e]);
    }
    let digest = hex::encode(h.finalize());
    format!(
        "ssm-session-audit/{}/{}/{}/{}",
        f.flag,
        f.account_id,
        f.region,
        &digest[..32]
    )
}

/// Times in every report file: RFC 3339, UTC, with `Z`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_per_format() {
        let names = |f: &[Format]| -> Vec<&'static str> {
            writers(f).iter().map(|w| w.file_name()).collect()
        };
        assert_eq!(names(&[Format::Json]), ["report.json"]);
        assert_eq!(
            names(&[Format::Csv]),
            ["events.csv", "sessions.csv", "accounts.csv", "findings.csv"]
        );
        assert_eq!(
            names(&[Format::Csv, Format::Json, Format::Csv]),
            [
                "report.json",
                "events.csv",
                "sessions.csv",
                "accounts.csv",
                "findings.csv"
            ]
        );
        assert_eq!(names(&[Format::Html]), ["report.html"]);
        assert_eq!(
            names(&[Format::Ocsf, Format::Html]),
            ["report.html", "events.ocsf.jsonl", "findings.ocsf.jsonl"]
        );
        assert!(names(&[]).is_empty());
    }

    #[test]
    fn finding_ids_are_stable_and_distinct() {
        let r = fixture::report();
        let ids: Vec<String> = r.findings.iter().map(finding_id).collect();
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(
            ids[0],
            finding_id(&fixture::report().findings[0]),
            "same finding, same id"
        );
        assert!(ids[0].starts_with("ssm-session-audit/root-session/111111111111/us-east-1/"));
        assert_eq!(
            ids[0].len(),
            "ssm-session-audit/root-session/111111111111/us-east-1/".len() + 32
        );
        let mut other = r.findings[0].clone();
        other.event_ids.push("another".into());
        assert_ne!(finding_id(&other), ids[0], "other evidence, other finding");
        // The detail (a sentence that may be reworded) is not part of the identity.
        other = r.findings[0].clone();
        other.detail = "reworded".into();
        assert_eq!(finding_id(&other), ids[0]);
    }

    #[test]
    fn times_are_utc_with_z() {
        let t: DateTime<Utc> = "2025-02-19T20:13:49Z".parse().unwrap();
        assert_eq!(time(t), "2025-02-19T20:13:49Z");
        let t: DateTime<Utc> = "2025-02-19T20:13:49.250+01:00".parse().unwrap();
        assert_eq!(time(t), "2025-02-19T19:13:49.250Z");
    }
}
