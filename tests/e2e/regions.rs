//! Which regions an account has: asked (account:ListRegions, else the audit
//! role's ec2:DescribeRegions), never guessed from an error. A region the account
//! has not enabled is `not-enabled` without a LookupEvents call; a refusal of the
//! credentials in an enabled region is a failure; when neither question may be
//! asked, an opt-in region that refuses is failed naming the permissions.
//! Also: listings that do not end, and answers that lack what they must hold.

use crate::common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use sim::{SimConfig, SimHandle, Simulator};

/// Three accounts in a default and an opt-in region; account 1 has not
/// enabled the opt-in one.
fn opt_in_org() -> SimConfig {
    let mut cfg = SimConfig {
        seed: 23,
        accounts: 3,
        regions: vec!["us-east-1".into(), "ap-east-1".into()],
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(2),
        sessions_per_partition: 4,
        ..SimConfig::default()
    };
    cfg.faults.disabled_regions = vec![(1, "ap-east-1".into())];
    cfg
}

async fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg).await.expect("simulator starts")
}

fn calls(sim: &SimHandle, op: &str) -> u64 {
    sim.stats().calls.get(op).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_not_enabled_is_known_from_list_regions_and_never_read() {
    let sim = start(opt_in_org()).await;
    let acct = sim.accounts()[1].id.clone();
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let r = region(&report, &acct, "ap-east-1");
    assert_eq!(r["status"], "not-enabled");
    assert!(
        r["error"].as_str().unwrap().contains("has not enabled"),
        "{r}"
    );
    assert_eq!(account(&report, &acct)["coverage"]["status"], "complete");
    assert!(calls(&sim, "ListRegions") >= 3, "{:?}", sim.stats().calls);
    assert_eq!(calls(&sim, "DescribeRegions"), 0);
    // Known beforehand: no LookupEvents call went to the region it lacks.
    assert_eq!(sim.stats().unrecognized_client, 0);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_list_regions_the_audit_role_describes_the_regions() {
    let mut cfg = opt_in_org();
    cfg.faults.list_regions_denied = true;
    let sim = start(cfg).await;
    let acct = sim.accounts()[1].id.clone();
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(region(&report, &acct, "ap-east-1")["status"], "not-enabled");
    assert!(
        calls(&sim, "DescribeRegions") >= 3,
        "{:?}",
        sim.stats().calls
    );
    assert_eq!(sim.stats().unrecognized_client, 0);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_one_may_ask_a_refusing_opt_in_region_fails_naming_the_permissions() {
    let mut cfg = opt_in_org();
    cfg.faults.list_regions_denied = true;
    cfg.faults.describe_regions_denied = vec![1];
    let sim = start(cfg).await;
    let acct = sim.accounts()[1].id.clone();
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let r = region(&report, &acct, "ap-east-1");
    assert_eq!(r["status"], "failed", "{r}");
    let why = r["error"].as_str().unwrap();
    for must in ["account:ListRegions", "ec2:DescribeRegions"] {
        assert!(why.contains(must), "{why}");
    }
    assert_eq!(account(&report, &acct)["coverage"]["status"], "partial");
    // The others could still be told by their own role.
    for (i, a) in sim.accounts().iter().enumerate() {
        if i != 1 {
            assert_eq!(account(&report, &a.id)["coverage"]["status"], "complete");
        }
    }
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrecognized_credentials_in_an_enabled_region_are_a_failure() {
    let mut cfg = opt_in_org();
    cfg.faults.unrecognized_partitions = vec![(2, "us-east-1".into())];
    let sim = start(cfg).await;
    let acct = sim.accounts()[2].id.clone();
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let r = region(&report, &acct, "us-east-1");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("UnrecognizedClientException"),
        "{r}"
    );
    assert_eq!(region(&report, &acct, "ap-east-1")["status"], "ok");
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

fn scan_all(sim: &SimHandle, t: &tempfile::TempDir) -> tokio::process::Command {
    let (start, end) = sim_window(sim);
    let mut cmd = command(&sim.endpoint());
    cmd.args(["scan", "--regions", "all", "--start", &start, "--end", &end])
        .args(["--role-name", &sim.config().role_name])
        .args(["--fail-on", "none", "--quiet", "--output"])
        .arg(out_dir(t));
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_all_reads_what_each_account_has_enabled() {
    let sim = start(opt_in_org()).await;
    let t = tempdir();
    let (out, report) = scan_and_read(scan_all(&sim, &t), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let run_regions: Vec<&str> = report["run"]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    // The 17 every account has, plus the opt-in one two accounts enabled; never
    // the opt-in regions no account enabled.
    assert_eq!(run_regions.len(), 18, "{run_regions:?}");
    assert!(run_regions.contains(&"ap-east-1"));
    assert!(!run_regions.contains(&"af-south-1"));
    for (i, a) in sim.accounts().iter().enumerate() {
        let regions = account(&report, &a.id)["coverage"]["regions"]
            .as_object()
            .unwrap();
        assert_eq!(regions.contains_key("ap-east-1"), i != 1, "{}", a.id);
        assert!(regions.values().all(|r| r["status"] == "ok"));
    }
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_all_without_a_way_to_ask_is_partial() {
    let mut cfg = opt_in_org();
    cfg.faults.list_regions_denied = true;
    cfg.faults.describe_regions_denied = vec![0];
    let sim = start(cfg).await;
    let t = tempdir();
    let (out, report) = scan_and_read(scan_all(&sim, &t), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let a = account(&report, &sim.accounts()[0].id);
    assert_eq!(a["coverage"]["status"], "partial", "{a}");
    let why = a["coverage"]["reason"].as_str().unwrap();
    assert!(why.contains("ec2:DescribeRegions"), "{why}");
    // Its opt-in region was never read: the report cannot hold its events.
    assert!(a["coverage"]["regions"].get("ap-east-1").is_none());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_comes_back_or_a_page_without_events_fails_the_partition() {
    let mut cfg = opt_in_org();
    cfg.sessions_per_partition = 40;
    cfg.lookup_paging = sim::LookupPaging::Fixed(5);
    cfg.faults.repeat_token_partitions = vec![(0, "us-east-1".into())];
    cfg.faults.missing_events_partitions = vec![(2, "ap-east-1".into())];
    let sim = start(cfg).await;
    let t = tempdir();
    // A page without Events is retried as transient, until the retry deadline.
    let config = "[scan]\nretry_deadline = \"2s\"\n";
    let cmd = scan_command(&sim, &t, Some(config), &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let a0 = sim.accounts()[0].id.clone();
    let a2 = sim.accounts()[2].id.clone();
    let r = region(&report, &a0, "us-east-1");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("already returned"),
        "{r}"
    );
    let r = region(&report, &a2, "ap-east-1");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("without its Events"),
        "{r}"
    );
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_without_their_members_now_and_then_are_retried() {
    let mut cfg = opt_in_org();
    cfg.accounts = 45;
    cfg.faults.missing_events_rate = 0.2;
    cfg.faults.org_missing_accounts_rate = 0.3;
    let sim = start(cfg).await;
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(report["accounts"].as_array().unwrap().len(), 45);
    assert!(sim.stats().injected_errors > 0);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_listing_that_repeats_its_token_keeps_what_it_read_and_says_so() {
    let mut cfg = opt_in_org();
    cfg.accounts = 25;
    cfg.faults.org_repeat_token = true;
    let sim = start(cfg).await;
    let t = tempdir();
    let (out, report) =
        scan_and_read(scan_command(&sim, &t, None, &["--quiet"]), &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    // The first page (20 accounts) was read; the listing's failure is the run's reason.
    assert_eq!(report["accounts"].as_array().unwrap().len(), 20);
    let reasons = report["run"]["incomplete_reasons"].to_string();
    assert!(
        reasons.contains("ListAccounts") && reasons.contains("already returned"),
        "{reasons}"
    );
    sim.shutdown().await;
}
