//! What the report is told: where it goes (a folder or an S3 prefix), in which
//! formats, the finding severity that makes the exit status 1, and the Object
//! Lock retention of S3 evidence (the config builds it).

use std::fmt;
use std::path::PathBuf;

use crate::model::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Json,
    Csv,
    /// `report.html`: one self-contained page.
    Html,
    /// `events.ocsf.jsonl` and `findings.ocsf.jsonl` (OCSF API Activity, Detection Finding).
    Ocsf,
}

impl Format {
    /// Every format: a run removes from its folder only files these write.
    pub const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Html, Format::Ocsf];
}

/// Does not compile when a format is added without being put in [`Format::ALL`]'s
/// reach: add it there too.
const _: () = {
    const fn listed(f: Format) {
        match f {
            Format::Json | Format::Csv | Format::Html | Format::Ocsf => {}
        }
    }
    listed(Format::ALL[0]);
};

/// Where a run's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLocation {
    /// A local folder that holds one run (the last one written there).
    Dir(PathBuf),
    /// `s3://bucket/prefix`: every run under its own `prefix/RUN/`, and
    /// `prefix/latest.json` naming the last one written whole.
    S3 { bucket: String, prefix: String },
}

impl OutputLocation {
    /// The folder, for a local output.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match self {
            OutputLocation::Dir(d) => Some(d),
            OutputLocation::S3 { .. } => None,
        }
    }
}

impl fmt::Display for OutputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputLocation::Dir(d) => write!(f, "{}", d.display()),
            OutputLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            OutputLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The formats written when neither `--format` nor `report.formats` is given.
pub const DEFAULT_FORMATS: [Format; 3] = [Format::Json, Format::Csv, Format::Html];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub output: OutputLocation,
    pub formats: Vec<Format>,
    /// `None` = never exit 1 for findings.
    pub fail_on: Option<Severity>,
    /// S3 output only: every object gets Object Lock retention in compliance
    /// mode for this many days.
    pub object_lock_days: Option<u32>,
    /// `Some` = import the findings into AWS Security Hub (`--security-hub`).
    pub security_hub: Option<SecurityHubConfig>,
}

/// Where `--security-hub` imports the findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHubConfig {
    /// The Security Hub region; `None` = the SDK's region (`AWS_REGION`, profile).
    pub region: Option<String>,
}
