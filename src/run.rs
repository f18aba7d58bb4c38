//! Glue between the command line and the library; owns the exit status.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use ssm_session_audit::config::{self, Config, FlagValues};
use ssm_session_audit::model::Report;
use ssm_session_audit::scan::{run_scan, NoProgress, Progress};
use ssm_session_audit::{report, simulator, templates};
use tokio::sync::watch;

use crate::cli::{AlertsArgs, Cli, Command, DemoArgs, IamArgs, OutputOpts, ScanArgs, SimulateArgs};
use crate::progress::{self, TerminalProgress};

/// Exit statuses a scheduler can act on.
pub mod exit {
    /// Complete, and no finding at or above `--fail-on`.
    pub const OK: i32 = 0;
    /// Findings at or above `--fail-on`.
    pub const FINDINGS: i32 = 1;
    /// Bad usage, config, credentials or permissions: nothing was scanned.
    pub const USAGE: i32 = 2;
    /// Coverage incomplete (an account partial or failed, or interrupted); wins over 1.
    pub const INCOMPLETE: i32 = 3;
}

/// How long a scan may take to stop after SIGINT/SIGTERM before the run gives up on it.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A failure before any scanning: printed with every cause, exit 2.
struct UsageError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for UsageError {
    fn from(e: E) -> Self {
        UsageError(e.into())
    }
}

pub fn main(cli: Cli) -> i32 {
    let opts = match &cli.command {
        Command::Scan(a) => Some(&a.output_opts),
        Command::Demo(a) => Some(&a.output_opts),
        _ => None,
    };
    init_logging(opts);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Scan(args) => scan(args).await,
            Command::Demo(args) => demo(args).await,
            Command::Alerts(args) => alerts(args).map(|_| exit::OK),
            Command::Iam(args) => iam(args).map(|_| exit::OK),
            Command::Simulate(args) => simulate(args).await.map(|_| exit::OK),
        }
    });
    match result {
        Ok(code) => code,
        Err(UsageError(e)) => {
            eprintln!("error: {}", report::escape_terminal(&format!("{e:#}")));
            exit::USAGE
        }
    }
}

/// Our own crate's messages only; the AWS SDK's logs stay at `warn` whatever the
/// verbosity, because at trace level they print request headers (signatures, tokens).
fn init_logging(opts: Option<&OutputOpts>) {
    let (quiet, verbose) = opts.map(|o| (o.quiet, o.verbose)).unwrap_or((false, 0));
    let ours = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,ssm_session_audit={ours}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn load_config(flags: &FlagValues) -> Result<Config, UsageError> {
    let file = match &flags.config {
        Some(path) => Some(config::load_file(path)?),
        None => None,
    };
    Ok(config::resolve(flags, file.as_ref(), chrono::Utc::now())?)
}

/// A config file with no flags on top (for `alerts` and `iam`).
fn config_file_only(path: &Path) -> Result<Config, UsageError> {
    load_config(&FlagValues {
        config: Some(path.to_path_buf()),
        ..FlagValues::default()
    })
}

/// Tests set `SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT=1`: then a run whose AWS
/// endpoint is not on loopback refuses to start, so no test can reach real AWS.
fn guard_endpoints() -> Result<(), UsageError> {
    if std::env::var_os("SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT").is_none() {
        return Ok(());
    }
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_ORGANIZATIONS",
        "AWS_ENDPOINT_URL_CLOUDTRAIL",
        "AWS_ENDPOINT_URL_SECURITYHUB",
    ] {
        if let Ok(url) = std::env::var(var) {
            let local = url.starts_with("http://127.")
                || url.starts_with("http://localhost")
                || url.starts_with("http://[::1]");
            if !local {
                return Err(UsageError(anyhow::anyhow!("{var}={url} is not a loopback endpoint, and SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT is set")));
            }
        } else if var == "AWS_ENDPOINT_URL" {
            return Err(UsageError(anyhow::anyhow!("AWS_ENDPOINT_URL is not set, and SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT is set: refusing to call real AWS")));
        }
    }
    Ok(())
}

async fn scan(args: ScanArgs) -> Result<i32, UsageError> {
    let cfg = load_config(&args.flag_values())?;
    guard_endpoints()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    run_and_report(&cfg, &sdk, &args.output_opts, None).await
}

/// The scan, its report files, the summary and the exit status: shared by `scan` and `demo`.
async fn run_and_report(
    cfg: &Config,
    sdk: &SdkConfig,
    opts: &OutputOpts,
    note: Option<&str>,
) -> Result<i32, UsageError> {
    // An unwritable --output must fail before the scan, not after it.
    report::check_output_dir(&cfg.report.output)
        .with_context(|| format!("--output {}", cfg.report.output.display()))?;
    // So is a Security Hub import with no region to import into.
    let hub_region = ssm_session_audit::securityhub::region(cfg, sdk)?;

    let terminal = progress::wanted(opts.quiet).then(TerminalProgress::start);
    let sink: Arc<dyn Progress> = match &terminal {
        Some(t) => t.clone(),
        None => Arc::new(NoProgress),
    };
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let stop = cancel_rx.clone();
    let signals = tokio::spawn(watch_signals(cancel_tx));
    // After a signal the scan normally returns at once with what it read; if some
    // call it cannot cancel holds it (discovery, a retried AssumeRole), it gets
    // STOP_GRACE, then the run ends with no report rather than hang.
    let result = tokio::select! {
        r = run_scan(cfg, sdk, sink, cancel_rx) => Some(r),
        _ = async {
            ssm_session_audit::lookup::cancelled(&stop).await;
            tokio::time::sleep(STOP_GRACE).await;
        } => None,
    };
    if let Some(t) = &terminal {
        t.finish();
    }
    let Some(result) = result else {
        signals.abort();
        eprintln!(
            "interrupted: the scan did not stop within {} s; no report was written",
            STOP_GRACE.as_secs()
        );
        return Ok(exit::INCOMPLETE);
    };
    // No credentials, no account list, an unreadable baseline: nothing was scanned.
    let mut report: Report = result.map_err(|e| {
        signals.abort();
        UsageError(anyhow::Error::new(e))
    })?;
    // Before the files are written, so the report records the import (and a
    // failed import makes the run incomplete, in the files and the exit status).
    // Signals still stop it: the first ends the import, the second the process.
    if let Some(region) = &hub_region {
        ssm_session_audit::securityhub::apply(&mut report, cfg, sdk, region, &stop).await;
    }
    signals.abort();
    let written = report::write_report_dir(&report, &cfg.report.output, &cfg.report.formats)
        .with_context(|| format!("writing the report to {}", cfg.report.output.display()))?;
    if !opts.quiet {
        let mut out = std::io::stdout().lock();
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let _ = report::write_summary(&report, &mut out, color);
        let page = written.iter().find(|p| p.ends_with("report.html"));
        println!(
            "\nreport: {} ({} files){}{}",
            cfg.report.output.display(),
            written.len(),
            page.map(|p| format!("\nopen in a browser: {}", p.display()))
                .unwrap_or_default(),
            note.map(|n| format!("\n{n}")).unwrap_or_default()
        );
    }
    Ok(exit_status(&report, cfg))
}

fn exit_status(report: &Report, cfg: &Config) -> i32 {
    if !report.run.complete {
        return exit::INCOMPLETE;
    }
    match cfg.report.fail_on {
        Some(level) if report.findings.iter().any(|f| f.severity >= level) => exit::FINDINGS,
        _ => exit::OK,
    }
}

/// First SIGINT/SIGTERM: stop the scan and write what was read, marked incomplete.
/// Second: leave at once (temporary files never look like a report).
async fn watch_signals(cancel: watch::Sender<bool>) {
    #[cfg(unix)]
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    for round in 0..2 {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if round == 0 {
            eprintln!("interrupted: stopping; the report will be marked incomplete (signal again to quit now)");
            let _ = cancel.send(true);
        } else {
            std::process::exit(130);
        }
    }
}

async fn demo(args: DemoArgs) -> Result<i32, UsageError> {
    let sim = simulator::Simulator::start(simulator::SimConfig::demo())
        .await
        .context("starting the simulated organization on 127.0.0.1")?;
    let dir = tempdir_for_demo()?;
    let config_path = dir.join("demo-config.toml");
    std::fs::write(&config_path, simulator::demo_config_toml())?;
    let baseline_path = dir.join("baseline.json");
    std::fs::write(&baseline_path, baseline_json(&sim.baseline_principals()))?;
    let flags = FlagValues {
        config: Some(config_path),
        output: Some(args.output.clone()),
        // The demo shows every output, OCSF included.
        formats: Some(vec!["json,csv,html,ocsf".to_string()]),
        baseline: Some(baseline_path),
        ..FlagValues::default()
    };
    let cfg = load_config(&flags)?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(sim.endpoint())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIADEMOMANAGEMENT01",
            "demo-secret-not-a-real-key",
            None,
            None,
            "demo",
        ))
        .load()
        .await;
    if !args.output_opts.quiet {
        eprintln!(
            "demo: simulated organization {} on {} ({} accounts)",
            sim.organization_id(),
            sim.endpoint(),
            sim.accounts().len()
        );
    }
    let code = run_and_report(
        &cfg,
        &sdk,
        &args.output_opts,
        Some("demo: exit status 3 is expected: the demo organization has a denied role, so coverage is incomplete"),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
    code
}

fn tempdir_for_demo() -> Result<std::path::PathBuf, UsageError> {
    let dir = std::env::temp_dir().join(format!("ssm-session-audit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A minimal earlier report, as `--baseline` reads it: the principals seen before.
fn baseline_json(principals: &[String]) -> String {
    let events: Vec<serde_json::Value> = principals
        .iter()
        .map(|p| serde_json::json!({ "principal_arn": p }))
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({ "schema": ssm_session_audit::model::REPORT_SCHEMA, "events": events }),
    )
    .expect("JSON of strings")
}

fn write_files(dir: &Path, files: &[templates::GeneratedFile]) -> Result<(), UsageError> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in files {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn alerts(args: AlertsArgs) -> Result<(), UsageError> {
    let mut opts = templates::AlertOptions::default();
    if let Some(path) = &args.config {
        opts.event_names = config_file_only(path)?.scan.event_names;
    }
    opts.emails = args.email;
    opts.central_account_id = args.central_account;
    if let Some(t) = args.topic_name {
        opts.topic_name = t;
    }
    opts.validate()?;
    write_files(&args.output, &templates::alerts::render_all(&opts))
}

fn iam(args: IamArgs) -> Result<(), UsageError> {
    let mut role_name = "SessionAuditRole".to_string();
    let mut external_id = None;
    if let Some(path) = &args.config {
        let cfg = config_file_only(path)?;
        role_name = cfg.accounts.role_name;
        external_id = cfg.accounts.external_id;
    }
    let opts = templates::IamOptions {
        role_name: args.role_name.unwrap_or(role_name),
        trusted_account_id: args.trusted_account,
        external_id: args.external_id.or(external_id),
        caller_role_name: None,
    };
    opts.validate()?;
    write_files(&args.output, &templates::iam::render_all(&opts))
}

async fn simulate(args: SimulateArgs) -> Result<(), UsageError> {
    let mut cfg = if args.demo {
        simulator::SimConfig::demo()
    } else {
        simulator::SimConfig::default()
    };
    if let Some(n) = args.accounts {
        cfg.accounts = n;
    }
    if let Some(r) = args.regions {
        cfg.regions = r;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(n) = args.sessions {
        cfg.sessions_per_partition = n;
    }
    if let Some(ms) = args.latency_ms {
        cfg.latency = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = args.jitter_ms {
        cfg.jitter = std::time::Duration::from_millis(ms);
    }
    if let Some(r) = args.rate {
        cfg.lookup_rate = r;
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    eprintln!("simulated organization on http://{addr} (AWS_ENDPOINT_URL=http://{addr}); ground truth at /_sim/ground-truth");
    simulator::serve_forever(cfg, addr).await?;
    Ok(())
}
