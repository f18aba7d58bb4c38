//! TEMPORARY STUB (replaced by the logic branch).
use crate::config::RuleConfig;
use crate::model::{Finding, FlagCount, Session, SessionEvent, Severity};
pub struct Baseline;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct BaselineError;
impl Baseline {
    pub fn from_report_json(_t: &str) -> Result<Baseline, BaselineError> {
        Ok(Baseline)
    }
}
pub fn evaluate(
    _e: &[SessionEvent],
    _s: &[Session],
    _r: &RuleConfig,
    _b: Option<&Baseline>,
) -> Vec<Finding> {
    Vec::new()
}
pub fn summarize(_f: &[Finding], _a: &str) -> (Vec<FlagCount>, Option<Severity>) {
    (Vec::new(), None)
}
