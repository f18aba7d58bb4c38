use super::*;

fn now() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

fn file(text: &str) -> FileConfig {
    parse_file_str(text, Path::new("audit.toml")).unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn defaults() -> Config {
    resolve(&FlagValues::default(), None, now()).unwrap()
}

#[test]
fn defaults_match_product() {
    let c = defaults();
    assert_eq!(c.scan.regions, RegionSelection::All);
    assert_eq!(
        c.scan.event_names,
        strings(&["StartSession", "ResumeSession", "TerminateSession"])
    );
    assert_eq!(c.scan.window.end, now());
    assert_eq!(c.scan.window.start, now() - TimeDelta::days(7));
    assert_eq!(c.scan.concurrency, None, "sized by the run");
    assert_eq!(c.scan.lookup_rate, 2.0);
    assert_eq!(c.scan.call_timeout, Duration::from_secs(20));
    assert_eq!(c.scan.retry_deadline, Duration::from_secs(300));
    assert_eq!(c.scan.source, Source::LookupEvents);
    assert_eq!(c.accounts.role_name, "SessionAuditRole");
    assert_eq!(c.accounts.external_id, None);
    assert_eq!(c.accounts.session_name, "ssm-session-audit");
    assert_eq!(c.accounts.session_duration, Duration::from_secs(3600));
    assert!(c.accounts.include.is_empty() && c.accounts.exclude.is_empty());
    assert!(c.accounts.organizational_units.is_empty());
    assert!(c.rules.approved_cidrs.is_empty() && c.rules.allowed_regions.is_empty());
    assert_eq!(c.rules.tunnel_documents, strings(&DEFAULT_TUNNEL_DOCUMENTS));
    assert_eq!(c.rules.denied_threshold, 3);
    assert_eq!(c.rules.denied_window, TimeDelta::hours(1));
    assert_eq!(c.rules.fanout_targets, 3);
    assert_eq!(c.rules.fanout_window, TimeDelta::hours(1));
    assert_eq!(c.rules.max_session, TimeDelta::hours(8));
    assert!(!c.rules.require_reason);
    assert!(c.scan.session_manager);
    let bh = &c.rules.business_hours;
    assert_eq!(bh.timezone, chrono_tz::UTC);
    assert_eq!(
        bh.days,
        vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri
        ]
    );
    assert_eq!(bh.start, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    assert_eq!(bh.end, NaiveTime::from_hms_opt(19, 0, 0).unwrap());
    assert_eq!(
        c.report.output,
        OutputLocation::Dir(PathBuf::from("reports"))
    );
    assert_eq!(c.report.object_lock_days, None);
    assert_eq!(c.scan.settle, Duration::from_secs(900));
    assert_eq!(c.scan.settled_until, now() - TimeDelta::minutes(15));
    assert!(!c.scan.since_last);
    assert_eq!(c.scan.resolved_at, now());
    assert_eq!(
        c.report.formats,
        vec![Format::Json, Format::Csv, Format::Html]
    );
    assert_eq!(c.report.fail_on, Some(Severity::High));
    assert_eq!(c.baseline, None);
    assert_eq!(c.config_file, None);
}

#[test]
fn example_file_sets_every_key_to_its_default() {
    let text = include_str!("../../config.example.toml");
    let fc = parse_file_str(text, Path::new("config.example.toml")).unwrap();
    // Destructured in full, so a new key fails to compile here until the
    // example documents it.
    let FileScan {
        regions,
        event_names,
        since,
        start,
        end,
        concurrency,
        lookup_rate,
        call_timeout,
        retry_deadline,
        session_manager,
        settle,
    } = &fc.scan;
    assert!(settle.is_some());
    assert!(regions.is_some() && event_names.is_some() && since.is_some());
    assert!(
        start.is_none() && end.is_none(),
        "start/end are alternatives to since"
    );
    assert!(lookup_rate.is_some());
    assert!(concurrency.is_none(), "no default: the scan sizes it");
    assert!(call_timeout.is_some() && retry_deadline.is_some());
    assert!(session_manager.is_some());
    let FileAccounts {
        role_name,
        external_id,
        session_name,
        session_duration,
        include,
        exclude,
        organizational_units,
    } = &fc.accounts;
    assert!(role_name.is_some() && external_id.is_some() && session_name.is_some());
    assert!(session_duration.is_some() && include.is_some() && exclude.is_some());
    assert!(organizational_units.is_some());
    let FileRules {
        approved_cidrs,
        allowed_regions,
        trusted_accounts,
        tunnel_documents,
        denied_threshold,
        denied_window,
        fanout_targets,
        fanout_window,
        max_session,
        require_reason,
        business_hours,
    } = &fc.rules;
    assert!(approved_cidrs.is_some() && allowed_regions.is_some());
    assert!(trusted_accounts.is_some() && tunnel_documents.is_some());
    assert!(denied_threshold.is_some() && denied_window.is_some());
    assert!(fanout_targets.is_some() && fanout_window.is_some() && max_session.is_some());
    assert!(require_reason.is_some());
    let FileBusinessHours {
        timezone,
        days,
        start,
        end,
    } = business_hours;
    assert!(timezone.is_some() && days.is_some() && start.is_some() && end.is_some());
    let FileReport {
        output,
        formats,
        fail_on,
        object_lock_days,
        security_hub,
        security_hub_region: _,
    } = &fc.report;
    assert!(output.is_some() && formats.is_some() && fail_on.is_some());
    assert!(
        object_lock_days.is_none(),
        "no default: shown commented out"
    );
    assert!(security_hub.is_some());

    let FileAthena {
        table,
        workgroup,
        output,
        region,
        catalog,
        max_scan,
        trail,
    } = &fc.athena;
    assert!(workgroup.is_some() && catalog.is_some());
    assert!(
        table.is_none()
            && output.is_none()
            && region.is_none()
            && max_scan.is_none()
            && trail.is_none(),
        "keys without a default are shown commented out"
    );

    let from_example = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    let expected = Config {
        config_file: Some(PathBuf::from("config.example.toml")),
        ..defaults()
    };
    assert_eq!(from_example, expected);
}

#[test]
fn flag_wins_over_file_wins_over_default() {
    let fc = file(
        "[scan]\nconcurrency = 8\nlookup_rate = 1.5\nregions = [\"eu-west-1\"]\n\
             [accounts]\nrole_name = \"FileRole\"\nexternal_id = \"file-id\"\n\
             [report]\nfail_on = \"low\"\nformats = [\"csv\"]\noutput = \"from-file\"\n",
    );
    // File over default.
    let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    assert_eq!(c.scan.concurrency, Some(8));
    assert_eq!(c.scan.lookup_rate, 1.5);
    assert_eq!(
        c.scan.regions,
        RegionSelection::List(strings(&["eu-west-1"]))
    );
    assert_eq!(c.accounts.role_name, "FileRole");
    assert_eq!(c.accounts.external_id.as_deref(), Some("file-id"));
    assert_eq!(c.report.fail_on, Some(Severity::Low));
    assert_eq!(c.report.formats, vec![Format::Csv]);
    assert_eq!(
        c.report.output,
        OutputLocation::Dir(PathBuf::from("from-file"))
    );
    // Untouched keys keep their defaults.
    assert_eq!(c.rules, defaults().rules);
    assert_eq!(c.config_file, Some(PathBuf::from("audit.toml")));

    // Flag over file.
    let flags = FlagValues {
        concurrency: Some(100),
        lookup_rate: Some(0.5),
        regions: Some(strings(&["all"])),
        role_name: Some("FlagRole".into()),
        external_id: Some(String::new()),
        fail_on: Some("none".into()),
        formats: Some(strings(&["json", "csv"])),
        output: Some(PathBuf::from("from-flag")),
        ..FlagValues::default()
    };
    let c = resolve(&flags, Some(&fc), now()).unwrap();
    assert_eq!(c.scan.concurrency, Some(100));
    assert_eq!(c.scan.lookup_rate, 0.5);
    assert_eq!(c.scan.regions, RegionSelection::All);
    assert_eq!(c.accounts.role_name, "FlagRole");
    assert_eq!(
        c.accounts.external_id, None,
        "an empty flag clears the file's id"
    );
    assert_eq!(c.report.fail_on, None);
    assert_eq!(c.report.formats, vec![Format::Json, Format::Csv]);
    assert_eq!(
        c.report.output,
        OutputLocation::Dir(PathBuf::from("from-flag"))
    );
}

#[test]
fn window_flags_replace_the_file_window_as_a_whole() {
    let fc = file("[scan]\nsince = \"2d\"\n");
    let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    assert_eq!(c.scan.window.start, now() - TimeDelta::days(2));
    // A flag start with the file's since is not a conflict: the flags win.
    let flags = FlagValues {
        start: Some("2025-02-27T00:00:00Z".into()),
        ..FlagValues::default()
    };
    let c = resolve(&flags, Some(&fc), now()).unwrap();
    assert_eq!(
        c.scan.window.start,
        "2025-02-27T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(c.scan.window.end, now(), "end defaults to now");
    let flags = FlagValues {
        since: Some("1h30m".into()),
        ..FlagValues::default()
    };
    let c = resolve(&flags, Some(&fc), now()).unwrap();
    assert_eq!(c.scan.window.start, now() - TimeDelta::minutes(90));
}

#[test]
fn start_and_end_with_offsets_become_utc() {
    let flags = FlagValues {
        start: Some("2025-02-20T10:00:00+02:00".into()),
        end: Some("2025-02-21T00:00:00Z".into()),
        ..FlagValues::default()
    };
    let c = resolve(&flags, None, now()).unwrap();
    assert_eq!(
        c.scan.window.start,
        "2025-02-20T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        c.scan.window.end,
        "2025-02-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
}

#[test]
fn ninety_days_is_allowed_and_trail_files_reach_further() {
    let flags = FlagValues {
        since: Some("90d".into()),
        ..FlagValues::default()
    };
    assert!(resolve(&flags, None, now()).is_ok());
    let flags = FlagValues {
        since: Some("400d".into()),
        source: Some("./trail".into()),
        ..FlagValues::default()
    };
    let c = resolve(&flags, None, now()).unwrap();
    assert_eq!(c.scan.source, Source::Dir(PathBuf::from("./trail")));
    assert_eq!(c.scan.window.start, now() - TimeDelta::days(400));
}

#[test]
fn source_parsing() {
    let parse = |s: &str| parse_source(s, &Origin::Flag("--source")).unwrap();
    assert_eq!(
        parse("s3://org-trail/logs/AWSLogs/"),
        Source::S3 {
            bucket: "org-trail".into(),
            prefix: "logs/AWSLogs".into()
        }
    );
    assert_eq!(
        parse("s3://org-trail"),
        Source::S3 {
            bucket: "org-trail".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        parse("/var/trail"),
        Source::Dir(PathBuf::from("/var/trail"))
    );
    assert_eq!(
        parse("trail files"),
        Source::Dir(PathBuf::from("trail files"))
    );
    assert_eq!(defaults().scan.source, Source::LookupEvents);
    assert_eq!(
        parse("athena:Audit.org_trail"),
        Source::Athena {
            database: "audit".into(),
            table: "org_trail".into()
        }
    );
    for bad in [
        "athena:",
        "athena:audit",
        "athena:a.b;drop",
        "athena:a.b'c",
        "ftp://x",
    ] {
        assert!(
            parse_source(bad, &Origin::Flag("--source")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn athena_settings() {
    let fc = file(
        "[athena]\ntable = \"audit.trail\"\nworkgroup = \"audits\"\noutput = \"s3://results-bucket/athena/\"\n\
         region = \"eu-west-1\"\nmax_scan = \"10GB\"\ntrail = \"s3://trail-bucket/AWSLogs/o-a1b2c3d4e5/\"\n",
    );
    let flags = FlagValues {
        source: Some("athena".into()),
        since: Some("400d".into()),
        ..FlagValues::default()
    };
    let c = resolve(&flags, Some(&fc), now()).unwrap();
    assert_eq!(
        c.scan.source,
        Source::Athena {
            database: "audit".into(),
            table: "trail".into()
        }
    );
    assert_eq!(c.athena.workgroup, "audits");
    assert_eq!(
        c.athena.output.as_deref(),
        Some("s3://results-bucket/athena/")
    );
    assert_eq!(c.athena.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.athena.max_scan, Some(10 << 30));
    assert_eq!(c.athena.trail.as_ref().unwrap().bucket, "trail-bucket");
    // The flag wins over the file.
    let flags = FlagValues {
        max_scan: Some("1MB".into()),
        ..flags
    };
    assert_eq!(
        resolve(&flags, Some(&fc), now()).unwrap().athena.max_scan,
        Some(1 << 20)
    );
    // Without a table, `--source athena` says where to put one.
    let e = resolve(
        &FlagValues {
            source: Some("athena".into()),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--source") && e.contains("[athena]"), "{e}");
    for (text, key) in [
        ("[athena]\nmax_scan = \"lots\"\n", "athena.max_scan"),
        ("[athena]\noutput = \"results\"\n", "athena.output"),
        ("[athena]\nregion = \"moon-1\"\n", "athena.region"),
        ("[athena]\nworkgroup = \"a b\"\n", "athena.workgroup"),
        ("[athena]\ntable = \"nodot\"\n", "athena.table"),
        ("[athena]\ntrail = \"s3://b/AWSLogs/\"\n", "athena.trail"),
    ] {
        let e = resolve(&FlagValues::default(), Some(&file(text)), now())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
    let e = parse_file_str("[athena]\nmax_scann = \"1GB\"\n", Path::new("a.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_scann"), "{e}");
}

#[test]
fn lists_accept_commas_and_drop_duplicates() {
    let flags = FlagValues {
        regions: Some(strings(&[
            "us-east-1,eu-west-1",
            "us-east-1",
            "us-gov-west-1",
        ])),
        accounts: Some(strings(&["111111111111, 222222222222"])),
        ou: Some(strings(&["ou-ab12-cdefgh34", "r-ab12"])),
        formats: Some(strings(&["csv,json,csv", "OCSF,html"])),
        ..FlagValues::default()
    };
    let c = resolve(&flags, None, now()).unwrap();
    assert_eq!(
        c.scan.regions,
        RegionSelection::List(strings(&["us-east-1", "eu-west-1", "us-gov-west-1"]))
    );
    assert_eq!(
        c.accounts.include,
        strings(&["111111111111", "222222222222"])
    );
    assert_eq!(
        c.accounts.organizational_units,
        strings(&["ou-ab12-cdefgh34", "r-ab12"])
    );
    assert_eq!(
        c.report.formats,
        vec![Format::Json, Format::Csv, Format::Html, Format::Ocsf]
    );
}

#[test]
fn rule_values_are_parsed() {
    let fc = file(
            "[rules]\napproved_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\", \"198.51.100.7\"]\n\
             denied_window = \"30m\"\nmax_session = \"1d12h\"\n\
             [rules.business_hours]\ntimezone = \"Europe/Paris\"\ndays = [\"sat\", \"Sun\", \"Sat\"]\n\
             start = \"22:00\"\nend = \"06:00\"\n",
        );
    let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    let cidrs: Vec<String> = c
        .rules
        .approved_cidrs
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        cidrs,
        strings(&["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"])
    );
    assert_eq!(c.rules.denied_window, TimeDelta::minutes(30));
    assert_eq!(c.rules.max_session, TimeDelta::hours(36));
    let bh = &c.rules.business_hours;
    assert_eq!(bh.timezone, chrono_tz::Europe::Paris);
    assert_eq!(bh.days, vec![Weekday::Sat, Weekday::Sun]);
    assert!(bh.end < bh.start, "overnight hours are kept as written");
}

#[test]
fn durations() {
    let ok = |s: &str| parse_duration(s).unwrap().as_secs();
    assert_eq!(ok("90s"), 90);
    assert_eq!(ok("90m"), 5400);
    assert_eq!(ok("1h"), 3600);
    assert_eq!(ok("7d"), 604_800);
    assert_eq!(ok("1h30m"), 5400);
    assert_eq!(ok("1d2h3m4s"), 93_784);
    for bad in [
        "",
        "7",
        "d",
        "1h1h",
        "30m1h",
        "1.5h",
        "-1h",
        "1 h",
        "99999999999999999999d",
        "1w",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn id_shapes() {
    assert!(is_region_name("us-east-1") && is_region_name("ap-southeast-5"));
    assert!(is_region_name("us-gov-west-1") && is_region_name("il-central-1"));
    for bad in [
        "us-east",
        "useast1",
        "US-EAST-1",
        "us-east-x",
        "u-east-1",
        "us--1",
    ] {
        assert!(!is_region_name(bad), "{bad}");
    }
    assert!(is_ou_id("ou-ab12-cdefgh34") && is_ou_id("r-ab12"));
    for bad in [
        "ou-ab12",
        "OU-ab12-cdefgh34",
        "r-",
        "ou-ab12-short",
        "x-ab12",
    ] {
        assert!(!is_ou_id(bad), "{bad}");
    }
    assert!(is_account_id("012345678901"));
    assert!(!is_account_id("12345678901") && !is_account_id("01234567890a"));
}

#[test]
fn digest_is_stable_and_tracks_what_changes_the_report() {
    let a = defaults();
    let d = config_digest(&a);
    assert_eq!(d.len(), 64);
    assert!(d.bytes().all(|b| b.is_ascii_hexdigit()));
    // A later run of the same config has the same digest...
    let later = resolve(&FlagValues::default(), None, now() + TimeDelta::days(1)).unwrap();
    assert_eq!(config_digest(&later), d);
    // ...another output folder too...
    let mut out = a.clone();
    out.report.output = OutputLocation::Dir(PathBuf::from("elsewhere"));
    assert_eq!(config_digest(&out), d);
    // ...but a rule change does not.
    let mut rule = a.clone();
    rule.rules.denied_threshold = 4;
    assert_ne!(config_digest(&rule), d);
    let mut region = a.clone();
    region.scan.regions = RegionSelection::List(vec!["us-east-1".into()]);
    assert_ne!(config_digest(&region), d);
}

fn err(flags: FlagValues) -> String {
    resolve(&flags, None, now()).unwrap_err().to_string()
}

#[test]
fn an_end_in_the_future_is_refused_and_a_recent_one_is_not_settled() {
    let e = err(FlagValues {
        start: Some("2025-03-01T00:00:00Z".into()),
        end: Some("2025-03-01T12:00:01Z".into()),
        ..FlagValues::default()
    });
    assert!(e.starts_with("--end: invalid value"), "{e}");
    assert!(
        e.contains("in the future (now is 2025-03-01T12:00:00Z)"),
        "{e}"
    );
    let fc = file("[scan]\nstart = \"2025-03-01T00:00:00Z\"\nend = \"2025-03-02T00:00:00Z\"\n");
    let e = resolve(&FlagValues::default(), Some(&fc), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("scan.end in config file audit.toml"), "{e}");

    // Ending now is fine; the last 15 minutes are not settled.
    let c = resolve(
        &FlagValues {
            start: Some("2025-03-01T00:00:00Z".into()),
            end: Some("2025-03-01T12:00:00Z".into()),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert_eq!(c.scan.settled_until, now() - TimeDelta::minutes(15));
    // An end longer ago than the margin is settled to the end.
    let c = resolve(
        &FlagValues {
            start: Some("2025-02-01T00:00:00Z".into()),
            end: Some("2025-02-02T00:00:00Z".into()),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert_eq!(c.scan.settled_until, c.scan.window.end);
    // A window shorter than the margin is settled nowhere: its start.
    let c = resolve(
        &FlagValues {
            since: Some("10m".into()),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert_eq!(c.scan.settled_until, c.scan.window.start);
    // The margin is a setting; zero settles everything.
    let fc = file("[scan]\nsettle = \"0s\"\n");
    let c = resolve(&FlagValues::default(), Some(&fc), now()).unwrap();
    assert_eq!(c.scan.settled_until, now());
    let fc = file("[scan]\nsettle = \"soon\"\n");
    let e = resolve(&FlagValues::default(), Some(&fc), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("scan.settle"), "{e}");
}

#[test]
fn since_last_is_a_chain_and_needs_json() {
    let c = resolve(
        &FlagValues {
            since: Some("last".into()),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert!(c.scan.since_last);
    assert_eq!(c.scan.window.end, now());
    let fc = file("[scan]\nsince = \"LAST\"\n");
    assert!(
        resolve(&FlagValues::default(), Some(&fc), now())
            .unwrap()
            .scan
            .since_last
    );
    let e = err(FlagValues {
        since: Some("last".into()),
        formats: Some(vec!["csv".into()]),
        ..FlagValues::default()
    });
    assert!(e.starts_with("--format: invalid value"), "{e}");
    assert!(e.contains("report.json"), "{e}");
    let e = err(FlagValues {
        since: Some("lastweek".into()),
        ..FlagValues::default()
    });
    assert!(e.contains("or last"), "{e}");
}

#[test]
fn output_is_a_folder_or_an_s3_prefix_and_only_s3_is_locked() {
    let c = resolve(
        &FlagValues {
            output: Some(PathBuf::from("s3://evidence-bucket/audit/runs/")),
            object_lock_days: Some(400),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert_eq!(
        c.report.output,
        OutputLocation::S3 {
            bucket: "evidence-bucket".into(),
            prefix: "audit/runs".into()
        }
    );
    assert_eq!(
        c.report.output.to_string(),
        "s3://evidence-bucket/audit/runs"
    );
    assert_eq!(c.report.object_lock_days, Some(400));
    let c = resolve(
        &FlagValues {
            output: Some(PathBuf::from("s3://evidence-bucket")),
            ..FlagValues::default()
        },
        None,
        now(),
    )
    .unwrap();
    assert_eq!(c.report.output.to_string(), "s3://evidence-bucket");
    for (output, days, want) in [
        ("s3://Bad_Bucket/x", None, "is not an S3 bucket name"),
        ("s3://bucket/a//b", None, "empty, `.` or `..` part"),
        ("s3://bucket/../up", None, "empty, `.` or `..` part"),
        ("gs://bucket/x", None, "gs:// is not a supported output"),
        ("reports", Some(30), "Object Lock applies to S3 objects"),
        ("s3://bucket/x", Some(0), "1 to 36500 days"),
    ] {
        let e = err(FlagValues {
            output: Some(PathBuf::from(output)),
            object_lock_days: days,
            ..FlagValues::default()
        });
        assert!(e.contains(want), "{output}: {e}");
    }
    let fc = file("[report]\noutput = \"s3://bucket/p\"\nobject_lock_days = 36501\n");
    let e = resolve(&FlagValues::default(), Some(&fc), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("report.object_lock_days"), "{e}");
}
