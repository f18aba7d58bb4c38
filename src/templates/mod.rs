//! Generators for the infrastructure around the scan: CloudFormation for live
//! EventBridge → SNS alerts on Session Manager calls (one account, or a whole
//! organization forwarding to one central bus), the least-privilege IAM the
//! scan needs (the audit role in every member account, the caller's policy),
//! and the scheduled scan that keeps its evidence in S3.
//!
//! Everything here is pure: options in, file names and bytes out. Templates are
//! JSON built with `serde_json`, whose maps keep keys sorted, so the same options
//! always give the same bytes.

pub mod alerts;
mod cfn;
pub mod iam;
pub mod pattern;
pub mod permissions;
pub mod schedule;

use serde_json::{json, Value};

use crate::model::DEFAULT_EVENT_NAMES;

/// Options for the `alerts` templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertOptions {
    /// Session Manager calls that raise an alert (`StartSession`, ...).
    pub event_names: Vec<String>,
    /// Addresses subscribed to the topic; each must confirm the mail SNS sends.
    pub emails: Vec<String>,
    pub topic_name: String,
    /// The security account holding the central bus (organization mode); only a
    /// default for the member template's parameter.
    pub central_account_id: Option<String>,
    /// Name of the central custom event bus (organization mode).
    pub event_bus_name: String,
    /// Name of the EventBridge rule(s).
    pub rule_name: String,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            event_names: DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect(),
            emails: Vec::new(),
            topic_name: "ssm-session-alerts".to_string(),
            central_account_id: None,
            event_bus_name: "ssm-session-alerts".to_string(),
            rule_name: "ssm-session-alerts".to_string(),
        }
    }
}

/// Options for the `iam` templates and policy documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamOptions {
    /// The audit role's name in every member account.
    pub role_name: String,
    /// The account allowed to assume the audit role; `None` makes it a template
    /// Parameter (and a placeholder in the plain trust policy).
    pub trusted_account_id: Option<String>,
    /// `sts:ExternalId` required by the trust policy; `None` makes it an optional
    /// template Parameter (and no condition in the plain trust policy).
    pub external_id: Option<String>,
    /// Restrict the trust to this role (name, optionally with its path, `*`
    /// allowed) in the trusted account instead of any principal of that account.
    pub caller_role_name: Option<String>,
    /// The partition written into the plain documents (`aws`, `aws-us-gov`,
    /// `aws-cn`); templates use `${AWS::Partition}`.
    pub partition: String,
    /// `--source s3://…`: the trail's bucket (and prefix) the caller reads.
    pub trail: Option<S3Location>,
    /// `--source athena:DB.TABLE`.
    pub athena: Option<AthenaIam>,
    /// `--output s3://…`: the evidence bucket (and prefix).
    pub s3_output: Option<S3Location>,
    /// `--security-hub`.
    pub security_hub: bool,
}

impl Default for IamOptions {
    fn default() -> Self {
        IamOptions {
            role_name: "SessionAuditRole".to_string(),
            trusted_account_id: None,
            external_id: None,
            caller_role_name: None,
            partition: "aws".to_string(),
            trail: None,
            athena: None,
            s3_output: None,
            security_hub: false,
        }
    }
}

/// A bucket and an optional key prefix (no leading or trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// `BUCKET`, `s3://BUCKET` or `s3://BUCKET/prefix/`; validated by
    /// [`IamOptions::validate`] and [`schedule::ScheduleOptions::validate`].
    pub fn parse(text: &str) -> S3Location {
        let rest = text.strip_prefix("s3://").unwrap_or(text);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The object part of an ARN: `*`, or `prefix/*`.
    pub fn objects(&self) -> String {
        if self.prefix.is_empty() {
            "*".to_string()
        } else {
            format!("{}/*", self.prefix)
        }
    }

    fn validate(&self, field: &'static str) -> Result<(), TemplateError> {
        let b = &self.bucket;
        let bytes = b.as_bytes();
        let ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            && bytes[0].is_ascii_alphanumeric()
            && bytes[b.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(invalid(
                field,
                b,
                "an S3 bucket name: 3 to 63 lowercase letters, digits, '.' or '-' (write BUCKET or s3://BUCKET/prefix)",
            ));
        }
        // `{`, `}` and `$` would be read as variables in the templates; `*` and
        // `?` as IAM wildcards.
        if self
            .prefix
            .chars()
            .any(|c| c.is_control() || "{}$*?".contains(c))
        {
            return Err(invalid(
                field,
                &self.prefix,
                "a key prefix without '{', '}', '$', '*', '?' or control characters",
            ));
        }
        Ok(())
    }
}

/// What the Athena source reads and where its results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaIam {
    pub database: String,
    pub table: String,
    pub workgroup: String,
    /// The query result location.
    pub output: S3Location,
    /// `athena-table --create` may create the database and table.
    pub create: bool,
}

/// Partitions whose ARNs the plain documents may be written for.
pub const PARTITIONS: [&str; 3] = ["aws", "aws-us-gov", "aws-cn"];

/// One generated file: a name relative to the output directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub name: String,
    pub contents: String,
}

/// An option that would produce a template AWS rejects (or, worse, one that
/// deploys and silently trusts or alerts the wrong thing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct TemplateError {
    /// The option, in the user's words (`role name`, `e-mail address`, ...).
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> TemplateError {
    TemplateError {
        field,
        value: value.to_string(),
        reason,
    }
}

use crate::ids::is_account_id;

/// `user@domain.tld`, loosely: what SNS accepts for an e-mail subscription.
fn is_email(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(user), Some(domain), None) if !user.is_empty() && domain.contains('.')
    ) && !email.chars().any(|c| c.is_whitespace() || c == '"')
}

/// Characters EventBridge allows in rule and event bus names.
fn is_eventbridge_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Characters IAM allows in a role name (no path).
fn is_iam_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
}

impl AlertOptions {
    /// Checks every option against what AWS accepts. The generators do not fail,
    /// so callers validate first.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.event_names.is_empty() {
            return Err(invalid(
                "event names",
                "",
                "at least one event name is needed",
            ));
        }
        for name in &self.event_names {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "event name",
                    name,
                    "an API call name such as StartSession",
                ));
            }
        }
        for email in &self.emails {
            if !is_email(email) {
                return Err(invalid("e-mail address", email, "expected user@domain"));
            }
        }
        if self.topic_name.is_empty()
            || self.topic_name.len() > 256
            || !self
                .topic_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "topic name",
                &self.topic_name,
                "1 to 256 letters, digits, '_' or '-'",
            ));
        }
        if let Some(id) = &self.central_account_id {
            if !is_account_id(id) {
                return Err(invalid("central account id", id, "expected 12 digits"));
            }
        }
        if !is_eventbridge_name(&self.event_bus_name) || self.event_bus_name.len() > 256 {
            return Err(invalid(
                "event bus name",
                &self.event_bus_name,
                "1 to 256 letters, digits, '.', '_' or '-'",
            ));
        }
        if self.event_bus_name == "default" {
            // The central template creates the bus; the default bus cannot be created.
            return Err(invalid(
                "event bus name",
                &self.event_bus_name,
                "the central bus is a custom bus and cannot be named \"default\"",
            ));
        }
        if !is_eventbridge_name(&self.rule_name) || self.rule_name.len() > 64 {
            return Err(invalid(
                "rule name",
                &self.rule_name,
                "1 to 64 letters, digits, '.', '_' or '-'",
            ));
        }
        Ok(())
    }
}

impl IamOptions {
    /// Checks every option against what IAM accepts.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.role_name.is_empty()
            || self.role_name.len() > 64
            || !self.role_name.bytes().all(is_iam_name_char)
        {
            return Err(invalid(
                "role name",
                &self.role_name,
                "1 to 64 letters, digits or +=,.@_- (no path)",
            ));
        }
        if let Some(id) = &self.trusted_account_id {
            if !is_account_id(id) {
                return Err(invalid("trusted account id", id, "expected 12 digits"));
            }
        }
        if let Some(ext) = &self.external_id {
            if ext.len() < 2
                || ext.len() > 1224
                || !ext
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b))
            {
                return Err(invalid(
                    "external id",
                    ext,
                    "2 to 1224 letters, digits or +=,.@:/_-",
                ));
            }
        }
        if !PARTITIONS.contains(&self.partition.as_str()) {
            return Err(invalid(
                "partition",
                &self.partition,
                "one of aws, aws-us-gov, aws-cn",
            ));
        }
        if let Some(trail) = &self.trail {
            trail.validate("trail bucket")?;
        }
        if let Some(athena) = &self.athena {
            if self.trail.is_none() {
                return Err(invalid(
                    "athena table",
                    &format!("{}.{}", athena.database, athena.table),
                    "Athena reads the trail with the caller's permissions: give the trail's bucket too (--trail-bucket)",
                ));
            }
            for (field, name) in [
                ("athena database", &athena.database),
                ("athena table", &athena.table),
            ] {
                if name.is_empty()
                    || name.len() > 255
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(invalid(
                        field,
                        name,
                        "1 to 255 lowercase letters, digits or '_' (write --athena DATABASE.TABLE)",
                    ));
                }
            }
            if athena.workgroup.is_empty()
                || athena.workgroup.len() > 128
                || !athena
                    .workgroup
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(invalid(
                    "athena workgroup",
                    &athena.workgroup,
                    "1 to 128 letters, digits, '.', '_' or '-'",
                ));
            }
            athena.output.validate("athena output")?;
        }
        if let Some(output) = &self.s3_output {
            output.validate("s3 output")?;
        }
        if let Some(caller) = &self.caller_role_name {
            if caller.is_empty()
                || caller.len() > 512
                || caller.starts_with('/')
                || caller.ends_with('/')
                || !caller
                    .bytes()
                    .all(|b| is_iam_name_char(b) || b == b'/' || b == b'*')
            {
                return Err(invalid(
                    "caller role name",
                    caller,
                    "a role name, optionally with its path (path/name), '*' allowed",
                ));
            }
        }
        Ok(())
    }
}

/// Wraps a CloudTrail record the way EventBridge delivers it to rules on the
/// default bus ("AWS API Call via CloudTrail"). The envelope `id` is a stand-in
/// (the record's `eventID`): EventBridge assigns its own.
pub fn cloudtrail_record_to_eventbridge(record: &Value) -> Value {
    let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or("");
    let event_source = text("eventSource");
    let service = event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source);
    let account = match text("recipientAccountId") {
        "" => record
            .pointer("/userIdentity/accountId")
            .and_then(Value::as_str)
            .unwrap_or(""),
        id => id,
    };
    let id = match text("eventID") {
        "" => "00000000-0000-0000-0000-000000000000",
        id => id,
    };
    json!({
        "version": "0",
        "id": id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": account,
        "time": text("eventTime"),
        "region": text("awsRegion"),
        "resources": [],
        "detail": record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AlertOptions::default().validate(), Ok(()));
        assert_eq!(IamOptions::default().validate(), Ok(()));
        assert_eq!(
            AlertOptions::default().event_names,
            ["StartSession", "ResumeSession", "TerminateSession"]
        );
    }

    #[test]
    fn alert_options_reject_what_aws_would() {
        let bad: Vec<(AlertOptions, &str)> = vec![
            (
                AlertOptions {
                    event_names: vec![],
                    ..Default::default()
                },
                "event names",
            ),
            (
                AlertOptions {
                    event_names: vec!["Start Session".into()],
                    ..Default::default()
                },
                "event name",
            ),
            (
                AlertOptions {
                    emails: vec!["nobody".into()],
                    ..Default::default()
                },
                "e-mail address",
            ),
            (
                AlertOptions {
                    emails: vec!["a@b@c.com".into()],
                    ..Default::default()
                },
                "e-mail address",
            ),
            (
                AlertOptions {
                    topic_name: "has space".into(),
                    ..Default::default()
                },
                "topic name",
            ),
            (
                AlertOptions {
                    central_account_id: Some("12345".into()),
                    ..Default::default()
                },
                "central account id",
            ),
            (
                AlertOptions {
                    event_bus_name: "default".into(),
                    ..Default::default()
                },
                "event bus name",
            ),
            (
                AlertOptions {
                    event_bus_name: "a/b".into(),
                    ..Default::default()
                },
                "event bus name",
            ),
            (
                AlertOptions {
                    rule_name: "r".repeat(65),
                    ..Default::default()
                },
                "rule name",
            ),
        ];
        for (options, field) in bad {
            let err = options.validate().expect_err(field);
            assert_eq!(err.field, field, "{options:?}");
        }
        let good = AlertOptions {
            emails: vec!["sec-team@example.com".into()],
            central_account_id: Some("123456789012".into()),
            ..Default::default()
        };
        assert_eq!(good.validate(), Ok(()));
    }

    #[test]
    fn iam_options_reject_what_iam_would() {
        let bad: Vec<(IamOptions, &str)> = vec![
            (
                IamOptions {
                    role_name: "path/Role".into(),
                    ..Default::default()
                },
                "role name",
            ),
            (
                IamOptions {
                    role_name: "${AWS::Region}".into(),
                    ..Default::default()
                },
                "role name",
            ),
            (
                IamOptions {
                    trusted_account_id: Some("12345678901a".into()),
                    ..Default::default()
                },
                "trusted account id",
            ),
            (
                IamOptions {
                    external_id: Some("x".into()),
                    ..Default::default()
                },
                "external id",
            ),
            (
                IamOptions {
                    caller_role_name: Some("/leading".into()),
                    ..Default::default()
                },
                "caller role name",
            ),
        ];
        for (options, field) in bad {
            let err = options.validate().expect_err(field);
            assert_eq!(err.field, field, "{options:?}");
            assert!(err.to_string().contains(field));
        }
        let good = IamOptions {
            trusted_account_id: Some("123456789012".into()),
            external_id: Some("audit-2024".into()),
            caller_role_name: Some(
                "aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Audit_*".into(),
            ),
            ..Default::default()
        };
        assert_eq!(good.validate(), Ok(()));
    }

    #[test]
    fn wraps_a_record_like_eventbridge() {
        let record = json!({
            "eventSource": "ssm.amazonaws.com",
            "eventName": "StartSession",
            "eventTime": "2025-02-19T20:13:49Z",
            "awsRegion": "us-west-2",
            "recipientAccountId": "111122223333",
            "eventID": "c61c9a5d-4d9c-45ee-8c46-9845ea001e97",
        });
        let event = cloudtrail_record_to_eventbridge(&record);
        assert_eq!(event["source"], "aws.ssm");
        assert_eq!(event["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(event["account"], "111122223333");
        assert_eq!(event["region"], "us-west-2");
        assert_eq!(event["time"], "2025-02-19T20:13:49Z");
        assert_eq!(event["resources"], json!([]));
        assert_eq!(event["detail"], record);

        let other = json!({"eventSource": "ssm-guiconnect.amazonaws.com",
            "userIdentity": {"accountId": "444455556666"}});
        let event = cloudtrail_record_to_eventbridge(&other);
        assert_eq!(event["source"], "aws.ssm-guiconnect");
        assert_eq!(event["account"], "444455556666");
    }
}
