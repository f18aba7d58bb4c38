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
    /// `report.html`: one self-contained page.
    Html,
    /// `events.ocsf.jsonl` and `findings.ocsf.jsonl` (OCSF API Activity, Detection Finding).
    Ocsf,
}

/// The formats written when neither `--format` nor `report.formats` is given.
pub const DEFAULT_FORMATS: [Format; 3] = [Format::Json, Format::Csv, Format::Html];

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
    /// `Some` = import the findings into AWS Security Hub (`--security-hub`).
    pub security_hub: Option<SecurityHubConfig>,
}

/// Where `--security-hub` imports the findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHubConfig {
    /// The Security Hub region; `None` = the SDK's region (`AWS_REGION`, profile).
    pub region: Option<String>,
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
    /// `Some(true)` when `--security-hub` was given.
    pub security_hub: Option<bool>,
    pub security_hub_region: Option<String>,
}

// ---------------------------------------------------------------------------
// Defaults (PRODUCT.md "Config file"; config.example.toml shows each one).
// ---------------------------------------------------------------------------

pub const DEFAULT_SINCE: &str = "7d";
pub const DEFAULT_CONCURRENCY: usize = 32;
pub const DEFAULT_LOOKUP_RATE: f64 = 2.0;
pub const DEFAULT_CALL_TIMEOUT: &str = "20s";
pub const DEFAULT_RETRY_DEADLINE: &str = "5m";
pub const DEFAULT_ROLE_NAME: &str = "SessionAuditRole";
pub const DEFAULT_SESSION_NAME: &str = "ssm-session-audit";
pub const DEFAULT_SESSION_DURATION: &str = "1h";
pub const DEFAULT_TUNNEL_DOCUMENTS: [&str; 3] = [
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
    "AWS-StartSSHSession",
];
pub const DEFAULT_DENIED_THRESHOLD: usize = 3;
pub const DEFAULT_DENIED_WINDOW: &str = "1h";
pub const DEFAULT_FANOUT_TARGETS: usize = 3;
pub const DEFAULT_FANOUT_WINDOW: &str = "1h";
pub const DEFAULT_MAX_SESSION: &str = "8h";
pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_DAYS: [&str; 5] = ["Mon", "Tue", "Wed", "Thu", "Fri"];
pub const DEFAULT_HOURS_START: &str = "08:00";
pub const DEFAULT_HOURS_END: &str = "19:00";
pub const DEFAULT_OUTPUT: &str = "reports";
pub const DEFAULT_FAIL_ON: &str = "high";

/// How far back CloudTrail `LookupEvents` reaches.
pub const LOOKUP_EVENTS_HISTORY_DAYS: i64 = 90;

const MAX_CONCURRENCY: usize = 1000;
const MAX_LOOKUP_RATE: f64 = 100.0;

// ---------------------------------------------------------------------------
// The file as written.
// ---------------------------------------------------------------------------

/// The TOML config file as written, before validation: `None` = key absent.
/// Every table refuses unknown keys, so a typo cannot silently switch a rule off.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub scan: FileScan,
    #[serde(default)]
    pub accounts: FileAccounts,
    #[serde(default)]
    pub rules: FileRules,
    #[serde(default)]
    pub report: FileReport,
    /// The file this came from (set by the reader, not a key).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScan {
    pub regions: Option<Vec<String>>,
    pub event_names: Option<Vec<String>>,
    pub since: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub concurrency: Option<i64>,
    pub lookup_rate: Option<f64>,
    pub call_timeout: Option<String>,
    pub retry_deadline: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccounts {
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    pub session_duration: Option<String>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub organizational_units: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRules {
    pub approved_cidrs: Option<Vec<String>>,
    pub allowed_regions: Option<Vec<String>>,
    pub trusted_accounts: Option<Vec<String>>,
    pub tunnel_documents: Option<Vec<String>>,
    pub denied_threshold: Option<i64>,
    pub denied_window: Option<String>,
    pub fanout_targets: Option<i64>,
    pub fanout_window: Option<String>,
    pub max_session: Option<String>,
    #[serde(default)]
    pub business_hours: FileBusinessHours,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBusinessHours {
    pub timezone: Option<String>,
    pub days: Option<Vec<String>>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReport {
    pub output: Option<PathBuf>,
    pub formats: Option<Vec<String>>,
    pub fail_on: Option<String>,
    pub security_hub: Option<bool>,
    pub security_hub_region: Option<String>,
}

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

/// Where a value came from, so a message can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--concurrency`.
    Flag(&'static str),
    /// A key of the config file, e.g. `scan.concurrency` or `rules.approved_cidrs[2]`.
    Key { file: Option<PathBuf>, key: String },
    /// The built-in default of a key.
    Default(&'static str),
}

impl Origin {
    /// The origin of the `i`-th element of a list value.
    fn item(&self, i: usize) -> Origin {
        match self {
            Origin::Key { file, key } => Origin::Key {
                file: file.clone(),
                key: format!("{key}[{i}]"),
            },
            other => other.clone(),
        }
    }

    fn is_flag(&self) -> bool {
        matches!(self, Origin::Flag(_))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) => f.write_str(name),
            Origin::Key {
                file: Some(file),
                key,
            } => write!(f, "{key} in config file {}", file.display()),
            Origin::Key { file: None, key } => write!(f, "config key {key}"),
            Origin::Default(key) => write!(f, "the default of {key}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("config file {}{}: {message}; {fix}", file.display(), parse_location(*line, table.as_deref()))]
    Parse {
        file: PathBuf,
        line: Option<usize>,
        /// The `[table]` the line is in, when there is one.
        table: Option<String>,
        message: String,
        fix: &'static str,
    },
    #[error("{origin}: invalid value {value:?}: {problem}; {fix}")]
    Invalid {
        origin: Origin,
        value: String,
        problem: String,
        fix: String,
    },
    #[error("{first} and {second} cannot be used together; {fix}")]
    Conflict {
        first: Origin,
        second: Origin,
        fix: String,
    },
}

fn parse_location(line: Option<usize>, table: Option<&str>) -> String {
    match (line, table) {
        (Some(l), Some(t)) => format!(", line {l} (in {t})"),
        (Some(l), None) => format!(", line {l}"),
        (None, Some(t)) => format!(" (in {t})"),
        (None, None) => String::new(),
    }
}

fn invalid(
    origin: &Origin,
    value: impl fmt::Display,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.clone(),
        value: value.to_string(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

// ---------------------------------------------------------------------------
// Reading the file.
// ---------------------------------------------------------------------------

/// Parses the text of a config file; `file` is only used in messages.
pub fn parse_file_str(text: &str, file: &Path) -> Result<FileConfig, ConfigError> {
    match toml::from_str::<FileConfig>(text) {
        Ok(mut cfg) => {
            cfg.path = Some(file.to_path_buf());
            Ok(cfg)
        }
        Err(e) => {
            let (line, table, key) = match e.span() {
                Some(span) => {
                    let (line, table) = locate(text, span.start);
                    let key = key_on_line(text, line, table.as_deref());
                    (Some(line), table, key)
                }
                None => (None, None, None),
            };
            // One line, and a quoted key with control characters cannot
            // drive the terminal the message is printed to.
            let message: String = e
                .message()
                .trim()
                .chars()
                .map(|c| if c == '\n' { ' ' } else { c })
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            let fix = if message.starts_with("unknown field") {
                "check the spelling: config.example.toml lists every key"
            } else if message.starts_with("invalid type") {
                "durations, times and names are quoted strings, counts are numbers; see config.example.toml"
            } else {
                "see config.example.toml for the format"
            };
            // serde names the key of an unknown field, not of a wrongly typed
            // value: name it from the line, so the message says what to fix.
            let message = match key {
                Some(k) if !message.starts_with("unknown field") => format!("{k}: {message}"),
                _ => message,
            };
            Err(ConfigError::Parse {
                file: file.to_path_buf(),
                line,
                table,
                message,
                fix,
            })
        }
    }
}

/// The dotted key (`scan.concurrency`) assigned on 1-based `line`, when the line
/// is a plain `key = value`.
fn key_on_line(text: &str, line: usize, table: Option<&str>) -> Option<String> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !plain {
        return None;
    }
    Some(match table {
        Some(t) => format!("{}.{key}", t.trim_matches(|c| c == '[' || c == ']')),
        None => key.to_string(),
    })
}

/// The 1-based line of byte `offset`, and the last `[table]` header before it.
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let table = before
        .lines()
        .take(line.saturating_sub(1))
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .last()
        .map(|l| match l.find(']') {
            Some(end) => l[..=end].to_string(),
            None => l.to_string(),
        });
    (line, table)
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_file_str(&text, path)
}

// ---------------------------------------------------------------------------
// Merging and validation.
// ---------------------------------------------------------------------------

/// Picks the flag, else the file's key, remembering which one it was.
struct Layers<'a> {
    file: Option<&'a Path>,
}

impl Layers<'_> {
    fn key(&self, key: &str) -> Origin {
        Origin::Key {
            file: self.file.map(Path::to_path_buf),
            key: key.to_string(),
        }
    }

    fn pick<T>(
        &self,
        flag: Option<T>,
        flag_name: &'static str,
        file: Option<T>,
        key: &'static str,
    ) -> Option<(T, Origin)> {
        match (flag, file) {
            (Some(v), _) => Some((v, Origin::Flag(flag_name))),
            (None, Some(v)) => Some((v, self.key(key))),
            (None, None) => None,
        }
    }

    fn file_only<T>(&self, file: Option<T>, key: &'static str) -> Option<(T, Origin)> {
        file.map(|v| (v, self.key(key)))
    }

    /// The value and origin, or the default with `Origin::Default`.
    fn or_default<T>(picked: Option<(T, Origin)>, default: T, key: &'static str) -> (T, Origin) {
        picked.unwrap_or((default, Origin::Default(key)))
    }
}

/// Merges flags over the file over the defaults and validates the result.
/// `now` anchors `since` and the checks on the window.
pub fn resolve(
    flags: &FlagValues,
    file: Option<&FileConfig>,
    now: DateTime<Utc>,
) -> Result<Config, ConfigError> {
    let empty = FileConfig::default();
    let fc = file.unwrap_or(&empty);
    let l = Layers {
        file: fc.path.as_deref(),
    };

    let source = match &flags.source {
        Some(s) => parse_source(s, &Origin::Flag("--source"))?,
        None => Source::LookupEvents,
    };

    let scan = resolve_scan(flags, &fc.scan, &l, &source, now)?;
    let accounts = resolve_accounts(flags, &fc.accounts, &l)?;
    let rules = resolve_rules(&fc.rules, &l)?;
    let report = resolve_report(flags, &fc.report, &l)?;

    Ok(Config {
        scan: ScanConfig { source, ..scan },
        accounts,
        rules,
        report,
        baseline: flags.baseline.clone(),
        config_file: fc.path.clone().or_else(|| flags.config.clone()),
    })
}

fn resolve_scan(
    flags: &FlagValues,
    fs: &FileScan,
    l: &Layers<'_>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<ScanConfig, ConfigError> {
    let regions = match l.pick(
        flags.regions.clone(),
        "--regions",
        fs.regions.clone(),
        "scan.regions",
    ) {
        Some((list, origin)) => parse_region_selection(&list, &origin)?,
        None => RegionSelection::All,
    };

    let event_names = match l.file_only(fs.event_names.clone(), "scan.event_names") {
        Some((names, origin)) => parse_event_names(&names, &origin)?,
        None => crate::model::DEFAULT_EVENT_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    let window = resolve_window(flags, fs, l, source, now)?;

    let (concurrency, origin) = Layers::or_default(
        l.pick(
            flags.concurrency.map(|c| c as i64),
            "--concurrency",
            fs.concurrency,
            "scan.concurrency",
        ),
        DEFAULT_CONCURRENCY as i64,
        "scan.concurrency",
    );
    if !(1..=MAX_CONCURRENCY as i64).contains(&concurrency) {
        return Err(invalid(
            &origin,
            concurrency,
            format!("calls in flight must be from 1 to {MAX_CONCURRENCY}"),
            format!("use a number such as {DEFAULT_CONCURRENCY}"),
        ));
    }

    let (lookup_rate, origin) = Layers::or_default(
        l.pick(
            flags.lookup_rate,
            "--lookup-rate",
            fs.lookup_rate,
            "scan.lookup_rate",
        ),
        DEFAULT_LOOKUP_RATE,
        "scan.lookup_rate",
    );
    // Written this way so NaN is refused too.
    if !(lookup_rate > 0.0 && lookup_rate <= MAX_LOOKUP_RATE) {
        return Err(invalid(
            &origin,
            lookup_rate,
            format!(
                "LookupEvents calls per second per account and region must be above 0 and at most {MAX_LOOKUP_RATE}"
            ),
            "CloudTrail allows 2 per second; use 2.0",
        ));
    }

    let call_timeout = duration_key(
        l.file_only(fs.call_timeout.as_deref(), "scan.call_timeout"),
        DEFAULT_CALL_TIMEOUT,
        "scan.call_timeout",
    )?;
    let retry_deadline = duration_key(
        l.file_only(fs.retry_deadline.as_deref(), "scan.retry_deadline"),
        DEFAULT_RETRY_DEADLINE,
        "scan.retry_deadline",
    )?;

    Ok(ScanConfig {
        regions,
        event_names,
        window,
        concurrency: concurrency as usize,
        lookup_rate,
        call_timeout,
        retry_deadline,
        source: source.clone(),
    })
}

/// The window comes from the flags if any window flag is given (the file's
/// window is then ignored as a whole), else from the file, else `since = 7d`.
fn resolve_window(
    flags: &FlagValues,
    fs: &FileScan,
    l: &Layers<'_>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<TimeWindow, ConfigError> {
    type Part<'a> = Option<(&'a str, Origin)>;
    let from_flags = flags.since.is_some() || flags.start.is_some() || flags.end.is_some();
    let (since, start, end): (Part, Part, Part) = if from_flags {
        (
            flags.since.as_deref().map(|v| (v, Origin::Flag("--since"))),
            flags.start.as_deref().map(|v| (v, Origin::Flag("--start"))),
            flags.end.as_deref().map(|v| (v, Origin::Flag("--end"))),
        )
    } else {
        (
            fs.since.as_deref().map(|v| (v, l.key("scan.since"))),
            fs.start.as_deref().map(|v| (v, l.key("scan.start"))),
            fs.end.as_deref().map(|v| (v, l.key("scan.end"))),
        )
    };
    let either_fix = |o: &Origin| {
        if o.is_flag() {
            "give either --since DURATION, or --start TIME with an optional --end TIME".to_string()
        } else {
            "set either since, or start with an optional end".to_string()
        }
    };
    if let (Some((_, a)), Some((_, b))) = (&since, &start) {
        return Err(ConfigError::Conflict {
            first: a.clone(),
            second: b.clone(),
            fix: either_fix(a),
        });
    }
    if let (Some((_, a)), Some((_, b))) = (&since, &end) {
        return Err(ConfigError::Conflict {
            first: a.clone(),
            second: b.clone(),
            fix: either_fix(a),
        });
    }

    let (window, start_origin) = match (since, start, end) {
        (_, None, Some((v, origin))) => {
            let fix = if origin.is_flag() {
                "add --start TIME, or use --since DURATION"
            } else {
                "add start, or use since"
            };
            return Err(invalid(&origin, v, "an end needs a start", fix));
        }
        (_, Some((start_text, start_origin)), end) => {
            let start = parse_time(start_text, &start_origin)?;
            let end = match end {
                Some((v, origin)) => {
                    let end = parse_time(v, &origin)?;
                    if end <= start {
                        return Err(invalid(
                            &origin,
                            v,
                            format!("the end is not after the start ({})", rfc3339(start)),
                            "give an end later than the start",
                        ));
                    }
                    end
                }
                None => now,
            };
            if start > now {
                return Err(invalid(
                    &start_origin,
                    start_text,
                    format!("the start is in the future (now is {})", rfc3339(now)),
                    "give a start in the past",
                ));
            }
            (
                TimeWindow { start, end },
                (start_text.to_string(), start_origin),
            )
        }
        (since, None, None) => {
            let (text, origin) = since.unwrap_or((DEFAULT_SINCE, Origin::Default("scan.since")));
            let d = parse_duration(text).map_err(|problem| {
                invalid(
                    &origin,
                    text,
                    problem,
                    "write a duration such as 7d, 12h or 1h30m",
                )
            })?;
            if d.is_zero() {
                return Err(invalid(
                    &origin,
                    text,
                    "the window is empty",
                    "give a positive duration such as 7d",
                ));
            }
            let start = TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| {
                    invalid(
                        &origin,
                        text,
                        "reaches before the start of time",
                        "give a shorter duration",
                    )
                })?;
            (TimeWindow { start, end: now }, (text.to_string(), origin))
        }
    };

    if *source == Source::LookupEvents {
        let oldest = now - TimeDelta::days(LOOKUP_EVENTS_HISTORY_DAYS);
        if window.start < oldest {
            let (text, origin) = start_origin;
            return Err(invalid(
                &origin,
                text,
                format!(
                    "the window starts more than {LOOKUP_EVENTS_HISTORY_DAYS} days ago ({}), beyond what CloudTrail LookupEvents keeps",
                    rfc3339(window.start)
                ),
                "shorten the window to 90 days, or read trail files with --source DIR or --source s3://bucket/prefix, which reach further back",
            ));
        }
    }
    Ok(window)
}

fn resolve_accounts(
    flags: &FlagValues,
    fa: &FileAccounts,
    l: &Layers<'_>,
) -> Result<AccountsConfig, ConfigError> {
    let (role_name, origin) = Layers::or_default(
        l.pick(
            flags.role_name.clone(),
            "--role-name",
            fa.role_name.clone(),
            "accounts.role_name",
        ),
        DEFAULT_ROLE_NAME.to_string(),
        "accounts.role_name",
    );
    check_iam_name(
        &role_name,
        &origin,
        1,
        64,
        "+=,.@_-",
        "an IAM role name (without a path)",
    )?;

    let external_id = match l.pick(
        flags.external_id.clone(),
        "--external-id",
        fa.external_id.clone(),
        "accounts.external_id",
    ) {
        // An empty value means "none", so a flag can clear the file's id.
        Some((id, _)) if id.is_empty() => None,
        Some((id, origin)) => {
            check_iam_name(&id, &origin, 2, 1224, "+=,.@:/_-", "an STS external id")?;
            Some(id)
        }
        None => None,
    };

    let (session_name, origin) = Layers::or_default(
        l.file_only(fa.session_name.clone(), "accounts.session_name"),
        DEFAULT_SESSION_NAME.to_string(),
        "accounts.session_name",
    );
    check_iam_name(
        &session_name,
        &origin,
        2,
        64,
        "+=,.@_-",
        "an STS role session name",
    )?;

    let session_duration = duration_key(
        l.file_only(fa.session_duration.as_deref(), "accounts.session_duration"),
        DEFAULT_SESSION_DURATION,
        "accounts.session_duration",
    )?;
    if !(900..=43_200).contains(&session_duration.as_secs()) {
        let origin = l.key("accounts.session_duration");
        return Err(invalid(
            &origin,
            fa.session_duration.as_deref().unwrap_or_default(),
            "STS accepts role sessions from 15m to 12h",
            "use a duration from 15m to 12h, e.g. 1h",
        ));
    }

    let include = account_list(l.pick(
        flags.accounts.clone(),
        "--accounts",
        fa.include.clone(),
        "accounts.include",
    ))?;
    let exclude = account_list(l.pick(
        flags.exclude_accounts.clone(),
        "--exclude-accounts",
        fa.exclude.clone(),
        "accounts.exclude",
    ))?;

    let organizational_units = match l.pick(
        flags.ou.clone(),
        "--ou",
        fa.organizational_units.clone(),
        "accounts.organizational_units",
    ) {
        Some((list, origin)) => {
            let mut out = Vec::new();
            for (i, ou) in split_list(&list).into_iter().enumerate() {
                if !is_ou_id(&ou) {
                    return Err(invalid(
                        &origin.item(i),
                        &ou,
                        "not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)",
                        "copy the id from the Organizations console or `aws organizations list-roots`",
                    ));
                }
                push_unique(&mut out, ou);
            }
            out
        }
        None => Vec::new(),
    };

    Ok(AccountsConfig {
        role_name,
        external_id,
        session_name,
        session_duration,
        include,
        exclude,
        organizational_units,
    })
}

fn resolve_rules(fr: &FileRules, l: &Layers<'_>) -> Result<RuleConfig, ConfigError> {
    let mut approved_cidrs = Vec::new();
    if let Some((list, origin)) = l.file_only(fr.approved_cidrs.as_ref(), "rules.approved_cidrs") {
        for (i, text) in list.iter().enumerate() {
            let net = parse_cidr(text.trim()).ok_or_else(|| {
                invalid(
                    &origin.item(i),
                    text,
                    "not an IP network",
                    "write a CIDR such as \"203.0.113.0/24\" or \"2001:db8::/32\", or a single address",
                )
            })?;
            if !approved_cidrs.contains(&net) {
                approved_cidrs.push(net);
            }
        }
    }

    let mut allowed_regions = Vec::new();
    if let Some((list, origin)) = l.file_only(fr.allowed_regions.as_ref(), "rules.allowed_regions")
    {
        for (i, r) in list.iter().enumerate() {
            let r = r.trim();
            if !is_region_name(r) {
                return Err(invalid(
                    &origin.item(i),
                    r,
                    "not a region name",
                    "write region names such as \"us-east-1\"",
                ));
            }
            push_unique(&mut allowed_regions, r.to_string());
        }
    }

    let trusted_accounts =
        account_list(l.file_only(fr.trusted_accounts.clone(), "rules.trusted_accounts"))?;

    let tunnel_documents = match l.file_only(fr.tunnel_documents.as_ref(), "rules.tunnel_documents")
    {
        Some((list, origin)) => {
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let d = d.trim();
                if d.is_empty() {
                    return Err(invalid(
                        &origin.item(i),
                        d,
                        "an empty document name would match every document",
                        "remove the empty entry",
                    ));
                }
                push_unique(&mut out, d.to_string());
            }
            out
        }
        None => DEFAULT_TUNNEL_DOCUMENTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    let denied_threshold = count_key(
        l.file_only(fr.denied_threshold, "rules.denied_threshold"),
        DEFAULT_DENIED_THRESHOLD,
        "rules.denied_threshold",
        "denied calls before the flag fires",
    )?;
    let fanout_targets = count_key(
        l.file_only(fr.fanout_targets, "rules.fanout_targets"),
        DEFAULT_FANOUT_TARGETS,
        "rules.fanout_targets",
        "distinct targets allowed before the flag fires",
    )?;
    let denied_window = delta_key(
        l.file_only(fr.denied_window.as_deref(), "rules.denied_window"),
        DEFAULT_DENIED_WINDOW,
        "rules.denied_window",
    )?;
    let fanout_window = delta_key(
        l.file_only(fr.fanout_window.as_deref(), "rules.fanout_window"),
        DEFAULT_FANOUT_WINDOW,
        "rules.fanout_window",
    )?;
    let max_session = delta_key(
        l.file_only(fr.max_session.as_deref(), "rules.max_session"),
        DEFAULT_MAX_SESSION,
        "rules.max_session",
    )?;

    let business_hours = resolve_business_hours(&fr.business_hours, l)?;

    Ok(RuleConfig {
        approved_cidrs,
        allowed_regions,
        trusted_accounts,
        tunnel_documents,
        denied_threshold,
        denied_window,
        fanout_targets,
        fanout_window,
        max_session,
        business_hours,
    })
}

fn resolve_business_hours(
    fb: &FileBusinessHours,
    l: &Layers<'_>,
) -> Result<BusinessHours, ConfigError> {
    let (tz_text, origin) = Layers::or_default(
        l.file_only(fb.timezone.as_deref(), "rules.business_hours.timezone"),
        DEFAULT_TIMEZONE,
        "rules.business_hours.timezone",
    );
    let timezone = chrono_tz::Tz::from_str(tz_text.trim()).map_err(|_| {
        invalid(
            &origin,
            tz_text,
            "not an IANA time zone name",
            "use a name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\" (case matters)",
        )
    })?;

    let days = match l.file_only(fb.days.as_ref(), "rules.business_hours.days") {
        Some((list, origin)) => {
            if list.is_empty() {
                return Err(invalid(
                    &origin,
                    "[]",
                    "no business days would make every session off-hours",
                    "list at least one day, e.g. [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\"]",
                ));
            }
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let day = parse_day(d.trim()).ok_or_else(|| {
                    invalid(
                        &origin.item(i),
                        d,
                        "not a day name",
                        "use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
                    )
                })?;
                if !out.contains(&day) {
                    out.push(day);
                }
            }
            out
        }
        None => DEFAULT_DAYS.iter().filter_map(|d| parse_day(d)).collect(),
    };

    let (start_text, start_origin) = Layers::or_default(
        l.file_only(fb.start.as_deref(), "rules.business_hours.start"),
        DEFAULT_HOURS_START,
        "rules.business_hours.start",
    );
    let start = parse_hhmm(start_text, &start_origin)?;
    let (end_text, end_origin) = Layers::or_default(
        l.file_only(fb.end.as_deref(), "rules.business_hours.end"),
        DEFAULT_HOURS_END,
        "rules.business_hours.end",
    );
    let end = parse_hhmm(end_text, &end_origin)?;
    if start == end {
        return Err(invalid(
            &end_origin,
            end_text,
            "business hours that start and end at the same time are ambiguous",
            "give an end different from the start (an end before the start runs across midnight)",
        ));
    }

    Ok(BusinessHours {
        timezone,
        days,
        start,
        end,
    })
}

fn resolve_report(
    flags: &FlagValues,
    fr: &FileReport,
    l: &Layers<'_>,
) -> Result<ReportConfig, ConfigError> {
    let (output, origin) = Layers::or_default(
        l.pick(
            flags.output.clone(),
            "--output",
            fr.output.clone(),
            "report.output",
        ),
        PathBuf::from(DEFAULT_OUTPUT),
        "report.output",
    );
    if output.as_os_str().is_empty() {
        return Err(invalid(
            &origin,
            "",
            "the output folder is empty",
            "name a folder, e.g. reports",
        ));
    }

    let formats = match l.pick(
        flags.formats.clone(),
        "--format",
        fr.formats.clone(),
        "report.formats",
    ) {
        Some((list, origin)) => {
            let items = split_list(&list);
            if items.is_empty() {
                return Err(invalid(
                    &origin,
                    "",
                    "no report format",
                    "give json, csv, html, ocsf, or a list such as json,csv,html",
                ));
            }
            let mut out = Vec::new();
            for (i, f) in items.into_iter().enumerate() {
                let format = match f.to_ascii_lowercase().as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    "html" => Format::Html,
                    "ocsf" => Format::Ocsf,
                    _ => {
                        return Err(invalid(
                            &origin.item(i),
                            &f,
                            "not a report format",
                            "use json, csv, html or ocsf (comma-separated for several)",
                        ))
                    }
                };
                if !out.contains(&format) {
                    out.push(format);
                }
            }
            out.sort();
            out
        }
        None => DEFAULT_FORMATS.to_vec(),
    };

    let (fail_text, origin) = Layers::or_default(
        l.pick(
            flags.fail_on.clone(),
            "--fail-on",
            fr.fail_on.clone(),
            "report.fail_on",
        ),
        DEFAULT_FAIL_ON.to_string(),
        "report.fail_on",
    );
    let lowered = fail_text.trim().to_ascii_lowercase();
    let fail_on = if lowered == "none" {
        None
    } else {
        Some(Severity::parse(&lowered).ok_or_else(|| {
            invalid(
                &origin,
                &fail_text,
                "not a severity",
                "use info, low, medium, high, critical, or none (never fail on findings)",
            )
        })?)
    };

    let security_hub = resolve_security_hub(flags, fr, l)?;

    Ok(ReportConfig {
        output,
        formats,
        fail_on,
        security_hub,
    })
}

fn resolve_security_hub(
    flags: &FlagValues,
    fr: &FileReport,
    l: &Layers<'_>,
) -> Result<Option<SecurityHubConfig>, ConfigError> {
    let on = l
        .pick(
            flags.security_hub,
            "--security-hub",
            fr.security_hub,
            "report.security_hub",
        )
        .is_some_and(|(on, _)| on);
    let region = match l.pick(
        flags.security_hub_region.clone(),
        "--security-hub-region",
        fr.security_hub_region.clone(),
        "report.security_hub_region",
    ) {
        Some((r, origin)) => {
            let r = r.trim().to_string();
            if !is_region_name(&r) {
                return Err(invalid(
                    &origin,
                    &r,
                    "not a region name",
                    "write the Security Hub region such as us-east-1",
                ));
            }
            if !on {
                return Err(invalid(
                    &origin,
                    &r,
                    "a Security Hub region without the import",
                    "add --security-hub (or report.security_hub = true), or drop the region",
                ));
            }
            Some(r)
        }
        None => None,
    };
    Ok(on.then_some(SecurityHubConfig { region }))
}

// ---------------------------------------------------------------------------
// Value parsers.
// ---------------------------------------------------------------------------

/// Parses `90s`, `90m`, `1h`, `7d`, or a combination in decreasing units
/// such as `1h30m` or `1d12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let s = text.trim();
    if s.is_empty() {
        return Err("a duration is empty".into());
    }
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (s, m, h or d)".into());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        rest = &rest[digits..];
        let unit = rest
            .chars()
            .next()
            .ok_or_else(|| "a number without a unit (s, m, h or d)".to_string())?;
        let idx = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("unknown unit {unit:?} (use s, m, h or d)"))?;
        if last_unit.is_some_and(|last| idx <= last) {
            return Err("units must go from larger to smaller, each once (e.g. 1h30m)".into());
        }
        last_unit = Some(idx);
        rest = &rest[unit.len_utf8()..];
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too large".to_string())?;
    }
    Ok(Duration::from_secs(total))
}

fn parse_duration_at(text: &str, origin: &Origin) -> Result<Duration, ConfigError> {
    parse_duration(text).map_err(|problem| {
        invalid(
            origin,
            text,
            problem,
            "write a duration such as 90s, 90m, 1h or 7d",
        )
    })
}

/// A positive duration from the file, or the default.
fn duration_key(
    picked: Option<(&str, Origin)>,
    default: &str,
    key: &'static str,
) -> Result<Duration, ConfigError> {
    let (text, origin) = Layers::or_default(picked, default, key);
    let d = parse_duration_at(text, &origin)?;
    if d.is_zero() {
        return Err(invalid(
            &origin,
            text,
            "must be longer than zero",
            format!("use e.g. {default}"),
        ));
    }
    Ok(d)
}

fn delta_key(
    picked: Option<(&str, Origin)>,
    default: &str,
    key: &'static str,
) -> Result<TimeDelta, ConfigError> {
    let d = duration_key(picked.clone(), default, key)?;
    TimeDelta::from_std(d).map_err(|_| {
        let (text, origin) = Layers::or_default(picked, default, key);
        invalid(
            &origin,
            text,
            "the duration is too large",
            format!("use e.g. {default}"),
        )
    })
}

fn count_key(
    picked: Option<(i64, Origin)>,
    default: usize,
    key: &'static str,
    what: &str,
) -> Result<usize, ConfigError> {
    let (n, origin) = Layers::or_default(picked, default as i64, key);
    if n < 1 {
        return Err(invalid(
            &origin,
            n,
            format!("the number of {what} must be at least 1"),
            format!("use e.g. {default}"),
        ));
    }
    usize::try_from(n).map_err(|_| invalid(&origin, n, "too large", format!("use e.g. {default}")))
}

fn parse_time(text: &str, origin: &Origin) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            invalid(
                origin,
                text,
                format!("not an RFC 3339 time ({e})"),
                "write a time such as 2025-02-19T20:13:49Z",
            )
        })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_hhmm(text: &str, origin: &Origin) -> Result<NaiveTime, ConfigError> {
    let t = text.trim();
    let ok = t.len() == 5 && t.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(t, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            invalid(
                origin,
                text,
                "not a time of day in HH:MM (24-hour)",
                "write e.g. \"08:00\" or \"19:30\"",
            )
        })
}

fn parse_day(text: &str) -> Option<Weekday> {
    match text.to_ascii_lowercase().as_str() {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// A CIDR, or a single address taken as a host network.
fn parse_cidr(text: &str) -> Option<IpNet> {
    IpNet::from_str(text)
        .ok()
        .or_else(|| std::net::IpAddr::from_str(text).ok().map(IpNet::from))
}

/// Flags may come as `a,b` in one value or as repeated values; the file as a list.
fn split_list(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn push_unique(out: &mut Vec<String>, v: String) {
    if !out.contains(&v) {
        out.push(v);
    }
}

fn parse_region_selection(
    list: &[String],
    origin: &Origin,
) -> Result<RegionSelection, ConfigError> {
    let items = split_list(list);
    if items.is_empty() {
        return Err(invalid(
            origin,
            "",
            "no region",
            "list regions such as us-east-1,eu-west-1, or all",
        ));
    }
    if items.iter().any(|r| r.eq_ignore_ascii_case("all")) {
        if items.len() > 1 {
            return Err(invalid(
                origin,
                items.join(","),
                "`all` cannot be mixed with region names",
                "give either all, or a list of regions",
            ));
        }
        return Ok(RegionSelection::All);
    }
    let mut out = Vec::new();
    for (i, r) in items.into_iter().enumerate() {
        if !is_region_name(&r) {
            return Err(invalid(
                &origin.item(i),
                &r,
                "not a region name",
                "write region names such as us-east-1, or all",
            ));
        }
        push_unique(&mut out, r);
    }
    Ok(RegionSelection::List(out))
}

/// Loose shape check: `us-east-1`, `us-gov-west-1`, `ap-southeast-5`.
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].len() <= 2
}

fn parse_event_names(list: &[String], origin: &Origin) -> Result<Vec<String>, ConfigError> {
    if list.is_empty() {
        return Err(invalid(
            origin,
            "[]",
            "no event name to look up",
            "list e.g. [\"StartSession\", \"ResumeSession\", \"TerminateSession\"]",
        ));
    }
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let n = n.trim();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                &origin.item(i),
                n,
                "not a CloudTrail event name",
                "use names such as StartSession",
            ));
        }
        push_unique(&mut out, n.to_string());
    }
    Ok(out)
}

fn account_list(picked: Option<(Vec<String>, Origin)>) -> Result<Vec<String>, ConfigError> {
    let Some((list, origin)) = picked else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, id) in split_list(&list).into_iter().enumerate() {
        if !is_account_id(&id) {
            return Err(invalid(
                &origin.item(i),
                &id,
                "an AWS account id is exactly 12 digits",
                "write the id with its leading zeros, e.g. 012345678901",
            ));
        }
        push_unique(&mut out, id);
    }
    Ok(out)
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `ou-<root part 4-32>-<8-32>` or a root `r-<4-32>`, lowercase letters and digits.
pub fn is_ou_id(s: &str) -> bool {
    let part = |p: &str, min: usize| {
        (min..=32).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        match rest.split_once('-') {
            Some((a, b)) => part(a, 4) && part(b, 8),
            None => false,
        }
    } else if let Some(rest) = s.strip_prefix("r-") {
        part(rest, 4)
    } else {
        false
    }
}

/// IAM / STS names: `min..=max` characters, alphanumerics or `extra`.
fn check_iam_name(
    s: &str,
    origin: &Origin,
    min: usize,
    max: usize,
    extra: &str,
    what: &str,
) -> Result<(), ConfigError> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(invalid(
            origin,
            s,
            format!("{what} has {min} to {max} characters"),
            format!("give {what} of {min} to {max} characters"),
        ));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        return Err(invalid(
            origin,
            s,
            format!("{what} cannot contain {bad:?}"),
            format!("use only letters, digits and {extra}"),
        ));
    }
    Ok(())
}

fn parse_source(text: &str, origin: &Origin) -> Result<Source, ConfigError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(
            origin,
            text,
            "no source given",
            "give a folder of trail files or s3://bucket/prefix",
        ));
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("s3://") {
        let rest = &t["s3://".len()..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(invalid(
                origin,
                text,
                format!("{bucket:?} is not an S3 bucket name"),
                "write s3://bucket/prefix with a bucket of 3 to 63 lowercase letters, digits, dots or hyphens",
            ));
        }
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        });
    }
    // Any other URL scheme is a mistake, not a folder name.
    if let Some((scheme, _)) = t.split_once("://") {
        if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                origin,
                text,
                format!("{scheme}:// is not a supported source"),
                "give a local folder of trail files or s3://bucket/prefix",
            ));
        }
    }
    Ok(Source::Dir(PathBuf::from(t)))
}

// ---------------------------------------------------------------------------
// Digest.
// ---------------------------------------------------------------------------

/// SHA-256 (hex) of a canonical rendering of what decides a report's content:
/// the scan, accounts and rules settings, the source and the baseline. The
/// concrete window (recorded in the report's `run.window`, and different on
/// every `--since` run), the output folder, the formats and the config file's
/// path are left out, so two runs of the same config have the same digest.
pub fn config_digest(cfg: &Config) -> String {
    hex::encode(Sha256::digest(canonical_text(cfg).as_bytes()))
}

fn canonical_text(cfg: &Config) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("ssm-session-audit/config/v1\n");
    let mut kv = |k: &str, v: String| {
        // Debug-quoting keeps separators inside values unambiguous.
        let _ = writeln!(s, "{k}={v:?}");
    };
    let list = |v: &[String]| v.join("\u{1f}");
    let sc = &cfg.scan;
    kv(
        "scan.regions",
        match &sc.regions {
            RegionSelection::All => "all".into(),
            RegionSelection::List(l) => list(l),
        },
    );
    kv("scan.event_names", list(&sc.event_names));
    kv("scan.concurrency", sc.concurrency.to_string());
    kv("scan.lookup_rate", format!("{:?}", sc.lookup_rate));
    kv("scan.call_timeout", sc.call_timeout.as_millis().to_string());
    kv(
        "scan.retry_deadline",
        sc.retry_deadline.as_millis().to_string(),
    );
    kv(
        "scan.source",
        match &sc.source {
            Source::LookupEvents => "lookup-events".into(),
            Source::Dir(p) => format!("dir:{}", p.display()),
            Source::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        },
    );
    let a = &cfg.accounts;
    kv("accounts.role_name", a.role_name.clone());
    kv(
        "accounts.external_id",
        a.external_id.clone().unwrap_or_default(),
    );
    kv("accounts.session_name", a.session_name.clone());
    kv(
        "accounts.session_duration",
        a.session_duration.as_secs().to_string(),
    );
    kv("accounts.include", list(&a.include));
    kv("accounts.exclude", list(&a.exclude));
    kv(
        "accounts.organizational_units",
        list(&a.organizational_units),
    );
    let r = &cfg.rules;
    let cidrs: Vec<String> = r.approved_cidrs.iter().map(|c| c.to_string()).collect();
    kv("rules.approved_cidrs", list(&cidrs));
    kv("rules.allowed_regions", list(&r.allowed_regions));
    kv("rules.trusted_accounts", list(&r.trusted_accounts));
    kv("rules.tunnel_documents", list(&r.tunnel_documents));
    kv("rules.denied_threshold", r.denied_threshold.to_string());
    kv(
        "rules.denied_window",
        r.denied_window.num_seconds().to_string(),
    );
    kv("rules.fanout_targets", r.fanout_targets.to_string());
    kv(
        "rules.fanout_window",
        r.fanout_window.num_seconds().to_string(),
    );
    kv("rules.max_session", r.max_session.num_seconds().to_string());
    let b = &r.business_hours;
    kv(
        "rules.business_hours.timezone",
        b.timezone.name().to_string(),
    );
    let days: Vec<String> = b.days.iter().map(|d| d.to_string()).collect();
    kv("rules.business_hours.days", list(&days));
    kv(
        "rules.business_hours.start",
        b.start.format("%H:%M").to_string(),
    );
    kv(
        "rules.business_hours.end",
        b.end.format("%H:%M").to_string(),
    );
    kv(
        "report.fail_on",
        cfg.report
            .fail_on
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "none".into()),
    );
    kv(
        "baseline",
        cfg.baseline
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    fn file(text: &str) -> FileConfig {
        parse_file_str(text, Path::new("audit.toml")).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn defaults() -> Config {
        resolve(&FlagValues::default(), None, now()).unwrap()
    }

    #[test]
    fn defaults_match_product() {
        let c = defaults();
        assert_eq!(c.scan.regions, RegionSelection::All);
        assert_eq!(
            c.scan.event_names,
            strings(&["StartSession", "ResumeSession", "TerminateSession"])
        );
        assert_eq!(c.scan.window.end, now());
        assert_eq!(c.scan.window.start, now() - TimeDelta::days(7));
        assert_eq!(c.scan.concurrency, 32);
        assert_eq!(c.scan.lookup_rate, 2.0);
        assert_eq!(c.scan.call_timeout, Duration::from_secs(20));
        assert_eq!(c.scan.retry_deadline, Duration::from_secs(300));
        assert_eq!(c.scan.source, Source::LookupEvents);
        assert_eq!(c.accounts.role_name, "SessionAuditRole");
        assert_eq!(c.accounts.external_id, None);
        assert_eq!(c.accounts.session_name, "ssm-session-audit");
        assert_eq!(c.accounts.session_duration, Duration::from_secs(3600));
        assert!(c.accounts.include.is_empty() && c.accounts.exclude.is_empty());
        assert!(c.accounts.organizational_units.is_empty());
        assert!(c.rules.approved_cidrs.is_empty() && c.rules.allowed_regions.is_empty());
        assert_eq!(c.rules.tunnel_documents, strings(&DEFAULT_TUNNEL_DOCUMENTS));
        assert_eq!(c.rules.denied_threshold, 3);
        assert_eq!(c.rules.denied_window, TimeDelta::hours(1));
        assert_eq!(c.rules.fanout_targets, 3);
        assert_eq!(c.rules.fanout_window, TimeDelta::hours(1));
        assert_eq!(c.rules.max_session, TimeDelta::hours(8));
        let bh = &c.rules.business_hours;
        assert_eq!(bh.timezone, chrono_tz::UTC);
        assert_eq!(
            bh.days,
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(bh.start, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(bh.end, NaiveTime::from_hms_opt(19, 0, 0).unwrap());
        assert_eq!(c.report.output, PathBuf::from("reports"));
        assert_eq!(
            c.report.formats,
            vec![Format::Json, Format::Csv, Format::Html]
        );
        assert_eq!(c.report.fail_on, Some(Severity::High));
        assert_eq!(c.baseline, None);
        assert_eq!(c.config_file, None);
    }

    #[test]
    fn example_file_sets_every_key_to_its_default() {
        let text = include_str!("../config.example.toml");
        let fc = parse_file_str(text, Path::new("config.example.toml")).unwrap();
        // Destructured in full, so a new key fails to compile here until the
        // example documents it.
        let FileScan {
            regions,
            event_names,
            since,
            start,
            end,
            concurrency,
            lookup_rate,
            call_timeout,
            retry_deadline,
        } = &fc.scan;
        assert!(regions.is_some() && event_names.is_some() && since.is_some());
        assert!(
            start.is_none() && end.is_none(),
            "start/end are alternatives to since"
        );
        assert!(concurrency.is_some() && lookup_rate.is_some());
        assert!(call_timeout.is_some() && retry_deadline.is_some());
        let FileAccounts {
            role_name,
            external_id,
            session_name,
            session_duration,
            include,
            exclude,
            organizational_units,
        } = &fc.accounts;
        assert!(role_name.is_some() && external_id.is_some() && session_name.is_some());
        assert!(session_duration.is_some() && include.is_some() && exclude.is_some());
        assert!(organizational_units.is_some());
        let FileRules {
            approved_cidrs,
            allowed_regions,
            trusted_accounts,
            tunnel_documents,
            denied_threshold,
            denied_window,
            fanout_targets,
            fanout_window,
            max_session,
            business_hours,
        } = &fc.rules;
        assert!(approved_cidrs.is_some() && allowed_regions.is_some());
        assert!(trusted_accounts.is_some() && tunnel_documents.is_some());
        assert!(denied_threshold.is_some() && denied_window.is_some());
        assert!(fanout_targets.is_some() && fanout_window.is_some() && max_session.is_some());
        let FileBusinessHours {
            timezone,
            days,
            start,
            end,
        } = business_hours;
        assert!(timezone.is_some() && days.is_some() && start.is_some() && end.is_some());
        let FileReport {
            output,
            formats,
            fail_on,
            security_hub,
            security_hub_region: _,
        } = &fc.report;
        assert!(output.is_some() && formats.is_some() && fail_on.is_some());
        assert!(security_hub.is_some());

        let from_example = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
        let expected = Config {
            config_file: Some(PathBuf::from("config.example.toml")),
            ..defaults()
        };
        assert_eq!(from_example, expected);
    }

    #[test]
    fn flag_wins_over_file_wins_over_default() {
        let fc = file(
            "[scan]\nconcurrency = 8\nlookup_rate = 1.5\nregions = [\"eu-west-1\"]\n\
             [accounts]\nrole_name = \"FileRole\"\nexternal_id = \"file-id\"\n\
             [report]\nfail_on = \"low\"\nformats = [\"csv\"]\noutput = \"from-file\"\n",
        );
        // File over default.
        let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
        assert_eq!(c.scan.concurrency, 8);
        assert_eq!(c.scan.lookup_rate, 1.5);
        assert_eq!(
            c.scan.regions,
            RegionSelection::List(strings(&["eu-west-1"]))
        );
        assert_eq!(c.accounts.role_name, "FileRole");
        assert_eq!(c.accounts.external_id.as_deref(), Some("file-id"));
        assert_eq!(c.report.fail_on, Some(Severity::Low));
        assert_eq!(c.report.formats, vec![Format::Csv]);
        assert_eq!(c.report.output, PathBuf::from("from-file"));
        // Untouched keys keep their defaults.
        assert_eq!(c.rules, defaults().rules);
        assert_eq!(c.config_file, Some(PathBuf::from("audit.toml")));

        // Flag over file.
        let flags = FlagValues {
            concurrency: Some(100),
            lookup_rate: Some(0.5),
            regions: Some(strings(&["all"])),
            role_name: Some("FlagRole".into()),
            external_id: Some(String::new()),
            fail_on: Some("none".into()),
            formats: Some(strings(&["json", "csv"])),
            output: Some(PathBuf::from("from-flag")),
            ..FlagValues::default()
        };
        let c = resolve(&flags, Some(&fc), now()).unwrap();
        assert_eq!(c.scan.concurrency, 100);
        assert_eq!(c.scan.lookup_rate, 0.5);
        assert_eq!(c.scan.regions, RegionSelection::All);
        assert_eq!(c.accounts.role_name, "FlagRole");
        assert_eq!(
            c.accounts.external_id, None,
            "an empty flag clears the file's id"
        );
        assert_eq!(c.report.fail_on, None);
        assert_eq!(c.report.formats, vec![Format::Json, Format::Csv]);
        assert_eq!(c.report.output, PathBuf::from("from-flag"));
    }

    #[test]
    fn window_flags_replace_the_file_window_as_a_whole() {
        let fc = file("[scan]\nsince = \"2d\"\n");
        let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
        assert_eq!(c.scan.window.start, now() - TimeDelta::days(2));
        // A flag start with the file's since is not a conflict: the flags win.
        let flags = FlagValues {
            start: Some("2025-02-27T00:00:00Z".into()),
            ..FlagValues::default()
        };
        let c = resolve(&flags, Some(&fc), now()).unwrap();
        assert_eq!(
            c.scan.window.start,
            "2025-02-27T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(c.scan.window.end, now(), "end defaults to now");
        let flags = FlagValues {
            since: Some("1h30m".into()),
            ..FlagValues::default()
        };
        let c = resolve(&flags, Some(&fc), now()).unwrap();
        assert_eq!(c.scan.window.start, now() - TimeDelta::minutes(90));
    }

    #[test]
    fn start_and_end_with_offsets_become_utc() {
        let flags = FlagValues {
            start: Some("2025-02-20T10:00:00+02:00".into()),
            end: Some("2025-02-21T00:00:00Z".into()),
            ..FlagValues::default()
        };
        let c = resolve(&flags, None, now()).unwrap();
        assert_eq!(
            c.scan.window.start,
            "2025-02-20T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            c.scan.window.end,
            "2025-02-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn ninety_days_is_allowed_and_trail_files_reach_further() {
        let flags = FlagValues {
            since: Some("90d".into()),
            ..FlagValues::default()
        };
        assert!(resolve(&flags, None, now()).is_ok());
        let flags = FlagValues {
            since: Some("400d".into()),
            source: Some("./trail".into()),
            ..FlagValues::default()
        };
        let c = resolve(&flags, None, now()).unwrap();
        assert_eq!(c.scan.source, Source::Dir(PathBuf::from("./trail")));
        assert_eq!(c.scan.window.start, now() - TimeDelta::days(400));
    }

    #[test]
    fn source_parsing() {
        let parse = |s: &str| parse_source(s, &Origin::Flag("--source")).unwrap();
        assert_eq!(
            parse("s3://org-trail/logs/AWSLogs/"),
            Source::S3 {
                bucket: "org-trail".into(),
                prefix: "logs/AWSLogs".into()
            }
        );
        assert_eq!(
            parse("s3://org-trail"),
            Source::S3 {
                bucket: "org-trail".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("/var/trail"),
            Source::Dir(PathBuf::from("/var/trail"))
        );
        assert_eq!(
            parse("trail files"),
            Source::Dir(PathBuf::from("trail files"))
        );
        assert_eq!(defaults().scan.source, Source::LookupEvents);
    }

    #[test]
    fn lists_accept_commas_and_drop_duplicates() {
        let flags = FlagValues {
            regions: Some(strings(&[
                "us-east-1,eu-west-1",
                "us-east-1",
                "us-gov-west-1",
            ])),
            accounts: Some(strings(&["111111111111, 222222222222"])),
            ou: Some(strings(&["ou-ab12-cdefgh34", "r-ab12"])),
            formats: Some(strings(&["csv,json,csv", "OCSF,html"])),
            ..FlagValues::default()
        };
        let c = resolve(&flags, None, now()).unwrap();
        assert_eq!(
            c.scan.regions,
            RegionSelection::List(strings(&["us-east-1", "eu-west-1", "us-gov-west-1"]))
        );
        assert_eq!(
            c.accounts.include,
            strings(&["111111111111", "222222222222"])
        );
        assert_eq!(
            c.accounts.organizational_units,
            strings(&["ou-ab12-cdefgh34", "r-ab12"])
        );
        assert_eq!(
            c.report.formats,
            vec![Format::Json, Format::Csv, Format::Html, Format::Ocsf]
        );
    }

    #[test]
    fn rule_values_are_parsed() {
        let fc = file(
            "[rules]\napproved_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\", \"198.51.100.7\"]\n\
             denied_window = \"30m\"\nmax_session = \"1d12h\"\n\
             [rules.business_hours]\ntimezone = \"Europe/Paris\"\ndays = [\"sat\", \"Sun\", \"Sat\"]\n\
             start = \"22:00\"\nend = \"06:00\"\n",
        );
        let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
        let cidrs: Vec<String> = c
            .rules
            .approved_cidrs
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            cidrs,
            strings(&["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"])
        );
        assert_eq!(c.rules.denied_window, TimeDelta::minutes(30));
        assert_eq!(c.rules.max_session, TimeDelta::hours(36));
        let bh = &c.rules.business_hours;
        assert_eq!(bh.timezone, chrono_tz::Europe::Paris);
        assert_eq!(bh.days, vec![Weekday::Sat, Weekday::Sun]);
        assert!(bh.end < bh.start, "overnight hours are kept as written");
    }

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap().as_secs();
        assert_eq!(ok("90s"), 90);
        assert_eq!(ok("90m"), 5400);
        assert_eq!(ok("1h"), 3600);
        assert_eq!(ok("7d"), 604_800);
        assert_eq!(ok("1h30m"), 5400);
        assert_eq!(ok("1d2h3m4s"), 93_784);
        for bad in [
            "",
            "7",
            "d",
            "1h1h",
            "30m1h",
            "1.5h",
            "-1h",
            "1 h",
            "99999999999999999999d",
            "1w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn id_shapes() {
        assert!(is_region_name("us-east-1") && is_region_name("ap-southeast-5"));
        assert!(is_region_name("us-gov-west-1") && is_region_name("il-central-1"));
        for bad in [
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-x",
            "u-east-1",
            "us--1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
        assert!(is_ou_id("ou-ab12-cdefgh34") && is_ou_id("r-ab12"));
        for bad in [
            "ou-ab12",
            "OU-ab12-cdefgh34",
            "r-",
            "ou-ab12-short",
            "x-ab12",
        ] {
            assert!(!is_ou_id(bad), "{bad}");
        }
        assert!(is_account_id("012345678901"));
        assert!(!is_account_id("12345678901") && !is_account_id("01234567890a"));
    }

    #[test]
    fn digest_is_stable_and_tracks_what_changes_the_report() {
        let a = defaults();
        let d = config_digest(&a);
        assert_eq!(d.len(), 64);
        assert!(d.bytes().all(|b| b.is_ascii_hexdigit()));
        // A later run of the same config has the same digest...
        let later = resolve(&FlagValues::default(), None, now() + TimeDelta::days(1)).unwrap();
        assert_eq!(config_digest(&later), d);
        // ...another output folder too...
        let mut out = a.clone();
        out.report.output = PathBuf::from("elsewhere");
        assert_eq!(config_digest(&out), d);
        // ...but a rule change does not.
        let mut rule = a.clone();
        rule.rules.denied_threshold = 4;
        assert_ne!(config_digest(&rule), d);
        let mut region = a.clone();
        region.scan.regions = RegionSelection::List(vec!["us-east-1".into()]);
        assert_ne!(config_digest(&region), d);
    }
}
