//! The binary's own surface: the README's usage stays in step with `--help`,
//! and the demo runs the whole pipeline and shows every flag.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

fn long_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.len() > 1 {
            out.insert(name);
        }
    }
    out
}

#[test]
fn readme_usage_lists_exactly_the_scan_flags() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- usage:scan -->")
        .expect("README has the scan usage block");
    let end = readme
        .find("<!-- /usage:scan -->")
        .expect("README closes the scan usage block");
    let documented = long_flags(&readme[start..end]);
    let help = Command::new(common::BIN)
        .args(["scan", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let mut actual = long_flags(&String::from_utf8_lossy(&help.stdout));
    actual.remove("help");
    assert_eq!(documented, actual, "README usage block vs `scan --help`");
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let out = Command::new(common::BIN)
        .args(["scan", "--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--concurrency"), "{err}");
    let out = Command::new(common::BIN)
        .args(["scan", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_the_pipeline_and_shows_every_flag() {
    let t = common::tempdir();
    let dir = t.path().join("demo");
    let started = std::time::Instant::now();
    let out = Command::new(common::BIN)
        .args(["demo", "--output"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the demo org is incomplete on purpose:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("demo took {:?}", started.elapsed());
    let report = common::read_report(&dir);
    let flags: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    let all: BTreeSet<&str> = ssm_session_audit::model::Flag::ALL
        .iter()
        .map(|f| f.as_str())
        .collect();
    assert_eq!(flags, all, "the demo plants one case of every flag");
    let statuses: BTreeSet<&str> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["coverage"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["complete", "failed", "skipped"].into_iter().collect()
    );
    for f in [
        "report.json",
        "events.csv",
        "sessions.csv",
        "accounts.csv",
        "findings.csv",
        "report.html",
        "events.ocsf.jsonl",
        "findings.ocsf.jsonl",
        "SHA256SUMS",
    ] {
        assert!(dir.join(f).exists(), "{f} written");
    }
    assert!(
        stdout.contains("root-session"),
        "the summary names the flags:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("open in a browser: {}", dir.join("report.html").display())),
        "the demo prints the page's path:\n{stdout}"
    );
}

#[tokio::test]
async fn no_credentials_at_all_is_exit_2_and_says_how_to_fix_it() {
    let mut cmd = common::command("http://127.0.0.1:9");
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    cmd.args(["scan", "--regions", "us-east-1", "--since", "1h", "--quiet"]);
    let out = common::run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no usable AWS credentials") && err.contains("AWS_PROFILE"),
        "{err}"
    );
}
