//! Trail files straight from S3, listed and read as streams.
//!
//! Each partition (account and region) is listed with ListObjectsV2 from
//! `start-after` the window's first delivery day and stopped past its last,
//! once for its digests and once for its log files, so calls follow the
//! objects, never the days, and no list of (account, region, day) tasks is
//! built. Keys stream into downloads; a body streams into the scan on a
//! blocking thread through a small bounded queue, resumed with a Range request
//! if it is cut off; the scan takes an object whole into its reused buffers
//! when it fits them (bounded per scanning thread), else streams it, so no
//! larger object is ever whole in memory. A bounded number of
//! partitions, downloads and scans (one per core) run at once.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, Semaphore};

use super::digest::{
    end_from_name, home_region_from_name, is_digest_name, DigestCheck, Keys, MAX_DIGEST_INFLATED,
};
use super::inflate;
use super::local::in_scope;
use super::path::{day_path, delivered_from_name, is_log_file_name, DayPlan, TrailKey};
use super::select::{self, Scanner};
use super::{
    default_threads, Acc, FileScan, Listing, PartListing, TrailError, TrailQuery, TrailResult,
};
use crate::call::{call_with_retry, CallFailure, CallSlots, Tokens};

/// Listing calls in flight (each also holds a call slot while it runs).
const LISTS_IN_FLIGHT: usize = 16;
/// Partitions being listed and read at once.
const PARTITIONS_IN_FLIGHT: usize = 16;
/// Objects being downloaded or waiting for a core, over all partitions.
const DOWNLOADS_IN_FLIGHT: usize = 32;
/// Body chunks queued ahead of the scan, per object.
const CHUNKS_AHEAD: usize = 16;
/// A body cut off mid-download is resumed (Range) this many times in all.
const BODY_ATTEMPTS: u32 = 3;
/// A digest object bigger than this is not a digest CloudTrail wrote.
const MAX_DIGEST_OBJECT: usize = 16 << 20;

/// Asks CloudTrail `ListPublicKeys` in a region (the trail's home region, from
/// the digests' names) for the keys that signed them.
pub type PublicKeys<'a> = dyn Fn(String) -> BoxFuture<'a, Keys> + Send + Sync + 'a;

struct Ctx<'a, 'k> {
    client: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    slots: &'a CallSlots,
    deadline: Duration,
    q: &'a TrailQuery,
    plan: &'a DayPlan,
    downloads: Semaphore,
    cpu: Arc<Semaphore>,
    /// One per scanning thread at most, reused from file to file.
    scanners: Arc<Mutex<Vec<Scanner>>>,
    query: Arc<TrailQuery>,
    public_keys: &'a PublicKeys<'k>,
    keys: tokio::sync::Mutex<HashMap<String, Keys>>,
}

/// A digest object's decompressed text (or why not) and its signature metadata.
type Fetched = (Result<Vec<u8>, String>, Option<String>);

/// More pages than any one prefix holds (a year of a region's files is ~100 pages
/// of 1,000 keys); past it the listing is not S3 speaking.
const MAX_LIST_PAGES: u64 = 1_000_000;

/// One ListObjectsV2 walk of a prefix, every page: folders (with a delimiter) and keys.
#[derive(Default)]
struct Listed {
    prefixes: Vec<String>,
    keys: Vec<String>,
}

impl Ctx<'_, '_> {
    async fn list(&self, prefix: &str, folders: bool) -> Result<Listed, CallFailure> {
        let mut out = Listed::default();
        let mut tokens = Tokens::new(MAX_LIST_PAGES);
        let mut token: Option<String> = None;
        loop {
            let page = call_with_retry(Some(self.slots), self.deadline, || {
                let mut req = self
                    .client
                    .list_objects_v2()
                    .bucket(self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone());
                if folders {
                    req = req.delimiter("/");
                }
                req.send()
            })
            .await?;
            out.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            out.keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            if page.is_truncated() == Some(false) {
                return Ok(out);
            }
            token = tokens.next(page.next_continuation_token())?;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The names of the folders directly under `prefix`.
    async fn folders(&self, prefix: &str) -> Result<Vec<String>, CallFailure> {
        let listed = self.list(prefix, true).await?;
        Ok(listed
            .prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(prefix)?.strip_suffix('/'))
            .map(str::to_string)
            .collect())
    }

    /// The keys under `prefix` (`…/<region>/`) whose day folder lies in
    /// `first..=last`, a page at a time: from `start-after` the first day,
    /// stopped at the first key past the last.
    fn day_keys<'s>(
        &'s self,
        prefix: String,
        first: NaiveDate,
        last: NaiveDate,
    ) -> BoxStream<'s, Result<(NaiveDate, String), CallFailure>> {
        let start_after = format!("{prefix}{}", day_path(first));
        let state = (Some(None::<String>), false, Tokens::new(MAX_LIST_PAGES));
        stream::unfold(state, move |(token, done, mut tokens)| {
            let prefix = prefix.clone();
            let start_after = start_after.clone();
            async move {
                let token = token?;
                if done {
                    return None;
                }
                let page = call_with_retry(Some(self.slots), self.deadline, || {
                    self.client
                        .list_objects_v2()
                        .bucket(self.bucket)
                        .prefix(&prefix)
                        .start_after(&start_after)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await;
                let page = match page {
                    Ok(p) => p,
                    Err(f) => return Some((vec![Err(f)], (None, true, tokens))),
                };
                let mut items = Vec::new();
                let mut past = false;
                for k in page.contents().iter().filter_map(|o| o.key()) {
                    let day = k.strip_prefix(prefix.as_str()).and_then(day_of);
                    match day {
                        Some(d) if d > last => {
                            past = true;
                            break;
                        }
                        Some(d) if d >= first => items.push(Ok((d, k.to_string()))),
                        _ => {}
                    }
                }
                if past || page.is_truncated() == Some(false) {
                    return Some((items, (None, true, tokens)));
                }
                match tokens.next(page.next_continuation_token()) {
                    Ok(Some(next)) => Some((items, (Some(Some(next)), false, tokens))),
                    Ok(None) => Some((items, (None, true, tokens))),
                    Err(e) => {
                        items.push(Err(e.into()));
                        Some((items, (None, true, tokens)))
                    }
                }
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    /// The keys to check a home region's digests with, asked once per region.
    async fn keys_for(&self, region: &str) -> Keys {
        let mut cache = self.keys.lock().await;
        if let Some(k) = cache.get(region) {
            return k.clone();
        }
        let k = (self.public_keys)(region.to_string()).await;
        cache.insert(region.to_string(), k.clone());
        k
    }

    /// A digest object: its decompressed text and `x-amz-meta-signature`.
    async fn digest(&self, key: &str) -> Fetched {
        let _dl = self.downloads.acquire().await;
        let out = match call_with_retry(Some(self.slots), self.deadline, || {
            self.client.get_object().bucket(self.bucket).key(key).send()
        })
        .await
        {
            Ok(o) => o,
            Err(f) => return (Err(f.to_string()), None),
        };
        let sig = out.metadata().and_then(|m| m.get("signature")).cloned();
        if out.content_length().unwrap_or(0) as usize > MAX_DIGEST_OBJECT {
            return (Err("larger than any digest file".into()), sig);
        }
        let body = match out.body.collect().await {
            Ok(b) => b.into_bytes(),
            Err(e) => return (Err(format!("reading the object body: {e}")), sig),
        };
        let mut text = Vec::new();
        let res = inflate::open(&body[..], MAX_DIGEST_INFLATED)
            .read_to_end(&mut text)
            .map(|_| text)
            .map_err(|e| e.to_string());
        (res, sig)
    }

    /// Download one log file and scan it as it arrives.
    async fn file(&self, k: String, key: TrailKey, hash: bool) -> FileScan {
        let name = format!("s3://{}/{k}", self.bucket);
        let _dl = self.downloads.acquire().await;
        let first = call_with_retry(Some(self.slots), self.deadline, || {
            self.client.get_object().bucket(self.bucket).key(&k).send()
        })
        .await;
        let out = match first {
            Ok(o) => o,
            Err(f) => return FileScan::failed(&name, Some(key), f.to_string()),
        };
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_AHEAD);
        let pump = self.pump(&k, out.body, tx);
        let scan = async {
            let Ok(permit) = self.cpu.clone().acquire_owned().await else {
                return FileScan::failed(&name, Some(key.clone()), "scan pool closed".into());
            };
            let (scanners, query) = (self.scanners.clone(), self.query.clone());
            let (name2, key2) = (name.clone(), key.clone());
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let mut scanner = take_scanner(&scanners, query);
                let scan = scanner.read(&name2, Some(key2), Chunks::new(rx), size, hash);
                give_scanner(&scanners, scanner);
                scan
            });
            match task.await {
                Ok(scan) => scan,
                Err(e) => FileScan::failed(&name, Some(key.clone()), format!("scan failed: {e}")),
            }
        };
        let ((), scan) = tokio::join!(pump, scan);
        scan
    }

    /// Feed a body into the scan's queue; a cut-off body is resumed from the
    /// byte it stopped at. Stops when the scan stops reading.
    async fn pump(
        &self,
        key: &str,
        mut body: aws_sdk_s3::primitives::ByteStream,
        tx: mpsc::Sender<io::Result<Bytes>>,
    ) {
        let mut received = 0u64;
        let mut attempt = 1;
        loop {
            match body.next().await {
                None => return,
                Some(Ok(chunk)) => {
                    received += chunk.len() as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) if attempt < BODY_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(key, error = %e, received, "trail object body cut off, resumed");
                    let range = format!("bytes={received}-");
                    let again = call_with_retry(Some(self.slots), self.deadline, || {
                        self.client
                            .get_object()
                            .bucket(self.bucket)
                            .key(key)
                            .range(&range)
                            .send()
                    })
                    .await;
                    match again {
                        Ok(o) => body = o.body,
                        Err(f) => {
                            let _ = tx
                                .send(Err(io::Error::other(format!(
                                    "reading the object body: {f}"
                                ))))
                                .await;
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx
                        .send(Err(io::Error::other(format!(
                            "reading the object body: {e}"
                        ))))
                        .await;
                    return;
                }
            }
        }
    }

    /// One partition, whole: its digests, then its files streamed through the scan.
    async fn partition(
        &self,
        account: String,
        region: String,
        ct: String,
    ) -> (Acc, String, String, PartListing) {
        let mut acc = Acc::default();
        let mut listing = PartListing::default();
        let (Some(&first), Some(&last)) = (self.plan.days.first(), self.plan.days.last()) else {
            return (acc, account, region, listing);
        };
        // Digests: the plan's days and the next (a day's last hour is digested after midnight).
        let digest_prefix = format!(
            "{}CloudTrail-Digest/{region}/",
            ct.strip_suffix("CloudTrail/").unwrap_or(&ct)
        );
        let digest_last = last.succ_opt().unwrap_or(last);
        let mut digest_keys = Vec::new();
        let mut keys = self.day_keys(digest_prefix.clone(), first, digest_last);
        while let Some(item) = keys.next().await {
            match item {
                Ok((_, k)) if is_digest_name(&k) => digest_keys.push(k),
                Ok(_) => {}
                Err(f) => {
                    listing
                        .error
                        .get_or_insert(format!("s3://{}/{digest_prefix}: {f}", self.bucket));
                }
            }
        }
        drop(keys);
        let from = first
            .and_hms_opt(0, 0, 0)
            .map_or(self.q.window.start, |t| t.and_utc());
        let home = digest_keys.iter().find_map(|k| home_region_from_name(k));
        digest_keys.sort_by_key(|k| end_from_name(k));
        let fetched: Vec<(String, Fetched)> = stream::iter(digest_keys)
            .map(|k| async move {
                let d = self.digest(&k).await;
                (k, d)
            })
            .buffered(8)
            .collect()
            .await;
        // CloudTrail signs every digest it writes. Where none of a partition's
        // digests carries a signature the objects were copied without their
        // metadata: like a local copy, the hashes and the chain are checked, the
        // signatures cannot be (said so); where some do, the others are broken.
        let unsigned = fetched.iter().all(|(_, (_, sig))| sig.is_none());
        let sig_keys = match &home {
            _ if unsigned => Keys::Unchecked(
                "no digest object carries x-amz-meta-signature (copied without its metadata?)"
                    .into(),
            ),
            Some(h) => self.keys_for(h).await,
            None => Keys::Unchecked("no digest".into()),
        };
        let mut check = DigestCheck::new(sig_keys, from);
        for (k, (text, sig)) in fetched {
            let name = format!("s3://{}/{k}", self.bucket);
            check.add_digest(&name, text.as_deref().map_err(Clone::clone), sig.as_deref());
        }
        let hash = check.has_digests();

        // Log files, streamed from the listing into downloads and scans.
        let logs_prefix = format!("{ct}{region}/");
        let mut failed = None;
        {
            let jobs = self
                .day_keys(logs_prefix.clone(), first, last)
                .filter_map(|item| {
                    let out = match item {
                        Err(f) => {
                            failed
                                .get_or_insert(format!("s3://{}/{logs_prefix}: {f}", self.bucket));
                            None
                        }
                        Ok((day, k)) => {
                            let name = k.rsplit('/').next().unwrap_or("");
                            if is_log_file_name(name) {
                                listing.days_with_files.insert(day);
                                let delivered = delivered_from_name(name);
                                self.plan.keep_file(delivered).then(|| {
                                    let key = TrailKey {
                                        account: account.clone(),
                                        region: region.clone(),
                                        day,
                                        delivered,
                                    };
                                    (k, key)
                                })
                            } else {
                                None
                            }
                        }
                    };
                    futures::future::ready(out)
                })
                .map(|(k, key)| self.file(k, key, hash))
                .buffer_unordered(DOWNLOADS_IN_FLIGHT);
            let mut jobs = std::pin::pin!(jobs);
            while let Some(scan) = jobs.next().await {
                let delivered = scan.key.as_ref().and_then(|k| k.delivered);
                check.add_file(&scan.path, delivered, scan.sha256);
                acc.add(scan);
            }
        }
        if let Some(f) = failed {
            // A failed listing leaves the partition's later days unread.
            listing.error.get_or_insert(f);
            listing.failed_days.extend(self.plan.days.iter().copied());
        }
        let verdict = check.finish(in_scope(self.q, self.plan, &account, &region));
        acc.integrity
            .insert((account.clone(), region.clone()), verdict);
        (acc, account, region, listing)
    }
}

/// `YYYY/MM/DD/…` at the start of a key's rest → the day.
fn day_of(rest: &str) -> Option<NaiveDate> {
    let mut p = rest.splitn(4, '/');
    let (y, m, d) = (p.next()?, p.next()?, p.next()?);
    p.next()?;
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The scan's side of a body queue: chunks as they arrive, as a `BufRead`.
struct Chunks {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl Chunks {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Chunks {
            rx,
            cur: Bytes::new(),
            done: false,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cur.is_empty() && !self.done {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        Ok(&self.cur)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.cur.split_to(n.min(self.cur.len()));
    }
}

/// `prefix` as given by the user → the key prefix of the `AWSLogs/` folder.
fn logs_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        "AWSLogs/".to_string()
    } else if p == "AWSLogs" || p.ends_with("/AWSLogs") {
        format!("{p}/")
    } else {
        format!("{p}/AWSLogs/")
    }
}

use crate::ids::is_account_id;

#[allow(clippy::too_many_arguments)]
pub(super) async fn read(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    q: &TrailQuery,
    slots: &CallSlots,
    deadline: Duration,
    public_keys: &PublicKeys<'_>,
) -> Result<TrailResult, TrailError> {
    let plan = DayPlan::new(q.window);
    let ctx = Ctx {
        client,
        bucket,
        slots,
        deadline,
        q,
        plan: &plan,
        downloads: Semaphore::new(DOWNLOADS_IN_FLIGHT),
        cpu: Arc::new(Semaphore::new(default_threads(0))),
        scanners: Arc::new(Mutex::new(Vec::new())),
        query: Arc::new(q.clone()),
        public_keys,
        keys: tokio::sync::Mutex::new(HashMap::new()),
    };
    let base = logs_prefix(prefix);
    let list_err = |prefix: &str, f: CallFailure| TrailError::S3List {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        failure: f.to_string(),
    };
    let top = ctx.folders(&base).await.map_err(|f| list_err(&base, f))?;
    if top.is_empty() {
        return Err(TrailError::NoTrail {
            location: format!("s3://{bucket}/{base}"),
        });
    }

    // Accounts: under each organization folder (joined when known), or directly.
    let mut accounts: Vec<(String, String)> = Vec::new();
    for name in top {
        let folder = format!("{base}{name}/");
        if name.starts_with("o-") {
            let ids = match &q.accounts {
                Some(a) => a.iter().cloned().collect(),
                None => ctx
                    .folders(&folder)
                    .await
                    .map_err(|f| list_err(&folder, f))?
                    .into_iter()
                    .filter(|n| is_account_id(n))
                    .collect::<Vec<_>>(),
            };
            accounts.extend(ids.into_iter().map(|a| {
                let p = format!("{folder}{a}/CloudTrail/");
                (a, p)
            }));
        } else if is_account_id(&name) && q.wants_account(&name) {
            accounts.push((name, format!("{folder}CloudTrail/")));
        }
    }

    // Partitions stream out of the account listings (known regions are
    // joined) into the partition readers; nothing is listed per day.
    let failed_accounts = Mutex::new(Vec::new());
    let mut acc = Acc::default();
    let mut listing = Listing::default();
    {
        let ctx_ref = &ctx;
        let failed_ref = &failed_accounts;
        let parts = stream::iter(accounts)
            .map(|(account, ct)| async move {
                let regions = match &q.regions {
                    Some(r) => Ok(r.iter().cloned().collect()),
                    None => ctx_ref.folders(&ct).await,
                };
                match regions {
                    Ok(regions) => regions
                        .into_iter()
                        .map(|r| (account.clone(), r, ct.clone()))
                        .collect::<Vec<_>>(),
                    Err(f) => {
                        failed_ref
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((account, format!("s3://{bucket}/{ct}: {f}")));
                        Vec::new()
                    }
                }
            })
            .buffer_unordered(LISTS_IN_FLIGHT)
            .flat_map(stream::iter)
            .map(|(account, region, ct)| ctx_ref.partition(account, region, ct))
            .buffer_unordered(PARTITIONS_IN_FLIGHT);
        let mut parts = std::pin::pin!(parts);
        while let Some((part, account, region, pl)) = parts.next().await {
            acc.merge(part);
            *listing.partition(&account, &region) = pl;
        }
    }
    listing.failed_accounts = failed_accounts
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect();
    Ok(acc.finish(q, &plan, listing))
}

/// Inflate windows are reused across objects: at most one per core is live.
fn take_scanner(pool: &Mutex<Vec<Scanner>>, q: Arc<TrailQuery>) -> Scanner {
    pool.lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_else(|| Scanner::new(q, &select::real_parse, default_threads(0)))
}

fn give_scanner(pool: &Mutex<Vec<Scanner>>, scanner: Scanner) {
    pool.lock().unwrap_or_else(|p| p.into_inner()).push(scanner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_leads_to_awslogs() {
        assert_eq!(logs_prefix(""), "AWSLogs/");
        assert_eq!(logs_prefix("/"), "AWSLogs/");
        assert_eq!(logs_prefix("trail/"), "trail/AWSLogs/");
        assert_eq!(logs_prefix("a/b"), "a/b/AWSLogs/");
        assert_eq!(logs_prefix("a/AWSLogs/"), "a/AWSLogs/");
    }

    #[test]
    fn the_day_is_read_from_the_key() {
        assert_eq!(
            day_of("2025/02/19/x.json.gz"),
            NaiveDate::from_ymd_opt(2025, 2, 19)
        );
        assert_eq!(day_of("2025/02/19"), None);
        assert_eq!(day_of("2025/2/19/x"), None);
        assert_eq!(day_of("x/02/19/x"), None);
    }

    #[test]
    fn a_body_queue_reads_across_chunks_and_passes_errors_on() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b""))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cde"))).unwrap();
        tx.try_send(Err(io::Error::other("cut"))).unwrap();
        drop(tx);
        let mut out = Vec::new();
        let e = Chunks::new(rx).read_to_end(&mut out).unwrap_err();
        assert_eq!(out, b"abcde");
        assert_eq!(e.to_string(), "cut");
    }
}
