//! The generated templates and the alert rule's event pattern, against real
//! CloudTrail records (and hand-built ones the rule must not match); the
//! scheduled scan's template and its failure rule, against ECS task events;
//! and the IAM policies, against every AWS SDK call in the source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use ssm_session_audit::templates::permissions::{self, Feature, Principal};
use ssm_session_audit::templates::schedule::{self, ScheduleOptions};
use ssm_session_audit::templates::{
    alerts, cloudtrail_record_to_eventbridge, iam, pattern, AlertOptions, AthenaIam, GeneratedFile,
    IamOptions, S3Location,
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
                ..Default::default()
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
    // The template is partition-aware; the plain document is for `aws`.
    assert_eq!(
        in_partition(&role["Policies"][0]["PolicyDocument"], "aws"),
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

/// `value` with every `{"Fn::Sub": "...${AWS::Partition}..."}` that names only
/// the partition replaced by its text for `partition`.
fn in_partition(value: &Value, partition: &str) -> Value {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(text))) = (map.len(), map.get("Fn::Sub")) {
                let resolved = text.replace("${AWS::Partition}", partition);
                if !resolved.contains("${") {
                    return Value::from(resolved);
                }
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), in_partition(v, partition)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| in_partition(v, partition)).collect())
        }
        other => other.clone(),
    }
}

/// Every action of a policy document.
fn policy_actions(policy: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("Statement list") {
        match &statement["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(list.iter().map(|a| a.as_str().unwrap().to_string())),
            other => panic!("unexpected Action {other}"),
        }
    }
    out
}

/// The IAM options that turn every optional part on.
fn every_iam_option() -> IamOptions {
    IamOptions {
        trusted_account_id: Some("111122223333".into()),
        trail: Some(S3Location::parse("s3://org-trail/AWSLogs")),
        athena: Some(AthenaIam {
            database: "security".into(),
            table: "cloudtrail_org".into(),
            workgroup: "primary".into(),
            output: S3Location::parse("s3://athena-results/ssm"),
            create: true,
        }),
        s3_output: Some(S3Location::parse("s3://evidence/runs")),
        security_hub: true,
        ..Default::default()
    }
}

/// For every `aws-sdk-*` crate the package depends on directly: its service
/// name and the snake-case names of its operations (its `src/operation/` modules).
fn sdk_operations() -> Vec<(String, Vec<String>)> {
    let root = env!("CARGO_MANIFEST_DIR");
    // Only this platform's dependencies: the others need not be downloaded.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", host, "--manifest-path"])
        .arg(Path::new(root).join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "ssm-session-audit")
        .expect("our package in the metadata");
    let direct: BTreeSet<&str> = ours["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .filter(|n| n.starts_with("aws-sdk-"))
        .collect();
    let mut result = Vec::new();
    for name in direct {
        // The lock holds one version of each SDK crate; take the last listed.
        let package = packages
            .iter()
            .rfind(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the metadata"));
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let dir = manifest.parent().unwrap().join("src/operation");
        let mut ops: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                path.is_dir()
                    .then(|| path.file_name()?.to_str().map(str::to_string))
                    .flatten()
            })
            .collect();
        ops.sort();
        assert!(!ops.is_empty(), "{name} has operations");
        result.push((name.trim_start_matches("aws-sdk-").to_string(), ops));
    }
    result
}

/// The tool's own Rust sources: `src/` and any workspace crate but the simulator
/// (whose SDK calls are test clients of itself, not the tool's).
fn tool_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "simulator" && name != "sim" && name != "target" {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    walk(&root.join("crates"), &mut files);
    files
}

/// X-Amz-Target prefixes of the calls the tool signs itself (`src/call/wire.rs`).
const WIRE_TARGETS: [(&str, &str); 2] =
    [("cloudtrail", "CloudTrail_20131101"), ("ssm", "AmazonSSM")];

/// `snake_case` → `PascalCase`, as the SDK names its operation modules.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[test]
fn every_sdk_call_in_the_source_has_its_permission() {
    let sdk = sdk_operations();
    let mut called: BTreeSet<(String, String)> = BTreeSet::new();
    for file in tool_sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (service, ops) in &sdk {
            for op in ops {
                if text.contains(&format!(".{op}()")) {
                    called.insert((service.clone(), op.clone()));
                }
                // Calls made on the wire (`call::wire`) name their X-Amz-Target.
                for prefix in WIRE_TARGETS
                    .iter()
                    .filter(|(s, _)| s == service)
                    .map(|(_, p)| p)
                {
                    if text.contains(&format!("\"{prefix}.{}\"", pascal(op))) {
                        called.insert((service.clone(), op.clone()));
                    }
                }
            }
        }
    }
    // The scanner itself works: the calls every scan makes are found.
    for known in [
        ("cloudtrail", "lookup_events"),
        ("ssm", "describe_sessions"),
        ("ssm", "get_document"),
        ("organizations", "list_accounts"),
        ("sts", "assume_role"),
        ("s3", "list_objects_v2"),
        ("s3", "get_object"),
    ] {
        assert!(
            called.contains(&(known.0.to_string(), known.1.to_string())),
            "the source scan did not find {known:?}: {called:?}"
        );
    }

    let files = iam::render_all(&every_iam_option());
    let get = |name: &str| -> Value {
        serde_json::from_str(&files.iter().find(|f| f.name == name).unwrap().contents).unwrap()
    };
    let mut granted = policy_actions(&get("caller-policy.json"));
    granted.extend(policy_actions(&get("audit-role-policy.json")));

    let mut missing = Vec::new();
    for (service, op) in &called {
        // An operation name several SDK crates share counts if one of them is known.
        let candidates: Vec<&String> = sdk
            .iter()
            .filter(|(_, ops)| ops.contains(op))
            .map(|(s, _)| s)
            .collect();
        let known = candidates
            .iter()
            .find_map(|s| permissions::operation(s, &pascal(op)));
        match known {
            None => missing.push(format!(
                "{service}:{} is called (.{op}()) but not in permissions::OPERATIONS",
                pascal(op)
            )),
            Some(operation) => {
                if let Some(action) = operation.action {
                    if !granted.contains(action) {
                        missing.push(format!(
                            "{service}:{} needs {action}, which no generated policy grants",
                            operation.name
                        ));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_audit_role_reads_and_the_caller_lists_exactly_the_planned_calls() {
    let files = iam::render_all(&IamOptions::default());
    let get = |name: &str| -> Value {
        serde_json::from_str(&files.iter().find(|f| f.name == name).unwrap().contents).unwrap()
    };
    let audit = policy_actions(&get("audit-role-policy.json"));
    assert_eq!(
        audit.into_iter().collect::<Vec<_>>(),
        [
            "cloudtrail:LookupEvents",
            "ec2:DescribeRegions",
            "ssm:DescribeSessions",
            "ssm:GetDocument",
        ]
    );
    let caller = policy_actions(&get("caller-policy.json"));
    for action in [
        "account:ListRegions",
        "cloudtrail:LookupEvents",
        "ssm:DescribeSessions",
        "ssm:GetDocument",
        "sts:AssumeRole",
    ] {
        assert!(caller.contains(action), "{action}");
    }
    // Nothing optional without its flag.
    assert!(!caller.iter().any(|a| a.starts_with("s3:")
        || a.starts_with("athena:")
        || a.starts_with("glue:")
        || a.starts_with("securityhub:")));
    assert!(!get("caller-policy.json").to_string().contains("MISSING-"));
    assert!(!iam::render_all(&every_iam_option())
        .iter()
        .any(|f| f.contents.contains("MISSING-")));
}

fn schedule_template(o: &ScheduleOptions) -> Value {
    let files = schedule::render_all(o);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "scheduled-scan.json");
    assert!(files[0].contents.ends_with('\n'));
    serde_json::from_str(&files[0].contents).unwrap()
}

fn full_schedule() -> ScheduleOptions {
    ScheduleOptions {
        image: Some("111122223333.dkr.ecr.eu-west-1.amazonaws.com/ssm-session-audit:0.1.0".into()),
        external_id_secret_arn: Some(
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:audit/external-id-AbCdEf".into(),
        ),
        emails: vec!["security@example.com".into(), "security@example.com".into()],
        retention_days: 400,
        regions: Some(vec!["us-east-1".into(), "eu-west-1".into()]),
        fail_on: Some("medium".into()),
        ..Default::default()
    }
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

#[test]
fn the_scheduled_task_runs_the_documented_scan() {
    let template = schedule_template(&full_schedule());
    let tasks = resources_of_type(&template, "AWS::ECS::TaskDefinition");
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0].1["Properties"];
    assert_eq!(task["RequiresCompatibilities"], json!(["FARGATE"]));
    let container = &task["ContainerDefinitions"][0];
    assert_eq!(container["Name"], schedule::CONTAINER_NAME);
    assert_eq!(container["ReadonlyRootFilesystem"], true);
    let command = container["Command"].as_array().unwrap();
    let words: Vec<String> = command
        .iter()
        .map(|w| match w {
            Value::String(s) => s.clone(),
            other => other["Fn::Sub"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(
        words[..6],
        [
            "scan",
            "--since",
            "last",
            "--output",
            "s3://${EvidenceBucket}/runs",
            "--quiet"
        ]
    );
    let joined = words.join(" ");
    assert!(joined.contains("--regions us-east-1,eu-west-1"), "{joined}");
    assert!(joined.contains("--fail-on medium"), "{joined}");
    // The external id never appears as text: it comes from the secret, as the
    // environment variable `scan --external-id` reads.
    assert!(!joined.contains("external-id"), "{joined}");
    assert_eq!(
        container["Secrets"]["Fn::If"][1][0]["Name"],
        schedule::EXTERNAL_ID_ENV
    );
    assert_eq!(
        container["Secrets"]["Fn::If"][1][0]["ValueFrom"],
        json!({"Ref": "ExternalIdSecretArn"})
    );
    assert_eq!(
        template["Parameters"]["ExternalIdSecretArn"]["Default"],
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:audit/external-id-AbCdEf"
    );
    assert_eq!(
        template["Parameters"]["ImageUri"]["Default"],
        "111122223333.dkr.ecr.eu-west-1.amazonaws.com/ssm-session-audit:0.1.0"
    );
    // Duplicate addresses subscribe once.
    assert_eq!(
        resources_of_type(&template, "AWS::SNS::Subscription").len(),
        2
    );

    // The schedule runs that task on Fargate in the stack's cluster.
    let schedules = resources_of_type(&template, "AWS::Scheduler::Schedule");
    assert_eq!(schedules.len(), 1);
    let target = &schedules[0].1["Properties"]["Target"];
    assert_eq!(target["EcsParameters"]["LaunchType"], "FARGATE");
    assert_eq!(
        target["EcsParameters"]["TaskDefinitionArn"],
        json!({"Ref": tasks[0].0})
    );
    assert_eq!(
        schedules[0].1["Properties"]["ScheduleExpression"],
        json!({"Ref": "ScheduleExpression"})
    );
    assert_eq!(
        template["Parameters"]["ScheduleExpression"]["Default"],
        "cron(0 6 * * ? *)"
    );
}

#[test]
fn the_task_role_is_the_callers_policy_from_the_one_list() {
    let template = schedule_template(&ScheduleOptions::default());
    let role = &template["Resources"]["ScanTaskRole"]["Properties"];
    let policy = &role["Policies"][0]["PolicyDocument"];
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = permissions::grants(Principal::Caller, &schedule::TASK_FEATURES)
        .map(|g| g.sid)
        .collect();
    assert_eq!(sids, expected);
    assert!(schedule::TASK_FEATURES.contains(&Feature::S3Output));
    let text = policy.to_string();
    assert!(
        text.contains("arn:${AWS::Partition}:s3:::${EvidenceBucket}/runs/*"),
        "{text}"
    );
    assert!(
        text.contains("arn:${AWS::Partition}:iam::*:role/SessionAuditRole"),
        "{text}"
    );
    assert!(
        !text.contains("arn:aws:") && !text.contains("MISSING-"),
        "{text}"
    );
    // Evidence can be written, never deleted or unlocked.
    let actions = policy_actions(policy);
    assert!(actions.contains("s3:PutObject"));
    assert!(
        !actions
            .iter()
            .any(|a| a.contains("Delete") || a.contains("Bypass")),
        "{actions:?}"
    );
    // The scan's role and the role ECS starts the task with are two roles.
    assert_ne!(
        template["Resources"]["ScanTaskDefinition"]["Properties"]["TaskRoleArn"],
        template["Resources"]["ScanTaskDefinition"]["Properties"]["ExecutionRoleArn"]
    );
}

#[test]
fn the_evidence_bucket_is_locked_private_and_tls_only() {
    let template = schedule_template(&ScheduleOptions::default());
    let bucket = &template["Resources"]["EvidenceBucket"];
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    let p = &bucket["Properties"];
    assert_eq!(p["ObjectLockEnabled"], true);
    let retention = &p["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    assert_eq!(retention["Mode"], "COMPLIANCE");
    assert_eq!(retention["Days"], json!({"Ref": "RetentionDays"}));
    assert_eq!(template["Parameters"]["RetentionDays"]["Default"], 365);
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(p["PublicAccessBlockConfiguration"][key], true, "{key}");
    }
    assert!(p["BucketEncryption"].to_string().contains("AES256"));
    assert!(
        p["LifecycleConfiguration"]["Rules"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    let policy = &template["Resources"]["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"];
    let deny_plain = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
        .expect("a statement denying plain HTTP");
    assert_eq!(deny_plain["Effect"], "Deny");
    assert_eq!(deny_plain["Action"], "s3:*");
    // The notices are encrypted with a rotated customer key.
    let topic = &template["Resources"]["NotificationTopic"]["Properties"];
    assert_eq!(topic["KmsMasterKeyId"], json!({"Ref": "NotificationKey"}));
    assert_eq!(
        template["Resources"]["NotificationKey"]["Properties"]["EnableKeyRotation"],
        true
    );
}

/// An `ECS Task State Change` as EventBridge delivers it (the fields the rule
/// and the mail use; the shape of AWS's documented example).
fn ecs_event(cluster: &str, exit_code: Option<i64>, stop_code: &str) -> Value {
    let mut container = json!({
        "containerArn": "arn:aws:ecs:eu-west-1:111122223333:container/sched/0123/4567",
        "lastStatus": "STOPPED",
        "name": "scan",
        "taskArn": "arn:aws:ecs:eu-west-1:111122223333:task/sched/0123",
    });
    if let Some(code) = exit_code {
        container["exitCode"] = json!(code);
    }
    json!({
        "version": "0",
        "id": "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "111122223333",
        "time": "2026-05-01T06:04:11Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:ecs:eu-west-1:111122223333:task/sched/0123"],
        "detail": {
            "clusterArn": cluster,
            "containers": [container],
            "desiredStatus": "STOPPED",
            "lastStatus": "STOPPED",
            "launchType": "FARGATE",
            "stopCode": stop_code,
            "stoppedReason": "Essential container in task exited",
            "taskArn": "arn:aws:ecs:eu-west-1:111122223333:task/sched/0123",
        },
    })
}

#[test]
fn the_failure_rule_fires_on_a_bad_exit_or_a_task_that_did_not_start() {
    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:111122223333:cluster/sched";
    let pattern = schedule::failure_pattern(json!(CLUSTER));
    let fires = |event: &Value| pattern::matches(&pattern, event);
    for code in [1, 3, 2, 137, 143] {
        assert!(
            fires(&ecs_event(CLUSTER, Some(code), "EssentialContainerExited")),
            "exit {code}"
        );
    }
    assert!(
        !fires(&ecs_event(CLUSTER, Some(0), "EssentialContainerExited")),
        "exit 0"
    );
    assert!(
        fires(&ecs_event(CLUSTER, None, "TaskFailedToStart")),
        "did not start"
    );
    // Another cluster's tasks, and a task still running, are not ours to report.
    let other = "arn:aws:ecs:eu-west-1:111122223333:cluster/web";
    assert!(!fires(&ecs_event(
        other,
        Some(1),
        "EssentialContainerExited"
    )));
    let mut running = ecs_event(CLUSTER, Some(1), "EssentialContainerExited");
    running["detail"]["lastStatus"] = json!("RUNNING");
    assert!(!fires(&running));
    // The deployed rule uses this pattern with the stack's cluster.
    let template = schedule_template(&ScheduleOptions::default());
    let rule = &template["Resources"]["ScanFailureRule"]["Properties"];
    assert_eq!(
        rule["EventPattern"],
        schedule::failure_pattern(json!({"Fn::GetAtt": ["ScanCluster", "Arn"]}))
    );
    assert_eq!(
        rule["Targets"][0]["Arn"],
        json!({"Ref": "NotificationTopic"})
    );
    // A task that cannot even be started by the scheduler raises the alarm.
    let alarm = &template["Resources"]["SchedulerErrorAlarm"]["Properties"];
    assert_eq!(alarm["Namespace"], "AWS/Scheduler");
    assert_eq!(alarm["AlarmActions"], json!([{"Ref": "NotificationTopic"}]));
}

#[test]
fn the_schedule_template_is_deterministic_and_uses_its_options() {
    assert_eq!(
        schedule::render_all(&full_schedule()),
        schedule::render_all(&full_schedule())
    );
    assert_ne!(
        schedule::render_all(&full_schedule()),
        schedule::render_all(&ScheduleOptions::default())
    );
    let template = schedule_template(&ScheduleOptions::default());
    assert!(
        template["Parameters"]["ImageUri"].get("Default").is_none(),
        "no image, no default"
    );
    assert_eq!(template["Parameters"]["ExternalIdSecretArn"]["Default"], "");
}
