//! The binary's own surface: the README's usage stays in step with `--help`,
//! and the demo runs the whole pipeline and shows every flag.

use crate::common;

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

/// The long flags of the README's `<!-- usage:COMMAND -->` block are exactly
/// those of `COMMAND --help`.
fn assert_readme_usage_matches_help(command: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let open = format!("<!-- usage:{command} -->");
    let close = format!("<!-- /usage:{command} -->");
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("README has the {command} usage block"));
    let end = readme
        .find(&close)
        .unwrap_or_else(|| panic!("README closes the {command} usage block"));
    let documented = long_flags(&readme[start..end]);
    let help = Command::new(common::BIN)
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let mut actual = long_flags(&String::from_utf8_lossy(&help.stdout));
    actual.remove("help");
    assert_eq!(
        documented, actual,
        "README usage block vs `{command} --help`"
    );
}

#[test]
fn readme_usage_lists_exactly_the_scan_flags() {
    assert_readme_usage_matches_help("scan");
}

#[test]
fn readme_usage_lists_exactly_the_active_flags() {
    assert_readme_usage_matches_help("active");
}

#[test]
fn readme_usage_lists_exactly_the_iam_and_schedule_flags() {
    assert_readme_usage_matches_help("iam");
    assert_readme_usage_matches_help("schedule");
}

#[test]
fn the_external_id_comes_from_the_environment_the_schedule_fills_and_help_hides_it() {
    let env = ssm_session_audit::templates::schedule::EXTERNAL_ID_ENV;
    let help = Command::new(common::BIN)
        .args(["scan", "--help"])
        .env(env, "do-not-show-me-4242")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains(&format!("[env: {env}]")), "{text}");
    assert!(!text.contains("do-not-show-me-4242"), "{text}");
}

#[test]
fn schedule_checks_the_scan_options_like_the_scan_does() {
    let t = common::tempdir();
    let out = Command::new(common::BIN)
        .args(["schedule", "--regions", "us-east-1,moon-1", "--output"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--regions") && err.contains("moon-1"), "{err}");
    assert!(!t.path().join("scheduled-scan.json").exists());

    let out = Command::new(common::BIN)
        .args([
            "schedule",
            "--regions",
            "us-east-1",
            "--fail-on",
            "MEDIUM",
            "--output",
        ])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(t.path().join("scheduled-scan.json")).unwrap();
    // As the scan reads it: lower case.
    assert!(
        text.contains("\"medium\"") && !text.contains("MEDIUM"),
        "{text}"
    );
    assert!(text.contains("\"us-east-1\""));
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
        stdout.contains(&format!(
            "open in a browser: {}",
            dir.join("report.html").display()
        )),
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
