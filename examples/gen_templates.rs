//! Writes every generated template twice, for `tests/cfn_lint.sh`:
//! `OUTDIR/default/` with the default options, and `OUTDIR/full/` with e-mails,
//! an external id, a trusted account, a caller role and a central account.
//!
//!     cargo run --example gen_templates -- OUTDIR

use std::path::Path;
use std::process::ExitCode;

use ssm_session_audit::templates::{alerts, iam, AlertOptions, GeneratedFile, IamOptions};

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
        ..IamOptions::default()
    };
    let partial_iam = IamOptions {
        caller_role_name: Some("SessionAuditCaller".to_string()),
        ..IamOptions::default()
    };

    let profiles: [(&str, AlertOptions, IamOptions); 3] = [
        ("default", AlertOptions::default(), IamOptions::default()),
        ("full", full_alerts, full_iam),
        ("caller-role", AlertOptions::default(), partial_iam),
    ];
    for (name, alert_options, iam_options) in profiles {
        if let Err(e) = alert_options.validate().and(iam_options.validate()) {
            eprintln!("gen_templates: profile {name}: {e}");
            return ExitCode::FAILURE;
        }
        let mut files = alerts::render_all(&alert_options);
        files.extend(iam::render_all(&iam_options));
        if let Err(e) = write(&out.join(name), &files) {
            eprintln!("gen_templates: writing {}: {e}", out.join(name).display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
