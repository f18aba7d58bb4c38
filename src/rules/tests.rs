use super::config::BusinessHours;
use super::*;
use crate::session::build_sessions;
use crate::session::test_support::*;
use chrono::{NaiveTime, Weekday};
use proptest::prelude::*;

const ROOT: &str = "arn:aws:iam::111111111111:root";
const BOB: &str = "arn:aws:iam::111111111111:user/bob";

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

/// PRODUCT.md's defaults.
fn rules() -> RuleConfig {
    RuleConfig {
        approved_cidrs: vec![],
        allowed_regions: vec![],
        trusted_accounts: vec![],
        tunnel_documents: vec![
            "AWS-StartPortForwardingSession".into(),
            "AWS-StartPortForwardingSessionToRemoteHost".into(),
            "AWS-StartSSHSession".into(),
        ],
        denied_threshold: 3,
        denied_window: TimeDelta::hours(1),
        fanout_targets: 3,
        fanout_window: TimeDelta::hours(1),
        max_session: TimeDelta::hours(8),
        business_hours: BusinessHours {
            timezone: chrono_tz::UTC,
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: hm(8, 0),
            end: hm(19, 0),
        },
        require_reason: false,
    }
}

fn run_with(
    events: &[SessionEvent],
    rules: &RuleConfig,
    baseline: Option<&Baseline>,
) -> Vec<Finding> {
    evaluate(events, &build_sessions(events), rules, baseline)
}

fn run(events: &[SessionEvent]) -> Vec<Finding> {
    run_with(events, &rules(), None)
}

fn only(findings: &[Finding], flag: Flag) -> Vec<&Finding> {
    findings.iter().filter(|f| f.flag == flag).collect()
}

fn flags(findings: &[Finding]) -> Vec<Flag> {
    findings.iter().map(|f| f.flag).collect()
}

/// 2025-03-03 is a Monday.
fn mon(clock: &str) -> String {
    format!("2025-03-03T{clock}Z")
}

// ---- ordinary activity ---------------------------------------------

#[test]
fn an_ordinary_day_gives_no_finding() {
    let mut r = rules();
    r.approved_cidrs = vec!["203.0.113.0/24".parse().unwrap()];
    r.allowed_regions = vec!["us-east-1".into()];
    let events = vec![
        start("a1", &mon("09:00:00"), "alice-1", "i-0aaa1111"),
        resume("a2", &mon("09:30:00"), "alice-1"),
        terminate("a3", &mon("11:00:00"), "alice-1"),
        // A second target within the hour, and a session never terminated.
        start("a4", &mon("09:20:00"), "alice-2", "i-0bbb2222"),
        start("a5", &mon("14:00:00"), "alice-3", "i-0aaa1111").doc("AWS-StartInteractiveCommand"),
        // One denied call alone is not a burst.
        ev("a6", "StartSession", &mon("15:00:00"))
            .target("i-0ccc3333")
            .denied(),
        // A console session from an AWS-side source.
        start("a7", &mon("16:00:00"), "alice-4", "i-0aaa1111").ip(Some("AWS Internal")),
    ];
    let principal = events[0].principal_arn.clone();
    let baseline = Baseline::from_principals([principal]);
    assert_eq!(run_with(&events, &r, Some(&baseline)), vec![]);
}

// ---- per call ------------------------------------------------------

#[test]
fn root_session_one_finding_per_account_region_principal() {
    let root = |e: SessionEvent| e.principal("Root", ROOT, Some("111111111111"));
    let events = vec![
        root(start("r1", &mon("10:00:00"), "root-1", "i-1")),
        root(terminate("r2", &mon("10:05:00"), "root-1")),
        // Denied is still worth knowing.
        root(
            ev("r3", "StartSession", &mon("10:10:00"))
                .target("i-2")
                .denied(),
        ),
        root(start("r4", &mon("10:20:00"), "root-2", "i-3").region("eu-west-1")),
    ];
    let found = run(&events);
    let roots = only(&found, Flag::RootSession);
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0].region, "eu-west-1");
    assert_eq!(roots[0].event_ids, vec!["r4"]);
    assert_eq!(roots[0].session_id.as_deref(), Some("root-2"));
    assert_eq!(roots[1].event_ids, vec!["r1", "r2", "r3"]);
    assert_eq!(roots[1].session_id, None, "calls of several sessions");
    assert_eq!(roots[1].severity, Severity::Critical);
    assert_eq!(roots[1].principal_arn, ROOT);
    assert_eq!(
            roots[1].detail,
            "root user of account 111111111111 made 3 session calls (2 StartSession, 1 TerminateSession; 1 denied) from 2025-03-03T10:00:00Z to 2025-03-03T10:10:00Z on i-1, i-2"
        );
}

#[test]
fn iam_user_session_on_long_term_keys_only() {
    let bob = |id: &str| {
        start(id, &mon("10:00:00"), id, "i-1").principal("IAMUser", BOB, Some("111111111111"))
    };
    let found = run(&[bob("u1").key(Some("AKIAIOSFODNN7EXAMPLE"))]);
    assert_eq!(flags(&found), vec![Flag::IamUserSession]);
    assert_eq!(found[0].severity, Severity::Medium);
    assert_eq!(found[0].actor, BOB);
    assert!(
        found[0]
            .detail
            .starts_with("IAM user bob (long-term keys AKIAIOSFODNN7EXAMPLE) made 1 session call"),
        "{}",
        found[0].detail
    );
    // Console sign-in and GetSessionToken use temporary keys.
    assert_eq!(run(&[bob("u2").key(Some("ASIAIOSFODNN7EXAMPLE"))]), vec![]);
    // No key id recorded: long-term unless the session context says temporary.
    let mut no_key = bob("u3").key(None);
    no_key.mfa_authenticated = None;
    let found = run(&[no_key.clone()]);
    assert_eq!(flags(&found), vec![Flag::IamUserSession]);
    assert!(
        found[0].detail.contains("no access key id recorded"),
        "{}",
        found[0].detail
    );
    no_key.mfa_authenticated = Some(true);
    assert_eq!(run(&[no_key]), vec![]);
    // A role's AKIA-looking key is not an IAM user's.
    assert_eq!(
        run(&[start("u4", &mon("10:00:00"), "x", "i-1").key(Some("AKIAX"))]),
        vec![]
    );
}

#[test]
fn instance_role_caller() {
    let mut e = start("m1", &mon("10:00:00"), "i-0abc1234-x", "i-1");
    e.instance_role = true;
    let found = run(&[e]);
    assert_eq!(flags(&found), vec![Flag::InstanceRoleCaller]);
    assert_eq!(found[0].severity, Severity::High);
}

#[test]
fn cross_account_principal_unless_trusted_or_unknown() {
    let arn = "arn:aws:sts::222222222222:assumed-role/Ops/carol";
    let from = |account: Option<&str>| {
        vec![start("c1", &mon("10:00:00"), "carol-1", "i-1").principal("AssumedRole", arn, account)]
    };
    let found = run(&from(Some("222222222222")));
    assert_eq!(flags(&found), vec![Flag::CrossAccountPrincipal]);
    assert_eq!(
            found[0].detail,
            "arn:aws:sts::222222222222:assumed-role/Ops/carol of account 222222222222 (not trusted) made 1 session call (1 StartSession) at 2025-03-03T10:00:00Z on i-1 in account 111111111111"
        );

    let mut trusted = rules();
    trusted.trusted_accounts = vec!["222222222222".into()];
    assert_eq!(
        run_with(&from(Some("222222222222")), &trusted, None),
        vec![]
    );
    assert_eq!(
        run(&from(None)),
        vec![],
        "a missing principal account never fires"
    );
    assert_eq!(run(&from(Some("111111111111"))), vec![]);
}

#[test]
fn unapproved_source_ip_v4_v6_and_non_ips() {
    let nets: Vec<ipnet::IpNet> = vec![
        "203.0.113.0/24".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ];
    for (ip, fires) in [
        ("203.0.113.7", false),
        ("203.0.113.255", false),
        ("203.0.114.0", true),
        ("198.51.100.1", true),
        ("2001:db8::1", false),
        ("2001:db9::1", true),
        ("::ffff:203.0.113.9", false),
        ("::ffff:198.51.100.1", true),
        ("AWS Internal", false),
        ("ssm.amazonaws.com", false),
        ("", false),
        ("not an ip", false),
    ] {
        assert_eq!(is_unapproved_ip(ip, &nets), fires, "{ip:?}");
    }
    assert!(!is_unapproved_ip("198.51.100.1", &[]), "no list: rule off");

    let mut r = rules();
    r.approved_cidrs = nets;
    let events = vec![
        start("p1", &mon("10:00:00"), "a-1", "i-1").ip(Some("198.51.100.1")),
        start("p2", &mon("10:01:00"), "a-2", "i-1").ip(Some("198.51.100.1")),
        start("p3", &mon("10:02:00"), "a-3", "i-1").ip(Some("2001:db9::1")),
        start("p4", &mon("10:03:00"), "a-4", "i-1").ip(None),
        start("p5", &mon("10:04:00"), "a-5", "i-1").ip(Some("ssm.amazonaws.com")),
    ];
    let found = run_with(&events, &r, None);
    assert_eq!(
        flags(&found),
        vec![Flag::UnapprovedSourceIp; 2],
        "one per source IP"
    );
    let ids: Vec<_> = found.iter().map(|f| f.event_ids.clone()).collect();
    assert_eq!(ids, vec![vec!["p1", "p2"], vec!["p3"]]);
    assert_eq!(found[0].severity, Severity::High);
    assert!(found[0]
        .detail
        .contains("called from 198.51.100.1, outside approved_cidrs"));
    assert_eq!(run(&events), vec![], "empty approved_cidrs: rule off");
}

#[test]
fn unusual_region() {
    let events = vec![
        start("g1", &mon("10:00:00"), "a-1", "i-1").region("ap-southeast-2"),
        start("g2", &mon("10:00:00"), "a-2", "i-1"),
    ];
    let mut r = rules();
    r.allowed_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    let found = run_with(&events, &r, None);
    assert_eq!(flags(&found), vec![Flag::UnusualRegion]);
    assert_eq!(found[0].region, "ap-southeast-2");
    assert_eq!(found[0].event_ids, vec!["g1"]);
    assert_eq!(run(&events), vec![], "empty allowed_regions: rule off");
}

#[test]
fn new_principal_is_keyed_on_the_actor() {
    const ROLE: &str = "arn:aws:iam::111111111111:role/ci/ci-deployer";
    let call = |id: &str, session: &str| {
        ev(id, "StartSession", &mon("10:00:00"))
            .target("i-1")
            .denied()
            .role_session(ROLE, session)
    };
    let events = vec![
        call("r1", "botocore-session-1"),
        call("r2", "botocore-session-2"),
    ];
    // A previous report knew the role under another session name, in either shape.
    let old =
        Baseline::from_principals(["arn:aws:sts::111111111111:assumed-role/ci-deployer/earlier"]);
    assert_eq!(
        run_with(&events, &rules(), Some(&old)),
        vec![],
        "path-less role from an ARN"
    );
    let new = Baseline::from_report_json(&format!(
        r#"{{"events":[{{"principal_arn":"arn:aws:sts::111111111111:assumed-role/ci-deployer/earlier","actor":"{ROLE}"}}]}}"#
    ))
    .unwrap();
    assert_eq!(run_with(&events, &rules(), Some(&new)), vec![]);
    // Another role is new, once per principal, naming its actor.
    let other = Baseline::from_principals(["arn:aws:sts::111111111111:assumed-role/other/x"]);
    let found = run_with(&events, &rules(), Some(&other));
    assert_eq!(flags(&found), vec![Flag::NewPrincipal; 2]);
    assert!(found.iter().all(|f| f.actor == ROLE));
    assert!(
        found[0]
            .detail
            .contains(&format!("(actor {ROLE}) is not in the baseline")),
        "{}",
        found[0].detail
    );
    // An SSO user known by name stays known when records name it by onBehalfOf.
    let mut by_id = start("s1", &mon("10:00:00"), "a-1", "i-1");
    by_id.actor = "arn:aws:identitystore::1:identitystore/d-1/user/u-7".into();
    let knew = Baseline::from_principals([by_id.principal_arn.clone()]);
    assert_eq!(run_with(&[by_id], &rules(), Some(&knew)), vec![]);
}

#[test]
fn new_principal_against_the_baseline() {
    let alice = start("n1", &mon("10:00:00"), "a-1", "i-1");
    let bob = start("n2", &mon("10:00:00"), "b-1", "i-1").principal(
        "AssumedRole",
        "arn:aws:sts::111111111111:assumed-role/Dev/bob",
        Some("111111111111"),
    );
    let unknown = start("n3", &mon("10:00:00"), "u-1", "i-1").principal("Unknown", "", None);
    let events = vec![alice.clone(), bob, unknown];
    let baseline = Baseline::from_principals([alice.principal_arn.as_str()]);
    let found = run_with(&events, &rules(), Some(&baseline));
    assert_eq!(
        flags(&found),
        vec![Flag::NewPrincipal],
        "an empty ARN never fires"
    );
    assert_eq!(found[0].event_ids, vec!["n2"]);
    assert_eq!(
        run_with(&events, &rules(), None),
        vec![],
        "no baseline: rule off"
    );
}

#[test]
fn baseline_reads_actors_and_old_reports() {
    // A new report names actors; an old one only principals (and maybe the
    // type and issuer), from which the actor follows.
    let text = r#"{"events":[
        {"principal_arn":"arn:aws:sts::1:assumed-role/App/s-1","actor":"arn:aws:iam::1:role/team/App"},
        {"principal_arn":"arn:aws:sts::1:assumed-role/Ops/s-2","principal_type":"AssumedRole","session_issuer_arn":"arn:aws:iam::1:role/x/Ops"},
        {"principal_arn":"arn:aws:sts::1:assumed-role/Dev/s-3"},
        {"principal_arn":"arn:aws:sts::1:assumed-role/AWSReservedSSO_A_1/alice"},
        {"actor":"arn:aws:iam::1:user/carol"}
    ]}"#;
    let b = Baseline::from_report_json(text).unwrap();
    for known in [
        "arn:aws:iam::1:role/team/App",
        "arn:aws:iam::1:role/App",
        "arn:aws:iam::1:role/other/path/App",
        "arn:aws:iam::1:role/Ops",
        "arn:aws:iam::1:role/Dev",
        "arn:aws:sts::1:assumed-role/AWSReservedSSO_A_1/alice",
        "arn:aws:iam::1:user/carol",
        "arn:aws:sts::1:assumed-role/Dev/s-3",
    ] {
        assert!(b.contains(known), "{known}");
    }
    for unknown in [
        "arn:aws:iam::2:role/App",
        "arn:aws:sts::1:assumed-role/AWSReservedSSO_A_1/bob",
        "arn:aws:iam::1:user/dave",
    ] {
        assert!(!b.contains(unknown), "{unknown}");
    }
    assert_eq!(b.len(), 5);
}

#[test]
fn baseline_reads_only_event_principals() {
    let text = r#"{"schema":"x","events":[{"principal_arn":"arn:a","other":1},{"event_id":"e"},{"principal_arn":""},{"principal_arn":"arn:b"}],"findings":"ignored"}"#;
    let b = Baseline::from_report_json(text).unwrap();
    assert!(b.contains("arn:a") && b.contains("arn:b"));
    assert!(!b.contains("arn:c") && !b.contains(""));
    assert_eq!(b.len(), 2);
    assert!(Baseline::from_report_json(r#"{"events":[]}"#)
        .unwrap()
        .is_empty());

    let err = Baseline::from_report_json("not json").unwrap_err();
    assert!(matches!(err, BaselineError::NotJson { .. }));
    assert!(err.to_string().starts_with("baseline is not JSON"));
    for text in [r#"{"findings":[]}"#, r#"{"events":{}}"#, "[]", "3"] {
        assert_eq!(
            Baseline::from_report_json(text).unwrap_err(),
            BaselineError::NoEvents,
            "{text}"
        );
    }
    assert!(BaselineError::NoEvents.to_string().contains("`events`"));
}

// ---- business hours ------------------------------------------------

#[test]
fn business_hours_edges_in_utc() {
    let h = rules().business_hours;
    for (time, inside) in [
        ("2025-03-03T08:00:00Z", true), // Monday, start inclusive
        ("2025-03-03T07:59:59Z", false),
        ("2025-03-03T18:59:59Z", true),
        ("2025-03-03T19:00:00Z", false), // end exclusive
        ("2025-03-07T12:00:00Z", true),  // Friday
        ("2025-03-08T12:00:00Z", false), // Saturday
        ("2025-03-09T12:00:00Z", false), // Sunday
    ] {
        assert_eq!(in_business_hours(at(time), &h), inside, "{time}");
    }
}

#[test]
fn business_hours_across_midnight_belong_to_the_starting_day() {
    let mut h = rules().business_hours;
    h.start = hm(22, 0);
    h.end = hm(6, 0);
    for (time, inside) in [
        ("2025-03-07T23:00:00Z", true),  // Friday night
        ("2025-03-08T02:00:00Z", true),  // Saturday 02:00: Friday's night
        ("2025-03-08T06:00:00Z", false), // end exclusive
        ("2025-03-08T23:00:00Z", false), // Saturday night
        ("2025-03-10T02:00:00Z", false), // Monday 02:00: Sunday's night
        ("2025-03-10T22:00:00Z", true),  // Monday 22:00
        ("2025-03-10T12:00:00Z", false), // midday is outside a night shift
    ] {
        assert_eq!(in_business_hours(at(time), &h), inside, "{time}");
    }
    // start == end: 24 hours from the start of each listed day.
    h.end = hm(22, 0);
    assert!(
        !in_business_hours(at("2025-03-10T12:00:00Z"), &h),
        "Sunday's"
    );
    assert!(
        in_business_hours(at("2025-03-11T12:00:00Z"), &h),
        "Monday's"
    );
    h.start = hm(0, 0);
    h.end = hm(0, 0);
    assert!(
        in_business_hours(at("2025-03-10T00:00:00Z"), &h),
        "all Monday"
    );
    assert!(in_business_hours(at("2025-03-10T23:59:59Z"), &h));
    assert!(
        !in_business_hours(at("2025-03-09T12:00:00Z"), &h),
        "no Sunday"
    );
}

#[test]
fn business_hours_follow_daylight_saving_in_the_zone() {
    let mut h = rules().business_hours;
    h.timezone = chrono_tz::America::New_York;
    // Same UTC clock, either side of 2025-03-09 (EST → EDT).
    assert!(
        !in_business_hours(at("2025-03-07T12:30:00Z"), &h),
        "Fri 07:30 EST"
    );
    assert!(
        in_business_hours(at("2025-03-10T12:30:00Z"), &h),
        "Mon 08:30 EDT"
    );
    assert!(
        in_business_hours(at("2025-03-07T23:30:00Z"), &h),
        "Fri 18:30 EST"
    );
    assert!(
        !in_business_hours(at("2025-03-10T23:30:00Z"), &h),
        "Mon 19:30 EDT"
    );
    // Local Friday evening is UTC Saturday: the local day counts.
    assert!(in_business_hours(at("2025-03-08T00:30:00Z"), &{
        let mut late = h.clone();
        late.end = hm(20, 0);
        late
    }));
}

#[test]
fn off_hours_one_finding_per_session_with_the_offending_calls() {
    let events = vec![
        start("o1", &mon("10:00:00"), "a-1", "i-1"),
        resume("o2", &mon("21:00:00"), "a-1"),
        resume("o3", "2025-03-04T02:00:00Z", "a-1"),
        terminate("o4", "2025-03-04T03:00:00Z", "a-1"),
        start("o5", "2025-03-08T10:00:00Z", "a-2", "i-1"), // Saturday
        // Denied calls open no session: not off-hours (see denied-attempts).
        ev("o6", "StartSession", "2025-03-08T10:00:00Z")
            .target("i-1")
            .denied(),
    ];
    let mut found = run(&events);
    found.retain(|f| f.flag == Flag::OffHours);
    assert_eq!(found.len(), 2);
    assert_eq!(
        found[0].event_ids,
        vec!["o2", "o3"],
        "Terminate is never off-hours"
    );
    assert_eq!(found[0].session_id.as_deref(), Some("a-1"));
    assert_eq!(found[1].event_ids, vec!["o5"]);
    assert_eq!(found[1].severity, Severity::Low);
    assert!(
        found[1].detail.contains("Sat 2025-03-08 10:00 (UTC)"),
        "{}",
        found[1].detail
    );
}

#[test]
fn off_hours_applies_to_a_call_that_joined_no_session() {
    let sat = "2025-03-08T10:00:00Z";
    let events = vec![
        // A successful StartSession whose response held no session id.
        ev("q1", "StartSession", sat).target("i-1"),
        ev("q2", "ResumeSession", sat),
        // Failed or denied calls open nothing.
        ev("q3", "StartSession", sat)
            .target("i-1")
            .failed("TargetNotConnected"),
        ev("q4", "StartSession", sat).target("i-1").denied(),
        // Within hours, and a Terminate: never off-hours.
        ev("q5", "StartSession", &mon("10:00:00")).target("i-1"),
        ev("q6", "TerminateSession", sat),
    ];
    let found = only(&run(&events), Flag::OffHours)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].event_ids, vec!["q1", "q2"]);
    assert_eq!(found[0].session_id, None);
    assert_eq!(found[0].severity, Severity::Low);
    assert!(
        found[0]
            .detail
            .contains("outside business hours, at Sat 2025-03-08 10:00 (UTC), joining no session"),
        "{}",
        found[0].detail
    );
    // The same calls in a session are the session's finding, not a second one.
    let joined: Vec<SessionEvent> = events[..2]
        .iter()
        .cloned()
        .map(|e| e.session("s-1"))
        .collect();
    let found = run(&joined);
    assert_eq!(flags(&found), vec![Flag::OffHours]);
    assert_eq!(found[0].session_id.as_deref(), Some("s-1"));
}

#[test]
fn port_forwarding_applies_to_denied_and_sessionless_tunnels() {
    let events = vec![
        // Denied: the document came from the errorMessage, there is no session.
        ev("w1", "StartSession", &mon("10:00:00"))
            .doc("AWS-StartPortForwardingSessionToRemoteHost")
            .denied(),
        // Successful without a session id.
        ev("w2", "StartSession", &mon("10:05:00"))
            .target("i-1")
            .doc("AWS-StartSSHSession"),
        // Failed for another reason: still a tunnel asked for.
        ev("w3", "StartSession", &mon("10:10:00"))
            .target("i-1")
            .doc("AWS-StartSSHSession")
            .failed("TargetNotConnected"),
        // Not a tunnel.
        ev("w4", "StartSession", &mon("10:15:00"))
            .target("i-1")
            .doc("SSM-sudo")
            .denied(),
    ];
    let found = run(&events);
    let pf = only(&found, Flag::PortForwarding);
    assert_eq!(pf.len(), 1, "one principal, one region: {found:#?}");
    assert_eq!(pf[0].event_ids, vec!["w1", "w2", "w3"]);
    assert!(pf[0].detail.contains("asked for a tunnel with AWS-StartPortForwardingSessionToRemoteHost, AWS-StartSSHSession and no session stands for it: 3 session calls (3 StartSession; 1 denied, 1 failed)"), "{}", pf[0].detail);
}

// ---- per session ---------------------------------------------------

#[test]
fn port_forwarding_by_exact_name_or_prefix() {
    let r = rules();
    assert!(is_tunnel_document(
        "AWS-StartPortForwardingSession",
        &r.tunnel_documents
    ));
    assert!(is_tunnel_document(
        "AWS-StartPortForwardingSessionToRemoteHost",
        &r.tunnel_documents
    ));
    assert!(is_tunnel_document(
        "AWS-StartSSHSession",
        &r.tunnel_documents
    ));
    assert!(!is_tunnel_document(
        "AWS-StartInteractiveCommand",
        &r.tunnel_documents
    ));
    assert!(!is_tunnel_document("SSM-sudo", &r.tunnel_documents));
    assert!(!is_tunnel_document(
        "AWS-StartPortForwarding",
        &r.tunnel_documents
    ));
    assert!(
        !is_tunnel_document("anything", &["".to_string()]),
        "an empty name matches nothing"
    );

    let mut only_prefix = r.clone();
    only_prefix.tunnel_documents = vec!["AWS-StartPortForwardingSession".into()];
    let events = vec![
        start("f1", &mon("10:00:00"), "a-1", "i-1")
            .doc("AWS-StartPortForwardingSessionToRemoteHost"),
        terminate("f2", &mon("10:30:00"), "a-1"),
        start("f3", &mon("10:00:00"), "a-2", "i-1").doc("SSM-sudo"),
        start("f4", &mon("10:00:00"), "a-3", "i-1"),
        ev("f5", "StartSession", &mon("10:00:00"))
            .target("i-1")
            .doc("AWS-StartSSHSession")
            .denied(),
    ];
    let found = run_with(&events, &only_prefix, None);
    assert_eq!(flags(&found), vec![Flag::PortForwarding]);
    assert_eq!(found[0].event_ids, vec!["f1"]);
    assert_eq!(found[0].session_id.as_deref(), Some("a-1"));
    assert_eq!(
            found[0].detail,
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/alice opened session a-1 on i-1 with AWS-StartPortForwardingSessionToRemoteHost at 2025-03-03T10:00:00Z (tunnels are not in session transcripts)"
        );
}

#[test]
fn resume_from_new_ip_needs_two_ips() {
    let events = vec![
        start("s1", &mon("10:00:00"), "a-1", "i-1"),
        resume("s2", &mon("10:10:00"), "a-1").ip(Some("198.51.100.9")),
        resume("s3", &mon("10:20:00"), "a-1"), // same IP as the start
        resume("s4", &mon("10:30:00"), "a-1").ip(None),
        resume("s5", &mon("10:40:00"), "a-1").ip(Some("AWS Internal")),
        // Started from the console: nothing to compare with.
        start("t1", &mon("11:00:00"), "a-2", "i-1").ip(Some("AWS Internal")),
        resume("t2", &mon("11:10:00"), "a-2").ip(Some("198.51.100.9")),
        // No start in the window: nothing to compare with.
        resume("u1", &mon("11:10:00"), "a-3").ip(Some("198.51.100.9")),
    ];
    let found = run(&events);
    assert_eq!(flags(&found), vec![Flag::ResumeFromNewIp]);
    assert_eq!(found[0].event_ids, vec!["s1", "s2"]);
    assert_eq!(found[0].severity, Severity::Medium);
    assert!(found[0].detail.contains("started from 203.0.113.10 at 2025-03-03T10:00:00Z and was resumed from 198.51.100.9 (1 resume)"), "{}", found[0].detail);
}

#[test]
fn resume_from_the_mapped_form_of_the_start_address_is_not_new() {
    let events = vec![
        start("m1", &mon("10:00:00"), "a-1", "i-1").ip(Some("198.51.100.7")),
        resume("m2", &mon("10:10:00"), "a-1").ip(Some("::ffff:198.51.100.7")),
        start("m3", &mon("11:00:00"), "a-2", "i-1").ip(Some("::FFFF:198.51.100.8")),
        resume("m4", &mon("11:10:00"), "a-2").ip(Some("198.51.100.8")),
        start("m5", &mon("12:00:00"), "a-3", "i-1").ip(Some("2001:DB8::1")),
        resume("m6", &mon("12:10:00"), "a-3").ip(Some("2001:db8:0::1")),
    ];
    assert_eq!(run(&events), vec![]);
    // One address once among the session's source IPs.
    let sessions = build_sessions(&events);
    assert_eq!(sessions[0].source_ips, vec!["198.51.100.7"]);
    assert_eq!(sessions[2].source_ips, vec!["2001:db8::1"]);
    // A different address still fires.
    let moved = vec![
        events[0].clone(),
        resume("m7", &mon("10:20:00"), "a-1").ip(Some("::ffff:198.51.100.9")),
    ];
    assert_eq!(flags(&run(&moved)), vec![Flag::ResumeFromNewIp]);
}

#[test]
fn unapproved_source_ip_groups_one_address_once() {
    let mut r = rules();
    r.approved_cidrs = vec![
        "203.0.113.0/24".parse().unwrap(),
        "::ffff:192.0.2.0/120".parse().unwrap(),
    ];
    let events = vec![
        start("p1", &mon("10:00:00"), "a-1", "i-1").ip(Some("198.51.100.1")),
        start("p2", &mon("10:01:00"), "a-2", "i-1").ip(Some("::ffff:198.51.100.1")),
        // A network written in the mapped form holds the IPv4 address too.
        start("p3", &mon("10:02:00"), "a-3", "i-1").ip(Some("192.0.2.5")),
    ];
    let found = run_with(&events, &r, None);
    assert_eq!(flags(&found), vec![Flag::UnapprovedSourceIp]);
    assert_eq!(found[0].event_ids, vec!["p1", "p2"]);
}

#[test]
fn long_session_strictly_longer_than_max() {
    let session = |id: &str, end: &str| {
        vec![
            start(&format!("{id}s"), &mon("08:00:00"), id, "i-1"),
            terminate(&format!("{id}e"), end, id),
        ]
    };
    assert_eq!(run(&session("x", &mon("16:00:00"))), vec![], "exactly 8h");
    let found = run(&session("y", &mon("16:00:01")));
    assert_eq!(flags(&found), vec![Flag::LongSession]);
    assert_eq!(found[0].event_ids, vec!["ye", "ys"]);
    assert!(
        found[0].detail.contains("lasted 8h1s (max 8h)"),
        "{}",
        found[0].detail
    );
    // Never terminated: unknown length, never a flag.
    assert_eq!(run(&[start("z", &mon("08:00:00"), "z", "i-1")]), vec![]);
}

// ---- bursts --------------------------------------------------------

fn denied_at(id: &str, time: &str) -> SessionEvent {
    ev(id, "StartSession", time).target("i-1").denied()
}

#[test]
fn denied_attempts_window_is_inclusive() {
    let exactly = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:30:00")),
        denied_at("d3", &mon("11:00:00")),
    ];
    let found = run(&exactly);
    assert_eq!(flags(&found), vec![Flag::DeniedAttempts]);
    assert_eq!(found[0].event_ids, vec!["d1", "d2", "d3"]);
    assert_eq!(found[0].severity, Severity::High);
    assert_eq!(
            found[0].detail,
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/alice had 3 denied StartSession/ResumeSession calls (AccessDeniedException) from 2025-03-03T10:00:00Z to 2025-03-03T11:00:00Z (threshold 3 within 1h) on i-1"
        );

    let just_over = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:30:00")),
        denied_at("d3", &mon("11:00:01")),
    ];
    assert_eq!(run(&just_over), vec![]);
    assert_eq!(run(&exactly[..2]), vec![], "below the threshold");
}

#[test]
fn denied_attempts_count_denials_not_other_failures() {
    let failed =
        |id: &str, time: &str, code: &str| ev(id, "StartSession", time).target("i-1").failed(code);
    let events = vec![
        failed("f1", &mon("10:00:00"), "TargetNotConnected"),
        failed("f2", &mon("10:05:00"), "TargetNotConnected"),
        failed("f3", &mon("10:10:00"), "InvalidDocument"),
        failed("f4", &mon("10:15:00"), "ThrottlingException"),
    ];
    assert_eq!(
        run(&events),
        vec![],
        "the agent offline is not a burst of denials"
    );
    let mut events = events;
    events.push(failed("d1", &mon("10:20:00"), "AccessDenied"));
    events.push(failed("d2", &mon("10:25:00"), "AccessDeniedException"));
    events.push(failed(
        "d3",
        &mon("10:30:00"),
        "Client.UnauthorizedOperation",
    ));
    let found = run(&events);
    assert_eq!(flags(&found), vec![Flag::DeniedAttempts]);
    assert_eq!(found[0].event_ids, vec!["d1", "d2", "d3"]);
    // The failures still show in other findings' call summaries.
    let root: Vec<SessionEvent> = events
        .iter()
        .cloned()
        .map(|e| e.principal("Root", ROOT, Some("111111111111")))
        .collect();
    let found = run(&root);
    let r = only(&found, Flag::RootSession);
    assert!(
        r[0].detail.contains("(7 StartSession; 3 denied, 4 failed)"),
        "{}",
        r[0].detail
    );
}

#[test]
fn denied_attempts_key_on_the_actor_not_the_session_name() {
    const ROLE: &str = "arn:aws:iam::111111111111:role/ci-deployer";
    let events: Vec<SessionEvent> = (0..5)
        .map(|k| {
            denied_at(&format!("r{k}"), &mon(&format!("10:0{k}:00")))
                .role_session(ROLE, &format!("botocore-session-{}", 1000 + k * 7919))
        })
        .collect();
    let found = run(&events);
    assert_eq!(
        flags(&found),
        vec![Flag::DeniedAttempts],
        "five session names, one role"
    );
    assert_eq!(found[0].event_ids, vec!["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(found[0].actor, ROLE);
    assert_eq!(
        found[0].principal_arn, events[0].principal_arn,
        "the exact principal of the first call"
    );
    assert!(
        found[0].detail.starts_with(&format!("{ROLE} as 5 principals (arn:aws:sts::111111111111:assumed-role/ci-deployer/botocore-session-1000, ")),
        "{}",
        found[0].detail
    );

    // Two Identity Center users of one permission set never merge.
    let sso = |id: &str, time: &str, user: &str| {
        let arn =
            format!("arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/{user}");
        let mut e = denied_at(id, time);
        e.principal_arn = arn.clone();
        e.actor = arn;
        e
    };
    let two_users = vec![
        sso("a1", &mon("10:00:00"), "alice"),
        sso("a2", &mon("10:01:00"), "alice"),
        sso("b1", &mon("10:02:00"), "bob"),
        sso("b2", &mon("10:03:00"), "bob"),
    ];
    assert_eq!(run(&two_users), vec![]);
}

#[test]
fn denied_attempts_count_only_start_and_resume() {
    let events = vec![
        denied_at("d1", &mon("10:00:00")),
        ev("d2", "ResumeSession", &mon("10:01:00")).denied(),
        ev("d3", "TerminateSession", &mon("10:02:00")).denied(),
        start("ok", &mon("10:03:00"), "a-1", "i-1"),
    ];
    assert_eq!(run(&events), vec![]);
    let mut events = events;
    events.push(ev("d4", "ResumeSession", &mon("10:04:00")).denied());
    let found = run(&events);
    assert_eq!(found[0].event_ids, vec!["d1", "d2", "d4"]);
}

#[test]
fn denied_attempts_per_account_and_principal_across_regions() {
    let b = "222222222222";
    let two_accounts = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:01:00")),
        denied_at("d3", &mon("10:02:00")).account(b),
        denied_at("d4", &mon("10:03:00")).account(b),
    ];
    assert_eq!(run(&two_accounts), vec![], "windows are per account");

    let two_principals = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:01:00")),
        denied_at("d3", &mon("10:02:00")).principal("IAMUser", BOB, Some("111111111111")),
    ];
    assert!(only(&run(&two_principals), Flag::DeniedAttempts).is_empty());

    let two_regions = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:01:00")).region("eu-west-1"),
        denied_at("d3", &mon("10:02:00")),
    ];
    let found = run(&two_regions);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].region, "eu-west-1,us-east-1");
}

#[test]
fn denied_attempts_separate_bursts_and_no_slow_chain() {
    let events = vec![
        denied_at("a1", &mon("09:00:00")),
        denied_at("a2", &mon("09:10:00")),
        denied_at("a3", &mon("09:20:00")),
        denied_at("a4", &mon("09:50:00")), // in a window with a2, a3
        // Slow trickle: never 3 within an hour, so not part of anything.
        denied_at("s1", &mon("11:30:00")),
        denied_at("s2", &mon("12:45:00")),
        denied_at("s3", &mon("14:00:00")),
        denied_at("b1", &mon("16:00:00")),
        denied_at("b2", &mon("16:00:00")),
        denied_at("b3", &mon("16:00:00")),
    ];
    let found = run(&events);
    let ids: Vec<_> = found.iter().map(|f| f.event_ids.clone()).collect();
    assert_eq!(
        ids,
        vec![vec!["a1", "a2", "a3", "a4"], vec!["b1", "b2", "b3"]]
    );
}

#[test]
fn target_fanout_more_than_the_limit_within_the_window() {
    let s = |id: &str, time: &str, target: &str| start(id, &mon(time), id, target);
    let four = vec![
        s("t1", "10:00:00", "i-1"),
        s("t2", "10:20:00", "i-2"),
        s("t3", "10:40:00", "i-3"),
        s("t4", "11:00:00", "i-4"), // exactly one window after t1
    ];
    let found = run(&four);
    assert_eq!(flags(&found), vec![Flag::TargetFanout]);
    assert_eq!(found[0].event_ids, vec!["t1", "t2", "t3", "t4"]);
    assert_eq!(found[0].session_id, None);
    assert_eq!(
            found[0].detail,
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/alice started 4 sessions on 4 distinct targets from 2025-03-03T10:00:00Z to 2025-03-03T11:00:00Z (limit 3 within 1h): i-1, i-2, i-3, i-4"
        );

    assert_eq!(
        run(&four[..3]),
        vec![],
        "3 targets is the limit, not over it"
    );
    let mut late = four.clone();
    late[3] = s("t4", "11:00:01", "i-4");
    assert_eq!(run(&late), vec![], "spread over more than the window");
    let mut repeat = four.clone();
    repeat[3] = s("t4", "10:50:00", "i-1");
    assert_eq!(run(&repeat), vec![], "4 sessions on 3 targets");
    // A denied start is an attempt on its target; another failure is not.
    let mut denied = four.clone();
    denied[3] = ev("t4", "StartSession", &mon("10:50:00"))
        .target("i-4")
        .denied();
    let found = run(&denied);
    assert_eq!(flags(&found), vec![Flag::TargetFanout]);
    assert!(
        found[0]
            .detail
            .contains("started 4 sessions (1 denied) on 4 distinct targets"),
        "{}",
        found[0].detail
    );
    let mut offline = four.clone();
    offline[3] = ev("t4", "StartSession", &mon("10:50:00"))
        .target("i-4")
        .failed("TargetNotConnected");
    assert_eq!(
        run(&offline),
        vec![],
        "the agent offline is no attempt on a target"
    );
    // One role under rotating session names is one actor.
    const ROLE: &str = "arn:aws:iam::111111111111:role/sweeper";
    let rotating: Vec<SessionEvent> = four
        .iter()
        .cloned()
        .enumerate()
        .map(|(k, e)| e.role_session(ROLE, &format!("s{k}")))
        .collect();
    let found = run(&rotating);
    assert_eq!(flags(&found), vec![Flag::TargetFanout]);
    assert_eq!(found[0].actor, ROLE);
    let mut other_account = four.clone();
    other_account[3] = s("t4", "10:50:00", "i-4").account("222222222222");
    assert_eq!(run(&other_account), vec![]);
}

// ---- robustness, order, summaries ----------------------------------

#[test]
fn odd_thresholds_and_windows_do_not_panic() {
    let mut r = rules();
    r.denied_threshold = 0;
    r.denied_window = TimeDelta::seconds(-5);
    r.fanout_targets = 0;
    r.fanout_window = TimeDelta::zero();
    let events = vec![
        denied_at("d1", &mon("10:00:00")),
        denied_at("d2", &mon("10:00:00")),
        start("s1", &mon("10:00:00"), "s1", "i-1"),
    ];
    let found = run_with(&events, &r, None);
    // Threshold 0 acts as 1; a zero-length window still holds same-instant calls.
    assert_eq!(
        flags(&found),
        vec![Flag::DeniedAttempts, Flag::TargetFanout]
    );
    assert_eq!(found[0].event_ids, vec!["d1", "d2"]);
}

#[test]
fn hostile_text_never_breaks_a_detail_line() {
    let evil = format!("i-1\n\u{1b}[2J{}", "x".repeat(10_000));
    let events = vec![start("h1", &mon("10:00:00"), "h-1", &evil).principal(
        "Root",
        ROOT,
        Some("111111111111"),
    )];
    let found = run(&events);
    assert_eq!(flags(&found), vec![Flag::RootSession]);
    let d = &found[0].detail;
    assert!(!d.chars().any(char::is_control), "{d:?}");
    assert!(d.len() < 400, "{}", d.len());
}

#[test]
fn missing_optional_fields_fire_nothing_by_themselves() {
    let mut bare = ev("b1", "StartSession", &mon("10:00:00"))
        .session("b-1")
        .ip(None);
    bare.user_agent = None;
    bare.principal_account_id = None;
    let mut r = rules();
    r.approved_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
    assert_eq!(run_with(&[bare], &r, None), vec![]);
}

#[test]
fn flags_for_event_and_summary() {
    let root = |e: SessionEvent| e.principal("Root", ROOT, Some("111111111111"));
    let events = vec![
        root(start("x1", "2025-03-08T10:00:00Z", "r-1", "i-1")), // Saturday
        root(start("x2", &mon("10:00:00"), "r-2", "i-1").doc("AWS-StartSSHSession")),
        start("x3", "2025-03-08T10:00:00Z", "a-1", "i-1").account("222222222222"),
    ];
    let found = run(&events);
    let by_event = flags_for_event(&found);
    assert_eq!(
        by_event["x1"],
        BTreeSet::from([Flag::RootSession, Flag::OffHours])
    );
    assert_eq!(
        by_event["x2"],
        BTreeSet::from([Flag::RootSession, Flag::PortForwarding])
    );

    let by_account = summarize(&found);
    assert_eq!(
        by_account.keys().copied().collect::<Vec<_>>(),
        vec!["111111111111", "222222222222"]
    );
    let (counts, max) = by_account["111111111111"].clone();
    assert_eq!(max, Some(Severity::Critical));
    let got: Vec<_> = counts
        .iter()
        .map(|c| (c.flag, c.severity, c.count))
        .collect();
    assert_eq!(
        got,
        vec![
            (Flag::RootSession, Severity::Critical, 1),
            (Flag::PortForwarding, Severity::Medium, 1),
            (Flag::OffHours, Severity::Low, 1),
        ]
    );
    let (counts, max) = by_account["222222222222"].clone();
    assert_eq!((counts.len(), max), (1, Some(Severity::Low)));
    assert!(
        !by_account.contains_key("333333333333"),
        "no finding, no entry"
    );
    assert!(summarize(&[]).is_empty());
}

/// What `ssm::join` would set from Session Manager's records: a session
/// whose region logs nowhere, and one still connected.
fn session_manager_says(sessions: &mut [Session]) {
    use crate::model::{Transcript, TranscriptStatus};
    for s in sessions.iter_mut() {
        match s.session_id.as_str() {
            "alice-nolog" => s.transcript = Some(Transcript {
                status: TranscriptStatus::None,
                destinations: vec![],
                document: "SSM-SessionManagerRunShell".into(),
                why:
                    "the region's preferences apply, and were never saved: the defaults log nowhere"
                        .into(),
            }),
            "alice-now" => {
                s.active = true;
                s.status = Some("Connected".into());
                s.observed_at = Some(at("2025-03-05T11:30:00Z"));
            }
            _ => {}
        }
    }
}

/// A role nobody assumed before: a new actor (another session name of `Dev`
/// would be a known one).
const DAVE: &str = "arn:aws:sts::111111111111:assumed-role/Contractor/dave";

/// One case of each flag, and ordinary activity around them.
fn scenario() -> (Vec<SessionEvent>, RuleConfig, Baseline) {
    let acct = Some("111111111111");
    let role = |name: &str| format!("arn:aws:sts::111111111111:assumed-role/Dev/{name}");
    let mut machine = start("m1", &mon("12:00:00"), "i-0abc1234def567890-0a", "i-0db").principal(
        "AssumedRole",
        &role("i-0abc1234def567890"),
        acct,
    );
    machine.instance_role = true;
    let frank = |id: &str, time: &str, target: &str| {
        start(id, &format!("2025-03-04T{time}Z"), id, target).principal(
            "AssumedRole",
            "arn:aws:sts::111111111111:assumed-role/Sweeper/frank",
            acct,
        )
    };
    let erin = |id: &str, time: &str| {
        ev(id, "StartSession", &format!("2025-03-04T{time}Z"))
            .target("i-0prod")
            .denied()
            .principal(
                "AssumedRole",
                "arn:aws:sts::111111111111:assumed-role/Intern/erin",
                acct,
            )
    };
    let events = vec![
        // root-session
        start("r1", &mon("10:00:00"), "root-1", "i-0web").principal("Root", ROOT, acct),
        terminate("r2", &mon("10:05:00"), "root-1").principal("Root", ROOT, acct),
        // iam-user-session
        start("u1", &mon("11:00:00"), "bob-1", "i-0web").principal("IAMUser", BOB, acct),
        // instance-role-caller
        machine,
        // cross-account-principal
        start("c1", &mon("13:00:00"), "carol-1", "i-0web").principal(
            "AssumedRole",
            "arn:aws:sts::222222222222:assumed-role/Ops/carol",
            Some("222222222222"),
        ),
        // unapproved-source-ip
        start("p1", &mon("14:00:00"), "alice-ip", "i-0web").ip(Some("198.51.100.23")),
        terminate("p2", &mon("14:30:00"), "alice-ip").ip(Some("198.51.100.23")),
        // off-hours (Saturday)
        start("o1", "2025-03-08T03:00:00Z", "alice-sat", "i-0web"),
        // port-forwarding
        start("f1", &mon("15:00:00"), "alice-pf", "i-0db").doc("AWS-StartPortForwardingSession"),
        terminate("f2", &mon("15:20:00"), "alice-pf"),
        // denied-attempts
        erin("d1", "09:00:00"),
        erin("d2", "09:10:00"),
        erin("d3", "09:20:00"),
        // target-fanout
        frank("t1", "10:00:00", "i-01"),
        frank("t2", "10:10:00", "i-02"),
        frank("t3", "10:20:00", "i-03"),
        frank("t4", "10:30:00", "i-04"),
        // resume-from-new-ip (both addresses approved)
        start("n1", "2025-03-04T11:00:00Z", "alice-move", "i-0web"),
        resume("n2", "2025-03-04T11:30:00Z", "alice-move").ip(Some("203.0.113.99")),
        // unusual-region
        start("g1", "2025-03-04T12:00:00Z", "alice-syd", "i-0syd").region("ap-southeast-2"),
        // new-principal
        start("w1", "2025-03-04T13:00:00Z", "dave-1", "i-0web").principal(
            "AssumedRole",
            DAVE,
            acct,
        ),
        // long-session
        start("l1", "2025-03-05T08:00:00Z", "alice-long", "i-0web"),
        terminate("l2", "2025-03-05T17:00:00Z", "alice-long"),
        // ordinary: a short shell in hours, never terminated
        start("z1", "2025-03-05T09:00:00Z", "alice-ok", "i-0web"),
        // session-logging-off (its transcript is set as ssm::join would, below)
        start("q1", "2025-03-05T10:00:00Z", "alice-nolog", "i-0web"),
        // active-session (likewise)
        start("a1", "2025-03-05T11:00:00Z", "alice-now", "i-0web"),
        // no-reason: the only StartSession without one
        start("y1", "2025-03-05T12:00:00Z", "alice-why", "i-0web"),
    ];
    let events: Vec<SessionEvent> = events
        .into_iter()
        .map(|e| match e.event_name.as_str() {
            "StartSession" if e.event_id != "y1" => e.reason("ticket OPS-1"),
            _ => e,
        })
        .collect();
    let mut r = rules();
    r.require_reason = true;
    r.approved_cidrs = vec![
        "203.0.113.0/24".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ];
    r.allowed_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    let mut known: BTreeSet<String> = events.iter().map(|e| e.principal_arn.clone()).collect();
    known.remove(DAVE);
    (events, r, Baseline::from_principals(known))
}

#[test]
fn scenario_gives_each_flag_once() {
    let (events, rules, baseline) = scenario();
    let mut sessions = build_sessions(&events);
    session_manager_says(&mut sessions);
    let findings = evaluate(&events, &sessions, &rules, Some(&baseline));
    let mut got = flags(&findings);
    got.sort();
    assert_eq!(got, Flag::ALL.to_vec());
    insta::assert_json_snapshot!("scenario_findings", findings);
    insta::assert_json_snapshot!("scenario_sessions", sessions);
    insta::assert_json_snapshot!("scenario_summary", summarize(&findings));
    insta::assert_json_snapshot!("scenario_flags_for_event", flags_for_event(&findings));
}

fn arb_events() -> impl Strategy<Value = Vec<SessionEvent>> {
    let one = (
        0u8..3,
        0i64..90,
        0u8..4,
        0u8..4,
        0u8..3,
        0u8..3,
        0u8..5,
        0u8..4,
    )
        .prop_map(
            |(name, minute, session, target, ip, who, account, outcome)| {
                let name = ["StartSession", "ResumeSession", "TerminateSession"][name as usize];
                let time = at("2025-03-03T18:00:00Z") + TimeDelta::minutes(minute);
                let mut e = ev(
                    &format!("e{minute}{name}{session}{who}"),
                    name,
                    &time.to_rfc3339(),
                )
                .ip([None, Some("10.0.0.1"), Some("198.51.100.2")][ip as usize])
                .target(&format!("i-{target}"))
                .account(
                    [
                        "111111111111",
                        "222222222222",
                        "111111111111",
                        "111111111111",
                        "111111111111",
                    ][account as usize],
                );
                e = match who {
                    0 => e,
                    1 => e.principal("Root", ROOT, Some("111111111111")),
                    2 if minute % 2 == 0 => {
                        e.role_session("arn:aws:iam::111111111111:role/r", &format!("s{minute}"))
                    }
                    _ => e.principal("IAMUser", BOB, Some("333333333333")),
                };
                if session > 0 {
                    e = e.session(&format!("s{session}"));
                }
                if account == 4 {
                    e = e.region("eu-west-1").doc("AWS-StartSSHSession");
                }
                e = match outcome {
                    1 => e.denied(),
                    2 => e.failed("TargetNotConnected"),
                    _ => e,
                };
                e
            },
        );
    prop::collection::vec(one, 0..30)
}

proptest! {
    #[test]
    fn evaluate_is_independent_of_input_order(events in arb_events(), seed in any::<u64>()) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut r = rules();
        r.approved_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
        r.allowed_regions = vec!["us-east-1".into()];
        r.max_session = TimeDelta::minutes(30);
        let baseline = Baseline::from_principals([ROOT]);
        let mut shuffled = events.clone();
        shuffled.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
        let a = evaluate(&events, &build_sessions(&events), &r, Some(&baseline));
        let b = evaluate(&shuffled, &build_sessions(&shuffled), &r, Some(&baseline));
        prop_assert_eq!(&a, &b);
        for f in &a {
            prop_assert!(!f.event_ids.is_empty());
            prop_assert!(f.event_ids.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(f.severity, f.flag.default_severity());
        }
    }
}
