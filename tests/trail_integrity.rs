//! Trail integrity, gaps and hostile files: generated trees with digest files
//! (signed with the generator's test key), damaged on purpose, read from a
//! local folder, through the simulator's S3 (the real SDK), and through the
//! real binary. Every damage must be named and make the run incomplete; an
//! intact tree must validate with every file checked.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::gen::{generate, FileRef, GenManifest, GenSpec, Tamper};
use ssm_session_audit::trail::{read_dir, DayPlan, TrailQuery, TrailResult};

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
    assert_eq!(ids(&r), m.expected(&q));
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
    for (a, reg) in [(A1, "eu-west-1"), (A1, "us-east-1"), (A2, "eu-west-1"), (A2, "us-east-1")] {
        let rc = p(a, reg).to_region_coverage();
        assert_eq!(rc.status, ssm_session_audit::model::RegionStatus::Failed, "{a} {reg}");
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
    assert!(r.coverage.missing_days.is_empty(), "{:?}", r.coverage.missing_days);
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
    std::io::Write::write_all(&mut f, &gz(br#"{"Records":[{"eventSource":"ssm.amazonaws.com"}"#))
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
    let bomb = day_dir.join(format!("{A1}_CloudTrail_us-east-1_20250219T0333Z_BOMB.json.gz"));
    write_bomb(&bomb, 4);
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 8 << 20, "a small object: {size}");
    // A record of 40 MB inside an otherwise good file.
    let giant = day_dir.join(format!("{A1}_CloudTrail_us-east-1_20250219T0334Z_GIANT.json"));
    std::fs::write(
        &giant,
        format!(r#"{{"Records":[{{"eventSource":"x","pad":"{}"}}]}}"#, "a".repeat(40 << 20)),
    )
    .unwrap();
    let before = peak_rss_mb();
    let q = query();
    let r = read_dir(dir.path(), &q, 2).unwrap();
    let after = peak_rss_mb();
    assert_eq!(ids(&r), m.expected(&q), "every other file is read");
    let bad: Vec<(String, String)> = r
        .coverage
        .bad_files
        .iter()
        .map(|b| (b.path.rsplit('/').next().unwrap().to_string(), b.error.clone()))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].0.contains("BOMB") && bad[0].1.contains("inflates past the limit"), "{bad:?}");
    assert!(bad[1].0.contains("GIANT") && bad[1].1.contains("larger than the 16 MiB"), "{bad:?}");
    // The bomb was inflated up to the cap (1 GiB), streaming: the process grew
    // by the giant file's window, never by a file's inflated size.
    let bomb_scan_bytes = r.coverage.bytes_uncompressed;
    assert!(bomb_scan_bytes > 1 << 30, "{bomb_scan_bytes}");
    assert!(after.saturating_sub(before) < 300, "{before} MB -> {after} MB");
    assert_eq!(
        r.coverage.partitions[A1]["us-east-1"].to_region_coverage().status,
        ssm_session_audit::model::RegionStatus::Failed
    );
}

