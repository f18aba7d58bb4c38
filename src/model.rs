//! The one data model every source and every output shares.
//!
//! Everything here is plain data: no SDK types, no I/O. A `SessionEvent` is one
//! CloudTrail record of a Session Manager call; `Session`s join them; `Finding`s
//! are what the rules say about them; `AccountCoverage` says what was (not) read.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Schema id written into every report.
pub const REPORT_SCHEMA: &str = "ssm-session-audit/report/v1";

/// The Session Manager calls the tool reads by default.
pub const DEFAULT_EVENT_NAMES: [&str; 3] = ["StartSession", "ResumeSession", "TerminateSession"];

/// One CloudTrail record of a Session Manager call, normalized.
///
/// The fields added after the first v1 reports (`actor`, `access_key_id`,
/// `reason`, `parse_error`) default when absent, so an older report still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The account whose CloudTrail holds the record (the partition's account).
    pub account_id: String,
    pub region: String,
    pub event_time: DateTime<Utc>,
    pub event_name: String,
    pub event_id: String,
    /// `responseElements.sessionId` for StartSession (and ResumeSession),
    /// `requestParameters.sessionId` for Resume/Terminate.
    pub session_id: Option<String>,
    /// `userIdentity.type`: `AssumedRole`, `IAMUser`, `Root`, `FederatedUser`, ...
    pub principal_type: String,
    /// `userIdentity.arn` (may be empty for some identity types).
    pub principal_arn: String,
    /// Who really acted (PRODUCT.md "actor"), see [`crate::event::actor_of`]: what
    /// bursts and the baseline key on. Empty only in hand-built or old events,
    /// where [`SessionEvent::actor`] stands in.
    #[serde(default)]
    pub actor: String,
    pub principal_account_id: Option<String>,
    /// IAM user name, or the role session name of an assumed role.
    pub user_name: Option<String>,
    /// `sessionContext.sessionIssuer.arn` for assumed roles.
    pub session_issuer_arn: Option<String>,
    /// `userIdentity.accessKeyId`: `AKIA…` is an IAM user's long-term key,
    /// `ASIA…` a temporary one (assumed roles, console sign-in, GetSessionToken).
    #[serde(default)]
    pub access_key_id: Option<String>,
    pub mfa_authenticated: Option<bool>,
    /// The caller is an EC2 instance's own role (`ec2RoleDelivery` present, or
    /// the role session name is an instance id).
    pub instance_role: bool,
    /// An IP address, an AWS service name (`ssm.amazonaws.com`) or `AWS Internal`.
    pub source_ip: Option<String>,
    /// Caller-chosen text: never trust it, never print it raw.
    pub user_agent: Option<String>,
    /// `requestParameters.target`; for a denial without request parameters, the
    /// instance or managed node its `errorMessage` names.
    pub target: Option<String>,
    /// `requestParameters.documentName`, or the document a denial's
    /// `errorMessage` names.
    pub document_name: Option<String>,
    /// StartSession's `requestParameters.reason` (`aws ssm start-session --reason`).
    /// Caller-chosen text, like the user agent.
    #[serde(default)]
    pub reason: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Set when the record could not be read in full: what was wrong with it. The
    /// other fields hold what could be read (for LookupEvents at least its own
    /// `EventId`, `EventName`, `EventTime`, `Username`, `Resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl SessionEvent {
    /// A call that did not succeed: AWS answered it with an error code, a denial
    /// or any other (`TargetNotConnected`, `InvalidDocument`, throttling, ...).
    pub fn is_failed(&self) -> bool {
        self.error_code.is_some()
    }

    /// A call refused for lack of permission ([`is_access_denial`]); other
    /// failures are not denials.
    pub fn is_denied(&self) -> bool {
        self.error_code.as_deref().is_some_and(is_access_denial)
    }

    /// Who acted: the parsed actor, or the principal where none was derived.
    pub fn actor(&self) -> &str {
        if self.actor.is_empty() {
            self.principal()
        } else {
            &self.actor
        }
    }

    /// The record was read in full.
    pub fn is_whole(&self) -> bool {
        self.parse_error.is_none()
    }

    /// The principal as the report names it: the ARN, or the type when there is none.
    pub fn principal(&self) -> &str {
        if self.principal_arn.is_empty() {
            &self.principal_type
        } else {
            &self.principal_arn
        }
    }
}

/// An error code that means "not allowed": `AccessDenied`, `AccessDeniedException`
/// and any other code with `AccessDenied` in it, EC2's `UnauthorizedOperation` and
/// the AWS-wide `NotAuthorized` (with a `Client.` prefix or an `Exception` suffix
/// or not). Anything else (`TargetNotConnected`, `InvalidDocument`,
/// `ThrottlingException`, ...) is a failure, not a denial.
pub fn is_access_denial(code: &str) -> bool {
    let code = code.trim();
    let code = code.strip_prefix("Client.").unwrap_or(code);
    let base = code.strip_suffix("Exception").unwrap_or(code);
    code.contains("AccessDenied") || matches!(base, "UnauthorizedOperation" | "NotAuthorized")
}

/// A ResumeSession call within a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub time: DateTime<Utc>,
    pub event_id: String,
    pub source_ip: Option<String>,
}

/// Start, resumes and end of one Session Manager session, joined on the session id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub account_id: String,
    pub region: String,
    pub principal_arn: String,
    pub principal_type: String,
    /// Who acted (PRODUCT.md "actor"); absent from reports written before it.
    #[serde(default)]
    pub actor: String,
    pub target: Option<String>,
    pub document_name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub start_event_id: Option<String>,
    pub start_source_ip: Option<String>,
    pub resumes: Vec<Resume>,
    /// The TerminateSession call's time (CloudTrail).
    pub end_time: Option<DateTime<Utc>>,
    pub end_event_id: Option<String>,
    /// Seconds from start to the real end ([`Session::real_end_time`]), when both are known.
    pub duration_seconds: Option<i64>,
    /// Every distinct source IP seen on the session, sorted.
    pub source_ips: Vec<String>,
    /// Every event id of the session, sorted.
    pub event_ids: Vec<String>,
    // What Session Manager's own records add (absent where they were not read
    // or do not know the session; see `ssm::join`).
    /// StartSession's reason, else the one Session Manager's history holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Session Manager's status: `Connected`, `Terminated`, `Failed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// In Session Manager's `Active` list when the scan asked ([`Session::observed_at`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    /// When Session Manager's records were read, for an active session's duration so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    /// The real end: TerminateSession's time, else Session Manager's `EndDate`
    /// (a session closed by `exit` or an idle timeout has no TerminateSession).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_end_time: Option<DateTime<Utc>>,
    /// Where [`Session::real_end_time`] comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_source: Option<EndSource>,
    /// `Standard` or `JustInTime` (just-in-time node access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_type: Option<String>,
    /// Session Manager's `Owner`: the ARN that started the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whether a transcript of the session can exist, and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every flag of PRODUCT.md's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    RootSession,
    IamUserSession,
    InstanceRoleCaller,
    CrossAccountPrincipal,
    UnapprovedSourceIp,
    OffHours,
    PortForwarding,
    DeniedAttempts,
    TargetFanout,
    ResumeFromNewIp,
    UnusualRegion,
    NewPrincipal,
    LongSession,
    SessionLoggingOff,
    ActiveSession,
    NoReason,
}

impl Flag {
    pub const ALL: [Flag; 16] = [
        Flag::RootSession,
        Flag::IamUserSession,
        Flag::InstanceRoleCaller,
        Flag::CrossAccountPrincipal,
        Flag::UnapprovedSourceIp,
        Flag::OffHours,
        Flag::PortForwarding,
        Flag::DeniedAttempts,
        Flag::TargetFanout,
        Flag::ResumeFromNewIp,
        Flag::UnusualRegion,
        Flag::NewPrincipal,
        Flag::LongSession,
        Flag::SessionLoggingOff,
        Flag::ActiveSession,
        Flag::NoReason,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::RootSession => "root-session",
            Flag::IamUserSession => "iam-user-session",
            Flag::InstanceRoleCaller => "instance-role-caller",
            Flag::CrossAccountPrincipal => "cross-account-principal",
            Flag::UnapprovedSourceIp => "unapproved-source-ip",
            Flag::OffHours => "off-hours",
            Flag::PortForwarding => "port-forwarding",
            Flag::DeniedAttempts => "denied-attempts",
            Flag::TargetFanout => "target-fanout",
            Flag::ResumeFromNewIp => "resume-from-new-ip",
            Flag::UnusualRegion => "unusual-region",
            Flag::NewPrincipal => "new-principal",
            Flag::LongSession => "long-session",
            Flag::SessionLoggingOff => "session-logging-off",
            Flag::ActiveSession => "active-session",
            Flag::NoReason => "no-reason",
        }
    }

    /// The default severity of PRODUCT.md's table.
    pub fn default_severity(self) -> Severity {
        match self {
            Flag::RootSession => Severity::Critical,
            Flag::IamUserSession => Severity::Medium,
            Flag::InstanceRoleCaller => Severity::High,
            Flag::CrossAccountPrincipal => Severity::Medium,
            Flag::UnapprovedSourceIp => Severity::High,
            Flag::OffHours => Severity::Low,
            Flag::PortForwarding => Severity::Medium,
            Flag::DeniedAttempts => Severity::High,
            Flag::TargetFanout => Severity::Medium,
            Flag::ResumeFromNewIp => Severity::Medium,
            Flag::UnusualRegion => Severity::Medium,
            Flag::NewPrincipal => Severity::Medium,
            Flag::LongSession => Severity::Low,
            Flag::SessionLoggingOff => Severity::High,
            Flag::ActiveSession => Severity::Info,
            Flag::NoReason => Severity::Low,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the rules found, with the records that prove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub flag: Flag,
    pub severity: Severity,
    pub account_id: String,
    pub region: String,
    /// Who acted (PRODUCT.md "actor"); absent from reports written before it.
    #[serde(default)]
    pub actor: String,
    /// The exact principal of the first call the finding cites.
    pub principal_arn: String,
    pub session_id: Option<String>,
    /// Sorted event ids.
    pub event_ids: Vec<String>,
    /// One line a human can read.
    pub detail: String,
}

/// How an account of the organization was covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatus {
    /// Every requested region read to the last page (or not enabled).
    Complete,
    /// Some region failed.
    Partial,
    /// No credentials, or every region failed.
    Failed,
    /// Suspended, closed or excluded: not scanned, with the reason.
    Skipped,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Complete => "complete",
            AccountStatus::Partial => "partial",
            AccountStatus::Failed => "failed",
            AccountStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionStatus {
    Ok,
    /// An opt-in region the account has not enabled: it can hold no activity.
    NotEnabled,
    Failed,
}

impl RegionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionStatus::Ok => "ok",
            RegionStatus::NotEnabled => "not-enabled",
            RegionStatus::Failed => "failed",
        }
    }
}

/// What was read in one partition (an account and a region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCoverage {
    pub status: RegionStatus,
    /// Distinct session events kept.
    pub events: u64,
    /// LookupEvents pages read (successful calls); 0 for the other sources.
    pub pages: u64,
    /// Trail files read (unreadable ones included); 0 for the other sources.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files: u64,
    /// Calls that were repeated after a throttle, 5xx or timeout.
    pub retries: u64,
    pub throttles: u64,
    /// Records that could not be parsed; counted, never silently dropped.
    pub malformed: u64,
    /// Records returned twice (same event id), kept once.
    pub duplicates: u64,
    /// Events read again that an earlier report of the same `--since last`
    /// chain already holds: left out of this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub already_reported: u64,
    pub error: Option<String>,
    /// Event ids of the records that could not be parsed, so an auditor can look them up.
    #[serde(default)]
    pub malformed_event_ids: Vec<String>,
    /// Session Manager's own records of the partition (live scans only): its
    /// preferences, history and what disagrees with CloudTrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_manager: Option<SessionManagerPosture>,
}

impl RegionCoverage {
    pub fn new(status: RegionStatus) -> Self {
        RegionCoverage {
            status,
            events: 0,
            pages: 0,
            files: 0,
            retries: 0,
            throttles: 0,
            malformed: 0,
            duplicates: 0,
            already_reported: 0,
            error: None,
            malformed_event_ids: Vec::new(),
            session_manager: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCoverage {
    pub status: AccountStatus,
    /// Why the account was skipped or failed.
    pub reason: Option<String>,
    /// Keyed by region name.
    pub regions: BTreeMap<String, RegionCoverage>,
}

impl AccountCoverage {
    /// The account status that follows from its regions (PRODUCT.md "Coverage").
    pub fn from_regions(regions: BTreeMap<String, RegionCoverage>) -> Self {
        let failed = regions
            .values()
            .filter(|r| r.status == RegionStatus::Failed)
            .count();
        let usable = regions
            .values()
            .filter(|r| r.status != RegionStatus::NotEnabled)
            .count();
        let (status, reason) = if failed == 0 {
            (AccountStatus::Complete, None)
        } else if failed == usable {
            (
                AccountStatus::Failed,
                Some("every region failed".to_string()),
            )
        } else {
            (
                AccountStatus::Partial,
                Some(format!("{failed} of {} regions failed", regions.len())),
            )
        };
        AccountCoverage {
            status,
            reason,
            regions,
        }
    }
}

/// An account of the organization, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// `State` from Organizations (`ACTIVE`, `SUSPENDED`, `CLOSED`, ...).
    pub state: String,
}

/// A count of one flag in one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagCount {
    pub flag: Flag,
    pub severity: Severity,
    pub count: u64,
}

/// One account's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReport {
    pub account_id: String,
    pub account_name: String,
    pub state: String,
    pub coverage: AccountCoverage,
    pub events: u64,
    pub sessions: u64,
    pub principals: u64,
    pub flags: Vec<FlagCount>,
    pub max_severity: Option<Severity>,
}

/// A time window, half-open: `[start, end)`. An event at exactly `start` is in
/// it, one at exactly `end` is not, so back-to-back windows never hold an event
/// twice. (CloudTrail's `LookupEvents` `EndTime` is inclusive: the live source
/// drops what it returns at exactly `end`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// `start <= t < end`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// Account id → region → a value: what differs per partition.
pub type PartitionMap<T> = BTreeMap<String, BTreeMap<String, T>>;

/// `run.window` of a report: what was read, and until when it is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunWindow {
    /// Where every partition not named in `partition_starts` starts.
    pub start: DateTime<Utc>,
    /// Exclusive.
    pub end: DateTime<Utc>,
    /// Events before this had reached CloudTrail when the run read it. After it,
    /// some may still arrive (event history lags a few minutes, some events
    /// more; see `scan.settle`): the next `--since last` run reads again from here.
    #[serde(default)]
    pub settled_until: DateTime<Utc>,
    /// Partitions that start elsewhere than `start` (`--since last`): earlier, to
    /// read again what an earlier run failed to read; or later, where an earlier
    /// run had already read them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_starts: PartitionMap<DateTime<Utc>>,
    /// Accounts whose regions not named in `partition_starts` start here: an
    /// earlier run could not read them and could not say which regions they
    /// have (no role, no region list).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_starts: BTreeMap<String, DateTime<Utc>>,
}

impl RunWindow {
    /// Where `account`'s `region` starts.
    pub fn start_of(&self, account: &str, region: &str) -> DateTime<Utc> {
        start_in(
            &self.partition_starts,
            &self.account_starts,
            self.start,
            account,
            region,
        )
    }
}

/// Where `account`'s `region` starts: its own start, else its account's, else `default`.
pub fn start_in(
    partition_starts: &PartitionMap<DateTime<Utc>>,
    account_starts: &BTreeMap<String, DateTime<Utc>>,
    default: DateTime<Utc>,
    account: &str,
    region: &str,
) -> DateTime<Utc> {
    partition_starts
        .get(account)
        .and_then(|r| r.get(region))
        .or_else(|| account_starts.get(account))
        .copied()
        .unwrap_or(default)
}

/// An event an earlier report already holds, by id and time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportedEvent {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
}

/// `run.continuation`: everything the next `--since last` run needs to go on
/// from this one without missing or repeating an event. It is in the report
/// (and covered by `SHA256SUMS`), never in hidden state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// Where the next run starts every partition not in `partition_starts`.
    pub start: DateTime<Utc>,
    /// Partitions the next run starts elsewhere: earlier where this run failed
    /// to read them (from this run's own start), later where it read them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_starts: PartitionMap<DateTime<Utc>>,
    /// Accounts this run did not read in full without naming every region it
    /// left unread (AssumeRole failed, or the account's regions could not be
    /// listed, under `--regions all`): their regions not in
    /// `partition_starts` start here, this run's own start for the account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_starts: BTreeMap<String, DateTime<Utc>>,
    /// Events this report (or an earlier one) holds at or after the next run's
    /// start of their partition: the next run reads them again and leaves them
    /// out. They are the unsettled tail, and whatever a failed partition gave.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reported: PartitionMap<Vec<ReportedEvent>>,
    /// The Start and Resume events of sessions still open at the end of this
    /// run (their last call within a day), so the next run can join the calls
    /// it reads to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_sessions: Vec<SessionEvent>,
}

/// `run.previous`: the run a `--since last` run continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousRun {
    /// The folder, or the run's `s3://bucket/prefix/RUN/`.
    pub location: String,
    pub started_at: DateTime<Utc>,
    pub window: TimeWindow,
    pub settled_until: DateTime<Utc>,
    pub complete: bool,
    /// Events read again that it (or a run before it) already reported.
    #[serde(default)]
    pub already_reported: u64,
    /// Calls of sessions it left open that this run joined its own calls to.
    #[serde(default)]
    pub joined_events: u64,
}

/// The `run` header of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub tool_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub window: RunWindow,
    pub regions: Vec<String>,
    pub event_names: Vec<String>,
    /// `lookup-events`, or the trail files' folder / S3 prefix.
    pub source: String,
    pub organization_id: Option<String>,
    pub caller_arn: Option<String>,
    /// SHA-256 of the effective config, so two reports can be compared.
    pub config_digest: String,
    /// True only when no account is `partial` or `failed` and nothing else
    /// kept the run from reading everything in scope (see `incomplete_reasons`).
    pub complete: bool,
    /// Every reason the run is not complete, one line each; empty when it is.
    #[serde(default)]
    pub incomplete_reasons: Vec<String>,
    /// Set when the run was interrupted (SIGINT/SIGTERM) before it finished.
    pub interrupted: bool,
    /// Counters: calls, throttles, retries, ...
    pub stats: RunStats,
    /// For a trail-file source: files and bytes read, bad files (named), days
    /// without files. Absent for CloudTrail lookups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<serde_json::Value>,
    /// For the Athena source: query ids and states, the estimate, bytes
    /// scanned and their cost, the partitions without any trail file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena: Option<serde_json::Value>,
    /// Session Manager's own records across the run (live scans): what was read,
    /// what was not and why. Not reading them never makes the run incomplete:
    /// they add to CloudTrail, they are not its coverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_manager: Option<SessionManagerRun>,
    /// `--since last`: the run this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousRun>,
    /// What the next `--since last` run needs (absent only in reports of
    /// versions that did not write it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
    /// What `--security-hub` did; absent when it was not asked for. A failed
    /// import makes the run incomplete (`complete` false), with the reason here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<SecurityHubImport>,
}

/// The findings' import into AWS Security Hub (ASFF `BatchImportFindings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityHubImport {
    pub region: String,
    /// `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`.
    pub product_arn: String,
    /// Findings of the report sent for import.
    pub findings: u64,
    /// Findings Security Hub accepted (created or updated).
    pub imported: u64,
    /// Findings Security Hub refused, each with its reason.
    pub failed: Vec<SecurityHubFailure>,
    /// Why the import stopped before every finding was sent, if it did.
    pub error: Option<String>,
}

impl SecurityHubImport {
    /// Every finding was accepted.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.failed.is_empty() && self.imported == self.findings
    }
}

/// One `FailedFindings` entry of `BatchImportFindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityHubFailure {
    /// The ASFF `Id` of the finding.
    pub id: String,
    pub error_code: String,
    pub error_message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub accounts_total: u64,
    pub accounts_scanned: u64,
    pub partitions: u64,
    pub calls: u64,
    pub pages: u64,
    /// Trail files read (the files source).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files: u64,
    pub throttles: u64,
    pub retries: u64,
    pub events: u64,
    pub malformed: u64,
    pub duplicates: u64,
    /// Events an earlier report of the `--since last` chain already holds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub already_reported: u64,
}

/// The whole report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run: RunInfo,
    pub accounts: Vec<AccountReport>,
    pub findings: Vec<Finding>,
    pub sessions: Vec<Session>,
    pub events: Vec<SessionEvent>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// ------------------------------------------------ Session Manager's own records

/// Where a session's real end comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndSource {
    /// A TerminateSession call (CloudTrail).
    TerminateSession,
    /// Session Manager's history (`EndDate`).
    SessionManager,
}

/// Whether a transcript of a session can exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TranscriptStatus {
    /// The settings that applied send it to S3 and/or CloudWatch Logs.
    Recorded,
    /// No transcript can exist: the settings that applied log nowhere.
    None,
    /// A tunnel (port forwarding, SSH): Session Manager never transcribes it.
    NotCaptured,
    /// Cannot be told (settings not readable, a parameterized document, ...).
    Unknown,
}

/// A session's transcript, as the posture tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    pub status: TranscriptStatus,
    /// `s3://bucket/prefix`, `cloudwatch:log-group`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    /// The session document whose settings applied.
    pub document: String,
    /// One line: why this status.
    pub why: String,
}

/// Where transcripts go under a document's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Logging {
    #[serde(rename = "s3")]
    S3,
    #[serde(rename = "cloudwatch")]
    CloudWatch,
    #[serde(rename = "s3+cloudwatch")]
    S3AndCloudWatch,
    /// Neither: no transcript.
    #[serde(rename = "none")]
    None,
    /// Not known (not read, or a value the document leaves to its parameters).
    #[serde(rename = "unknown")]
    Unknown,
}

impl Logging {
    pub fn as_str(self) -> &'static str {
        match self {
            Logging::S3 => "s3",
            Logging::CloudWatch => "cloudwatch",
            Logging::S3AndCloudWatch => "s3+cloudwatch",
            Logging::None => "none",
            Logging::Unknown => "unknown",
        }
    }
}

/// How reading one of Session Manager's records went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadStatus {
    /// Read in full.
    Read,
    /// The preferences document does not exist: preferences were never saved,
    /// the defaults apply, and they log nothing (`GetDocument` said `InvalidDocument`).
    NeverSaved,
    /// Another session document that does not exist (any more).
    NotFound,
    /// The audit role may not read it (`AccessDenied…`). Never "no logging".
    NotReadable,
    /// The region is not enabled for the account.
    NotEnabled,
    /// Throttled past the deadline, an answer that is not Session Manager's, ...
    Failed,
    /// The run was interrupted first.
    NotRead,
}

impl ReadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadStatus::Read => "read",
            ReadStatus::NeverSaved => "never-saved",
            ReadStatus::NotFound => "not-found",
            ReadStatus::NotReadable => "not-readable",
            ReadStatus::NotEnabled => "not-enabled",
            ReadStatus::Failed => "failed",
            ReadStatus::NotRead => "not-read",
        }
    }

    /// Its content is known (a document that was never saved is known to be the defaults).
    pub fn known(self) -> bool {
        matches!(self, ReadStatus::Read | ReadStatus::NeverSaved)
    }
}

/// A session document's settings (`GetDocument`, its `inputs`): the region's
/// preferences `SSM-SessionManagerRunShell`, or another document a session used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPosture {
    pub name: String,
    pub status: ReadStatus,
    /// Why it could not be read, and what to grant when it is a permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `Standard_Stream`, `InteractiveCommands`, `NonInteractiveCommands`, `Port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
    /// The document carries session preferences of its own (`inputs`).
    #[serde(default)]
    pub has_inputs: bool,
    pub logging: Logging,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_encryption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_log_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_encryption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_streaming: Option<bool>,
    /// KMS key that encrypts session data between client and node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<String>,
}

impl DocumentPosture {
    /// A document whose content is not known, with the reason.
    pub fn unknown(name: &str, status: ReadStatus, error: Option<String>) -> Self {
        DocumentPosture {
            name: name.to_string(),
            status,
            error,
            session_type: None,
            has_inputs: false,
            logging: Logging::Unknown,
            s3_bucket: None,
            s3_key_prefix: None,
            s3_encryption: None,
            cloudwatch_log_group: None,
            cloudwatch_encryption: None,
            cloudwatch_streaming: None,
            kms_key_id: None,
            idle_timeout_minutes: None,
            max_duration_minutes: None,
            run_as_enabled: None,
            run_as_user: None,
        }
    }
}

/// Which of Session Manager's lists a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionState {
    Active,
    History,
}

/// One session as `DescribeSessions` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account_id: String,
    pub region: String,
    pub session_id: String,
    pub state: SessionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_name: Option<String>,
    /// The ARN that started the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Caller-chosen text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<String>,
}

/// How the session history of a partition was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRead {
    pub status: ReadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `InvokedAfter` of the `History` listing: the window's start, at most 30 days back.
    pub since: DateTime<Utc>,
    /// Sessions in the `Active` list (connected, or disconnected but resumable).
    pub active: u64,
    /// Sessions in the `History` list since [`HistoryRead::since`].
    pub history: u64,
    pub pages: u64,
}

/// Which side of a discrepancy knows the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KnownBy {
    /// Session Manager's records hold it; CloudTrail has no StartSession for it.
    #[serde(rename = "session-manager")]
    SessionManager,
    /// CloudTrail has its StartSession; Session Manager's records do not hold it.
    #[serde(rename = "cloudtrail")]
    CloudTrail,
}

/// A session one record knows and the other does not, inside the time both cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub session_id: String,
    pub known_by: KnownBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// The owner (Session Manager) or principal (CloudTrail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Session Manager's own records of one partition: the posture (where
/// transcripts go) and the session history, read with the audit role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionManagerPosture {
    /// When Session Manager was asked.
    pub read_at: DateTime<Utc>,
    /// One line: where transcripts go, or why that is not known.
    pub summary: String,
    /// Both the preferences and the history were read.
    pub readable: bool,
    /// The region's preferences (`SSM-SessionManagerRunShell`).
    pub preferences: DocumentPosture,
    /// Other session documents the partition's sessions used (tunnels excluded:
    /// they are never transcribed), sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentPosture>,
    pub history: HistoryRead,
    /// Where CloudTrail and Session Manager were compared (both read in full,
    /// inside the 30 days history keeps); `None`: not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<TimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discrepancies: Vec<Discrepancy>,
    pub calls: u64,
    pub retries: u64,
    pub throttles: u64,
    /// The sessions as read, consumed by the join (they reach the report as
    /// sessions' fields and discrepancies, not twice).
    #[serde(skip)]
    pub records: Vec<SessionRecord>,
}

/// Session Manager's records across the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionManagerRun {
    /// Partitions whose preferences and history were read in full.
    pub partitions_read: u64,
    /// `account/region: why` for every partition whose records were not read in full.
    pub not_read: Vec<String>,
    /// `account/region` where the preferences log nowhere.
    pub logging_off: Vec<String>,
    pub discrepancies: u64,
    /// Sessions in Session Manager's `Active` lists.
    pub active_sessions: u64,
}
