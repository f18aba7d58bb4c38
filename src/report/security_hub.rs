//! `--security-hub`: the report's findings into AWS Security Hub, as ASFF
//! (AWS Security Finding Format) through `BatchImportFindings`.
//!
//! Contract:
//! - Imported from the caller's own account with the default product
//!   (`arn:<partition>:securityhub:<region>:<account>:product/<account>/default`):
//!   with that product Security Hub requires each finding's `AwsAccountId` to be
//!   the calling account, so the member account a finding is about is its
//!   `AwsAccount` resource (and a product field), not its `AwsAccountId`.
//! - At most 100 findings a call (the API's limit), calls spaced to 10 a second
//!   (its rate), each call retried by `retry::call_with_retry` (the SDK's own
//!   retries are off, as for every client of the run).
//! - Each finding's `Id` is [`report::finding_id`]: the same finding in a later
//!   run has the same id, so Security Hub updates it and never duplicates it.
//! - The outcome is a value ([`SecurityHubImport`]): every `FailedFindings`
//!   entry, and why the import stopped if it did. [`apply`] puts it in the
//!   report and, unless every finding was accepted, marks the run incomplete, so
//!   the report says so and the exit status is 3.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, FindingProviderFields, FindingProviderSeverity, Partition, RecordState,
    Resource, Severity as AsffSeverity, SeverityLabel,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use tokio::sync::watch;

use crate::call::{call_with_retry, CallFailure};
use crate::config::Config;
use crate::model::{
    Finding, Report, SecurityHubFailure, SecurityHubImport, SessionEvent, Severity,
};
use crate::report::{self, finding_id};

/// `BatchImportFindings` takes at most this many findings a call.
pub const BATCH: usize = 100;
/// Calls a second `BatchImportFindings` allows (burst 30).
pub const CALLS_PER_SECOND: f64 = 10.0;
/// ASFF limits on text fields, in characters.
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 1024;
const MAX_PRODUCT_FIELD: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SecurityHubError {
    #[error("--security-hub needs a region: give --security-hub-region, or set AWS_REGION or a profile region")]
    NoRegion,
}

/// The Security Hub region: the configured one, else the SDK's.
pub fn region(cfg: &Config, sdk: &SdkConfig) -> Result<Option<String>, SecurityHubError> {
    let Some(sh) = &cfg.report.security_hub else {
        return Ok(None);
    };
    match sh
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()))
    {
        Some(r) => Ok(Some(r)),
        None => Err(SecurityHubError::NoRegion),
    }
}

/// Who imports: the account and partition of an ARN (`arn:<partition>:<svc>::<account>:…`).
pub fn account_and_partition(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, _, _, account, _]
            if !partition.is_empty() && crate::ids::is_account_id(account) =>
        {
            Some((account.to_string(), partition.to_string()))
        }
        _ => None,
    }
}

/// The product every finding is imported under: the caller's default product.
pub fn product_arn(partition: &str, region: &str, account: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

/// Where the findings go and when the run ended (their `UpdatedAt`).
#[derive(Debug, Clone)]
pub struct Target {
    pub region: String,
    pub account: String,
    pub partition: String,
    pub updated_at: String,
}

impl Target {
    pub fn product_arn(&self) -> String {
        product_arn(&self.partition, &self.region, &self.account)
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

fn label(s: Severity) -> SeverityLabel {
    match s {
        Severity::Info => SeverityLabel::Informational,
        Severity::Low => SeverityLabel::Low,
        Severity::Medium => SeverityLabel::Medium,
        Severity::High => SeverityLabel::High,
        Severity::Critical => SeverityLabel::Critical,
    }
}

fn partition_of(p: &str) -> Partition {
    Partition::from(p)
}

/// One finding in ASFF. Pure: the same finding and target give the same value.
pub fn asff(f: &Finding, events: &HashMap<&str, &SessionEvent>, to: &Target) -> AwsSecurityFinding {
    let proving: Vec<&SessionEvent> = f
        .event_ids
        .iter()
        .filter_map(|id| events.get(id.as_str()).copied())
        .collect();
    let first = proving.iter().map(|e| e.event_time).min();
    let last = proving.iter().map(|e| e.event_time).max();
    let created = first
        .map(report::time)
        .unwrap_or_else(|| to.updated_at.clone());
    let finding_type = format!("Unusual Behaviors/User/{}", f.flag);
    let partition = report::ocsf::partition_of_region(&f.region);
    let mut resources = vec![Resource::builder()
        .r#type("AwsAccount")
        .id(format!("AWS::::Account:{}", f.account_id))
        .partition(partition_of(partition))
        .region(&f.region)
        .build()];
    let targets: BTreeSet<&str> = proving
        .iter()
        .filter_map(|e| e.target.as_deref())
        .filter(|t| t.starts_with("i-"))
        .collect();
    for t in targets {
        resources.push(
            Resource::builder()
                .r#type("AwsEc2Instance")
                .id(format!(
                    "arn:{partition}:ec2:{}:{}:instance/{t}",
                    f.region, f.account_id
                ))
                .partition(partition_of(partition))
                .region(&f.region)
                .build(),
        );
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut field = |k: &str, v: &str| {
        fields.insert(format!("ssm-session-audit/{k}"), cut(v, MAX_PRODUCT_FIELD));
    };
    field("flag", f.flag.as_str());
    field("account_id", &f.account_id);
    field("region", &f.region);
    field("principal_arn", &f.principal_arn);
    if let Some(s) = &f.session_id {
        field("session_id", s);
    }
    field("event_ids", &f.event_ids.join(","));
    let mut b = AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(finding_id(f))
        .product_arn(to.product_arn())
        .product_name("ssm-session-audit")
        .company_name("ssm-session-audit")
        .generator_id(format!("ssm-session-audit/{}", f.flag))
        .aws_account_id(&to.account)
        .region(&to.region)
        .types(&finding_type)
        .created_at(created)
        .updated_at(&to.updated_at)
        .severity(
            AsffSeverity::builder()
                .label(label(f.severity))
                .original(f.severity.as_str())
                .build(),
        )
        .finding_provider_fields(
            FindingProviderFields::builder()
                .severity(
                    FindingProviderSeverity::builder()
                        .label(label(f.severity))
                        .original(f.severity.as_str())
                        .build(),
                )
                .types(&finding_type)
                .build(),
        )
        .title(cut(
            &format!(
                "{}: {} in {} {}",
                f.flag, f.principal_arn, f.account_id, f.region
            ),
            MAX_TITLE,
        ))
        .description(cut(&f.detail, MAX_DESCRIPTION))
        .set_resources(Some(resources))
        .set_product_fields(Some(fields))
        .record_state(RecordState::Active);
    if let (Some(a), Some(z)) = (first, last) {
        b = b
            .first_observed_at(report::time(a))
            .last_observed_at(report::time(z));
    }
    b.build()
}

/// Folds one call's answer into the outcome: the accepted count and each refused finding.
pub fn record_batch(
    out: &mut SecurityHubImport,
    sent: usize,
    success_count: Option<i32>,
    failed: Vec<SecurityHubFailure>,
) {
    // A missing SuccessCount is read as "all but the failed ones": the call succeeded.
    let ok = success_count
        .map(|n| n.max(0) as u64)
        .unwrap_or_else(|| sent.saturating_sub(failed.len()) as u64);
    out.imported += ok;
    out.failed.extend(failed);
}

/// Imports every finding of `report` (in calls of [`BATCH`], paced) and says what happened.
pub async fn import(
    client: &aws_sdk_securityhub::Client,
    report: &Report,
    to: &Target,
    deadline: Duration,
    cancel: &watch::Receiver<bool>,
) -> SecurityHubImport {
    let mut out = SecurityHubImport {
        region: to.region.clone(),
        product_arn: to.product_arn(),
        findings: report.findings.len() as u64,
        ..SecurityHubImport::default()
    };
    let events: HashMap<&str, &SessionEvent> = report
        .events
        .iter()
        .map(|e| (e.event_id.as_str(), e))
        .collect();
    let all: Vec<AwsSecurityFinding> = report
        .findings
        .iter()
        .map(|f| asff(f, &events, to))
        .collect();
    let mut pace = crate::call::Pace::new(CALLS_PER_SECOND);
    for (n, chunk) in all.chunks(BATCH).enumerate() {
        if *cancel.borrow() {
            out.error = Some(format!(
                "interrupted after {n} of {} calls",
                all.len().div_ceil(BATCH)
            ));
            break;
        }
        pace.wait().await;
        pace.sent();
        let call = call_with_retry(None, deadline, || {
            client
                .batch_import_findings()
                .set_findings(Some(chunk.to_vec()))
                .send()
        });
        let result = tokio::select! {
            r = call => r,
            _ = crate::call::cancelled(cancel) => Err(CallFailure {
                class: crate::call::ErrorClass::Fatal,
                code: "interrupted".into(),
                message: "the run was interrupted during the import".into(),
            }),
        };
        match result {
            Ok(resp) => {
                let failed = resp
                    .failed_findings()
                    .iter()
                    .map(|e| SecurityHubFailure {
                        id: e.id().unwrap_or_default().to_string(),
                        error_code: e.error_code().unwrap_or_default().to_string(),
                        error_message: crate::call::short(e.error_message().unwrap_or_default()),
                    })
                    .collect();
                record_batch(&mut out, chunk.len(), resp.success_count(), failed);
            }
            Err(e) => {
                out.error = Some(format!(
                    "BatchImportFindings call {} of {} failed: {e}",
                    n + 1,
                    all.len().div_ceil(BATCH)
                ));
                break;
            }
        }
    }
    out
}

/// The Security Hub client: our timeouts, no SDK retries (we retry, counted).
pub fn client(
    sdk: &SdkConfig,
    region: &str,
    call_timeout: Duration,
) -> aws_sdk_securityhub::Client {
    aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::config::Builder::from(sdk)
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(call_timeout)
                    .build(),
            )
            .build(),
    )
}

/// Who the caller is, from the report, or from STS when the report does not say.
async fn caller(
    report: &Report,
    sdk: &SdkConfig,
    region: &str,
    cfg: &Config,
) -> Result<(String, String), String> {
    if let Some(found) = report
        .run
        .caller_arn
        .as_deref()
        .and_then(account_and_partition)
    {
        return Ok(found);
    }
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(sdk)
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let me = call_with_retry(None, cfg.scan.retry_deadline, || {
        sts.get_caller_identity().send()
    })
    .await
    .map_err(|e| format!("GetCallerIdentity failed: {e}"))?;
    me.arn()
        .and_then(account_and_partition)
        .ok_or_else(|| "GetCallerIdentity named no account".to_string())
}

/// The whole `--security-hub` step: import, record the outcome in the report,
/// and mark the run incomplete unless every finding was accepted.
pub async fn apply(
    report: &mut Report,
    cfg: &Config,
    sdk: &SdkConfig,
    region: &str,
    cancel: &watch::Receiver<bool>,
) {
    let outcome = match caller(report, sdk, region, cfg).await {
        Ok((account, partition)) => {
            let to = Target {
                region: region.to_string(),
                account,
                partition,
                updated_at: report::time(report.run.finished_at),
            };
            let client = client(sdk, region, cfg.scan.call_timeout);
            import(&client, report, &to, cfg.scan.retry_deadline, cancel).await
        }
        Err(e) => SecurityHubImport {
            region: region.to_string(),
            findings: report.findings.len() as u64,
            error: Some(e),
            ..SecurityHubImport::default()
        },
    };
    if !outcome.succeeded() {
        report.run.complete = false;
        let why = match &outcome.error {
            Some(e) => format!("the Security Hub import stopped: {e}"),
            None => format!(
                "Security Hub refused {} of {} findings",
                outcome.findings - outcome.imported,
                outcome.findings
            ),
        };
        report.run.incomplete_reasons.push(why);
    }
    report.run.security_hub = Some(outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn target() -> Target {
        Target {
            region: "eu-west-1".into(),
            account: "999999999999".into(),
            partition: "aws".into(),
            updated_at: "2025-03-01T12:03:30Z".into(),
        }
    }

    #[test]
    fn callers_and_products() {
        assert_eq!(
            account_and_partition("arn:aws:sts::999999999999:assumed-role/Audit/ci"),
            Some(("999999999999".into(), "aws".into()))
        );
        assert_eq!(
            account_and_partition("arn:aws-us-gov:iam::123456789012:user/a"),
            Some(("123456789012".into(), "aws-us-gov".into()))
        );
        assert_eq!(account_and_partition("not-an-arn"), None);
        assert_eq!(account_and_partition("arn:aws:iam::12:user/a"), None);
        assert_eq!(
            target().product_arn(),
            "arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default"
        );
    }

    #[test]
    fn a_finding_in_asff() {
        let r = fixture::report();
        let events: HashMap<&str, &SessionEvent> =
            r.events.iter().map(|e| (e.event_id.as_str(), e)).collect();
        let f = &r.findings[0];
        let a = asff(f, &events, &target());
        assert_eq!(a.schema_version(), Some("2018-10-08"));
        assert_eq!(a.id(), Some(finding_id(f).as_str()));
        assert_eq!(
            a.product_arn(),
            Some("arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default")
        );
        // The default product imports as the caller's account only.
        assert_eq!(a.aws_account_id(), Some("999999999999"));
        assert_eq!(a.generator_id(), Some("ssm-session-audit/root-session"));
        assert_eq!(a.types(), ["Unusual Behaviors/User/root-session"]);
        assert_eq!(
            a.severity().and_then(|s| s.label()),
            Some(&SeverityLabel::Critical)
        );
        assert_eq!(a.created_at(), Some("2025-02-19T20:13:49Z"));
        assert_eq!(a.updated_at(), Some("2025-03-01T12:03:30Z"));
        assert_eq!(a.first_observed_at(), Some("2025-02-19T20:13:49Z"));
        assert_eq!(a.description(), Some(f.detail.as_str()));
        let res: Vec<(&str, &str)> = a
            .resources()
            .iter()
            .map(|r| (r.r#type().unwrap(), r.id().unwrap()))
            .collect();
        assert_eq!(
            res,
            [
                ("AwsAccount", "AWS::::Account:111111111111"),
                (
                    "AwsEc2Instance",
                    "arn:aws:ec2:us-east-1:111111111111:instance/i-0123456789abcdef0"
                )
            ]
        );
        let fields = a.product_fields().unwrap();
        assert_eq!(fields["ssm-session-audit/account_id"], "111111111111");
        assert_eq!(fields["ssm-session-audit/event_ids"], f.event_ids.join(","));
        // Same finding, same ASFF (a rerun updates in place).
        assert_eq!(asff(f, &events, &target()), a);
    }

    #[test]
    fn long_text_fits_asff_limits() {
        let r = fixture::report();
        let events = HashMap::new();
        let mut f = r.findings[0].clone();
        f.detail = "x".repeat(5000);
        f.principal_arn = "y".repeat(400);
        let a = asff(&f, &events, &target());
        assert_eq!(a.description().unwrap().chars().count(), MAX_DESCRIPTION);
        assert_eq!(a.title().unwrap().chars().count(), MAX_TITLE);
        // No proving event in the report: created at the run's end.
        assert_eq!(a.created_at(), Some("2025-03-01T12:03:30Z"));
        assert_eq!(a.first_observed_at(), None);
    }

    #[test]
    fn refused_findings_are_each_recorded() {
        let mut out = SecurityHubImport {
            findings: 150,
            ..SecurityHubImport::default()
        };
        record_batch(&mut out, 100, Some(100), vec![]);
        assert!(!out.succeeded(), "50 not sent yet");
        let refused = SecurityHubFailure {
            id: "ssm-session-audit/x".into(),
            error_code: "InvalidInput".into(),
            error_message: "Finding must contain at least one resource".into(),
        };
        record_batch(&mut out, 50, Some(49), vec![refused.clone()]);
        assert_eq!(out.imported, 149);
        assert_eq!(out.failed, [refused]);
        assert!(!out.succeeded());
        let mut ok = SecurityHubImport {
            findings: 3,
            ..SecurityHubImport::default()
        };
        record_batch(&mut ok, 3, None, vec![]);
        assert!(ok.succeeded());
    }
}
