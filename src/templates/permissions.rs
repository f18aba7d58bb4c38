//! The one list of IAM permissions the tool needs, for every feature it has or
//! is gaining, and the API operations each permission authorizes.
//!
//! The generated policies (`iam`: the caller's policy and the audit role;
//! `schedule`: the scheduled task's role) are rendered from [`GRANTS`], and the
//! tests check [`OPERATIONS`] against the SDK calls in the source, so a new
//! AWS call without its permission fails a test instead of a production run.
//!
//! Resources are ARN templates with `{name}` variables (`{partition}`,
//! `{account}`, `{role_name}`, `{trail_bucket}`, ...). A plain policy document
//! fills them with literal text; a CloudFormation template fills them with
//! `${AWS::Partition}`-style references and wraps the result in `Fn::Sub`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Who holds a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Principal {
    /// Whoever runs the scan in the management (or delegated administrator)
    /// account: a person's role, or the scheduled task's role.
    Caller,
    /// The audit role in every member account.
    AuditRole,
}

/// A part of the tool; the optional ones are chosen by flags of `iam`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// Every live scan: accounts, credentials, CloudTrail event history,
    /// Session Manager's own records, enabled regions.
    Scan,
    /// `--source s3://…`: trail files and their digests.
    TrailFiles,
    /// `--source athena:DB.TABLE`: queries over the organization trail.
    Athena,
    /// `athena-table --create`: the database and table in the Glue catalog.
    AthenaCreate,
    /// `--output s3://…`: each run's report in the evidence bucket, and
    /// `--since last` reading the previous run.
    S3Output,
    /// `--object-lock-days N`: explicit Object Lock retention on each object.
    S3OutputRetention,
    /// `--security-hub`: findings imported into AWS Security Hub.
    SecurityHub,
}

/// One policy statement: what, on which resources, for whom and why.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub sid: &'static str,
    pub principal: Principal,
    pub feature: Feature,
    pub actions: &'static [&'static str],
    /// ARN templates; `*` where the actions have no resource-level permissions.
    pub resources: &'static [&'static str],
    pub why: &'static str,
}

/// Every statement of every generated policy, in the order they appear.
pub const GRANTS: &[Grant] = &[
    // The caller, always. The first two keep their places: the README and
    // the tests refer to the AssumeRole statement as the second one.
    Grant {
        sid: "DiscoverOrganizationAccounts",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &[
            "organizations:DescribeOrganization",
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent",
            "organizations:ListRoots",
        ],
        resources: &["*"],
        why: "find the accounts (all, or under --ou) and the organization id for the report; ListAccounts, ListRoots and DescribeOrganization have no resource-level permissions",
    },
    Grant {
        sid: "AssumeTheAuditRoleInMemberAccounts",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &["sts:AssumeRole"],
        resources: &["arn:{partition}:iam::*:role/{role_name}"],
        why: "the audit role in each member account, and no other role",
    },
    Grant {
        sid: "LookupSessionManagerEventsInThisAccount",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &["cloudtrail:LookupEvents"],
        resources: &["*"],
        why: "the caller's own account is read with its own credentials; LookupEvents has no resource-level permissions",
    },
    Grant {
        sid: "ReadSessionManagerHistoryInThisAccount",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &["ssm:DescribeSessions"],
        resources: &["*"],
        why: "Session Manager's own session history (status, real end, reason) in the caller's account; DescribeSessions has no resource-level permissions",
    },
    Grant {
        sid: "ReadSessionDocumentsInThisAccount",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &["ssm:GetDocument"],
        resources: &["arn:{partition}:ssm:*:*:document/*"],
        why: "the preferences document SSM-SessionManagerRunShell (logging, encryption, timeouts) and any other session document a session names; read only",
    },
    Grant {
        sid: "ListEnabledRegionsOfEveryAccount",
        principal: Principal::Caller,
        feature: Feature::Scan,
        actions: &["account:ListRegions"],
        resources: &[
            "arn:{partition}:account::{account}:account",
            "arn:{partition}:account::{account}:account/o-*/*",
        ],
        why: "which regions each account has enabled (Account Management API): the caller's own account and the organization's member accounts",
    },
    // The audit role in every member account.
    Grant {
        sid: "LookupSessionManagerEvents",
        principal: Principal::AuditRole,
        feature: Feature::Scan,
        actions: &["cloudtrail:LookupEvents"],
        resources: &["*"],
        why: "the account's 90-day CloudTrail event history; LookupEvents has no resource-level permissions",
    },
    Grant {
        sid: "ReadSessionManagerHistory",
        principal: Principal::AuditRole,
        feature: Feature::Scan,
        actions: &["ssm:DescribeSessions"],
        resources: &["*"],
        why: "Session Manager's own session history; DescribeSessions has no resource-level permissions",
    },
    Grant {
        sid: "ReadSessionDocuments",
        principal: Principal::AuditRole,
        feature: Feature::Scan,
        actions: &["ssm:GetDocument"],
        resources: &["arn:{partition}:ssm:*:*:document/*"],
        why: "the preferences document SSM-SessionManagerRunShell and the session documents sessions name (custom ones, shared ones, AWS-owned ones); read only",
    },
    Grant {
        sid: "ListRegionsOfThisAccount",
        principal: Principal::AuditRole,
        feature: Feature::Scan,
        actions: &["ec2:DescribeRegions"],
        resources: &["*"],
        why: "the enabled regions where the Account Management API is not allowed; DescribeRegions has no resource-level permissions",
    },
    // Trail files (the caller).
    Grant {
        sid: "ListTrailFiles",
        principal: Principal::Caller,
        feature: Feature::TrailFiles,
        actions: &["s3:ListBucket"],
        resources: &["arn:{partition}:s3:::{trail_bucket}"],
        why: "list the day folders of the requested accounts, regions and window",
    },
    Grant {
        sid: "ReadTrailFiles",
        principal: Principal::Caller,
        feature: Feature::TrailFiles,
        actions: &["s3:GetObject"],
        resources: &["arn:{partition}:s3:::{trail_bucket}/{trail_objects}"],
        why: "read the log files and their digest files",
    },
    Grant {
        sid: "CheckTrailDigestSignatures",
        principal: Principal::Caller,
        feature: Feature::TrailFiles,
        actions: &["cloudtrail:ListPublicKeys"],
        resources: &["*"],
        why: "the public keys that signed the digest files; ListPublicKeys has no resource-level permissions",
    },
    // Athena (the caller; Athena reads the trail with the caller's permissions).
    Grant {
        sid: "RunAthenaQueries",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &[
            "athena:GetQueryExecution",
            "athena:GetQueryResults",
            "athena:GetWorkGroup",
            "athena:StartQueryExecution",
            "athena:StopQueryExecution",
        ],
        resources: &["arn:{partition}:athena:*:{account}:workgroup/{athena_workgroup}"],
        why: "run the query in the workgroup, wait for it, read its rows, stop it on Ctrl-C",
    },
    Grant {
        sid: "ReadTheTableProjection",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["athena:GetTableMetadata"],
        resources: &["arn:{partition}:athena:*:{account}:datacatalog/*"],
        why: "the table's projection (which accounts and regions it can hold), so a partition it lacks fails rather than reads as empty",
    },
    Grant {
        sid: "ReadTheTrailTable",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["glue:GetDatabase", "glue:GetTable"],
        resources: &[
            "arn:{partition}:glue:*:{account}:catalog",
            "arn:{partition}:glue:*:{account}:database/{athena_database}",
            "arn:{partition}:glue:*:{account}:table/{athena_database}/{athena_table}",
        ],
        why: "Athena reads the table's definition from the Glue catalog",
    },
    Grant {
        sid: "AthenaReadsTheTrailBucket",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["s3:GetBucketLocation", "s3:ListBucket"],
        resources: &["arn:{partition}:s3:::{trail_bucket}"],
        why: "Athena lists the trail's partitions with the caller's permissions",
    },
    Grant {
        sid: "AthenaReadsTheTrailFiles",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["s3:GetObject"],
        resources: &["arn:{partition}:s3:::{trail_bucket}/{trail_objects}"],
        why: "Athena reads the trail's files with the caller's permissions",
    },
    Grant {
        sid: "AthenaQueryResultsBucket",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["s3:GetBucketLocation", "s3:ListBucket"],
        resources: &["arn:{partition}:s3:::{athena_output_bucket}"],
        why: "the query result location",
    },
    Grant {
        sid: "AthenaQueryResults",
        principal: Principal::Caller,
        feature: Feature::Athena,
        actions: &["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        resources: &["arn:{partition}:s3:::{athena_output_bucket}/{athena_output_objects}"],
        why: "Athena writes the results (large ones in parts) and the scan reads them back",
    },
    Grant {
        sid: "CreateTheTrailTable",
        principal: Principal::Caller,
        feature: Feature::AthenaCreate,
        actions: &["glue:CreateDatabase", "glue:CreateTable"],
        resources: &[
            "arn:{partition}:glue:*:{account}:catalog",
            "arn:{partition}:glue:*:{account}:database/{athena_database}",
            "arn:{partition}:glue:*:{account}:table/{athena_database}/{athena_table}",
        ],
        why: "athena-table --create: CREATE DATABASE IF NOT EXISTS and CREATE EXTERNAL TABLE, run by Athena with the caller's permissions",
    },
    // Evidence in S3 (the caller).
    Grant {
        sid: "ListEvidenceRuns",
        principal: Principal::Caller,
        feature: Feature::S3Output,
        actions: &["s3:ListBucket"],
        resources: &["arn:{partition}:s3:::{evidence_bucket}"],
        why: "--since last finds the previous run under the output prefix",
    },
    Grant {
        sid: "WriteAndReadEvidence",
        principal: Principal::Caller,
        feature: Feature::S3Output,
        actions: &["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        resources: &["arn:{partition}:s3:::{evidence_bucket}/{evidence_objects}"],
        why: "write each run's files (streamed in parts), SHA256SUMS and the latest pointer; read the previous run's report for --since last. Nothing may delete: Object Lock keeps every version anyway",
    },
    Grant {
        sid: "LockEvidence",
        principal: Principal::Caller,
        feature: Feature::S3OutputRetention,
        actions: &["s3:PutObjectRetention"],
        resources: &["arn:{partition}:s3:::{evidence_bucket}/{evidence_objects}"],
        why: "--object-lock-days: a PutObject that sets Object Lock retention needs this too",
    },
    Grant {
        sid: "CheckEvidenceBucketLock",
        principal: Principal::Caller,
        feature: Feature::S3OutputRetention,
        actions: &["s3:GetBucketObjectLockConfiguration"],
        resources: &["arn:{partition}:s3:::{evidence_bucket}"],
        why: "--object-lock-days: before the scan, check that the bucket has Object Lock enabled (else every upload would fail after it)",
    },
    // Security Hub (the caller).
    Grant {
        sid: "ImportFindingsIntoSecurityHub",
        principal: Principal::Caller,
        feature: Feature::SecurityHub,
        actions: &["securityhub:BatchImportFindings"],
        resources: &["arn:{partition}:securityhub:*:{account}:product/{account}/default"],
        why: "--security-hub: findings go to the account's own default product",
    },
];

/// An AWS API operation and the IAM action that authorizes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The SDK crate's service name (`aws-sdk-<service>`), e.g. `s3`.
    pub service: &'static str,
    /// The operation as the service model names it, e.g. `ListObjectsV2`.
    pub name: &'static str,
    /// `None`: IAM authorizes everyone (`sts:GetCallerIdentity`).
    pub action: Option<&'static str>,
}

const fn op(service: &'static str, name: &'static str, action: &'static str) -> Operation {
    Operation {
        service,
        name,
        action: Some(action),
    }
}

/// Every AWS operation the tool calls or is about to call. Where the action is
/// not named like the operation (S3 above all), this is the place that says so.
pub const OPERATIONS: &[Operation] = &[
    op(
        "organizations",
        "DescribeOrganization",
        "organizations:DescribeOrganization",
    ),
    op(
        "organizations",
        "ListAccounts",
        "organizations:ListAccounts",
    ),
    op(
        "organizations",
        "ListAccountsForParent",
        "organizations:ListAccountsForParent",
    ),
    op(
        "organizations",
        "ListOrganizationalUnitsForParent",
        "organizations:ListOrganizationalUnitsForParent",
    ),
    op("organizations", "ListRoots", "organizations:ListRoots"),
    op("sts", "AssumeRole", "sts:AssumeRole"),
    Operation {
        service: "sts",
        name: "GetCallerIdentity",
        action: None,
    },
    op("cloudtrail", "LookupEvents", "cloudtrail:LookupEvents"),
    op("cloudtrail", "ListPublicKeys", "cloudtrail:ListPublicKeys"),
    op("account", "ListRegions", "account:ListRegions"),
    op("ec2", "DescribeRegions", "ec2:DescribeRegions"),
    op("ssm", "DescribeSessions", "ssm:DescribeSessions"),
    op("ssm", "GetDocument", "ssm:GetDocument"),
    op("s3", "ListObjectsV2", "s3:ListBucket"),
    op("s3", "ListObjects", "s3:ListBucket"),
    op("s3", "GetObject", "s3:GetObject"),
    op("s3", "HeadObject", "s3:GetObject"),
    op("s3", "GetBucketLocation", "s3:GetBucketLocation"),
    op("s3", "PutObject", "s3:PutObject"),
    op("s3", "CreateMultipartUpload", "s3:PutObject"),
    op("s3", "UploadPart", "s3:PutObject"),
    op("s3", "CompleteMultipartUpload", "s3:PutObject"),
    op("s3", "AbortMultipartUpload", "s3:AbortMultipartUpload"),
    op("s3", "PutObjectRetention", "s3:PutObjectRetention"),
    op(
        "s3",
        "GetObjectLockConfiguration",
        "s3:GetBucketObjectLockConfiguration",
    ),
    op(
        "athena",
        "StartQueryExecution",
        "athena:StartQueryExecution",
    ),
    op("athena", "GetQueryExecution", "athena:GetQueryExecution"),
    op("athena", "GetQueryResults", "athena:GetQueryResults"),
    op("athena", "StopQueryExecution", "athena:StopQueryExecution"),
    op("athena", "GetWorkGroup", "athena:GetWorkGroup"),
    op("athena", "GetTableMetadata", "athena:GetTableMetadata"),
    op("glue", "GetDatabase", "glue:GetDatabase"),
    op("glue", "GetTable", "glue:GetTable"),
    op("glue", "CreateDatabase", "glue:CreateDatabase"),
    op("glue", "CreateTable", "glue:CreateTable"),
    op(
        "securityhub",
        "BatchImportFindings",
        "securityhub:BatchImportFindings",
    ),
];

/// The operation named `name` (case-insensitive) of the SDK crate `service`.
pub fn operation(service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.service == service && o.name.eq_ignore_ascii_case(name))
}

/// The grants of `principal` for the chosen features, in [`GRANTS`] order.
pub fn grants(
    principal: Principal,
    features: &[Feature],
) -> impl Iterator<Item = &'static Grant> + '_ {
    GRANTS
        .iter()
        .filter(move |g| g.principal == principal && features.contains(&g.feature))
}

/// Values for the `{name}` variables of the resource templates.
pub type Vars = BTreeMap<&'static str, String>;

/// Fills `{name}` variables. A variable with no value stays visible as
/// `MISSING-name`, which IAM rejects and the tests look for.
pub fn fill(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push_str("MISSING-");
                        out.push_str(name);
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// One statement as JSON; `resource` turns each filled ARN into its JSON form
/// (a string, or `Fn::Sub` in a template).
pub fn statement(grant: &Grant, vars: &Vars, resource: &dyn Fn(String) -> Value) -> Value {
    let action = match grant.actions {
        [one] => Value::from(*one),
        many => Value::from(many.to_vec()),
    };
    let resources: Vec<Value> = grant
        .resources
        .iter()
        .map(|r| resource(fill(r, vars)))
        .collect();
    let resource = match resources.len() {
        1 => resources.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(resources),
    };
    json!({
        "Sid": grant.sid,
        "Effect": "Allow",
        "Action": action,
        "Resource": resource,
    })
}

/// The statements of `principal` for `features`.
pub fn statements(
    principal: Principal,
    features: &[Feature],
    vars: &Vars,
    resource: &dyn Fn(String) -> Value,
) -> Vec<Value> {
    grants(principal, features)
        .map(|g| statement(g, vars, resource))
        .collect()
}

/// `Fn::Sub` where the text holds a reference, else the text itself.
pub fn cfn_resource(arn: String) -> Value {
    if arn.contains("${") {
        json!({ "Fn::Sub": arn })
    } else {
        Value::from(arn)
    }
}

/// A plain document's resource: the text as it is.
pub fn plain_resource(arn: String) -> Value {
    Value::from(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_unique_and_iam_shaped() {
        let mut seen = std::collections::BTreeSet::new();
        for g in GRANTS {
            assert!(seen.insert(g.sid), "duplicate sid {}", g.sid);
            assert!(
                g.sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                g.sid
            );
            assert!(
                !g.actions.is_empty() && !g.resources.is_empty(),
                "{}",
                g.sid
            );
            assert!(!g.why.is_empty());
        }
    }

    #[test]
    fn every_granted_action_authorizes_a_known_operation_and_back() {
        for g in GRANTS {
            for action in g.actions {
                assert!(
                    OPERATIONS.iter().any(|o| o.action == Some(*action)),
                    "{action} ({}) authorizes no operation in OPERATIONS",
                    g.sid
                );
            }
        }
        for o in OPERATIONS {
            if let Some(action) = o.action {
                assert!(
                    GRANTS.iter().any(|g| g.actions.contains(&action)),
                    "{}:{} needs {action}, which no grant gives",
                    o.service,
                    o.name
                );
            }
        }
    }

    #[test]
    fn fill_replaces_known_variables_and_marks_unknown_ones() {
        let mut vars = Vars::new();
        vars.insert("partition", "aws-cn".into());
        assert_eq!(
            fill("arn:{partition}:s3:::{bucket}/*", &vars),
            "arn:aws-cn:s3:::MISSING-bucket/*"
        );
        assert_eq!(fill("no variables {", &vars), "no variables {");
    }

    #[test]
    fn one_action_and_one_resource_are_not_lists() {
        let vars: Vars = [
            ("partition", "aws".to_string()),
            ("role_name", "R".to_string()),
        ]
        .into_iter()
        .collect();
        let s = statement(&GRANTS[1], &vars, &plain_resource);
        assert_eq!(s["Action"], "sts:AssumeRole");
        assert_eq!(s["Resource"], "arn:aws:iam::*:role/R");
        let s = statement(&GRANTS[0], &vars, &plain_resource);
        assert!(s["Action"].is_array());
        assert_eq!(cfn_resource("*".into()), json!("*"));
        assert_eq!(
            cfn_resource("arn:${AWS::Partition}:x".into()),
            json!({"Fn::Sub": "arn:${AWS::Partition}:x"})
        );
    }
}
