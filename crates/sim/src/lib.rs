//! A simulated AWS organization, served over loopback HTTP.
//!
//! One in-process server speaks the real wire protocols of Organizations (JSON 1.1),
//! STS (query/XML), CloudTrail `LookupEvents` and Session Manager's
//! `DescribeSessions` / `GetDocument` (JSON 1.1), so the real AWS SDK
//! clients run against it unchanged (endpoint override, static credentials). The
//! `demo` command, the end-to-end tests and the benchmark all use it. With
//! `trail_root` it also serves a trail tree as S3 and CloudTrail `ListPublicKeys`.
//!
//! Records are generated deterministically from `(seed, account, region)` on demand,
//! so even a 10,000-account organization costs only its account list in memory.
//! [`SimHandle::ground_truth`] says which event ids a complete scan must find;
//! [`SimHandle::ssm_truth`] what Session Manager's records hold, derived from
//! the same plan (every successful StartSession is a session there).
//!
//! This crate is test machinery (`publish = false`): the product uses it only for
//! `demo` and `simulate` (its default `demo` feature), the tests, examples and
//! benchmarks as a dev-dependency. It shares no code with the product, so it
//! cannot share the product's mistakes by construction; [`trail_gen`] writes trail
//! trees for the files source the same way.

mod calls;
mod data;
mod org;
#[cfg(test)]
mod resolver_tests;
mod rng;
mod server;
mod ssm_data;
pub mod trail_gen;

/// The Session Manager calls a scan reads by default (the product's own list,
/// restated here so the simulator does not depend on the product).
pub const DEFAULT_EVENT_NAMES: [&str; 3] = ["StartSession", "ResumeSession", "TerminateSession"];

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use data::HOSTILE_AGENT;
pub use server::SimHandle;
pub use server::TRAIL_BUCKET;

/// A partition (account and region) with many records, to force many pages.
#[derive(Debug, Clone, PartialEq)]
pub struct HeavyPartition {
    pub account_index: usize,
    pub region: String,
    /// Session events (Start/Resume/Terminate) in the partition.
    pub events: usize,
}

/// How many records a `LookupEvents` page holds (never more than the call's `MaxResults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupPaging {
    /// As many as `MaxResults` allows, like CloudTrail.
    #[default]
    Full,
    /// At most this many (at least 1).
    Fixed(usize),
    /// A random size in `0..=MaxResults` per call, seeded by the request serial: pages
    /// of any size, empty ones with a `NextToken` included, to test a client's paging.
    Random,
}

/// A session call planted at an exact time (on a window's bound, say), which
/// LookupEvents shows only from `visible_from` on when that is set: CloudTrail's
/// late delivery, on the simulator's clock ([`SimHandle::set_clock`]). Ground
/// truth holds it whatever the clock says. Its time must lie in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedCall {
    pub account_index: usize,
    pub region: String,
    pub time: DateTime<Utc>,
    /// `StartSession`, `ResumeSession` or `TerminateSession`.
    pub name: String,
    pub event_id: String,
    /// The session it belongs to (a Start's `responseElements.sessionId`).
    pub session_id: String,
    pub visible_from: Option<DateTime<Utc>>,
}

/// How a partition set to fail answers LookupEvents ([`SimHandle::fail_partition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionFault {
    /// Every call: `AccessDeniedException`.
    Always,
    /// The first page of each lookup is served; every call with a `NextToken` fails.
    AfterFirstPage,
}

/// Credentials the simulator issued on `AssumeRole`, so tests can prove they never
/// reach a log, a report or an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSecret {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Injected failures. Rates are fractions of calls in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// Accounts whose audit role refuses AssumeRole.
    pub denied_accounts: Vec<usize>,
    pub suspended_accounts: Vec<usize>,
    pub closed_accounts: Vec<usize>,
    /// (account index, region) pairs the account has not enabled.
    pub disabled_regions: Vec<(usize, String)>,
    /// LookupEvents answered with 500 InternalFailure / 503 ServiceUnavailable.
    pub error_rate: f64,
    /// LookupEvents answered `slow_delay` late (beyond a client's timeout).
    pub slow_rate: f64,
    pub slow_delay: Duration,
    /// LookupEvents whose connection is cut in the middle of the body.
    pub reset_rate: f64,
    /// Issued credentials expire after min(DurationSeconds, this).
    pub credential_ttl: Option<Duration>,
    /// Organizations calls answered with TooManyRequestsException.
    pub org_throttle_rate: f64,
    /// (account index, region): LookupEvents answers the NextToken it was sent,
    /// forever (a proxy or a broken endpoint; CloudTrail never does).
    pub repeat_token_partitions: Vec<(usize, String)>,
    /// (account index, region): every LookupEvents answer is a 200 without `Events`.
    pub missing_events_partitions: Vec<(usize, String)>,
    /// LookupEvents answered with a 200 without `Events`, at this rate (retried).
    pub missing_events_rate: f64,
    /// (account index, region): UnrecognizedClientException although the region is
    /// enabled (a revoked key, STS v1 tokens in an opt-in region).
    pub unrecognized_partitions: Vec<(usize, String)>,
    /// ListAccounts answers the NextToken it was sent, after its first page.
    pub org_repeat_token: bool,
    /// ListAccounts answers a 200 without `Accounts`, at this rate (retried).
    pub org_missing_accounts_rate: f64,
    /// account:ListRegions is refused (no trusted access for Account Management).
    pub list_regions_denied: bool,
    /// Accounts whose audit role may not call ec2:DescribeRegions.
    pub describe_regions_denied: Vec<usize>,
    /// The trail bucket's ListObjectsV2 answers, after a first truncated page,
    /// the continuation token it was sent.
    pub s3_repeat_token: bool,
}

/// A region's Session Manager preferences (`SSM-SessionManagerRunShell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimPreferences {
    /// Saved, sending transcripts to S3 and CloudWatch Logs, encrypted (the default).
    #[default]
    S3AndCloudWatch,
    /// Saved, to CloudWatch Logs only.
    CloudWatchOnly,
    /// Saved, naming neither an S3 bucket nor a log group.
    LogsNowhere,
    /// Never saved: `GetDocument` answers `InvalidDocument`.
    NeverSaved,
}

/// How Session Manager's own records behave.
#[derive(Debug, Clone, PartialEq)]
pub struct SsmSim {
    /// (account index, region, preferences) where they are not the default.
    pub preferences: Vec<(usize, String, SimPreferences)>,
    /// The most sessions one `DescribeSessions` page holds (never more than `MaxResults`).
    pub page_size: Option<usize>,
    /// `DescribeSessions`/`GetDocument` calls per second per (account, region);
    /// the bucket holds max(1, rate). Beyond: `ThrottlingException`.
    pub rate: f64,
    /// Accounts whose audit role lacks `ssm:DescribeSessions` and `ssm:GetDocument`.
    pub denied_accounts: Vec<usize>,
    /// Fraction of Session Manager calls answered 500 `InternalServerError`.
    pub error_rate: f64,
    /// `DescribeSessions` answers every page with a `NextToken` already given
    /// (a listing that never ends, as a broken proxy might).
    pub repeat_next_token: bool,
    /// `DescribeSessions` answers 200 without the `Sessions` member.
    pub omit_sessions: bool,
}

impl Default for SsmSim {
    fn default() -> Self {
        SsmSim {
            preferences: Vec::new(),
            page_size: None,
            rate: 5.0,
            denied_accounts: Vec::new(),
            error_rate: 0.0,
            repeat_next_token: false,
            omit_sessions: false,
        }
    }
}

/// One session as Session Manager's records hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsmSessionTruth {
    /// `Active` or `History`.
    pub state: String,
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub target: String,
    pub document: String,
    pub owner: String,
    pub reason: Option<String>,
    pub access_type: String,
}

/// What one partition's Session Manager records hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsmPartitionTruth {
    /// The audit role may not read them (`AccessDeniedException`).
    pub denied: bool,
    pub preferences: SimPreferences,
    /// `s3://bucket/prefix` the preferences send transcripts to.
    pub s3: Option<String>,
    /// The CloudWatch log group they send transcripts to.
    pub cloudwatch: Option<String>,
    /// Every session, Active and History (30 days), by id.
    pub sessions: BTreeMap<String, SsmSessionTruth>,
    /// Sessions in Session Manager's records without any CloudTrail record.
    pub history_only: BTreeSet<String>,
    /// Sessions CloudTrail has (a StartSession) that Session Manager's records lack.
    pub cloudtrail_only: BTreeSet<String>,
    /// Custom session documents of the partition whose own settings log nowhere.
    pub silent_documents: BTreeSet<String>,
}

impl SsmPartitionTruth {
    pub fn active(&self) -> BTreeSet<String> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.state == "Active")
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Session Manager's records of every reachable (enabled) partition: account
/// id → region → what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsmTruth {
    pub partitions: BTreeMap<String, BTreeMap<String, SsmPartitionTruth>>,
}

impl SsmTruth {
    pub fn partition(&self, account_id: &str, region: &str) -> Option<&SsmPartitionTruth> {
        self.partitions.get(account_id)?.get(region)
    }

    /// (account, region, session id) of every Active session: what `active`
    /// must list where the audit role may read.
    pub fn active(&self) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        for (a, regions) in &self.partitions {
            for (r, p) in regions {
                for id in p.active() {
                    out.insert((a.clone(), r.clone(), id));
                }
            }
        }
        out
    }
}

/// Everything that shapes the simulated organization. Same config, same data.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    /// Number of accounts; index 0 is the management account.
    pub accounts: usize,
    pub regions: Vec<String>,
    /// Records lie in `[window_end - window, window_end]`.
    pub window_end: DateTime<Utc>,
    pub window: TimeDelta,
    /// The audit role every member account has.
    pub role_name: String,
    /// When set, AssumeRole requires exactly this ExternalId.
    pub external_id: Option<String>,
    /// Every call waits `latency ± jitter` before answering.
    pub latency: Duration,
    pub jitter: Duration,
    /// When set, Organizations and STS answer after this (± a quarter) instead:
    /// the scanner's home region is near, the regions it reads (CloudTrail,
    /// Session Manager) are not.
    pub home_latency: Option<Duration>,
    /// The share (0 to 1) of each call's round trip, jitter included, spent
    /// on the way in, before the server sees the call and its rate bucket
    /// counts it; the rest is spent on the way back. 0: the whole round trip
    /// after the call arrived, so calls arrive as far apart as they were sent.
    /// Otherwise they do not: a call delayed on the way in meets the next one
    /// (a stand-in that sleeps before its throttle looks is 1).
    pub request_path: f64,
    /// LookupEvents calls per second per (account, region).
    pub lookup_rate: f64,
    /// The most tokens a partition's LookupEvents bucket holds; 0: max(1, rate).
    /// 1 stands in for a stricter throttle than AWS documents: two calls then
    /// pass only if they arrive a whole interval apart.
    pub lookup_burst: f64,
    /// Counts by a sliding window instead of a bucket: a LookupEvents call
    /// passes if fewer than `rate` calls of its partition passed in the second
    /// before it arrived (another way a stand-in may read "2 a second").
    pub lookup_window: bool,
    /// The most accounts one ListAccounts page returns (AWS: 20).
    pub org_page_size: usize,
    /// Some ListAccounts pages come back empty with a NextToken while more remain.
    pub empty_pages: bool,
    /// Also send the retired `Status` field on accounts.
    pub include_status_field: bool,
    /// One case of every flag, in distinct accounts where possible.
    pub plant_anomalies: bool,
    /// Malformed and attacker-shaped records (see [`GroundTruth::malformed`]).
    pub hostile_records: bool,
    /// The shapes that fool naive rules, each with what a rule must (not) say
    /// about it in [`GroundTruth::cases`]: failures that are not denials, a role
    /// whose session names rotate, console IAM users, StartSessions without a
    /// session id, resumes from the IPv4-mapped form of the start IP, denials
    /// whose target and document are only in `errorMessage`.
    pub rule_cases: bool,
    /// Mean number of ordinary sessions per active partition.
    pub sessions_per_partition: usize,
    /// Only the first N regions carry ordinary activity (`None`: all). The demo keeps
    /// the third region quiet so that only the planted case is there.
    pub active_regions: Option<usize>,
    pub heavy_partitions: Vec<HeavyPartition>,
    /// Page sizes of `LookupEvents`.
    pub lookup_paging: LookupPaging,
    /// Session calls at exact times, some delivered late.
    pub planted_calls: Vec<PlantedCall>,
    pub faults: Faults,
    /// The accounts' ids (index 0: the management account) instead of generated
    /// ones, so the records belong to an organization defined elsewhere (e.g. in
    /// moto). Its length must equal `accounts`.
    pub account_ids: Option<Vec<String>>,
    /// Session Manager's records: preferences, pages, rate, denied roles.
    pub ssm: SsmSim,
    /// An STS endpoint (`http://127.0.0.1:PORT`) that says who signs with an access
    /// key this simulator did not issue: it is sent `GetCallerIdentity` signed with
    /// that key id (and a dummy secret), and the answer is cached per key. An answer
    /// naming an account outside the organization makes the key invalid here.
    /// `None`: every key the simulator did not issue is the management caller's.
    pub identity_resolver: Option<String>,
    /// A trail tree (as `trail::gen` writes it) served as the S3 bucket `trail`,
    /// with CloudTrail `ListPublicKeys` giving the generator's key.
    pub trail_root: Option<std::path::PathBuf>,
    /// Cut every whole-object GET of a trail log file half-way (Range GETs are
    /// served whole): a reader that does not resume fails every file.
    pub trail_cut_bodies: bool,
    /// `Some(secret)`: every signed request's SigV4 signature is checked as AWS
    /// checks it (`server/sigv4.rs`), with the secret of the credentials this
    /// simulator issued, else this one (the management caller's); one that does
    /// not verify is refused (403 `InvalidSignatureException` /
    /// `SignatureDoesNotMatch`) and counted in `bad_signatures`.
    pub verify_signatures: Option<String>,
}

impl Default for SimConfig {
    /// Small and fast: 5 accounts, 2 regions, no latency, no faults. The window is
    /// fixed (the 7 days to 2026-11-20T18:00Z) so tests see the same records every run.
    fn default() -> Self {
        SimConfig {
            seed: 42,
            accounts: 5,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            window_end: Utc
                .with_ymd_and_hms(2026, 11, 20, 18, 0, 0)
                .single()
                .unwrap_or_default(),
            window: TimeDelta::days(7),
            role_name: "SessionAuditRole".into(),
            external_id: None,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            home_latency: None,
            request_path: 0.0,
            lookup_rate: 2.0,
            lookup_burst: 0.0,
            lookup_window: false,
            org_page_size: 20,
            empty_pages: false,
            include_status_field: false,
            plant_anomalies: false,
            hostile_records: false,
            rule_cases: false,
            sessions_per_partition: 4,
            active_regions: None,
            heavy_partitions: Vec::new(),
            lookup_paging: LookupPaging::Full,
            planted_calls: Vec::new(),
            faults: Faults::default(),
            account_ids: None,
            identity_resolver: None,
            ssm: SsmSim::default(),
            trail_root: None,
            trail_cut_bodies: false,
            verify_signatures: None,
        }
    }
}

/// The regions of the demo; the first two are the allowed ones.
pub const DEMO_REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-east-1"];

impl SimConfig {
    /// The demo organization: 10 accounts, 3 regions, ~30 ms latency, every flag
    /// planted once, a denied role (account 7), a suspended account (8),
    /// ap-east-1 (an opt-in region) not enabled in account 9, and an audit role
    /// without the Session Manager permissions (account 6). The window ends now.
    pub fn demo() -> SimConfig {
        let now = Utc::now();
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        SimConfig {
            seed: 2026,
            accounts: 10,
            regions: DEMO_REGIONS.iter().map(|r| r.to_string()).collect(),
            window_end: now,
            window: TimeDelta::days(7),
            latency: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            home_latency: None,
            request_path: 0.0,
            plant_anomalies: true,
            sessions_per_partition: 5,
            active_regions: Some(2),
            empty_pages: true,
            faults: Faults {
                denied_accounts: vec![7],
                suspended_accounts: vec![8],
                disabled_regions: vec![(9, "ap-east-1".into())],
                ..Faults::default()
            },
            ssm: SsmSim {
                denied_accounts: vec![6],
                ..SsmSim::default()
            },
            ..SimConfig::default()
        }
    }

    pub fn window_start(&self) -> DateTime<Utc> {
        self.window_end - self.window
    }

    fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.accounts == 0 {
            return bad("simulator: accounts must be at least 1".into());
        }
        if self.regions.is_empty() {
            return bad("simulator: at least one region is needed".into());
        }
        if self.lookup_rate.is_nan() || self.lookup_rate <= 0.0 {
            return bad(format!(
                "simulator: lookup_rate must be positive, got {}",
                self.lookup_rate
            ));
        }
        for (_, r) in &self.faults.disabled_regions {
            if org::is_default_region(r) {
                return bad(format!(
                    "simulator: {r} is enabled in every AWS account and cannot be disabled; disable an opt-in region"
                ));
            }
        }
        if self.window < TimeDelta::zero() {
            return bad("simulator: window must not be negative".into());
        }
        if let Some(ids) = &self.account_ids {
            if ids.len() != self.accounts {
                return bad(format!(
                    "simulator: {} account_ids given for {} accounts",
                    ids.len(),
                    self.accounts
                ));
            }
            let mut seen = BTreeSet::new();
            for id in ids {
                if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return bad(format!("simulator: account id {id:?} is not 12 digits"));
                }
                if !seen.insert(id) {
                    return bad(format!("simulator: account id {id} given twice"));
                }
            }
        }
        for c in &self.planted_calls {
            if c.account_index >= self.accounts || !self.regions.contains(&c.region) {
                return bad(format!(
                    "simulator: planted call {} is in no configured account and region",
                    c.event_id
                ));
            }
            if !DEFAULT_EVENT_NAMES.contains(&c.name.as_str()) {
                return bad(format!(
                    "simulator: planted call {} is a {}, not a session call",
                    c.event_id, c.name
                ));
            }
            if c.time < self.window_start() || c.time > self.window_end {
                return bad(format!(
                    "simulator: planted call {} lies outside the window",
                    c.event_id
                ));
            }
        }
        for h in &self.heavy_partitions {
            if h.account_index >= self.accounts {
                return bad(format!(
                    "simulator: heavy partition account {} out of range",
                    h.account_index
                ));
            }
        }
        let f = &self.faults;
        if self.ssm.rate.is_nan() || self.ssm.rate <= 0.0 {
            return bad(format!(
                "simulator: ssm.rate must be positive, got {}",
                self.ssm.rate
            ));
        }
        for (name, rate) in [
            ("ssm.error_rate", self.ssm.error_rate),
            ("error_rate", f.error_rate),
            ("slow_rate", f.slow_rate),
            ("reset_rate", f.reset_rate),
            ("org_throttle_rate", f.org_throttle_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return bad(format!(
                    "simulator: {name} must be within 0..=1, got {rate}"
                ));
            }
        }
        Ok(())
    }
}

/// The scan config the demo uses, in the TOML format of PRODUCT.md "Config file".
pub fn demo_config_toml() -> String {
    let cfg = SimConfig::demo();
    let quote = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"# The scan the demo runs against the simulated organization.
[scan]
regions = [{regions}]
event_names = ["StartSession", "ResumeSession", "TerminateSession"]
since = "7d"
lookup_rate = {rate:.1}

[accounts]
role_name = "{role}"

[rules]
approved_cidrs = ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]
allowed_regions = [{allowed}]
trusted_accounts = []
denied_threshold = 3
denied_window = "1h"
fanout_targets = 3
fanout_window = "1h"
max_session = "8h"
require_reason = true

[rules.business_hours]
timezone = "UTC"
days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
start = "08:00"
end = "19:00"
"#,
        regions = quote(&DEMO_REGIONS),
        allowed = quote(&DEMO_REGIONS[..2]),
        rate = cfg.lookup_rate,
        role = cfg.role_name,
    )
}

/// An account of the simulated organization, with the faults that apply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub email: String,
    /// `ACTIVE`, `SUSPENDED` or `CLOSED`.
    pub state: String,
    /// AssumeRole into it is refused.
    pub denied: bool,
    pub disabled_regions: Vec<String>,
    pub parent_id: String,
    /// e.g. `Root/Workloads/Production`.
    pub ou_path: String,
}

/// Every event id a complete scan must find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// account id → region → event ids; every account and configured region is
    /// present, unreachable ones included (empty when there is no activity).
    pub events: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Ids of records that cannot be read in full: a `CloudTrailEvent` that is not
    /// JSON, or one without `userIdentity`, with an `eventTime` that is not a time,
    /// or with fields of the wrong type. A scan keeps each of them with what it
    /// could read (LookupEvents' own fields at least) and counts it as malformed.
    pub malformed: BTreeSet<String>,
    /// What the rules must, or must not, say about planted records
    /// ([`SimConfig::rule_cases`]); only cases whose records all lie in the window.
    #[serde(default)]
    pub cases: Vec<PlantedCase>,
}

/// One planted case of [`SimConfig::rule_cases`]: a flag and the records it is
/// about. The flag is its report name (`denied-attempts`), since the simulator
/// shares no type with the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedCase {
    /// A short name for messages (`rotating-session-names`).
    pub name: String,
    pub flag: String,
    pub account_id: String,
    /// `true`: one finding of `flag` lists exactly these event ids. `false`: no
    /// finding of `flag` lists any of them.
    pub fires: bool,
    pub event_ids: BTreeSet<String>,
}

impl GroundTruth {
    /// Every event id, all partitions together.
    pub fn all_ids(&self) -> BTreeSet<String> {
        self.events
            .values()
            .flat_map(|r| r.values().flatten().cloned())
            .collect()
    }

    pub fn total(&self) -> usize {
        self.events
            .values()
            .flat_map(|r| r.values())
            .map(BTreeSet::len)
            .sum()
    }

    pub fn partition(&self, account_id: &str, region: &str) -> Option<&BTreeSet<String>> {
        self.events.get(account_id)?.get(region)
    }
}

/// What the simulator saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// HTTP requests of any kind.
    pub requests: u64,
    /// Calls per operation name (`LookupEvents`, `AssumeRole`, ...).
    pub calls: BTreeMap<String, u64>,
    /// LookupEvents answered ThrottlingException.
    pub throttled: u64,
    /// Injected 5xx answers.
    pub injected_errors: u64,
    pub injected_slow: u64,
    pub injected_resets: u64,
    pub org_throttled: u64,
    pub access_denied: u64,
    pub expired_token: u64,
    pub unrecognized_client: u64,
    /// Other 4xx answers (validation, bad tokens, unknown operations).
    pub client_errors: u64,
    pub credentials_issued: u64,
    /// Requests refused because their SigV4 signature did not verify
    /// (`SimConfig::verify_signatures`).
    #[serde(default)]
    pub bad_signatures: u64,
    /// Access keys the identity resolver was asked about (and answered).
    #[serde(default)]
    pub identities_resolved: u64,
    /// Most LookupEvents calls that arrived for one partition within any 1 s.
    pub max_lookup_calls_1s: u64,
    /// DescribeSessions/GetDocument answered ThrottlingException.
    #[serde(default)]
    pub ssm_throttled: u64,
    /// Most LookupEvents calls that were served (not throttled) within any 1 s.
    pub max_served_lookup_calls_1s: u64,
    /// `account/region` where `max_lookup_calls_1s` was seen.
    pub max_lookup_partition: Option<String>,
    /// LookupEvents records returned, all pages.
    pub events_returned: u64,
    /// Sum over answered AWS calls of the time from a request's arrival to its
    /// answer (the round trip the simulator adds), and how many were timed.
    #[serde(default)]
    pub answer_micros_total: u64,
    #[serde(default)]
    pub answers_timed: u64,
    /// The same for Organizations and STS when they have a latency of their
    /// own ([`SimConfig::home_latency`]).
    #[serde(default)]
    pub home_answer_micros_total: u64,
    #[serde(default)]
    pub home_answers_timed: u64,
    /// The partitions whose last call came latest (at most 3), latest first:
    /// what held the run's end.
    #[serde(default)]
    pub slowest: Vec<PartitionTimes>,
    /// Seconds from the first request to the last `ListAccounts` call.
    #[serde(default)]
    pub last_listing_s: Option<f64>,
    /// Seconds from the first request to the first DescribeSessions or
    /// GetDocument call.
    #[serde(default)]
    pub first_ssm_s: Option<f64>,
    /// Seconds from the first request to each operation's first call.
    #[serde(default)]
    pub first_call_s: BTreeMap<String, f64>,
}

/// When one partition's calls arrived, in seconds from the simulator's first
/// request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionTimes {
    /// `account-id/region`.
    pub partition: String,
    /// The account's first AssumeRole.
    pub role_s: Option<f64>,
    pub first_lookup_s: f64,
    pub last_lookup_s: f64,
    /// LookupEvents calls that arrived (throttled ones too).
    pub lookups: u64,
    /// The last DescribeSessions or GetDocument call.
    pub last_ssm_s: Option<f64>,
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Serves `cfg` on 127.0.0.1 with a free port.
    pub async fn start(cfg: SimConfig) -> io::Result<SimHandle> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: SimConfig, addr: SocketAddr) -> io::Result<SimHandle> {
        cfg.validate()?;
        let world = Arc::new(data::World::new(cfg));
        server::start(world, addr).await
    }
}

/// Runs a standalone simulator until Ctrl-C (for boto3 / AWS CLI scripts).
pub async fn serve_forever(cfg: SimConfig, addr: SocketAddr) -> io::Result<()> {
    let handle = Simulator::start_on(cfg, addr).await?;
    tracing::info!(endpoint = %handle.endpoint(), "simulated organization listening");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
