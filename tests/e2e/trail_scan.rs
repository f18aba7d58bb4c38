//! `scan --source DIR`: the same report from organization-trail files, with
//! account names from Organizations (the simulator) and the trail's own coverage.

use crate::common;

use std::collections::BTreeSet;

use chrono::{NaiveDate, TimeZone, Utc};
use common::*;
use sim::trail_gen::{generate, GenSpec};
use sim::{SimConfig, Simulator};
use ssm_session_audit::model::TimeWindow;
use ssm_session_audit::trail::{TrailQuery, MAX_DELIVERY_LAG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trail_files_give_the_same_report_and_name_what_they_could_not_read() {
    let sim = Simulator::start(SimConfig {
        accounts: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let org: Vec<String> = sim.accounts().iter().map(|a| a.id.clone()).collect();
    let t = tempdir();
    let root = t.path().join("trail");
    let first_day = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let spec = GenSpec {
        // The last account of the organization has no trail file at all.
        accounts: org[..3].to_vec(),
        corrupt_files: 2,
        malformed_records: 1,
        ..GenSpec::small(first_day)
    };
    let manifest = generate(&root, &spec).unwrap();
    let window = TimeWindow {
        start: Utc.with_ymd_and_hms(2025, 3, 1, 6, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0).unwrap(),
    };
    let dir = out_dir(&t);
    let mut cmd = command(&sim.endpoint());
    cmd.args(["scan", "--source"])
        .arg(&root)
        .args([
            "--start",
            &window.start.to_rfc3339(),
            "--end",
            &window.end.to_rfc3339(),
        ])
        .args([
            "--regions",
            "eu-west-1,us-east-1",
            "--fail-on",
            "none",
            "--quiet",
            "--output",
        ])
        .arg(&dir);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "corrupt files and an account without files make the run incomplete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&dir);

    let want = common::expected(&manifest, &TrailQuery::new(window));
    let have: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(have.len(), want.len(), "no event twice");
    assert_eq!(
        have.into_iter().collect::<BTreeSet<_>>(),
        want,
        "exactly the session records in the window"
    );
    assert!(!want.is_empty());

    // Names come from Organizations; the account without files is not "no activity".
    let names = sim.accounts();
    assert_eq!(
        account(&report, &org[1])["account_name"],
        names[1].name.as_str()
    );
    assert_eq!(account(&report, &org[3])["coverage"]["status"], "failed");
    // Every corrupt file is named.
    let bad: BTreeSet<String> = report["run"]["trail"]["bad_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].as_str().unwrap().to_string())
        .collect();
    let corrupt: Vec<_> = manifest.files.iter().filter(|f| f.corrupt).collect();
    assert!(!corrupt.is_empty());
    let mut named = 0;
    for f in corrupt {
        // A file delivered before the window opened cannot hold its records: it is
        // rightly never opened. Every other corrupt file must be named.
        if f.delivered >= window.start && f.delivered <= window.end + MAX_DELIVERY_LAG {
            assert!(
                bad.iter().any(|p| p.ends_with(&f.key)),
                "{} is named among {bad:?}",
                f.key
            );
            named += 1;
        }
    }
    assert!(named > 0, "the window holds a corrupt file");
    assert_eq!(bad.len(), named);
    assert_eq!(report["run"]["complete"], false);
    assert!(report["run"]["source"]
        .as_str()
        .unwrap()
        .starts_with("dir:"));
    sim.shutdown().await;
}
