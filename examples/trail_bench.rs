//! Throughput of the trail-file reader against the usual tools.
//!
//!     cargo run --release --example trail_bench -- --gb 2 [--dir PATH] [--runs 3]
//!         [--python PATH] [--no-jq] [--no-duckdb]
//!
//! Generates ~GB of uncompressed trail JSON (gzip files of 0.7–3.3 MB, session calls
//! 0.2 % of the records) into PATH (default: $TMPDIR/ssm-trail-bench-<gb>gb, reused
//! when present), warms the page cache, then times, on the same files:
//! our reader with 1 thread and with every core; `gzip -dc` (decompression alone);
//! `zcat | jq` selecting the session calls; DuckDB's `read_json`
//! (benches/trail/duckdb_count.py, with `--python` pointing at an interpreter that has
//! `duckdb`). Every tool must return the same number of records. Throughput is
//! uncompressed JSON bytes per second. See docs/bench-trail.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{Days, NaiveDate};
use sim::trail_gen::{generate, GenSpec};
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::{read_dir, TrailQuery};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    gb: f64,
    dir: Option<PathBuf>,
    runs: usize,
    python: String,
    jq: bool,
    duckdb: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        gb: 2.0,
        dir: None,
        runs: 3,
        python: "python3".into(),
        jq: true,
        duckdb: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--gb" => a.gb = value()?.parse()?,
            "--dir" => a.dir = Some(value()?.into()),
            "--runs" => a.runs = value()?.parse()?,
            "--python" => a.python = value()?,
            "--no-jq" => a.jq = false,
            "--no-duckdb" => a.duckdb = false,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(a)
}

/// What the tree holds, saved beside it so a reused tree needs no manifest.
struct TreeInfo {
    first_day: NaiveDate,
    days: u32,
    sessions: u64,
    files: u64,
    bytes_uncompressed: u64,
    bytes_compressed: u64,
}

const FIRST_DAY: &str = "2025-03-01";

fn ensure_tree(dir: &Path, gb: f64) -> Res<TreeInfo> {
    let info_path = dir.join("bench-info.txt");
    if let Ok(text) = std::fs::read_to_string(&info_path) {
        let get = |k: &str| -> Res<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .map(str::to_string)
                .ok_or_else(|| format!("{} has no {k}", info_path.display()).into())
        };
        eprintln!("reusing the tree in {}", dir.display());
        return Ok(TreeInfo {
            first_day: get("first_day")?.parse()?,
            days: get("days")?.parse()?,
            sessions: get("sessions")?.parse()?,
            files: get("files")?.parse()?,
            bytes_uncompressed: get("bytes_uncompressed")?.parse()?,
            bytes_compressed: get("bytes_compressed")?.parse()?,
        });
    }
    // 8 accounts x 3 regions x 6 files a day of ~2 MB: days follow from the size.
    let (accounts, regions, per_day, records) = (8u32, 3u32, 6u32, 1500u32);
    let file_bytes = records as f64 * 1350.0;
    let days = ((gb * 1e9) / (file_bytes * (accounts * regions * per_day) as f64)).ceil() as u32;
    let spec = GenSpec {
        org_id: Some("o-bench0000001".into()),
        accounts: (1..=accounts)
            .map(|i| format!("{:012}", i * 111_111_111))
            .collect(),
        regions: ["us-east-1", "eu-west-1", "ap-southeast-2"]
            .iter()
            .take(regions as usize)
            .map(|s| s.to_string())
            .collect(),
        first_day: FIRST_DAY.parse()?,
        days: days.max(1),
        files_per_day: per_day,
        records_per_file: records,
        session_share: 0.002,
        // Every tool must read every file: nothing corrupt here (tests cover that).
        corrupt_files: 0,
        malformed_records: 0,
        gaps: Vec::new(),
        digests: false,
        tamper: Vec::new(),
        level: 6,
        seed: 2025,
    };
    eprintln!(
        "generating ~{gb} GB into {} ({} days) ...",
        dir.display(),
        spec.days
    );
    let t = Instant::now();
    let m = generate(dir, &spec)?;
    eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    let info = TreeInfo {
        first_day: spec.first_day,
        days: spec.days,
        sessions: m.sessions.len() as u64,
        files: m.files.len() as u64,
        bytes_uncompressed: m.bytes_uncompressed(),
        bytes_compressed: m.bytes_compressed(),
    };
    std::fs::write(
        &info_path,
        format!(
            "first_day {}\ndays {}\nsessions {}\nfiles {}\nbytes_uncompressed {}\nbytes_compressed {}\n",
            info.first_day,
            info.days,
            info.sessions,
            info.files,
            info.bytes_uncompressed,
            info.bytes_compressed
        ),
    )?;
    Ok(info)
}

fn trail_files(dir: &Path) -> Res<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("AWSLogs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Best (shortest) of `runs` timings of `f`, which returns the records it kept.
fn best<F: FnMut() -> Res<u64>>(runs: usize, mut f: F) -> Res<(f64, u64)> {
    let mut best = f64::MAX;
    let mut kept = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        kept = f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((best, kept))
}

/// Run a shell pipeline over the file list (NUL-separated in `list`); its stdout.
fn shell(script: &str, list: &Path) -> Res<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(list)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("`{script}` failed: {}", out.status).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn main() -> Res<()> {
    let a = args()?;
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ssm-trail-bench-{}gb", a.gb)));
    let info = ensure_tree(&dir, a.gb)?;
    let files = trail_files(&dir)?;
    if files.len() as u64 != info.files {
        return Err(format!(
            "{} holds {} files, its bench-info.txt says {}",
            dir.display(),
            files.len(),
            info.files
        )
        .into());
    }
    let list = dir.join("bench-files.lst");
    let mut names = Vec::new();
    for f in &files {
        names.extend_from_slice(f.as_os_str().as_encoded_bytes());
        names.push(0);
    }
    std::fs::write(&list, names)?;
    // Page cache warm for every contender.
    for f in &files {
        std::fs::read(f)?;
    }

    let first = info
        .first_day
        .checked_sub_days(Days::new(1))
        .ok_or("date")?;
    let last = info
        .first_day
        .checked_add_days(Days::new(info.days as u64))
        .ok_or("date")?;
    let window = TimeWindow {
        start: first.and_hms_opt(0, 0, 0).ok_or("date")?.and_utc(),
        end: last.and_hms_opt(23, 59, 59).ok_or("date")?.and_utc(),
    };
    let q = TrailQuery::new(window);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb = info.bytes_uncompressed as f64 / 1e6;
    println!(
        "tree: {} files, {:.0} MB uncompressed, {:.0} MB gzip, {} session records; {} cores",
        info.files,
        mb,
        info.bytes_compressed as f64 / 1e6,
        info.sessions,
        cores
    );

    let mut rows: Vec<(String, f64, u64)> = Vec::new();
    let ours = |threads: usize| -> Res<(f64, u64)> {
        best(a.runs, || {
            let r = read_dir(&dir, &q, threads)?;
            if r.coverage.bytes_uncompressed != info.bytes_uncompressed {
                return Err("our reader did not read every byte".into());
            }
            Ok(r.events.len() as u64)
        })
    };
    let (s, n) = ours(1)?;
    rows.push(("ssm-session-audit, 1 thread".into(), s, n));
    if cores > 1 {
        let (s, n) = ours(cores)?;
        rows.push((format!("ssm-session-audit, {cores} threads"), s, n));
    }
    let (s, _) = best(a.runs, || {
        shell(r#"xargs -0 gzip -dc < "$1" > /dev/null"#, &list)?;
        Ok(0)
    })?;
    rows.push(("gzip -dc (decompression only)".into(), s, info.sessions));
    if a.jq {
        let (s, n) = best(1, || {
            let out = shell(
                r#"xargs -0 zcat < "$1" | jq -c '.Records[] | select(.eventSource=="ssm.amazonaws.com" and (.eventName=="StartSession" or .eventName=="ResumeSession" or .eventName=="TerminateSession"))' | wc -l"#,
                &list,
            )?;
            Ok(out.trim().parse()?)
        })?;
        rows.push(("zcat \\| jq".into(), s, n));
    }
    if a.duckdb {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/trail/duckdb_count.py");
        let glob = format!("{}/AWSLogs/**/*.json.gz", dir.display());
        let start = window.start.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let end = window.end.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (s, n) = best(a.runs.min(2), || {
            let out = Command::new(&a.python)
                .arg(&script)
                .args([&glob, &start, &end])
                .stderr(Stdio::inherit())
                .output()?;
            if !out.status.success() {
                return Err(format!("duckdb script failed: {}", out.status).into());
            }
            let text = String::from_utf8(out.stdout)?;
            Ok(text.split_whitespace().next().ok_or("no output")?.parse()?)
        })?;
        rows.push((format!("DuckDB read_json ({cores} threads)"), s, n));
    }

    println!();
    println!("| reader | seconds | MB/s (uncompressed) | records kept |");
    println!("|---|---:|---:|---:|");
    let mut ok = true;
    for (name, s, n) in &rows {
        println!("| {name} | {s:.2} | {:.0} | {n} |", mb / s);
        ok &= *n == info.sessions;
    }
    println!();
    if !ok {
        return Err(format!(
            "a reader did not return the {} session records",
            info.sessions
        )
        .into());
    }
    println!(
        "every reader returned the {} session records",
        info.sessions
    );
    Ok(())
}
