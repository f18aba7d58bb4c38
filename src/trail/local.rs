//! A local copy of a trail's bucket. The walk goes straight to the folders that
//! can match (known account, region and day names are joined, not listed) and
//! feeds files through a bounded channel to a pool of scanning threads.

use std::fs;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use super::path::{day_path, delivered_from_name, is_log_file_name, DayPlan, TrailKey};
use super::{default_threads, select, Acc, FileScan, Listing, TrailError, TrailQuery, TrailResult};

/// Prefix folders above `AWSLogs` are searched this deep.
const MAX_PREFIX_DEPTH: usize = 6;
/// Compressed bytes read from a file at a time.
const READ_BUF: usize = 256 << 10;

struct Job {
    path: PathBuf,
    key: TrailKey,
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
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(|| work(&rx, q))).collect();
        let mut listing = Listing::default();
        let mut walk = Walk {
            q,
            plan: &plan,
            listing: &mut listing,
            emit: &mut |job| {
                // Fails only when every worker is gone; joining says why.
                let _ = tx.send(job);
            },
        };
        let walked = logs.iter().try_for_each(|dir| walk.logs(dir));
        drop(tx);
        let mut acc = Acc::default();
        for w in workers {
            acc.merge(w.join().map_err(|_| TrailError::Worker)?);
        }
        walked?;
        Ok(acc.finish(q, &plan, listing))
    })
}

fn work(rx: &Mutex<mpsc::Receiver<Job>>, q: &TrailQuery) -> Acc {
    let mut acc = Acc::default();
    let mut buf = Vec::new();
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let Ok(job) = job else { break };
        let name = job.path.to_string_lossy();
        let scan = match fs::File::open(&job.path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((size, f)) => select::scan_stream(
                &name,
                Some(job.key),
                BufReader::with_capacity(READ_BUF, f),
                size,
                false,
                q,
                &mut buf,
                &select::real_parse,
            ),
            Err(e) => FileScan::failed(&name, Some(job.key), format!("cannot read: {e}")),
        };
        acc.add(scan);
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

fn is_account_id(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

struct Walk<'a> {
    q: &'a TrailQuery,
    plan: &'a DayPlan,
    listing: &'a mut Listing,
    emit: &'a mut dyn FnMut(Job),
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
            self.region(account, &region, &ct.join(&region));
        }
    }

    fn region(&mut self, account: &str, region: &str, dir: &Path) {
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
                    (self.emit)(Job {
                        path: day_dir.join(&n),
                        key: TrailKey {
                            account: account.to_string(),
                            region: region.to_string(),
                            day,
                            delivered,
                        },
                    });
                }
            }
        }
    }
}
