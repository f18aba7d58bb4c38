//! The generated templates and the alert rule's event pattern, against real
//! CloudTrail records (and hand-built ones the rule must not match).

use std::path::PathBuf;

use serde_json::{json, Value};
use ssm_session_audit::templates::{
    alerts, cloudtrail_record_to_eventbridge, iam, pattern, AlertOptions, GeneratedFile, IamOptions,
};

const REAL_START_SESSIONS: [&str; 2] = [
    "start-session-sso-role.json",
    "start-session-iam-user-custom-document.json",
];

/// A CloudTrail record: the in-repo copy first, else the shared fixtures beside
/// the repository.
fn record(name: &str) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("tests/fixtures/cloudtrail").join(name),
        root.join("../shared/fixtures/cloudtrail").join(name),
    ];
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("fixture {name} not found in {candidates:?}"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn default_pattern() -> Value {
    alerts::event_pattern(&AlertOptions::default().event_names)
}

fn fires(record: &Value) -> bool {
    pattern::matches(
        &default_pattern(),
        &cloudtrail_record_to_eventbridge(record),
    )
}

fn with_event_name(record: &Value, name: &str) -> Value {
    let mut changed = record.clone();
    changed["eventName"] = Value::from(name);
    changed
}

fn option_sets() -> Vec<(AlertOptions, IamOptions)> {
    vec![
        (AlertOptions::default(), IamOptions::default()),
        (
            AlertOptions {
                emails: vec!["security@example.com".into(), "oncall@example.com".into()],
                central_account_id: Some("123456789012".into()),
                event_names: vec!["StartSession".into()],
                topic_name: "t".into(),
                event_bus_name: "org-sessions".into(),
                rule_name: "r".into(),
            },
            IamOptions {
                role_name: "Audit".into(),
                trusted_account_id: Some("123456789012".into()),
                external_id: Some("ext-id-1".into()),
                caller_role_name: Some("Scanner".into()),
            },
        ),
    ]
}

fn all_files(a: &AlertOptions, i: &IamOptions) -> Vec<GeneratedFile> {
    let mut files = alerts::render_all(a);
    files.extend(iam::render_all(i));
    files
}

#[test]
fn the_in_repo_fixtures_are_the_shared_ones() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for name in REAL_START_SESSIONS {
        let shared = root.join("../shared/fixtures/cloudtrail").join(name);
        if let Ok(text) = std::fs::read_to_string(&shared) {
            let copy: Value = serde_json::from_str(
                &std::fs::read_to_string(root.join("tests/fixtures/cloudtrail").join(name))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                copy,
                serde_json::from_str::<Value>(&text).unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn every_file_is_valid_json_with_the_expected_names() {
    for (a, i) in option_sets() {
        let files = all_files(&a, &i);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "alerts-account.json",
                "alerts-org-member.json",
                "alerts-org-central.json",
                "audit-role.json",
                "caller-policy.json",
                "audit-role-policy.json",
                "audit-role-trust.json",
            ]
        );
        for file in &files {
            let value: Value = serde_json::from_str(&file.contents)
                .unwrap_or_else(|e| panic!("{}: {e}", file.name));
            assert!(file.contents.ends_with('\n'), "{}", file.name);
            if file.name.starts_with("alerts-") || file.name == "audit-role.json" {
                assert_eq!(
                    value["AWSTemplateFormatVersion"], "2010-09-09",
                    "{}",
                    file.name
                );
                assert!(value["Resources"].is_object(), "{}", file.name);
            } else {
                assert_eq!(value["Version"], "2012-10-17", "{}", file.name);
                assert!(value["Statement"].is_array(), "{}", file.name);
            }
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for (a, i) in option_sets() {
        assert_eq!(all_files(&a, &i), all_files(&a.clone(), &i.clone()));
    }
    // Different options give different bytes (the options are really used).
    let sets = option_sets();
    assert_ne!(
        all_files(&sets[0].0, &sets[0].1),
        all_files(&sets[1].0, &sets[1].1)
    );
}

#[test]
fn every_rule_in_every_template_uses_the_configured_pattern() {
    for (a, _) in option_sets() {
        let expected = alerts::event_pattern(&a.event_names);
        for file in alerts::render_all(&a) {
            let template: Value = serde_json::from_str(&file.contents).unwrap();
            let rules: Vec<&Value> = template["Resources"]
                .as_object()
                .unwrap()
                .values()
                .filter(|r| r["Type"] == "AWS::Events::Rule")
                .collect();
            assert_eq!(rules.len(), 1, "{}", file.name);
            assert_eq!(
                rules[0]["Properties"]["EventPattern"], expected,
                "{}",
                file.name
            );
            assert_eq!(
                rules[0]["Properties"]["Name"],
                Value::from(a.rule_name.as_str())
            );
        }
    }
}

#[test]
fn the_pattern_matches_the_real_start_sessions() {
    for name in REAL_START_SESSIONS {
        let r = record(name);
        assert_eq!(r["eventName"], "StartSession", "{name}");
        assert!(fires(&r), "{name} should raise an alert");
    }
}

#[test]
fn the_pattern_matches_resume_and_terminate() {
    for name in REAL_START_SESSIONS {
        let r = record(name);
        for call in ["ResumeSession", "TerminateSession"] {
            assert!(fires(&with_event_name(&r, call)), "{name} as {call}");
        }
    }
}

#[test]
fn the_pattern_ignores_other_calls_and_services() {
    let send_command = record("send-command-hand-built.json");
    assert_eq!(send_command["eventSource"], "ssm.amazonaws.com");
    assert!(!fires(&send_command), "SendCommand is not a session call");

    let run_instances = record("run-instances-hand-built.json");
    assert!(!fires(&run_instances), "RunInstances is EC2");

    let other = record("start-session-other-service-hand-built.json");
    assert_eq!(other["eventName"], "StartSession");
    assert!(!fires(&other), "StartSession of ssm-guiconnect is not ours");
    // Even if such a record arrived under source aws.ssm, detail.eventSource
    // keeps it out.
    let mut disguised = cloudtrail_record_to_eventbridge(&other);
    disguised["source"] = json!("aws.ssm");
    assert!(!pattern::matches(&default_pattern(), &disguised));
}

#[test]
fn a_narrower_event_list_narrows_the_rule() {
    let only_start = alerts::event_pattern(&["StartSession".to_string()]);
    let r = record("start-session-sso-role.json");
    assert!(pattern::matches(
        &only_start,
        &cloudtrail_record_to_eventbridge(&r)
    ));
    assert!(!pattern::matches(
        &only_start,
        &cloudtrail_record_to_eventbridge(&with_event_name(&r, "TerminateSession"))
    ));
}

#[test]
fn the_alert_message_reads_well_for_a_real_record() {
    let event = cloudtrail_record_to_eventbridge(&record("start-session-sso-role.json"));
    let message = alerts::preview_message(&event);
    for expected in [
        "Session Manager StartSession in account 111122223333, region us-west-2",
        "Who: arn:aws:sts::111122223333:assumed-role/SampleRole/bobson.dugnutt (AssumedRole)",
        "When: 2025-02-19T20:13:49Z",
        "From IP: 1.2.3.4",
        "Target: i-047fce8bf4806e5ee",
        "Session (started or resumed): bobson.dugnutt-4njnyxxl8yn676nsla8j6l4bra",
        "CloudTrail event id: c61c9a5d-4d9c-45ee-8c46-9845ea001e97",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in\n{message}"
        );
    }
    let custom =
        cloudtrail_record_to_eventbridge(&record("start-session-iam-user-custom-document.json"));
    assert!(alerts::preview_message(&custom).contains("Document: SSM-sudo"));

    // The deployed transformer is the one the preview applies.
    let template: Value =
        serde_json::from_str(&alerts::render_all(&AlertOptions::default())[0].contents).unwrap();
    assert_eq!(
        template["Resources"]["SessionAlertRule"]["Properties"]["Targets"][0]["InputTransformer"],
        alerts::input_transformer()
    );
}

#[test]
fn the_audit_role_documents_agree_with_the_template() {
    let (_, i) = option_sets().remove(1);
    let files = iam::render_all(&i);
    let get = |name: &str| -> Value {
        serde_json::from_str(&files.iter().find(|f| f.name == name).unwrap().contents).unwrap()
    };
    let template = get("audit-role.json");
    let role = &template["Resources"]["AuditRole"]["Properties"];
    assert_eq!(role["RoleName"], "Audit");
    assert_eq!(
        role["Policies"][0]["PolicyDocument"],
        get("audit-role-policy.json")
    );
    let trust = get("audit-role-trust.json");
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
            ["sts:ExternalId"]
    );
    assert_eq!(
        get("caller-policy.json")["Statement"][1]["Resource"],
        "arn:aws:iam::*:role/Audit"
    );
}
