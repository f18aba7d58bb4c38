//! The Athena source, end to end, against two stand-ins we can run here:
//! - `tests/athena_standin.py` (ATHENA_ENDPOINT): it EXECUTES the submitted SQL
//!   with DuckDB after sqlglot's Athena translation, over the generated trail
//!   files of a test organization, enforces partition projection, and pages
//!   results like Athena. The scan's events are compared with the generator's
//!   ground truth event by event.
//! - moto's Athena (MOTO_ENDPOINT), which runs no SQL: the API flow only
//!   (states over polls, injected results with their header row, stop, errors).
//!
//! Every test is `#[ignore]`d in a plain `cargo test`; `.ci/run` starts both
//! servers and runs them. Without their endpoint they FAIL, never skip.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use sim::trail_gen::{generate, GenManifest, GenSpec};
use ssm_session_audit::source::athena::exec::{RunSettings, Runner};

const ORG: &str = "o-a1b2c3d4e5";
const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
const START: &str = "2025-02-18T00:00:00Z";
const END: &str = "2025-02-20T00:00:00Z";

fn standin() -> String {
    let url = std::env::var("ATHENA_ENDPOINT").expect(
        "ATHENA_ENDPOINT is not set: these tests run through .ci/run, which starts tests/athena_standin.py",
    );
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "the stand-in must be on loopback: {url}"
    );
    url
}

fn moto() -> String {
    let url = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is set by .ci/run (these tests need moto)");
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "moto must be on loopback: {url}"
    );
    url
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A plain HTTP/1.1 request to a loopback server; (status, body).
fn http(endpoint: &str, method: &str, path: &str, body: &Value) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("the server is reachable");
    let body = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn control(endpoint: &str, what: &str, body: Value) {
    let (status, text) = http(endpoint, "POST", &format!("/_standin/{what}"), &body);
    assert_eq!(status, 200, "stand-in control {what}: {text}");
}

fn standin_log(endpoint: &str) -> Vec<Value> {
    let (status, text) = http(endpoint, "GET", "/_standin/log", &json!({}));
    assert_eq!(status, 200);
    serde_json::from_str(&text).unwrap()
}

fn queries_in(log: &[Value]) -> Vec<&Value> {
    log.iter().filter(|e| e.get("query").is_some()).collect()
}

/// The session record of a look-alike or a boundary case, in a readable file.
fn record(account: &str, region: &str, time: &str, source: &str, name: &str, id: &str) -> Value {
    json!({
        "eventVersion": "1.10",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::{account}:user/look"),
                         "accountId": account, "accessKeyId": "AKIAEXAMPLEEXAMPLE01", "userName": "look"},
        "eventTime": time, "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2",
        "requestParameters": {"target": "i-0123456789abcdef0"},
        "responseElements": {"sessionId": format!("look-{id}")},
        "requestID": "r", "eventID": id, "readOnly": false, "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
}

/// The test organization's trail: generated files (other services, SSM calls
/// that are not sessions, late deliveries at 23:58), plus look-alike
/// StartSession calls of other services and records on the window's bounds.
struct Tree {
    dir: tempfile::TempDir,
    m: GenManifest,
    /// Session events the generator does not list, (account, region, id).
    extra_in: Vec<(String, String, String)>,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let mut spec = GenSpec::small(NaiveDate::from_ymd_opt(2025, 2, 17).unwrap());
    spec.days = 4;
    spec.corrupt_files = 0;
    spec.malformed_records = 0;
    spec.files_per_day = 3;
    spec.records_per_file = 40;
    // One quiet partition-day: the report must name it empty.
    spec.gaps = vec![(
        "222222222222".into(),
        "us-east-1".into(),
        NaiveDate::from_ymd_opt(2025, 2, 19).unwrap(),
    )];
    let m = generate(&root, &spec).unwrap();
    let mut extra_in = Vec::new();
    for a in ACCOUNTS {
        for r in REGIONS {
            let folder = root.join(format!("AWSLogs/{ORG}/{a}/CloudTrail/{r}/2025/02/18"));
            std::fs::create_dir_all(&folder).unwrap();
            let ids = |k: &str| format!("{k}-{a}-{r}");
            let records = vec![
                record(
                    a,
                    r,
                    "2025-02-18T10:00:00Z",
                    "athena.amazonaws.com",
                    "StartSession",
                    &ids("athena"),
                ),
                record(
                    a,
                    r,
                    "2025-02-18T10:01:00Z",
                    "sso.amazonaws.com",
                    "StartSession",
                    &ids("sso"),
                ),
                record(
                    a,
                    r,
                    "2025-02-18T10:02:00Z",
                    "ssm.amazonaws.com",
                    "StartAutomationExecution",
                    &ids("automation"),
                ),
                record(
                    a,
                    r,
                    START,
                    "ssm.amazonaws.com",
                    "StartSession",
                    &ids("at-start"),
                ),
                record(
                    a,
                    r,
                    END,
                    "ssm.amazonaws.com",
                    "StartSession",
                    &ids("at-end"),
                ),
                record(
                    a,
                    r,
                    "2025-02-17T23:59:59Z",
                    "ssm.amazonaws.com",
                    "TerminateSession",
                    &ids("before"),
                ),
            ];
            extra_in.push((a.to_string(), r.to_string(), ids("at-start")));
            let body = json!({ "Records": records }).to_string();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body.as_bytes()).unwrap();
            std::fs::write(
                folder.join(format!(
                    "{a}_CloudTrail_{r}_20250218T1005Z_LOOKALIKE0000000.json.gz"
                )),
                gz.finish().unwrap(),
            )
            .unwrap();
        }
    }
    Tree { dir, m, extra_in }
}

impl Tree {
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("logs")
    }

    /// account → region → sorted event ids the half-open window holds.
    fn expected(&self, accounts: &[&str]) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
        let (s, e) = (t(START), t(END));
        let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for ev in &self.m.sessions {
            if accounts.contains(&ev.account.as_str()) && ev.time >= s && ev.time < e {
                out.entry(ev.account.clone())
                    .or_default()
                    .entry(ev.region.clone())
                    .or_default()
                    .push(ev.event_id.clone());
            }
        }
        for (a, r, id) in &self.extra_in {
            if accounts.contains(&a.as_str()) {
                out.entry(a.clone())
                    .or_default()
                    .entry(r.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        for regions in out.values_mut() {
            for ids in regions.values_mut() {
                ids.sort();
            }
        }
        out
    }

    /// Bytes of every file in the named partitions (what Athena bills).
    fn partition_bytes(&self, accounts: &[&str], days: &[&str]) -> u64 {
        let mut total = 0;
        for a in accounts {
            for r in REGIONS {
                for d in days {
                    let folder = self
                        .root()
                        .join(format!("AWSLogs/{ORG}/{a}/CloudTrail/{r}/{d}"));
                    if let Ok(rd) = std::fs::read_dir(&folder) {
                        for f in rd {
                            total += f.unwrap().metadata().unwrap().len();
                        }
                    }
                }
            }
        }
        total
    }
}

fn trail_url(bucket: &str) -> String {
    format!("s3://{bucket}/logs/AWSLogs/{ORG}/")
}

/// A fresh stand-in with the tree served as `bucket` and the table created by
/// the binary's own `athena-table --create`.
async fn prepare(endpoint: &str, tree: &Tree, bucket: &str, accounts: Option<&str>) {
    control(endpoint, "reset", json!({}));
    control(
        endpoint,
        "bucket",
        json!({"bucket": bucket, "root": tree.dir.path()}),
    );
    let mut cmd = common::command(endpoint);
    cmd.args([
        "athena-table",
        "--trail",
        &trail_url(bucket),
        "--table",
        "audit.org_trail",
    ])
    .args([
        "--regions",
        &REGIONS.join(","),
        "--first-day",
        "2020/01/01",
        "--create",
    ])
    .args(["--athena-output", "s3://results-bucket/athena/"]);
    if let Some(a) = accounts {
        cmd.args(["--accounts", a]);
    }
    let out = common::run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "athena-table --create: {}",
        common::stderr_of(&out)
    );
    let ddl = String::from_utf8_lossy(&out.stdout);
    assert!(
        ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `audit`.`org_trail`"),
        "{ddl}"
    );
}

fn scan_cmd(endpoint: &str, out_dir: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = common::command(endpoint);
    cmd.args([
        "scan",
        "--source",
        "athena:audit.org_trail",
        "--start",
        START,
        "--end",
        END,
    ])
    .args([
        "--regions",
        &REGIONS.join(","),
        "--fail-on",
        "none",
        "--output",
    ])
    .arg(out_dir)
    .args(extra);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn a_scan_through_athena_sql_gives_exactly_the_ground_truth() {
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-main", None).await;
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--max-scan", "1GB"],
    ))
    .await;
    let report = common::read_report(&out_dir);
    common::assert_coherent(&report, out.status.code());
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));

    let want = tree.expected(&ACCOUNTS);
    let n: usize = want.values().flat_map(|r| r.values()).map(Vec::len).sum();
    assert!(n > 20, "a test that cannot fail: {n} events");
    assert_eq!(
        common::report_event_ids(&report),
        want,
        "event by event, per account and region"
    );
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), n, "no event twice");
    // The 23:58 records of the 19th are in the 20th's folders: found only because
    // the query names the day after the window.
    assert!(events
        .iter()
        .any(|e| e["event_time"].as_str().unwrap() >= "2025-02-19T23:58:00Z"));
    assert!(events
        .iter()
        .all(|e| e["event_id"].as_str().unwrap().find("at-end").is_none()));

    // What Athena was sent: one query naming every account, region and day.
    let log = standin_log(&endpoint);
    let qs: Vec<&Value> = queries_in(&log)
        .into_iter()
        .filter(|q| q["query"].as_str().unwrap().starts_with("SELECT"))
        .collect();
    assert_eq!(qs.len(), 1, "{log:?}");
    let q = qs[0];
    let sql = q["query"].as_str().unwrap();
    for a in ACCOUNTS {
        assert!(sql.contains(&format!("'{a}'")), "{sql}");
    }
    for v in [
        "'eu-west-1'",
        "'us-east-1'",
        "'2025/02/18'",
        "'2025/02/19'",
        "'2025/02/20'",
        "'ssm.amazonaws.com'",
    ] {
        assert!(sql.contains(v), "{v} in {sql}");
    }
    assert!(!sql.contains("'2025/02/17'") && !sql.contains("'2025/02/21'"));
    assert_eq!(
        q["partitions"].as_array().unwrap().len(),
        3 * 2 * 3,
        "accounts × regions × days"
    );
    assert_eq!(q["workgroup"], "primary");
    assert_eq!(q["database"], "audit");

    // Cost: the bytes of exactly the named partitions, estimated before and scanned after.
    let days = ["2025/02/18", "2025/02/19", "2025/02/20"];
    let bytes = tree.partition_bytes(&ACCOUNTS, &days);
    let a = &report["run"]["athena"];
    assert_eq!(a["bytes_scanned"].as_u64(), Some(bytes), "{a}");
    assert_eq!(a["estimate_bytes"].as_u64(), Some(bytes), "{a}");
    assert_eq!(a["queries"][0]["state"], "SUCCEEDED");
    assert_eq!(a["queries"][0]["query_id"], q["id"]);
    let cost = a["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - ssm_session_audit::source::athena::cost::price_usd(bytes)).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(a["max_scan"].as_u64(), Some(1 << 30));
    assert_eq!(
        a["table_metadata_error"],
        Value::Null,
        "the table's metadata was read"
    );
    assert_eq!(a["projection"]["account_type"], "injected");
    // The quiet partition-day is named, and only it.
    assert_eq!(
        a["empty_partitions"],
        json!([{"account": "222222222222", "region": "us-east-1", "first": "2025-02-19", "last": "2025-02-19"}])
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("athena: 1 query") && stdout.contains(&format!("({bytes} bytes)")),
        "{stdout}"
    );
    assert_eq!(report["run"]["source"], "athena:audit.org_trail");

    // The same events and flags as the trail-file source over the same files
    // and the same half-open window.
    let dir_out = tree.dir.path().join("report-dir");
    let mut cmd = common::command(&endpoint);
    cmd.args(["scan", "--source"])
        .arg(tree.root())
        .args([
            "--start",
            START,
            "--end",
            END,
            "--regions",
            &REGIONS.join(","),
        ])
        .args([
            "--accounts",
            &ACCOUNTS.join(","),
            "--fail-on",
            "none",
            "--quiet",
            "--output",
        ])
        .arg(&dir_out);
    let out = common::run(cmd).await;
    assert!(out.status.code().is_some(), "{}", common::stderr_of(&out));
    let files = common::read_report(&dir_out);
    assert_eq!(common::report_event_ids(&files), want);
    let flags = |r: &Value| -> BTreeSet<String> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {}", f["flag"], f["event_ids"]))
            .collect()
    };
    assert!(!flags(&report).is_empty());
    assert_eq!(
        flags(&report),
        flags(&files),
        "same findings as the files source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn the_standin_refuses_queries_projection_would_refuse_or_widen() {
    // The guard the other tests rely on: proven here on hand-written SQL.
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-guard", None).await;
    let sdk = sdk(&endpoint).await;
    let client = aws_sdk_athena::Client::new(&sdk);
    let slots = ssm_session_audit::call::CallSlots::new(2);
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let settings = settings();
    let runner = Runner {
        client: &client,
        settings: &settings,
        slots: &slots,
        cancel: &cancel,
    };
    let base = "SELECT eventid FROM \"audit\".\"org_trail\" WHERE ";
    let a = "\"account\" IN ('111111111111')";
    let r = "\"region\" = 'eu-west-1'";
    let d = "\"timestamp\" IN ('2025/02/18')";
    for (sql, want) in [
        (format!("{base}{r} AND {d}"), "CONSTRAINT_VIOLATION"),
        (
            format!("{base}({a} OR eventname = 'x') AND {r} AND {d}"),
            "STANDIN_UNBOUNDED",
        ),
        (format!("{base}{a} AND {d}"), "STANDIN_UNBOUNDED"),
        (format!("{base}{a} AND {r}"), "STANDIN_UNBOUNDED"),
    ] {
        let (o, rows) = runner.run(&sql).await;
        assert_eq!(o.state, "FAILED", "{sql}");
        assert!(rows.is_none());
        assert!(
            o.reason.as_deref().unwrap().contains(want),
            "{sql}: {:?}",
            o.reason
        );
    }
    let (o, rows) = runner.run(&format!("{base}{a} AND {r} AND {d}")).await;
    assert_eq!(o.state, "SUCCEEDED", "{:?}", o.reason);
    assert!(!rows.unwrap().rows.is_empty());
    assert_eq!(o.bytes_scanned, {
        let f = tree.root().join(format!(
            "AWSLogs/{ORG}/111111111111/CloudTrail/eu-west-1/2025/02/18"
        ));
        std::fs::read_dir(f)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn a_scan_over_max_scan_is_refused_before_any_query() {
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-cap", None).await;
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--max-scan", "1KB"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr_of(&out);
    let bytes = tree.partition_bytes(&ACCOUNTS, &["2025/02/18", "2025/02/19", "2025/02/20"]);
    assert!(
        err.contains("athena.max_scan") && err.contains(&format!("{bytes} bytes")),
        "{err}"
    );
    let log = standin_log(&endpoint);
    assert!(
        queries_in(&log)
            .iter()
            .all(|q| !q["query"].as_str().unwrap().starts_with("SELECT")),
        "no query was started: {log:?}"
    );
    assert!(!out_dir.join("report.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn throttles_requeues_and_small_pages_lose_nothing() {
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-rough", None).await;
    control(
        &endpoint,
        "mode",
        json!({
            "bounce": true, "queued_polls": 2, "running_polls": 2, "page_rows": 7, "s3_page": 2, "too_many": 1,
            "throttle": {"StartQueryExecution": 1, "GetQueryExecution": 2, "GetQueryResults": 2}
        }),
    );
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--quiet"],
    ))
    .await;
    let report = common::read_report(&out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    assert_eq!(common::report_event_ids(&report), tree.expected(&ACCOUNTS));
    let q = &report["run"]["athena"]["queries"][0];
    assert_eq!(q["requeued"], 1, "{q}");
    assert!(q["polls"].as_u64().unwrap() >= 6, "{q}");
    let rows = q["rows"].as_u64().unwrap();
    assert!(
        q["result_pages"].as_u64().unwrap() >= rows.div_ceil(7),
        "{q}"
    );
    let log = standin_log(&endpoint);
    let starts = queries_in(&log)
        .iter()
        .filter(|q| q["query"].as_str().unwrap().starts_with("SELECT"))
        .count();
    assert_eq!(
        starts, 1,
        "a retried StartQueryExecution did not run the query twice"
    );
    assert!(
        log.iter().filter(|e| e["s3"] == "ListObjectsV2").count() > 12,
        "the listing paged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn a_failed_query_fails_its_partitions_with_athenas_reason() {
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-fail", None).await;
    control(
        &endpoint,
        "mode",
        json!({"fail": "HIVE_BAD_DATA: injected by the test"}),
    );
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--quiet"],
    ))
    .await;
    let report = common::read_report(&out_dir);
    common::assert_coherent(&report, out.status.code());
    assert_eq!(out.status.code(), Some(3));
    for a in ACCOUNTS {
        for r in REGIONS {
            let reg = common::region(&report, a, r);
            assert_eq!(reg["status"], "failed");
            let e = reg["error"].as_str().unwrap();
            assert!(
                e.contains("HIVE_BAD_DATA: injected by the test") && e.contains("FAILED"),
                "{e}"
            );
        }
    }
    assert_eq!(report["run"]["athena"]["queries"][0]["state"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn an_account_the_enum_projection_lacks_is_failed_not_empty() {
    let endpoint = standin();
    let tree = tree();
    // The table knows two of the three accounts; the metadata is read to tell.
    prepare(
        &endpoint,
        &tree,
        "org-trail-enum",
        Some("111111111111,222222222222"),
    )
    .await;
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--quiet"],
    ))
    .await;
    let report = common::read_report(&out_dir);
    common::assert_coherent(&report, out.status.code());
    assert_eq!(out.status.code(), Some(3));
    let e = common::region(&report, "333333333333", "eu-west-1")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(e.contains("projection.account.values"), "{e}");
    let got = common::report_event_ids(&report);
    assert_eq!(got, tree.expected(&ACCOUNTS[..2]));
    let sql = queries_in(&standin_log(&endpoint))
        .iter()
        .map(|q| q["query"].as_str().unwrap().to_string())
        .find(|q| q.starts_with("SELECT"))
        .unwrap();
    assert!(!sql.contains("333333333333"), "{sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn without_table_metadata_or_listing_the_scan_still_runs_but_a_cap_refuses() {
    // A stand-in (or a policy) without GetTableMetadata: the scan still queries
    // the named partitions; a cost cap it cannot check is refused, not ignored.
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-bare", None).await;
    control(&endpoint, "mode", json!({"no_metadata": true}));
    let out_dir = tree.dir.path().join("report");
    let out = common::run(scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--quiet"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let report = common::read_report(&out_dir);
    assert_eq!(common::report_event_ids(&report), tree.expected(&ACCOUNTS));
    assert!(report["run"]["athena"]["table_metadata_error"]
        .as_str()
        .unwrap()
        .contains("GetTableMetadata"));
    assert_eq!(report["run"]["athena"]["estimate_bytes"], Value::Null);
    let out = common::run(scan_cmd(
        &endpoint,
        &tree.dir.path().join("r2"),
        &["--accounts", &ACCOUNTS.join(","), "--max-scan", "1TB"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr_of(&out).contains("cannot be estimated"),
        "{}",
        common::stderr_of(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Athena stand-in (ATHENA_ENDPOINT); run by .ci/run"]
async fn ctrl_c_stops_the_running_query() {
    let endpoint = standin();
    let tree = tree();
    prepare(&endpoint, &tree, "org-trail-stop", None).await;
    control(&endpoint, "mode", json!({"hold": true}));
    let out_dir = tree.dir.path().join("report");
    let mut cmd = scan_cmd(
        &endpoint,
        &out_dir,
        &["--accounts", &ACCOUNTS.join(","), "--quiet"],
    );
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = standin_log(&endpoint);
        if queries_in(&log)
            .iter()
            .any(|q| q["query"].as_str().unwrap().starts_with("SELECT") && q["state"] == "RUNNING")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the query never ran: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr_of(&out));
    let log = standin_log(&endpoint);
    let q = queries_in(&log)
        .into_iter()
        .find(|q| q["query"].as_str().unwrap().starts_with("SELECT"))
        .unwrap();
    assert_eq!(q["stopped"], true, "StopQueryExecution was called: {q}");
    let report = common::read_report(&out_dir);
    assert_eq!(report["run"]["interrupted"], true);
    assert_eq!(report["run"]["athena"]["queries"][0]["state"], "CANCELLED");
}

// ------------------------------------------------------------------ moto

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIAMOTOATHENA000001",
            "secret",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

fn settings() -> RunSettings {
    RunSettings {
        workgroup: "primary".into(),
        output: Some("s3://results-bucket/athena/".into()),
        catalog: "AwsDataCatalog".into(),
        database: "audit".into(),
        retry_deadline: Duration::from_secs(20),
        poll_first: Duration::from_millis(20),
        poll_max: Duration::from_millis(100),
        query_timeout: Duration::from_secs(60),
    }
}

fn datum_row(values: &[Option<&str>]) -> Value {
    json!({"Data": values.iter().map(|v| match v { Some(s) => json!({"VarCharValue": s}), None => json!({}) }).collect::<Vec<_>>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn moto_athena_api_flow_states_results_and_stop() {
    let endpoint = moto();
    let (s, b) = http(&endpoint, "POST", "/moto-api/reset", &json!({}));
    assert_eq!(s, 200, "{b}");
    // QUEUED → RUNNING → SUCCEEDED, one step per GetQueryExecution.
    let (s, b) = http(
        &endpoint,
        "POST",
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1}}),
    );
    assert_eq!(s, 201, "{b}");
    let header: Vec<&str> = ssm_session_audit::source::athena::query::result_columns();
    let mut row = vec![None; header.len()];
    let mut set = |name: &str, v: &'static str| {
        row[header.iter().position(|h| *h == name).unwrap()] = Some(v)
    };
    set("account", "123456789012");
    set("region", "us-east-1");
    set("partition_day", "2025/02/18");
    set("eventid", "moto-event-1");
    set("eventname", "StartSession");
    set("eventtime", "2025-02-18T09:00:00Z");
    set("eventsource", "ssm.amazonaws.com");
    set("identity_type", "Root");
    set("identity_arn", "arn:aws:iam::123456789012:root");
    set("requestparameters", "{\"target\":\"i-0123\"}");
    let header_row: Vec<Option<&str>> = header.iter().map(|h| Some(*h)).collect();
    let rows = vec![datum_row(&header_row), datum_row(&row)];
    let columns: Vec<Value> = header
        .iter()
        .map(|h| json!({"Name": h, "Type": "varchar"}))
        .collect();
    let (s, b) = http(
        &endpoint,
        "POST",
        "/moto-api/static/athena/query-results",
        &json!({"account_id": "123456789012", "region": "us-east-1", "results": [{"rows": rows, "column_info": columns}]}),
    );
    assert_eq!(s, 201, "{b}");

    let sdk = sdk(&endpoint).await;
    let client = aws_sdk_athena::Client::new(&sdk);
    let slots = ssm_session_audit::call::CallSlots::new(2);
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let settings = settings();
    let runner = Runner {
        client: &client,
        settings: &settings,
        slots: &slots,
        cancel: &cancel,
    };
    let (o, rows) = runner.run("SELECT 1").await;
    assert_eq!(o.state, "SUCCEEDED", "{o:?}");
    assert!(
        o.polls >= 2,
        "moto went through its states over polls: {o:?}"
    );
    let rows = rows.unwrap();
    assert_eq!(
        rows.header, header,
        "the header row is the column names, not data"
    );
    assert_eq!(rows.rows.len(), 1);
    let r = ssm_session_audit::source::athena::query::row_to_record(&rows.header, &rows.rows[0]);
    let ev = ssm_session_audit::event::parse_value(&r.record, &r.account, &r.region).unwrap();
    assert_eq!(
        (
            ev.event_id.as_str(),
            ev.principal_type.as_str(),
            ev.target.as_deref()
        ),
        ("moto-event-1", "Root", Some("i-0123"))
    );

    // A query that never leaves QUEUED is stopped on cancel, and moto says CANCELLED.
    let (s, _) = http(
        &endpoint,
        "POST",
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000000}}),
    );
    assert_eq!(s, 201);
    let run = runner.run("SELECT 2");
    let cancel_soon = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel_tx.send(true).unwrap();
    };
    let ((o, rows), ()) = tokio::join!(run, cancel_soon);
    assert_eq!(o.state, "CANCELLED");
    assert!(rows.is_none());
    let id = o.query_id.unwrap();
    let got = client
        .get_query_execution()
        .query_execution_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.query_execution()
            .unwrap()
            .status()
            .unwrap()
            .state()
            .unwrap()
            .as_str(),
        "CANCELLED"
    );

    // A workgroup that does not exist: Athena's own error, the query never started.
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let mut bad = settings.clone();
    bad.workgroup = "no-such-workgroup".into();
    let runner = Runner {
        client: &client,
        settings: &bad,
        slots: &slots,
        cancel: &cancel,
    };
    let (o, _) = runner.run("SELECT 3").await;
    assert_eq!(o.state, "NOT_STARTED");
    assert!(o.reason.unwrap().contains("WorkGroup does not exist"));
}
