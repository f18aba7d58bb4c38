//! CloudFormation for live alerts on Session Manager calls: an EventBridge rule on
//! the CloudTrail "AWS API Call via CloudTrail" events of `ssm.amazonaws.com`, and
//! an SNS topic that mails a readable message.
//!
//! Two shapes:
//! - `alerts-account.json`: rule and topic in one account and region.
//! - `alerts-org-member.json` + `alerts-org-central.json`: every member account and
//!   region forwards matching events to one custom bus in the security account,
//!   whose rule feeds the one topic of the whole organization.

use serde_json::{json, Map, Value};

use super::cfn::{get_att, not_empty, reference, sub, topic_key, Template, POLICY_VERSION};
use super::{AlertOptions, GeneratedFile};
use crate::model::DEFAULT_EVENT_NAMES;

pub const ACCOUNT_TEMPLATE: &str = "alerts-account.json";
pub const ORG_MEMBER_TEMPLATE: &str = "alerts-org-member.json";
pub const ORG_CENTRAL_TEMPLATE: &str = "alerts-org-central.json";

/// The EventBridge pattern matching the given Session Manager calls.
pub fn event_pattern(event_names: &[String]) -> Value {
    json!({
        "source": ["aws.ssm"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["ssm.amazonaws.com"],
            "eventName": event_names,
        },
    })
}

/// The three templates, in a stable order.
pub fn render_all(o: &AlertOptions) -> Vec<GeneratedFile> {
    vec![
        account_template(o).render(ACCOUNT_TEMPLATE),
        org_member_template(o).render(ORG_MEMBER_TEMPLATE),
        org_central_template(o).render(ORG_CENTRAL_TEMPLATE),
    ]
}

/// The fields the alert message shows, as (variable, JSON path in the event).
/// Only AWS-produced fields: the caller's `userAgent` is free text we keep out
/// of a mail body.
const MESSAGE_FIELDS: [(&str, &str); 14] = [
    ("eventName", "$.detail.eventName"),
    ("account", "$.account"),
    ("region", "$.region"),
    ("principal", "$.detail.userIdentity.arn"),
    ("principalType", "$.detail.userIdentity.type"),
    ("eventTime", "$.detail.eventTime"),
    ("sourceIp", "$.detail.sourceIPAddress"),
    ("target", "$.detail.requestParameters.target"),
    ("document", "$.detail.requestParameters.documentName"),
    ("startedSession", "$.detail.responseElements.sessionId"),
    ("requestedSession", "$.detail.requestParameters.sessionId"),
    ("errorCode", "$.detail.errorCode"),
    ("errorMessage", "$.detail.errorMessage"),
    ("eventId", "$.detail.eventID"),
];

/// The message lines. EventBridge sends a template of quoted strings, one per
/// line, as plain text; a variable whose path is missing from the event is left
/// empty (StartSession has no request session id, TerminateSession no target).
const MESSAGE_LINES: [&str; 11] = [
    "Session Manager <eventName> in account <account>, region <region>",
    "Who: <principal> (<principalType>)",
    "When: <eventTime>",
    "From IP: <sourceIp>",
    "Target: <target>",
    "Document: <document>",
    "Session (started or resumed): <startedSession>",
    "Session (resumed or terminated): <requestedSession>",
    "Error (empty when the call succeeded): <errorCode> <errorMessage>",
    "CloudTrail event id: <eventId>",
    "Look for more with: ssm-session-audit scan --accounts <account> --regions <region>",
];

/// The target's input transformer: a readable mail instead of raw JSON.
pub fn input_transformer() -> Value {
    let paths: Map<String, Value> = MESSAGE_FIELDS
        .iter()
        .map(|(name, path)| (name.to_string(), Value::from(*path)))
        .collect();
    let template = MESSAGE_LINES
        .iter()
        .map(|line| format!("\"{line}\""))
        .collect::<Vec<_>>()
        .join("\n");
    json!({ "InputPathsMap": paths, "InputTemplate": template })
}

/// What the mail for `event` says: the input transformer applied the way
/// EventBridge applies it (values inserted as they are, missing ones empty).
pub fn preview_message(event: &Value) -> String {
    MESSAGE_LINES
        .iter()
        .map(|line| {
            let mut text = line.to_string();
            for (name, path) in MESSAGE_FIELDS {
                let value = match lookup(event, path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                text = text.replace(&format!("<{name}>"), &value);
            }
            text
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Resolves a `$.a.b` path (dot notation only, as the transformer uses).
fn lookup<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|key| !key.is_empty())
        .try_fold(event, |value, key| value.get(key))
}

fn pattern_of(o: &AlertOptions) -> Value {
    // An empty list would match nothing (and EventBridge rejects it): fall back
    // to the default calls. `AlertOptions::validate` reports the empty list.
    let mut names: Vec<String> = Vec::new();
    for name in &o.event_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if names.is_empty() {
        names = DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect();
    }
    event_pattern(&names)
}

const RULE: &str = "SessionAlertRule";
const TOPIC: &str = "SessionAlertTopic";
const TOPIC_KEY: &str = "SessionAlertTopicKey";
const NOTIFICATION_EMAIL: &str = "NotificationEmail";
const HAS_NOTIFICATION_EMAIL: &str = "HasNotificationEmail";

/// The topic, its policy (only this rule may publish) and the mail subscriptions.
fn add_topic(t: &mut Template, o: &AlertOptions, rule: &str) {
    t.parameters.insert(
        NOTIFICATION_EMAIL.into(),
        json!({
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^[^@\\s\"]+@[^@\\s\"]+$",
            "ConstraintDescription": "an e-mail address, or empty",
            "Description": "Optional: one more e-mail address to subscribe to the alert topic (it must confirm the mail SNS sends). Leave empty for none.",
        }),
    );
    t.conditions
        .insert(HAS_NOTIFICATION_EMAIL.into(), not_empty(NOTIFICATION_EMAIL));

    // A customer-managed key: the alerts name principals and addresses, and
    // EventBridge cannot publish to a topic under the AWS-managed SNS key.
    t.resources.insert(
        TOPIC_KEY.into(),
        topic_key(
            "ssm-session-audit alerts: encrypts the alert topic (EventBridge publishes with it).",
            &["events.amazonaws.com"],
            false,
        ),
    );
    t.resources.insert(
        TOPIC.into(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": o.topic_name,
                "DisplayName": "SSM session alerts",
                "KmsMasterKeyId": reference(TOPIC_KEY),
            },
        }),
    );
    t.resources.insert(
        "SessionAlertTopicPolicy".into(),
        json!({
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [reference(TOPIC)],
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [{
                        "Sid": "AllowSessionAlertRuleToPublish",
                        "Effect": "Allow",
                        "Principal": { "Service": "events.amazonaws.com" },
                        "Action": "sns:Publish",
                        "Resource": reference(TOPIC),
                        // Only our rule, so no other rule in the account can
                        // post look-alike alerts through EventBridge.
                        "Condition": { "ArnEquals": { "aws:SourceArn": get_att(rule, "Arn") } },
                    }],
                },
            },
        }),
    );
    t.resources.insert(
        "NotificationEmailSubscription".into(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": HAS_NOTIFICATION_EMAIL,
            "Properties": {
                "TopicArn": reference(TOPIC),
                "Protocol": "email",
                "Endpoint": reference(NOTIFICATION_EMAIL),
            },
        }),
    );
    let mut emails: Vec<&String> = Vec::new();
    for email in &o.emails {
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    for (i, email) in emails.iter().enumerate() {
        t.resources.insert(
            format!("EmailSubscription{}", i + 1),
            json!({
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": reference(TOPIC),
                    "Protocol": "email",
                    "Endpoint": email,
                },
            }),
        );
    }
    t.output(
        "TopicArn",
        "The SNS topic that receives the alerts; subscribe more endpoints to it.",
        reference(TOPIC),
    );
}

fn topic_target() -> Value {
    json!({
        "Id": "session-alert-topic",
        "Arn": reference(TOPIC),
        "InputTransformer": input_transformer(),
    })
}

fn account_template(o: &AlertOptions) -> Template {
    let mut t = Template::new(&format!(
        "ssm-session-audit: mails an alert for every Session Manager call ({}) in this account and region. Needs CloudTrail management events on in this account and region.",
        o.event_names.join(", ")
    ));
    t.resources.insert(
        RULE.into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": o.rule_name,
                "Description": "Session Manager calls recorded by CloudTrail, to the alert topic",
                "EventPattern": pattern_of(o),
                "State": "ENABLED",
                "Targets": [topic_target()],
            },
        }),
    );
    add_topic(&mut t, o, RULE);
    t.output(
        "RuleArn",
        "The EventBridge rule matching Session Manager calls.",
        get_att(RULE, "Arn"),
    );
    t
}

const CENTRAL_ACCOUNT_ID: &str = "CentralAccountId";
const CENTRAL_REGION: &str = "CentralRegion";
const CENTRAL_BUS_NAME: &str = "CentralEventBusName";
const FORWARD_ROLE: &str = "ForwardToCentralBusRole";
const CENTRAL_BUS_ARN: &str =
    "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/${CentralEventBusName}";

fn org_member_template(o: &AlertOptions) -> Template {
    let mut t = Template::new(
        "ssm-session-audit (organization mode, member part): forwards Session Manager calls in this account and region to the central event bus in the security account. Deploy with a service-managed StackSet to every account and region; needs CloudTrail management events on (an organization trail covers it).",
    );
    let mut account = json!({
        "Type": "String",
        "AllowedPattern": "^\\d{12}$",
        "ConstraintDescription": "a 12-digit account id",
        "Description": "The security account that holds the central event bus (alerts-org-central.json).",
    });
    if let Some(id) = &o.central_account_id {
        account["Default"] = Value::from(id.as_str());
    }
    t.parameters.insert(CENTRAL_ACCOUNT_ID.into(), account);
    // The region is not defaulted: every member region must forward to the one
    // region of the central bus, and a wrong guess would drop alerts silently.
    t.parameters.insert(
        CENTRAL_REGION.into(),
        json!({
            "Type": "String",
            "AllowedPattern": "^[a-z]{2}(-[a-z]+)+-\\d$",
            "ConstraintDescription": "a region code such as us-east-1",
            "Description": "The region of the central event bus.",
        }),
    );
    t.parameters.insert(
        CENTRAL_BUS_NAME.into(),
        json!({
            "Type": "String",
            "Default": o.event_bus_name,
            "AllowedPattern": "^[\\w.-]+$",
            "Description": "The name of the central event bus.",
        }),
    );

    // Cross-account bus targets need a role for EventBridge to put events with.
    // No RoleName: IAM names are global, and the StackSet puts one copy of this
    // stack in every region of the account.
    t.resources.insert(
        FORWARD_ROLE.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Lets EventBridge forward Session Manager calls to the central event bus (ssm-session-audit).",
                "AssumeRolePolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "events.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                    }],
                },
                "Policies": [{
                    "PolicyName": "put-events-to-central-bus",
                    "PolicyDocument": {
                        "Version": POLICY_VERSION,
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": sub(CENTRAL_BUS_ARN),
                        }],
                    },
                }],
            },
        }),
    );
    t.resources.insert(
        RULE.into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": o.rule_name,
                "Description": "Session Manager calls recorded by CloudTrail, to the central event bus",
                "EventPattern": pattern_of(o),
                "State": "ENABLED",
                "Targets": [{
                    "Id": "central-event-bus",
                    "Arn": sub(CENTRAL_BUS_ARN),
                    "RoleArn": get_att(FORWARD_ROLE, "Arn"),
                }],
            },
        }),
    );
    t.output(
        "RuleArn",
        "The rule forwarding Session Manager calls.",
        get_att(RULE, "Arn"),
    );
    t.output(
        "CentralEventBusArn",
        "Where the events go.",
        sub(CENTRAL_BUS_ARN),
    );
    t
}

const ORGANIZATION_ID: &str = "OrganizationId";
const CENTRAL_BUS: &str = "CentralEventBus";

fn org_central_template(o: &AlertOptions) -> Template {
    let mut t = Template::new(
        "ssm-session-audit (organization mode, central part): a custom event bus that every account of the organization may put events on, and one alert topic for every Session Manager call the member stacks forward. Deploy once, in the security account.",
    );
    t.parameters.insert(
        ORGANIZATION_ID.into(),
        json!({
            "Type": "String",
            "AllowedPattern": "^o-[a-z0-9]{10,32}$",
            "ConstraintDescription": "an organization id such as o-a1b2c3d4e5",
            "Description": "The organization whose accounts may put events on the central bus (aws organizations describe-organization).",
        }),
    );
    t.resources.insert(
        CENTRAL_BUS.into(),
        json!({
            "Type": "AWS::Events::EventBus",
            "Properties": { "Name": o.event_bus_name },
        }),
    );
    t.resources.insert(
        "CentralEventBusPolicy".into(),
        json!({
            "Type": "AWS::Events::EventBusPolicy",
            "Properties": {
                "EventBusName": reference(CENTRAL_BUS),
                "StatementId": "AllowOrganizationToPutEvents",
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "events:PutEvents",
                    "Resource": get_att(CENTRAL_BUS, "Arn"),
                    "Condition": { "StringEquals": { "aws:PrincipalOrgID": reference(ORGANIZATION_ID) } },
                },
            },
        }),
    );
    t.resources.insert(
        RULE.into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": o.rule_name,
                "Description": "Session Manager calls forwarded from every account, to the alert topic",
                "EventBusName": reference(CENTRAL_BUS),
                "EventPattern": pattern_of(o),
                "State": "ENABLED",
                "Targets": [topic_target()],
            },
        }),
    );
    add_topic(&mut t, o, RULE);
    t.output(
        "CentralEventBusArn",
        "The bus the member stacks forward to (their CentralAccountId, CentralRegion and CentralEventBusName parameters).",
        get_att(CENTRAL_BUS, "Arn"),
    );
    t.output(
        "RuleArn",
        "The rule on the central bus.",
        get_att(RULE, "Arn"),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pattern_has_the_documented_shape() {
        let p = event_pattern(&names(&["StartSession"]));
        assert_eq!(
            p,
            json!({"source":["aws.ssm"],"detail-type":["AWS API Call via CloudTrail"],
                   "detail":{"eventSource":["ssm.amazonaws.com"],"eventName":["StartSession"]}})
        );
    }

    #[test]
    fn empty_or_repeated_event_names_still_give_a_valid_pattern() {
        let empty = AlertOptions {
            event_names: vec![],
            ..Default::default()
        };
        assert_eq!(
            pattern_of(&empty)["detail"]["eventName"],
            json!(["StartSession", "ResumeSession", "TerminateSession"])
        );
        let repeated = AlertOptions {
            event_names: names(&["StartSession", "StartSession"]),
            ..Default::default()
        };
        assert_eq!(
            pattern_of(&repeated)["detail"]["eventName"],
            json!(["StartSession"])
        );
    }

    #[test]
    fn every_placeholder_is_a_defined_variable() {
        // EventBridge rejects a template naming a variable the paths map lacks.
        let transformer = input_transformer();
        let paths = transformer["InputPathsMap"].as_object().unwrap();
        let template = transformer["InputTemplate"].as_str().unwrap();
        let mut rest = template;
        let mut seen = 0;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').unwrap() + start;
            let name = &rest[start + 1..end];
            assert!(paths.contains_key(name), "undefined variable {name}");
            seen += 1;
            rest = &rest[end + 1..];
        }
        assert!(seen >= MESSAGE_FIELDS.len());
        for (name, path) in MESSAGE_FIELDS {
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}");
            assert!(path.starts_with("$."), "{path}");
        }
        // One quoted string per line: EventBridge delivers it as plain text.
        for line in template.lines() {
            assert!(line.starts_with('"') && line.ends_with('"'), "{line}");
            assert!(!line[1..line.len() - 1].contains('"'), "{line}");
        }
    }

    #[test]
    fn preview_fills_known_fields_and_blanks_missing_ones() {
        let event = json!({
            "account": "111122223333",
            "region": "eu-west-1",
            "detail": {
                "eventName": "TerminateSession",
                "userIdentity": {"arn": "arn:aws:iam::111122223333:user/alice", "type": "IAMUser"},
                "eventTime": "2025-01-01T00:00:00Z",
                "sourceIPAddress": "203.0.113.9",
                "requestParameters": {"sessionId": "alice-0123"},
                "responseElements": null,
                "eventID": "e-1",
            }
        });
        let message = preview_message(&event);
        assert!(message.starts_with(
            "Session Manager TerminateSession in account 111122223333, region eu-west-1\n"
        ));
        assert!(message.contains("Who: arn:aws:iam::111122223333:user/alice (IAMUser)\n"));
        assert!(message.contains("From IP: 203.0.113.9\n"));
        assert!(message.contains("Target: \n"));
        assert!(message.contains("Session (resumed or terminated): alice-0123\n"));
        assert!(message.contains("Session (started or resumed): \n"));
        assert!(!message.contains('<'), "{message}");
    }

    #[test]
    fn rule_name_and_emails_reach_the_templates() {
        let o = AlertOptions {
            emails: names(&["a@example.com", "b@example.com", "a@example.com"]),
            rule_name: "my-rule".into(),
            topic_name: "my-topic".into(),
            central_account_id: Some("999988887777".into()),
            ..Default::default()
        };
        let account = account_template(&o).to_value();
        let resources = &account["Resources"];
        assert_eq!(resources[RULE]["Properties"]["Name"], "my-rule");
        assert_eq!(resources[TOPIC]["Properties"]["TopicName"], "my-topic");
        assert_eq!(
            resources["EmailSubscription1"]["Properties"]["Endpoint"],
            "a@example.com"
        );
        assert_eq!(
            resources["EmailSubscription2"]["Properties"]["Endpoint"],
            "b@example.com"
        );
        assert!(resources.get("EmailSubscription3").is_none());

        let member = org_member_template(&o).to_value();
        assert_eq!(
            member["Parameters"][CENTRAL_ACCOUNT_ID]["Default"],
            "999988887777"
        );
        let default_member = org_member_template(&AlertOptions::default()).to_value();
        assert!(default_member["Parameters"][CENTRAL_ACCOUNT_ID]
            .get("Default")
            .is_none());
    }

    #[test]
    fn topic_accepts_only_the_rule() {
        for template in [
            account_template(&AlertOptions::default()),
            org_central_template(&AlertOptions::default()),
        ] {
            let v = template.to_value();
            let statement = &v["Resources"]["SessionAlertTopicPolicy"]["Properties"]
                ["PolicyDocument"]["Statement"][0];
            assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
            assert_eq!(statement["Action"], "sns:Publish");
            assert_eq!(
                statement["Condition"]["ArnEquals"]["aws:SourceArn"],
                get_att(RULE, "Arn")
            );
            let target = &v["Resources"][RULE]["Properties"]["Targets"][0];
            assert_eq!(target["Arn"], reference(TOPIC));
            assert_eq!(target["InputTransformer"], input_transformer());
        }
    }

    #[test]
    fn central_bus_admits_only_the_organization() {
        let v = org_central_template(&AlertOptions::default()).to_value();
        let statement = &v["Resources"]["CentralEventBusPolicy"]["Properties"]["Statement"];
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
            reference(ORGANIZATION_ID)
        );
        assert_eq!(statement["Action"], "events:PutEvents");
        assert_eq!(
            v["Resources"][RULE]["Properties"]["EventBusName"],
            reference(CENTRAL_BUS)
        );
    }

    #[test]
    fn member_forwards_with_a_role_limited_to_the_bus() {
        let v = org_member_template(&AlertOptions::default()).to_value();
        let target = &v["Resources"][RULE]["Properties"]["Targets"][0];
        assert_eq!(target["Arn"], sub(CENTRAL_BUS_ARN));
        assert_eq!(target["RoleArn"], get_att(FORWARD_ROLE, "Arn"));
        let role = &v["Resources"][FORWARD_ROLE]["Properties"];
        assert!(role.get("RoleName").is_none());
        let statement = &role["Policies"][0]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Action"], "events:PutEvents");
        assert_eq!(statement["Resource"], sub(CENTRAL_BUS_ARN));
    }
}
