//! What the report is told: where it goes, in which formats, and the finding

//! severity that makes the exit status 1 (the config builds it).

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

/// The formats written when neither `--format` nor `report.formats` is given.
pub const DEFAULT_FORMATS: [Format; 3] = [Format::Json, Format::Csv, Format::Html];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub output: PathBuf,
    pub formats: Vec<Format>,
    /// `None` = never exit 1 for findings.
    pub fail_on: Option<Severity>,
    /// `Some` = import the findings into AWS Security Hub (`--security-hub`).
    pub security_hub: Option<SecurityHubConfig>,
}

/// Where `--security-hub` imports the findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHubConfig {
    /// The Security Hub region; `None` = the SDK's region (`AWS_REGION`, profile).
    pub region: Option<String>,
}
