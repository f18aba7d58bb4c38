//! Secrets: no access key, secret key, session token or AssumeRole answer may
//! appear in any output (stdout, stderr at -vvv, every report file), whether the
//! run succeeds, refreshes expiring credentials, is denied or fails.

use crate::common;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use sim::{SimConfig, SimHandle, Simulator};

/// What the tests pass in as the caller's own static credentials (see `command`).
const CALLER_KEY: &str = "AKIATESTMANAGEMENT01";
const CALLER_SECRET: &str = "test-secret-management-0000";

fn org() -> SimConfig {
    let mut cfg = SimConfig {
        seed: 3,
        accounts: 4,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(5),
        sessions_per_partition: 3,
        hostile_records: true,
        ..SimConfig::default()
    };
    cfg.faults.denied_accounts = vec![3];
    // Short role sessions: many credentials issued, some used after they expire.
    cfg.faults.credential_ttl = Some(Duration::from_secs(1));
    cfg.faults.error_rate = 0.1;
    cfg
}

/// Every secret the run could leak, and a distinctive piece of each, so a
/// truncated or re-wrapped copy is caught too.
fn needles(sim: &SimHandle) -> Vec<String> {
    let issued = sim.issued_secrets();
    assert!(!issued.is_empty(), "the simulator issued credentials");
    let mut n = vec![
        CALLER_KEY.to_string(),
        CALLER_SECRET.to_string(),
        "SecretAccessKey".to_string(),
        "SessionToken".to_string(),
        "AssumeRoleResponse".to_string(),
    ];
    for s in issued {
        n.push(s.secret_access_key[..20].to_string());
        n.push(s.secret_access_key[20..].to_string());
        // The token's fixed prefix is shared by all; its random part is not.
        n.push(s.session_token[20..60].to_string());
        n.push(s.access_key_id.clone());
        n.push(s.secret_access_key);
        n.push(s.session_token);
    }
    n
}

fn assert_no_secret(what: &str, bytes: &[u8], needles: &[String]) {
    let text = String::from_utf8_lossy(bytes);
    for n in needles {
        assert!(
            !text.contains(n.as_str()),
            "{what} contains the secret {n:?}"
        );
    }
}

fn assert_no_secret_in_files(dir: &Path, needles: &[String]) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_no_secret(
            &path.display().to_string(),
            &std::fs::read(&path).unwrap(),
            needles,
        );
        files += 1;
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_at_the_most_verbose_level() {
    let sim = Simulator::start(org()).await.unwrap();
    let t = tempdir();
    let cmd = scan_command(&sim, &t, None, &["-vvv", "--concurrency", "4"]);
    let dir = out_dir(&t);
    let (out, report) = scan_and_read(cmd, &dir).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the denied account: {}",
        stderr_of(&out)
    );
    assert!(sim.stats().credentials_issued > 3, "{:?}", sim.stats());
    assert!(!out.stderr.is_empty(), "-vvv logs something");
    let needles = needles(&sim);
    assert_no_secret("stdout", &out.stdout, &needles);
    assert_no_secret("stderr", &out.stderr, &needles);
    // report.json, four CSV files, report.html and SHA256SUMS.
    assert_eq!(assert_no_secret_in_files(&dir, &needles), 7);
    assert_matches_ground_truth(&sim, &report);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_failure_messages() {
    // Every lookup fails: the reasons end up in the report, the summary and the logs.
    let mut cfg = org();
    cfg.faults.error_rate = 0.0;
    cfg.faults.reset_rate = 1.0;
    let sim = Simulator::start(cfg).await.unwrap();
    let t = tempdir();
    let cmd = scan_command(
        &sim,
        &t,
        Some("[scan]\nretry_deadline = \"1s\"\n"),
        &["-vvv"],
    );
    let dir = out_dir(&t);
    let (out, report) = scan_and_read(cmd, &dir).await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(report["run"]["complete"], false);
    let needles = needles(&sim);
    assert_no_secret("stdout", &out.stdout, &needles);
    assert_no_secret("stderr", &out.stderr, &needles);
    assert_no_secret_in_files(&dir, &needles);
    sim.shutdown().await;
}
