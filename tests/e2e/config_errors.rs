//! Every config error, one test per row: the input, and what the message must
//! mention (the flag or the file and key, the bad value, the fix).

use std::path::Path;

use chrono::{DateTime, Utc};
use ssm_session_audit::config::{self, ConfigError, FlagValues};

const FILE: &str = "audit.toml";

fn now() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

/// Parses the file (if any), resolves, and returns the error message.
fn error_of(flags: FlagValues, file: Option<&str>) -> String {
    let result = match file {
        Some(text) => match config::parse_file_str(text, Path::new(FILE)) {
            Ok(fc) => config::resolve(&flags, Some(&fc), now()),
            Err(e) => Err(e),
        },
        None => config::resolve(&flags, None, now()),
    };
    match result {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn list(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

macro_rules! case {
    ($name:ident, flags: { $($field:ident : $value:expr),* $(,)? }, file: $file:expr, mentions: [$($needle:expr),+ $(,)?]) => {
        #[test]
        fn $name() {
            #[allow(clippy::needless_update)]
            let flags = FlagValues { $($field: $value,)* ..FlagValues::default() };
            let msg = error_of(flags, $file);
            eprintln!("{}: {msg}", stringify!($name));
            assert!(!msg.contains('\n'), "message is not one line: {msg}");
            for needle in [$($needle),+] {
                assert!(msg.contains(needle), "message {msg:?} does not mention {needle:?}");
            }
        }
    };
}

// --- the file itself -------------------------------------------------------
case!(unknown_key_names_file_line_and_table, flags: {}, file: Some("[scan]\nconcurency = 4\n"),
      mentions: ["audit.toml", "line 2", "concurency", "[scan]", "spelling"]);
case!(unknown_table, flags: {}, file: Some("[scna]\nregions = [\"all\"]\n"),
      mentions: ["audit.toml", "line 1", "scna"]);
case!(unknown_key_in_nested_table, flags: {},
      file: Some("[rules.business_hours]\ntimezone = \"UTC\"\nday = [\"Mon\"]\n"),
      mentions: ["audit.toml", "line 3", "day", "[rules.business_hours]"]);
case!(unknown_top_level_key, flags: {}, file: Some("output = \"x\"\n"),
      mentions: ["audit.toml", "line 1", "output"]);
case!(unknown_quoted_key_is_escaped, flags: {}, file: Some("[scan]\n\"x\\u001b[2J\" = 1\n"),
      mentions: ["audit.toml", "line 2", "x\\u{1b}[2J"]);
case!(wrong_type, flags: {}, file: Some("[scan]\nconcurrency = \"many\"\n"),
      mentions: ["audit.toml", "line 2", "invalid type", "[scan]"]);
case!(duration_not_quoted, flags: {}, file: Some("[rules]\nmax_session = 8\n"),
      mentions: ["audit.toml", "line 2", "quoted"]);
case!(toml_syntax, flags: {}, file: Some("[scan\nregions = []\n"),
      mentions: ["audit.toml", "line 1"]);

// --- window ----------------------------------------------------------------
case!(since_not_a_duration, flags: { since: s("7 days") }, file: None,
      mentions: ["--since", "\"7 days\"", "7d"]);
case!(since_unknown_unit, flags: { since: s("2y") }, file: None,
      mentions: ["--since", "\"2y\"", "unit"]);
case!(since_zero, flags: { since: s("0m") }, file: None, mentions: ["--since", "empty"]);
case!(file_since_bad, flags: {}, file: Some("[scan]\nsince = \"a week\"\n"),
      mentions: ["scan.since", "audit.toml", "a week"]);
case!(start_not_rfc3339, flags: { start: s("yesterday") }, file: None,
      mentions: ["--start", "yesterday", "RFC 3339"]);
case!(end_not_rfc3339, flags: { start: s("2025-02-20T00:00:00Z"), end: s("2025-02-31") }, file: None,
      mentions: ["--end", "2025-02-31", "RFC 3339"]);
case!(end_before_start, flags: { start: s("2025-02-20T00:00:00Z"), end: s("2025-02-19T00:00:00Z") }, file: None,
      mentions: ["--end", "2025-02-19T00:00:00Z", "not after the start"]);
case!(end_equal_start, flags: { start: s("2025-02-20T00:00:00Z"), end: s("2025-02-20T00:00:00Z") }, file: None,
      mentions: ["--end", "not after the start"]);
case!(file_end_before_start, flags: {},
      file: Some("[scan]\nstart = \"2025-02-20T00:00:00Z\"\nend = \"2025-02-01T00:00:00Z\"\n"),
      mentions: ["scan.end", "audit.toml", "not after the start"]);
case!(start_in_future, flags: { start: s("2025-03-02T00:00:00Z") }, file: None,
      mentions: ["--start", "future"]);
case!(since_beyond_lookup_events, flags: { since: s("91d") }, file: None,
      mentions: ["--since", "91d", "90 days", "--source"]);
case!(start_beyond_lookup_events, flags: { start: s("2024-11-01T00:00:00Z") }, file: None,
      mentions: ["--start", "90 days", "--source DIR", "s3://"]);
case!(file_start_beyond_lookup_events, flags: {},
      file: Some("[scan]\nstart = \"2024-01-01T00:00:00Z\"\nend = \"2024-01-02T00:00:00Z\"\n"),
      mentions: ["scan.start", "audit.toml", "90 days", "--source"]);
case!(since_and_start_flags, flags: { since: s("1d"), start: s("2025-02-20T00:00:00Z") }, file: None,
      mentions: ["--since", "--start", "cannot be used together"]);
case!(since_and_end_flags, flags: { since: s("1d"), end: s("2025-02-20T00:00:00Z") }, file: None,
      mentions: ["--since", "--end", "cannot be used together"]);
case!(since_and_start_in_file, flags: {},
      file: Some("[scan]\nsince = \"1d\"\nstart = \"2025-02-20T00:00:00Z\"\n"),
      mentions: ["scan.since", "scan.start", "audit.toml", "cannot be used together"]);
case!(end_without_start, flags: { end: s("2025-02-20T00:00:00Z") }, file: None,
      mentions: ["--end", "needs a start", "--start"]);

// --- scan ------------------------------------------------------------------
case!(concurrency_zero, flags: { concurrency: Some(0) }, file: None,
      mentions: ["--concurrency", "\"0\"", "1 to 1000"]);
case!(concurrency_too_high, flags: { concurrency: Some(1001) }, file: None,
      mentions: ["--concurrency", "\"1001\"", "1 to 1000"]);
case!(file_concurrency_negative, flags: {}, file: Some("[scan]\nconcurrency = -1\n"),
      mentions: ["scan.concurrency", "audit.toml", "\"-1\""]);
case!(lookup_rate_zero, flags: { lookup_rate: Some(0.0) }, file: None,
      mentions: ["--lookup-rate", "\"0\"", "at least 0.01"]);
// 1e-30 calls per second would be a wait longer than a Duration holds: a config error, not a panic.
case!(lookup_rate_tiny, flags: { lookup_rate: Some(1e-30) }, file: None,
      mentions: ["--lookup-rate", "at least 0.01"]);
case!(lookup_rate_too_high, flags: {}, file: Some("[scan]\nlookup_rate = 101\n"),
      mentions: ["scan.lookup_rate", "audit.toml", "101", "at most 100"]);
case!(lookup_rate_nan, flags: {}, file: Some("[scan]\nlookup_rate = nan\n"),
      mentions: ["scan.lookup_rate", "NaN"]);
case!(call_timeout_zero, flags: {}, file: Some("[scan]\ncall_timeout = \"0s\"\n"),
      mentions: ["scan.call_timeout", "audit.toml", "longer than zero"]);
case!(retry_deadline_bad, flags: {}, file: Some("[scan]\nretry_deadline = \"5 minutes\"\n"),
      mentions: ["scan.retry_deadline", "5 minutes"]);
case!(region_bad_shape, flags: { regions: list(&["us-east"]) }, file: None,
      mentions: ["--regions", "us-east", "us-east-1"]);
case!(region_all_mixed, flags: { regions: list(&["all,us-east-1"]) }, file: None,
      mentions: ["--regions", "all"]);
case!(regions_empty_in_file, flags: {}, file: Some("[scan]\nregions = []\n"),
      mentions: ["scan.regions", "audit.toml", "no region"]);
case!(file_region_bad, flags: {}, file: Some("[scan]\nregions = [\"us-east-1\", \"US-WEST-2\"]\n"),
      mentions: ["scan.regions[1]", "US-WEST-2"]);
case!(event_names_empty, flags: {}, file: Some("[scan]\nevent_names = []\n"),
      mentions: ["scan.event_names", "audit.toml"]);
case!(event_name_bad, flags: {}, file: Some("[scan]\nevent_names = [\"Start Session\"]\n"),
      mentions: ["scan.event_names[0]", "Start Session"]);
case!(source_other_scheme, flags: { source: s("gs://bucket/x") }, file: None,
      mentions: ["--source", "gs://", "s3://bucket/prefix"]);
case!(source_bad_bucket, flags: { source: s("s3://My_Bucket/x") }, file: None,
      mentions: ["--source", "My_Bucket", "bucket"]);
case!(source_empty, flags: { source: s("") }, file: None, mentions: ["--source"]);

// --- accounts --------------------------------------------------------------
case!(role_name_empty, flags: { role_name: s("") }, file: None,
      mentions: ["--role-name", "1 to 64"]);
case!(role_name_bad_char, flags: { role_name: s("audit/role") }, file: None,
      mentions: ["--role-name", "audit/role", "'/'"]);
case!(role_name_too_long, flags: {}, file: Some(&format!("[accounts]\nrole_name = \"{}\"\n", "r".repeat(65))),
      mentions: ["accounts.role_name", "audit.toml", "1 to 64"]);
case!(external_id_bad_char, flags: { external_id: s("abc def") }, file: None,
      mentions: ["--external-id", "not shown", "cannot contain"]);

/// The external id is a secret: a wrong one is described, never echoed.
#[test]
fn a_bad_external_id_is_not_echoed() {
    let long = "Qz".repeat(700);
    for id in ["s3cr3t zz", &long, "sécret-id"] {
        let flags = FlagValues {
            external_id: s(id),
            ..FlagValues::default()
        };
        let msg = error_of(flags, None);
        assert!(!msg.contains(id), "{msg}");
        let file = format!("[accounts]\nexternal_id = \"{id}\"\n");
        let msg = error_of(FlagValues::default(), Some(&file));
        assert!(
            !msg.contains(id) && msg.contains("accounts.external_id"),
            "{msg}"
        );
    }
}

/// The config digest records only whether an external id is set.
#[test]
fn the_config_digest_does_not_hold_the_external_id() {
    let digest = |id: Option<&str>| {
        let flags = FlagValues {
            external_id: id.map(str::to_string),
            ..FlagValues::default()
        };
        let cfg = config::resolve(&flags, None, now()).unwrap();
        config::config_digest(&cfg)
    };
    assert_eq!(digest(Some("first-secret")), digest(Some("second-secret")));
    assert_ne!(digest(Some("first-secret")), digest(None));
}
case!(session_name_bad, flags: {}, file: Some("[accounts]\nsession_name = \"a b\"\n"),
      mentions: ["accounts.session_name", "audit.toml", "a b"]);
case!(session_duration_short, flags: {}, file: Some("[accounts]\nsession_duration = \"5m\"\n"),
      mentions: ["accounts.session_duration", "audit.toml", "5m", "15m to 12h"]);
case!(account_id_short, flags: { accounts: list(&["12345678901"]) }, file: None,
      mentions: ["--accounts", "12345678901", "12 digits"]);
case!(account_id_letters, flags: { exclude_accounts: list(&["111111111111,abcdefghijkl"]) }, file: None,
      mentions: ["--exclude-accounts", "abcdefghijkl", "12 digits"]);
case!(file_exclude_bad, flags: {}, file: Some("[accounts]\nexclude = [\"1234\"]\n"),
      mentions: ["accounts.exclude[0]", "audit.toml", "1234"]);
case!(trusted_account_bad, flags: {}, file: Some("[rules]\ntrusted_accounts = [\"111111111111\", \"x\"]\n"),
      mentions: ["rules.trusted_accounts[1]", "audit.toml"]);
case!(ou_bad, flags: { ou: list(&["ou-abc"]) }, file: None,
      mentions: ["--ou", "ou-abc", "OU id"]);
case!(file_ou_bad, flags: {}, file: Some("[accounts]\norganizational_units = [\"Engineering\"]\n"),
      mentions: ["accounts.organizational_units[0]", "Engineering"]);

// --- rules -----------------------------------------------------------------
case!(cidr_bad_prefix, flags: {}, file: Some("[rules]\napproved_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"),
      mentions: ["rules.approved_cidrs[1]", "audit.toml", "10.0.0.0/33", "CIDR"]);
case!(cidr_not_ip, flags: {}, file: Some("[rules]\napproved_cidrs = [\"office\"]\n"),
      mentions: ["rules.approved_cidrs[0]", "office"]);
case!(allowed_region_bad, flags: {}, file: Some("[rules]\nallowed_regions = [\"Ireland\"]\n"),
      mentions: ["rules.allowed_regions[0]", "Ireland"]);
case!(tunnel_document_empty, flags: {}, file: Some("[rules]\ntunnel_documents = [\"\"]\n"),
      mentions: ["rules.tunnel_documents[0]", "every document"]);
case!(denied_threshold_zero, flags: {}, file: Some("[rules]\ndenied_threshold = 0\n"),
      mentions: ["rules.denied_threshold", "audit.toml", "\"0\"", "at least 1"]);
case!(fanout_targets_zero, flags: {}, file: Some("[rules]\nfanout_targets = 0\n"),
      mentions: ["rules.fanout_targets", "at least 1"]);
case!(denied_window_bad, flags: {}, file: Some("[rules]\ndenied_window = \"1 hour\"\n"),
      mentions: ["rules.denied_window", "1 hour"]);
case!(max_session_zero, flags: {}, file: Some("[rules]\nmax_session = \"0s\"\n"),
      mentions: ["rules.max_session", "longer than zero"]);
case!(timezone_unknown, flags: {}, file: Some("[rules.business_hours]\ntimezone = \"Europe/Pariss\"\n"),
      mentions: ["rules.business_hours.timezone", "audit.toml", "Europe/Pariss", "IANA"]);
case!(day_bad, flags: {}, file: Some("[rules.business_hours]\ndays = [\"Mon\", \"Funday\"]\n"),
      mentions: ["rules.business_hours.days[1]", "Funday", "Mon, Tue"]);
case!(days_empty, flags: {}, file: Some("[rules.business_hours]\ndays = []\n"),
      mentions: ["rules.business_hours.days", "at least one day"]);
case!(hours_start_bad, flags: {}, file: Some("[rules.business_hours]\nstart = \"8am\"\n"),
      mentions: ["rules.business_hours.start", "8am", "HH:MM"]);
case!(hours_end_out_of_range, flags: {}, file: Some("[rules.business_hours]\nend = \"25:00\"\n"),
      mentions: ["rules.business_hours.end", "25:00", "HH:MM"]);
case!(hours_equal, flags: {}, file: Some("[rules.business_hours]\nstart = \"09:00\"\nend = \"09:00\"\n"),
      mentions: ["rules.business_hours.end", "09:00"]);

// --- report ----------------------------------------------------------------
case!(format_unknown, flags: { formats: list(&["json,xml"]) }, file: None,
      mentions: ["--format", "xml", "json, csv"]);
case!(file_format_unknown, flags: {}, file: Some("[report]\nformats = [\"pdf\"]\n"),
      mentions: ["report.formats[0]", "audit.toml", "pdf", "html or ocsf"]);
case!(formats_empty, flags: { formats: list(&[""]) }, file: None, mentions: ["--format"]);
case!(fail_on_unknown, flags: { fail_on: s("severe") }, file: None,
      mentions: ["--fail-on", "severe", "none"]);
case!(file_fail_on_unknown, flags: {}, file: Some("[report]\nfail_on = \"warning\"\n"),
      mentions: ["report.fail_on", "audit.toml", "warning"]);
case!(security_hub_region_bad, flags: { security_hub: Some(true), security_hub_region: s("mars-1") },
      file: None, mentions: ["--security-hub-region", "mars-1", "us-east-1"]);
case!(security_hub_region_without_import, flags: { security_hub_region: s("eu-west-1") }, file: None,
      mentions: ["--security-hub-region", "eu-west-1", "--security-hub"]);
case!(file_security_hub_region_without_import, flags: {},
      file: Some("[report]\nsecurity_hub = false\nsecurity_hub_region = \"eu-west-1\"\n"),
      mentions: ["report.security_hub_region", "audit.toml", "report.security_hub = true"]);
case!(file_security_hub_not_a_bool, flags: {}, file: Some("[report]\nsecurity_hub = \"yes\"\n"),
      mentions: ["audit.toml", "line 2", "report.security_hub"]);

#[test]
fn unreadable_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = config::load_file(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn load_file_reads_and_records_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.toml");
    std::fs::write(&path, "[scan]\nconcurrency = 7\n").unwrap();
    let fc = config::load_file(&path).unwrap();
    assert_eq!(fc.scan.concurrency, Some(7));
    let cfg = config::resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    assert_eq!(cfg.config_file.as_deref(), Some(path.as_path()));
    // A value error in a loaded file names that file.
    std::fs::write(&path, "[scan]\nconcurrency = 0\n").unwrap();
    let fc = config::load_file(&path).unwrap();
    let err = config::resolve(&FlagValues::default(), Some(&fc), now()).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}
