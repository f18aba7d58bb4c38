//! Trail integrity, gaps and hostile files: generated trees with digest files
//! (signed with the generator's test key), damaged on purpose, read from a
//! local folder, through the simulator's S3 (the real SDK), and through the
//! real binary. Every damage must be named and make the run incomplete; an
//! intact tree must validate with every file checked.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sim::trail_gen::{generate, FileRef, GenManifest, GenSpec, Tamper};
use sim::{SimConfig, Simulator};
use ssm_session_audit::call::CallSlots;
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::digest::Keys;
use ssm_session_audit::trail::{
    list_public_keys, read_dir, read_s3_with_keys, DayPlan, TrailQuery, TrailResult,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const A1: &str = "111111111111";
const A2: &str = "222222222222";

/// 2 accounts × 2 regions × 3 days, digests on, nothing corrupt.
fn spec() -> GenSpec {
    GenSpec {
        accounts: vec![A1.into(), A2.into()],
        corrupt_files: 0,
        malformed_records: 0,
        digests: true,
        ..GenSpec::small(day("2025-02-18"))
    }
}

fn query() -> TrailQuery {
    TrailQuery::new(TimeWindow {
        start: t("2025-02-18T00:00:00Z"),
        end: t("2025-02-19T23:59:59Z"),
    })
}

fn ids(r: &TrailResult) -> BTreeSet<String> {
    r.events.iter().map(|e| e.event_id.clone()).collect()
}

/// The files a correct reader opens for `q`.
fn files_read(m: &GenManifest, q: &TrailQuery) -> usize {
    let plan = DayPlan::new(q.window);
    m.files
        .iter()
        .filter(|f| {
            !f.deleted
                && q.wants_account(&f.account)
                && q.wants_region(&f.region)
                && plan.days.contains(&f.day)
                && plan.keep_file(Some(f.delivered))
        })
        .count()
}

fn file(account: &str, region: &str, d: &str, index: u32) -> FileRef {
    FileRef {
        account: account.into(),
        region: region.into(),
        day: day(d),
        index,
    }
}

fn key_of<'a>(m: &'a GenManifest, f: &FileRef) -> &'a str {
    let files: Vec<_> = m
        .files
        .iter()
        .filter(|g| g.account == f.account && g.region == f.region && g.day == f.day && !g.corrupt)
        .collect();
    &files[f.index as usize].key
}

#[test]
fn an_intact_tree_validates_every_file_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), &spec()).unwrap();
    assert!(!m.digests.is_empty());
    let q = query();
    let r = read_dir(dir.path(), &q, 2).unwrap();
    assert_eq!(ids(&r), common::expected(&m, &q));
    let c = &r.coverage;
    let n = files_read(&m, &q) as u64;
    assert!(n > 20);
    assert_eq!(c.files_read, n);
    assert_eq!(c.integrity.files_validated, n, "{:#?}", c.integrity);
    assert_eq!(c.integrity.partitions_checked, 4);
    assert_eq!(c.integrity.partitions_unchecked, 0);
    assert_eq!(
        c.integrity.files_missing + c.integrity.files_altered + c.integrity.files_unlisted,
        0
    );
    assert_eq!(c.integrity.digests_missing + c.integrity.digests_broken, 0);
    // A local copy has no metadata: the signatures are not claimed.
    assert_eq!(c.integrity.signatures_checked, 0);
    assert!(c.integrity.signatures_unchecked > 0);
    for regions in c.partitions.values() {
        for p in regions.values() {
            assert!(p.integrity.checked);
            assert_eq!(p.status(), ssm_session_audit::model::RegionStatus::Ok);
            assert!(p.integrity.notes[0].contains("signatures not checked: local copy"));
        }
    }
}

#[test]
fn deleted_altered_and_added_files_and_a_broken_chain_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    let (del, alt, add) = (
        file(A1, "eu-west-1", "2025-02-18", 1),
        file(A1, "us-east-1", "2025-02-19", 2),
        file(A2, "eu-west-1", "2025-02-19", 0),
    );
    s.tamper = vec![
        Tamper::DeleteLog(del.clone()),
        Tamper::AlterLog(alt.clone()),
        Tamper::UnlistedLog(add.clone()),
        Tamper::DeleteDigest {
            account: A2.into(),
            region: "us-east-1".into(),
            day: day("2025-02-18"),
            hour: 7,
        },
        Tamper::BreakChain {
            account: A2.into(),
            region: "us-east-1".into(),
            day: day("2025-02-19"),
            hour: 3,
        },
    ];
    let m = generate(dir.path(), &s).unwrap();
    let q = query();
    let r = read_dir(dir.path(), &q, 2).unwrap();
    // The records of what is there are all read: nothing but the deleted file's.
    let c = &r.coverage;
    let p = |a: &str, r: &str| &c.partitions[a][r];
    let i = &p(A1, "eu-west-1").integrity;
    assert_eq!(i.missing, [key_of(&m, &del)]);
    let i = &p(A1, "us-east-1").integrity;
    assert_eq!(i.altered, [key_of(&m, &alt)]);
    let i = &p(A2, "eu-west-1").integrity;
    assert_eq!(i.unlisted, [key_of(&m, &add)]);
    let i = &p(A2, "us-east-1").integrity;
    assert_eq!(i.digests_missing, 1, "{i:#?}");
    assert!(i.missing_digests[0].contains("20250218T080000Z"));
    assert_eq!(i.digests_broken, 1, "{i:#?}");
    assert!(i.broken_digests[0].contains("20250219T040000Z"));
    for (a, reg) in [
        (A1, "eu-west-1"),
        (A1, "us-east-1"),
        (A2, "eu-west-1"),
        (A2, "us-east-1"),
    ] {
        let rc = p(a, reg).to_region_coverage();
        assert_eq!(
            rc.status,
            ssm_session_audit::model::RegionStatus::Failed,
            "{a} {reg}"
        );
        assert!(rc.error.unwrap().contains("integrity:"));
    }
    assert_eq!(c.integrity.files_missing, 1);
    assert_eq!(c.integrity.files_altered, 1);
    assert_eq!(c.integrity.files_unlisted, 1);
    // The deleted hour's files are in no digest that was read: unlisted too.
    assert!(c.integrity.files_validated as usize >= files_read(&m, &q) - 6);
}

#[test]
fn a_day_without_any_file_is_a_gap_that_fails_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.digests = false;
    s.gaps = vec![(A1.into(), "us-east-1".into(), day("2025-02-19"))];
    generate(dir.path(), &s).unwrap();
    let r = read_dir(dir.path(), &query(), 2).unwrap();
    let p = &r.coverage.partitions[A1]["us-east-1"];
    assert_eq!(p.gaps, ["2025-02-19"]);
    let rc = p.to_region_coverage();
    assert_eq!(rc.status, ssm_session_audit::model::RegionStatus::Failed);
    assert!(rc.error.unwrap().contains("no trail file on 2025-02-19"));
    assert!(!p.integrity.checked);
    assert!(p.integrity.notes[0].contains("integrity not checked"));
    // A window day that has not begun yet is no gap; the next day never is.
    let mut q = TrailQuery::new(TimeWindow {
        start: t("2025-02-20T00:00:00Z"),
        end: t("2025-02-21T12:00:00Z"),
    });
    q.now = t("2025-02-20T23:00:00Z");
    let r = read_dir(dir.path(), &q, 2).unwrap();
    assert!(
        r.coverage.missing_days.is_empty(),
        "{:?}",
        r.coverage.missing_days
    );
}

fn write_bomb(path: &Path, gib: u64) {
    // The start of a trail file, then 64 MiB of JSON whitespace (~64 KB
    // compressed) over and over: concatenated members are one gzip file (as
    // `gzip -d` reads it) that inflates to `gib` GiB and is valid JSON all the way.
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    };
    let member = gz(&vec![b' '; 64 << 20]);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    std::io::Write::write_all(
        &mut f,
        &gz(br#"{"Records":[{"eventSource":"ssm.amazonaws.com"}"#),
    )
    .unwrap();
    for _ in 0..gib * 16 {
        std::io::Write::write_all(&mut f, &member).unwrap();
    }
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[test]
fn a_gzip_bomb_and_a_giant_record_fail_their_file_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.digests = false;
    s.accounts = vec![A1.into()];
    s.regions = vec!["us-east-1".into()];
    let m = generate(dir.path(), &s).unwrap();
    let day_dir = dir
        .path()
        .join("AWSLogs/o-a1b2c3d4e5")
        .join(A1)
        .join("CloudTrail/us-east-1/2025/02/19");
    let bomb = day_dir.join(format!(
        "{A1}_CloudTrail_us-east-1_20250219T0333Z_BOMB.json.gz"
    ));
    write_bomb(&bomb, 4);
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 8 << 20, "a small object: {size}");
    // A record of 40 MB inside an otherwise good file.
    let giant = day_dir.join(format!(
        "{A1}_CloudTrail_us-east-1_20250219T0334Z_GIANT.json"
    ));
    std::fs::write(
        &giant,
        format!(
            r#"{{"Records":[{{"eventSource":"x","pad":"{}"}}]}}"#,
            "a".repeat(40 << 20)
        ),
    )
    .unwrap();
    let before = peak_rss_mb();
    let q = query();
    let r = read_dir(dir.path(), &q, 2).unwrap();
    let after = peak_rss_mb();
    assert_eq!(
        ids(&r),
        common::expected(&m, &q),
        "every other file is read"
    );
    let bad: Vec<(String, String)> = r
        .coverage
        .bad_files
        .iter()
        .map(|b| {
            (
                b.path.rsplit('/').next().unwrap().to_string(),
                b.error.clone(),
            )
        })
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].0.contains("BOMB") && bad[0].1.contains("inflates past the limit"),
        "{bad:?}"
    );
    assert!(
        bad[1].0.contains("GIANT") && bad[1].1.contains("larger than the 16 MiB"),
        "{bad:?}"
    );
    // The bomb was inflated up to the cap (1 GiB), streaming: the process grew
    // by the giant file's window, never by a file's inflated size.
    let bomb_scan_bytes = r.coverage.bytes_uncompressed;
    assert!(bomb_scan_bytes > 1 << 30, "{bomb_scan_bytes}");
    assert!(
        after.saturating_sub(before) < 300,
        "{before} MB -> {after} MB"
    );
    assert_eq!(
        r.coverage.partitions[A1]["us-east-1"]
            .to_region_coverage()
            .status,
        ssm_session_audit::model::RegionStatus::Failed
    );

    // The same bucket over S3: the body streams into the same capped inflate.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let before = peak_rss_mb();
    let (s3, _) = rt.block_on(via_sim_s3(dir.path(), &q));
    let after = peak_rss_mb();
    assert_eq!(ids(&s3), common::expected(&m, &q));
    let names: Vec<&str> = s3
        .coverage
        .bad_files
        .iter()
        .map(|b| b.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{:?}", s3.coverage.bad_files);
    assert!(names[0].contains("BOMB") && names[1].contains("GIANT"));
    assert!(s3.coverage.bad_files[0]
        .error
        .contains("inflates past the limit"));
    assert!(
        after.saturating_sub(before) < 300,
        "{before} MB -> {after} MB"
    );
}

// ---------------------------------------------------------------- the simulator's S3

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("AKIATEST", "test", None, None, "test");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn cloudtrail_client(endpoint: &str) -> aws_sdk_cloudtrail::Client {
    let creds =
        aws_sdk_cloudtrail::config::Credentials::new("AKIATEST", "test", None, None, "test");
    let conf = aws_sdk_cloudtrail::config::Builder::new()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

/// The tree served by the simulator's S3 (bucket `trail`), read with the real SDK.
async fn via_sim_s3(root: &Path, q: &TrailQuery) -> (TrailResult, sim::SimStats) {
    via_sim_s3_cut(root, q, false).await
}

async fn via_sim_s3_cut(root: &Path, q: &TrailQuery, cut: bool) -> (TrailResult, sim::SimStats) {
    let sim = Simulator::start(SimConfig {
        trail_root: Some(root.to_path_buf()),
        trail_cut_bodies: cut,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let s3 = s3_client(&sim.endpoint());
    let ct = cloudtrail_client(&sim.endpoint());
    let keys = match list_public_keys(
        &ct,
        "us-east-1",
        q.window,
        &CallSlots::new(2),
        Duration::from_secs(5),
    )
    .await
    {
        Keys::Known(k) => k,
        Keys::Unchecked(why) => panic!("ListPublicKeys: {why}"),
    };
    let r = read_s3_with_keys(
        &s3,
        "trail",
        "",
        q,
        &CallSlots::new(8),
        Duration::from_secs(30),
        &|_region: String| {
            let keys = keys.clone();
            Box::pin(async move { Keys::Known(keys) })
        },
    )
    .await
    .unwrap();
    let stats = sim.stats();
    sim.shutdown().await;
    (r, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_listing_that_repeats_its_token_fails_instead_of_looping() {
    let dir = tempfile::tempdir().unwrap();
    let q = query();
    generate(dir.path(), &spec()).unwrap();
    let mut cfg = SimConfig {
        trail_root: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    cfg.faults.s3_repeat_token = true;
    let sim = Simulator::start(cfg).await.unwrap();
    let s3 = s3_client(&sim.endpoint());
    let slots = CallSlots::new(8);
    let read = read_s3_with_keys(
        &s3,
        "trail",
        "",
        &q,
        &slots,
        Duration::from_secs(5),
        &|_region: String| Box::pin(async { Keys::Unchecked("not checked here".into()) }),
    );
    let r = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the listing ends");
    // Either the first listing fails, or what it lists is failed: never whole.
    match r {
        Err(e) => assert!(e.to_string().contains("already returned"), "{e}"),
        Ok(r) => {
            let text = format!("{:?}", r.coverage);
            assert!(text.contains("already returned"), "{text:.2000}");
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_checks_signatures_and_finds_the_same_damage() {
    let dir = tempfile::tempdir().unwrap();
    let q = query();
    // Intact: every file validated, every digest's signature checked.
    let m = generate(dir.path(), &spec()).unwrap();
    let (r, stats) = via_sim_s3(dir.path(), &q).await;
    assert_eq!(ids(&r), common::expected(&m, &q));
    let i = &r.coverage.integrity;
    assert_eq!(i.files_validated as usize, files_read(&m, &q), "{i:#?}");
    assert_eq!(i.signatures_checked, i.digests_read);
    assert_eq!(i.signatures_unchecked, 0);
    assert!(i.digests_read > 4 * 48, "{i:#?}");
    assert_eq!(
        i.files_missing + i.files_altered + i.files_unlisted + i.digests_broken,
        0
    );
    // Calls follow the objects: a few listings per partition, one GET per object.
    let lists = stats.calls.get("ListObjectsV2").copied().unwrap_or(0);
    assert!(lists <= 4 * 4 + 2, "{lists} listings: {:?}", stats.calls);
    assert_eq!(
        stats.calls.get("GetObject").copied().unwrap_or(0),
        (i.digests_read + r.coverage.files_read)
    );

    // Damaged, including a digest whose signature no longer verifies.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    let alt = file(A2, "eu-west-1", "2025-02-18", 3);
    s.tamper = vec![
        Tamper::AlterLog(alt.clone()),
        Tamper::BreakChain {
            account: A1.into(),
            region: "eu-west-1".into(),
            day: day("2025-02-18"),
            hour: 12,
        },
    ];
    let m = generate(dir.path(), &s).unwrap();
    let (r, _) = via_sim_s3(dir.path(), &q).await;
    let c = &r.coverage;
    assert_eq!(
        c.partitions[A2]["eu-west-1"].integrity.altered,
        [key_of(&m, &alt)]
    );
    let i = &c.partitions[A1]["eu-west-1"].integrity;
    // The altered digest fails its signature and its successor's hash.
    assert_eq!(i.digests_broken, 2, "{i:#?}");
    assert!(i
        .broken_digests
        .iter()
        .any(|b| b.contains("signature verification failed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_integrity_gaps_and_skips_suspended_accounts() {
    let sim_probe = Simulator::start(SimConfig::default()).await.unwrap();
    let org: Vec<String> = sim_probe.accounts().iter().map(|a| a.id.clone()).collect();
    sim_probe.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trail");
    // Accounts 0..3 have files; 3 is suspended (files or not, it is skipped);
    // account 4 has none at all; account 1 loses a day and a file.
    let mut s = spec();
    s.org_id = None;
    s.accounts = org[..4].to_vec();
    s.regions = vec!["us-east-1".into(), "eu-west-1".into()];
    s.gaps = vec![(org[1].clone(), "eu-west-1".into(), day("2025-02-19"))];
    s.tamper = vec![Tamper::DeleteLog(file(
        &org[2],
        "us-east-1",
        "2025-02-18",
        2,
    ))];
    let m = generate(&root, &s).unwrap();
    let sim = Simulator::start(SimConfig {
        trail_root: Some(root.clone()),
        faults: sim::Faults {
            suspended_accounts: vec![3],
            ..Default::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    for source in [root.to_string_lossy().to_string(), "s3://trail".to_string()] {
        let out_dir = dir.path().join(format!("report-{}", source.len()));
        let mut cmd = common::command(&sim.endpoint());
        cmd.args(["scan", "--source", &source])
            .args([
                "--start",
                "2025-02-18T00:00:00Z",
                "--end",
                "2025-02-19T23:59:59Z",
            ])
            .args([
                "--regions",
                "us-east-1,eu-west-1",
                "--fail-on",
                "none",
                "--quiet",
                "--output",
            ])
            .arg(&out_dir);
        let out = common::run(cmd).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = common::read_report(&out_dir);
        let accounts = report["accounts"].as_array().unwrap();
        let by_id = |id: &str| {
            accounts
                .iter()
                .find(|a| a["account_id"] == id)
                .unwrap_or_else(|| panic!("{id} in {accounts:?}"))
        };
        let status = |id: &str| {
            by_id(id)["coverage"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(status(&org[0]), "complete", "{source}");
        assert_eq!(status(&org[3]), "skipped", "{source}");
        assert_eq!(status(&org[4]), "failed", "{source}: no file at all");
        assert_eq!(status(&org[1]), "partial", "{source}");
        let reason = by_id(&org[1])["coverage"]["regions"]["eu-west-1"]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains("no trail file on 2025-02-19"), "{reason}");
        assert_eq!(status(&org[2]), "partial", "{source}");
        let trail = &report["run"]["trail"];
        let missing = &trail["partitions"][&org[2]]["us-east-1"]["integrity"]["missing"];
        let deleted = m.files.iter().find(|f| f.deleted).unwrap();
        assert_eq!(missing[0], deleted.key.as_str(), "{source}");
        let sigs = trail["integrity"]["signatures_checked"].as_u64().unwrap();
        if source.starts_with("s3://") {
            assert!(sigs > 0);
        } else {
            assert_eq!(sigs, 0);
            let notes = &trail["partitions"][&org[0]]["us-east-1"]["integrity"]["notes"];
            assert!(notes[0]
                .as_str()
                .unwrap()
                .contains("signatures not checked: local copy"));
        }
        assert_eq!(report["run"]["complete"], false);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_mid_stream_is_resumed_with_a_range_request() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), &spec()).unwrap();
    let q = query();
    let (r, stats) = via_sim_s3_cut(dir.path(), &q, true).await;
    let c = &r.coverage;
    assert!(c.bad_files.is_empty(), "{:?}", c.bad_files);
    assert_eq!(ids(&r), common::expected(&m, &q));
    // Every log file was cut once and resumed once; its hash still matches.
    assert_eq!(c.integrity.files_validated, c.files_read);
    assert_eq!(
        stats.calls.get("GetObject").copied().unwrap_or(0),
        c.integrity.digests_read + 2 * c.files_read
    );
}

/// Digests copied without their metadata (no `.sig` sidecar: no
/// `x-amz-meta-signature`): all of a partition's unsigned is a copy, checked
/// like a local one and said so; one unsigned among signed ones is broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_without_signature_metadata_over_s3() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.accounts.truncate(1);
    s.regions.truncate(1);
    let m = generate(dir.path(), &s).unwrap();
    let sig = |k: &str| {
        dir.path()
            .join(format!("{k}{}", sim::trail_gen::SIGNATURE_SUFFIX))
    };
    // One sidecar gone: that digest is broken, its files unproven.
    std::fs::remove_file(sig(&m.digests[30])).unwrap();
    let q = query();
    let (r, _) = via_sim_s3(dir.path(), &q).await;
    let i = &r.coverage.integrity;
    assert_eq!(i.digests_broken, 1, "{i:#?}");
    let p = &r.coverage.partitions[A1][&s.regions[0]].integrity;
    assert!(p.broken_digests[0].contains("no signature in the object's metadata"));
    // Every sidecar gone: signatures not checked, everything else is.
    for d in &m.digests {
        let _ = std::fs::remove_file(sig(d));
    }
    let (r, _) = via_sim_s3(dir.path(), &q).await;
    let i = &r.coverage.integrity;
    assert_eq!(
        i.digests_broken + i.files_unlisted + i.files_missing,
        0,
        "{i:#?}"
    );
    assert_eq!(i.files_validated, r.coverage.files_read);
    assert_eq!(i.signatures_checked, 0);
    let p = &r.coverage.partitions[A1][&s.regions[0]].integrity;
    assert!(
        p.notes[0].contains("no digest object carries x-amz-meta-signature"),
        "{:?}",
        p.notes
    );
}
