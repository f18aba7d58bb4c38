//! Interruption: a real SIGTERM or SIGINT to the real binary while it scans a slow
//! simulated organization. It must stop within a few seconds and leave either no
//! report, or a report marked incomplete and interrupted whose SHA256SUMS match;
//! never a report that looks whole.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::*;
use sim::{SimConfig, SimHandle, Simulator};

/// Slow enough that a full scan takes far longer than the test waits: the call
/// slots are the bottleneck, so many partitions queue behind them.
fn slow_org() -> SimConfig {
    SimConfig {
        seed: 5,
        accounts: 50,
        regions: vec![
            "us-east-1".into(),
            "eu-west-1".into(),
            "eu-central-1".into(),
        ],
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(250),
        sessions_per_partition: 4,
        ..SimConfig::default()
    }
}

async fn lookups(sim: &SimHandle) -> u64 {
    sim.stats().calls.get("LookupEvents").copied().unwrap_or(0)
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// What an interrupted run may leave: nothing that looks like a report, or a
/// report marked incomplete and interrupted, with matching sums and no temporary files.
fn assert_no_whole_looking_report(dir: &Path, code: Option<i32>) -> bool {
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".tmp-") || n.starts_with(".ssm-session-audit-")),
        "temporary files or a staging folder left behind: {names:?}"
    );
    if !dir.join("report.json").exists() {
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".csv") || n == "SHA256SUMS"),
            "report files without report.json: {names:?}"
        );
        assert_ne!(code, Some(0), "no report, yet exit 0");
        return false;
    }
    assert_sums_match(dir);
    let report = read_report(dir);
    assert_eq!(
        report["run"]["complete"], false,
        "an interrupted report is incomplete"
    );
    assert_eq!(report["run"]["interrupted"], true);
    assert_coherent(&report, code);
    true
}

async fn interrupt_mid_scan(signal: &str) {
    let sim = Simulator::start(slow_org()).await.unwrap();
    let t = tempdir();
    let mut cmd = scan_command(&sim, &t, None, &["--concurrency", "8"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("the binary starts");
    let pid = child.id().expect("running");

    // Wait until the scan is well into its lookups.
    let waited = Instant::now();
    while lookups(&sim).await < 20 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the scan never started its lookups"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(pid, signal);
    let signalled = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the scan stops after the signal")
        .unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "SIGTERM/SIGINT took {took:?} to stop the scan"
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let wrote = assert_no_whole_looking_report(&out_dir(&t), out.status.code());
    assert!(
        wrote,
        "a scan stopped mid-lookup writes what it read: {stderr}"
    );
    let report = read_report(&out_dir(&t));
    // Every partition still counted is exact; the interrupted ones say so.
    let mut interrupted = 0;
    for a in report["accounts"].as_array().unwrap() {
        for r in a["coverage"]["regions"].as_object().unwrap().values() {
            if r["status"] == "failed" {
                assert!(r["error"].as_str().unwrap().contains("interrupted"), "{r}");
                interrupted += 1;
            }
        }
    }
    assert!(interrupted > 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_scan_stops_promptly_with_an_incomplete_report() {
    interrupt_mid_scan("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_scan_stops_promptly_with_an_incomplete_report() {
    interrupt_mid_scan("INT").await;
}

/// A signal while account discovery is stuck in retries: discovery cannot be
/// cut short, so the run gives up after its grace period and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_discovery_stops_within_the_grace_period_and_writes_nothing() {
    let mut cfg = slow_org();
    cfg.latency = Duration::from_millis(5);
    cfg.faults.org_throttle_rate = 1.0;
    let sim = Simulator::start(cfg).await.unwrap();
    let t = tempdir();
    let mut cmd = scan_command(&sim, &t, None, &[]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let waited = Instant::now();
    while sim.stats().org_throttled < 2 {
        assert!(waited.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(pid, "TERM");
    let signalled = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("the run ends after the signal")
        .unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "took {:?}",
        signalled.elapsed()
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("no report was written"));
    assert!(!assert_no_whole_looking_report(
        &out_dir(&t),
        out.status.code()
    ));
    sim.shutdown().await;
}

/// Two signals in a row: the second ends the process at once. Whatever it
/// leaves must not look like a whole report, nor a staging folder or a
/// temporary file: the second signal waits for a commit in progress (a few
/// renames) and removes the staging folder before it exits. The gap between
/// the signals varies, so that the second lands before, during and after the
/// report is written (under load any of them can happen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_quits_at_once_without_a_whole_looking_report() {
    let sim = Simulator::start(slow_org()).await.unwrap();
    for gap_ms in [0u64, 5, 40] {
        let t = tempdir();
        let mut cmd = scan_command(&sim, &t, None, &["--concurrency", "8", "--quiet"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let before = lookups(&sim).await;
        let waited = Instant::now();
        while lookups(&sim).await < before + 10 {
            assert!(waited.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill(pid, "TERM");
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("the run ends")
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(3) | Some(130)),
            "gap {gap_ms} ms: exit {code:?}"
        );
        assert_no_whole_looking_report(&out_dir(&t), code);
    }
    sim.shutdown().await;
}
