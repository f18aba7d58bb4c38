//! Throughput of the trail-file reader against the usual tools, and against
//! the fastest decompressors alone.
//!
//!     cargo run --release --example trail_bench -- --gb 2 [--dir PATH] [--runs 3]
//!         [--share 0.001] [--python PATH] [--no-jq] [--no-duckdb]
//!
//! Generates ~GB of uncompressed trail JSON with `sim::trail_gen` (gzip files of
//! 0.7–3.3 MB, records of 1–2 KB from many services, session calls `--share` of the
//! records) into PATH (default: $TMPDIR/ssm-trail-bench-<gb>gb-<share>, reused
//! when present), warms the page cache, then times, on the same list of files, in
//! one run, on one core (`taskset -c 0` where it exists) and on every core:
//! our reader; `igzip -dc` (ISA-L) and `libdeflate-gunzip` and `gzip -dc`
//! (decompression alone, all cores = `xargs -P`); `zcat | jq` selecting the
//! session calls; DuckDB's `read_json` (benches/trail/duckdb_count.py, with
//! `--python` pointing at an interpreter that has `duckdb`). A tool that is not
//! installed is reported so, not fatal. Every contender runs as its own process
//! under `/usr/bin/time`, so its peak RSS is its own. Every reader that selects
//! must return the same records. Throughput is uncompressed JSON bytes per second;
//! ratios are against `igzip -dc` on as many cores. See docs/bench-trail.md.
//!
//! `--scan ROOT FIRST_DAY DAYS THREADS` is the child mode that times our reader
//! (one `read_dir`); it prints `kept N bytes M`.

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
    share: f64,
    python: String,
    jq: bool,
    duckdb: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        gb: 2.0,
        dir: None,
        runs: 3,
        share: 0.001,
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
            "--share" => a.share = value()?.parse()?,
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
    records: u64,
    bytes_uncompressed: u64,
    bytes_compressed: u64,
}

const FIRST_DAY: &str = "2025-03-01";

fn ensure_tree(dir: &Path, gb: f64, share: f64) -> Res<TreeInfo> {
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
            records: get("records")?.parse()?,
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
        session_share: share,
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
        records: m.files.iter().map(|f| f.records).sum(),
        bytes_uncompressed: m.bytes_uncompressed(),
        bytes_compressed: m.bytes_compressed(),
    };
    std::fs::write(
        &info_path,
        format!(
            "first_day {}\ndays {}\nsessions {}\nfiles {}\nrecords {}\nbytes_uncompressed {}\nbytes_compressed {}\n",
            info.first_day,
            info.days,
            info.sessions,
            info.files,
            info.records,
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

fn window(first_day: NaiveDate, days: u32) -> Res<TimeWindow> {
    let first = first_day.checked_sub_days(Days::new(1)).ok_or("date")?;
    let last = first_day
        .checked_add_days(Days::new(days as u64))
        .ok_or("date")?;
    Ok(TimeWindow {
        start: first.and_hms_opt(0, 0, 0).ok_or("date")?.and_utc(),
        end: last.and_hms_opt(23, 59, 59).ok_or("date")?.and_utc(),
    })
}

/// The child: one read of the tree, what it kept and read.
fn child(mut it: impl Iterator<Item = String>) -> Res<()> {
    let root: PathBuf = it.next().ok_or("--scan ROOT")?.into();
    let first_day: NaiveDate = it.next().ok_or("--scan FIRST_DAY")?.parse()?;
    let days: u32 = it.next().ok_or("--scan DAYS")?.parse()?;
    let threads: usize = it.next().ok_or("--scan THREADS")?.parse()?;
    let q = TrailQuery::new(window(first_day, days)?);
    let r = read_dir(&root, &q, threads)?;
    if !r.coverage.bad_files.is_empty() {
        return Err(format!("bad files: {:?}", r.coverage.bad_files).into());
    }
    println!(
        "kept {} bytes {} records {}",
        r.events.len(),
        r.coverage.bytes_uncompressed,
        r.coverage.records_seen
    );
    Ok(())
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// One timed run of `cmd` under `/usr/bin/time` (when there): wall seconds,
/// peak RSS in MB (of the largest process), stdout.
fn timed(cmd: &mut Command, rss_file: &Path) -> Res<(f64, Option<f64>, String)> {
    let t = Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", out.status).into());
    }
    let rss = std::fs::read_to_string(rss_file)
        .ok()
        .and_then(|t| t.trim().lines().last()?.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    Ok((s, rss, String::from_utf8(out.stdout)?))
}

/// `argv` as a command, under `/usr/bin/time -f %M -o rss_file` when it exists,
/// on the first core only when `one_core` and `taskset` exists.
fn command(
    argv: &[String],
    one_core: bool,
    rss_file: &Path,
    has_time: bool,
    has_taskset: bool,
) -> Command {
    let mut full: Vec<String> = Vec::new();
    if has_time {
        full.extend([
            "/usr/bin/time".into(),
            "-f".into(),
            "%M".into(),
            "-o".into(),
            rss_file.display().to_string(),
        ]);
    }
    if one_core && has_taskset {
        full.extend(["taskset".into(), "-c".into(), "0".into()]);
    }
    full.extend(argv.iter().cloned());
    let mut c = Command::new(&full[0]);
    c.args(&full[1..]);
    c
}

struct Row {
    name: String,
    cores: usize,
    /// None: not run (the reason in `note`).
    secs: Option<f64>,
    rss_mb: Option<f64>,
    kept: Option<u64>,
    note: String,
}

/// One reader to time: `argv` run `runs` times as its own process.
struct Contender<'a> {
    name: String,
    cores: usize,
    runs: usize,
    argv: Vec<String>,
    /// A tool that must be installed, or "".
    needs: &'a str,
    /// The session records it returned, from its stdout.
    kept: &'a dyn Fn(&str) -> Res<Option<u64>>,
}

/// Every contender, in rounds: round k runs each contender that wants a k-th
/// run once, in order, so that readers compared with each other run back to
/// back and a shared machine's drift falls on all alike. A row per contender
/// (its best run), and for each core count the ratio of our reader's time to
/// `igzip -dc`'s in the same round.
fn rounds(
    contenders: &[Contender<'_>],
    has_time: bool,
    has_taskset: bool,
    rss_file: &Path,
) -> Res<(Vec<Row>, Vec<(usize, Vec<f64>)>)> {
    let present: Vec<bool> = contenders
        .iter()
        .map(|c| c.needs.is_empty() || installed(c.needs))
        .collect();
    let mut best: Vec<Option<(f64, Option<f64>, Option<u64>)>> = vec![None; contenders.len()];
    let mut ratios: Vec<(usize, Vec<f64>)> = Vec::new();
    for c in contenders {
        if !ratios.iter().any(|(k, _)| *k == c.cores) {
            ratios.push((c.cores, Vec::new()));
        }
    }
    let most = contenders.iter().map(|c| c.runs.max(1)).max().unwrap_or(0);
    for round in 0..most {
        let mut this: Vec<Option<f64>> = vec![None; contenders.len()];
        for (i, c) in contenders.iter().enumerate() {
            if !present[i] || round >= c.runs.max(1) {
                continue;
            }
            let _ = std::fs::remove_file(rss_file);
            let mut cmd = command(&c.argv, c.cores == 1, rss_file, has_time, has_taskset);
            let (s, rss, out) = timed(&mut cmd, rss_file)?;
            let k = (c.kept)(&out)?;
            if best[i].as_ref().is_none_or(|b| s < b.0) {
                best[i] = Some((s, rss, k));
            }
            this[i] = Some(s);
        }
        let at = |name: &str, cores: usize| {
            contenders
                .iter()
                .position(|c| c.name.starts_with(name) && c.cores == cores)
                .and_then(|i| this[i])
        };
        for (cores, r) in ratios.iter_mut() {
            if let (Some(ours), Some(igzip)) =
                (at("ssm-session-audit", *cores), at("`igzip", *cores))
            {
                r.push(igzip / ours);
            }
        }
    }
    let rows = contenders
        .iter()
        .zip(best)
        .zip(present)
        .map(|((c, b), present)| match b {
            Some((s, rss, k)) => Row {
                name: c.name.clone(),
                cores: c.cores,
                secs: Some(s),
                rss_mb: rss,
                kept: k,
                note: String::new(),
            },
            None => Row {
                name: c.name.clone(),
                cores: c.cores,
                secs: None,
                rss_mb: None,
                kept: None,
                note: if present {
                    "not run".into()
                } else {
                    format!("`{}` not installed", c.needs)
                },
            },
        })
        .collect();
    Ok((rows, ratios))
}

fn main() -> Res<()> {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("--scan") {
        argv.next();
        return child(argv);
    }
    let a = args()?;
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ssm-trail-bench-{}gb-{}", a.gb, a.share))
    });
    let info = ensure_tree(&dir, a.gb, a.share)?;
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
    let win = window(info.first_day, info.days)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb = info.bytes_uncompressed as f64 / 1e6;
    println!(
        "tree: {} files, {:.0} MB uncompressed, {:.0} MB gzip, {} records, {} session records ({:.2} %); {} cores",
        info.files,
        mb,
        info.bytes_compressed as f64 / 1e6,
        info.records,
        info.sessions,
        100.0 * info.sessions as f64 / info.records.max(1) as f64,
        cores
    );
    let has_time = Path::new("/usr/bin/time").exists();
    let has_taskset = installed("taskset");
    let rss_file = dir.join("bench-rss.txt");
    let me = std::env::current_exe()?;
    let list_s = list.display().to_string();
    // Files per process when the decompressors run on every core.
    let per = (files.len() / (cores * 4)).max(1).to_string();

    let sh = |script: &str| -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            list_s.clone(),
            per.clone(),
            cores.to_string(),
        ]
    };
    let ours = |threads: usize| -> Vec<String> {
        vec![
            me.display().to_string(),
            "--scan".into(),
            dir.display().to_string(),
            info.first_day.to_string(),
            info.days.to_string(),
            threads.to_string(),
        ]
    };
    let our_kept = |out: &str| -> Res<Option<u64>> {
        let mut w = out.split_whitespace();
        let (Some("kept"), Some(n), Some("bytes"), Some(b)) =
            (w.next(), w.next(), w.next(), w.next())
        else {
            return Err(format!("unexpected output of our reader: {out}").into());
        };
        if b.parse::<u64>()? != info.bytes_uncompressed {
            return Err("our reader did not read every byte".into());
        }
        Ok(Some(n.parse()?))
    };
    let none = |_: &str| -> Res<Option<u64>> { Ok(None) };
    let count = |out: &str| -> Res<Option<u64>> { Ok(Some(out.trim().parse()?)) };

    let duck = |out: &str| -> Res<Option<u64>> {
        Ok(Some(
            out.split_whitespace().next().ok_or("no output")?.parse()?,
        ))
    };
    let mut contenders: Vec<Contender> = Vec::new();
    let mut missing: Vec<Row> = Vec::new();
    let mut core_counts = vec![1];
    if cores > 1 {
        core_counts.push(cores);
    }
    for &c in &core_counts {
        contenders.push(Contender {
            name: "ssm-session-audit".to_string(),
            cores: c,
            runs: a.runs,
            argv: ours(c),
            needs: "",
            kept: &our_kept,
        });
        for (tool, script) in [
            ("igzip", "igzip -dc"),
            ("libdeflate-gunzip", "libdeflate-gunzip -c"),
            ("gzip", "gzip -dc"),
        ] {
            let s = if c == 1 {
                format!(r#"xargs -0 {script} < "$1" > /dev/null"#)
            } else {
                format!(r#"xargs -0 -P "$3" -n "$2" {script} < "$1" > /dev/null"#)
            };
            contenders.push(Contender {
                name: format!("`{script}` (decompression only)"),
                cores: c,
                runs: a.runs,
                argv: sh(&s),
                needs: tool,
                kept: &none,
            });
        }
    }
    if a.jq {
        contenders.push(Contender {
            name: "`zcat | jq`".into(),
            cores: 1,
            runs: 1,
            argv: sh(
                r#"xargs -0 zcat < "$1" | jq -c '.Records[] | select(.eventSource=="ssm.amazonaws.com" and (.eventName=="StartSession" or .eventName=="ResumeSession" or .eventName=="TerminateSession"))' | wc -l"#,
            ),
            needs: "jq",
            kept: &count,
        });
    }
    if a.duckdb {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/trail/duckdb_count.py");
        let glob = format!("{}/AWSLogs/**/*.json.gz", dir.display());
        let start = win.start.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let end = win.end.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let has_duckdb = Command::new(&a.python)
            .args(["-c", "import duckdb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_duckdb {
            contenders.push(Contender {
                name: "DuckDB `read_json`".to_string(),
                cores,
                runs: a.runs.min(2),
                argv: vec![
                    a.python.clone(),
                    script.display().to_string(),
                    glob,
                    start,
                    end,
                ],
                needs: "",
                kept: &duck,
            });
        } else {
            missing.push(Row {
                name: "DuckDB `read_json`".into(),
                cores,
                secs: None,
                rss_mb: None,
                kept: None,
                note: format!("`duckdb` not importable by {}", a.python),
            });
        }
    }

    let (mut rows, ratios) = rounds(&contenders, has_time, has_taskset, &rss_file)?;
    rows.extend(missing);
    let igzip = |c: usize| {
        rows.iter()
            .find(|r| r.name.starts_with("`igzip") && r.cores == c)
            .and_then(|r| r.secs)
    };
    println!();
    println!("| reader | cores | seconds | MB/s (uncompressed) | vs `igzip -dc` on as many cores | peak RSS (MB) | session records |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut ok = true;
    for r in &rows {
        let Some(s) = r.secs else {
            println!("| {} | {} | – | – | – | – | {} |", r.name, r.cores, r.note);
            continue;
        };
        let vs = igzip(r.cores).map_or("–".to_string(), |g| format!("{:.2}", g / s));
        let rss = r.rss_mb.map_or("–".to_string(), |m| format!("{m:.0}"));
        let kept = r.kept.map_or("–".to_string(), |k| k.to_string());
        println!(
            "| {} | {} | {s:.2} | {:.0} | {vs} | {rss} | {kept} |",
            r.name,
            r.cores,
            mb / s
        );
        ok &= r.kept.is_none_or(|k| k == info.sessions);
    }
    println!();
    for (c, r) in ratios {
        if r.is_empty() {
            continue;
        }
        let mut r = r;
        r.sort_by(f64::total_cmp);
        println!(
            "ours vs `igzip -dc` on {c} core(s), run by run (each pair back to back): median {:.2}, {:.2}–{:.2} over {} rounds",
            r[r.len() / 2],
            r[0],
            r[r.len() - 1],
            r.len()
        );
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
        "every reader that selects returned the {} session records",
        info.sessions
    );
    Ok(())
}
