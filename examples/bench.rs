//! The organization-scan benchmark (BENCHMARKS.md "Organization scan").
//!
//! This process hosts the simulated organization; every scanner runs as a child
//! process against it (our release binary, the boto3 thread-pool script, the AWS
//! CLI loop), so a child's peak RSS is its own and not the simulator's. Each run
//! gets a fresh simulator (cold rate buckets and render cache), and every event id
//! a scanner returns is checked against the simulator's ground truth.
//!
//!     cargo build --release --bin ssm-session-audit --example bench
//!     target/release/examples/bench --workloads a,b100,c --peers boto3
//!
//! Options: `--workloads a,b100,b10000,c,i60,small,q1000,q10000` (default `a`; `a@50+400+800`
//! runs a workload at those round trips in ms, jitter ±25 %, default 50), `--peers
//! boto3,boto3-standard,cli@small` (default none; `peer@w1+w2` runs a peer on those
//! workloads only, else on every one), `--concurrency N` (our `--concurrency`; default: not
//! given, the scan sizes its own bound),
//! `--workers N` (boto3 threads, default 32), `--bin PATH` (default: the
//! `ssm-session-audit` next to this example), `--json FILE` (every figure),
//! `--runs N` (repeat our scan, default 1), `--session-manager off` (our scan reads
//! CloudTrail only; default on, as the tool's own default), `--request-path SHARE`
//! (the share of each round trip, 0 to 1, spent before the simulator's rate bucket
//! counts the call, so that calls sent at the pace arrive closer together; default 0),
//! `--lookup-burst N` (the simulator's LookupEvents bucket size; default max(1, rate)),
//! `--lookup-window` (the simulator counts LookupEvents by a sliding second instead).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sim::{HeavyPartition, SimConfig, SimStats, Simulator};
use ssm_session_audit::model::RunStats;

/// LookupEvents' largest page.
const PAGE: usize = 50;
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"];
const EVENT_NAMES: [&str; 3] = ["StartSession", "ResumeSession", "TerminateSession"];
const LATENCY: Duration = Duration::from_millis(50);
const JITTER: Duration = Duration::from_millis(12);
/// Cores of this machine (the CPU bound divides by them).
fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}
/// What the simulator's static credentials look like: the management account's caller.
const ACCESS_KEY: &str = "AKIABENCHMANAGEMENT1";
const SECRET_KEY: &str = "bench-secret-not-a-real-key";

#[derive(Debug, Clone)]
struct Workload {
    name: &'static str,
    what: String,
    sim: SimConfig,
}

/// Round trip to Organizations and STS when the regions' is given: the scanner
/// runs in (or near) its home region; the regions it reads are far.
const HOME_LATENCY: Duration = Duration::from_millis(50);

/// `name` or `name@ms`: the workload with CloudTrail at that round trip, jitter
/// ±25 %, Organizations and STS at [`HOME_LATENCY`] ± 25 %.
fn workload_at(name: &str, latency_ms: Option<u64>) -> Option<Workload> {
    let mut w = workload(name)?;
    if let Some(ms) = latency_ms {
        w.sim.latency = Duration::from_millis(ms);
        w.sim.jitter = Duration::from_millis(ms / 4);
        // i60 stands for a stand-in with one round trip for every service.
        if !name.starts_with("i60") {
            w.sim.home_latency = Some(HOME_LATENCY);
        }
    }
    Some(w)
}

fn workload(name: &str) -> Option<Workload> {
    let base = |accounts: usize| SimConfig {
        accounts,
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        latency: LATENCY,
        jitter: JITTER,
        lookup_rate: 2.0,
        sessions_per_partition: 4,
        // A few partitions of 10+ pages (per event name: ~45% Start, ~45% Terminate).
        heavy_partitions: [
            (7, 0, 1_200),
            (accounts / 2, 1, 1_000),
            (accounts - 1, 3, 800),
        ]
        .iter()
        .map(|&(a, r, events)| HeavyPartition {
            account_index: a % accounts,
            region: REGIONS[r].to_string(),
            events,
        })
        .collect(),
        ..SimConfig::default()
    };
    let (name, what, sim) = match name {
        "a" => ("a", "1,000 accounts x 4 regions".to_string(), base(1_000)),
        "b100" => ("b100", "100 accounts x 4 regions".into(), base(100)),
        "b10000" => ("b10000", "10,000 accounts x 4 regions".into(), base(10_000)),
        "c" => (
            "c",
            "1 partition of 5,000 events".into(),
            SimConfig {
                accounts: 1,
                regions: vec![REGIONS[0].to_string()],
                latency: LATENCY,
                jitter: JITTER,
                lookup_rate: 2.0,
                sessions_per_partition: 0,
                heavy_partitions: vec![HeavyPartition {
                    account_index: 0,
                    region: REGIONS[0].to_string(),
                    events: 5_000,
                }],
                ..SimConfig::default()
            },
        ),
        // No activity at all: what an account costs beyond its events.
        "q1000" | "q10000" => (
            if name == "q1000" { "q1000" } else { "q10000" },
            format!(
                "{} accounts x 4 regions, no events",
                if name == "q1000" { "1,000" } else { "10,000" }
            ),
            SimConfig {
                sessions_per_partition: 0,
                heavy_partitions: Vec::new(),
                ..base(if name == "q1000" { 1_000 } else { 10_000 })
            },
        ),
        // Like the independent check of issue 16: 60 accounts, one heavy partition in
        // an account of the last ListAccounts page, every service at the same round trip.
        "i60" => (
            "i60",
            "60 accounts x 4 regions, one heavy partition".into(),
            SimConfig {
                heavy_partitions: vec![HeavyPartition {
                    account_index: 47,
                    region: REGIONS[2].to_string(),
                    events: 2_000,
                }],
                ..base(60)
            },
        ),
        "small" => (
            "small",
            "10 accounts x 4 regions (for the AWS CLI loop)".into(),
            SimConfig {
                heavy_partitions: Vec::new(),
                ..base(10)
            },
        ),
        _ => return None,
    };
    Some(Workload { name, what, sim })
}

/// What the simulator's data demands of any complete scan.
#[derive(Debug, Clone, Serialize)]
struct Needs {
    accounts: usize,
    partitions: usize,
    events: usize,
    /// LookupEvents pages: per partition and event name max(1, ceil(n/50)).
    lookup_calls: usize,
    max_partition_calls: usize,
    /// One AssumeRole per member account (the management account uses the caller).
    assume_calls: usize,
    /// GetCallerIdentity, DescribeOrganization and ceil(accounts/20) ListAccounts pages.
    discovery_calls: usize,
}

impl Needs {
    fn calls(&self) -> usize {
        self.lookup_calls + self.assume_calls + self.discovery_calls
    }

    /// A bound for a tool with `c` calls in flight at most: max(floor, calls × L / c).
    fn bound(&self, calls: usize, rate: f64, latency: Duration, c: usize) -> f64 {
        let flow = calls as f64 * latency.as_secs_f64() / c as f64;
        self.floor(rate, latency).max(flow)
    }

    /// PRODUCT.md "Speed": AWS's floor, max_p ((n_p − 1) / rate + L).
    fn floor(&self, rate: f64, latency: Duration) -> f64 {
        (self.max_partition_calls.max(1) - 1) as f64 / rate + latency.as_secs_f64()
    }
}

struct Truth {
    ids: HashSet<String>,
    needs: Needs,
}

async fn ground_truth(sim: &SimConfig) -> std::io::Result<Truth> {
    let handle = Simulator::start(sim.clone()).await?;
    let (start, end) = (sim.window_start(), sim.window_end);
    let mut ids = HashSet::new();
    let mut pages: BTreeMap<(String, String), usize> = BTreeMap::new();
    for name in EVENT_NAMES {
        let gt = handle.ground_truth(start, end, &[name]);
        for (account, regions) in gt.events {
            for (region, set) in regions {
                *pages.entry((account.clone(), region)).or_default() +=
                    set.len().div_ceil(PAGE).max(1);
                ids.extend(set);
            }
        }
    }
    handle.shutdown().await;
    let accounts = sim.accounts;
    let needs = Needs {
        accounts,
        partitions: pages.len(),
        events: ids.len(),
        lookup_calls: pages.values().sum(),
        max_partition_calls: pages.values().copied().max().unwrap_or(0),
        assume_calls: accounts - 1,
        discovery_calls: 2 + accounts.div_ceil(sim.org_page_size.max(1)),
    };
    Ok(Truth { ids, needs })
}

/// One scanner's run against one workload.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    tool: String,
    workload: String,
    concurrency: usize,
    wall_s: f64,
    cpu_s: Option<f64>,
    /// Of `cpu_s`, the time in the kernel (system time).
    cpu_sys_s: Option<f64>,
    peak_rss_kb: Option<u64>,
    /// Calls the simulator saw, per operation.
    calls: BTreeMap<String, u64>,
    throttled: u64,
    /// Retries the scanner reports (ours), else calls beyond the needed ones.
    retries: u64,
    events_returned: usize,
    events_unique: usize,
    lost: usize,
    duplicated: usize,
    /// Ids not in the ground truth (must be 0).
    unknown: usize,
    failed_jobs: Option<u64>,
    /// Mean time from a request's arrival at the simulator to its answer.
    sim_latency_ms: f64,
    /// Ours: from the run's start to the report built (the rest is process start and writing).
    scan_s: Option<f64>,
    /// AWS's floor at the realized round trip (PRODUCT.md), and wall ÷ it.
    floor_s: f64,
    efficiency: f64,
    /// Calls × CPU per call ÷ cores: what this machine allows.
    cpu_bound_s: Option<f64>,
    /// The scanner's user + system time over the LookupEvents calls (ms).
    cpu_per_lookup_ms: Option<f64>,
    /// The same over every AWS call it made (ms).
    cpu_per_call_ms: Option<f64>,
    throttled_share: f64,
    /// The partitions whose last call came latest (ours only): what held the end.
    slowest: Vec<sim::PartitionTimes>,
    /// When the last ListAccounts call came (ours only).
    last_listing_s: Option<f64>,
    /// How long Organizations and STS took to answer, on average (ours only,
    /// with a home latency).
    home_answer_ms: Option<f64>,
    note: String,
}

#[derive(Debug, Clone, Serialize)]
struct WorkloadResult {
    workload: String,
    what: String,
    needs: Needs,
    latency_ms: f64,
    /// Our bound, with every needed call and with LookupEvents only.
    bound_s: f64,
    bound_lookup_only_s: f64,
    runs: Vec<RunResult>,
}

struct Opts {
    /// A workload and its round trip in ms (`None`: the default 50 ms).
    workloads: Vec<(String, Option<u64>)>,
    /// A peer, and the workloads it runs on (`None`: all).
    peers: Vec<(String, Option<Vec<String>>)>,
    /// Our `--concurrency`; `None`: not given (the scan sizes its bound).
    concurrency: Option<usize>,
    workers: usize,
    bin: PathBuf,
    json: Option<PathBuf>,
    runs: usize,
    /// `--session-manager off`: our scan reads CloudTrail only (`[scan] session_manager = false`).
    no_session_manager: bool,
    /// `--request-path SHARE`: the share of each round trip spent before the
    /// simulator's rate bucket sees the call (`SimConfig::request_path`).
    request_path: f64,
    /// The simulator's LookupEvents bucket size (`SimConfig::lookup_burst`; 0: its default).
    lookup_burst: f64,
    /// The simulator counts LookupEvents by a sliding second (`SimConfig::lookup_window`).
    lookup_window: bool,
}

fn parse_args() -> Result<Opts, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/bench -> target/release/ssm-session-audit
    let default_bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("ssm-session-audit"))
        .unwrap_or_default();
    let mut o = Opts {
        workloads: vec![("a".into(), None)],
        peers: Vec::new(),
        concurrency: None,
        workers: 32,
        bin: default_bin,
        json: None,
        runs: 1,
        no_session_manager: false,
        request_path: 0.0,
        lookup_burst: 0.0,
        lookup_window: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        let list = |v: String| v.split(',').map(str::to_string).collect::<Vec<_>>();
        match a.as_str() {
            "--workloads" => {
                o.workloads = Vec::new();
                for w in list(val()?) {
                    match w.split_once('@') {
                        None => o.workloads.push((w, None)),
                        Some((name, ls)) => {
                            for l in ls.split('+') {
                                let ms = l.parse().map_err(|e| format!("{w}: {e}"))?;
                                o.workloads.push((name.to_string(), Some(ms)));
                            }
                        }
                    }
                }
            }
            "--peers" => {
                o.peers = list(val()?)
                    .into_iter()
                    .map(|p| match p.split_once('@') {
                        Some((name, on)) => (
                            name.to_string(),
                            Some(on.split('+').map(str::to_string).collect()),
                        ),
                        None => (p, None),
                    })
                    .collect()
            }
            "--concurrency" => o.concurrency = Some(val()?.parse().map_err(|e| format!("{e}"))?),
            "--workers" => o.workers = val()?.parse().map_err(|e| format!("{e}"))?,
            "--runs" => o.runs = val()?.parse().map_err(|e| format!("{e}"))?,
            "--session-manager" => {
                o.no_session_manager = match val()?.as_str() {
                    "on" => false,
                    "off" => true,
                    v => return Err(format!("--session-manager on|off, not {v}")),
                }
            }
            "--request-path" => {
                o.request_path = val()?.parse().map_err(|e| format!("{e}"))?;
                if !(0.0..=1.0).contains(&o.request_path) {
                    return Err("--request-path is a share of the round trip, 0 to 1".into());
                }
            }
            "--lookup-burst" => {
                o.lookup_burst = val()?.parse().map_err(|e| format!("{e}"))?;
                if !(o.lookup_burst >= 0.0) {
                    return Err("--lookup-burst is a number of tokens, 0 or more".into());
                }
            }
            "--lookup-window" => o.lookup_window = true,
            "--bin" => o.bin = PathBuf::from(val()?),
            "--json" => o.json = Some(PathBuf::from(val()?)),
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown option {other}")),
        }
    }
    for (w, _) in &o.workloads {
        if workload(w).is_none() {
            return Err(format!(
                "unknown workload {w} (a, b100, b10000, c, small, q1000, q10000)"
            ));
        }
    }
    for (p, _) in &o.peers {
        if !matches!(p.as_str(), "boto3" | "boto3-standard" | "cli") {
            return Err(format!("unknown peer {p} (boto3, boto3-standard, cli)"));
        }
    }
    if !o.bin.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release --bin ssm-session-audit` or pass --bin",
            o.bin.display()
        ));
    }
    Ok(o)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Environment that points a child at the simulator and at nothing else.
fn aws_env(cmd: &mut Command, endpoint: &str, scratch: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", scratch.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            scratch.join("no-aws-credentials"),
        )
        .env("SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT", "1");
}

/// What `/usr/bin/time -f` reported, when it is there.
struct Measured {
    wall: Duration,
    cpu_s: Option<f64>,
    cpu_sys_s: Option<f64>,
    peak_rss_kb: Option<u64>,
    stdout: String,
    stderr: String,
    success: bool,
}

/// Runs `program args` as a child (under /usr/bin/time when present) and waits.
async fn run_child(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    endpoint: &str,
    scratch: &Path,
) -> std::io::Result<Measured> {
    let time_file = scratch.join("time.txt");
    let gnu_time = Path::new("/usr/bin/time").is_file();
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f")
            .arg("%M %U %S")
            .arg("-o")
            .arg(&time_file)
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    aws_env(&mut cmd, endpoint, scratch);
    cmd.envs(env.iter().copied());
    let started = Instant::now();
    // Blocking wait off the simulator's workers.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(std::io::Error::other)??;
    let wall = started.elapsed();
    let (mut peak, mut cpu, mut sys) = (None, None, None);
    if gnu_time {
        if let Ok(t) = std::fs::read_to_string(&time_file) {
            // The last line; earlier ones may say "Command exited with non-zero status".
            let f: Vec<&str> = t.lines().last().unwrap_or("").split_whitespace().collect();
            if f.len() == 3 {
                peak = f[0].parse().ok();
                cpu = match (f[1].parse::<f64>(), f[2].parse::<f64>()) {
                    (Ok(u), Ok(s)) => {
                        sys = Some(s);
                        Some(u + s)
                    }
                    _ => None,
                };
            }
        }
    }
    Ok(Measured {
        wall,
        cpu_s: cpu,
        cpu_sys_s: sys,
        peak_rss_kb: peak,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    })
}

#[derive(Deserialize)]
struct ReportIds {
    run: ReportRun,
    events: Vec<ReportEvent>,
}
#[derive(Deserialize)]
struct ReportRun {
    complete: bool,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    stats: RunStats,
}
#[derive(Deserialize)]
struct ReportEvent {
    event_id: String,
}

fn count_ids(
    ids: impl Iterator<Item = String>,
    truth: &HashSet<String>,
) -> (usize, usize, usize, usize) {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut unknown = 0;
    for id in ids {
        total += 1;
        if !truth.contains(&id) {
            unknown += 1;
        }
        seen.insert(id);
    }
    let lost = truth.iter().filter(|id| !seen.contains(*id)).count();
    (total, seen.len(), lost, unknown)
}

fn needed_calls(stats: &SimStats) -> (BTreeMap<String, u64>, u64) {
    (stats.calls.clone(), stats.throttled)
}

fn mean_latency_ms(stats: &SimStats) -> f64 {
    stats.answer_micros_total as f64 / stats.answers_timed.max(1) as f64 / 1000.0
}

async fn run_ours(
    w: &Workload,
    truth: &Truth,
    opts: &Opts,
    scratch: &Path,
) -> std::io::Result<RunResult> {
    let sim = Simulator::start(w.sim.clone()).await?;
    let out_dir = scratch.join(format!("ours-{}", w.name));
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut args: Vec<String> = vec![
        "scan".into(),
        "--quiet".into(),
        "--start".into(),
        rfc3339(w.sim.window_start()),
        "--end".into(),
        rfc3339(w.sim.window_end),
        "--regions".into(),
        w.sim.regions.join(","),
        "--lookup-rate".into(),
        w.sim.lookup_rate.to_string(),
        "--format".into(),
        "json".into(),
        "--output".into(),
        out_dir.display().to_string(),
    ];
    if let Some(c) = opts.concurrency {
        args.extend(["--concurrency".into(), c.to_string()]);
    }
    if opts.no_session_manager {
        let path = scratch.join("cloudtrail-only.toml");
        std::fs::write(&path, "[scan]\nsession_manager = false\n")?;
        args.extend(["--config".into(), path.display().to_string()]);
    }
    // BENCH_LOG=FILE: our scan at -vv, its stderr kept in FILE (per-call timings).
    let log = std::env::var_os("BENCH_LOG").map(PathBuf::from);
    if log.is_some() {
        args.retain(|a| a != "--quiet");
        args.push("-vv".into());
    }
    let m = run_child(&opts.bin, &args, &[], &sim.endpoint(), scratch).await?;
    if let Some(path) = &log {
        std::fs::write(path, &m.stderr)?;
    }
    let stats = sim.stats();
    sim.shutdown().await;
    let report = std::fs::File::open(out_dir.join("report.json"))
        .map_err(|e| std::io::Error::other(format!("{e}; stderr: {}", m.stderr)))?;
    let report: ReportIds =
        serde_json::from_reader(std::io::BufReader::new(report)).map_err(std::io::Error::other)?;
    let _ = std::fs::remove_dir_all(&out_dir);
    let (total, unique, lost, unknown) =
        count_ids(report.events.into_iter().map(|e| e.event_id), &truth.ids);
    let (calls, throttled) = needed_calls(&stats);
    let note = if report.run.complete {
        "complete".to_string()
    } else {
        format!("INCOMPLETE; stderr: {}", m.stderr.trim())
    };
    let figures = Figures::of(&truth.needs, w.sim.lookup_rate, &stats, m.wall, m.cpu_s);
    Ok(RunResult {
        tool: "ssm-session-audit".into(),
        workload: w.name.into(),
        concurrency: opts.concurrency.unwrap_or(0),
        wall_s: m.wall.as_secs_f64(),
        cpu_s: m.cpu_s,
        cpu_sys_s: m.cpu_sys_s,
        peak_rss_kb: m.peak_rss_kb,
        calls,
        throttled,
        retries: report.run.stats.retries,
        events_returned: total,
        events_unique: unique,
        lost,
        duplicated: total - unique,
        unknown,
        failed_jobs: None,
        sim_latency_ms: mean_latency_ms(&stats),
        scan_s: Some(
            (report.run.finished_at - report.run.started_at).num_milliseconds() as f64 / 1000.0,
        ),
        floor_s: figures.floor_s,
        efficiency: figures.efficiency,
        cpu_bound_s: figures.cpu_bound_s,
        cpu_per_lookup_ms: figures.cpu_per_lookup_ms,
        cpu_per_call_ms: figures.cpu_per_call_ms,
        throttled_share: figures.throttled_share,
        slowest: stats.slowest.clone(),
        last_listing_s: stats.last_listing_s,
        home_answer_ms: (stats.home_answers_timed > 0).then(|| {
            stats.home_answer_micros_total as f64 / stats.home_answers_timed as f64 / 1000.0
        }),
        note,
    })
}

async fn run_peer(
    peer: &str,
    w: &Workload,
    truth: &Truth,
    opts: &Opts,
    scratch: &Path,
) -> std::io::Result<RunResult> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
    let ids_file = scratch.join(format!("{peer}-{}.ids", w.name));
    let start = rfc3339(w.sim.window_start());
    let end = rfc3339(w.sim.window_end);
    let regions = w.sim.regions.join(",");
    let (program, args, tool, concurrency) = match peer {
        "boto3" | "boto3-standard" => (
            PathBuf::from("python3"),
            vec![
                peers.join("boto3_parallel.py").display().to_string(),
                "--regions".into(),
                regions,
                "--start".into(),
                start,
                "--end".into(),
                end,
                "--workers".into(),
                opts.workers.to_string(),
                "--out".into(),
                ids_file.display().to_string(),
            ],
            if peer == "boto3" {
                "boto3 thread pool"
            } else {
                "boto3 thread pool, standard retries"
            },
            opts.workers,
        ),
        _ => (
            peers.join("aws_cli_loop.sh"),
            vec![ids_file.display().to_string(), start, end, regions],
            "AWS CLI loop",
            1,
        ),
    };
    let program = if program.is_absolute() {
        program
    } else {
        which(&program).unwrap_or(program)
    };
    let sim = Simulator::start(w.sim.clone()).await?;
    // botocore's other retry mode (the AWS CLI v2's default): 3 attempts.
    let env: &[(&str, &str)] = if peer == "boto3-standard" {
        &[("AWS_RETRY_MODE", "standard")]
    } else {
        &[]
    };
    let m = run_child(&program, &args, env, &sim.endpoint(), scratch).await?;
    let stats = sim.stats();
    sim.shutdown().await;
    let summary: serde_json::Value = m
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let file = std::fs::File::open(&ids_file)
        .map_err(|e| std::io::Error::other(format!("{peer}: {e}; stderr: {}", m.stderr.trim())))?;
    let ids = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.is_empty());
    let (total, unique, lost, unknown) = count_ids(ids, &truth.ids);
    let _ = std::fs::remove_file(&ids_file);
    let figures = Figures::of(&truth.needs, w.sim.lookup_rate, &stats, m.wall, m.cpu_s);
    let (calls, throttled) = needed_calls(&stats);
    let made: u64 = calls.values().sum();
    let needed = truth.needs.calls() as u64;
    let mut note = summary
        .get("failed_jobs")
        .map(|f| format!("{f} jobs failed"))
        .unwrap_or_default();
    if !m.success {
        note.push_str(&format!("; exit failure: {}", tail(&m.stderr)));
    }
    if peer == "cli" {
        // Each call is a process start: the figure to extrapolate from.
        note.push_str(&format!(
            "; {:.2} s a call",
            m.wall.as_secs_f64() / made.max(1) as f64
        ));
    }
    if let Some(v) = summary.get("retry_mode") {
        note.push_str(&format!("; retry mode {v}"));
    }
    Ok(RunResult {
        tool: tool.into(),
        workload: w.name.into(),
        concurrency,
        wall_s: m.wall.as_secs_f64(),
        cpu_s: m.cpu_s,
        cpu_sys_s: m.cpu_sys_s,
        peak_rss_kb: m.peak_rss_kb,
        calls,
        throttled,
        retries: made.saturating_sub(needed),
        events_returned: total,
        events_unique: unique,
        lost,
        duplicated: total - unique,
        unknown,
        failed_jobs: summary.get("failed_jobs").and_then(|v| v.as_u64()),
        sim_latency_ms: mean_latency_ms(&stats),
        scan_s: None,
        floor_s: figures.floor_s,
        efficiency: figures.efficiency,
        cpu_bound_s: figures.cpu_bound_s,
        cpu_per_lookup_ms: figures.cpu_per_lookup_ms,
        cpu_per_call_ms: figures.cpu_per_call_ms,
        throttled_share: figures.throttled_share,
        slowest: Vec::new(),
        last_listing_s: None,
        home_answer_ms: None,
        note,
    })
}

/// The figures a run is judged by, from what the simulator saw.
struct Figures {
    floor_s: f64,
    efficiency: f64,
    cpu_bound_s: Option<f64>,
    cpu_per_lookup_ms: Option<f64>,
    cpu_per_call_ms: Option<f64>,
    throttled_share: f64,
}

impl Figures {
    fn of(needs: &Needs, rate: f64, stats: &SimStats, wall: Duration, cpu_s: Option<f64>) -> Self {
        // The floor at the round trip the simulator really gave.
        let realized = Duration::from_secs_f64(mean_latency_ms(stats) / 1000.0);
        let floor_s = needs.floor(rate, realized);
        let lookups = stats.calls.get("LookupEvents").copied().unwrap_or(0).max(1) as f64;
        let all: u64 = stats.calls.values().sum();
        let per_call = cpu_s.map(|c| c / lookups);
        Figures {
            floor_s,
            efficiency: floor_s / wall.as_secs_f64(),
            cpu_bound_s: per_call.map(|p| p * lookups / cores()),
            cpu_per_lookup_ms: per_call.map(|p| p * 1000.0),
            cpu_per_call_ms: cpu_s.map(|c| c * 1000.0 / all.max(1) as f64),
            throttled_share: stats.throttled as f64 / all.max(1) as f64,
        }
    }
}

/// One line on what held a run's end: its last listing call, and the
/// partitions whose last calls came latest, with the pace each needed alone.
fn what_held_the_end(r: &RunResult, rate: f64) -> String {
    let s = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.1} s"));
    let mut line = format!(
        "CPU {:.3} ms a call of any kind ({} of it in the kernel); last ListAccounts call at {}{}; latest partitions:",
        r.cpu_per_call_ms.unwrap_or(f64::NAN),
        match (r.cpu_s, r.cpu_sys_s) {
            (Some(all), Some(sys)) if all > 0.0 => format!("{:.0} %", sys * 100.0 / all),
            _ => "-".to_string(),
        },
        s(r.last_listing_s),
        r.home_answer_ms.map_or(String::new(), |ms| format!(
            " (Organizations and STS answered in {ms:.1} ms on average, asked for {} ms)",
            HOME_LATENCY.as_millis()
        )),
    );
    for p in &r.slowest {
        line.push_str(&format!(
            " {} (role {}, LookupEvents {:.1}–{:.1} s for {} calls, pace alone {:.1} s; Session Manager until {})",
            p.partition,
            s(p.role_s),
            p.first_lookup_s,
            p.last_lookup_s,
            p.lookups,
            p.lookups.saturating_sub(1) as f64 / rate,
            s(p.last_ssm_s),
        ));
    }
    line
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn which(p: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
}

fn print_workload(r: &WorkloadResult) {
    let n = &r.needs;
    println!(
        "\n## workload {} ({}): {} accounts, {} partitions, {} events; needed calls: {} LookupEvents (max {} in one partition) + {} AssumeRole + {} discovery; L = {:.0} ms",
        r.workload, r.what, n.accounts, n.partitions, n.events, n.lookup_calls, n.max_partition_calls,
        n.assume_calls, n.discovery_calls, r.latency_ms
    );
    println!(
        "| tool | C | wall s | floor s | efficiency | CPU bound s | vs ours | calls (Lookup/Assume/other) | throttled (share) | retries | events | lost | dup | peak RSS MB | CPU s | CPU ms / call | CPU ms / Lookup | sim L ms | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ours = r
        .runs
        .iter()
        .filter(|x| x.tool == "ssm-session-audit")
        .map(|x| x.wall_s)
        .fold(f64::NAN, f64::min);
    for x in &r.runs {
        let lookup = x.calls.get("LookupEvents").copied().unwrap_or(0);
        let assume = x.calls.get("AssumeRole").copied().unwrap_or(0);
        let other: u64 = x.calls.values().sum::<u64>() - lookup - assume;
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {}/{}/{} | {} ({:.2} %) | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            x.tool,
            if x.concurrency == 0 { "auto".to_string() } else { x.concurrency.to_string() },
            x.wall_s,
            x.floor_s,
            x.efficiency,
            x.cpu_bound_s.map(|c| format!("{c:.2}")).unwrap_or("-".into()),
            if x.tool == "ssm-session-audit" {
                "1".to_string()
            } else {
                format!("{:.1}x slower", x.wall_s / ours)
            },
            lookup,
            assume,
            other,
            x.throttled,
            x.throttled_share * 100.0,
            x.retries,
            x.events_unique,
            x.lost,
            x.duplicated,
            x.peak_rss_kb
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or("-".into()),
            x.cpu_s.map(|c| format!("{c:.1}")).unwrap_or("-".into()),
            // The scanner's user + system time over all its calls (every
            // kind: LookupEvents, Session Manager, STS, discovery), and over
            // its LookupEvents calls alone.
            x.cpu_per_call_ms.map(|c| format!("{c:.3}")).unwrap_or("-".into()),
            x.cpu_per_lookup_ms.map(|c| format!("{c:.3}")).unwrap_or("-".into()),
            x.sim_latency_ms,
            x.note,
        );
    }
    println!(
        "floor at the configured L: {:.2} s (max_p (n_p - 1)/2 s + L); at the realized L: in each row. Old bound at C = 32 for comparison: {:.2} s with every needed call, {:.2} s with LookupEvents only",
        n.floor(2.0, Duration::from_secs_f64(r.latency_ms / 1000.0)),
        r.bound_s,
        r.bound_lookup_only_s,
    );
    let _ = std::io::stdout().flush();
}

#[tokio::main]
async fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let scratch = std::env::temp_dir().join(format!("ssm-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("bench: {}: {e}", scratch.display());
        std::process::exit(2);
    }
    let mut all = Vec::new();
    // The simulator holds a connection per call in flight too.
    let files = ssm_session_audit::call::inflight::raise_open_files();
    if let Some(p) = files.problem {
        eprintln!("bench: {p}");
    }
    for (name, latency_ms) in &opts.workloads {
        let mut w = workload_at(name, *latency_ms).expect("checked in parse_args");
        w.sim.request_path = opts.request_path;
        w.sim.lookup_burst = opts.lookup_burst;
        w.sim.lookup_window = opts.lookup_window;
        eprintln!("bench: workload {} ({}): ground truth…", w.name, w.what);
        let truth = match ground_truth(&w.sim).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("bench: simulator: {e}");
                std::process::exit(1);
            }
        };
        let n = &truth.needs;
        let mut result = WorkloadResult {
            workload: w.name.into(),
            what: w.what.clone(),
            needs: n.clone(),
            latency_ms: w.sim.latency.as_secs_f64() * 1000.0,
            bound_s: n.bound(n.calls(), w.sim.lookup_rate, w.sim.latency, 32),
            bound_lookup_only_s: n.bound(n.lookup_calls, w.sim.lookup_rate, w.sim.latency, 32),
            runs: Vec::new(),
        };
        for i in 0..opts.runs {
            eprintln!("bench: {}: ours, run {}…", w.name, i + 1);
            match run_ours(&w, &truth, &opts, &scratch).await {
                Ok(r) => {
                    eprintln!(
                        "bench: {}@{:.0}ms: ours {:.2} s ({:.2} s from start to report built; floor {:.2} s, efficiency {:.2}; CPU {:.3} ms a LookupEvents, CPU bound {:.2} s; throttled {:.2} %; simulator answered in {:.2} ms on average), lost {}, doubled {}",
                        w.name,
                        result.latency_ms,
                        r.wall_s,
                        r.scan_s.unwrap_or(f64::NAN),
                        r.floor_s,
                        r.efficiency,
                        r.cpu_per_lookup_ms.unwrap_or(f64::NAN),
                        r.cpu_bound_s.unwrap_or(f64::NAN),
                        r.throttled_share * 100.0,
                        r.sim_latency_ms,
                        r.lost,
                        r.duplicated
                    );
                    eprintln!("bench:   {}", what_held_the_end(&r, w.sim.lookup_rate));
                    result.runs.push(r)
                }
                Err(e) => eprintln!("bench: {}: ours failed: {e}", w.name),
            }
        }
        let here = opts
            .peers
            .iter()
            .filter(|(_, on)| on.as_ref().is_none_or(|l| l.iter().any(|x| x == w.name)));
        for (peer, _) in here {
            eprintln!("bench: {}: {peer}…", w.name);
            match run_peer(peer, &w, &truth, &opts, &scratch).await {
                Ok(r) => {
                    eprintln!(
                        "bench: {}: {peer} {:.2} s, lost {}",
                        w.name, r.wall_s, r.lost
                    );
                    result.runs.push(r)
                }
                Err(e) => eprintln!("bench: {}: {peer} failed: {e}", w.name),
            }
        }
        print_workload(&result);
        all.push(result);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&all).expect("plain data");
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("bench: {}: {e}", path.display());
        }
    }
}
