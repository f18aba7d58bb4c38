//! Trail files straight from S3: ListObjectsV2 by prefix (per account, region
//! and delivery day, so pruning costs no download), GetObject with a bounded
//! number of downloads in flight, and the scan on blocking threads bounded by
//! the number of cores.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use super::path::{day_path, delivered_from_name, is_log_file_name, DayPlan, TrailKey};
use super::{default_threads, select, Acc, FileScan, Listing, TrailError, TrailQuery, TrailResult};
use crate::retry::{call_with_retry, CallFailure, CallSlots};

/// Listing calls in flight (each also holds a call slot while it runs).
const LISTS_IN_FLIGHT: usize = 16;
/// Objects being downloaded or waiting for a core: bounds memory to this many files.
const DOWNLOADS_IN_FLIGHT: usize = 32;
/// A body cut off mid-download is fetched again this many times in all.
const BODY_ATTEMPTS: u32 = 3;

struct Ctx<'a> {
    client: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    slots: &'a CallSlots,
    deadline: Duration,
}

/// One ListObjectsV2 walk of a prefix, every page: folders (with a delimiter) and keys.
#[derive(Default)]
struct Listed {
    prefixes: Vec<String>,
    keys: Vec<String>,
}

impl Ctx<'_> {
    async fn list(&self, prefix: &str, folders: bool) -> Result<Listed, CallFailure> {
        let mut out = Listed::default();
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
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || page.is_truncated() == Some(false) {
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

    async fn get(&self, key: &str) -> Result<bytes::Bytes, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out = call_with_retry(Some(self.slots), self.deadline, || {
                self.client.get_object().bucket(self.bucket).key(key).send()
            })
            .await
            .map_err(|f| f.to_string())?;
            match out.body.collect().await {
                Ok(b) => return Ok(b.into_bytes()),
                Err(e) if attempt < BODY_ATTEMPTS => {
                    tracing::debug!(key, error = %e, "trail object body cut off, fetched again");
                }
                Err(e) => return Err(format!("reading the object body: {e}")),
            }
        }
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

fn is_account_id(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

pub(super) async fn read(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    q: &TrailQuery,
    slots: &CallSlots,
    deadline: Duration,
) -> Result<TrailResult, TrailError> {
    let ctx = Ctx {
        client,
        bucket,
        slots,
        deadline,
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

    // Partitions: known regions are joined, the others listed per account.
    let listing = Mutex::new(Listing::default());
    let per_account: Vec<(String, String, Result<Vec<String>, CallFailure>)> =
        stream::iter(accounts)
            .map(|(account, ct)| {
                let ctx = &ctx;
                async move {
                    let regions = match &q.regions {
                        Some(r) => Ok(r.iter().cloned().collect()),
                        None => ctx.folders(&ct).await,
                    };
                    (account, ct, regions)
                }
            })
            .buffer_unordered(LISTS_IN_FLIGHT)
            .collect()
            .await;
    let plan = DayPlan::new(q.window);
    let mut day_tasks: Vec<(String, String, chrono::NaiveDate, String)> = Vec::new();
    {
        let mut l = listing.lock().unwrap_or_else(|p| p.into_inner());
        for (account, ct, regions) in per_account {
            match regions {
                Err(f) => {
                    l.failed_accounts
                        .insert(account, format!("s3://{bucket}/{ct}: {f}"));
                }
                Ok(regions) => {
                    for region in regions {
                        l.partition(&account, &region);
                        for &day in &plan.days {
                            let p = format!("{ct}{region}/{}/", day_path(day));
                            day_tasks.push((account.clone(), region.clone(), day, p));
                        }
                    }
                }
            }
        }
    }

    // Day listings feed downloads; downloads feed the scan on blocking threads.
    let cores = default_threads(0);
    let cpu = Arc::new(Semaphore::new(cores));
    let buffers: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let query = Arc::new(q.clone());
    let plan_ref = &plan;
    let listing_ref = &listing;
    let ctx_ref = &ctx;
    let mut scans = stream::iter(day_tasks)
        .map(|(account, region, day, p)| async move {
            let res = ctx_ref.list(&p, false).await;
            (account, region, day, p, res)
        })
        .buffer_unordered(LISTS_IN_FLIGHT)
        .flat_map(|(account, region, day, p, res)| {
            let mut jobs = Vec::new();
            let mut l = listing_ref.lock().unwrap_or_else(|e| e.into_inner());
            match res {
                Err(f) => l.day_failed(&account, &region, day, format!("s3://{bucket}/{p}: {f}")),
                Ok(listed) => {
                    let mut keys: Vec<String> = listed
                        .keys
                        .into_iter()
                        .filter(|k| is_log_file_name(k.rsplit('/').next().unwrap_or("")))
                        .collect();
                    keys.sort();
                    if !keys.is_empty() {
                        l.partition(&account, &region).days_with_files.insert(day);
                    }
                    for k in keys {
                        let delivered = delivered_from_name(k.rsplit('/').next().unwrap_or(""));
                        if plan_ref.keep_file(delivered) {
                            let key = TrailKey {
                                account: account.clone(),
                                region: region.clone(),
                                day,
                                delivered,
                            };
                            jobs.push((k, key));
                        }
                    }
                }
            }
            stream::iter(jobs)
        })
        .map(|(k, key)| {
            let (cpu, buffers, query) = (cpu.clone(), buffers.clone(), query.clone());
            async move {
                let name = format!("s3://{bucket}/{k}");
                let body = match ctx_ref.get(&k).await {
                    Ok(b) => b,
                    Err(e) => return FileScan::failed(&name, Some(key), e),
                };
                let Ok(permit) = cpu.acquire_owned().await else {
                    return FileScan::failed(&name, Some(key), "scan pool closed".into());
                };
                let name2 = name.clone();
                let key2 = key.clone();
                let task = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let mut buf = take_buffer(&buffers);
                    let size = body.len() as u64;
                    let scan = select::scan_stream(
                        &name2,
                        Some(key2),
                        &body[..],
                        size,
                        false,
                        &query,
                        &mut buf,
                        &select::real_parse,
                    );
                    give_buffer(&buffers, buf);
                    scan
                });
                match task.await {
                    Ok(scan) => scan,
                    Err(e) => FileScan::failed(&name, Some(key), format!("scan failed: {e}")),
                }
            }
        })
        .buffer_unordered(DOWNLOADS_IN_FLIGHT);

    let mut acc = Acc::default();
    while let Some(scan) = scans.next().await {
        acc.add(scan);
    }
    drop(scans);
    let listing = listing.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(acc.finish(q, &plan, listing))
}

/// Inflate buffers are reused across objects: at most one per core is live.
fn take_buffer(pool: &Mutex<Vec<Vec<u8>>>) -> Vec<u8> {
    pool.lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default()
}

fn give_buffer(pool: &Mutex<Vec<Vec<u8>>>, buf: Vec<u8>) {
    pool.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
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
}
