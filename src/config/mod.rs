//! The plain, resolved configuration a run uses, and how it is built:
//! defaults, then the TOML file, then the flags (a flag wins over the file,
//! the file over the default). Nothing here knows about clap.
//!
//! [`parse_file_str`] (I/O-free) and [`load_file`] read the TOML into a
//! [`FileConfig`] that holds the text as written; [`resolve`] merges it with the
//! [`FlagValues`] and the defaults and validates everything into a [`Config`].
//! Every error names where the bad value came from (the flag, or the file and
//! key), the value, and how to fix it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc, Weekday};
use ipnet::IpNet;
use serde::Deserialize;
use sha2::{Digest, Sha256};

mod defaults;
mod digest;
mod error;
mod file;
mod resolve;
#[cfg(test)]
mod tests;
mod values;

use self::defaults::*;
use self::error::*;
use self::file::*;
use self::resolve::*;
use self::values::*;
use crate::model::{Severity, TimeWindow};

pub use self::defaults::*;
pub use self::digest::config_digest;
pub use self::error::{ConfigError, Origin};
pub use self::file::{
    load_file, parse_file_str, FileAccounts, FileAthena, FileConfig, FileReport, FileRules,
    FileScan,
};
pub use self::resolve::{resolve, settled_point};
pub use self::values::parse_duration;
pub use crate::ids::{is_account_id, is_ou_id, is_region_name};
pub use crate::report::{Format, OutputLocation, ReportConfig, SecurityHubConfig, DEFAULT_FORMATS};
pub use crate::rules::{BusinessHours, RuleConfig};
pub use crate::source::Source;

/// Which regions to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSelection {
    List(Vec<String>),
    /// Every commercial region; regions an account has not enabled come back
    /// as `not-enabled`.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanConfig {
    pub regions: RegionSelection,
    pub event_names: Vec<String>,
    /// `[start, end)`; with a [`crate::chain::Plan`], `start` is where every
    /// partition the plan does not name starts.
    pub window: TimeWindow,
    /// The moment the window was resolved against ("now" for `--since`): the
    /// run's start, which names an S3 run's folder.
    pub resolved_at: DateTime<Utc>,
    /// How long CloudTrail may take to show an event (`scan.settle`).
    pub settle: Duration,
    /// `min(end, resolved_at - settle)`, never before `start`: events before it
    /// had reached CloudTrail when the run read it.
    pub settled_until: DateTime<Utc>,
    /// `--since last`: the window is the continuation of the last run in the
    /// output location, which the binary reads before the scan into `plan`.
    pub since_last: bool,
    /// What this run takes over from the one it continues (empty otherwise).
    pub plan: crate::chain::Plan,
    /// At most this many calls in flight across the run (`--concurrency`);
    /// `None`: the run sizes its bound itself (see `call::inflight`).
    pub concurrency: Option<usize>,
    /// LookupEvents calls per second per account and region.
    pub lookup_rate: f64,
    /// One HTTP attempt may take this long before it is abandoned and retried.
    pub call_timeout: Duration,
    /// A page that still fails after this long (from its first attempt) fails its partition.
    pub retry_deadline: Duration,
    pub source: Source,
    /// Read Session Manager's own records (history, preferences) beside
    /// LookupEvents (the live source only).
    pub session_manager: bool,
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

/// Everything a `scan` needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub scan: ScanConfig,
    pub accounts: AccountsConfig,
    pub rules: RuleConfig,
    pub report: ReportConfig,
    /// `[athena]`: how the Athena source runs its queries.
    pub athena: crate::source::athena::AthenaConfig,
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
    /// A folder, or `s3://bucket/prefix`.
    pub output: Option<PathBuf>,
    /// `--object-lock-days`: Object Lock retention of S3 evidence.
    pub object_lock_days: Option<i64>,
    pub baseline: Option<PathBuf>,
    pub fail_on: Option<String>,
    pub source: Option<String>,
    /// `--max-scan`: refuse an Athena scan estimated above this (e.g. `10GB`).
    pub max_scan: Option<String>,
    /// `Some(true)` when `--security-hub` was given.
    pub security_hub: Option<bool>,
    pub security_hub_region: Option<String>,
}

impl ScanConfig {
    /// Where `account`'s `region` starts: the plan's start for it, else the window's.
    pub fn start_of(&self, account: &str, region: &str) -> DateTime<Utc> {
        crate::model::start_in(
            &self.plan.partition_starts,
            &self.plan.account_starts,
            self.window.start,
            account,
            region,
        )
    }

    /// One window that holds every partition's: for the sources that read all
    /// partitions at once (trail files, Athena). The scan then keeps, per
    /// partition, only what lies in that partition's own window.
    pub fn read_window(&self) -> TimeWindow {
        let earliest = self
            .plan
            .partition_starts
            .values()
            .flat_map(|r| r.values())
            .chain(self.plan.account_starts.values())
            .copied()
            .fold(self.window.start, DateTime::min);
        TimeWindow {
            start: earliest,
            end: self.window.end,
        }
    }
}
