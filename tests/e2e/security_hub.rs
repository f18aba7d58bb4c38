//! `--security-hub` through the real binary: the scan runs against the simulated
//! organization, the findings go to Security Hub.
//!
//! - Against moto's Security Hub (`#[ignore]`d here; `.ci/run` starts moto and
//!   sets MOTO_ENDPOINT, and without it these tests FAIL, never skip):
//!   `GetFindings` returns exactly the report's findings, and a second run of the
//!   same scan updates them in place (same ids, same count).
//! - Without moto: an import that cannot reach Security Hub is reported in
//!   `run.security_hub`, makes the run incomplete and exits 3.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use serde_json::Value;
use sim::{SimConfig, Simulator};
use ssm_session_audit::model::Finding;
use ssm_session_audit::report::finding_id;

/// The demo's rules, so the planted anomalies raise findings of every kind.
const RULES: &str = r#"
[scan]
event_names = ["StartSession", "ResumeSession", "TerminateSession"]
[rules]
approved_cidrs = ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]
allowed_regions = ["us-east-1"]
"#;

fn moto_endpoint() -> String {
    let url = std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: these tests run through .ci/run, which installs moto and starts moto_server",
    );
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "moto must be on loopback: {url}"
    );
    url
}

fn reset_moto(endpoint: &str) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("moto_server is reachable");
    write!(s, "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "moto reset: {resp}");
}

/// Every finding moto holds, through every page of `GetFindings`, signed with the
/// binary's keys (moto keeps findings per account, and the keys pick the account).
async fn moto_findings(endpoint: &str) -> Vec<aws_sdk_securityhub::types::AwsSecurityFinding> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIATESTMANAGEMENT01",
            "test-secret-management-0000",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let client = aws_sdk_securityhub::Client::new(&sdk);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let page = client
            .get_findings()
            .max_results(20)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("GetFindings");
        out.extend(page.findings().iter().cloned());
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
    panic!("GetFindings never ended");
}

fn report_findings(report: &Value) -> Vec<Finding> {
    serde_json::from_value(report["findings"].clone()).expect("findings[] parse as Finding")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn security_hub_holds_exactly_the_findings_and_a_rerun_updates_them() {
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let sim = Simulator::start(SimConfig {
        plant_anomalies: true,
        lookup_rate: 10_000.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let t = common::tempdir();
    let scan = |t: &tempfile::TempDir| {
        let mut cmd = common::scan_command(
            &sim,
            t,
            Some(RULES),
            &[
                "--security-hub",
                "--security-hub-region",
                "us-east-1",
                "--quiet",
            ],
        );
        cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", &endpoint);
        cmd
    };
    let (out, report) = common::scan_and_read(scan(&t), &common::out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let findings = report_findings(&report);
    assert!(
        findings.len() >= 10,
        "the planted anomalies raise findings: {}",
        findings.len()
    );
    let hub = &report["run"]["security_hub"];
    assert_eq!(hub["findings"], findings.len());
    assert_eq!(hub["imported"], findings.len(), "{hub}");
    assert_eq!(hub["failed"], serde_json::json!([]));
    assert!(hub["error"].is_null(), "{hub}");
    let caller = report["run"]["caller_arn"].as_str().unwrap();
    let account = caller.split(':').nth(4).unwrap().to_string();
    let product = format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default");
    assert_eq!(hub["product_arn"], product.as_str());

    let want: BTreeMap<String, &Finding> = findings.iter().map(|f| (finding_id(f), f)).collect();
    assert_eq!(want.len(), findings.len(), "finding ids are distinct");
    let check = |got: &[aws_sdk_securityhub::types::AwsSecurityFinding]| {
        let ids: BTreeSet<String> = got.iter().map(|f| f.id().unwrap().to_string()).collect();
        assert_eq!(
            got.len(),
            findings.len(),
            "one Security Hub finding per report finding"
        );
        assert_eq!(
            ids,
            want.keys().cloned().collect(),
            "exactly the report's findings"
        );
        for g in got {
            let f = want[g.id().unwrap()];
            assert_eq!(g.product_arn(), Some(product.as_str()));
            assert_eq!(
                g.aws_account_id(),
                Some(account.as_str()),
                "imported as the caller"
            );
            assert_eq!(g.schema_version(), Some("2018-10-08"));
            assert_eq!(
                g.generator_id(),
                Some(format!("ssm-session-audit/{}", f.flag).as_str())
            );
            assert_eq!(
                g.severity()
                    .and_then(|s| s.label())
                    .map(|l| l.as_str().to_ascii_lowercase()),
                Some(match f.severity.as_str() {
                    "info" => "informational".to_string(),
                    s => s.to_string(),
                })
            );
            assert!(g
                .resources()
                .iter()
                .any(|r| r.id() == Some(format!("AWS::::Account:{}", f.account_id).as_str())));
            assert_eq!(
                g.product_fields().unwrap()["ssm-session-audit/event_ids"],
                f.event_ids.join(",")
            );
        }
    };
    let first = moto_findings(&endpoint).await;
    check(&first);

    // The same scan again: every finding updated in place, none added.
    let t2 = common::tempdir();
    let (out, report2) = common::scan_and_read(scan(&t2), &common::out_dir(&t2)).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    // A session still connected is described up to the moment it was seen,
    // which moves between two runs; everything else is the same.
    let settled = |fs: Vec<Finding>| -> Vec<Finding> {
        fs.into_iter()
            .map(|mut f| {
                if f.detail.contains("still connected") || f.detail.contains("was still Connected")
                {
                    f.detail.clear();
                }
                f
            })
            .collect()
    };
    assert_eq!(
        settled(report_findings(&report2)),
        settled(findings.clone()),
        "the same scan finds the same"
    );
    assert_eq!(report2["run"]["security_hub"]["imported"], findings.len());
    let second = moto_findings(&endpoint).await;
    check(&second);
    let updated: BTreeMap<&str, &str> = second
        .iter()
        .map(|f| (f.id().unwrap(), f.updated_at().unwrap()))
        .collect();
    let before: BTreeMap<&str, &str> = first
        .iter()
        .map(|f| (f.id().unwrap(), f.updated_at().unwrap()))
        .collect();
    assert!(
        updated.iter().all(|(id, at)| *at >= before[id]),
        "the rerun's UpdatedAt is not older"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn more_than_one_batch_of_findings_arrives_whole() {
    // 100 findings a call: an organization with enough anomalies for several calls.
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let sim = Simulator::start(SimConfig {
        accounts: 40,
        regions: vec![
            "us-east-1".into(),
            "eu-west-1".into(),
            "ap-southeast-2".into(),
        ],
        sessions_per_partition: 6,
        plant_anomalies: true,
        lookup_rate: 10_000.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let t = common::tempdir();
    // Every call is outside business hours at 00:00–00:01 on no day: each session call is off-hours.
    let rules = format!(
        "{RULES}[rules.business_hours]\ntimezone = \"UTC\"\ndays = [\"Mon\"]\nstart = \"00:00\"\nend = \"00:01\"\n"
    );
    let mut cmd = common::scan_command(&sim, &t, Some(&rules), &["--security-hub", "--quiet"]);
    cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", &endpoint);
    let started = std::time::Instant::now();
    let (out, report) = common::scan_and_read(cmd, &common::out_dir(&t)).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let findings = report_findings(&report);
    assert!(findings.len() > 250, "several batches: {}", findings.len());
    assert_eq!(report["run"]["security_hub"]["imported"], findings.len());
    let got = moto_findings(&endpoint).await;
    let ids: BTreeSet<String> = got.iter().map(|f| f.id().unwrap().to_string()).collect();
    assert_eq!(got.len(), findings.len());
    assert_eq!(ids, findings.iter().map(finding_id).collect());
    // Calls are spaced 100 ms apart: n calls take at least (n - 1) × 100 ms.
    let calls = findings.len().div_ceil(100) as u32;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(100) * (calls - 1),
        "{calls} calls in {:?}",
        started.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_fails_makes_the_run_incomplete_and_says_why() {
    let sim = Simulator::start(SimConfig {
        plant_anomalies: true,
        lookup_rate: 10_000.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let t = common::tempdir();
    // Nothing listens on port 9 of loopback: every call is refused until the deadline.
    let config = RULES.replacen(
        "[scan]\n",
        "[scan]\ncall_timeout = \"1s\"\nretry_deadline = \"2s\"\n",
        1,
    );
    let mut cmd = common::scan_command(
        &sim,
        &t,
        Some(&config),
        &["--security-hub", "--security-hub-region", "eu-west-1"],
    );
    cmd.env("AWS_ENDPOINT_URL_SECURITYHUB", "http://127.0.0.1:9");
    let dir = common::out_dir(&t);
    let (out, report) = common::scan_and_read(cmd, &dir).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr_of(&out));
    assert_eq!(report["run"]["complete"], false);
    let hub = &report["run"]["security_hub"];
    assert_eq!(hub["imported"], 0);
    assert!(hub["findings"].as_u64().unwrap() > 0);
    let error = hub["error"].as_str().expect("the reason is recorded");
    assert!(error.contains("BatchImportFindings call 1 of"), "{error}");
    assert!(error.contains("connection"), "{error}");
    // Coverage itself is whole: every account complete, only the import failed.
    for a in report["accounts"].as_array().unwrap() {
        assert_eq!(a["coverage"]["status"], "complete");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Security Hub: 0 of"), "{stdout}");
    assert!(stdout.contains("INCOMPLETE"), "{stdout}");
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(page.contains("Coverage INCOMPLETE: 1 reason"));
    assert!(page.contains("Security Hub import into eu-west-1: 0 of"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_security_hub_region_without_the_import_is_a_usage_error() {
    let mut cmd = common::command("http://127.0.0.1:9");
    cmd.args([
        "scan",
        "--since",
        "1h",
        "--security-hub-region",
        "eu-west-1",
    ]);
    let out = common::run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr_of(&out);
    assert!(
        err.contains("--security-hub-region") && err.contains("--security-hub"),
        "{err}"
    );
}
