//! The plain, resolved configuration a run uses, and how it is built:
//! defaults, then the TOML file, then the flags (a flag wins over the file,
//! the file over the default). Nothing here knows about clap.
//!
//! IMPLEMENTATION NOTE (skeleton): types are fixed; `resolve` and the TOML
//! reader are to be implemented.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveTime, TimeDelta, Weekday};
use ipnet::IpNet;

use crate::model::{Severity, TimeWindow};

/// Which regions to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSelection {
    List(Vec<String>),
    /// Every commercial region; regions an account has not enabled come back
    /// as `not-enabled`.
    All,
}

/// Where session events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// CloudTrail `LookupEvents` (the default; last 90 days).
    LookupEvents,
    /// Trail files in a local folder.
    Dir(PathBuf),
    /// Trail files under an S3 prefix.
    S3 { bucket: String, prefix: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanConfig {
    pub regions: RegionSelection,
    pub event_names: Vec<String>,
    pub window: TimeWindow,
    /// Calls in flight across the whole run.
    pub concurrency: usize,
    /// LookupEvents calls per second per account and region.
    pub lookup_rate: f64,
    /// One HTTP attempt may take this long before it is abandoned and retried.
    pub call_timeout: Duration,
    /// A page that still fails after this long (from its first attempt) fails its partition.
    pub retry_deadline: Duration,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsConfig {
    pub role_name: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub session_duration: Duration,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub organizational_units: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub timezone: chrono_tz::Tz,
    pub days: Vec<Weekday>,
    /// Local start time. When `end <= start` the hours run across midnight.
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// Empty = `unapproved-source-ip` off.
    pub approved_cidrs: Vec<IpNet>,
    /// Empty = `unusual-region` off.
    pub allowed_regions: Vec<String>,
    pub trusted_accounts: Vec<String>,
    /// Document names (or prefixes, e.g. `AWS-StartPortForwardingSession` also matches
    /// `AWS-StartPortForwardingSessionToRemoteHost`) that tunnel ports.
    pub tunnel_documents: Vec<String>,
    pub denied_threshold: usize,
    pub denied_window: TimeDelta,
    pub fanout_targets: usize,
    pub fanout_window: TimeDelta,
    pub max_session: TimeDelta,
    pub business_hours: BusinessHours,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub output: PathBuf,
    pub formats: Vec<Format>,
    /// `None` = never exit 1 for findings.
    pub fail_on: Option<Severity>,
}

/// Everything a `scan` needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub scan: ScanConfig,
    pub accounts: AccountsConfig,
    pub rules: RuleConfig,
    pub report: ReportConfig,
    pub baseline: Option<PathBuf>,
    /// The file the config came from, if any (for messages).
    pub config_file: Option<PathBuf>,
}

/// The values given on the command line, before merging: `None` = not given.
/// The binary fills this from clap; tests fill it by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagValues {
    pub config: Option<PathBuf>,
    pub since: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub regions: Option<Vec<String>>,
    pub accounts: Option<Vec<String>>,
    pub exclude_accounts: Option<Vec<String>>,
    pub ou: Option<Vec<String>>,
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    pub concurrency: Option<usize>,
    pub lookup_rate: Option<f64>,
    pub formats: Option<Vec<String>>,
    pub output: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    pub fail_on: Option<String>,
    pub source: Option<String>,
}

// TEMPORARY STUB (replaced by the report branch).
pub fn config_digest(_cfg: &Config) -> String {
    String::new()
}
