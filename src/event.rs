//! TEMPORARY STUB (replaced by the logic branch).
use crate::model::SessionEvent;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct ParseError;
pub fn parse_record(
    _record: &str,
    _account_id: &str,
    _region: &str,
) -> Result<SessionEvent, ParseError> {
    Err(ParseError)
}
