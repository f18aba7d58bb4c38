//! The least-privilege IAM the scan needs:
//! - `audit-role.json`: a StackSet-ready template for the audit role in every
//!   member account (trust the caller's account, allow only
//!   `cloudtrail:LookupEvents`);
//! - `caller-policy.json`: the policy for whoever runs the scan in the management
//!   account;
//! - `audit-role-policy.json`, `audit-role-trust.json`: the audit role's
//!   policies as plain documents, for people who do not use CloudFormation.

use serde_json::{json, Map, Value};

use super::cfn::{self, condition_if, get_att, no_value, not_empty, reference, sub, Template};
use super::{GeneratedFile, IamOptions};

pub const AUDIT_ROLE_TEMPLATE: &str = "audit-role.json";
pub const CALLER_POLICY: &str = "caller-policy.json";
pub const AUDIT_ROLE_POLICY: &str = "audit-role-policy.json";
pub const AUDIT_ROLE_TRUST: &str = "audit-role-trust.json";

/// Stands in for the trusted account in the plain trust policy when none is
/// given: IAM rejects it, so the document cannot be applied unedited.
pub const TRUSTED_ACCOUNT_PLACEHOLDER: &str = "TRUSTED_ACCOUNT_ID";
/// Stands in for the trail bucket in the optional statements of the caller
/// policy. Upper case: no real bucket can have this name.
pub const TRAIL_BUCKET_PLACEHOLDER: &str = "REPLACE-WITH-TRAIL-BUCKET";

/// The four files, in a stable order.
pub fn render_all(o: &IamOptions) -> Vec<GeneratedFile> {
    vec![
        audit_role_template(o).render(AUDIT_ROLE_TEMPLATE),
        cfn::file(CALLER_POLICY, &caller_policy(o)),
        cfn::file(AUDIT_ROLE_POLICY, &audit_role_policy()),
        cfn::file(AUDIT_ROLE_TRUST, &audit_role_trust(o)),
    ]
}

/// `cloudtrail:LookupEvents` has no resource-level permissions: `*` is the only
/// resource IAM accepts for it.
fn lookup_statement(sid: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": "cloudtrail:LookupEvents",
        "Resource": "*",
    })
}

fn audit_role_policy() -> Value {
    json!({
        "Version": cfn::POLICY_VERSION,
        "Statement": [lookup_statement("LookupSessionManagerEvents")],
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
    let account = o
        .trusted_account_id
        .as_deref()
        .unwrap_or(TRUSTED_ACCOUNT_PLACEHOLDER);
    let conditions = trust_conditions(
        o.external_id.as_deref().map(Value::from),
        o.caller_role_name
            .as_deref()
            .map(|name| Value::from(format!("arn:aws:iam::{account}:role/{name}"))),
    );
    let mut statement = json!({
        "Sid": "TrustTheAuditCaller",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
        "Action": "sts:AssumeRole",
    });
    if !conditions.is_empty() {
        statement["Condition"] = Value::Object(conditions);
    }
    json!({ "Version": cfn::POLICY_VERSION, "Statement": [statement] })
}

fn caller_policy(o: &IamOptions) -> Value {
    let bucket = format!("arn:aws:s3:::{TRAIL_BUCKET_PLACEHOLDER}");
    json!({
        "Version": cfn::POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DiscoverOrganizationAccounts",
                "Effect": "Allow",
                "Action": [
                    "organizations:DescribeOrganization",
                    "organizations:ListAccounts",
                    "organizations:ListAccountsForParent",
                    "organizations:ListOrganizationalUnitsForParent",
                    "organizations:ListRoots",
                ],
                "Resource": "*",
            },
            {
                "Sid": "AssumeTheAuditRoleInMemberAccounts",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": format!("arn:aws:iam::*:role/{}", o.role_name),
            },
            // The caller's own account is scanned with its own credentials.
            lookup_statement("LookupSessionManagerEventsInThisAccount"),
            {
                "Sid": "OptionalTrailFilesListBucketReplaceTheBucketName",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket,
            },
            {
                "Sid": "OptionalTrailFilesGetObjectReplaceTheBucketName",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("{bucket}/*"),
            },
        ],
    })
}

const TRUSTED_ACCOUNT_ID: &str = "TrustedAccountId";
const EXTERNAL_ID: &str = "ExternalId";
const HAS_EXTERNAL_ID: &str = "HasExternalId";
const AUDIT_ROLE: &str = "AuditRole";

fn audit_role_template(o: &IamOptions) -> Template {
    let mut t = Template::new(
        "ssm-session-audit: the audit role the scan assumes in this account. It may only call cloudtrail:LookupEvents (which has no resource-level permissions, hence Resource *). IAM is global: deploy one stack per account (a service-managed StackSet in a single region).",
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
                "Description": "ssm-session-audit: reads Session Manager calls with cloudtrail:LookupEvents, nothing else. LookupEvents has no resource-level permissions, so its Resource is *.",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": cfn::POLICY_VERSION,
                    "Statement": [statement],
                },
                "Policies": [{
                    "PolicyName": "lookup-session-manager-events",
                    "PolicyDocument": audit_role_policy(),
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

    #[test]
    fn the_role_may_only_look_up_events() {
        let v = audit_role_template(&IamOptions::default()).to_value();
        let policies = &v["Resources"][AUDIT_ROLE]["Properties"]["Policies"];
        assert_eq!(policies.as_array().unwrap().len(), 1);
        let statements = policies[0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Action"], "cloudtrail:LookupEvents");
        assert_eq!(statements[0]["Resource"], "*");
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
        let mut actions: Vec<String> = Vec::new();
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            match &statement["Action"] {
                Value::String(a) => actions.push(a.clone()),
                Value::Array(list) => {
                    actions.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
                }
                other => panic!("unexpected action {other}"),
            }
        }
        actions.sort();
        assert_eq!(
            actions,
            [
                "cloudtrail:LookupEvents",
                "organizations:DescribeOrganization",
                "organizations:ListAccounts",
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
                "organizations:ListRoots",
                "s3:GetObject",
                "s3:ListBucket",
                "sts:AssumeRole",
            ]
        );
        let text = policy.to_string();
        assert!(text.contains("arn:aws:iam::*:role/SessionAuditRole"));
        assert!(text.contains(TRAIL_BUCKET_PLACEHOLDER));
    }
}
