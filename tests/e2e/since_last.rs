//! Consecutive runs (`--since last`) into one output folder, through the real
//! binary against the simulator: every event in exactly one report of the
//! chain, with events planted exactly on each run's end and settled point,
//! events CloudTrail shows only after the run whose window holds them, a
//! partition that fails in one run and is read by the next, and a session
//! whose calls span three runs. Each run is given its "now"
//! (`SSM_SESSION_AUDIT_NOW`, honoured only beside
//! `SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT`) and the simulator the same clock,
//! so boundaries are known in advance. Also: a folder holds one run, and
//! `--end` in the future is refused.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::Value;
use sim::{LookupPaging, PartitionFault, PlantedCall, SimConfig, SimHandle, Simulator};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The simulator's default window (to 2026-11-20T18:00Z) holds these runs.
pub fn chain_org(planted: Vec<PlantedCall>) -> SimConfig {
    SimConfig {
        seed: 18,
        accounts: 4,
        regions: REGIONS.iter().map(|s| s.to_string()).collect(),
        sessions_per_partition: 10,
        lookup_rate: 200.0,
        planted_calls: planted,
        ..SimConfig::default()
    }
}

pub fn planted(
    account_index: usize,
    region: &str,
    time: DateTime<Utc>,
    name: &str,
    id: &str,
    visible_from: Option<DateTime<Utc>>,
) -> PlantedCall {
    PlantedCall {
        account_index,
        region: region.into(),
        time,
        name: name.into(),
        event_id: id.into(),
        session_id: format!("pat.planted@example.com-{id}"),
        visible_from,
    }
}

/// A run at `now` (the simulator's clock set to it too), `window` either
/// `["--since", "last"]` or a fresh start; `output` a folder or `s3://…`.
pub fn chain_command(
    sim: &SimHandle,
    output: &str,
    now: DateTime<Utc>,
    window: &[&str],
) -> tokio::process::Command {
    sim.set_clock(Some(now));
    let mut cmd = command(&sim.endpoint());
    cmd.env("SSM_SESSION_AUDIT_NOW", now.to_rfc3339())
        .args(["scan", "--regions", &REGIONS.join(",")])
        .args(window)
        .args(["--role-name", &sim.config().role_name])
        .args([
            "--lookup-rate",
            "100",
            "--fail-on",
            "none",
            "--output",
            output,
        ]);
    cmd
}

/// Runs it, checks the report is coherent, and keeps a copy of report.json
/// (the folder holds only the last run).
async fn chain_run(
    sim: &SimHandle,
    dir: &Path,
    now: DateTime<Utc>,
    window: &[&str],
) -> (std::process::Output, Value) {
    let cmd = chain_command(sim, &dir.display().to_string(), now, window);
    scan_and_read(cmd, dir).await
}

/// Every event id of `reports`, each with the number of reports that hold it.
pub fn ids_across(reports: &[&Value]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in reports {
        for e in r["events"].as_array().unwrap() {
            *n.entry(e["event_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    n
}

pub fn truth_ids(sim: &SimHandle, start: DateTime<Utc>, end: DateTime<Utc>) -> BTreeSet<String> {
    let truth = sim.ground_truth(start, end, &SESSION_NAMES);
    assert!(truth.malformed.is_empty());
    truth.all_ids()
}

pub fn assert_each_once(reports: &[&Value], want: &BTreeSet<String>) {
    let got = ids_across(reports);
    let twice: Vec<_> = got
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(twice.is_empty(), "in two reports: {twice:?}");
    let got: BTreeSet<String> = got.into_keys().collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, not in the truth {extra:?}"
    );
}

fn event_ids(report: &Value) -> BTreeSet<String> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

/// Four runs (a fresh one, then three `--since last`), with events on every
/// end and settled point, late ones, and a session spanning three runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_since_last_runs_hold_every_event_exactly_once() {
    let start = t("2026-11-18T00:00:00Z");
    let now = [
        t("2026-11-19T12:00:00Z"),
        t("2026-11-19T18:00:00Z"),
        t("2026-11-20T09:30:00Z"),
        t("2026-11-20T17:00:00Z"),
    ];
    let settle = TimeDelta::minutes(15);
    let mut calls = vec![planted(
        1,
        "us-east-1",
        start,
        "StartSession",
        "on-first-start",
        None,
    )];
    for (k, n) in now.iter().enumerate() {
        let region = REGIONS[k % 2];
        calls.push(planted(
            1,
            region,
            *n,
            "StartSession",
            &format!("on-end-{k}"),
            None,
        ));
        calls.push(planted(
            2,
            region,
            *n - settle,
            "StartSession",
            &format!("on-settled-{k}"),
            None,
        ));
        // In the run's unsettled tail, shown only after the run.
        calls.push(planted(
            3,
            region,
            *n - TimeDelta::minutes(5),
            "StartSession",
            &format!("late-{k}"),
            Some(*n + TimeDelta::minutes(1)),
        ));
    }
    // One session: Start in run 0, Resume in run 2, Terminate in run 3.
    let session = |time, name: &str, id: &str| PlantedCall {
        session_id: "pat.planted@example.com-0spanning".into(),
        ..planted(2, "eu-west-1", time, name, id, None)
    };
    calls.push(session(
        t("2026-11-19T11:00:00Z"),
        "StartSession",
        "span-start",
    ));
    calls.push(session(
        t("2026-11-20T08:00:00Z"),
        "ResumeSession",
        "span-resume",
    ));
    calls.push(session(
        t("2026-11-20T16:00:00Z"),
        "TerminateSession",
        "span-end",
    ));
    let sim = Simulator::start(chain_org(calls)).await.unwrap();
    let tmp = tempdir();
    let dir = out_dir(&tmp);

    let mut reports = Vec::new();
    let (out, first) = chain_run(&sim, &dir, now[0], &["--start", &start.to_rfc3339()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("settled until 2026-11-19T11:45:00Z: CloudTrail may still deliver events of the last 15 min"),
        "{stdout}"
    );
    assert_eq!(
        first["run"]["window"]["settled_until"],
        "2026-11-19T11:45:00Z"
    );
    let first_ids = event_ids(&first);
    assert!(first_ids.contains("on-first-start") && first_ids.contains("on-settled-0"));
    assert!(
        !first_ids.contains("on-end-0"),
        "the end belongs to the next window"
    );
    assert!(!first_ids.contains("late-0"), "not shown yet");
    reports.push(first);

    for k in 1..4 {
        let (out, r) = chain_run(&sim, &dir, now[k], &["--since", "last"]).await;
        assert_eq!(out.status.code(), Some(0), "run {k}: {}", stderr_of(&out));
        let w = &r["run"]["window"];
        let prev = &reports[k - 1]["run"];
        assert_eq!(
            w["start"],
            prev["window"]["settled_until"],
            "run {k} starts where run {} was settled",
            k - 1
        );
        assert_eq!(
            w["end"],
            Value::from(now[k].to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        );
        assert_eq!(
            r["run"]["previous"]["location"],
            Value::from(dir.display().to_string())
        );
        let ids = event_ids(&r);
        assert!(
            ids.contains(&format!("on-end-{}", k - 1)),
            "run {k}: the last run's end"
        );
        assert!(
            ids.contains(&format!("late-{}", k - 1)),
            "run {k}: late in the last run's tail"
        );
        assert!(
            !ids.contains(&format!("on-settled-{}", k - 1)),
            "run {k}: reported by the last run"
        );
        assert!(
            r["run"]["previous"]["already_reported"].as_u64().unwrap() >= 1,
            "run {k} read the last tail again and left it out: {}",
            r["run"]["previous"]
        );
        reports.push(r);
    }
    let refs: Vec<&Value> = reports.iter().collect();
    let mut want = truth_ids(&sim, start, now[3]);
    // Shown only after the last run: the next run's.
    assert!(want.remove("late-3"));
    assert!(want.len() > 100, "{} events", want.len());
    assert_each_once(&refs, &want);

    // The session is joined across runs; its calls are each in one report.
    let sessions = |r: &Value| -> Vec<Value> {
        r["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["session_id"] == "pat.planted@example.com-0spanning")
            .cloned()
            .collect()
    };
    let last = sessions(&reports[3]);
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["start_event_id"], "span-start");
    assert_eq!(last[0]["end_event_id"], "span-end");
    assert_eq!(last[0]["event_ids"].as_array().unwrap().len(), 3);
    assert!(last[0]["duration_seconds"].as_i64().unwrap() > 24 * 3600);
    assert!(
        reports[3]["run"]["previous"]["joined_events"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(sessions(&reports[2])[0]["start_event_id"], "span-start");
    let carried: Vec<&str> = reports[2]["run"]["continuation"]["open_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .filter(|id| id.starts_with("span-"))
        .collect();
    assert_eq!(
        carried,
        ["span-start", "span-resume"],
        "carried in the report"
    );
    assert!(
        event_ids(&reports[3]).contains("span-end")
            && !event_ids(&reports[3]).contains("span-start")
    );
    sim.shutdown().await;
}

/// A partition that fails (after its first page) in run 1 is read by run 2
/// from run 1's start; what run 1 did report of it is not reported again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_fails_in_one_run_is_read_by_the_next() {
    let start = t("2026-11-18T00:00:00Z");
    let (n1, n2) = (t("2026-11-19T12:00:00Z"), t("2026-11-20T12:00:00Z"));
    let mut cfg = chain_org(Vec::new());
    cfg.lookup_paging = LookupPaging::Fixed(2);
    let sim = Simulator::start(cfg).await.unwrap();
    // The busiest eu-west-1 partition, so that it has pages after its first.
    let truth = sim.ground_truth(start, n2, &SESSION_NAMES);
    let (index, failing) = sim
        .accounts()
        .iter()
        .map(|a| (a.index, a.id.clone()))
        .max_by_key(|(_, id)| truth.partition(id, "eu-west-1").map_or(0, BTreeSet::len))
        .unwrap();
    sim.fail_partition(index, "eu-west-1", Some(PartitionFault::AfterFirstPage));
    let tmp = tempdir();
    let dir = out_dir(&tmp);
    let (out, r1) = chain_run(&sim, &dir, n1, &["--start", &start.to_rfc3339()]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(region_status(&r1, &failing, "eu-west-1"), "failed");
    let partial = region(&r1, &failing, "eu-west-1")["events"]
        .as_u64()
        .unwrap();
    assert!(partial > 0, "the failed read kept its first pages");
    let c = &r1["run"]["continuation"];
    assert_eq!(c["start"], "2026-11-19T11:45:00Z");
    assert_eq!(
        c["partition_starts"][&failing]["eu-west-1"],
        "2026-11-18T00:00:00Z"
    );
    assert_eq!(
        c["reported"][&failing]["eu-west-1"]
            .as_array()
            .unwrap()
            .len() as u64,
        partial,
        "what the failed read reported is named for the next run"
    );

    sim.fail_partition(index, "eu-west-1", None);
    let (out, r2) = chain_run(&sim, &dir, n2, &["--since", "last"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(
        r2["run"]["window"]["partition_starts"][&failing]["eu-west-1"],
        "2026-11-18T00:00:00Z"
    );
    assert_eq!(
        region(&r2, &failing, "eu-west-1")["already_reported"].as_u64(),
        Some(partial)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Re-read:   1 partition(s) from before 2026-11-19T11:45:00Z"),
        "{stdout}"
    );
    assert!(
        r2["run"]["continuation"]["partition_starts"].is_null(),
        "nothing left to re-read"
    );

    // Across the two reports, every event of the failed partition once.
    let want: BTreeSet<String> = truth.partition(&failing, "eu-west-1").unwrap().clone();
    assert!(want.len() as u64 > partial);
    let got = ids_across(&[&r1, &r2]);
    for id in &want {
        assert_eq!(got.get(id), Some(&1), "{id}");
    }
    assert_each_once(&[&r1, &r2], &truth.all_ids());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_last_without_an_earlier_run_asks_for_a_window() {
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let tmp = tempdir();
    let dir = out_dir(&tmp);
    let out = run(chain_command(
        &sim,
        &dir.display().to_string(),
        t("2026-11-20T12:00:00Z"),
        &["--since", "last"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_of(&out);
    assert!(
        e.contains("no earlier run in")
            && e.contains("--since DURATION")
            && e.contains("--start TIME"),
        "{e}"
    );
    assert_eq!(
        sim.stats().calls.get("LookupEvents"),
        None,
        "nothing scanned"
    );
    assert!(!dir.join("report.json").exists());

    // A folder whose run is not whole is not taken for a fresh start either.
    std::fs::write(dir.join("report.json"), "{}").unwrap();
    let out = run(chain_command(
        &sim,
        &dir.display().to_string(),
        t("2026-11-20T12:00:00Z"),
        &["--since", "last"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("did not finish"),
        "{}",
        stderr_of(&out)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_in_the_future_is_refused() {
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let tmp = tempdir();
    let dir = out_dir(&tmp);
    let out = run(chain_command(
        &sim,
        &dir.display().to_string(),
        t("2026-11-20T12:00:00Z"),
        &[
            "--start",
            "2026-11-19T00:00:00Z",
            "--end",
            "2026-11-20T12:00:01Z",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_of(&out);
    assert!(
        e.contains("--end") && e.contains("in the future (now is 2026-11-20T12:00:00Z)"),
        "{e}"
    );
    assert_eq!(sim.stats().calls.get("LookupEvents"), None);
    sim.shutdown().await;
}

/// A rerun with fewer formats leaves none of the last run's other files; the
/// user's own files stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_holds_one_run() {
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let tmp = tempdir();
    let dir = out_dir(&tmp);
    let at = t("2026-11-20T12:00:00Z");
    let (out, _) = chain_run(&sim, &dir, at, &["--start", "2026-11-19T00:00:00Z"]).await;
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(dir.join("my-notes.txt"), "mine").unwrap();
    let mut cmd = chain_command(
        &sim,
        &dir.display().to_string(),
        at,
        &["--start", "2026-11-19T00:00:00Z"],
    );
    cmd.args(["--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["SHA256SUMS", "my-notes.txt", "report.json"]);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 1, "{sums}");
    assert!(sums.ends_with("  report.json\n"));
    sim.shutdown().await;
}
