//! Writes every generated template for several sets of options, for
//! `tests/cfn_lint.sh`: `OUTDIR/default/` with the default options,
//! `OUTDIR/full/` with e-mails, an external id, a trusted account, a caller
//! role, a central account, every optional IAM part and every schedule option,
//! and `OUTDIR/caller-role/`.
//!
//!     cargo run --example gen_templates -- OUTDIR

use std::path::Path;
use std::process::ExitCode;

use ssm_session_audit::templates::schedule::{self, ScheduleOptions};
use ssm_session_audit::templates::{
    alerts, iam, AlertOptions, AthenaIam, GeneratedFile, IamOptions, S3Location,
};

fn write(dir: &Path, files: &[GeneratedFile]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for file in files {
        std::fs::write(dir.join(&file.name), &file.contents)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: gen_templates OUTDIR");
        return ExitCode::from(2);
    };
    let out = Path::new(&out);

    let full_alerts = AlertOptions {
        emails: vec![
            "security@example.com".to_string(),
            "oncall@example.com".to_string(),
        ],
        central_account_id: Some("123456789012".to_string()),
        ..AlertOptions::default()
    };
    let full_iam = IamOptions {
        trusted_account_id: Some("123456789012".to_string()),
        external_id: Some("ssm-session-audit-2025".to_string()),
        caller_role_name: Some(
            "aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_SecurityAudit_*".to_string(),
        ),
        trail: Some(S3Location::parse("s3://org-trail-bucket/trail")),
        athena: Some(AthenaIam {
            database: "security".to_string(),
            table: "cloudtrail_org".to_string(),
            workgroup: "primary".to_string(),
            output: S3Location::parse("s3://athena-results-bucket/ssm-session-audit/"),
            create: true,
        }),
        s3_output: Some(S3Location::parse("s3://evidence-bucket/runs")),
        security_hub: true,
        ..IamOptions::default()
    };
    let full_schedule = ScheduleOptions {
        schedule_expression: "cron(30 5 * * ? *)".to_string(),
        timezone: "Europe/Berlin".to_string(),
        image: Some(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssm-session-audit:0.1.0".to_string(),
        ),
        external_id_secret_arn: Some(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ssm-session-audit/external-id-AbCdEf"
                .to_string(),
        ),
        emails: vec!["security@example.com".to_string()],
        retention_days: 400,
        role_name: "SessionAuditRole".to_string(),
        regions: Some(vec!["us-east-1".to_string(), "eu-west-1".to_string()]),
        accounts: Vec::new(),
        exclude_accounts: vec!["210987654321".to_string()],
        ou: vec!["ou-ab12-cdefgh34".to_string()],
        fail_on: Some("medium".to_string()),
        formats: Some(vec!["json".to_string(), "csv".to_string()]),
        scan_config: Some("/etc/ssm-session-audit/config.toml".to_string()),
    };
    let partial_iam = IamOptions {
        caller_role_name: Some("SessionAuditCaller".to_string()),
        ..IamOptions::default()
    };

    let profiles: [(&str, AlertOptions, IamOptions, ScheduleOptions); 3] = [
        (
            "default",
            AlertOptions::default(),
            IamOptions::default(),
            ScheduleOptions::default(),
        ),
        ("full", full_alerts, full_iam, full_schedule),
        (
            "caller-role",
            AlertOptions::default(),
            partial_iam,
            ScheduleOptions::default(),
        ),
    ];
    for (name, alert_options, iam_options, schedule_options) in profiles {
        if let Err(e) = alert_options
            .validate()
            .and(iam_options.validate())
            .and(schedule_options.validate())
        {
            eprintln!("gen_templates: profile {name}: {e}");
            return ExitCode::FAILURE;
        }
        let mut files = alerts::render_all(&alert_options);
        files.extend(iam::render_all(&iam_options));
        files.extend(schedule::render_all(&schedule_options));
        if let Err(e) = write(&out.join(name), &files) {
            eprintln!("gen_templates: writing {}: {e}", out.join(name).display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
