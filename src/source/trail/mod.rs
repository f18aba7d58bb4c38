//! Session events from CloudTrail trail files: history beyond LookupEvents'
//! 90 days, read from a local copy of a trail's bucket or straight from S3.
//!
//! Both readers prune by key first (only the accounts, regions and delivery
//! days that can hold the window's records), then scan files on every core:
//! inflate, cut the `Records` array into raw records, skip every record that is
//! not a Session Manager call after a substring test, and parse the rest with
//! [`crate::event::parse_record`]. A bad file or record is counted and named in
//! [`TrailCoverage`]; it never stops the run. The events come back sorted by
//! time and event id, one per event id, whatever the scheduling.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};
use serde::Serialize;

use crate::call::CallSlots;
use crate::model::{RegionCoverage, RegionStatus, SessionEvent, TimeWindow, DEFAULT_EVENT_NAMES};

mod accounts;
pub mod digest;
mod inflate;
mod keys;
mod local;
mod path;
mod prefilter;
mod records;
mod s3;
mod select;
mod split;

pub use accounts::{read_source, Location};
pub use inflate::MAX_INFLATED;
pub use keys::list_public_keys;
pub use path::{parse_key, DayPlan, TrailKey, MAX_DELIVERY_LAG};
pub use s3::PublicKeys;
pub use split::MAX_RECORD;

/// What to read from the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailQuery {
    /// `None` = every account found in the trail.
    pub accounts: Option<BTreeSet<String>>,
    /// `None` = every region found in the trail.
    pub regions: Option<BTreeSet<String>>,
    /// Half-open, `[start, end)`: a record at exactly `end` is the next window's.
    pub window: TimeWindow,
    /// `eventName`s of `ssm.amazonaws.com` records to keep.
    pub event_names: Vec<String>,
    /// When the read runs: a window day that has barely begun (or not yet) is no gap.
    pub now: DateTime<Utc>,
}

impl TrailQuery {
    /// Every account and region, the default Session Manager calls.
    pub fn new(window: TimeWindow) -> Self {
        TrailQuery {
            accounts: None,
            regions: None,
            window,
            event_names: DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect(),
            now: Utc::now(),
        }
    }

    pub fn wants_account(&self, account: &str) -> bool {
        self.accounts.as_ref().is_none_or(|s| s.contains(account))
    }

    pub fn wants_region(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|s| s.contains(region))
    }
}

/// What one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    /// The path or `s3://bucket/key` it was read from.
    pub path: String,
    /// Its coordinates, when the path has the trail layout.
    pub key: Option<TrailKey>,
    pub bytes_compressed: u64,
    pub bytes_uncompressed: u64,
    /// Elements of its `Records` array.
    pub records: u64,
    /// Session records kept (selected, in the window, parsed).
    pub events: Vec<SessionEvent>,
    /// Records that may be session records but could not be read.
    pub malformed: u64,
    pub malformed_event_ids: Vec<String>,
    /// Why the file could not be read (whole): corrupt gzip, bad JSON, I/O.
    /// Records read before the fault are kept.
    pub error: Option<String>,
    /// SHA-256 of the decompressed text, when asked for and read whole.
    pub sha256: Option<[u8; 32]>,
}

impl FileScan {
    fn new(path: &str, key: Option<TrailKey>) -> Self {
        FileScan {
            path: path.to_string(),
            key,
            bytes_compressed: 0,
            bytes_uncompressed: 0,
            records: 0,
            events: Vec::new(),
            malformed: 0,
            malformed_event_ids: Vec::new(),
            error: None,
            sha256: None,
        }
    }

    fn failed(path: &str, key: Option<TrailKey>, error: String) -> Self {
        let mut s = FileScan::new(path, key);
        s.error = Some(error);
        s
    }

    fn malformed(&mut self, id: Option<String>) {
        self.malformed += 1;
        self.malformed_event_ids.extend(id);
    }
}

/// Scan one file's bytes (gzip or plain JSON): the I/O-free core of both readers.
/// `path` names the file in messages and, when it has the trail layout, gives
/// the account and region for records that lack them.
pub fn scan_file_bytes(path: &str, bytes: &[u8], q: &TrailQuery) -> FileScan {
    select::scan_bytes(path, None, bytes, q, &select::real_parse)
}

/// A file that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BadFile {
    pub path: String,
    pub error: String,
}

/// Consecutive window days, in one partition, without a single trail file.
/// Quiet regions have such days; a gap in a busy one is worth a look.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MissingDays {
    pub account: String,
    pub region: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// A window day is a gap only once this much of it has passed: CloudTrail's
/// first file of a day arrives minutes after midnight where anything happens.
pub const DAY_GRACE: TimeDelta = TimeDelta::hours(1);

/// What was read in one partition (an account and a region of the trail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionCoverage {
    pub files: u64,
    pub bad_files: u64,
    /// Distinct session events kept.
    pub events: u64,
    pub duplicates: u64,
    pub malformed: u64,
    pub malformed_event_ids: Vec<String>,
    /// Window days with no file at all.
    pub missing_days: u64,
    /// Those days, as `YYYY-MM-DD` or `first..last` runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
    /// A listing that failed: some days of the partition were not read.
    pub error: Option<String>,
    /// What the digest files prove about the files read.
    pub integrity: digest::Integrity,
}

impl PartitionCoverage {
    /// Failed when a listing failed, a file could not be read, a window day
    /// has no file at all (an organization trail writes every few minutes),
    /// or the digests show files missing, altered or added.
    pub fn status(&self) -> RegionStatus {
        if self.problems().is_empty() {
            RegionStatus::Ok
        } else {
            RegionStatus::Failed
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(e.clone());
        }
        if self.bad_files > 0 {
            out.push(format!(
                "{} trail file(s) could not be read",
                self.bad_files
            ));
        }
        if !self.gaps.is_empty() {
            let mut days = self
                .gaps
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if self.gaps.len() > 10 {
                days.push_str(", …");
            }
            out.push(format!("no trail file on {days}"));
        }
        out.extend(self.integrity.problem());
        out
    }

    /// The report's view of this partition.
    pub fn to_region_coverage(&self) -> RegionCoverage {
        let mut r = RegionCoverage::new(self.status());
        r.events = self.events;
        r.files = self.files;
        r.malformed = self.malformed;
        r.duplicates = self.duplicates;
        r.malformed_event_ids = self.malformed_event_ids.clone();
        let problems = self.problems();
        r.error = (!problems.is_empty()).then(|| problems.join("; "));
        r
    }
}

/// What a trail read covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrailCoverage {
    /// Files fetched and scanned (bad ones included).
    pub files_read: u64,
    pub bytes_compressed: u64,
    pub bytes_uncompressed: u64,
    /// Records in the files' `Records` arrays.
    pub records_seen: u64,
    /// Session records kept before duplicates were dropped.
    pub session_records: u64,
    /// Session records whose event id was already kept.
    pub duplicates: u64,
    pub malformed: u64,
    /// Sorted, distinct.
    pub malformed_event_ids: Vec<String>,
    /// Sorted by path.
    pub bad_files: Vec<BadFile>,
    pub missing_days: Vec<MissingDays>,
    /// Requested accounts (when `accounts` was given) with no file on any listed day.
    pub accounts_without_files: Vec<String>,
    /// Accounts whose region folders could not be listed, with the error.
    pub failed_accounts: BTreeMap<String, String>,
    /// account → region → coverage, for every partition looked at.
    pub partitions: BTreeMap<String, BTreeMap<String, PartitionCoverage>>,
    /// The digest checks of every partition, added up.
    pub integrity: IntegrityTotals,
}

/// The partitions' [`digest::Integrity`], added up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntegrityTotals {
    /// Partitions with digests, and without (integrity not checked there).
    pub partitions_checked: u64,
    pub partitions_unchecked: u64,
    pub digests_read: u64,
    pub files_validated: u64,
    pub files_missing: u64,
    pub files_altered: u64,
    pub files_unlisted: u64,
    pub files_unverifiable: u64,
    pub files_after_last_digest: u64,
    pub digests_missing: u64,
    pub digests_broken: u64,
    pub signatures_checked: u64,
    pub signatures_unchecked: u64,
}

impl IntegrityTotals {
    fn add(&mut self, i: &digest::Integrity) {
        if i.checked {
            self.partitions_checked += 1;
        } else {
            self.partitions_unchecked += 1;
        }
        self.digests_read += i.digests_read;
        self.files_validated += i.files_validated;
        self.files_missing += i.files_missing;
        self.files_altered += i.files_altered;
        self.files_unlisted += i.files_unlisted;
        self.files_unverifiable += i.files_unverifiable;
        self.files_after_last_digest += i.files_after_last_digest;
        self.digests_missing += i.digests_missing;
        self.digests_broken += i.digests_broken;
        self.signatures_checked += i.signatures_checked;
        self.signatures_unchecked += i.signatures_unchecked;
    }
}

/// Events and coverage of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailResult {
    /// Sorted by (event time, event id); one per event id.
    pub events: Vec<SessionEvent>,
    pub coverage: TrailCoverage,
}

/// What stops a trail read before it starts; everything after is coverage.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error("cannot read the trail folder {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no CloudTrail log folder (AWSLogs) under {location}")]
    NoTrail { location: String },
    #[error("cannot list s3://{bucket}/{prefix}: {failure}")]
    S3List {
        bucket: String,
        prefix: String,
        failure: String,
    },
    #[error("a trail scan worker stopped unexpectedly")]
    Worker,
}

/// Read the trail files under `root` (a folder holding `AWSLogs/`, possibly
/// below a prefix, or `AWSLogs` itself) with `threads` workers (0 = all cores).
pub fn read_dir(root: &Path, q: &TrailQuery, threads: usize) -> Result<TrailResult, TrailError> {
    local::read(root, q, threads)
}

/// Read the trail files under `s3://bucket/prefix` (the trail's key prefix,
/// before `AWSLogs/`). Each call holds a slot of `slots`, retried on throttles
/// and 5xx until `deadline`; a file or listing that still fails is coverage.
pub async fn read_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    q: &TrailQuery,
    slots: &CallSlots,
    deadline: Duration,
) -> Result<TrailResult, TrailError> {
    let unchecked: &s3::PublicKeys<'_> = &|_region| {
        Box::pin(async {
            digest::Keys::Unchecked("no CloudTrail client to ask ListPublicKeys".into())
        })
    };
    s3::read(client, bucket, prefix, q, slots, deadline, unchecked).await
}

/// [`read_s3`], checking the digests' signatures with the keys `public_keys`
/// returns for a trail's home region (CloudTrail `ListPublicKeys` there).
pub async fn read_s3_with_keys(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    q: &TrailQuery,
    slots: &CallSlots,
    deadline: Duration,
    public_keys: &PublicKeys<'_>,
) -> Result<TrailResult, TrailError> {
    s3::read(client, bucket, prefix, q, slots, deadline, public_keys).await
}

fn default_threads(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// What the listing found per partition, for coverage.
#[derive(Debug, Default)]
struct Listing {
    /// (account, region) → days with at least one log file.
    partitions: BTreeMap<(String, String), PartListing>,
    failed_accounts: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub(crate) struct PartListing {
    days_with_files: BTreeSet<NaiveDate>,
    failed_days: BTreeSet<NaiveDate>,
    error: Option<String>,
}

impl Listing {
    fn partition(&mut self, account: &str, region: &str) -> &mut PartListing {
        self.partitions
            .entry((account.to_string(), region.to_string()))
            .or_default()
    }

    fn day_failed(&mut self, account: &str, region: &str, day: NaiveDate, error: String) {
        let p = self.partition(account, region);
        p.failed_days.insert(day);
        p.error.get_or_insert(error);
    }
}

/// Folds file scans together; merged across workers, then finished once.
#[derive(Debug, Default)]
struct Acc {
    cov: TrailCoverage,
    events: Vec<SessionEvent>,
    integrity: BTreeMap<(String, String), digest::Integrity>,
}

impl Acc {
    fn add(&mut self, f: FileScan) {
        let c = &mut self.cov;
        c.files_read += 1;
        c.bytes_compressed += f.bytes_compressed;
        c.bytes_uncompressed += f.bytes_uncompressed;
        c.records_seen += f.records;
        c.session_records += f.events.len() as u64;
        c.malformed += f.malformed;
        c.malformed_event_ids
            .extend(f.malformed_event_ids.iter().cloned());
        if let Some(k) = &f.key {
            let p = c
                .partitions
                .entry(k.account.clone())
                .or_default()
                .entry(k.region.clone())
                .or_default();
            p.files += 1;
            p.malformed += f.malformed;
            p.malformed_event_ids.extend(f.malformed_event_ids);
            p.bad_files += u64::from(f.error.is_some());
        }
        if let Some(error) = f.error {
            c.bad_files.push(BadFile {
                path: f.path,
                error,
            });
        }
        self.events.extend(f.events);
    }

    fn merge(&mut self, other: Acc) {
        let (a, b) = (&mut self.cov, other.cov);
        a.files_read += b.files_read;
        a.bytes_compressed += b.bytes_compressed;
        a.bytes_uncompressed += b.bytes_uncompressed;
        a.records_seen += b.records_seen;
        a.session_records += b.session_records;
        a.malformed += b.malformed;
        a.malformed_event_ids.extend(b.malformed_event_ids);
        a.bad_files.extend(b.bad_files);
        for (account, regions) in b.partitions {
            for (region, p) in regions {
                let q = a
                    .partitions
                    .entry(account.clone())
                    .or_default()
                    .entry(region)
                    .or_default();
                q.files += p.files;
                q.bad_files += p.bad_files;
                q.malformed += p.malformed;
                q.malformed_event_ids.extend(p.malformed_event_ids);
            }
        }
        self.events.extend(other.events);
        self.integrity.extend(other.integrity);
    }

    fn finish(mut self, q: &TrailQuery, plan: &DayPlan, listing: Listing) -> TrailResult {
        // One event per id, the same one whatever order the files came in.
        let mut events = std::mem::take(&mut self.events);
        events.sort_by(|a, b| {
            (&a.event_id, &a.account_id, &a.region, a.event_time).cmp(&(
                &b.event_id,
                &b.account_id,
                &b.region,
                b.event_time,
            ))
        });
        let mut kept: Vec<SessionEvent> = Vec::with_capacity(events.len());
        let cov = &mut self.cov;
        for ev in events {
            let dup = kept.last().is_some_and(|k| k.event_id == ev.event_id);
            let p = cov
                .partitions
                .entry(ev.account_id.clone())
                .or_default()
                .entry(ev.region.clone())
                .or_default();
            if dup {
                p.duplicates += 1;
                cov.duplicates += 1;
            } else {
                p.events += 1;
                kept.push(ev);
            }
        }
        kept.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));

        // Window days that should have a file by now.
        let window_days: Vec<NaiveDate> = plan
            .days
            .iter()
            .copied()
            .filter(|d| plan.is_window_day(*d))
            .filter(|d| {
                d.and_hms_opt(0, 0, 0)
                    .is_some_and(|t| t.and_utc() + DAY_GRACE <= q.now)
            })
            .collect();
        let mut accounts_with_files = BTreeSet::new();
        for ((account, region), pl) in &listing.partitions {
            if !pl.days_with_files.is_empty() {
                accounts_with_files.insert(account.clone());
            }
            let p = cov
                .partitions
                .entry(account.clone())
                .or_default()
                .entry(region.clone())
                .or_default();
            p.error = pl.error.clone();
            let mut run: Option<(NaiveDate, NaiveDate)> = None;
            for d in &window_days {
                let missing = !pl.days_with_files.contains(d) && !pl.failed_days.contains(d);
                if missing {
                    p.missing_days += 1;
                    run = match run {
                        Some((first, last)) if last.succ_opt() == Some(*d) => Some((first, *d)),
                        Some((first, last)) => {
                            cov.missing_days
                                .push(missing_run(account, region, first, last));
                            Some((*d, *d))
                        }
                        None => Some((*d, *d)),
                    };
                }
            }
            if let Some((first, last)) = run {
                cov.missing_days
                    .push(missing_run(account, region, first, last));
            }
        }
        for m in &cov.missing_days {
            let p = cov
                .partitions
                .entry(m.account.clone())
                .or_default()
                .entry(m.region.clone())
                .or_default();
            p.gaps.push(if m.first == m.last {
                m.first.to_string()
            } else {
                format!("{}..{}", m.first, m.last)
            });
        }
        for ((account, region), i) in std::mem::take(&mut self.integrity) {
            cov.partitions
                .entry(account)
                .or_default()
                .entry(region)
                .or_default()
                .integrity = i;
        }
        let mut totals = IntegrityTotals::default();
        for regions in cov.partitions.values_mut() {
            for p in regions.values_mut() {
                if p.integrity.digests_read == 0 && p.integrity.notes.is_empty() {
                    p.integrity
                        .notes
                        .push("integrity not checked: no digest files for this window".into());
                }
                totals.add(&p.integrity);
            }
        }
        cov.integrity = totals;
        if let Some(accounts) = &q.accounts {
            cov.accounts_without_files = accounts
                .iter()
                .filter(|a| !accounts_with_files.contains(*a))
                .cloned()
                .collect();
        }
        cov.failed_accounts = listing.failed_accounts;
        cov.malformed_event_ids.sort();
        cov.malformed_event_ids.dedup();
        for regions in cov.partitions.values_mut() {
            for p in regions.values_mut() {
                p.malformed_event_ids.sort();
                p.malformed_event_ids.dedup();
            }
        }
        cov.bad_files.sort();
        cov.missing_days.sort();
        TrailResult {
            events: kept,
            coverage: self.cov,
        }
    }
}

fn missing_run(account: &str, region: &str, first: NaiveDate, last: NaiveDate) -> MissingDays {
    MissingDays {
        account: account.to_string(),
        region: region.to_string(),
        first,
        last,
    }
}
