//! Evidence in S3 (`--output s3://bucket/prefix`) against moto's S3, Object
//! Lock included: the layout (each run under `prefix/<run start>/`, then
//! `prefix/latest.json`), `SHA256SUMS` matching every object, compliance-mode
//! retention on every object (read with HeadObject: moto 5.2 answers
//! GetObjectRetention with a 500), multipart uploads of large files, two
//! `--since last` runs over S3 whose events straddle the boundary (one exactly
//! on it) and whose first run fails a partition, and a run killed mid-upload,
//! which leaves `latest.json` on the run before it and is passed over by the
//! next `--since last`.
//!
//! `#[ignore]`d in a plain `cargo test`; `.ci/run` starts moto and sets
//! MOTO_ENDPOINT. Run that way without moto they fail, never skip.

use crate::common;
use crate::since_last::{assert_each_once, chain_command, chain_org, planted, t, truth_ids};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_s3::types::ObjectLockMode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sim::{PartitionFault, SimHandle, Simulator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

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

fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A new bucket (names are unique per test: no reset needed), with Object Lock.
async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> String {
    let name = format!("{name}-{}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create_bucket with Object Lock");
    name
}

async fn keys(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort();
    out
}

async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

async fn get_json(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Value {
    serde_json::from_slice(&get(client, bucket, key).await).unwrap()
}

/// Every file the run's SHA256SUMS lists exists with that digest, and every
/// object of the run's folder is listed (SHA256SUMS itself aside).
async fn assert_run_whole(client: &aws_sdk_s3::Client, bucket: &str, folder: &str) -> Vec<String> {
    let sums =
        String::from_utf8(get(client, bucket, &format!("{folder}SHA256SUMS")).await).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hex, name) = line.split_once("  ").expect("sha256sum format");
        let body = get(client, bucket, &format!("{folder}{name}")).await;
        assert_eq!(hex, hex::encode(Sha256::digest(&body)), "{name}");
        listed.push(name.to_string());
    }
    let mut objects: Vec<String> = keys(client, bucket, folder)
        .await
        .into_iter()
        .map(|k| k[folder.len()..].to_string())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    objects.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(objects, sorted, "the folder holds exactly the listed files");
    listed
}

/// The scan's command, writing to `s3_endpoint` (moto or a proxy to it).
fn s3_command(
    sim: &SimHandle,
    s3_endpoint: &str,
    output: &str,
    now: DateTime<Utc>,
    window: &[&str],
) -> tokio::process::Command {
    let mut cmd = chain_command(sim, output, now, window);
    cmd.env("AWS_ENDPOINT_URL_S3", s3_endpoint);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn each_run_has_its_folder_its_sums_last_and_compliance_retention() {
    let moto = moto_endpoint();
    let client = s3(&moto);
    let b = bucket(&client, "evidence-layout").await;
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let now = t("2026-11-20T06:00:00Z");
    let output = format!("s3://{b}/audit/runs");
    let mut cmd = s3_command(&sim, &moto, &output, now, &["--since", "2d"]);
    cmd.args(["--object-lock-days", "30"]);
    let out = common::run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "report: s3://{b}/audit/runs/2026-11-20T06-00-00Z/ (7 files)"
        )),
        "{stdout}"
    );

    let folder = "audit/runs/2026-11-20T06-00-00Z/";
    assert_eq!(
        keys(&client, &b, "audit/").await,
        [
            "audit/runs/2026-11-20T06-00-00Z/SHA256SUMS",
            "audit/runs/2026-11-20T06-00-00Z/accounts.csv",
            "audit/runs/2026-11-20T06-00-00Z/events.csv",
            "audit/runs/2026-11-20T06-00-00Z/findings.csv",
            "audit/runs/2026-11-20T06-00-00Z/report.html",
            "audit/runs/2026-11-20T06-00-00Z/report.json",
            "audit/runs/2026-11-20T06-00-00Z/sessions.csv",
            "audit/runs/latest.json",
        ]
    );
    let listed = assert_run_whole(&client, &b, folder).await;
    assert_eq!(listed.len(), 6);
    let report = get_json(&client, &b, &format!("{folder}report.json")).await;
    common::assert_coherent(&report, out.status.code());
    let latest = get_json(&client, &b, "audit/runs/latest.json").await;
    assert_eq!(latest["schema"], "ssm-session-audit/latest/v1");
    assert_eq!(latest["run"], "2026-11-20T06-00-00Z");
    assert_eq!(latest["prefix"], folder);
    assert_eq!(latest["location"], format!("s3://{b}/{folder}"));
    assert_eq!(latest["complete"], true);
    assert_eq!(latest["window_end"], report["run"]["window"]["end"]);
    assert_eq!(latest["settled_until"], "2026-11-20T05:45:00Z");
    let sums = get(&client, &b, &format!("{folder}SHA256SUMS")).await;
    assert_eq!(latest["sha256sums"], hex::encode(Sha256::digest(&sums)));

    // Every object, the pointer included, is locked in compliance mode for 30 days.
    let want = Utc::now() + TimeDelta::days(30);
    for key in keys(&client, &b, "audit/").await {
        let head = client
            .head_object()
            .bucket(&b)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&ObjectLockMode::Compliance),
            "{key}"
        );
        let until = head
            .object_lock_retain_until_date()
            .expect("retain-until")
            .secs();
        assert!(
            (until - want.timestamp()).abs() < 3600,
            "{key}: retained until {until}"
        );
    }

    // Without retention asked for, objects carry none of their own.
    let b2 = bucket(&client, "evidence-plain").await;
    let out = common::run(s3_command(
        &sim,
        &moto,
        &format!("s3://{b2}"),
        now,
        &["--since", "2d"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    assert_run_whole(&client, &b2, "2026-11-20T06-00-00Z/").await;
    let head = client
        .head_object()
        .bucket(&b2)
        .key("latest.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), None);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn an_unwritable_bucket_stops_the_run_before_the_scan() {
    let moto = moto_endpoint();
    let client = s3(&moto);
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let now = t("2026-11-20T06:00:00Z");
    let out = common::run(s3_command(
        &sim,
        &moto,
        "s3://no-such-evidence-bucket/runs",
        now,
        &["--since", "1d"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let e = common::stderr_of(&out);
    assert!(
        e.contains("--output s3://no-such-evidence-bucket/runs") && e.contains("NoSuchBucket"),
        "{e}"
    );
    // Retention on a bucket without Object Lock is refused before the scan too.
    let plain = format!("evidence-nolock-{}", std::process::id());
    client.create_bucket().bucket(&plain).send().await.unwrap();
    let mut cmd = s3_command(
        &sim,
        &moto,
        &format!("s3://{plain}/runs"),
        now,
        &["--since", "1d"],
    );
    cmd.args(["--object-lock-days", "7"]);
    let out = common::run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr_of(&out));
    let e = common::stderr_of(&out);
    assert!(
        e.contains("the bucket does not have Object Lock enabled"),
        "{e}"
    );
    assert_eq!(
        sim.stats().calls.get("LookupEvents"),
        None,
        "nothing was scanned"
    );
    assert!(
        keys(&client, &plain, "").await.is_empty(),
        "the probe leaves nothing"
    );
    sim.shutdown().await;
}

/// Two runs over S3: events on the boundary (exactly on run 1's end, and on
/// its settled point), one shown late, and a partition run 1 fails to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn two_since_last_runs_over_s3_hold_every_event_once() {
    let moto = moto_endpoint();
    let client = s3(&moto);
    let b = bucket(&client, "evidence-chain").await;
    let start = t("2026-11-18T00:00:00Z");
    let (n1, n2) = (t("2026-11-19T12:00:00Z"), t("2026-11-20T12:00:00Z"));
    let calls = vec![
        planted(
            1,
            "us-east-1",
            n1,
            "StartSession",
            "exactly-on-the-boundary",
            None,
        ),
        planted(
            1,
            "us-east-1",
            n1 - TimeDelta::seconds(1),
            "StartSession",
            "just-before",
            None,
        ),
        planted(
            2,
            "eu-west-1",
            n1 - TimeDelta::minutes(15),
            "StartSession",
            "on-settled",
            None,
        ),
        planted(
            3,
            "us-east-1",
            n1 - TimeDelta::minutes(3),
            "StartSession",
            "late",
            Some(n1 + TimeDelta::minutes(2)),
        ),
    ];
    let sim = Simulator::start(chain_org(calls)).await.unwrap();
    sim.fail_partition(0, "eu-west-1", Some(PartitionFault::Always));
    let failing = sim.accounts()[0].id.clone();
    let output = format!("s3://{b}/runs");

    let out = common::run(s3_command(
        &sim,
        &moto,
        &output,
        n1,
        &["--start", &start.to_rfc3339()],
    ))
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr_of(&out));
    sim.fail_partition(0, "eu-west-1", None);
    let out = common::run(s3_command(&sim, &moto, &output, n2, &["--since", "last"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));

    let (f1, f2) = ("runs/2026-11-19T12-00-00Z/", "runs/2026-11-20T12-00-00Z/");
    assert_run_whole(&client, &b, f1).await;
    assert_run_whole(&client, &b, f2).await;
    let r1 = get_json(&client, &b, &format!("{f1}report.json")).await;
    let r2 = get_json(&client, &b, &format!("{f2}report.json")).await;
    assert_eq!(r2["run"]["previous"]["location"], format!("s3://{b}/{f1}"));
    assert_eq!(r2["run"]["window"]["start"], "2026-11-19T11:45:00Z");
    assert_eq!(
        r2["run"]["window"]["partition_starts"][&failing]["eu-west-1"],
        "2026-11-18T00:00:00Z"
    );
    let latest = get_json(&client, &b, "runs/latest.json").await;
    assert_eq!(latest["prefix"], f2);
    let ids = |r: &Value| -> BTreeSet<String> {
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(ids(&r1).contains("just-before") && ids(&r1).contains("on-settled"));
    assert!(!ids(&r1).contains("exactly-on-the-boundary") && !ids(&r1).contains("late"));
    assert!(ids(&r2).contains("exactly-on-the-boundary") && ids(&r2).contains("late"));
    let failed_truth = sim.ground_truth(start, n2, &common::SESSION_NAMES);
    let failed_ids = failed_truth.partition(&failing, "eu-west-1").unwrap();
    assert!(!failed_ids.is_empty());
    assert!(
        failed_ids.iter().all(|id| ids(&r2).contains(id)),
        "run 2 read what run 1 failed to"
    );
    assert_each_once(&[&r1, &r2], &truth_ids(&sim, start, n2));
    sim.shutdown().await;
}

/// A proxy to moto that forwards every request but holds a PUT whose path
/// contains `trigger` forever, and says when it sees one.
async fn stalling_proxy(
    upstream: &str,
    trigger: &'static str,
) -> (String, tokio::sync::watch::Receiver<bool>) {
    let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = tokio::sync::watch::channel(false);
    let seen_tx = std::sync::Arc::new(seen_tx);
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                break;
            };
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = Vec::new();
                        if read.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let end = line == b"\r\n";
                        head.extend(line);
                        if end {
                            break;
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let lower = text.to_ascii_lowercase();
                    assert!(
                        !lower.contains("transfer-encoding: chunked"),
                        "the proxy reads Content-Length bodies only"
                    );
                    let length: usize = lower
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    let mut body = vec![0u8; length];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let first = text.lines().next().unwrap_or("");
                    if first.starts_with("PUT ") && first.contains(trigger) {
                        let _ = seen_tx.send(true);
                        std::future::pending::<()>().await;
                    }
                    // One upstream connection per request, closed after it.
                    let head = text
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join("\r\n");
                    let mut up = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
                        .await
                        .unwrap();
                    up.write_all(&body).await.unwrap();
                    let mut answer = Vec::new();
                    let _ = up.read_to_end(&mut answer).await;
                    if write.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// Killed (SIGKILL) after its files but before its SHA256SUMS: the run's
/// folder is visibly not whole, `latest.json` still names the run before it,
/// and the next `--since last` goes on from that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn a_run_killed_mid_upload_leaves_latest_on_the_run_before() {
    let moto = moto_endpoint();
    let client = s3(&moto);
    let b = bucket(&client, "evidence-killed").await;
    let start = t("2026-11-18T00:00:00Z");
    let (n1, n2, n3) = (
        t("2026-11-19T06:00:00Z"),
        t("2026-11-19T18:00:00Z"),
        t("2026-11-20T12:00:00Z"),
    );
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let output = format!("s3://{b}/runs");
    let out = common::run(s3_command(
        &sim,
        &moto,
        &output,
        n1,
        &["--start", &start.to_rfc3339(), "--object-lock-days", "1"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let latest_before = get(&client, &b, "runs/latest.json").await;

    let (proxy, mut seen) = stalling_proxy(&moto, "SHA256SUMS").await;
    let mut cmd = s3_command(
        &sim,
        &proxy,
        &output,
        n2,
        &["--since", "last", "--object-lock-days", "1"],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|s| *s))
        .await
        .expect("the run reached its SHA256SUMS")
        .unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait().await;
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!(".ssm-session-audit-upload-{pid}-"))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }

    let killed_folder = "runs/2026-11-19T18-00-00Z/";
    let left = keys(&client, &b, killed_folder).await;
    assert!(left.iter().any(|k| k.ends_with("report.json")), "{left:?}");
    assert!(!left.iter().any(|k| k.ends_with("SHA256SUMS")), "{left:?}");
    assert_eq!(
        get(&client, &b, "runs/latest.json").await,
        latest_before,
        "latest.json is untouched"
    );
    let latest: Value = serde_json::from_slice(&latest_before).unwrap();
    assert_eq!(latest["run"], "2026-11-19T06-00-00Z");

    // The next run goes on from the last whole run; the killed one counts for nothing.
    let out = common::run(s3_command(&sim, &moto, &output, n3, &["--since", "last"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr_of(&out));
    let r1 = get_json(&client, &b, "runs/2026-11-19T06-00-00Z/report.json").await;
    let r3 = get_json(&client, &b, "runs/2026-11-20T12-00-00Z/report.json").await;
    assert_eq!(
        r3["run"]["previous"]["location"],
        format!("s3://{b}/runs/2026-11-19T06-00-00Z/")
    );
    assert_eq!(r3["run"]["window"]["start"], "2026-11-19T05:45:00Z");
    assert_each_once(&[&r1, &r3], &truth_ids(&sim, start, n3));
    assert_eq!(
        get_json(&client, &b, "runs/latest.json").await["run"],
        "2026-11-20T12-00-00Z"
    );
    sim.shutdown().await;
}

/// A report.json larger than a part goes up in parts; SHA256SUMS, S3's own
/// checksum and `last_run` agree on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn large_files_are_uploaded_in_parts_and_read_back_whole() {
    use ssm_session_audit::report::{s3::S3Evidence, writers, Format};
    let moto = moto_endpoint();
    let client = s3(&moto);
    let b = bucket(&client, "evidence-parts").await;
    // A report of ~20 MB: many events with long (caller-chosen) user agents.
    let sim = Simulator::start(chain_org(Vec::new())).await.unwrap();
    let tmp = common::tempdir();
    let dir = common::out_dir(&tmp);
    let cmd = chain_command(
        &sim,
        &dir.display().to_string(),
        t("2026-11-20T12:00:00Z"),
        &["--since", "3d"],
    );
    let (_, small) = common::scan_and_read(cmd, &dir).await;
    sim.shutdown().await;
    let mut report: ssm_session_audit::model::Report = serde_json::from_value(small).unwrap();
    let template = report.events[0].clone();
    report.events = (0..12_000)
        .map(|i| {
            let mut e = template.clone();
            e.event_id = format!("{i:08}-{}", "e".repeat(24));
            e.user_agent = Some(format!("agent {i} {}", "x".repeat(1500)));
            e
        })
        .collect();
    let ev = S3Evidence::open(
        client.clone(),
        &b,
        "big",
        Some(1),
        t("2026-11-20T12:00:00Z"),
    )
    .await
    .unwrap();
    ev.write_run(&report, &writers(&[Format::Json, Format::Csv]))
        .await
        .unwrap();
    let head = client
        .head_object()
        .bucket(&b)
        .key("big/2026-11-20T12-00-00Z/report.json")
        .send()
        .await
        .unwrap();
    assert!(head.content_length().unwrap() > 2 * ssm_session_audit::report::s3::PART_SIZE as i64);
    assert!(
        head.e_tag().unwrap().contains('-'),
        "a multipart ETag: {:?}",
        head.e_tag()
    );
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let listed = assert_run_whole(&client, &b, "big/2026-11-20T12-00-00Z/").await;
    assert!(listed.contains(&"events.csv".to_string()));

    // The next run reads it back (streamed to a file, checked against its sum).
    let next = S3Evidence::open(client.clone(), &b, "big", None, t("2026-11-21T12:00:00Z"))
        .await
        .unwrap();
    let last = next.last_run().await.unwrap().expect("the run is found");
    assert_eq!(last.location, format!("s3://{b}/big/2026-11-20T12-00-00Z/"));
    assert_eq!(last.run, report.run);
}
