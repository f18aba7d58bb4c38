//! What the rules are told: thresholds, lists and business hours (the config
//! builds it).

use chrono::{NaiveTime, TimeDelta, Weekday};
use ipnet::IpNet;

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
    /// `no-reason` fires on a StartSession without a reason.
    pub require_reason: bool,
}
