//! The least-privilege IAM the scan needs, rendered from the one list in
//! [`super::permissions`]:
//! - `audit-role.json`: a StackSet-ready template for the audit role in every
//!   member account (trust the caller's account; CloudTrail event history,
//!   Session Manager's records, enabled regions; partition-aware ARNs);
//! - `caller-policy.json`: the policy for whoever runs the scan in the management
//!   account, with the optional parts the options ask for (trail files, Athena,
//!   evidence in S3, Security Hub);
//! - `audit-role-policy.json`, `audit-role-trust.json`: the audit role's
//!   policies as plain documents, for people who do not use CloudFormation.

use serde_json::{json, Map, Value};

use super::cfn::{self, condition_if, get_att, no_value, not_empty, reference, sub, Template};
use super::permissions::{self, Feature, Principal, Vars};
use super::{GeneratedFile, IamOptions};

pub const AUDIT_ROLE_TEMPLATE: &str = "audit-role.json";
pub const CALLER_POLICY: &str = "caller-policy.json";
pub const AUDIT_ROLE_POLICY: &str = "audit-role-policy.json";
pub const AUDIT_ROLE_TRUST: &str = "audit-role-trust.json";

/// Stands in for the trusted account in the plain trust policy when none is
/// given: IAM rejects it, so the document cannot be applied unedited.
pub const TRUSTED_ACCOUNT_PLACEHOLDER: &str = "TRUSTED_ACCOUNT_ID";

/// The four files, in a stable order.
pub fn render_all(o: &IamOptions) -> Vec<GeneratedFile> {
    vec![
        audit_role_template(o).render(AUDIT_ROLE_TEMPLATE),
        cfn::file(CALLER_POLICY, &caller_policy(o)),
        cfn::file(AUDIT_ROLE_POLICY, &audit_role_policy(o)),
        cfn::file(AUDIT_ROLE_TRUST, &audit_role_trust(o)),
    ]
}

/// The caller's features the options ask for; the scan itself always.
pub fn caller_features(o: &IamOptions) -> Vec<Feature> {
    let mut features = vec![Feature::Scan];
    if o.trail.is_some() {
        features.push(Feature::TrailFiles);
    }
    if let Some(athena) = &o.athena {
        features.push(Feature::Athena);
        if athena.create {
            features.push(Feature::AthenaCreate);
        }
    }
    if o.s3_output.is_some() {
        features.extend([Feature::S3Output, Feature::S3OutputRetention]);
    }
    if o.security_hub {
        features.push(Feature::SecurityHub);
    }
    features
}

/// The resource variables of a plain document: literal partition, the caller's
/// account (the trusted account) or `*`, and the options' names.
pub fn plain_vars(o: &IamOptions) -> Vars {
    let mut vars = Vars::new();
    vars.insert("partition", o.partition.clone());
    vars.insert(
        "account",
        o.trusted_account_id.clone().unwrap_or_else(|| "*".into()),
    );
    vars.insert("role_name", o.role_name.clone());
    if let Some(trail) = &o.trail {
        vars.insert("trail_bucket", trail.bucket.clone());
        vars.insert("trail_objects", trail.objects());
    }
    if let Some(athena) = &o.athena {
        vars.insert("athena_workgroup", athena.workgroup.clone());
        vars.insert("athena_database", athena.database.clone());
        vars.insert("athena_table", athena.table.clone());
        vars.insert("athena_output_bucket", athena.output.bucket.clone());
        vars.insert("athena_output_objects", athena.output.objects());
    }
    if let Some(output) = &o.s3_output {
        vars.insert("evidence_bucket", output.bucket.clone());
        vars.insert("evidence_objects", output.objects());
    }
    vars
}

fn audit_role_policy(o: &IamOptions) -> Value {
    json!({
        "Version": cfn::POLICY_VERSION,
        "Statement": permissions::statements(
            Principal::AuditRole,
            &[Feature::Scan],
            &plain_vars(o),
            &permissions::plain_resource,
        ),
    })
}

/// The audit role's policy inside the template: the same statements with
/// `${AWS::Partition}`.
fn audit_role_policy_cfn() -> Value {
    let mut vars = Vars::new();
    vars.insert("partition", "${AWS::Partition}".into());
    json!({
        "Version": cfn::POLICY_VERSION,
        "Statement": permissions::statements(
            Principal::AuditRole,
            &[Feature::Scan],
            &vars,
            &permissions::cfn_resource,
        ),
    })
}

/// The trust statement's conditions, given the external id and caller ARN as
/// already-built values (literals or intrinsic functions).
fn trust_conditions(external_id: Option<Value>, caller_arn: Option<Value>) -> Map<String, Value> {
    let mut conditions = Map::new();
    if let Some(id) = external_id {
        conditions.insert("StringEquals".into(), json!({ "sts:ExternalId": id }));
    }
    // aws:PrincipalArn rather than the role as Principal: the trust then survives
    // the caller role being deleted and re-created, and allows wildcards (SSO
    // permission-set roles carry a generated suffix).
    if let Some(arn) = caller_arn {
        conditions.insert("ArnLike".into(), json!({ "aws:PrincipalArn": arn }));
    }
    conditions
}

fn audit_role_trust(o: &IamOptions) -> Value {
    let partition = &o.partition;
    let account = o
        .trusted_account_id
        .as_deref()
        .unwrap_or(TRUSTED_ACCOUNT_PLACEHOLDER);
    let conditions = trust_conditions(
        o.external_id.as_deref().map(Value::from),
        o.caller_role_name
            .as_deref()
            .map(|name| Value::from(format!("arn:{partition}:iam::{account}:role/{name}"))),
    );
    let mut statement = json!({
        "Sid": "TrustTheAuditCaller",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:{partition}:iam::{account}:root") },
        "Action": "sts:AssumeRole",
    });
    if !conditions.is_empty() {
        statement["Condition"] = Value::Object(conditions);
    }
    json!({ "Version": cfn::POLICY_VERSION, "Statement": [statement] })
}

fn caller_policy(o: &IamOptions) -> Value {
    json!({
        "Version": cfn::POLICY_VERSION,
        "Statement": permissions::statements(
            Principal::Caller,
            &caller_features(o),
            &plain_vars(o),
            &permissions::plain_resource,
        ),
    })
}

const TRUSTED_ACCOUNT_ID: &str = "TrustedAccountId";
const EXTERNAL_ID: &str = "ExternalId";
const HAS_EXTERNAL_ID: &str = "HasExternalId";
const AUDIT_ROLE: &str = "AuditRole";

fn audit_role_template(o: &IamOptions) -> Template {
    let mut t = Template::new(
        "ssm-session-audit: the audit role the scan assumes in this account. Read only: CloudTrail event history (LookupEvents), Session Manager's session history (DescribeSessions) and session documents (GetDocument), enabled regions (DescribeRegions); only GetDocument has resource-level permissions, the others need Resource *. IAM is global: deploy one stack per account (a service-managed StackSet in a single region).",
    );
    let account = match &o.trusted_account_id {
        Some(id) => id.clone(),
        None => {
            t.parameters.insert(
                TRUSTED_ACCOUNT_ID.into(),
                json!({
                    "Type": "String",
                    "AllowedPattern": "^\\d{12}$",
                    "ConstraintDescription": "a 12-digit account id",
                    "Description": "The account that runs the scan (the management or security account).",
                }),
            );
            format!("${{{TRUSTED_ACCOUNT_ID}}}")
        }
    };
    let caller_arn = o.caller_role_name.as_deref().map(|name| {
        sub(&format!(
            "arn:${{AWS::Partition}}:iam::{account}:role/{name}"
        ))
    });
    let condition = match &o.external_id {
        Some(id) => {
            let conditions = trust_conditions(Some(Value::from(id.as_str())), caller_arn);
            Some(Value::Object(conditions))
        }
        None => {
            t.parameters.insert(
                EXTERNAL_ID.into(),
                json!({
                    "Type": "String",
                    "Default": "",
                    "AllowedPattern": "^$|^[\\w+=,.@:/-]{2,1224}$",
                    "ConstraintDescription": "2 to 1224 letters, digits or +=,.@:/_-, or empty",
                    "Description": "Optional: an external id the caller must pass (--external-id). Leave empty for none.",
                }),
            );
            t.conditions
                .insert(HAS_EXTERNAL_ID.into(), not_empty(EXTERNAL_ID));
            let with = trust_conditions(Some(reference(EXTERNAL_ID)), caller_arn.clone());
            let without = trust_conditions(None, caller_arn);
            let otherwise = if without.is_empty() {
                no_value()
            } else {
                Value::Object(without)
            };
            Some(condition_if(
                HAS_EXTERNAL_ID,
                Value::Object(with),
                otherwise,
            ))
        }
    };
    let mut statement = json!({
        "Sid": "TrustTheAuditCaller",
        "Effect": "Allow",
        "Principal": { "AWS": sub(&format!("arn:${{AWS::Partition}}:iam::{account}:root")) },
        "Action": "sts:AssumeRole",
    });
    if let Some(condition) = condition {
        statement["Condition"] = condition;
    }
    t.resources.insert(
        AUDIT_ROLE.into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": o.role_name,
                "Description": "ssm-session-audit: reads Session Manager calls (cloudtrail:LookupEvents), session history (ssm:DescribeSessions), session documents (ssm:GetDocument) and enabled regions (ec2:DescribeRegions); nothing else.",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": cfn::POLICY_VERSION,
                    "Statement": [statement],
                },
                "Policies": [{
                    "PolicyName": "read-session-manager-activity",
                    "PolicyDocument": audit_role_policy_cfn(),
                }],
            },
        }),
    );
    t.output(
        "RoleArn",
        "The audit role; the scan assumes it by name (--role-name).",
        get_att(AUDIT_ROLE, "Arn"),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust_statement(template: &Value) -> &Value {
        &template["Resources"][AUDIT_ROLE]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    }

    fn actions(policy: &Value) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            match &statement["Action"] {
                Value::String(a) => out.push(a.clone()),
                Value::Array(list) => {
                    out.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
                }
                other => panic!("unexpected action {other}"),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_role_may_only_read_session_activity() {
        let v = audit_role_template(&IamOptions::default()).to_value();
        let policies = &v["Resources"][AUDIT_ROLE]["Properties"]["Policies"];
        assert_eq!(policies.as_array().unwrap().len(), 1);
        let policy = &policies[0]["PolicyDocument"];
        assert_eq!(
            actions(policy),
            [
                "cloudtrail:LookupEvents",
                "ec2:DescribeRegions",
                "ssm:DescribeSessions",
                "ssm:GetDocument",
            ]
        );
        let text = policy.to_string();
        assert!(
            text.contains("arn:${AWS::Partition}:ssm:*:*:document/*"),
            "{text}"
        );
        assert!(!text.contains("arn:aws:"), "partition-aware: {text}");
        assert_eq!(
            v["Resources"][AUDIT_ROLE]["Properties"]["RoleName"],
            "SessionAuditRole"
        );
    }

    #[test]
    fn without_options_the_account_and_external_id_are_parameters() {
        let v = audit_role_template(&IamOptions::default()).to_value();
        assert!(v["Parameters"].get(TRUSTED_ACCOUNT_ID).is_some());
        assert_eq!(v["Parameters"][EXTERNAL_ID]["Default"], "");
        let statement = trust_statement(&v);
        assert_eq!(
            statement["Principal"]["AWS"],
            sub("arn:${AWS::Partition}:iam::${TrustedAccountId}:root")
        );
        assert_eq!(
            statement["Condition"],
            condition_if(
                HAS_EXTERNAL_ID,
                json!({"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}),
                no_value()
            )
        );
    }

    #[test]
    fn given_options_are_written_in() {
        let o = IamOptions {
            role_name: "Audit".into(),
            trusted_account_id: Some("123456789012".into()),
            external_id: Some("xyz-42".into()),
            caller_role_name: Some("Scanner".into()),
            ..Default::default()
        };
        let v = audit_role_template(&o).to_value();
        assert!(v.get("Parameters").is_none());
        assert!(v.get("Conditions").is_none());
        let statement = trust_statement(&v);
        assert_eq!(
            statement["Principal"]["AWS"],
            sub("arn:${AWS::Partition}:iam::123456789012:root")
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["sts:ExternalId"],
            "xyz-42"
        );
        assert_eq!(
            statement["Condition"]["ArnLike"]["aws:PrincipalArn"],
            sub("arn:${AWS::Partition}:iam::123456789012:role/Scanner")
        );

        let trust = audit_role_trust(&o);
        let plain = &trust["Statement"][0];
        assert_eq!(plain["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        assert_eq!(
            plain["Condition"]["StringEquals"]["sts:ExternalId"],
            "xyz-42"
        );
        assert_eq!(
            plain["Condition"]["ArnLike"]["aws:PrincipalArn"],
            "arn:aws:iam::123456789012:role/Scanner"
        );

        let caller = caller_policy(&o);
        assert_eq!(
            caller["Statement"][1]["Resource"],
            "arn:aws:iam::*:role/Audit"
        );
    }

    #[test]
    fn caller_role_without_external_id_keeps_its_condition_either_way() {
        let o = IamOptions {
            caller_role_name: Some("Scanner".into()),
            ..Default::default()
        };
        let v = audit_role_template(&o).to_value();
        let condition = &trust_statement(&v)["Condition"]["Fn::If"];
        let arn = sub("arn:${AWS::Partition}:iam::${TrustedAccountId}:role/Scanner");
        assert_eq!(condition[1]["ArnLike"]["aws:PrincipalArn"], arn);
        assert_eq!(condition[2]["ArnLike"]["aws:PrincipalArn"], arn);
        assert!(condition[2].get("StringEquals").is_none());
    }

    #[test]
    fn plain_trust_without_options_cannot_be_applied_unedited() {
        let trust = audit_role_trust(&IamOptions::default());
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["AWS"],
            format!("arn:aws:iam::{TRUSTED_ACCOUNT_PLACEHOLDER}:root")
        );
        assert!(statement.get("Condition").is_none());
    }

    #[test]
    fn caller_policy_holds_exactly_the_calls_the_scan_makes() {
        let policy = caller_policy(&IamOptions::default());
        assert_eq!(
            actions(&policy),
            [
                "account:ListRegions",
                "cloudtrail:LookupEvents",
                "organizations:DescribeOrganization",
                "organizations:ListAccounts",
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
                "organizations:ListRoots",
                "ssm:DescribeSessions",
                "ssm:GetDocument",
                "sts:AssumeRole",
            ]
        );
        let text = policy.to_string();
        assert!(text.contains("arn:aws:iam::*:role/SessionAuditRole"));
        assert!(text.contains("arn:aws:account::*:account/o-*/*"));
        assert!(!text.contains("s3:"), "no S3 unless asked for: {text}");
        assert!(!text.contains("MISSING-"), "{text}");
    }

    fn every_option() -> IamOptions {
        IamOptions {
            trusted_account_id: Some("111122223333".into()),
            partition: "aws-us-gov".into(),
            trail: Some(super::super::S3Location::parse("s3://org-trail/logs/")),
            athena: Some(super::super::AthenaIam {
                database: "audit".into(),
                table: "cloudtrail_org".into(),
                workgroup: "primary".into(),
                output: super::super::S3Location::parse("athena-results"),
                create: true,
            }),
            s3_output: Some(super::super::S3Location::parse("s3://evidence/runs")),
            security_hub: true,
            ..Default::default()
        }
    }

    #[test]
    fn each_option_adds_its_statements_with_its_names() {
        let o = every_option();
        assert_eq!(o.validate(), Ok(()));
        let policy = caller_policy(&o);
        let text = policy.to_string();
        assert!(!text.contains("MISSING-"), "{text}");
        assert!(
            !text.contains("arn:aws:"),
            "the partition is aws-us-gov: {text}"
        );
        for expected in [
            "arn:aws-us-gov:s3:::org-trail",
            "arn:aws-us-gov:s3:::org-trail/logs/*",
            "arn:aws-us-gov:athena:*:111122223333:workgroup/primary",
            "arn:aws-us-gov:glue:*:111122223333:table/audit/cloudtrail_org",
            "arn:aws-us-gov:s3:::athena-results/*",
            "arn:aws-us-gov:s3:::evidence/runs/*",
            "arn:aws-us-gov:securityhub:*:111122223333:product/111122223333/default",
            "arn:aws-us-gov:account::111122223333:account",
        ] {
            assert!(text.contains(expected), "missing {expected} in {text}");
        }
        let all = actions(&policy);
        for action in [
            "cloudtrail:ListPublicKeys",
            "athena:StartQueryExecution",
            "glue:CreateTable",
            "s3:PutObjectRetention",
            "s3:GetBucketObjectLockConfiguration",
            "securityhub:BatchImportFindings",
        ] {
            assert!(all.contains(&action.to_string()), "{action}");
        }
        // Without --athena-create, no Glue writes.
        let mut read_only = o.clone();
        if let Some(a) = read_only.athena.as_mut() {
            a.create = false;
        }
        let all = actions(&caller_policy(&read_only));
        assert!(all.contains(&"glue:GetTable".to_string()));
        assert!(!all.iter().any(|a| a.starts_with("glue:Create")), "{all:?}");
        // The plain trust and audit documents follow the partition.
        assert!(audit_role_trust(&o)
            .to_string()
            .contains("arn:aws-us-gov:iam::111122223333:root"));
        assert!(audit_role_policy(&o)
            .to_string()
            .contains("arn:aws-us-gov:ssm:*:*:document/*"));
    }

    #[test]
    fn athena_without_the_trail_bucket_is_refused() {
        let mut o = every_option();
        o.trail = None;
        assert_eq!(o.validate().unwrap_err().field, "athena table");
        let mut o = every_option();
        o.s3_output = Some(super::super::S3Location::parse("s3://Bad_Bucket/x"));
        assert_eq!(o.validate().unwrap_err().field, "s3 output");
        let mut o = every_option();
        o.trail = Some(super::super::S3Location::parse("s3://trail/${AWS::Region}"));
        assert_eq!(o.validate().unwrap_err().field, "trail bucket");
        let mut o = every_option();
        o.partition = "aws-mars".into();
        assert_eq!(o.validate().unwrap_err().field, "partition");
    }
}
