//! End to end: the real binary and the real AWS SDK against the simulated
//! organization over loopback HTTP, compared with the simulator's ground truth.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use sim::{Faults, HeavyPartition, SimConfig, Simulator};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-east-1"];

fn window(sim_end: DateTime<Utc>) -> (String, String) {
    let start = sim_end - TimeDelta::days(7);
    (start.to_rfc3339(), sim_end.to_rfc3339())
}

fn base_config() -> SimConfig {
    SimConfig {
        seed: 7,
        accounts: 8,
        regions: REGIONS.iter().map(|s| s.to_string()).collect(),
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        sessions_per_partition: 12,
        empty_pages: true,
        org_page_size: 3,
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reads_every_event_and_reports_what_it_could_not() {
    let mut cfg = base_config();
    cfg.heavy_partitions = vec![HeavyPartition {
        account_index: 2,
        region: "eu-west-1".into(),
        events: 320,
    }];
    cfg.faults = Faults {
        denied_accounts: vec![3],
        suspended_accounts: vec![4],
        disabled_regions: vec![(5, "ap-east-1".into())],
        ..Faults::default()
    };
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        &REGIONS.join(","),
        "--start",
        &start,
        "--end",
        &end,
    ])
    .args(["--role-name", &cfg.role_name, "--output"])
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "incomplete coverage exits 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    let accts = sim.accounts();
    assert_eq!(
        account(&report, &accts[3].id)["coverage"]["status"],
        "failed"
    );
    assert!(account(&report, &accts[3].id)["coverage"]["reason"]
        .as_str()
        .unwrap()
        .contains("AccessDenied"));
    assert_eq!(
        account(&report, &accts[4].id)["coverage"]["status"],
        "skipped"
    );
    assert_eq!(
        region_status(&report, &accts[5].id, "ap-east-1"),
        "not-enabled"
    );
    assert_eq!(
        account(&report, &accts[5].id)["coverage"]["status"],
        "complete"
    );
    assert_eq!(report["run"]["complete"], false);
    // The heavy partition needed many pages, and every one of them was read.
    let heavy = &account(&report, &accts[2].id)["coverage"]["regions"]["eu-west-1"];
    assert!(heavy["pages"].as_u64().unwrap() >= 7, "{heavy}");
    assert_matches_ground_truth(&sim, &report);
    // Every file is listed in SHA256SUMS, written last.
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    for f in ["report.json", "events.csv", "accounts.csv"] {
        assert!(sums.contains(f), "SHA256SUMS lists {f}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_above_the_limit_is_throttled_but_loses_nothing() {
    let mut cfg = base_config();
    cfg.accounts = 3;
    cfg.heavy_partitions = vec![HeavyPartition {
        account_index: 1,
        region: "us-east-1".into(),
        events: 260,
    }];
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        &REGIONS.join(","),
        "--start",
        &start,
        "--end",
        &end,
    ])
    .args([
        "--role-name",
        &cfg.role_name,
        "--lookup-rate",
        "20",
        "--concurrency",
        "64",
        "--output",
    ])
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    assert_eq!(report["run"]["complete"], true);
    let throttles = report["run"]["stats"]["throttles"].as_u64().unwrap();
    assert!(
        throttles > 0,
        "a pace of 20/s against 2/s must meet throttling"
    );
    assert!(sim.stats().throttled > 0);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_pace_stays_within_the_limit() {
    let mut cfg = base_config();
    cfg.accounts = 2;
    cfg.regions = vec!["us-east-1".into()];
    cfg.heavy_partitions = vec![HeavyPartition {
        account_index: 1,
        region: "us-east-1".into(),
        events: 200,
    }];
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        "us-east-1",
        "--start",
        &start,
        "--end",
        &end,
    ])
    .args(["--role-name", &cfg.role_name, "--output"])
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    assert_eq!(
        report["run"]["stats"]["throttles"], 0,
        "2 calls/s is never throttled"
    );
    assert_eq!(sim.stats().throttled, 0);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude_lists_and_unknown_accounts_are_reported() {
    let cfg = base_config();
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let accts = sim.accounts();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let include = format!(
        "{},{},{},999999999999",
        accts[1].id, accts[2].id, accts[6].id
    );
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        "us-east-1",
        "--start",
        &start,
        "--end",
        &end,
    ])
    .args([
        "--role-name",
        &cfg.role_name,
        "--accounts",
        &include,
        "--exclude-accounts",
        &accts[6].id,
    ])
    .arg("--output")
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    // An id asked for that the organization does not hold was not read: the
    // run says so (exit 3), it does not pass it over as skipped.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    let statuses: BTreeMap<String, String> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account_id"].as_str().unwrap().to_string(),
                a["coverage"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses[&accts[1].id], "complete");
    assert_eq!(statuses[&accts[2].id], "complete");
    assert_eq!(statuses[&accts[6].id], "skipped");
    assert_eq!(statuses[&accts[0].id], "skipped");
    assert_eq!(statuses["999999999999"], "failed");
    let unknown = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == "999999999999")
        .unwrap();
    assert!(unknown["coverage"]["reason"]
        .as_str()
        .unwrap()
        .contains("not in the organization"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_endpoint_override_is_refused_in_tests() {
    let mut cmd = command("http://127.0.0.1:9");
    cmd.env_remove("AWS_ENDPOINT_URL");
    cmd.args(["scan", "--regions", "us-east-1", "--since", "1h", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ENDPOINT_URL"));
}

/// At a round trip longer than the pace's interval one chain cannot keep a
/// deep partition at its pace: its chains split into time slices, read side by
/// side. Here 300 ms round trips and a pace of 20 calls/s: the three event
/// names' chains make at most about 10 calls a second together, so more in one
/// second means slices ran side by side, and the events must still come
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_partition_at_a_long_round_trip_is_read_in_slices_exactly_once() {
    let mut cfg = base_config();
    cfg.accounts = 2;
    cfg.regions = vec!["us-east-1".into()];
    cfg.latency = Duration::from_millis(300);
    cfg.jitter = Duration::ZERO;
    cfg.lookup_rate = 20.0;
    cfg.empty_pages = false;
    cfg.heavy_partitions = vec![HeavyPartition {
        account_index: 1,
        region: "us-east-1".into(),
        events: 3_000,
    }];
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        "us-east-1",
        "--start",
        &start,
        "--end",
        &end,
        "--lookup-rate",
        "20",
    ])
    .args(["--role-name", &cfg.role_name, "--output"])
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    assert_eq!(report["run"]["complete"], true);
    let stats = sim.stats();
    assert!(
        stats.max_served_lookup_calls_1s >= 14,
        "three chains at 300 ms make at most ~10 calls a second; slices side by side make more: {}",
        stats.max_served_lookup_calls_1s
    );
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

/// An organization of many ListAccounts pages is also walked by OU beside the
/// listing, so accounts late in the chain start sooner; every account is still
/// read once and the listing is ListAccounts' (all its pages are read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_listing_is_walked_by_ou_beside_it_and_each_account_read_once() {
    let mut cfg = base_config();
    cfg.accounts = 30;
    cfg.regions = vec!["us-east-1".into()];
    cfg.org_page_size = 2;
    cfg.sessions_per_partition = 2;
    let sim = Simulator::start(cfg.clone()).await.unwrap();
    let (start, end) = window(cfg.window_end);
    let t = tempdir();
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args([
        "scan",
        "--regions",
        "us-east-1",
        "--start",
        &start,
        "--end",
        &end,
    ])
    .args(["--role-name", &cfg.role_name, "--output"])
    .arg(&dir)
    .args(["--fail-on", "none", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);
    assert_eq!(report["run"]["complete"], true);
    let stats = sim.stats();
    let calls = |op: &str| stats.calls.get(op).copied().unwrap_or(0);
    assert!(
        calls("ListRoots") >= 1 && calls("ListAccountsForParent") >= 1,
        "{:?}",
        stats.calls
    );
    assert!(
        calls("ListAccounts") >= 15,
        "every ListAccounts page is read: {:?}",
        stats.calls
    );
    assert_eq!(report["accounts"].as_array().unwrap().len(), 30);
    assert_eq!(
        calls("AssumeRole") as usize,
        29,
        "each member account's role is assumed once: {:?}",
        stats.calls
    );
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

/// Every call the tool signs, by the SDK or by itself on the wire (LookupEvents,
/// DescribeSessions, GetDocument), carries a SigV4 signature that verifies as
/// AWS checks it: the simulator recomputes each one from the specification, with
/// the secret of the credentials it issued (or the caller's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signature_the_scan_sends_verifies() {
    // An endpoint with a path (a proxy's, a VPC endpoint's): the signature
    // covers the path as sent.
    for (secret, good, path) in [
        ("test-secret-management-0000", true, ""),
        ("test-secret-management-0000", true, "/edge/a%20b"),
        ("not-the-secret", false, ""),
    ] {
        let mut cfg = base_config();
        cfg.accounts = 3;
        cfg.verify_signatures = Some(secret.to_string());
        let sim = Simulator::start(cfg.clone()).await.unwrap();
        let (start, end) = window(cfg.window_end);
        let t = tempdir();
        let dir = out_dir(&t);
        let mut cmd = command(&format!("{}{path}", sim.endpoint()));
        cmd.args([
            "scan",
            "--regions",
            &REGIONS.join(","),
            "--start",
            &start,
            "--end",
            &end,
        ])
        .args(["--role-name", &cfg.role_name, "--output"])
        .arg(&dir)
        .args(["--fail-on", "none", "--quiet"]);
        let out = run(cmd).await;
        let stats = sim.stats();
        let calls = |op: &str| stats.calls.get(op).copied().unwrap_or(0);
        if good {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(stats.bad_signatures, 0);
            assert!(
                calls("LookupEvents") > 0
                    && calls("DescribeSessions") > 0
                    && calls("GetDocument") > 0,
                "{:?}",
                stats.calls
            );
            let report = read_report(&dir);
            assert_eq!(report["run"]["complete"], true);
            assert_matches_ground_truth(&sim, &report);
        } else {
            // The verifier is live: with another secret nothing the caller signs passes.
            assert_ne!(out.status.code(), Some(0));
            assert!(stats.bad_signatures > 0);
        }
        sim.shutdown().await;
    }
}

/// A stand-in stricter than AWS's bucket (it holds 1.1 tokens: after a call,
/// the next passes only 0.45 s later, as they arrive): a call that waited for
/// a call slot after its turn pushes its partition's next turn back, so calls
/// arrive at the server at the pace, not closer together. (A bucket of exactly
/// one token also throttles a call a millisecond early, which the way to the
/// server alone can make it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_wait_for_a_slot_still_reach_a_strict_server_at_the_pace() {
    let mut cfg = base_config();
    cfg.accounts = 4;
    cfg.regions = vec!["us-east-1".into()];
    cfg.latency = Duration::from_millis(150);
    cfg.jitter = Duration::ZERO;
    cfg.lookup_burst = 1.1;
    cfg.heavy_partitions = (0..4)
        .map(|account_index| HeavyPartition {
            account_index,
            region: "us-east-1".into(),
            events: 300,
        })
        .collect();
    let sim = Simulator::start(cfg).await.unwrap();
    let t = tempdir();
    // Fewer calls in flight than the partitions want: calls wait for a slot.
    let cmd = scan_command(&sim, &t, None, &["--concurrency", "2", "--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(report["run"]["complete"], true);
    let stats = sim.stats();
    assert!(
        stats.calls["LookupEvents"] > 30,
        "enough calls to meet the bucket: {stats:?}"
    );
    assert_eq!(stats.throttled, 0, "{stats:?}");
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}
