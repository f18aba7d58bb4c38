//! Hostile input. Records an attacker shapes (malformed JSON, no userIdentity,
//! 100 KiB fields, ANSI escapes and control characters, spreadsheet formulas) must
//! not crash a scan, are counted in coverage, never reach the terminal raw and
//! never reach a spreadsheet as a formula. Config files and flags a user gets
//! wrong stop the run with exit 2, a message naming the key or flag, and no output.

use crate::common;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use sim::{SimConfig, Simulator};

/// Characters a terminal acts on: C0 controls but newline, DEL, C1 controls.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c))
        .collect()
}

fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text =
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"));
    let raw = raw_controls(&text);
    assert!(
        raw.is_empty(),
        "{what} holds raw control characters {raw:?}"
    );
}

/// Starts of a cell a spreadsheet runs as a formula.
fn formula_like(cell: &str) -> bool {
    matches!(
        cell.chars().next(),
        Some(
            '=' | '+' | '-' | '@' | '\t' | '\r' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}'
        )
    )
}

fn csv_cells(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_counted_and_reach_no_terminal_or_spreadsheet_raw() {
    let cfg = SimConfig {
        seed: 31,
        accounts: 3,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        latency: Duration::from_millis(1),
        hostile_records: true,
        sessions_per_partition: 3,
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let truth = sim.ground_truth(
        sim.config().window_start(),
        sim.config().window_end,
        &SESSION_NAMES,
    );
    // Two that are not JSON; one without userIdentity, one with a pipeline's
    // time format, one with wrong types.
    assert_eq!(truth.malformed.len(), 5, "the simulator plants five");
    let t = tempdir();
    // Every event is unapproved, so hostile principals and agents reach the
    // findings, the summary and -vv debug logs.
    let cmd = scan_command(
        &sim,
        &t,
        Some("[rules]\napproved_cidrs = [\"10.0.0.0/8\"]\n"),
        &["-vv"],
    );
    let dir = out_dir(&t);
    let (out, report) = scan_and_read(cmd, &dir).await;
    // Records not read in full are kept, but the run cannot call itself complete.
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(report["run"]["complete"], false);
    let reasons = report["run"]["incomplete_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0]
        .as_str()
        .unwrap()
        .contains("5 record(s) could not be read in full"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not be read in full"));

    // Counted in coverage, by id, in the partition they came from.
    assert_eq!(report["run"]["stats"]["malformed"], 5);
    let mut listed: Vec<String> = Vec::new();
    for a in report["accounts"].as_array().unwrap() {
        for r in a["coverage"]["regions"].as_object().unwrap().values() {
            assert_eq!(r["status"], "ok");
            for id in r["malformed_event_ids"].as_array().unwrap() {
                listed.push(id.as_str().unwrap().to_string());
            }
        }
    }
    listed.sort();
    assert_eq!(listed, ids(&truth.malformed));
    // Every record is there once, those read partially included, and only
    // those are marked so.
    assert_matches_ground_truth(&sim, &report);
    let events = report["events"].as_array().unwrap();
    for e in events {
        let id = e["event_id"].as_str().unwrap();
        let partial = e["parse_error"].as_str();
        assert_eq!(partial.is_some(), truth.malformed.contains(id), "{e:.300}");
        if let Some(why) = partial {
            assert!(
                !why.is_empty() && !why.chars().any(char::is_control),
                "{why:?}"
            );
            // LookupEvents' own fields always give the call and its time.
            assert_eq!(e["event_name"], "StartSession");
            assert!(e["event_time"].is_string());
        }
    }
    assert!(events.iter().any(|e| e["principal_type"] == "Unknown"));
    // What parsed of a record with a pipeline's time format is kept.
    assert!(events.iter().any(|e| e["parse_error"]
        .as_str()
        .is_some_and(|w| w.contains("eventTime"))
        && e["user_name"] == "odd.shape@example.com"));
    let huge = events
        .iter()
        .filter_map(|e| e["user_agent"].as_str())
        .map(str::len)
        .max()
        .unwrap();
    assert!(huge > 100 * 1024, "the 100 KiB agent is kept whole in JSON");
    assert!(events.iter().any(|e| e["user_agent"]
        .as_str()
        .is_some_and(|u| u.contains('\u{1b}'))));

    // The terminal: summary on stdout, logs on stderr.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unapproved-source-ip"),
        "the summary shows the findings"
    );
    assert_terminal_safe("stdout (summary)", &out.stdout);
    assert_terminal_safe("stderr (logs)", &out.stderr);

    // Spreadsheets: no cell of any CSV file starts like a formula, and the
    // formulas planted in user agents and user names are there, neutralised.
    let mut neutralised = 0;
    for f in ["events.csv", "sessions.csv", "accounts.csv", "findings.csv"] {
        for row in csv_cells(&dir.join(f)) {
            for cell in row {
                assert!(
                    !formula_like(&cell),
                    "{f}: cell {cell:.60?} starts a formula"
                );
                if cell.starts_with("'=HYPERLINK") || cell.starts_with("'+cmd") {
                    neutralised += 1;
                }
            }
        }
    }
    assert!(neutralised >= 3, "{neutralised} neutralised formula cells");
    sim.shutdown().await;
}

mod records {
    //! The record parser on its own with the shapes a scan cannot easily plant.
    use ssm_session_audit::event::{parse_record, parse_record_lenient};

    const GOOD: &str = r#"{"eventID":"e1","eventName":"StartSession","eventTime":"2026-11-01T10:00:00Z","eventSource":"ssm.amazonaws.com"}"#;

    #[test]
    fn shapes_that_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_obj = format!(
            "{{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":\"2026-11-01T10:00:00Z\",\"userIdentity\":{}1{}}}",
            "{\"a\":".repeat(50_000),
            "}".repeat(50_000)
        );
        for bad in [
            "",
            "\u{0}",
            "null",
            "[]",
            "\"StartSession\"",
            "{\"eventID\":1,\"eventName\":\"StartSession\",\"eventTime\":\"2026-11-01T10:00:00Z\"}",
            "{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":1700000000}",
            "{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":\"yesterday\"}",
            // A lone surrogate cannot become a Rust string: malformed, counted.
            "{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":\"2026-11-01T10:00:00Z\",\"userAgent\":\"\\ud800\"}",
            &deep,
            &deep_obj,
        ] {
            let err = parse_record(bad, "111111111111", "us-east-1");
            assert!(err.is_err(), "{:.80?} parsed", bad);
            let msg = err.unwrap_err().to_string();
            assert!(msg.chars().count() < 400, "error message is bounded: {}", msg.len());
            assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
        }
    }

    #[test]
    fn odd_records_are_kept_with_what_parsed() {
        // No userIdentity: kept, but not read in full.
        let e = parse_record_lenient(GOOD, "1", "r").unwrap();
        assert!(e.parse_error.is_some());
        assert!(
            parse_record(GOOD, "1", "r").is_err(),
            "strictly, it is not whole"
        );
        for (odd, whole) in [
            // userIdentity missing, or of the wrong type.
            (r#"{"eventID":"e","eventName":"StartSession","eventTime":"2026-11-01T10:00:00Z","userIdentity":"root"}"#, false),
            (r#"{"eventID":"e","eventName":"StartSession","eventTime":"2026-11-01T10:00:00Z","userIdentity":{"type":7,"arn":["x"]}}"#, false),
            // Control characters, NUL and ANSI escapes in caller-chosen fields.
            ("{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":\"2026-11-01T10:00:00Z\",\"userAgent\":\"\\u0000\\u001b[2J\\u009b31m\\r\\n\",\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"\\u001b]0;pwn\\u0007\"}}", true),
            // Wrong types in optional places.
            (r#"{"eventID":"e","eventName":"StartSession","eventTime":"2026-11-01T10:00:00Z","userIdentity":{"type":"Root"},"requestParameters":[1,2],"responseElements":"x","sourceIPAddress":{}}"#, false),
        ] {
            let e = parse_record_lenient(odd, "111111111111", "us-east-1")
                .unwrap_or_else(|err| panic!("{odd}: {err}"));
            assert_eq!(e.event_id, "e");
            assert_eq!(e.parse_error.is_none(), whole, "{odd}");
            if let Some(why) = e.parse_error {
                assert!(!why.chars().any(|c| c.is_control()), "{why:?}");
            }
        }
        let huge = format!(
            "{{\"eventID\":\"e\",\"eventName\":\"StartSession\",\"eventTime\":\"2026-11-01T10:00:00Z\",\"userAgent\":\"{}\"}}",
            "x".repeat(8 << 20)
        );
        let e = parse_record_lenient(&huge, "1", "r").unwrap();
        assert_eq!(e.user_agent.unwrap().len(), 8 << 20);
    }
}

mod config_and_flags {
    //! The binary with bad config files and flags: exit 2, one clear message on
    //! stderr naming the key or flag, and nothing written to --output.
    use super::*;

    /// Runs `scan` with `args` (and the config file, if any) against an endpoint
    /// nothing listens on: the run must stop before it calls anything.
    async fn usage_error(config: Option<&str>, args: &[&str], mentions: &[&str]) {
        let t = tempdir();
        let out_dir = t.path().join("out");
        let mut cmd = command("http://127.0.0.1:9");
        cmd.arg("scan").arg("--output").arg(&out_dir);
        if let Some(text) = config {
            cmd.arg("--config").arg(write_config(&t, text));
        }
        cmd.args(args);
        let out = run(cmd).await;
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for m in mentions {
            assert!(
                stderr.contains(m),
                "{args:?}: {stderr:?} does not mention {m:?}"
            );
        }
        assert_terminal_safe("stderr", &out.stderr);
        assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
        assert!(!out_dir.exists(), "{args:?} created --output");
    }

    #[tokio::test]
    async fn unknown_key() {
        usage_error(
            Some("[scan]\nconcurency = 4\n"),
            &[],
            &["audit.toml", "concurency"],
        )
        .await;
    }

    #[tokio::test]
    async fn wrong_type() {
        usage_error(
            Some("[scan]\nconcurrency = \"many\"\n"),
            &[],
            &["audit.toml", "line 2", "scan.concurrency"],
        )
        .await;
    }

    #[tokio::test]
    async fn bad_cidr() {
        usage_error(
            Some("[rules]\napproved_cidrs = [\"10.0.0.0/33\"]\n"),
            &[],
            &["rules.approved_cidrs", "10.0.0.0/33"],
        )
        .await;
    }

    #[tokio::test]
    async fn unknown_time_zone() {
        usage_error(
            Some("[rules.business_hours]\ntimezone = \"Mars/Olympus_Mons\"\n"),
            &[],
            &["timezone", "Mars/Olympus_Mons"],
        )
        .await;
    }

    #[tokio::test]
    async fn end_before_start() {
        let start = (Utc::now() - TimeDelta::days(2)).to_rfc3339();
        let end = (Utc::now() - TimeDelta::days(3)).to_rfc3339();
        usage_error(
            None,
            &["--start", &start, "--end", &end],
            &["--end", "not after the start"],
        )
        .await;
    }

    #[tokio::test]
    async fn window_beyond_90_days() {
        usage_error(None, &["--since", "120d"], &["--since", "90 days"]).await;
    }

    #[tokio::test]
    async fn zero_concurrency() {
        usage_error(
            None,
            &["--concurrency", "0"],
            &["--concurrency", "1 to 1000"],
        )
        .await;
    }

    #[tokio::test]
    async fn absurd_concurrency() {
        usage_error(None, &["--concurrency", "100000000"], &["--concurrency"]).await;
        usage_error(
            Some("[scan]\nconcurrency = -5\n"),
            &[],
            &["scan.concurrency"],
        )
        .await;
    }

    #[tokio::test]
    async fn not_a_number() {
        usage_error(None, &["--concurrency", "lots"], &["--concurrency"]).await;
        usage_error(None, &["--lookup-rate", "NaN"], &["--lookup-rate"]).await;
    }

    #[tokio::test]
    async fn unknown_flag() {
        usage_error(None, &["--concurency", "4"], &["--concurency"]).await;
    }

    #[tokio::test]
    async fn missing_or_binary_config_file() {
        let t = tempdir();
        let missing = t.path().join("nope.toml");
        usage_error(
            None,
            &["--config", missing.to_str().unwrap()],
            &["nope.toml"],
        )
        .await;
        let binary = t.path().join("binary.toml");
        std::fs::write(&binary, b"[scan]\nregions = [\"\xff\xfe\"]\n").unwrap();
        usage_error(
            None,
            &["--config", binary.to_str().unwrap()],
            &["binary.toml"],
        )
        .await;
    }

    #[tokio::test]
    async fn escape_sequences_in_a_config_file_reach_stderr_escaped() {
        usage_error(
            Some("[scan]\nregions = [\"\\u001b[2J\\u001b]0;pwned\\u0007\"]\n"),
            &[],
            &["scan.regions", "\\u{1b}[2J"],
        )
        .await;
    }

    #[tokio::test]
    async fn unwritable_output() {
        // The folder cannot be created (its parent is a file), or is not writable.
        let t = tempdir();
        let file = t.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        for output in [file.join("reports"), file.clone()] {
            let mut cmd = command("http://127.0.0.1:9");
            cmd.args([
                "scan",
                "--regions",
                "us-east-1",
                "--since",
                "1h",
                "--output",
            ])
            .arg(&output);
            let out = run(cmd).await;
            let stderr = stderr_of(&out);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("--output"), "{stderr}");
            assert!(stderr.contains(&output.display().to_string()), "{stderr}");
            assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is untouched");
        }
        #[cfg(target_os = "linux")]
        {
            let mut cmd = command("http://127.0.0.1:9");
            cmd.args(["scan", "--regions", "us-east-1", "--since", "1h"])
                .args(["--output", "/proc/self"]);
            let out = run(cmd).await;
            assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
            assert!(stderr_of(&out).contains("/proc/self"));
        }
    }
}
