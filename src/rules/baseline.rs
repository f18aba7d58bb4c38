//! `--baseline`: the principals of an earlier report, for `new-principal`.

use super::*;

/// The principals of an earlier report, for `new-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    principals: BTreeSet<String>,
}

/// Why a baseline report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("baseline has no `events` array: is it a report.json written by ssm-session-audit?")]
    NoEvents,
}

impl Baseline {
    /// Reads `events[].principal_arn` of a `report.json`; every other field is
    /// ignored and may be missing.
    pub fn from_report_json(text: &str) -> Result<Baseline, BaselineError> {
        let value: Value = serde_json::from_str(text).map_err(|e| BaselineError::NotJson {
            reason: e.to_string().chars().take(120).collect(),
        })?;
        let events = value
            .get("events")
            .and_then(Value::as_array)
            .ok_or(BaselineError::NoEvents)?;
        Ok(Baseline::from_principals(events.iter().filter_map(|e| {
            e.get("principal_arn")
                .and_then(Value::as_str)
                .map(str::to_string)
        })))
    }

    pub fn from_principals<I, S>(principals: I) -> Baseline
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Baseline {
            principals: principals
                .into_iter()
                .map(Into::into)
                .filter(|p: &String| !p.is_empty())
                .collect(),
        }
    }

    pub fn contains(&self, principal_arn: &str) -> bool {
        self.principals.contains(principal_arn)
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}
