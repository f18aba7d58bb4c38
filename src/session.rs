//! TEMPORARY STUB (replaced by the logic branch).
use crate::model::{Session, SessionEvent};
pub fn build_sessions(_events: &[SessionEvent]) -> Vec<Session> {
    Vec::new()
}
