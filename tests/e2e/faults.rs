//! Faults: the real binary and SDK against a simulated organization that throttles,
//! fails, stalls, cuts connections, denies roles, lacks regions and expires
//! credentials. Each case compares the report with the simulator's ground truth
//! event by event: a partition reported `ok` holds exactly its events; one that
//! could not be read is `failed` with a reason; `run.complete` and the exit
//! status agree (see `common::assert_coherent`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use sim::{HeavyPartition, LookupPaging, SimConfig, SimHandle, Simulator};

/// A small organization with a little latency and enough sessions for several
/// records per event name.
fn org(accounts: usize) -> SimConfig {
    SimConfig {
        seed: 11,
        accounts,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        sessions_per_partition: 6,
        ..SimConfig::default()
    }
}

fn heavy(account_index: usize, region: &str, events: usize) -> HeavyPartition {
    HeavyPartition {
        account_index,
        region: region.into(),
        events,
    }
}

async fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg).await.expect("simulator starts")
}

fn exit_of(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn stat(report: &serde_json::Value, key: &str) -> u64 {
    report["run"]["stats"][key].as_u64().unwrap()
}

/// Every region of every scanned (not skipped) account.
fn scanned_regions(report: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for a in report["accounts"].as_array().unwrap() {
        if a["coverage"]["status"] == "skipped" {
            continue;
        }
        for (r, c) in a["coverage"]["regions"].as_object().unwrap() {
            out.push((
                a["account_id"].as_str().unwrap().to_string(),
                r.clone(),
                c.clone(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_storm_far_beyond_the_limit_loses_and_doubles_nothing() {
    let mut cfg = org(4);
    // Pages of random size (empty ones included) make many more calls.
    cfg.lookup_paging = LookupPaging::Random;
    cfg.heavy_partitions = vec![heavy(1, "us-east-1", 120), heavy(2, "eu-west-1", 90)];
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        None,
        &["--lookup-rate", "100", "--concurrency", "64", "--quiet"],
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    assert_eq!(report["run"]["complete"], true);
    assert!(sim.stats().throttled > 10, "{:?}", sim.stats());
    assert!(stat(&report, "throttles") > 10);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

async fn injected_errors(rate: f64) {
    // Enough calls (24 accounts × 2 regions × 3 event names, and a heavy
    // partition) that a 5% rate injects some on any schedule: with 4 accounts,
    // parallel chains made so few calls that a run could draw none.
    let mut cfg = org(24);
    cfg.seed = (rate * 1000.0) as u64;
    cfg.heavy_partitions = vec![heavy(1, "eu-west-1", 150)];
    cfg.faults.error_rate = rate;
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(&sim, &t, None, &["--concurrency", "64", "--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    let injected = sim.stats().injected_errors;
    assert!(injected > 0, "the simulator injected 5xx");
    assert_eq!(stat(&report, "retries"), injected, "every 5xx was retried");
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_server_errors_are_retried_to_the_last_page() {
    injected_errors(0.05).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_server_errors_are_retried_to_the_last_page() {
    injected_errors(0.20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_slower_than_the_call_timeout_are_retried() {
    let mut cfg = org(3);
    cfg.faults.slow_rate = 0.15;
    cfg.faults.slow_delay = Duration::from_secs(3);
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        Some("[scan]\ncall_timeout = \"1s\"\n"),
        &["--quiet"],
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    assert!(sim.stats().injected_slow > 0);
    assert!(stat(&report, "retries") >= sim.stats().injected_slow);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_response_are_retried() {
    let mut cfg = org(4);
    cfg.heavy_partitions = vec![heavy(2, "us-east-1", 150)];
    cfg.faults.reset_rate = 0.2;
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(&sim, &t, None, &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    let resets = sim.stats().injected_resets;
    assert!(resets > 0);
    assert_eq!(
        stat(&report, "retries"),
        resets,
        "every cut page was read again"
    );
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_failing_past_the_retry_deadline_fail_their_partition_with_the_reason() {
    let mut cfg = org(3);
    cfg.faults.error_rate = 1.0;
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        Some("[scan]\nretry_deadline = \"2s\"\n"),
        &["--quiet"],
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(3), "{}", stderr_of(&out));
    assert_eq!(report["run"]["complete"], false);
    let regions = scanned_regions(&report);
    assert_eq!(regions.len(), 6);
    for (acct, r, c) in regions {
        assert_eq!(c["status"], "failed", "{acct}/{r}");
        let err = c["error"].as_str().unwrap();
        assert!(err.contains("gave up on a page"), "{acct}/{r}: {err}");
        assert!(
            err.contains("InternalFailure") || err.contains("ServiceUnavailable"),
            "{acct}/{r}: {err}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_always_time_out_fail_their_partition_with_the_reason() {
    let mut cfg = org(2);
    cfg.faults.slow_rate = 1.0;
    cfg.faults.slow_delay = Duration::from_secs(4);
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        Some("[scan]\ncall_timeout = \"1s\"\nretry_deadline = \"2s\"\n"),
        &["--quiet"],
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(3), "{}", stderr_of(&out));
    for (acct, r, c) in scanned_regions(&report) {
        assert_eq!(c["status"], "failed", "{acct}/{r}");
        assert!(
            c["error"].as_str().unwrap().contains("timeout"),
            "{acct}/{r}: {}",
            c["error"]
        );
        assert_eq!(c["events"], 0);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_role_fails_its_account_and_only_its_account() {
    let mut cfg = org(4);
    cfg.faults.denied_accounts = vec![2];
    let sim = start(cfg).await;
    let denied = sim.accounts()[2].id.clone();
    let t = tempdir();
    let cmd = scan_command(&sim, &t, None, &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(3), "{}", stderr_of(&out));
    let a = account(&report, &denied);
    assert_eq!(a["coverage"]["status"], "failed");
    let reason = a["coverage"]["reason"].as_str().unwrap();
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert!(reason.contains(&denied), "{reason}");
    for r in ["us-east-1", "eu-west-1"] {
        assert_eq!(region(&report, &denied, r)["status"], "failed");
        assert!(region(&report, &denied, r)["error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"));
    }
    for acct in sim.accounts() {
        if acct.id != denied {
            assert_eq!(account(&report, &acct.id)["coverage"]["status"], "complete");
        }
    }
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_expiring_mid_run_are_refreshed_even_with_one_call_slot() {
    let mut cfg = org(3);
    cfg.latency = Duration::from_millis(20);
    cfg.heavy_partitions = vec![heavy(1, "us-east-1", 140), heavy(2, "eu-west-1", 110)];
    // Role sessions far shorter than the scan.
    cfg.faults.credential_ttl = Some(Duration::from_secs(1));
    let sim = start(cfg).await;
    let t = tempdir();
    // One slot: AssumeRole must never wait behind the lookup that needs it.
    let cmd = scan_command(&sim, &t, None, &["--concurrency", "1", "--quiet"]);
    let (out, report) =
        tokio::time::timeout(Duration::from_secs(40), scan_and_read(cmd, &out_dir(&t)))
            .await
            .expect("no deadlock with one call slot");
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    let issued = sim.stats().credentials_issued;
    assert!(issued > 2, "credentials were refreshed: {issued} issued");
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_accounts_throttling_is_retried_through_every_page() {
    let mut cfg = org(7);
    cfg.org_page_size = 2;
    cfg.empty_pages = true;
    cfg.faults.org_throttle_rate = 0.5;
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(&sim, &t, None, &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(0), "{}", stderr_of(&out));
    assert!(sim.stats().org_throttled > 0);
    assert_eq!(report["accounts"].as_array().unwrap().len(), 7);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_accounts_throttled_past_the_deadline_stops_with_exit_2_and_no_report() {
    let mut cfg = org(3);
    cfg.faults.org_throttle_rate = 1.0;
    let sim = start(cfg).await;
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        Some("[scan]\nretry_deadline = \"1s\"\n"),
        &["--quiet"],
    );
    let out = run(cmd).await;
    assert_eq!(exit_of(&out), Some(2), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("ListAccounts"), "{err}");
    assert!(err.contains("TooManyRequestsException"), "{err}");
    assert!(!out_dir(&t).join("report.json").exists());
    assert!(!out_dir(&t).join("SHA256SUMS").exists());
    assert_eq!(sim.stats().calls.get("LookupEvents"), None);
    sim.shutdown().await;
}

/// The library with a cancellation sender that is gone (nobody can cancel): that
/// is not a cancellation, and the scan must read everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_cancel_sender_does_not_cancel_the_scan() {
    use ssm_session_audit::config::{self, FlagValues};
    let sim = start(org(3)).await;
    let (start_t, end_t) = sim_window(&sim);
    let t = tempdir();
    let flags = FlagValues {
        regions: Some(sim.config().regions.clone()),
        start: Some(start_t),
        end: Some(end_t),
        output: Some(out_dir(&t)),
        ..FlagValues::default()
    };
    let cfg = config::resolve(&flags, None, Utc::now()).unwrap();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.endpoint())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIATESTMANAGEMENT01",
            "test-secret-management-0000",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    drop(tx);
    let report = ssm_session_audit::scan::run_scan(
        &cfg,
        &sdk,
        std::sync::Arc::new(ssm_session_audit::progress::NoProgress),
        rx,
    )
    .await
    .unwrap();
    let report = serde_json::to_value(&report).unwrap();
    assert_coherent(&report, Some(0));
    assert_eq!(report["run"]["complete"], true, "{:#}", report["accounts"]);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

/// Pages of every size (1 record, random sizes with empty pages, full) against the
/// real paging code: the same events each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_page_size_gives_the_same_events() {
    for (seed, paging) in [
        (21, LookupPaging::Fixed(1)),
        (22, LookupPaging::Random),
        (23, LookupPaging::Random),
        (24, LookupPaging::Fixed(7)),
    ] {
        let mut cfg = org(2);
        cfg.seed = seed;
        cfg.lookup_rate = 50.0;
        cfg.lookup_paging = paging;
        cfg.sessions_per_partition = 5;
        cfg.heavy_partitions = vec![heavy(1, "us-east-1", 60)];
        let sim = start(cfg).await;
        let t = tempdir();
        let cmd = scan_command(&sim, &t, None, &["--lookup-rate", "50", "--quiet"]);
        let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
        assert_eq!(exit_of(&out), Some(0), "{paging:?}: {}", stderr_of(&out));
        let n = assert_matches_ground_truth(&sim, &report);
        if paging == LookupPaging::Fixed(1) {
            assert!(stat(&report, "pages") as usize >= n, "one page per event");
        }
        sim.shutdown().await;
    }
}

mod paging {
    //! The per-page intake (`lookup::take_page`) with arbitrary page splits, orders
    //! and repeats: never loses an event, never keeps one twice, and counts each
    //! record not read in full once, however often it comes.
    use super::*;
    use proptest::prelude::*;
    use ssm_session_audit::model::{RegionCoverage, RegionStatus};
    use ssm_session_audit::source::lookup::partition::take_page;
    use ssm_session_audit::source::lookup::wire::LookupRecord;

    #[derive(Debug, Clone)]
    enum Kind {
        Session,
        /// Not JSON, but LookupEvents' own fields are whole: kept from them.
        Partial,
        /// Not JSON and no EventTime anywhere: nothing to keep.
        Malformed,
        OtherService,
    }

    fn record(i: usize, kind: &Kind) -> LookupRecord {
        let id = format!("evt-{i:04}");
        let r = LookupRecord {
            event_id: Some(id.clone()),
            event_name: Some("StartSession".into()),
            ..LookupRecord::default()
        };
        let ssm = Some("ssm.amazonaws.com".to_string());
        match kind {
            Kind::Session => LookupRecord {
                event_source: ssm,
                cloud_trail_event: Some(
                    serde_json::json!({
                        "eventID": id, "eventName": "StartSession",
                        "eventTime": format!("2026-11-0{}T10:00:00Z", 1 + i % 9),
                        "eventSource": "ssm.amazonaws.com",
                        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111111111111:user/u{i}"), "userName": format!("u{i}")},
                        "responseElements": {"sessionId": format!("u{i}-0123456789abcdef0")},
                    })
                    .to_string(),
                ),
                ..r
            },
            Kind::Partial => LookupRecord {
                event_source: ssm,
                event_time: chrono::DateTime::from_timestamp(1_793_527_200 + i as i64, 0),
                cloud_trail_event: Some(format!("<html>{id}</html>")),
                ..r
            },
            Kind::Malformed => LookupRecord {
                event_source: ssm,
                cloud_trail_event: Some(format!("{{\"eventID\":\"{id}\",\"userIdent")),
                ..r
            },
            Kind::OtherService => LookupRecord {
                event_source: Some("ec2.amazonaws.com".into()),
                cloud_trail_event: Some(
                    serde_json::json!({
                        "eventID": id, "eventName": "StartSession",
                        "eventTime": "2026-11-01T10:00:00Z", "eventSource": "ec2.amazonaws.com",
                    })
                    .to_string(),
                ),
                ..r
            },
        }
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![8 => Just(Kind::Session), 1 => Just(Kind::Partial), 1 => Just(Kind::Malformed), 1 => Just(Kind::OtherService)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn every_event_once_for_any_split_order_and_repeat(
            kinds in prop::collection::vec(kind(), 0..80),
            repeats in prop::collection::vec(1usize..4, 80),
            order in prop::collection::vec(any::<u64>(), 240),
            cuts in prop::collection::vec(0usize..240, 0..30),
        ) {
            // Each record appears 1..=3 times, in a shuffled order, split into pages.
            let mut stream: Vec<(usize, u64)> = Vec::new();
            for (i, _) in kinds.iter().enumerate() {
                for r in 0..repeats[i] {
                    let key = order.get(stream.len()).copied().unwrap_or((i * 7919 + r) as u64);
                    stream.push((i, key));
                }
            }
            stream.sort_by_key(|&(i, k)| (k, i));
            let records: Vec<LookupRecord> = stream.iter().map(|&(i, _)| record(i, &kinds[i])).collect();
            let mut bounds: Vec<usize> = cuts.into_iter().filter(|c| *c <= records.len()).collect();
            bounds.extend([0, records.len()]);
            bounds.sort_unstable();

            let mut seen = HashSet::new();
            let mut events = Vec::new();
            let mut cov = RegionCoverage::new(RegionStatus::Ok);
            let mut kept = 0;
            for w in bounds.windows(2) {
                kept += take_page(&records[w[0]..w[1]], "111111111111", "us-east-1", &mut seen, &mut events, &mut cov);
            }

            let of = |f: fn(&Kind) -> bool| -> BTreeSet<String> {
                kinds.iter().enumerate()
                    .filter(|(_, k)| f(k))
                    .map(|(i, _)| format!("evt-{i:04}")).collect()
            };
            let kept_kinds = of(|k| matches!(k, Kind::Session | Kind::Partial));
            let mut got: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
            got.sort();
            let want: Vec<String> = kept_kinds.iter().cloned().collect();
            prop_assert_eq!(&got, &want, "every session event exactly once, partial ones included");
            prop_assert_eq!(kept, want.len());
            let partial: Vec<String> = events.iter().filter(|e| e.parse_error.is_some()).map(|e| e.event_id.clone()).collect();
            prop_assert_eq!(partial.iter().cloned().collect::<BTreeSet<_>>(), of(|k| matches!(k, Kind::Partial)));
            let copies: BTreeMap<usize, usize> = stream.iter().fold(BTreeMap::new(), |mut m, &(i, _)| { *m.entry(i).or_default() += 1; m });
            let dup: usize = copies.iter().filter(|(i, _)| !matches!(kinds[**i], Kind::OtherService)).map(|(_, n)| n - 1).sum();
            prop_assert_eq!(cov.duplicates as usize, dup);
            // Records, not copies: each partial or unreadable record once.
            let mut bad: Vec<String> = of(|k| matches!(k, Kind::Partial | Kind::Malformed)).into_iter().collect();
            prop_assert_eq!(cov.malformed as usize, bad.len());
            let mut listed = cov.malformed_event_ids.clone();
            listed.sort();
            bad.sort();
            prop_assert_eq!(listed, bad);
            prop_assert!(events.iter().all(|e| e.account_id == "111111111111" && e.region == "us-east-1"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_whose_scan_crashes_is_failed_and_the_others_are_read() {
    let sim = start(org(4)).await;
    let crashing = sim.accounts()[2].id.clone();
    let t = tempdir();
    let mut cmd = scan_command(&sim, &t, None, &["--quiet"]);
    cmd.env(
        ssm_session_audit::failpoint::VAR,
        format!("account:{crashing}"),
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(3), "{}", stderr_of(&out));
    let a = account(&report, &crashing);
    assert_eq!(a["coverage"]["status"], "failed");
    assert!(a["coverage"]["reason"]
        .as_str()
        .unwrap()
        .contains("internal error"));
    let reasons = report["run"]["incomplete_reasons"].to_string();
    assert!(reasons.contains("internal error"), "{reasons}");
    // One line on stderr that says it is a bug; no backtrace.
    let err = stderr_of(&out);
    assert!(err.contains("internal error (a bug"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
    for acct in sim.accounts() {
        if acct.id != crashing {
            assert_eq!(account(&report, &acct.id)["coverage"]["status"], "complete");
        }
    }
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_that_reads_no_account_is_not_complete() {
    let sim = start(org(2)).await;
    let all: Vec<String> = sim.accounts().iter().map(|a| a.id.clone()).collect();
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        None,
        &["--quiet", "--exclude-accounts", &all.join(",")],
    );
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(exit_of(&out), Some(3), "{}", stderr_of(&out));
    let reasons = report["run"]["incomplete_reasons"].to_string();
    assert!(reasons.contains("every account was skipped"), "{reasons}");
    assert_eq!(
        sim.stats().calls.get("LookupEvents").copied().unwrap_or(0),
        0
    );
    sim.shutdown().await;
}
