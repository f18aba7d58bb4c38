//! What a query costs: before it runs, the bytes of the partitions it names,
//! from an S3 listing of the trail (one ListObjectsV2 walk per account and
//! region, starting after the first day with `StartAfter` and stopping past the
//! last, never one call per day); after it runs, Athena's own
//! `DataScannedInBytes`. Athena bills $5 per TB scanned, each query rounded up
//! to the megabyte with a 10 MB minimum. The same listing says which (account,
//! region, day) partitions hold no file, hence no record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::NaiveDate;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::ddl::TrailLocation;
use super::query::day_value;
use crate::call::{call_with_retry, CallSlots};

/// Dollars per TB (2^40 bytes) scanned.
pub const USD_PER_TB: f64 = 5.0;
const MB: u64 = 1 << 20;
const TB: u64 = 1 << 40;
/// Athena bills at least this much per query.
pub const MIN_BILLED_BYTES: u64 = 10 * MB;
/// Listings in flight (each also holds a call slot while it runs).
const LISTS_IN_FLIGHT: usize = 16;
/// A partition listing that keeps paging past this many pages is cut off: a
/// listing that does not end fails its partition rather than hang the run.
const MAX_PAGES: usize = 100_000;

/// The bytes Athena bills for a query that scanned `bytes`.
pub fn billed_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(MB).saturating_mul(MB).max(MIN_BILLED_BYTES)
}

/// The price in US dollars of a query that scanned `bytes`.
pub fn price_usd(bytes: u64) -> f64 {
    billed_bytes(bytes) as f64 / TB as f64 * USD_PER_TB
}

/// `1234567890` → `1.15 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// `500MB`, `10GB`, `1.5TB`, `1048576` (bytes). Units are binary (1 GB = 2^30
/// bytes, as Athena's byte counts are reported).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| "expected a number followed by B, KB, MB, GB, TB or PB".to_string())?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KB, MB, GB, TB or PB)"
            ))
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err("must be at least 1 byte and of a sane size".into());
    }
    Ok(bytes as u64)
}

/// What the listing found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Bytes of every object in the named partitions: what Athena will read.
    pub bytes: u64,
    pub objects: u64,
    /// ListObjectsV2 calls made.
    pub list_calls: u64,
    /// (account, region) → day → bytes, for days with at least one object.
    #[serde(skip)]
    pub per_day: BTreeMap<(String, String), BTreeMap<NaiveDate, u64>>,
    /// Partitions whose listing failed, with the error: the estimate is low by them.
    pub failed: Vec<ListingFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListingFailure {
    pub account: String,
    pub region: String,
    pub error: String,
}

/// Consecutive window days of one partition without a single trail file:
/// no record can be there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EmptyDays {
    pub account: String,
    pub region: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// List the named partitions of the trail and add up their sizes.
pub async fn estimate(
    s3: &aws_sdk_s3::Client,
    trail: &TrailLocation,
    partitions: &[(String, String)],
    days: &[NaiveDate],
    slots: &CallSlots,
    deadline: Duration,
) -> Estimate {
    let (Some(first), Some(last)) = (days.first().copied(), days.last().copied()) else {
        return Estimate::default();
    };
    let wanted: BTreeSet<NaiveDate> = days.iter().copied().collect();
    let results: Vec<_> = stream::iter(partitions.iter().cloned())
        .map(|(account, region)| {
            let wanted = &wanted;
            async move {
                let prefix = trail.partition_prefix(&account, &region);
                let r = list_partition(
                    s3,
                    &trail.bucket,
                    &prefix,
                    first,
                    last,
                    wanted,
                    slots,
                    deadline,
                )
                .await;
                (account, region, r)
            }
        })
        .buffer_unordered(LISTS_IN_FLIGHT)
        .collect()
        .await;
    let mut e = Estimate::default();
    for (account, region, r) in results {
        match r {
            Ok(p) => {
                e.list_calls += p.calls;
                e.objects += p.objects;
                e.bytes += p.per_day.values().sum::<u64>();
                e.per_day.insert((account, region), p.per_day);
            }
            Err((calls, error)) => {
                e.list_calls += calls;
                e.failed.push(ListingFailure {
                    account,
                    region,
                    error,
                });
            }
        }
    }
    e.failed.sort();
    e
}

struct Listed {
    calls: u64,
    objects: u64,
    per_day: BTreeMap<NaiveDate, u64>,
}

#[allow(clippy::too_many_arguments)]
async fn list_partition(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    first: NaiveDate,
    last: NaiveDate,
    wanted: &BTreeSet<NaiveDate>,
    slots: &CallSlots,
    deadline: Duration,
) -> Result<Listed, (u64, String)> {
    // Every key of the first day sorts after `<prefix>YYYY/MM/DD`, every key of
    // an earlier day before it.
    let start_after = format!("{prefix}{}", day_value(first));
    let mut out = Listed {
        calls: 0,
        objects: 0,
        per_day: BTreeMap::new(),
    };
    let mut token: Option<String> = None;
    let mut seen_tokens = BTreeSet::new();
    for _ in 0..MAX_PAGES {
        out.calls += 1;
        let page = call_with_retry(Some(slots), deadline, || {
            let mut req = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone());
            if token.is_none() {
                req = req.start_after(&start_after);
            }
            req.send()
        })
        .await
        .map_err(|f| {
            (
                out.calls,
                format!("ListObjectsV2 s3://{bucket}/{prefix}: {f}"),
            )
        })?;
        let mut past_last = false;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let Some(day) = key.strip_prefix(prefix).and_then(day_of) else {
                continue;
            };
            if day > last {
                past_last = true;
                break;
            }
            if wanted.contains(&day) {
                out.objects += 1;
                *out.per_day.entry(day).or_default() += o.size().unwrap_or(0).max(0) as u64;
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if past_last || token.is_none() || page.is_truncated() == Some(false) {
            return Ok(out);
        }
        if let Some(t) = &token {
            if !seen_tokens.insert(t.clone()) {
                return Err((out.calls, format!("ListObjectsV2 s3://{bucket}/{prefix}: a continuation token came back twice")));
            }
        }
    }
    Err((
        out.calls,
        format!(
            "ListObjectsV2 s3://{bucket}/{prefix}: the listing did not end after {MAX_PAGES} pages"
        ),
    ))
}

/// The account folders under the organization folder (for a scan that knows
/// no account list): one delimited listing, every page.
pub async fn list_accounts(
    s3: &aws_sdk_s3::Client,
    trail: &TrailLocation,
    slots: &CallSlots,
    deadline: Duration,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = BTreeSet::new();
    for _ in 0..MAX_PAGES {
        let page = call_with_retry(Some(slots), deadline, || {
            s3.list_objects_v2()
                .bucket(&trail.bucket)
                .prefix(&trail.org_prefix)
                .delimiter("/")
                .set_continuation_token(token.clone())
                .send()
        })
        .await
        .map_err(|f| format!("ListObjectsV2 {}: {f}", trail.url()))?;
        for p in page.common_prefixes() {
            let name = p
                .prefix()
                .and_then(|p| p.strip_prefix(trail.org_prefix.as_str()))
                .map(|n| n.trim_end_matches('/'));
            if let Some(n) = name.filter(|n| super::query::is_account_id(n)) {
                out.push(n.to_string());
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        match &token {
            None => break,
            Some(t) if !seen.insert(t.clone()) => {
                return Err("a continuation token came back twice".into())
            }
            Some(_) => {}
        }
    }
    if token.is_some() {
        return Err(format!("the listing did not end after {MAX_PAGES} pages"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `YYYY/MM/DD/...` → the day.
fn day_of(rest: &str) -> Option<NaiveDate> {
    let mut it = rest.splitn(4, '/');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    it.next()?; // a key inside the day folder, not the folder name itself
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The window days (of `days`, those `is_window_day`) of each listed partition
/// that hold no object, as runs of consecutive days.
pub fn empty_days(e: &Estimate, window_days: &[NaiveDate]) -> Vec<EmptyDays> {
    let mut out = Vec::new();
    for ((account, region), per_day) in &e.per_day {
        let mut run: Option<(NaiveDate, NaiveDate)> = None;
        for d in window_days {
            if per_day.contains_key(d) {
                continue;
            }
            run = match run {
                Some((first, last)) if last.succ_opt() == Some(*d) => Some((first, *d)),
                Some((first, last)) => {
                    out.push(EmptyDays {
                        account: account.clone(),
                        region: region.clone(),
                        first,
                        last,
                    });
                    Some((*d, *d))
                }
                None => Some((*d, *d)),
            };
        }
        if let Some((first, last)) = run {
            out.push(EmptyDays {
                account: account.clone(),
                region: region.clone(),
                first,
                last,
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_has_a_ten_megabyte_minimum_and_rounds_up_to_the_megabyte() {
        assert_eq!(billed_bytes(0), 10 * MB);
        assert_eq!(billed_bytes(1), 10 * MB);
        assert_eq!(billed_bytes(10 * MB + 1), 11 * MB);
        assert_eq!(price_usd(TB), 5.0);
        assert!((price_usd(0) - 10.0 * MB as f64 / TB as f64 * 5.0).abs() < 1e-12);
        assert!((price_usd(3 * TB) - 15.0).abs() < 1e-9);
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(MB));
        assert_eq!(parse_size("10MB"), Ok(10 * MB));
        assert_eq!(parse_size("1.5 GB"), Ok(3 << 29));
        assert_eq!(parse_size("2tb"), Ok(2 * TB));
        assert!(parse_size("").is_err());
        assert!(parse_size("-1GB").is_err());
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * MB / 2), "1.50 MiB");
    }

    #[test]
    fn day_folders_and_empty_runs() {
        assert_eq!(
            day_of("2025/02/19/x.json.gz"),
            NaiveDate::from_ymd_opt(2025, 2, 19)
        );
        assert_eq!(day_of("2025/02/19"), None);
        assert_eq!(day_of("2025/2/19/x"), None);
        let d = |n: u32| NaiveDate::from_ymd_opt(2025, 2, n).unwrap();
        let mut e = Estimate::default();
        e.per_day.insert(
            ("1".into(), "r".into()),
            [(d(2), 5), (d(5), 1)].into_iter().collect(),
        );
        e.per_day.insert(("2".into(), "r".into()), BTreeMap::new());
        let runs = empty_days(&e, &[d(1), d(2), d(3), d(4), d(5)]);
        let got: Vec<(String, u32, u32)> = runs
            .iter()
            .map(|r| {
                (
                    r.account.clone(),
                    chrono::Datelike::day(&r.first),
                    chrono::Datelike::day(&r.last),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("1".into(), 1, 1), ("1".into(), 3, 4), ("2".into(), 1, 5)]
        );
    }
}
