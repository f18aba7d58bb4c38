//! A local copy of a trail's bucket. The walk goes straight to the folders that
//! can match (known account, region and day names are joined, not listed) and
//! feeds files through a bounded channel to a pool of scanning threads, each
//! with its own `select::Scanner`: a file is read and inflated whole into the
//! worker's reused buffers when it fits them (bounded per worker), else
//! streamed, never whole in memory. Where the partition has digest
//! files, they are read first and its files are checked against them; a local
//! copy keeps no S3 metadata, so signatures are not checked here.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use super::digest::{is_digest_name, DigestCheck, Keys, MAX_DIGEST_INFLATED};
use super::inflate;
use super::path::{day_path, delivered_from_name, is_log_file_name, parse_key, DayPlan, TrailKey};
use super::select::{self, Scanner};
use super::{default_threads, Acc, FileScan, Listing, TrailError, TrailQuery, TrailResult};

/// Prefix folders above `AWSLogs` are searched this deep.
const MAX_PREFIX_DEPTH: usize = 6;

struct Job {
    path: PathBuf,
    key: TrailKey,
    /// The partition has digests: hash the file's text for them.
    hash: bool,
}

/// What reaches the one thread that folds results: a partition's digest
/// check (before its files are queued), its files' scans, and its end.
enum Msg {
    Start(String, String, Box<DigestCheck>),
    Scan(Box<FileScan>),
    End(String, String, u64),
}

pub(super) fn read(root: &Path, q: &TrailQuery, threads: usize) -> Result<TrailResult, TrailError> {
    let root_err = |source| TrailError::Root {
        path: root.to_path_buf(),
        source,
    };
    if !fs::metadata(root).map_err(root_err)?.is_dir() {
        return Err(root_err(std::io::Error::new(
            ErrorKind::NotADirectory,
            "not a folder",
        )));
    }
    let mut logs = Vec::new();
    find_awslogs(root, 0, &mut logs).map_err(root_err)?;
    if logs.is_empty() {
        return Err(TrailError::NoTrail {
            location: root.display().to_string(),
        });
    }
    let threads = default_threads(threads);
    let plan = DayPlan::new(q.window);

    // A few files queued per worker: enough to hide the walk's latency,
    // few enough that memory does not follow the number of files.
    let (tx, rx) = mpsc::sync_channel::<Job>(threads * 4);
    let (out_tx, out_rx) = mpsc::sync_channel::<Msg>(threads * 8);
    let rx = Mutex::new(rx);
    let shared = Arc::new(q.clone());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let out = out_tx.clone();
                let rx = &rx;
                let scanner = Scanner::new(shared.clone(), &select::real_parse, threads);
                s.spawn(move || work(rx, scanner, &out))
            })
            .collect();
        let folder = s.spawn(|| fold(out_rx, q, &plan));
        let mut listing = Listing::default();
        let walk_out = out_tx;
        let mut walk = Walk {
            q,
            plan: &plan,
            listing: &mut listing,
            emit: &mut |job| {
                // Fails only when every worker is gone; joining says why.
                let _ = tx.send(job);
            },
            out: &walk_out,
        };
        let walked = logs.iter().try_for_each(|dir| walk.logs(dir));
        drop(tx);
        drop(walk_out);
        for w in workers {
            w.join().map_err(|_| TrailError::Worker)?;
        }
        let acc = folder.join().map_err(|_| TrailError::Worker)?;
        walked?;
        Ok(acc.finish(q, &plan, listing))
    })
}

fn work(rx: &Mutex<mpsc::Receiver<Job>>, mut scanner: Scanner, out: &mpsc::SyncSender<Msg>) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let Ok(job) = job else { break };
        let name = job.path.to_string_lossy();
        let scan = match fs::File::open(&job.path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((size, f)) => scanner.read(&name, Some(job.key), f, size, job.hash),
            Err(e) => FileScan::failed(&name, Some(job.key), format!("cannot read: {e}")),
        };
        if out.send(Msg::Scan(Box::new(scan))).is_err() {
            break;
        }
    }
}

/// Folds scans into one [`Acc`] and each partition's digest check, finished
/// as soon as all of its files are in (so only partitions in progress are held).
fn fold(rx: mpsc::Receiver<Msg>, q: &TrailQuery, plan: &DayPlan) -> Acc {
    struct Open {
        check: DigestCheck,
        seen: u64,
        expected: Option<u64>,
    }
    let mut acc = Acc::default();
    let mut open: HashMap<(String, String), Open> = HashMap::new();
    let close = |acc: &mut Acc, part: (String, String), o: Open| {
        let verdict = o.check.finish(in_scope(q, plan, &part.0, &part.1));
        acc.integrity.insert(part, verdict);
    };
    for msg in rx {
        match msg {
            Msg::Start(a, r, check) => {
                open.insert(
                    (a, r),
                    Open {
                        check: *check,
                        seen: 0,
                        expected: None,
                    },
                );
            }
            Msg::Scan(scan) => {
                let part = scan
                    .key
                    .as_ref()
                    .map(|k| (k.account.clone(), k.region.clone()));
                if let Some(part) = part {
                    if let Some(o) = open.get_mut(&part) {
                        let delivered = scan.key.as_ref().and_then(|k| k.delivered);
                        o.check.add_file(&scan.path, delivered, scan.sha256);
                        o.seen += 1;
                        if o.expected == Some(o.seen) {
                            if let Some(o) = open.remove(&part) {
                                close(&mut acc, part, o);
                            }
                        }
                    }
                }
                acc.add(*scan);
            }
            Msg::End(a, r, n) => {
                let part = (a, r);
                if let Some(o) = open.get_mut(&part) {
                    o.expected = Some(n);
                    if o.seen >= n {
                        if let Some(o) = open.remove(&part) {
                            close(&mut acc, part, o);
                        }
                    }
                }
            }
        }
    }
    for (part, o) in open {
        close(&mut acc, part, o);
    }
    acc
}

/// Every `AWSLogs` folder at or below `dir` (through prefix folders).
fn find_awslogs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.file_name().is_some_and(|n| n == "AWSLogs") {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut subdirs = list_dirs(dir)?;
    subdirs.sort();
    for name in subdirs {
        let sub = dir.join(&name);
        if name == "AWSLogs" {
            out.push(sub);
        } else if depth < MAX_PREFIX_DEPTH {
            // A prefix folder we cannot read holds nothing we can read either.
            let _ = find_awslogs(&sub, depth + 1, out);
        }
    }
    Ok(())
}

/// Names of the folders directly in `dir`, sorted.
fn list_dirs(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

use crate::ids::is_account_id;

struct Walk<'a> {
    q: &'a TrailQuery,
    plan: &'a DayPlan,
    listing: &'a mut Listing,
    emit: &'a mut dyn FnMut(Job),
    out: &'a mpsc::SyncSender<Msg>,
}

impl Walk<'_> {
    fn logs(&mut self, dir: &Path) -> Result<(), TrailError> {
        let root_err = |source| TrailError::Root {
            path: dir.to_path_buf(),
            source,
        };
        for name in list_dirs(dir).map_err(root_err)? {
            if name.starts_with("o-") {
                let org = dir.join(&name);
                let accounts: Vec<String> = match &self.q.accounts {
                    // Known accounts are joined, not listed: an organization
                    // folder can hold thousands.
                    Some(a) => a.iter().cloned().collect(),
                    None => list_dirs(&org)
                        .map_err(|source| TrailError::Root {
                            path: org.clone(),
                            source,
                        })?
                        .into_iter()
                        .filter(|n| is_account_id(n))
                        .collect(),
                };
                for a in accounts {
                    self.account(&a, &org.join(&a));
                }
            } else if is_account_id(&name) && self.q.wants_account(&name) {
                self.account(&name, &dir.join(&name));
            }
        }
        Ok(())
    }

    fn account(&mut self, account: &str, dir: &Path) {
        let ct = dir.join("CloudTrail");
        let regions: Vec<String> = match &self.q.regions {
            Some(r) => r.iter().cloned().collect(),
            None => match list_dirs(&ct) {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    self.listing
                        .failed_accounts
                        .insert(account.to_string(), format!("{}: {e}", ct.display()));
                    return;
                }
            },
        };
        for region in regions {
            let check = self.digests(&dir.join("CloudTrail-Digest").join(&region));
            let hash = check.has_digests();
            let _ = self.out.send(Msg::Start(
                account.to_string(),
                region.clone(),
                Box::new(check),
            ));
            let jobs = self.region(account, &region, &ct.join(&region), hash);
            let _ = self.out.send(Msg::End(account.to_string(), region, jobs));
        }
    }

    /// Every digest of the partition that can list a file the scan reads: the
    /// plan's days and the day after (a day's last hour is digested after midnight).
    fn digests(&self, dir: &Path) -> DigestCheck {
        let from = self.plan.days.first().and_then(|d| d.and_hms_opt(0, 0, 0));
        let from = from.map_or(self.q.window.start, |t| t.and_utc());
        let mut check = DigestCheck::new(
            Keys::Unchecked("local copy (a copy keeps no S3 metadata)".into()),
            from,
        );
        let mut days = self.plan.days.clone();
        if let Some(next) = days.last().and_then(|d| d.succ_opt()) {
            days.push(next);
        }
        for day in days {
            let day_dir = dir.join(day_path(day));
            let Ok(rd) = fs::read_dir(&day_dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
                .filter(|n| is_digest_name(n))
                .collect();
            names.sort();
            for n in names {
                let path = day_dir.join(&n);
                let text = read_digest(&path);
                check.add_digest(
                    &path.to_string_lossy(),
                    text.as_deref().map_err(Clone::clone),
                    None,
                );
            }
        }
        check
    }

    /// Queue the partition's files; how many were queued.
    fn region(&mut self, account: &str, region: &str, dir: &Path, hash: bool) -> u64 {
        let mut jobs = 0;
        self.listing.partition(account, region);
        for &day in &self.plan.days {
            let day_dir = dir.join(day_path(day));
            let rd = match fs::read_dir(&day_dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    let msg = format!("{}: {e}", day_dir.display());
                    self.listing.day_failed(account, region, day, msg);
                    continue;
                }
            };
            let mut names: Vec<String> = Vec::new();
            for entry in rd {
                match entry {
                    Ok(e) => {
                        if let Some(n) = e.file_name().to_str() {
                            if is_log_file_name(n) {
                                names.push(n.to_string());
                            }
                        }
                    }
                    Err(e) => {
                        let msg = format!("{}: {e}", day_dir.display());
                        self.listing.day_failed(account, region, day, msg);
                    }
                }
            }
            if names.is_empty() {
                continue;
            }
            names.sort();
            self.listing
                .partition(account, region)
                .days_with_files
                .insert(day);
            for n in names {
                let delivered = delivered_from_name(&n);
                if self.plan.keep_file(delivered) {
                    jobs += 1;
                    (self.emit)(Job {
                        path: day_dir.join(&n),
                        key: TrailKey {
                            account: account.to_string(),
                            region: region.to_string(),
                            day,
                            delivered,
                        },
                        hash,
                    });
                }
            }
        }
        jobs
    }
}

/// A digest file's decompressed text, bounded like any trail file.
fn read_digest(path: &Path) -> Result<Vec<u8>, String> {
    let f = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut text = Vec::new();
    inflate::open(BufReader::new(f), MAX_DIGEST_INFLATED)
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// Would the reader have read this digest-listed key of partition (account, region)?
pub(super) fn in_scope<'a>(
    q: &'a TrailQuery,
    plan: &'a DayPlan,
    account: &'a str,
    region: &'a str,
) -> impl Fn(&str) -> bool + 'a {
    move |key: &str| {
        parse_key(key).is_some_and(|k| {
            k.account == account
                && k.region == region
                && q.wants_account(account)
                && q.wants_region(region)
                && plan.days.contains(&k.day)
                && plan.keep_file(k.delivered)
        })
    }
}
