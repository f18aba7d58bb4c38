//! Listing and reading an organization trail over S3 at scale: calls per object
//! and peak memory, for windows of different lengths over the same tree.
//!
//!     cargo run --release --example trail_s3_bench -- [--accounts 1000] [--regions 4]
//!         [--days 30] [--windows 10,30] [--files-per-day 1] [--dir PATH] [--keep-none]
//!         [--digests]
//!
//! Generates (once; reused when present) `accounts × regions × days` of trail
//! layout with `trail::gen` into PATH (default $TMPDIR/ssm-trail-s3-bench-…),
//! serves it from the simulator's S3 in a child process, and, for each window
//! (the last N days of the tree), reads it with `trail::read_s3` in a fresh
//! child process, so each peak RSS (VmHWM) is that read's alone. The
//! simulator's counters give the ListObjectsV2 and GetObject calls. With
//! `--keep-none` the query names no call that is in the tree: every object is
//! still listed, downloaded, inflated and split, but no event is kept, so the
//! peak is the reader's own, not the size of the result. With `--digests` the
//! tree has hourly signed digests and the read checks every file, chain link
//! and signature (with the generator's key). See BENCHMARKS.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use futures::future::BoxFuture;
use sim::trail_gen::{digest_public_key, generate, GenSpec};
use sim::{SimConfig, Simulator, TRAIL_BUCKET};
use ssm_session_audit::call::CallSlots;
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::digest::{Keys, PublicKey};
use ssm_session_audit::trail::{read_s3_with_keys, TrailQuery};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const FIRST_DAY: &str = "2025-03-01";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = flag(&args, "--serve") {
        return serve(Path::new(&dir));
    }
    if let Some(endpoint) = flag(&args, "--read") {
        let days: u64 = flag(&args, "--window-days")
            .ok_or("--window-days")?
            .parse()?;
        let last: u64 = flag(&args, "--tree-days").ok_or("--tree-days")?.parse()?;
        return read(
            &endpoint,
            days,
            last,
            args.iter().any(|a| a == "--keep-none"),
        );
    }
    let accounts: u32 = flag(&args, "--accounts").map_or(Ok(1000), |v| v.parse())?;
    let regions: usize = flag(&args, "--regions").map_or(Ok(4), |v| v.parse())?;
    let days: u32 = flag(&args, "--days").map_or(Ok(30), |v| v.parse())?;
    let per_day: u32 = flag(&args, "--files-per-day").map_or(Ok(1), |v| v.parse())?;
    let digests = args.iter().any(|a| a == "--digests");
    let windows: Vec<u64> = flag(&args, "--windows")
        .unwrap_or_else(|| "10,30".into())
        .split(',')
        .map(|w| w.parse())
        .collect::<Result<_, _>>()?;
    let dir = flag(&args, "--dir").map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "ssm-trail-s3-bench-{accounts}x{regions}x{days}x{per_day}{}",
            if digests { "-digests" } else { "" }
        ))
    });
    ensure_tree(&dir, accounts, regions, days, per_day, digests)?;

    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .args(["--serve", &dir.to_string_lossy()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let endpoint = line.trim().to_string();
    eprintln!("simulator S3 at {endpoint}");
    println!("| window (days) | log files read | events kept | digests read | files validated | ListObjectsV2 | GetObject | calls per object | seconds | peak RSS (MB) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for w in windows {
        let before = stats(&endpoint)?;
        let mut cmd = Command::new(&exe);
        cmd.args(["--read", &endpoint, "--window-days", &w.to_string()])
            .args(["--tree-days", &days.to_string()]);
        if args.iter().any(|a| a == "--keep-none") {
            cmd.arg("--keep-none");
        }
        let out = cmd.stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            return Err(format!("the read of {w} days failed").into());
        }
        let after = stats(&endpoint)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| -> u64 {
            text.split_whitespace()
                .find_map(|t| t.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let calls = |s: &serde_json::Value, op: &str| s["calls"][op].as_u64().unwrap_or(0);
        let lists = calls(&after, "ListObjectsV2") - calls(&before, "ListObjectsV2");
        let gets = calls(&after, "GetObject") - calls(&before, "GetObject");
        let files = get("files");
        println!(
            "| {w} | {files} | {} | {} | {} | {lists} | {gets} | {:.3} | {:.1} | {} |",
            get("events"),
            get("digests"),
            get("validated"),
            (lists + gets) as f64 / (files + get("digests")).max(1) as f64,
            get("millis") as f64 / 1000.0,
            get("peak_mb"),
        );
    }
    drop(server.stdin.take());
    let _ = server.wait();
    Ok(())
}

fn ensure_tree(
    dir: &Path,
    accounts: u32,
    regions: usize,
    days: u32,
    per_day: u32,
    digests: bool,
) -> Res<()> {
    let done = dir.join("bench-done.txt");
    if done.exists() {
        return Ok(());
    }
    let all = [
        "us-east-1",
        "eu-west-1",
        "ap-southeast-2",
        "us-west-2",
        "eu-central-1",
    ];
    let spec = GenSpec {
        org_id: Some("o-bench0000001".into()),
        accounts: (1..=accounts)
            .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
            .collect(),
        regions: all.iter().take(regions).map(|s| s.to_string()).collect(),
        first_day: FIRST_DAY.parse()?,
        days,
        files_per_day: per_day,
        records_per_file: 6,
        session_share: 0.05,
        corrupt_files: 0,
        malformed_records: 0,
        gaps: Vec::new(),
        level: 6,
        seed: 13,
        digests,
        tamper: Vec::new(),
    };
    eprintln!(
        "generating {accounts} x {regions} x {days} days into {} ...",
        dir.display()
    );
    let t = Instant::now();
    let m = generate(dir, &spec)?;
    eprintln!(
        "{} files in {:.0} s",
        m.files.len(),
        t.elapsed().as_secs_f64()
    );
    std::fs::write(done, format!("files {}\n", m.files.len()))?;
    Ok(())
}

fn serve(dir: &Path) -> Res<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let sim = Simulator::start(SimConfig {
            trail_root: Some(dir.to_path_buf()),
            ..SimConfig::default()
        })
        .await?;
        println!("{}", sim.endpoint());
        std::io::stdout().flush()?;
        // Until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        sim.shutdown().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

fn stats(endpoint: &str) -> Res<serde_json::Value> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET /_sim/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(serde_json::from_str(body.trim())?)
}

fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn read(endpoint: &str, window_days: u64, tree_days: u64, keep_none: bool) -> Res<()> {
    let first: NaiveDate = FIRST_DAY.parse()?;
    let last = first + Days::new(tree_days - 1);
    let start = last + Days::new(1) - Days::new(window_days);
    let window = TimeWindow {
        start: start.and_hms_opt(0, 0, 0).ok_or("day")?.and_utc(),
        end: last.and_hms_opt(23, 59, 59).ok_or("day")?.and_utc(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let creds = aws_sdk_s3::config::Credentials::new("AKIABENCH", "bench", None, None, "bench");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let mut query = TrailQuery::new(window);
        if keep_none {
            query.event_names = vec!["NoSuchCall".into()];
        }
        let t = Instant::now();
        let (fingerprint, der) = digest_public_key();
        let keys = move |_region: String| -> BoxFuture<'static, Keys> {
            let k = Keys::from_list([PublicKey {
                fingerprint: fingerprint.clone(),
                der: der.clone(),
            }]);
            Box::pin(async move { k })
        };
        let r = read_s3_with_keys(
            &client,
            TRAIL_BUCKET,
            "",
            &query,
            &CallSlots::new(64),
            Duration::from_secs(60),
            &keys,
        )
        .await?;
        let c = &r.coverage;
        let i = &c.integrity;
        if !c.bad_files.is_empty()
            || !c.failed_accounts.is_empty()
            || i.files_missing
                + i.files_altered
                + i.files_unlisted
                + i.digests_broken
                + i.digests_missing
                > 0
        {
            return Err(format!(
                "{} bad files, {} failed accounts",
                c.bad_files.len(),
                c.failed_accounts.len()
            )
            .into());
        }
        println!(
            "files={} events={} digests={} validated={} partitions={} millis={} peak_mb={}",
            c.files_read,
            r.events.len(),
            i.digests_read,
            i.files_validated,
            c.partitions.values().map(|r| r.len()).sum::<usize>(),
            t.elapsed().as_millis(),
            peak_mb()
        );
        Ok(())
    })
}
