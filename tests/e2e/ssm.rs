//! Session Manager's own records end to end: the real binary and SDK against
//! the simulator's `DescribeSessions` and `GetDocument`, compared exactly with
//! its `ssm_truth` — each partition's posture, each session's status, real end,
//! reason, access type and owner, the discrepancies, the three flags — and
//! `ssm-session-audit active` against the sessions the simulator says are
//! connected. Pages of 2, a rate below the tool's pace, 5 % 500s, and an audit
//! role without the Session Manager permissions are on throughout.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::Value;
use sim::{Faults, SimConfig, SimHandle, SimPreferences, Simulator, SsmSim, SsmTruth};

const TUNNELS: [&str; 3] = [
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
    "AWS-StartSSHSession",
];

/// The demo organization, every account reachable, the window ending a
/// minute ago; account 6's audit role may not read Session Manager.
fn org() -> SimConfig {
    let end = Utc::now() - TimeDelta::minutes(1);
    SimConfig {
        window_end: DateTime::from_timestamp(end.timestamp(), 0).unwrap(),
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        faults: Faults::default(),
        ssm: SsmSim {
            denied_accounts: vec![6],
            preferences: vec![
                (2, "eu-west-1".into(), SimPreferences::LogsNowhere),
                (3, "eu-west-1".into(), SimPreferences::CloudWatchOnly),
            ],
            page_size: Some(2),
            rate: 3.0,
            error_rate: 0.05,
            ..SsmSim::default()
        },
        ..SimConfig::demo()
    }
}

fn findings_of(report: &Value, flag: &str) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["flag"] == flag)
        .map(|f| {
            (
                f["account_id"].as_str().unwrap().to_string(),
                f["session_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn opt(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn is_tunnel(doc: &str) -> bool {
    TUNNELS.iter().any(|t| doc.starts_with(t))
}

/// Whether no transcript of a session with `doc` can exist in a partition.
fn expect_logging_off(doc: Option<&str>, p: &sim::SsmPartitionTruth) -> bool {
    let prefs_off = matches!(
        p.preferences,
        SimPreferences::NeverSaved | SimPreferences::LogsNowhere
    );
    match doc {
        None => prefs_off,
        Some(d) if is_tunnel(d) => false,
        Some(d) if p.silent_documents.contains(d) => true,
        // No settings of its own: off only where the region's log nowhere too.
        Some("AWS-StartInteractiveCommand") => prefs_off,
        Some(_) => false,
    }
}

/// Every posture, session field, discrepancy and Session Manager flag of
/// `report` is exactly what `truth` implies.
fn assert_matches_ssm_truth(sim: &SimHandle, truth: &SsmTruth, report: &Value) {
    let accounts = sim.accounts();
    let denied: BTreeSet<&str> = sim
        .config()
        .ssm
        .denied_accounts
        .iter()
        .map(|&i| accounts[i].id.as_str())
        .collect();
    let mut want_off = BTreeSet::new();
    let mut want_active = BTreeSet::new();
    let mut checked_sessions = 0;
    let mut history_ends = 0;
    for (account, regions) in &truth.partitions {
        for (region, pt) in regions {
            let posture = &region_of(report, account, region)["session_manager"];
            assert!(posture.is_object(), "{account}/{region}: no posture");
            let prefs = &posture["preferences"];
            if pt.denied {
                assert!(denied.contains(account.as_str()));
                assert_eq!(posture["readable"], false);
                assert_eq!(
                    posture["summary"],
                    "not readable: grant ssm:DescribeSessions / ssm:GetDocument to the audit role"
                );
                assert_eq!(prefs["status"], "not-readable", "{account}/{region}");
                assert_eq!(prefs["logging"], "unknown", "never 'no logging'");
                assert_eq!(posture["history"]["status"], "not-readable");
                assert!(posture.get("discrepancies").is_none());
                continue;
            }
            assert_eq!(posture["readable"], true, "{account}/{region}: {posture}");
            let (status, logging) = match pt.preferences {
                SimPreferences::S3AndCloudWatch => ("read", "s3+cloudwatch"),
                SimPreferences::CloudWatchOnly => ("read", "cloudwatch"),
                SimPreferences::LogsNowhere => ("read", "none"),
                SimPreferences::NeverSaved => ("never-saved", "none"),
            };
            assert_eq!(prefs["status"], status, "{account}/{region}");
            assert_eq!(prefs["logging"], logging, "{account}/{region}");
            let s3 = prefs["s3_bucket"]
                .as_str()
                .map(|b| format!("s3://{b}/{}", prefs["s3_key_prefix"].as_str().unwrap_or("")));
            assert_eq!(s3, pt.s3, "{account}/{region}");
            assert_eq!(opt(&prefs["cloudwatch_log_group"]), pt.cloudwatch);
            if status == "read" {
                assert_eq!(prefs["s3_encryption"], true);
                assert_eq!(prefs["cloudwatch_encryption"], true);
                assert_eq!(prefs["idle_timeout_minutes"], 20);
                assert!(prefs["kms_key_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("arn:aws:kms:"));
                assert_eq!(prefs["run_as_enabled"], false);
            }
            let h = &posture["history"];
            assert_eq!(h["status"], "read");
            assert_eq!(h["active"].as_u64().unwrap() as usize, pt.active().len());
            let past = pt
                .sessions
                .values()
                .filter(|s| s.state == "History")
                .count();
            assert_eq!(
                h["history"].as_u64().unwrap() as usize,
                past,
                "{account}/{region}"
            );
            let got: BTreeSet<(String, String)> = posture["discrepancies"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|d| {
                            (
                                d["session_id"].as_str().unwrap().to_string(),
                                d["known_by"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let want: BTreeSet<(String, String)> = pt
                .history_only
                .iter()
                .map(|id| (id.clone(), "session-manager".to_string()))
                .chain(
                    pt.cloudtrail_only
                        .iter()
                        .map(|id| (id.clone(), "cloudtrail".to_string())),
                )
                .collect();
            assert_eq!(got, want, "{account}/{region} discrepancies");
            for id in pt.active() {
                want_active.insert((account.clone(), id));
            }
            for s in report["sessions"].as_array().unwrap() {
                if s["account_id"] != account.as_str() || s["region"] != region.as_str() {
                    continue;
                }
                let sid = s["session_id"].as_str().unwrap();
                if s["start_event_id"].is_string()
                    && expect_logging_off(s["document_name"].as_str(), pt)
                {
                    want_off.insert((account.clone(), sid.to_string()));
                }
                let Some(t) = pt.sessions.get(sid) else {
                    assert!(s.get("status").is_none(), "{sid}: a status nobody gave");
                    continue;
                };
                checked_sessions += 1;
                assert_eq!(
                    opt(&s["status"]).as_deref(),
                    Some(t.status.as_str()),
                    "{sid}"
                );
                assert_eq!(s["active"] == true, t.state == "Active", "{sid}");
                assert_eq!(
                    opt(&s["access_type"]).as_deref(),
                    Some(t.access_type.as_str())
                );
                assert_eq!(opt(&s["owner"]).as_deref(), Some(t.owner.as_str()), "{sid}");
                assert_eq!(opt(&s["reason"]), t.reason, "{sid}");
                assert_eq!(time(&s["real_end_time"]), t.end, "{sid}: the real end");
                if s["end_source"] == "session-manager" {
                    history_ends += 1;
                    assert!(
                        s["end_time"].is_null(),
                        "{sid}: history ends only what Terminate did not"
                    );
                }
                if t.state == "Active" {
                    assert!(s["observed_at"].is_string(), "{sid}");
                }
            }
        }
    }
    assert!(
        checked_sessions > 50,
        "only {checked_sessions} sessions compared"
    );
    assert!(
        history_ends > 3,
        "sessions whose end only history gives: {history_ends}"
    );
    assert!(!want_active.is_empty() && !want_off.is_empty());
    assert_eq!(findings_of(report, "active-session"), want_active);
    assert_eq!(findings_of(report, "session-logging-off"), want_off);
    // no-reason: exactly the StartSessions without one.
    let no_reason: BTreeSet<(String, String)> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["start_event_id"].is_string() && s.get("reason").is_none())
        .map(|s| {
            (
                s["account_id"].as_str().unwrap().to_string(),
                s["session_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(findings_of(report, "no-reason"), no_reason);
    assert_eq!(no_reason.len(), 1, "{no_reason:?}");
    assert!(no_reason.iter().all(|(_, s)| s.starts_with("quick.fix@")));
}

fn region_of<'a>(report: &'a Value, account: &str, region: &str) -> &'a Value {
    &common::account(report, account)["coverage"]["regions"][region]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_joins_session_managers_records_exactly() {
    let sim = Simulator::start(org()).await.unwrap();
    let t = tempdir();
    let cmd = scan_command(&sim, &t, Some(&sim::demo_config_toml()), &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    let truth = sim.ssm_truth();
    // An audit role that may not read Session Manager changes nothing about
    // CloudTrail's completeness.
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(report["run"]["complete"], true);
    assert_matches_ground_truth(&sim, &report);
    assert_matches_ssm_truth(&sim, &truth, &report);

    let accounts = sim.accounts();
    let run = &report["run"]["session_manager"];
    let not_read: Vec<&str> = run["not_read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(not_read.len(), 3, "{not_read:?}");
    assert!(not_read
        .iter()
        .all(|n| n.starts_with(&format!("{}/", accounts[6].id))
            && n.contains("not readable: grant ssm:DescribeSessions / ssm:GetDocument")));
    let off: BTreeSet<&str> = run["logging_off"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want_off: BTreeSet<String> = truth
        .partitions
        .iter()
        .flat_map(|(a, r)| {
            r.iter()
                .filter(|(_, p)| {
                    !p.denied
                        && matches!(
                            p.preferences,
                            SimPreferences::NeverSaved | SimPreferences::LogsNowhere
                        )
                })
                .map(move |(r, _)| format!("{a}/{r}"))
        })
        .collect();
    assert_eq!(off, want_off.iter().map(String::as_str).collect());
    assert!(off.contains(format!("{}/eu-west-1", accounts[2].id).as_str()));
    assert_eq!(run["active_sessions"], 1);
    assert_eq!(run["discrepancies"], 2);

    // accounts.csv shows the posture in a few columns.
    let csv = std::fs::read_to_string(out_dir(&t).join("accounts.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&accounts[3].id))
        .unwrap();
    assert!(row.contains("eu-west-1=cloudwatch"), "{row}");
    let row = csv
        .lines()
        .find(|l| l.starts_with(&accounts[6].id))
        .unwrap();
    assert!(
        row.contains("not readable: grant ssm:DescribeSessions"),
        "{row}"
    );
    // The Session Manager calls were paced and retried, never lost.
    let stats = sim.stats();
    assert!(stats.calls["DescribeSessions"] > 60, "{stats:?}");
    assert!(stats.injected_errors > 0, "{stats:?}");
    sim.shutdown().await;
}

/// A quiet scan of `sim` with the demo's config: it succeeds, CloudTrail's
/// events are exactly the simulator's, and its report is returned.
async fn scan_with_demo_config(sim: &SimHandle) -> Value {
    let t = tempdir();
    let cmd = scan_command(sim, &t, Some(&sim::demo_config_toml()), &["--quiet"]);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_matches_ground_truth(sim, &report);
    report
}

/// Session Manager's records are read after the organization's listing has
/// ended (they slowed its chain of pages on busy cores), and still in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_managers_records_wait_for_the_listing() {
    // Five ListAccounts pages, 40 ms each: without the wait, the first page's
    // accounts would call DescribeSessions while the third page is asked for.
    let sim = Simulator::start(SimConfig {
        accounts: 100,
        home_latency: Some(Duration::from_millis(40)),
        ..org()
    })
    .await
    .unwrap();
    let report = scan_with_demo_config(&sim).await;
    assert_matches_ssm_truth(&sim, &sim.ssm_truth(), &report);
    let stats = sim.stats();
    let (listed, first_ssm) = (stats.last_listing_s.unwrap(), stats.first_ssm_s.unwrap());
    assert!(stats.calls["ListAccounts"] >= 5, "{stats:?}");
    assert!(
        first_ssm > listed,
        "the first Session Manager call came at {first_ssm:.3} s, the last ListAccounts page at {listed:.3} s"
    );
    sim.shutdown().await;
}

/// A partition's preferences are read while its session listings are: at a
/// 300 ms round trip, the first `GetDocument` (the preferences) arrives with
/// the first `DescribeSessions` (`Active`), not two round trips after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preferences_are_read_beside_the_session_listings() {
    let latency = Duration::from_millis(300);
    let sim = Simulator::start(SimConfig {
        accounts: 1,
        regions: vec!["eu-west-1".into()],
        latency,
        jitter: Duration::ZERO,
        // No injected errors: a retried first call would move its arrival.
        ssm: SsmSim {
            error_rate: 0.0,
            page_size: None,
            ..org().ssm
        },
        ..org()
    })
    .await
    .unwrap();
    let report = scan_with_demo_config(&sim).await;
    let posture = &report["accounts"][0]["coverage"]["regions"]["eu-west-1"]["session_manager"];
    assert_eq!(posture["readable"], true, "{posture}");
    let stats = sim.stats();
    let first = |op: &str| stats.first_call_s[op];
    let gap = first("GetDocument") - first("DescribeSessions");
    assert!(
        gap.abs() < 0.5 * latency.as_secs_f64(),
        "the preferences were asked for {gap:.3} s after the first session listing, at a {latency:?} round trip"
    );
    sim.shutdown().await;
}

/// The sessions of an `active --format json` listing, as (account, region, id).
fn listed(v: &Value) -> BTreeSet<(String, String, String)> {
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["account_id"].as_str().unwrap().to_string(),
                s["region"].as_str().unwrap().to_string(),
                s["session_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn active_command(sim: &SimHandle, args: &[&str]) -> tokio::process::Command {
    let mut cmd = command(&sim.endpoint());
    cmd.args(["active", "--regions", &sim.config().regions.join(",")])
        .args(["--role-name", &sim.config().role_name])
        .args(args);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_lists_exactly_the_connected_sessions_and_what_it_could_not_read() {
    let mut cfg = org();
    cfg.faults.denied_accounts = vec![8];
    let sim = Simulator::start(cfg).await.unwrap();
    let accounts = sim.accounts();
    let truth = sim.ssm_truth();
    let readable: BTreeSet<(String, String, String)> = truth
        .active()
        .into_iter()
        .filter(|(a, r, _)| !truth.partition(a, r).unwrap().denied)
        .collect();
    assert!(!readable.is_empty());

    let out = run(active_command(&sim, &["--format", "json"])).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["complete"], false);
    assert_eq!(listed(&v), readable);
    let by_id = |id: &str| {
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == id)
            .unwrap()
            .clone()
    };
    let no_ssm = by_id(&accounts[6].id);
    assert_eq!(no_ssm["status"], "failed");
    for r in no_ssm["regions"].as_object().unwrap().values() {
        assert!(r["error"]
            .as_str()
            .unwrap()
            .contains("not readable: grant ssm:DescribeSessions"));
    }
    let no_role = by_id(&accounts[8].id);
    assert!(no_role["reason"].as_str().unwrap().contains("AccessDenied"));
    assert!(stderr_of(&out).contains("incomplete"));
    // Sorted by start.
    let starts: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start_time"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));

    // Without the accounts it cannot read: complete, exit 0, the same sessions.
    let skip = format!("{},{}", accounts[6].id, accounts[8].id);
    let out = run(active_command(
        &sim,
        &["--exclude-accounts", &skip, "--format", "json"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], true);
    assert_eq!(listed(&v), readable);

    // The table names each session and says the listing is whole.
    let out = run(active_command(&sim, &["--exclude-accounts", &skip])).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for (_, _, id) in &readable {
        assert!(text.contains(id.as_str()), "{text}");
    }
    assert!(text.contains("Run: complete"), "{text}");
    let out = run(active_command(&sim, &["--format", "csv"])).await;
    assert_eq!(out.status.code(), Some(3));
    let rows = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(rows, 1 + readable.len());
    let out = run(active_command(&sim, &["--format", "yaml"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--format"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_session_listing_fails_the_posture_never_the_cloudtrail_scan() {
    for (knob, says) in [("omit", "no Sessions"), ("repeat", "already followed")] {
        let mut cfg = org();
        cfg.ssm.error_rate = 0.0;
        cfg.ssm.omit_sessions = knob == "omit";
        cfg.ssm.repeat_next_token = knob == "repeat";
        let sim = Simulator::start(cfg).await.unwrap();
        let t = tempdir();
        let toml =
            sim::demo_config_toml().replace("[accounts]", "retry_deadline = \"2s\"\n\n[accounts]");
        let cmd = scan_command(&sim, &t, Some(&toml), &["--quiet"]);
        let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
        assert_eq!(out.status.code(), Some(0), "{knob}: {}", stderr_of(&out));
        assert_matches_ground_truth(&sim, &report);
        let a = &sim.accounts()[1].id;
        let h = &region_of(&report, a, "us-east-1")["session_manager"]["history"];
        assert_eq!(h["status"], "failed", "{knob}: {h}");
        assert!(h["error"].as_str().unwrap().contains(says), "{knob}: {h}");
        // Nothing about sessions is guessed from a listing that was not read.
        assert!(findings_of(&report, "active-session").is_empty());
        assert!(report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("status").is_none()));
        let config = write_config(&t, "[scan]\nretry_deadline = \"2s\"\n");
        let config = config.to_str().unwrap();
        let out = run(active_command(
            &sim,
            &["--format", "json", "--config", config],
        ))
        .await;
        assert_eq!(out.status.code(), Some(3), "{knob}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["account_id"] == a.as_str())
            .map(|x| &x["regions"]["us-east-1"])
            .unwrap();
        assert!(r["error"].as_str().unwrap().contains(says), "{knob}: {r}");
        sim.shutdown().await;
    }
}

/// `active` asks which regions an account has, as the scan does: a region the
/// account has not enabled is `not-enabled` without a DescribeSessions call
/// there, and the listing is still complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_asks_which_regions_an_account_has_enabled() {
    let mut cfg = org();
    cfg.faults.disabled_regions = vec![(9, "ap-east-1".into())];
    let sim = Simulator::start(cfg).await.unwrap();
    let accounts = sim.accounts();
    let truth = sim.ssm_truth();
    let skip = accounts[6].id.clone();
    let out = run(active_command(
        &sim,
        &["--exclude-accounts", &skip, "--format", "json"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], true);
    let want: BTreeSet<(String, String, String)> = truth
        .active()
        .into_iter()
        .filter(|(a, _, _)| *a != skip)
        .collect();
    assert_eq!(listed(&v), want);
    let nine = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == accounts[9].id)
        .unwrap();
    assert_eq!(nine["status"], "complete", "{nine}");
    let r = &nine["regions"]["ap-east-1"];
    assert_eq!(r["status"], "not-enabled", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("has not enabled"),
        "{r}"
    );
    assert_eq!(nine["regions"]["us-east-1"]["status"], "ok");
    let stats = sim.stats();
    assert!(stats.calls["ListRegions"] >= 9, "{:?}", stats.calls);
    assert_eq!(
        stats.unrecognized_client, 0,
        "no call went to the region it lacks"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_answers_for_a_thousand_accounts_in_seconds() {
    let cfg = SimConfig {
        accounts: 1000,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        latency: Duration::from_millis(50),
        sessions_per_partition: 1,
        plant_anomalies: true,
        window_end: org().window_end,
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let started = Instant::now();
    let out = run(active_command(&sim, &["--format", "csv"])).await;
    let took = started.elapsed();
    eprintln!("active over 1,000 accounts x 2 regions (50 ms round trips): {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let rows = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(rows, 1 + sim.ssm_truth().active().len());
    let stats = sim.stats();
    assert_eq!(
        stats.calls["DescribeSessions"], 2000,
        "one call per partition"
    );
    // 3,000 calls of 50 ms: about 0.6 s at 256 in flight, plus signing them.
    assert!(took < Duration::from_secs(30), "{took:?}");
    sim.shutdown().await;
}

#[test]
fn expected_logging_off_follows_the_documented_rules() {
    let p = sim::SsmPartitionTruth {
        preferences: SimPreferences::NeverSaved,
        silent_documents: ["Quiet".to_string()].into(),
        ..Default::default()
    };
    assert!(expect_logging_off(None, &p));
    assert!(!expect_logging_off(Some("AWS-StartSSHSession"), &p));
    assert!(expect_logging_off(Some("Quiet"), &p));
    let logs = sim::SsmPartitionTruth::default();
    assert!(!expect_logging_off(None, &logs));
    assert!(!expect_logging_off(
        Some("AWS-StartInteractiveCommand"),
        &logs
    ));
}
