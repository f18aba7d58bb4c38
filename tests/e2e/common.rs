//! Shared by the end-to-end tests: a simulated organization on 127.0.0.1 and the
//! real binary pointed at it through the standard AWS environment variables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ssm-session-audit");

/// A command for the real binary with a clean AWS environment aimed at `endpoint`.
/// Every test goes through here, and the binary refuses non-loopback endpoints
/// when `SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT` is set, so no test reaches AWS.
pub fn command(endpoint: &str) -> tokio::process::Command {
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "tests only talk to loopback, got {endpoint}"
    );
    let mut cmd = tokio::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIATESTMANAGEMENT01")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-management-0000")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/ssm-session-audit-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ssm-session-audit-test",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT", "1")
        // What a user sees: CI sets it, users do not.
        .env_remove("RUST_BACKTRACE")
        .env_remove(ssm_session_audit::failpoint::VAR)
        .kill_on_drop(true);
    cmd
}

pub async fn run(mut cmd: tokio::process::Command) -> Output {
    let out = cmd.output().await.expect("the binary runs");
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

pub fn read_report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json exists");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// Event ids per account and region in a report.
pub fn report_event_ids(report: &Value) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for e in report["events"].as_array().expect("events[]") {
        out.entry(e["account_id"].as_str().unwrap().to_string())
            .or_default()
            .entry(e["region"].as_str().unwrap().to_string())
            .or_default()
            .push(e["event_id"].as_str().unwrap().to_string());
    }
    for regions in out.values_mut() {
        for ids in regions.values_mut() {
            ids.sort();
        }
    }
    out
}

pub fn account<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == id)
        .unwrap_or_else(|| panic!("account {id} is in the report"))
}

pub fn region_status(report: &Value, account_id: &str, region: &str) -> String {
    account(report, account_id)["coverage"]["regions"][region]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("{account_id}/{region} has a status"))
        .to_string()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn out_dir(t: &tempfile::TempDir) -> PathBuf {
    t.path().join("report")
}

pub fn ids(set: &BTreeSet<String>) -> Vec<String> {
    set.iter().cloned().collect()
}

// ---------------------------------------------------------------------------
// Scans against a simulator, and what every report must satisfy.
// ---------------------------------------------------------------------------

use sim::SimHandle;

pub const SESSION_NAMES: [&str; 3] = ["StartSession", "ResumeSession", "TerminateSession"];

/// `--start` and `--end` covering the simulator's whole window.
pub fn sim_window(sim: &SimHandle) -> (String, String) {
    let cfg = sim.config();
    (cfg.window_start().to_rfc3339(), cfg.window_end.to_rfc3339())
}

/// Writes a TOML config file into `t` and returns its path.
pub fn write_config(t: &tempfile::TempDir, toml: &str) -> PathBuf {
    let path = t.path().join("audit.toml");
    std::fs::write(&path, toml).expect("config written");
    path
}

/// `scan` over the simulator's regions and window, into `out_dir(t)`, with
/// `--fail-on none`; `config` (TOML text) is written and passed with `--config`.
/// `extra` flags come last.
pub fn scan_command(
    sim: &SimHandle,
    t: &tempfile::TempDir,
    config: Option<&str>,
    extra: &[&str],
) -> tokio::process::Command {
    let (start, end) = sim_window(sim);
    let mut cmd = command(&sim.endpoint());
    cmd.args(["scan", "--regions", &sim.config().regions.join(",")])
        .args(["--start", &start, "--end", &end])
        .args(["--role-name", &sim.config().role_name])
        .args(["--fail-on", "none", "--output"])
        .arg(out_dir(t));
    if let Some(toml) = config {
        cmd.arg("--config").arg(write_config(t, toml));
    }
    cmd.args(extra);
    cmd
}

/// Every partition reported `ok` holds exactly the simulator's events for it, each
/// once: records that could not be read in full are kept with what could be read,
/// so they are there too. Returns how many events were compared (asserted above zero).
pub fn assert_matches_ground_truth(sim: &SimHandle, report: &Value) -> usize {
    let cfg = sim.config();
    let truth = sim.ground_truth(cfg.window_start(), cfg.window_end, &SESSION_NAMES);
    let got = report_event_ids(report);
    let mut checked = 0;
    for acct in sim.accounts() {
        let Some(a) = report["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == acct.id.as_str())
        else {
            panic!("account {} is missing from the report", acct.id);
        };
        let status = a["coverage"]["status"].as_str().unwrap();
        for region in &cfg.regions {
            if a["coverage"]["regions"][region]["status"].as_str() != Some("ok") {
                continue;
            }
            let want: Vec<String> = truth
                .partition(&acct.id, region)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let have = got
                .get(&acct.id)
                .and_then(|r| r.get(region))
                .cloned()
                .unwrap_or_default();
            let mut dedup = have.clone();
            dedup.dedup();
            assert_eq!(
                dedup.len(),
                have.len(),
                "{}/{region}: an event is listed twice",
                acct.id
            );
            assert_eq!(
                have, want,
                "{}/{region} (account {status}) differs from the ground truth",
                acct.id
            );
            checked += want.len();
        }
    }
    assert!(checked > 0, "the comparison covered some events");
    checked
}

/// What must hold in any report, whatever went wrong: statuses agree with each
/// other and with the exit status, every failure has a reason, and per-region
/// event counts agree with the events listed.
pub fn assert_coherent(report: &Value, exit_code: Option<i32>) {
    let got = report_event_ids(report);
    let mut all_done = true;
    for a in report["accounts"].as_array().expect("accounts[]") {
        let id = a["account_id"].as_str().unwrap();
        let cov = &a["coverage"];
        let status = cov["status"].as_str().unwrap();
        let regions = cov["regions"].as_object().expect("regions{}");
        let failed = regions.values().filter(|r| r["status"] == "failed").count();
        for (name, r) in regions {
            let rs = r["status"].as_str().unwrap();
            assert!(
                ["ok", "not-enabled", "failed"].contains(&rs),
                "{id}/{name}: status {rs}"
            );
            if rs != "ok" {
                let err = r["error"].as_str().unwrap_or("");
                assert!(!err.is_empty(), "{id}/{name} is {rs} without a reason");
            }
            let listed = got.get(id).and_then(|m| m.get(name)).map_or(0, Vec::len) as u64;
            assert_eq!(
                r["events"].as_u64().unwrap(),
                listed,
                "{id}/{name}: coverage count and listed events differ"
            );
        }
        match status {
            "complete" => assert_eq!(failed, 0, "{id} complete with a failed region"),
            // Partial: some regions failed, or some could not even be listed (the reason says).
            "partial" => assert!(
                (failed > 0 && failed < regions.len()) || cov["reason"].is_string(),
                "{id} partial: {failed} of {} regions failed",
                regions.len()
            ),
            "failed" => assert!(
                regions.is_empty() || failed == regions.len() || cov["reason"].is_string(),
                "{id} failed without a reason"
            ),
            "skipped" => assert!(cov["reason"].is_string(), "{id} skipped without a reason"),
            other => panic!("{id}: unknown account status {other}"),
        }
        all_done &= matches!(status, "complete" | "skipped");
    }
    let interrupted = report["run"]["interrupted"] == true;
    let complete = report["run"]["complete"] == true;
    // A Security Hub import that did not take every finding also makes it incomplete.
    let hub = &report["run"]["security_hub"];
    let hub_ok = hub.is_null()
        || (hub["error"].is_null()
            && hub["failed"].as_array().is_some_and(Vec::is_empty)
            && hub["imported"] == hub["findings"]);
    let reasons = report["run"]["incomplete_reasons"]
        .as_array()
        .expect("run.incomplete_reasons[]");
    let malformed = report["run"]["stats"]["malformed"].as_u64().unwrap_or(0);
    assert_eq!(
        complete,
        all_done && !interrupted && hub_ok && malformed == 0 && reasons.is_empty(),
        "run.complete disagrees with the accounts"
    );
    // Never incomplete without saying why.
    assert_eq!(
        complete,
        reasons.is_empty(),
        "incomplete without a reason: {reasons:?}"
    );
    match exit_code {
        Some(3) => assert!(!complete, "exit 3 for a complete run"),
        Some(0) | Some(1) => assert!(complete, "exit {exit_code:?} for an incomplete run"),
        other => panic!("a scan that wrote a report exited {other:?}"),
    }
}

/// Runs a scan and returns its output and report, checked for coherence.
pub async fn scan_and_read(cmd: tokio::process::Command, dir: &Path) -> (Output, Value) {
    let out = run(cmd).await;
    assert!(
        dir.join("report.json").exists(),
        "no report (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(dir);
    assert_coherent(&report, out.status.code());
    assert_sums_match(dir);
    (out, report)
}

/// `SHA256SUMS` exists and lists every report file with its digest.
pub fn assert_sums_match(dir: &Path) {
    use sha2::{Digest, Sha256};
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS"))
        .unwrap_or_else(|e| panic!("SHA256SUMS beside report.json: {e}"));
    let mut listed = BTreeSet::new();
    for line in sums.lines() {
        let (hex, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex, hex::encode(Sha256::digest(&bytes)), "{name} digest");
        listed.insert(name.to_string());
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "SHA256SUMS" {
            assert!(listed.contains(&name), "{name} is not in SHA256SUMS");
        }
    }
}

/// A report region's coverage object.
pub fn region<'a>(report: &'a Value, account_id: &str, region: &str) -> &'a Value {
    &account(report, account_id)["coverage"]["regions"][region]
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The generator's session records that a reader asked for `q` must return.
pub fn expected(
    m: &sim::trail_gen::GenManifest,
    q: &ssm_session_audit::trail::TrailQuery,
) -> BTreeSet<String> {
    m.expected(|e| {
        q.wants_account(&e.account)
            && q.wants_region(&e.region)
            && e.time >= q.window.start
            && e.time < q.window.end
            && q.event_names.contains(&e.name)
    })
}
