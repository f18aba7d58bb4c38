//! The rules through the real binary: the simulator plants the shapes that fool
//! naive rules (`SimConfig::rule_cases`) and its ground truth says, case by case,
//! which flag must name exactly those records and which must name none of them.
//! Failures that are not denials, a role whose session names rotate, console IAM
//! users, StartSessions without a session id, a resume from the IPv4-mapped form
//! of the start address, denials whose target and document are only in
//! `errorMessage`; and a baseline that knows actors, not session names.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::Value;
use sim::{SimConfig, SimHandle, Simulator};

fn org() -> SimConfig {
    SimConfig {
        seed: 11,
        accounts: 4,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        window_end: Utc::now() - TimeDelta::minutes(10),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(1),
        rule_cases: true,
        sessions_per_partition: 3,
        ..SimConfig::default()
    }
}

/// The demo's rules: every planted address is approved, hours are 08-19 UTC.
const RULES: &str = r#"
[rules]
approved_cidrs = ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]
denied_threshold = 3
denied_window = "1h"
fanout_targets = 3
fanout_window = "1h"

[rules.business_hours]
timezone = "UTC"
days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
start = "08:00"
end = "19:00"
"#;

/// An earlier report in the old shape (`principal_arn` only), as the simulator
/// says a previous run saw the organization.
fn old_baseline(sim: &SimHandle, t: &tempfile::TempDir) -> std::path::PathBuf {
    let events: Vec<Value> = sim
        .baseline_principals()
        .into_iter()
        .map(|p| serde_json::json!({ "principal_arn": p }))
        .collect();
    let path = t.path().join("baseline.json");
    std::fs::write(&path, serde_json::json!({ "events": events }).to_string()).unwrap();
    path
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings[]")
}

fn event_ids(f: &Value) -> BTreeSet<String> {
    f["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

fn event<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == id)
        .unwrap_or_else(|| panic!("event {id} is in the report"))
}

/// What is wrong with the report's findings against the planted cases (empty:
/// nothing), so a failing run lists every case it gets wrong at once.
fn case_errors(sim: &SimHandle, report: &Value) -> Vec<String> {
    let cfg = sim.config();
    let truth = sim.ground_truth(cfg.window_start(), cfg.window_end, &SESSION_NAMES);
    assert!(truth.cases.len() >= 10, "the simulator plants the cases");
    let mut errors = Vec::new();
    for case in &truth.cases {
        let hits: Vec<&Value> = findings(report)
            .iter()
            .filter(|f| f["flag"] == case.flag.as_str())
            .filter(|f| !event_ids(f).is_disjoint(&case.event_ids))
            .collect();
        let what = format!("{} / {}", case.name, case.flag);
        match (case.fires, hits.as_slice()) {
            (true, [one]) if event_ids(one) == case.event_ids => {
                if one["account_id"] != case.account_id.as_str() {
                    errors.push(format!("{what}: in account {}", one["account_id"]));
                }
            }
            (true, []) => errors.push(format!("{what}: must fire, did not")),
            (true, many) => errors.push(format!(
                "{what}: must fire once on {:?}, got {:?}",
                case.event_ids,
                many.iter().map(|f| event_ids(f)).collect::<Vec<_>>()
            )),
            (false, []) => {}
            (false, some) => errors.push(format!(
                "{what}: must not fire, got {:?}",
                some.iter().map(|f| &f["detail"]).collect::<Vec<_>>()
            )),
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_planted_rule_case_fires_exactly_as_its_ground_truth_says() {
    let sim = Simulator::start(org()).await.unwrap();
    let t = tempdir();
    let baseline = old_baseline(&sim, &t);
    let mut cmd = scan_command(&sim, &t, Some(RULES), &["--quiet", "--baseline"]);
    cmd.arg(&baseline);
    let dir = out_dir(&t);
    let (out, report) = scan_and_read(cmd, &dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_matches_ground_truth(&sim, &report);

    let errors = case_errors(&sim, &report);
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // The rotating role is one actor, shown beside the exact principal.
    let cfg = sim.config();
    let truth = sim.ground_truth(cfg.window_start(), cfg.window_end, &SESSION_NAMES);
    let case = |name: &str, flag: &str| {
        truth
            .cases
            .iter()
            .find(|c| c.name == name && c.flag == flag)
            .unwrap_or_else(|| panic!("case {name}/{flag}"))
            .clone()
    };
    let rotating = case("rotating-session-names", "denied-attempts");
    let burst = findings(&report)
        .iter()
        .find(|f| f["flag"] == "denied-attempts" && event_ids(f) == rotating.event_ids)
        .unwrap();
    let role = format!("arn:aws:iam::{}:role/ci-deployer", rotating.account_id);
    assert_eq!(burst["actor"], role.as_str());
    assert!(burst["principal_arn"]
        .as_str()
        .unwrap()
        .contains(":assumed-role/ci-deployer/botocore-session-"));
    for id in &rotating.event_ids {
        let e = event(&report, id);
        assert_eq!(e["actor"], role.as_str());
        assert!(e["parse_error"].is_null(), "a real denial reads in full");
        // Recovered from errorMessage: requestParameters is null.
        assert!(e["target"].as_str().unwrap().starts_with("i-0"), "{e}");
        assert!(e["access_key_id"].as_str().unwrap().starts_with("ASIA"));
    }
    let tunnel = case("denied-tunnel", "port-forwarding");
    let e = event(&report, tunnel.event_ids.iter().next().unwrap());
    assert_eq!(
        e["document_name"],
        "AWS-StartPortForwardingSessionToRemoteHost"
    );
    for (name, prefix) in [("console-iam-user", "ASIA"), ("long-term-iam-user", "AKIA")] {
        for id in &case(name, "iam-user-session").event_ids {
            let key = event(&report, id)["access_key_id"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(key.starts_with(prefix), "{name}: {key}");
        }
    }
    // The spreadsheets carry the actor and the key.
    let header = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        text.lines()
            .next()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect()
    };
    assert!(header("findings.csv").contains(&"actor".to_string()));
    let events = header("events.csv");
    assert!(
        events.contains(&"actor".to_string()) && events.contains(&"access_key_id".to_string()),
        "{events:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_report_as_baseline_knows_actors_not_session_names() {
    let sim = Simulator::start(org()).await.unwrap();
    let first = tempdir();
    let cmd = scan_command(&sim, &first, Some(RULES), &["--quiet"]);
    let (out, mut previous) = scan_and_read(cmd, &out_dir(&first)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // The previous run saw the rotating role under other session names: its
    // report names the same actor with other principal ARNs.
    let mut renamed = 0;
    for e in previous["events"].as_array_mut().unwrap() {
        let arn = e["principal_arn"].as_str().unwrap_or_default().to_string();
        if let Some((role, _)) = arn.split_once(":assumed-role/ci-deployer/") {
            e["principal_arn"] = format!("{role}:assumed-role/ci-deployer/an-older-name").into();
            renamed += 1;
        }
    }
    assert_eq!(renamed, 5);
    let baseline = first.path().join("previous.json");
    std::fs::write(&baseline, previous.to_string()).unwrap();

    let t = tempdir();
    let mut cmd = scan_command(&sim, &t, Some(RULES), &["--quiet", "--baseline"]);
    cmd.arg(&baseline);
    let (out, report) = scan_and_read(cmd, &out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let new: Vec<&Value> = findings(&report)
        .iter()
        .filter(|f| f["flag"] == "new-principal")
        .collect();
    assert!(new.is_empty(), "every actor is in the baseline: {new:#?}");
    sim.shutdown().await;
}
