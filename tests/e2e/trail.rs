//! The trail-file source against generated trees: exactly the generator's own
//! list of session events, with coverage that says what was read and what was not.
//! The S3 tests need moto (MOTO_ENDPOINT) and run only through `.ci/run`.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sim::trail_gen::{generate, GenManifest, GenSpec};
use ssm_session_audit::call::CallSlots;
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::{
    read_dir, read_s3, scan_file_bytes, DayPlan, TrailError, TrailQuery, TrailResult,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn window(start: &str, end: &str) -> TimeWindow {
    TimeWindow {
        start: t(start),
        end: t(end),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ids(r: &TrailResult) -> BTreeSet<String> {
    r.events.iter().map(|e| e.event_id.clone()).collect()
}

/// Files a correct reader opens for `q`: wanted partition, a listed day, a kept minute.
fn files_to_read<'a>(m: &'a GenManifest, q: &TrailQuery) -> Vec<&'a sim::trail_gen::GenFile> {
    let plan = DayPlan::new(q.window);
    m.files
        .iter()
        .filter(|f| {
            q.wants_account(&f.account)
                && q.wants_region(&f.region)
                && plan.days.contains(&f.day)
                && plan.keep_file(Some(f.delivered))
        })
        .collect()
}

fn small_tree(dir: &Path) -> GenManifest {
    generate(dir, &GenSpec::small(day("2025-02-18"))).unwrap()
}

#[test]
fn a_window_gives_exactly_the_generated_session_events() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_tree(dir.path());
    let mut q = TrailQuery::new(window("2025-02-19T00:00:00Z", "2025-02-19T23:59:59Z"));
    q.accounts = Some(set(&["111111111111", "222222222222"]));
    let r = read_dir(dir.path(), &q, 2).unwrap();

    let expected = common::expected(&m, &q);
    assert!(
        expected.len() > 10,
        "a test that cannot fail: {}",
        expected.len()
    );
    assert_eq!(ids(&r), expected);
    // The 23:58 records of the 19th sit in the 20th's folders: found only because
    // the day after the window is listed.
    let late = r
        .events
        .iter()
        .filter(|e| e.event_time >= t("2025-02-19T23:58:00Z"))
        .count();
    assert!(
        late >= 4,
        "at least one per partition of the two accounts: {late}"
    );
    assert!(r
        .events
        .windows(2)
        .all(|w| w[0].event_time <= w[1].event_time));
    assert!(r.events.iter().all(|e| e.account_id != "333333333333"));

    // Pruning: only the files that can hold the window were opened.
    let to_read = files_to_read(&m, &q);
    let c = &r.coverage;
    assert_eq!(c.files_read, to_read.len() as u64);
    assert!(
        c.files_read < m.files.len() as u64 / 2,
        "{} of {}",
        c.files_read,
        m.files.len()
    );
    let good: Vec<_> = to_read.iter().filter(|f| !f.corrupt).collect();
    let bad: BTreeSet<String> = to_read
        .iter()
        .filter(|f| f.corrupt)
        .map(|f| f.key.clone())
        .collect();
    assert!(!bad.is_empty(), "the window includes a corrupt file");
    let got_bad: BTreeSet<String> = c
        .bad_files
        .iter()
        .map(|b| {
            b.path
                .split_once("/AWSLogs/")
                .map(|(_, k)| format!("AWSLogs/{k}"))
                .unwrap()
        })
        .collect();
    assert_eq!(got_bad, bad);
    assert!(c.bad_files.iter().all(|b| !b.error.is_empty()));
    let good_records: u64 = good.iter().map(|f| f.records).sum();
    // A corrupt file's records before the fault are counted too.
    assert!(
        c.records_seen >= good_records && c.records_seen <= good_records + 20 * bad.len() as u64
    );
    assert!(c.bytes_uncompressed >= good.iter().map(|f| f.bytes_uncompressed).sum::<u64>());
    assert_eq!(
        c.bytes_compressed,
        to_read.iter().map(|f| f.bytes_compressed).sum::<u64>()
    );
    assert_eq!(c.session_records, expected.len() as u64);
    assert_eq!(c.duplicates, 0);

    // Per partition: events add up, bad files fail their partition.
    let parts = &c.partitions;
    assert_eq!(parts.len(), 2);
    let events: u64 = parts
        .values()
        .flat_map(|r| r.values())
        .map(|p| p.events)
        .sum();
    assert_eq!(events, expected.len() as u64);
    for regions in parts.values() {
        for p in regions.values() {
            let rc = p.to_region_coverage();
            assert_eq!(rc.events, p.events);
            assert_eq!(
                rc.status == ssm_session_audit::model::RegionStatus::Failed,
                p.bad_files > 0
            );
        }
    }
    assert!(c.missing_days.is_empty());
    assert!(c.accounts_without_files.is_empty());
}

#[test]
fn the_result_does_not_depend_on_the_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    small_tree(dir.path());
    let q = TrailQuery::new(window("2025-02-18T06:00:00Z", "2025-02-20T12:00:00Z"));
    let one = read_dir(dir.path(), &q, 1).unwrap();
    let many = read_dir(dir.path(), &q, 8).unwrap();
    assert!(!one.events.is_empty());
    assert_eq!(one, many);
}

#[test]
fn a_whole_tree_read_counts_malformed_records_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_tree(dir.path());
    let q = TrailQuery::new(window("2025-02-17T00:00:00Z", "2025-02-21T00:00:00Z"));
    let r = read_dir(dir.path(), &q, 0).unwrap();
    assert_eq!(ids(&r), common::expected(&m, &q));
    assert_eq!(ids(&r).len(), m.sessions.len());
    let c = &r.coverage;
    assert_eq!(c.files_read, m.files.len() as u64);
    let malformed: Vec<String> = m.malformed.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(malformed.len(), 2);
    assert_eq!(c.malformed, 2);
    let mut sorted = malformed.clone();
    sorted.sort();
    assert_eq!(c.malformed_event_ids, sorted);
    assert_eq!(
        c.bad_files.len(),
        m.files.iter().filter(|f| f.corrupt).count()
    );
    let kinds: BTreeSet<&str> = c
        .bad_files
        .iter()
        .map(|b| {
            if b.error.contains("truncated gzip") {
                "truncated"
            } else if b.error.contains("trailing garbage") {
                "trailing"
            } else if b.error.contains("bad JSON") {
                "json"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(
        kinds,
        ["json", "trailing", "truncated"].into_iter().collect()
    );
    // Event names: a query for one name gets only that name.
    let mut only = q.clone();
    only.event_names = vec!["TerminateSession".into()];
    let r = read_dir(dir.path(), &only, 0).unwrap();
    assert!(!r.events.is_empty());
    assert!(r.events.iter().all(|e| e.event_name == "TerminateSession"));
    assert_eq!(ids(&r), common::expected(&m, &only));
}

#[test]
fn missing_days_and_absent_accounts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = GenSpec::small(day("2025-02-18"));
    spec.corrupt_files = 0;
    spec.gaps = vec![("222222222222".into(), "us-east-1".into(), day("2025-02-19"))];
    let m = generate(dir.path(), &spec).unwrap();
    let mut q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-19T23:59:59Z"));
    q.accounts = Some(set(&["222222222222", "999999999999"]));
    q.regions = Some(set(&["us-east-1", "ap-south-1"]));
    let r = read_dir(dir.path(), &q, 2).unwrap();
    assert_eq!(ids(&r), common::expected(&m, &q));
    let c = &r.coverage;
    assert_eq!(c.accounts_without_files, ["999999999999"]);
    let missing: Vec<(String, String, NaiveDate, NaiveDate)> = c
        .missing_days
        .iter()
        .map(|d| (d.account.clone(), d.region.clone(), d.first, d.last))
        .collect();
    assert_eq!(
        missing,
        [
            (
                "222222222222".into(),
                "ap-south-1".into(),
                day("2025-02-18"),
                day("2025-02-19")
            ),
            (
                "222222222222".into(),
                "us-east-1".into(),
                day("2025-02-19"),
                day("2025-02-19")
            ),
            (
                "999999999999".into(),
                "ap-south-1".into(),
                day("2025-02-18"),
                day("2025-02-19")
            ),
            (
                "999999999999".into(),
                "us-east-1".into(),
                day("2025-02-18"),
                day("2025-02-19")
            ),
        ]
    );
    assert_eq!(c.partitions["222222222222"]["us-east-1"].missing_days, 1);
    assert_eq!(c.partitions["222222222222"]["ap-south-1"].files, 0);
}

#[test]
fn a_file_delivered_twice_is_kept_once_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_tree(dir.path());
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-20T23:59:59Z"));
    let before = read_dir(dir.path(), &q, 2).unwrap();
    let f = m
        .files
        .iter()
        .find(|f| {
            !f.corrupt
                && m.sessions.iter().any(|s| {
                    s.account == f.account
                        && s.region == f.region
                        && s.time <= f.delivered
                        && s.time > f.delivered - chrono::Duration::minutes(15)
                })
        })
        .unwrap();
    // Same delivery minute, another random suffix: a second delivery of the file.
    let copy = f.key.replace(".json.gz", "X.json.gz");
    std::fs::copy(dir.path().join(&f.key), dir.path().join(&copy)).unwrap();
    let after = read_dir(dir.path(), &q, 2).unwrap();
    assert_eq!(after.events, before.events);
    assert!(after.coverage.duplicates > 0);
    assert_eq!(
        after.coverage.session_records,
        before.coverage.session_records + after.coverage.duplicates
    );
}

#[test]
fn single_account_layout_plain_json_and_prefix_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let mut spec = GenSpec::small(day("2025-02-18"));
    spec.org_id = None;
    spec.corrupt_files = 0;
    let m = generate(&root.join("team/trail"), &spec).unwrap();
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-20T23:59:59Z"));
    let r = read_dir(&root, &q, 2).unwrap();
    assert_eq!(ids(&r), common::expected(&m, &q));
    // Pointing at AWSLogs itself works too.
    let r2 = read_dir(&root.join("team/trail/AWSLogs"), &q, 2).unwrap();
    assert_eq!(r2.events, r.events);
}

#[test]
fn the_checked_in_tree_holds_two_real_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trail/tree");
    let q = TrailQuery::new(window("2020-01-01T00:00:00Z", "2025-12-31T00:00:00Z"));
    // A wide window lists many empty days; that is the point of the pruning test below.
    let r = read_dir(&root, &q, 2).unwrap();
    let got: Vec<(&str, &str, &str)> = r
        .events
        .iter()
        .map(|e| {
            (
                e.event_id.as_str(),
                e.account_id.as_str(),
                e.region.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "4b7a66fc-bffb-4179-be64-69bba2bf714c",
                "354114410416",
                "us-east-1"
            ),
            (
                "c61c9a5d-4d9c-45ee-8c46-9845ea001e97",
                "111122223333",
                "us-west-2"
            ),
        ]
    );
    assert_eq!(r.coverage.records_seen, 4);
    assert_eq!(r.coverage.files_read, 2);

    // Half-open: the one second of the record.
    let mut q = TrailQuery::new(window("2025-02-19T20:13:49Z", "2025-02-19T20:13:50Z"));
    q.accounts = Some(set(&["111122223333"]));
    let r = read_dir(&root, &q, 1).unwrap();
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.coverage.files_read, 1);
}

#[test]
fn scan_file_bytes_reads_gzip_and_plain_text() {
    let text = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trail/real-records.json"),
    )
    .unwrap();
    let q = TrailQuery::new(window("2020-01-01T00:00:00Z", "2025-12-31T00:00:00Z"));
    let plain = scan_file_bytes("real-records.json", &text, &q);
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &text).unwrap();
    let z = z.finish().unwrap();
    let gz = scan_file_bytes("real-records.json.gz", &z, &q);
    assert_eq!(plain.events.len(), 2);
    assert_eq!(gz.events, plain.events);
    assert_eq!(gz.bytes_uncompressed, text.len() as u64);
    assert_eq!(gz.bytes_compressed, z.len() as u64);
    let bad = scan_file_bytes("x.json.gz", &z[..z.len() - 9], &q);
    assert!(bad.error.is_some());
}

#[test]
fn a_folder_without_a_trail_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-19T00:00:00Z"));
    assert!(matches!(
        read_dir(dir.path(), &q, 1),
        Err(TrailError::NoTrail { .. })
    ));
    assert!(matches!(
        read_dir(&dir.path().join("nope"), &q, 1),
        Err(TrailError::Root { .. })
    ));
}

// ---------------------------------------------------------------- S3 (moto)

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT is set by .ci/run (these tests need moto)")
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Upload every file under `root` to `bucket` under `prefix`.
async fn upload(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, root: &Path) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel.ends_with(sim::trail_gen::SIGNATURE_SUFFIX) {
                    continue;
                }
                let body = std::fs::read(&p).unwrap();
                let mut put = client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .body(body.into());
                // A digest's signature is its object's metadata, as CloudTrail writes it.
                let sidecar = format!("{}{}", p.display(), sim::trail_gen::SIGNATURE_SUFFIX);
                if let Ok(sig) = std::fs::read_to_string(sidecar) {
                    put = put
                        .metadata("signature", sig.trim())
                        .metadata("signature-algorithm", "SHA256withRSA");
                }
                put.send().await.unwrap();
            }
        }
    }
}

/// Everything but the file names, which differ between a folder and a bucket.
fn same_result(a: &TrailResult, b: &TrailResult) {
    assert_eq!(a.events, b.events);
    let (x, y) = (&a.coverage, &b.coverage);
    assert_eq!(x.files_read, y.files_read);
    assert_eq!(x.bytes_compressed, y.bytes_compressed);
    assert_eq!(x.bytes_uncompressed, y.bytes_uncompressed);
    assert_eq!(x.records_seen, y.records_seen);
    assert_eq!(x.malformed_event_ids, y.malformed_event_ids);
    assert_eq!(x.bad_files.len(), y.bad_files.len());
    assert_eq!(x.missing_days, y.missing_days);
    assert_eq!(x.accounts_without_files, y.accounts_without_files);
    assert_eq!(x.partitions, y.partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn s3_reads_the_same_as_a_local_copy() {
    let endpoint = moto_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let m = small_tree(dir.path());
    let client = s3_client(&endpoint);
    let bucket = format!("trail-test-{}", std::process::id());
    upload(&client, &bucket, "org/trail/", dir.path()).await;
    let slots = CallSlots::new(8);
    let deadline = Duration::from_secs(30);

    // Everything discovered by listing.
    let q = TrailQuery::new(window("2025-02-18T12:00:00Z", "2025-02-19T23:59:59Z"));
    let s3 = read_s3(&client, &bucket, "org/trail", &q, &slots, deadline)
        .await
        .unwrap();
    let local = read_dir(dir.path(), &q, 2).unwrap();
    assert_eq!(ids(&s3), common::expected(&m, &q));
    same_result(&s3, &local);
    assert!(s3.coverage.bad_files.iter().all(|b| b
        .path
        .starts_with(&format!("s3://{bucket}/org/trail/AWSLogs/"))));

    // Known accounts and regions are joined into prefixes, not listed.
    let mut q = TrailQuery::new(window("2025-02-19T00:00:00Z", "2025-02-19T23:59:59Z"));
    q.accounts = Some(set(&["333333333333", "999999999999"]));
    q.regions = Some(set(&["eu-west-1"]));
    let s3 = read_s3(&client, &bucket, "org/trail/", &q, &slots, deadline)
        .await
        .unwrap();
    let local = read_dir(dir.path(), &q, 2).unwrap();
    assert!(!s3.events.is_empty());
    assert_eq!(ids(&s3), common::expected(&m, &q));
    same_result(&s3, &local);
    assert_eq!(s3.coverage.accounts_without_files, ["999999999999"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn s3_without_a_trail_or_a_bucket_is_an_error() {
    let endpoint = moto_endpoint();
    let client = s3_client(&endpoint);
    let bucket = format!("trail-empty-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-19T00:00:00Z"));
    let slots = CallSlots::new(4);
    let deadline = Duration::from_secs(5);
    let e = read_s3(&client, &bucket, "", &q, &slots, deadline)
        .await
        .unwrap_err();
    assert!(matches!(e, TrailError::NoTrail { .. }), "{e}");
    let e = read_s3(&client, "no-such-bucket-here", "", &q, &slots, deadline)
        .await
        .unwrap_err();
    assert!(matches!(e, TrailError::S3List { .. }), "{e}");
    assert!(e.to_string().contains("NoSuchBucket"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn s3_pages_through_long_listings() {
    // More than 1,000 keys in one day folder: ListObjectsV2 pages.
    let endpoint = moto_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = GenSpec::small(day("2025-02-18"));
    spec.accounts = vec!["444444444444".into()];
    spec.regions = vec!["us-east-1".into()];
    spec.days = 1;
    spec.files_per_day = 1_100;
    spec.records_per_file = 3;
    spec.session_share = 0.2;
    spec.corrupt_files = 0;
    let m = generate(dir.path(), &spec).unwrap();
    let client = s3_client(&endpoint);
    let bucket = format!("trail-pages-{}", std::process::id());
    upload(&client, &bucket, "", dir.path()).await;
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-18T23:59:59Z"));
    let r = read_s3(
        &client,
        &bucket,
        "",
        &q,
        &CallSlots::new(8),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(r.coverage.files_read, 1_100);
    assert_eq!(ids(&r), common::expected(&m, &q));
}

/// The binary's own S3 path (`scan --source s3://…`, path-style addressing for a
/// custom endpoint, Organizations absent so accounts stand as ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn scan_source_s3_through_the_binary() {
    let endpoint = moto_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let m = small_tree(dir.path());
    let client = s3_client(&endpoint);
    let bucket = format!("trail-bin-{}", std::process::id());
    upload(&client, &bucket, "org/", dir.path()).await;

    let w = window("2025-02-18T12:00:00Z", "2025-02-19T23:59:59Z");
    let out_dir = dir.path().join("report");
    let mut cmd = common::command(&endpoint);
    cmd.args(["scan", "--source", &format!("s3://{bucket}/org")])
        .args([
            "--start",
            &w.start.to_rfc3339(),
            "--end",
            &w.end.to_rfc3339(),
        ])
        .args([
            "--regions",
            "eu-west-1,us-east-1",
            "--fail-on",
            "none",
            "--quiet",
            "--output",
        ])
        .arg(&out_dir);
    let out = common::run(cmd).await;
    let report = common::read_report(&out_dir);
    let complete = report["run"]["complete"].as_bool().unwrap();
    assert_eq!(
        out.status.code(),
        Some(if complete { 0 } else { 3 }),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let have: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    let want = common::expected(&m, &TrailQuery::new(w));
    assert!(!want.is_empty());
    assert_eq!(have.len(), want.len(), "no event twice");
    assert_eq!(have.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(report["run"]["source"]
        .as_str()
        .unwrap()
        .starts_with("s3://"));
    for bad in report["run"]["trail"]["bad_files"].as_array().unwrap() {
        assert!(
            bad["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("s3://{bucket}/org/AWSLogs/")),
            "{bad}"
        );
    }
}

/// Digests through moto's S3: signatures from the objects' metadata, checked
/// with the generator's key; an intact tree validates every file, a tampered
/// one names what was done to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn s3_digests_validate_through_moto() {
    use sim::trail_gen::{digest_public_key, FileRef, Tamper};
    use ssm_session_audit::trail::digest::{Keys, PublicKey};
    let endpoint = moto_endpoint();
    let client = s3_client(&endpoint);
    let (fingerprint, der) = digest_public_key();
    let keys = move |_region: String| -> futures::future::BoxFuture<'static, Keys> {
        let k = Keys::from_list([PublicKey {
            fingerprint: fingerprint.clone(),
            der: der.clone(),
        }]);
        Box::pin(async move { k })
    };
    let q = TrailQuery::new(window("2025-02-18T00:00:00Z", "2025-02-19T23:59:59Z"));
    for tampered in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = GenSpec::small(day("2025-02-18"));
        spec.accounts.truncate(1);
        spec.corrupt_files = 0;
        spec.digests = true;
        let gone = FileRef {
            account: spec.accounts[0].clone(),
            region: "us-east-1".into(),
            day: day("2025-02-19"),
            index: 1,
        };
        if tampered {
            spec.tamper = vec![
                Tamper::DeleteLog(gone.clone()),
                Tamper::AlterLog(FileRef {
                    index: 2,
                    ..gone.clone()
                }),
            ];
        }
        let m = generate(dir.path(), &spec).unwrap();
        let bucket = format!("trail-digests-{}-{tampered}", std::process::id());
        upload(&client, &bucket, "org/", dir.path()).await;
        let r = ssm_session_audit::trail::read_s3_with_keys(
            &client,
            &bucket,
            "org",
            &q,
            &CallSlots::new(8),
            Duration::from_secs(30),
            &keys,
        )
        .await
        .unwrap();
        let i = &r.coverage.integrity;
        assert_eq!(i.signatures_checked, i.digests_read, "{i:#?}");
        assert!(i.digests_read >= 2 * 48);
        assert_eq!(i.digests_broken + i.digests_missing, 0, "{i:#?}");
        if tampered {
            let p = &r.coverage.partitions[&spec.accounts[0]]["us-east-1"].integrity;
            let deleted = m.files.iter().find(|f| f.deleted).unwrap();
            let altered = m.files.iter().find(|f| f.altered).unwrap();
            assert_eq!(p.missing, std::slice::from_ref(&deleted.key));
            assert_eq!(p.altered, std::slice::from_ref(&altered.key));
        } else {
            assert_eq!(i.files_validated, r.coverage.files_read);
            assert_eq!(i.files_missing + i.files_altered + i.files_unlisted, 0);
        }
    }
}
