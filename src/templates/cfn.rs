//! Small builders for CloudFormation's JSON: intrinsic functions and the shared
//! shape of a template, so the generators read like the templates they make.

use serde_json::{json, Map, Value};

use super::GeneratedFile;

pub(crate) const TEMPLATE_VERSION: &str = "2010-09-09";
pub(crate) const POLICY_VERSION: &str = "2012-10-17";

pub(crate) fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

pub(crate) fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

/// `Fn::Sub`. Callers only interpolate validated names, which cannot hold `${`.
pub(crate) fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

pub(crate) fn condition_if(condition: &str, then: Value, otherwise: Value) -> Value {
    json!({ "Fn::If": [condition, then, otherwise] })
}

pub(crate) fn no_value() -> Value {
    reference("AWS::NoValue")
}

/// A condition that holds when a string parameter is not empty.
pub(crate) fn not_empty(parameter: &str) -> Value {
    json!({ "Fn::Not": [{ "Fn::Equals": [reference(parameter), ""] }] })
}

/// A customer-managed KMS key (rotated yearly) for an SNS topic whose
/// publishers are the AWS services `publishers` (EventBridge cannot publish to
/// a topic under the AWS-managed SNS key, whose policy cannot be changed);
/// with `logs`, CloudWatch Logs of this account and region may use it too.
pub(crate) fn topic_key(description: &str, publishers: &[&str], logs: bool) -> Value {
    let mut statements = vec![
        json!({
            "Sid": "TheAccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": { "AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") },
            "Action": "kms:*",
            "Resource": "*",
        }),
        json!({
            "Sid": "TheServicesPublishToTheEncryptedTopic",
            "Effect": "Allow",
            "Principal": { "Service": publishers },
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }),
    ];
    if logs {
        statements.push(json!({
            "Sid": "CloudWatchLogsEncryptsTheLogGroups",
            "Effect": "Allow",
            "Principal": { "Service": sub("logs.${AWS::Region}.amazonaws.com") },
            "Action": ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"),
                },
            },
        }));
    }
    json!({
        "Type": "AWS::KMS::Key",
        "Properties": {
            "Description": description,
            "EnableKeyRotation": true,
            "KeyPolicy": { "Version": POLICY_VERSION, "Statement": statements },
        },
    })
}

/// The parts of one template, assembled by [`Template::render`].
#[derive(Default)]
pub(crate) struct Template {
    pub description: String,
    pub parameters: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub resources: Map<String, Value>,
    pub outputs: Map<String, Value>,
}

impl Template {
    pub(crate) fn new(description: &str) -> Self {
        Template {
            description: description.to_string(),
            ..Default::default()
        }
    }

    pub(crate) fn output(&mut self, name: &str, description: &str, value: Value) {
        self.outputs.insert(
            name.to_string(),
            json!({ "Description": description, "Value": value }),
        );
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut template = Map::new();
        template.insert("AWSTemplateFormatVersion".into(), TEMPLATE_VERSION.into());
        template.insert("Description".into(), self.description.clone().into());
        // Empty sections are left out: CloudFormation rejects an empty Conditions map.
        for (key, section) in [
            ("Parameters", &self.parameters),
            ("Conditions", &self.conditions),
            ("Resources", &self.resources),
            ("Outputs", &self.outputs),
        ] {
            if !section.is_empty() {
                template.insert(key.into(), Value::Object(section.clone()));
            }
        }
        Value::Object(template)
    }

    pub(crate) fn render(&self, name: &str) -> GeneratedFile {
        file(name, &self.to_value())
    }
}

/// Pretty JSON with a final newline; keys come out sorted (serde_json's map).
pub(crate) fn file(name: &str, value: &Value) -> GeneratedFile {
    let mut contents =
        serde_json::to_string_pretty(value).expect("a serde_json::Value always serializes");
    contents.push('\n');
    GeneratedFile {
        name: name.to_string(),
        contents,
    }
}
