//! Config errors: each names where the bad value came from (a flag, a file key,
//! a default), the value, and how to fix it.

use super::*;

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
    pub(super) fn item(&self, i: usize) -> Origin {
        match self {
            Origin::Key { file, key } => Origin::Key {
                file: file.clone(),
                key: format!("{key}[{i}]"),
            },
            other => other.clone(),
        }
    }

    pub(super) fn is_flag(&self) -> bool {
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

pub(super) fn parse_location(line: Option<usize>, table: Option<&str>) -> String {
    match (line, table) {
        (Some(l), Some(t)) => format!(", line {l} (in {t})"),
        (Some(l), None) => format!(", line {l}"),
        (None, Some(t)) => format!(" (in {t})"),
        (None, None) => String::new(),
    }
}

pub(super) fn invalid(
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
