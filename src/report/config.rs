//! What the report is told: where it goes, in which formats, and the finding

//! severity that makes the exit status 1 (the config builds it).

use std::path::PathBuf;

use crate::model::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub output: PathBuf,
    pub formats: Vec<Format>,
    /// `None` = never exit 1 for findings.
    pub fail_on: Option<Severity>,
}
