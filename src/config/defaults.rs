//! Every default (PRODUCT.md; config.example.toml shows each one).

pub const DEFAULT_SINCE: &str = "7d";
pub const DEFAULT_LOOKUP_RATE: f64 = 2.0;
pub const DEFAULT_CALL_TIMEOUT: &str = "20s";
pub const DEFAULT_RETRY_DEADLINE: &str = "5m";
/// CloudTrail shows most events within about 5 minutes, some later: a window's
/// last 15 minutes are not settled, and the next `--since last` run reads them again.
pub const DEFAULT_SETTLE: &str = "15m";
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

/// Object Lock retention of S3 evidence: at most 100 years.
pub(super) const MAX_OBJECT_LOCK_DAYS: i64 = 36_500;

pub(super) const MAX_CONCURRENCY: usize = 1000;
pub(super) const MAX_LOOKUP_RATE: f64 = 100.0;
/// One call every 100 s: slower would outlast any retry deadline.
pub(super) const MIN_LOOKUP_RATE: f64 = 0.01;
