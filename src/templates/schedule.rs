//! CloudFormation for the scheduled scan that keeps its evidence
//! (`scheduled-scan.json`), for the management (or delegated administrator)
//! account:
//!
//! - an EventBridge Scheduler schedule that runs one ECS Fargate task, the
//!   container running `ssm-session-audit scan --since last --output
//!   s3://<evidence bucket>/runs --quiet …` with the caller's least-privilege
//!   role from [`super::permissions`];
//! - the evidence bucket: Object Lock in compliance mode with a default
//!   retention, versioning, SSE-S3, a lifecycle, every public-access block on,
//!   a TLS-only policy, and server access logs to a second bucket;
//! - an SNS topic (KMS-encrypted) told when a run exits non-zero (1 findings,
//!   3 incomplete, 2 usage, anything else a crash) or its task fails to start
//!   (an EventBridge rule on `ECS Task State Change`), and when the scheduler
//!   cannot start the task at all (a CloudWatch alarm on its
//!   `TargetErrorCount`);
//! - the container's log group.
//!
//! Why Fargate and not CodeBuild: the task is the image and its role, nothing
//! else; an ECS task's exit code reaches EventBridge in the task state change
//! (`containers[].exitCode`), so "exited 1 or 3" is a plain event pattern,
//! while a CodeBuild build only reports SUCCEEDED or FAILED and the exit code
//! would have to be parsed out of the build log; and CodeBuild bills a build
//! environment and needs a buildspec around a program that needs none.

use serde_json::{json, Map, Value};

use super::cfn::{
    condition_if, get_att, no_value, not_empty, reference, sub, topic_key, Template, POLICY_VERSION,
};
use super::permissions::{self, Feature, Principal, Vars};
use super::{invalid, is_account_id, is_email, GeneratedFile, TemplateError};

pub const SCHEDULE_TEMPLATE: &str = "scheduled-scan.json";

/// The container's name in the task definition (and in `run-task` overrides).
pub const CONTAINER_NAME: &str = "scan";
/// Where the scan's `--output` goes inside the evidence bucket.
pub const RUNS_PREFIX: &str = "runs";
/// The environment variable the task's secret fills; `scan --external-id`
/// reads it when the flag is not given.
pub const EXTERNAL_ID_ENV: &str = "SSM_SESSION_AUDIT_EXTERNAL_ID";

/// Options for the schedule template. Scan options are written into the
/// container's command; everything about the deployment is a Parameter with
/// these as defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// EventBridge Scheduler expression: `cron(…)`, `rate(…)` or `at(…)`.
    pub schedule_expression: String,
    /// IANA time zone the cron expression is read in.
    pub timezone: String,
    /// The image URI (a default for the `ImageUri` parameter).
    pub image: Option<String>,
    /// ARN of the Secrets Manager secret or SSM parameter holding the external
    /// id (a default for the `ExternalIdSecretArn` parameter).
    pub external_id_secret_arn: Option<String>,
    /// Addresses subscribed to the notification topic.
    pub emails: Vec<String>,
    /// Default Object Lock retention of the evidence, in days.
    pub retention_days: u32,
    /// Scan options, already checked by the scan's own config resolution:
    /// `--role-name` (always written), `--regions`, `--accounts`,
    /// `--exclude-accounts`, `--ou`, `--fail-on`, `--format`.
    pub role_name: String,
    pub regions: Option<Vec<String>>,
    pub accounts: Vec<String>,
    pub exclude_accounts: Vec<String>,
    pub ou: Vec<String>,
    pub fail_on: Option<String>,
    pub formats: Option<Vec<String>>,
    /// A config file baked into the image, passed as `scan --config PATH`.
    pub scan_config: Option<String>,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            schedule_expression: "cron(0 6 * * ? *)".to_string(),
            timezone: "UTC".to_string(),
            image: None,
            external_id_secret_arn: None,
            emails: Vec::new(),
            retention_days: 365,
            role_name: "SessionAuditRole".to_string(),
            regions: None,
            accounts: Vec::new(),
            exclude_accounts: Vec::new(),
            ou: Vec::new(),
            fail_on: None,
            formats: None,
            scan_config: None,
        }
    }
}

/// Text that goes into a command, an `Fn::Sub` and a shell line unquoted:
/// no `$`, quotes, whitespace, backslashes or control characters.
fn is_plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1024
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "$'\"`\\{}".contains(c))
}

fn is_secret_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !super::PARTITIONS.contains(&parts[1]) {
        return false;
    }
    let resource_ok = match parts[2] {
        "secretsmanager" => parts[5].strip_prefix("secret:").is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
        }),
        "ssm" => parts[5].strip_prefix("parameter/").is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        }),
        _ => false,
    };
    resource_ok && crate::config::is_region_name(parts[3]) && is_account_id(parts[4])
}

impl ScheduleOptions {
    /// Checks what the template itself needs; the scan options are checked by
    /// the scan's config resolution before they get here.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let e = &self.schedule_expression;
        let shaped = ["cron(", "rate(", "at("].iter().any(|p| e.starts_with(p))
            && e.ends_with(')')
            && e.len() <= 256
            && !e.chars().any(|c| c.is_control() || "$'\"`\\{}".contains(c));
        if !shaped {
            return Err(invalid(
                "schedule",
                e,
                "an EventBridge Scheduler expression such as cron(0 6 * * ? *) or rate(1 day)",
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "time zone",
                &self.timezone,
                "an IANA time zone such as UTC or Europe/Berlin",
            ));
        }
        if let Some(image) = &self.image {
            if !is_plain_word(image) || image.len() > 255 {
                return Err(invalid(
                    "image",
                    image,
                    "an image URI such as 111122223333.dkr.ecr.us-east-1.amazonaws.com/ssm-session-audit:0.1.0",
                ));
            }
        }
        if let Some(arn) = &self.external_id_secret_arn {
            if !is_secret_arn(arn) {
                return Err(invalid(
                    "external id secret",
                    arn,
                    "the ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or an SSM parameter (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)",
                ));
            }
        }
        for email in &self.emails {
            if !is_email(email) {
                return Err(invalid("e-mail address", email, "expected user@domain"));
            }
        }
        if !(1..=36_500).contains(&self.retention_days) {
            return Err(invalid(
                "retention days",
                &self.retention_days.to_string(),
                "1 to 36500 days",
            ));
        }
        if let Some(path) = &self.scan_config {
            if !path.starts_with('/') || !is_plain_word(path) {
                return Err(invalid(
                    "scan config",
                    path,
                    "an absolute path inside the image, without spaces, quotes or '$'",
                ));
            }
        }
        for word in self.scan_words() {
            if !is_plain_word(&word) {
                return Err(invalid(
                    "scan option",
                    &word,
                    "no spaces, quotes, '$' or braces in scan options",
                ));
            }
        }
        Ok(())
    }

    /// The scan options as command words (without `--since` and `--output`).
    fn scan_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        let mut pair = |flag: &str, value: String| {
            words.push(flag.to_string());
            words.push(value);
        };
        if let Some(path) = &self.scan_config {
            pair("--config", path.clone());
        }
        pair("--role-name", self.role_name.clone());
        if let Some(regions) = &self.regions {
            pair("--regions", regions.join(","));
        }
        for (flag, list) in [
            ("--accounts", &self.accounts),
            ("--exclude-accounts", &self.exclude_accounts),
            ("--ou", &self.ou),
        ] {
            if !list.is_empty() {
                pair(flag, list.join(","));
            }
        }
        if let Some(level) = &self.fail_on {
            pair("--fail-on", level.clone());
        }
        if let Some(formats) = &self.formats {
            pair("--format", formats.join(","));
        }
        words
    }

    /// The container's command, with `${EvidenceBucket}` standing for the
    /// bucket's name. `since` is `last` for the schedule; a first run by hand
    /// gives a duration instead.
    pub fn scan_command(&self, since: &str) -> Vec<String> {
        let mut command: Vec<String> = [
            "scan",
            "--since",
            since,
            "--output",
            &format!("s3://${{{EVIDENCE_BUCKET}}}/{RUNS_PREFIX}"),
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        command.extend(self.scan_words());
        command
    }
}

/// The one file.
pub fn render_all(o: &ScheduleOptions) -> Vec<GeneratedFile> {
    vec![schedule_template(o).render(SCHEDULE_TEMPLATE)]
}

/// The features the scheduled task's role needs: the scan and its evidence.
/// No `S3OutputRetention`: the bucket's default retention locks every object,
/// so the command does not pass `--object-lock-days`.
pub const TASK_FEATURES: [Feature; 2] = [Feature::Scan, Feature::S3Output];

/// The task role's resource variables, as CloudFormation references.
fn task_vars(o: &ScheduleOptions) -> Vars {
    let mut vars = Vars::new();
    vars.insert("partition", "${AWS::Partition}".into());
    vars.insert("account", "${AWS::AccountId}".into());
    vars.insert("role_name", o.role_name.clone());
    vars.insert("evidence_bucket", format!("${{{EVIDENCE_BUCKET}}}"));
    vars.insert("evidence_objects", format!("{RUNS_PREFIX}/*"));
    vars
}

/// The EventBridge pattern for a finished run that needs a look: the task
/// stopped in `cluster_arn` and its container exited non-zero, or the task
/// never started. Numeric matching: `exitCode` is a JSON number.
pub fn failure_pattern(cluster_arn: Value) -> Value {
    json!({
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "$or": [
                { "containers": { "exitCode": [{ "numeric": [">", 0] }] } },
                { "stopCode": ["TaskFailedToStart"] },
            ],
        },
    })
}

/// The mail's fields, as (variable, JSON path in the ECS event).
const MESSAGE_FIELDS: [(&str, &str); 9] = [
    ("account", "$.account"),
    ("region", "$.region"),
    ("exitCode", "$.detail.containers[0].exitCode"),
    ("containerReason", "$.detail.containers[0].reason"),
    ("stopCode", "$.detail.stopCode"),
    ("stoppedReason", "$.detail.stoppedReason"),
    ("startedAt", "$.detail.startedAt"),
    ("stoppedAt", "$.detail.stoppedAt"),
    ("task", "$.detail.taskArn"),
];

/// The mail's lines; `${…}` are filled by `Fn::Sub`, `<…>` by EventBridge.
const MESSAGE_LINES: [&str; 12] = [
    "ssm-session-audit: the scheduled scan in account <account>, region <region> needs a look.",
    "Exit code: <exitCode>",
    "  1 = findings at or above --fail-on (the report has them)",
    "  3 = coverage incomplete: some account or region could not be read (the next run re-reads it)",
    "  2 = configuration, credentials or permissions: nothing was scanned (the log says what)",
    "  empty = the task did not start (see the stop reason); anything else = the scan crashed or was stopped",
    "Stop: <stopCode> <stoppedReason> <containerReason>",
    "Started: <startedAt>  Stopped: <stoppedAt>",
    "Task: <task>",
    "Reports: s3://${EvidenceBucket}/runs/ (each run under its own prefix; the latest pointer names the newest)",
    "Log: CloudWatch Logs group ${ScanLogGroup}, stream prefix scan",
    "Run it again now: the stack output RunNowCommand.",
];

fn failure_transformer() -> Value {
    let paths: Map<String, Value> = MESSAGE_FIELDS
        .iter()
        .map(|(name, path)| (name.to_string(), Value::from(*path)))
        .collect();
    let template = MESSAGE_LINES
        .iter()
        .map(|line| format!("\"{line}\""))
        .collect::<Vec<_>>()
        .join("\n");
    json!({ "InputPathsMap": paths, "InputTemplate": sub(&template) })
}

// Logical ids and parameter names.
const EVIDENCE_BUCKET: &str = "EvidenceBucket";
const ACCESS_LOG_BUCKET: &str = "AccessLogBucket";
const KEY: &str = "NotificationKey";
const TOPIC: &str = "NotificationTopic";
const LOG_GROUP: &str = "ScanLogGroup";
const CLUSTER: &str = "ScanCluster";
const TASK_DEFINITION: &str = "ScanTaskDefinition";
const TASK_ROLE: &str = "ScanTaskRole";
const EXECUTION_ROLE: &str = "ScanExecutionRole";
const SCHEDULER_ROLE: &str = "SchedulerRole";
const SCHEDULE_GROUP: &str = "ScanScheduleGroup";
const SCHEDULE: &str = "ScanSchedule";
const FAILURE_RULE: &str = "ScanFailureRule";
const SCHEDULER_ALARM: &str = "SchedulerErrorAlarm";

const P_IMAGE: &str = "ImageUri";
const P_SCHEDULE: &str = "ScheduleExpression";
const P_TIMEZONE: &str = "ScheduleTimezone";
const P_SUBNETS: &str = "Subnets";
const P_SECURITY_GROUPS: &str = "SecurityGroups";
const P_PUBLIC_IP: &str = "AssignPublicIp";
const P_RETENTION: &str = "RetentionDays";
const P_IA_DAYS: &str = "InfrequentAccessAfterDays";
const P_EXPIRE_DAYS: &str = "ExpireAfterDays";
const P_LOG_RETENTION: &str = "LogRetentionDays";
const P_EMAIL: &str = "NotificationEmail";
const P_SECRET: &str = "ExternalIdSecretArn";
const P_CPU: &str = "TaskCpu";
const P_MEMORY: &str = "TaskMemory";
const P_ARCH: &str = "CpuArchitecture";

const HAS_EMAIL: &str = "HasNotificationEmail";
const HAS_SECRET: &str = "HasExternalIdSecret";
const HAS_EXPIRATION: &str = "HasExpiration";

const TASK_FAMILY: &str = "${AWS::StackName}-scan";

/// `Metadata` that tells checkov why a check does not apply here.
fn checkov_skips(skips: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = skips
        .iter()
        .map(|(id, why)| json!({ "id": id, "comment": why }))
        .collect();
    json!({ "checkov": { "skip": list } })
}

fn assume_role_policy(service: &str, conditions: Value) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
            "Condition": conditions,
        }],
    })
}

fn deny_insecure_transport(bucket: &str) -> Value {
    json!({
        "Sid": "DenyRequestsWithoutTls12",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [get_att(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
        "Condition": {
            "Bool": { "aws:SecureTransport": "false" },
        },
    })
}

fn deny_old_tls(bucket: &str) -> Value {
    json!({
        "Sid": "DenyTlsBefore12",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [get_att(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
        "Condition": {
            "NumericLessThan": { "s3:TlsVersion": "1.2" },
        },
    })
}

fn public_access_block() -> Value {
    json!({
        "BlockPublicAcls": true,
        "BlockPublicPolicy": true,
        "IgnorePublicAcls": true,
        "RestrictPublicBuckets": true,
    })
}

fn add_parameters(t: &mut Template, o: &ScheduleOptions) {
    let mut image = json!({
        "Type": "String",
        "MinLength": 1,
        "AllowedPattern": "^[^\\s$'\"]+$",
        "Description": "The ssm-session-audit image, e.g. 111122223333.dkr.ecr.us-east-1.amazonaws.com/ssm-session-audit:0.1.0 (built from the repository's Dockerfile and pushed to ECR in this account and region).",
    });
    if let Some(uri) = &o.image {
        image["Default"] = Value::from(uri.as_str());
    }
    let mut secret = json!({
        "Type": "String",
        "Default": "",
        "AllowedPattern": "^$|^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\\d{12}:secret:[\\w/+=.@-]+|ssm:[a-z0-9-]+:\\d{12}:parameter/[\\w/.-]+)$",
        "ConstraintDescription": "empty, or the ARN of a Secrets Manager secret or an SSM parameter",
        "Description": "Optional: the Secrets Manager secret or SSM parameter (SecureString) that holds the audit role's external id. The task reads it into SSM_SESSION_AUDIT_EXTERNAL_ID at start; it never appears in the task definition. Leave empty for none.",
    });
    if let Some(arn) = &o.external_id_secret_arn {
        secret["Default"] = Value::from(arn.as_str());
    }
    let params = [
        (P_IMAGE, image),
        (
            P_SCHEDULE,
            json!({
                "Type": "String",
                "Default": o.schedule_expression,
                "Description": "When the scan runs (EventBridge Scheduler): cron(minutes hours day-of-month month day-of-week year), rate(1 day), or at(yyyy-mm-ddThh:mm:ss).",
            }),
        ),
        (
            P_TIMEZONE,
            json!({
                "Type": "String",
                "Default": o.timezone,
                "Description": "The IANA time zone the schedule is read in.",
            }),
        ),
        (
            P_SUBNETS,
            json!({
                "Type": "List<AWS::EC2::Subnet::Id>",
                "Description": "Subnets for the task. It needs outbound HTTPS to the AWS APIs (Organizations, STS, CloudTrail, SSM, Account, S3, ECR, CloudWatch Logs): a private subnet with a NAT gateway or VPC endpoints, or a public subnet with AssignPublicIp ENABLED.",
            }),
        ),
        (
            P_SECURITY_GROUPS,
            json!({
                "Type": "List<AWS::EC2::SecurityGroup::Id>",
                "Description": "Security groups for the task: outbound TCP 443 is all it needs, and no inbound rule.",
            }),
        ),
        (
            P_PUBLIC_IP,
            json!({
                "Type": "String",
                "Default": "DISABLED",
                "AllowedValues": ["DISABLED", "ENABLED"],
                "Description": "ENABLED only in a public subnet without a NAT gateway (the task then reaches AWS through its public address).",
            }),
        ),
        (
            P_RETENTION,
            json!({
                "Type": "Number",
                "Default": o.retention_days,
                "MinValue": 1,
                "MaxValue": 36500,
                "Description": "Object Lock retention of every report, in days (compliance mode: nobody, root included, can delete or overwrite a version before it ends, nor shorten it).",
            }),
        ),
        (
            P_IA_DAYS,
            json!({
                "Type": "Number",
                "Default": 30,
                "MinValue": 30,
                "Description": "Move reports to S3 Standard-IA after this many days (S3's minimum is 30).",
            }),
        ),
        (
            P_EXPIRE_DAYS,
            json!({
                "Type": "Number",
                "Default": 0,
                "MinValue": 0,
                "Description": "Delete reports after this many days; 0 keeps them. Object Lock wins: a version is removed only once its retention has ended, so set at least RetentionDays.",
            }),
        ),
        (
            P_LOG_RETENTION,
            json!({
                "Type": "Number",
                "Default": 365,
                "AllowedValues": [90, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653],
                "Description": "Days to keep the container's log and the evidence bucket's access logs.",
            }),
        ),
        (
            P_EMAIL,
            json!({
                "Type": "String",
                "Default": "",
                "AllowedPattern": "^$|^[^@\\s\"]+@[^@\\s\"]+$",
                "ConstraintDescription": "an e-mail address, or empty",
                "Description": "Optional: one more e-mail address for the notices (it must confirm the mail SNS sends). Leave empty for none.",
            }),
        ),
        (P_SECRET, secret),
        (
            P_CPU,
            json!({
                "Type": "String",
                "Default": "1024",
                "AllowedValues": ["256", "512", "1024", "2048", "4096"],
                "Description": "Task CPU units (1024 = 1 vCPU). Fargate allows only some CPU and memory pairs.",
            }),
        ),
        (
            P_MEMORY,
            json!({
                "Type": "String",
                "Default": "2048",
                "AllowedPattern": "^\\d+$",
                "Description": "Task memory in MiB, e.g. 2048 (with 1024 CPU: 2048 to 8192).",
            }),
        ),
        (
            P_ARCH,
            json!({
                "Type": "String",
                "Default": "X86_64",
                "AllowedValues": ["X86_64", "ARM64"],
                "Description": "The architecture the image was built for (docker build --platform linux/amd64 or linux/arm64).",
            }),
        ),
    ];
    for (name, value) in params {
        t.parameters.insert(name.into(), value);
    }
    t.conditions.insert(HAS_EMAIL.into(), not_empty(P_EMAIL));
    t.conditions.insert(HAS_SECRET.into(), not_empty(P_SECRET));
    t.conditions.insert(
        HAS_EXPIRATION.into(),
        json!({ "Fn::Not": [{ "Fn::Equals": [reference(P_EXPIRE_DAYS), 0] }] }),
    );
}

fn add_buckets(t: &mut Template) {
    t.resources.insert(
        ACCESS_LOG_BUCKET.into(),
        json!({
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Metadata": checkov_skips(&[(
                "CKV_AWS_18",
                "This bucket is the access-log target of the evidence bucket; logging it would need yet another bucket, or a loop into itself.",
            )]),
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{
                        // S3 server access logging delivers only to SSE-S3 buckets.
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" },
                    }],
                },
                "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
                "PublicAccessBlockConfiguration": public_access_block(),
                "VersioningConfiguration": { "Status": "Enabled" },
                "LifecycleConfiguration": {
                    "Rules": [{
                        "Id": "expire-access-logs",
                        "Status": "Enabled",
                        "ExpirationInDays": reference(P_LOG_RETENTION),
                        "NoncurrentVersionExpiration": { "NoncurrentDays": 1 },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 1 },
                    }],
                },
            },
        }),
    );
    t.resources.insert(
        "AccessLogBucketPolicy".into(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": reference(ACCESS_LOG_BUCKET),
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [
                        {
                            "Sid": "S3DeliversTheEvidenceBucketsAccessLogs",
                            "Effect": "Allow",
                            "Principal": { "Service": "logging.s3.amazonaws.com" },
                            "Action": "s3:PutObject",
                            "Resource": sub("${AccessLogBucket.Arn}/evidence-bucket/*"),
                            "Condition": {
                                "ArnLike": { "aws:SourceArn": get_att(EVIDENCE_BUCKET, "Arn") },
                                "StringEquals": { "aws:SourceAccount": reference("AWS::AccountId") },
                            },
                        },
                        deny_insecure_transport(ACCESS_LOG_BUCKET),
                        deny_old_tls(ACCESS_LOG_BUCKET),
                    ],
                },
            },
        }),
    );
    t.resources.insert(
        EVIDENCE_BUCKET.into(),
        json!({
            "Type": "AWS::S3::Bucket",
            // Evidence outlives the stack; Object Lock would refuse to empty it anyway.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "ObjectLockEnabled": true,
                "ObjectLockConfiguration": {
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {
                        "DefaultRetention": { "Mode": "COMPLIANCE", "Days": reference(P_RETENTION) },
                    },
                },
                // Object Lock requires versioning (and keeps it on).
                "VersioningConfiguration": { "Status": "Enabled" },
                // SSE-S3 on purpose: a customer-managed KMS key can be scheduled
                // for deletion, which would leave locked evidence unreadable;
                // S3's own keys cannot be.
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" },
                    }],
                },
                "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
                "PublicAccessBlockConfiguration": public_access_block(),
                "LoggingConfiguration": {
                    "DestinationBucketName": reference(ACCESS_LOG_BUCKET),
                    "LogFilePrefix": "evidence-bucket/",
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "reports-to-infrequent-access",
                            "Status": "Enabled",
                            "Transitions": [{
                                "StorageClass": "STANDARD_IA",
                                "TransitionInDays": reference(P_IA_DAYS),
                            }],
                            // A run killed mid-upload leaves parts behind; they are not evidence.
                            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
                        },
                        condition_if(HAS_EXPIRATION, json!({
                            "Id": "expire-reports",
                            "Status": "Enabled",
                            "ExpirationInDays": reference(P_EXPIRE_DAYS),
                            "NoncurrentVersionExpiration": { "NoncurrentDays": reference(P_EXPIRE_DAYS) },
                        }), no_value()),
                    ],
                },
            },
        }),
    );
    t.resources.insert(
        "EvidenceBucketPolicy".into(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": reference(EVIDENCE_BUCKET),
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [
                        deny_insecure_transport(EVIDENCE_BUCKET),
                        deny_old_tls(EVIDENCE_BUCKET),
                    ],
                },
            },
        }),
    );
}

fn add_notifications(t: &mut Template, o: &ScheduleOptions) {
    t.resources.insert(
        KEY.into(),
        topic_key(
            "ssm-session-audit schedule: encrypts the notification topic and the scan's log group.",
            &["cloudwatch.amazonaws.com", "events.amazonaws.com"],
            true,
        ),
    );
    t.resources.insert(
        TOPIC.into(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "DisplayName": "ssm-session-audit schedule",
                "KmsMasterKeyId": reference(KEY),
            },
        }),
    );
    t.resources.insert(
        "NotificationTopicPolicy".into(),
        json!({
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [reference(TOPIC)],
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [
                        {
                            "Sid": "TheFailureRulePublishes",
                            "Effect": "Allow",
                            "Principal": { "Service": "events.amazonaws.com" },
                            "Action": "sns:Publish",
                            "Resource": reference(TOPIC),
                            "Condition": { "ArnEquals": { "aws:SourceArn": get_att(FAILURE_RULE, "Arn") } },
                        },
                        {
                            "Sid": "TheSchedulerAlarmPublishes",
                            "Effect": "Allow",
                            "Principal": { "Service": "cloudwatch.amazonaws.com" },
                            "Action": "sns:Publish",
                            "Resource": reference(TOPIC),
                            "Condition": { "ArnEquals": { "aws:SourceArn": get_att(SCHEDULER_ALARM, "Arn") } },
                        },
                    ],
                },
            },
        }),
    );
    t.resources.insert(
        "NotificationEmailSubscription".into(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": HAS_EMAIL,
            "Properties": {
                "TopicArn": reference(TOPIC),
                "Protocol": "email",
                "Endpoint": reference(P_EMAIL),
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
    t.resources.insert(
        FAILURE_RULE.into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "ssm-session-audit: a scheduled scan that exited non-zero (1 findings, 3 incomplete, 2 usage) or whose task did not start",
                "EventPattern": failure_pattern(get_att(CLUSTER, "Arn")),
                "State": "ENABLED",
                "Targets": [{
                    "Id": "notification-topic",
                    "Arn": reference(TOPIC),
                    "InputTransformer": failure_transformer(),
                }],
            },
        }),
    );
    t.resources.insert(
        SCHEDULER_ALARM.into(),
        json!({
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "ssm-session-audit: EventBridge Scheduler could not start the scan's task (RunTask failed: subnets, security groups, IAM, capacity). See the schedule group's metrics and the stack's SchedulerRole.",
                "Namespace": "AWS/Scheduler",
                "MetricName": "TargetErrorCount",
                "Dimensions": [{ "Name": "ScheduleGroup", "Value": reference(SCHEDULE_GROUP) }],
                "Statistic": "Sum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [reference(TOPIC)],
            },
        }),
    );
}

fn add_task(t: &mut Template, o: &ScheduleOptions) {
    t.resources.insert(
        LOG_GROUP.into(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "RetentionInDays": reference(P_LOG_RETENTION),
                "KmsKeyId": get_att(KEY, "Arn"),
            },
        }),
    );
    t.resources.insert(
        CLUSTER.into(),
        json!({
            "Type": "AWS::ECS::Cluster",
            "Properties": {
                "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }],
            },
        }),
    );
    let ecs_task_trust = assume_role_policy(
        "ecs-tasks.amazonaws.com",
        json!({
            "ArnLike": { "aws:SourceArn": sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*") },
            "StringEquals": { "aws:SourceAccount": reference("AWS::AccountId") },
        }),
    );
    // The scan's own permissions: the caller's policy, from the one list.
    let statements = permissions::statements(
        Principal::Caller,
        &TASK_FEATURES,
        &task_vars(o),
        &permissions::cfn_resource,
    );
    t.resources.insert(
        TASK_ROLE.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "ssm-session-audit scheduled scan: the caller's least-privilege policy (discover accounts, assume the audit role, read the own account, write evidence).",
                "AssumeRolePolicyDocument": ecs_task_trust,
                "Policies": [{
                    "PolicyName": "ssm-session-audit-scan",
                    "PolicyDocument": { "Version": POLICY_VERSION, "Statement": statements },
                }],
            },
        }),
    );
    let log_group_arn = sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ScanLogGroup}:*",
    );
    t.resources.insert(
        EXECUTION_ROLE.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "ssm-session-audit scheduled scan: what ECS needs to start the task (pull the image, write the log, read the external id secret).",
                "AssumeRolePolicyDocument": ecs_task_trust,
                "Policies": [
                    {
                        "PolicyName": "start-the-scan-task",
                        "PolicyDocument": {
                            "Version": POLICY_VERSION,
                            "Statement": [
                                {
                                    "Sid": "SignInToEcr",
                                    "Effect": "Allow",
                                    "Action": "ecr:GetAuthorizationToken",
                                    "Resource": "*",
                                },
                                {
                                    "Sid": "PullTheImageFromThisAccountsRepositories",
                                    "Effect": "Allow",
                                    "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                    "Resource": sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"),
                                },
                                {
                                    "Sid": "WriteTheScanLog",
                                    "Effect": "Allow",
                                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                    "Resource": log_group_arn,
                                },
                            ],
                        },
                    },
                    condition_if(HAS_SECRET, json!({
                        "PolicyName": "read-the-external-id",
                        "PolicyDocument": {
                            "Version": POLICY_VERSION,
                            "Statement": [{
                                "Sid": "ReadTheExternalIdSecret",
                                "Effect": "Allow",
                                // Only the one the parameter names; the ARN says which service it is.
                                "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"],
                                "Resource": reference(P_SECRET),
                            }],
                        },
                    }), no_value()),
                ],
            },
        }),
    );
    let command: Vec<Value> = o
        .scan_command("last")
        .into_iter()
        .map(permissions::cfn_resource)
        .collect();
    t.resources.insert(
        TASK_DEFINITION.into(),
        json!({
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": sub(TASK_FAMILY),
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": reference(P_CPU),
                "Memory": reference(P_MEMORY),
                "RuntimePlatform": {
                    "OperatingSystemFamily": "LINUX",
                    "CpuArchitecture": reference(P_ARCH),
                },
                "ExecutionRoleArn": get_att(EXECUTION_ROLE, "Arn"),
                "TaskRoleArn": get_att(TASK_ROLE, "Arn"),
                // The root file system is read-only; the scan may use /tmp.
                "Volumes": [{ "Name": "tmp" }],
                "ContainerDefinitions": [{
                    "Name": CONTAINER_NAME,
                    "Image": reference(P_IMAGE),
                    "Essential": true,
                    "Command": command,
                    "Environment": [{ "Name": "AWS_REGION", "Value": reference("AWS::Region") }],
                    "Secrets": condition_if(
                        HAS_SECRET,
                        json!([{ "Name": EXTERNAL_ID_ENV, "ValueFrom": reference(P_SECRET) }]),
                        no_value(),
                    ),
                    "ReadonlyRootFilesystem": true,
                    "MountPoints": [{ "SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": false }],
                    // On SIGTERM the scan stops and writes what it read, marked incomplete.
                    "StopTimeout": 60,
                    "LogConfiguration": {
                        "LogDriver": "awslogs",
                        "Options": {
                            "awslogs-group": reference(LOG_GROUP),
                            "awslogs-region": reference("AWS::Region"),
                            "awslogs-stream-prefix": CONTAINER_NAME,
                        },
                    },
                }],
            },
        }),
    );
}

fn add_schedule(t: &mut Template) {
    t.resources.insert(
        SCHEDULER_ROLE.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "ssm-session-audit: lets EventBridge Scheduler run the scan's task, in this stack's cluster only.",
                "AssumeRolePolicyDocument": assume_role_policy(
                    "scheduler.amazonaws.com",
                    json!({ "StringEquals": { "aws:SourceAccount": reference("AWS::AccountId") } }),
                ),
                "Policies": [{
                    "PolicyName": "run-the-scan-task",
                    "PolicyDocument": {
                        "Version": POLICY_VERSION,
                        "Statement": [
                            {
                                "Sid": "RunTheScanTaskInItsCluster",
                                "Effect": "Allow",
                                "Action": "ecs:RunTask",
                                "Resource": sub(&format!("arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:task-definition/{TASK_FAMILY}:*")),
                                "Condition": { "ArnEquals": { "ecs:cluster": get_att(CLUSTER, "Arn") } },
                            },
                            {
                                "Sid": "PassTheTaskRolesToEcs",
                                "Effect": "Allow",
                                "Action": "iam:PassRole",
                                "Resource": [get_att(TASK_ROLE, "Arn"), get_att(EXECUTION_ROLE, "Arn")],
                                "Condition": { "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                            },
                        ],
                    },
                }],
            },
        }),
    );
    t.resources.insert(
        SCHEDULE_GROUP.into(),
        json!({ "Type": "AWS::Scheduler::ScheduleGroup", "Properties": {} }),
    );
    t.resources.insert(
        SCHEDULE.into(),
        json!({
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "Description": "ssm-session-audit: the daily scan (scan --since last), evidence to S3",
                "GroupName": reference(SCHEDULE_GROUP),
                "ScheduleExpression": reference(P_SCHEDULE),
                "ScheduleExpressionTimezone": reference(P_TIMEZONE),
                "FlexibleTimeWindow": { "Mode": "OFF" },
                "State": "ENABLED",
                "Target": {
                    "Arn": get_att(CLUSTER, "Arn"),
                    "RoleArn": get_att(SCHEDULER_ROLE, "Arn"),
                    "RetryPolicy": { "MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600 },
                    "EcsParameters": {
                        "TaskDefinitionArn": reference(TASK_DEFINITION),
                        "LaunchType": "FARGATE",
                        "PlatformVersion": "LATEST",
                        "TaskCount": 1,
                        "NetworkConfiguration": {
                            "AwsvpcConfiguration": {
                                "Subnets": reference(P_SUBNETS),
                                "SecurityGroups": reference(P_SECURITY_GROUPS),
                                "AssignPublicIp": reference(P_PUBLIC_IP),
                            },
                        },
                    },
                },
            },
        }),
    );
}

/// `aws ecs run-task` for this task with `--since` replaced, as `Fn::Sub`
/// text (the first run, which has no previous run to start from).
fn run_task_command(o: &ScheduleOptions, since: &str) -> Value {
    let overrides = json!({
        "containerOverrides": [{ "name": CONTAINER_NAME, "command": o.scan_command(since) }],
    });
    let text = format!(
        "aws ecs run-task --region ${{AWS::Region}} --cluster ${{{CLUSTER}}} --task-definition ${{{TASK_DEFINITION}}} --launch-type FARGATE --network-configuration 'awsvpcConfiguration={{subnets=[${{SubnetList}}],securityGroups=[${{SecurityGroupList}}],assignPublicIp=${{{P_PUBLIC_IP}}}}}' --overrides '{overrides}'"
    );
    json!({
        "Fn::Sub": [text, {
            "SubnetList": { "Fn::Join": [",", reference(P_SUBNETS)] },
            "SecurityGroupList": { "Fn::Join": [",", reference(P_SECURITY_GROUPS)] },
        }],
    })
}

fn schedule_template(o: &ScheduleOptions) -> Template {
    let mut t = Template::new(
        "ssm-session-audit: a scheduled organization scan (EventBridge Scheduler runs an ECS Fargate task with the scan's least-privilege role; scan --since last), each run's report kept in an Object Lock (compliance) bucket, and mail when a run exits non-zero or cannot start. Deploy in the management (or delegated administrator) account, in one region.",
    );
    add_parameters(&mut t, o);
    add_buckets(&mut t);
    add_notifications(&mut t, o);
    add_task(&mut t, o);
    add_schedule(&mut t);
    t.output(
        "EvidenceBucketName",
        "Where each run's report goes (under runs/); Object Lock keeps every version for RetentionDays.",
        reference(EVIDENCE_BUCKET),
    );
    t.output(
        "NotificationTopicArn",
        "Told when a run exits non-zero or cannot start; subscribe more endpoints to it.",
        reference(TOPIC),
    );
    t.output(
        "ClusterArn",
        "The cluster the task runs in.",
        get_att(CLUSTER, "Arn"),
    );
    t.output(
        "TaskDefinitionArn",
        "The scan's task definition.",
        reference(TASK_DEFINITION),
    );
    t.output(
        "LogGroupName",
        "The container's log (stream prefix scan).",
        reference(LOG_GROUP),
    );
    t.output(
        "FirstRunCommand",
        "Run this once after deploying: the first run has no previous one for --since last to start from, so it reads the last day.",
        run_task_command(o, "1d"),
    );
    t.output(
        "RunNowCommand",
        "Runs the scheduled scan now, outside the schedule (same command: --since last).",
        run_task_command(o, "last"),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_command_is_the_documented_one() {
        let o = ScheduleOptions::default();
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(
            o.scan_command("last"),
            [
                "scan",
                "--since",
                "last",
                "--output",
                "s3://${EvidenceBucket}/runs",
                "--quiet",
                "--role-name",
                "SessionAuditRole",
            ]
        );
    }

    #[test]
    fn scan_options_go_into_the_command_in_a_stable_order() {
        let o = ScheduleOptions {
            regions: Some(vec!["us-east-1".into(), "eu-west-1".into()]),
            ou: vec!["ou-ab12-cdefgh34".into()],
            fail_on: Some("medium".into()),
            scan_config: Some("/etc/ssm-session-audit.toml".into()),
            ..Default::default()
        };
        assert_eq!(o.validate(), Ok(()));
        let command = o.scan_command("last").join(" ");
        assert!(
            command.ends_with("--config /etc/ssm-session-audit.toml --role-name SessionAuditRole --regions us-east-1,eu-west-1 --ou ou-ab12-cdefgh34 --fail-on medium"),
            "{command}"
        );
    }

    #[test]
    fn options_that_would_break_the_template_are_refused() {
        let cases: Vec<(ScheduleOptions, &str)> = vec![
            (
                ScheduleOptions {
                    schedule_expression: "every day".into(),
                    ..Default::default()
                },
                "schedule",
            ),
            (
                ScheduleOptions {
                    schedule_expression: "cron(${x})".into(),
                    ..Default::default()
                },
                "schedule",
            ),
            (
                ScheduleOptions {
                    timezone: "Mars/Olympus".into(),
                    ..Default::default()
                },
                "time zone",
            ),
            (
                ScheduleOptions {
                    image: Some("repo:tag; rm".into()),
                    ..Default::default()
                },
                "image",
            ),
            (
                ScheduleOptions {
                    external_id_secret_arn: Some("arn:aws:s3:::bucket".into()),
                    ..Default::default()
                },
                "external id secret",
            ),
            (
                ScheduleOptions {
                    emails: vec!["nobody".into()],
                    ..Default::default()
                },
                "e-mail address",
            ),
            (
                ScheduleOptions {
                    retention_days: 0,
                    ..Default::default()
                },
                "retention days",
            ),
            (
                ScheduleOptions {
                    scan_config: Some("relative.toml".into()),
                    ..Default::default()
                },
                "scan config",
            ),
            (
                ScheduleOptions {
                    role_name: "${AWS::Region}".into(),
                    ..Default::default()
                },
                "scan option",
            ),
        ];
        for (o, field) in cases {
            assert_eq!(o.validate().expect_err(field).field, field, "{o:?}");
        }
        for arn in [
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:audit/external-id-AbCdEf",
            "arn:aws-us-gov:ssm:us-gov-west-1:111122223333:parameter/audit/external-id",
        ] {
            let o = ScheduleOptions {
                external_id_secret_arn: Some(arn.into()),
                ..Default::default()
            };
            assert_eq!(o.validate(), Ok(()), "{arn}");
        }
    }

    #[test]
    fn the_first_run_command_overrides_only_since() {
        let o = ScheduleOptions::default();
        let first = run_task_command(&o, "1d").to_string();
        assert!(first.contains(r#"\"--since\",\"1d\""#), "{first}");
        assert!(
            first.contains("${ScanCluster}") && first.contains("${SubnetList}"),
            "{first}"
        );
        let again = run_task_command(&o, "last").to_string();
        assert!(again.contains(r#"\"--since\",\"last\""#), "{again}");
    }
}
