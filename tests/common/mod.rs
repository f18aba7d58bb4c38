//! Shared by the end-to-end tests: a simulated organization on 127.0.0.1 and the
//! real binary pointed at it through the standard AWS environment variables.
#![allow(dead_code)]

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
