//! The config file as written, and reading it: `parse_file_str` is the
//! I/O-free twin of `load_file` that the tests call.

use super::*;

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
    #[serde(default)]
    pub athena: FileAthena,
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
    pub session_manager: Option<bool>,
    pub settle: Option<String>,
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
    pub require_reason: Option<bool>,
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
    pub object_lock_days: Option<i64>,
    pub security_hub: Option<bool>,
    pub security_hub_region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAthena {
    pub table: Option<String>,
    pub workgroup: Option<String>,
    pub output: Option<String>,
    pub region: Option<String>,
    pub catalog: Option<String>,
    pub max_scan: Option<String>,
    pub trail: Option<String>,
}

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
pub(super) fn key_on_line(text: &str, line: usize, table: Option<&str>) -> Option<String> {
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
pub(super) fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
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
