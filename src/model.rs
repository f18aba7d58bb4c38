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
    /// StartSession's `requestParameters.reason`: caller-chosen text.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub end_time: Option<DateTime<Utc>>,
    pub end_event_id: Option<String>,
    /// Seconds from start to end, when both are known.
    pub duration_seconds: Option<i64>,
    /// Every distinct source IP seen on the session, sorted.
    pub source_ips: Vec<String>,
    /// Every event id of the session, sorted.
    pub event_ids: Vec<String>,
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
}

impl Flag {
    pub const ALL: [Flag; 13] = [
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
