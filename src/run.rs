//! Glue between the command line and the library; owns the exit status.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use ssm_session_audit::config::{self, Config, FlagValues};
use ssm_session_audit::model::Report;
use ssm_session_audit::progress::{NoProgress, Progress};
use ssm_session_audit::scan::run_scan;
use ssm_session_audit::{report, templates};
use tokio::sync::watch;

use crate::cli::{
    ActiveArgs, AlertsArgs, AthenaTableArgs, Cli, Command, IamArgs, OutputOpts, ScanArgs,
    ScheduleArgs,
};
use crate::terminal::{self, TerminalProgress};

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
pub(crate) struct UsageError(pub(crate) anyhow::Error);

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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The simulator is a server: it keeps a worker per core.
    let server = matches!(cli.command, Command::Simulate(_));
    if !server && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(worker_threads());
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Scan(args) => scan(args).await,
            Command::Demo(args) => crate::demo::demo(args).await,
            Command::Active(args) => active(args).await,
            Command::Alerts(args) => alerts(args).map(|_| exit::OK),
            Command::Iam(args) => iam(args).map(|_| exit::OK),
            Command::AthenaTable(args) => athena_table(args).await.map(|_| exit::OK),
            Command::Schedule(args) => schedule(args).map(|_| exit::OK),
            Command::Simulate(args) => crate::demo::simulate(args).await.map(|_| exit::OK),
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

/// Half the cores (at least one) run a client's async tasks; `TOKIO_WORKER_THREADS`
/// (tokio's own variable) sets another number. A scan waits on the network,
/// not on CPU (the 10,000-account benchmark keeps one core about half busy),
/// and with a worker per core a call's wake-ups, timers and connection move
/// between threads. On two cores, one worker instead of two spent about 8 %
/// less CPU per call on average over eleven interleaved pairs of runs of
/// workload (a), and less memory (BENCHMARKS.md). The other cores are left to
/// the kernel's share of each call (about 30 % of a scan's CPU) and to the
/// threads that parse trail files and build the report.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
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

pub(crate) fn load_config(flags: &FlagValues) -> Result<Config, UsageError> {
    let file = match &flags.config {
        Some(path) => Some(config::load_file(path)?),
        None => None,
    };
    Ok(config::resolve(flags, file.as_ref(), now()?)?)
}

/// Now, in whole seconds (CloudTrail's event times are whole seconds, and a
/// window's bounds become the next window's). Tests, which always set
/// `SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT`, may set `SSM_SESSION_AUDIT_NOW`
/// (RFC 3339) to run consecutive scans at chosen times; nothing else can.
fn now() -> Result<chrono::DateTime<chrono::Utc>, UsageError> {
    let real = chrono::Utc::now();
    let real = chrono::DateTime::from_timestamp(real.timestamp(), 0).unwrap_or(real);
    if std::env::var_os("SSM_SESSION_AUDIT_REQUIRE_LOCAL_ENDPOINT").is_none() {
        return Ok(real);
    }
    match std::env::var("SSM_SESSION_AUDIT_NOW") {
        Ok(t) => chrono::DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| UsageError(anyhow::anyhow!("SSM_SESSION_AUDIT_NOW={t:?}: {e}"))),
        Err(_) => Ok(real),
    }
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
        "AWS_ENDPOINT_URL_ATHENA",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SSM",
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

/// `active`: the sessions connected now, on stdout; exit 0 when every account
/// and region was read, 3 when some could not be (they are listed).
async fn active(args: ActiveArgs) -> Result<i32, UsageError> {
    use ssm_session_audit::ssm::active;
    let flags = args.flag_values();
    let file = match &flags.config {
        Some(path) => Some(config::load_file(path)?),
        None => None,
    };
    let cfg = config::resolve(&flags, file.as_ref(), chrono::Utc::now())?;
    let format = args.format.trim().to_ascii_lowercase();
    if !["table", "json", "csv"].contains(&format.as_str()) {
        return Err(UsageError(anyhow::anyhow!(
            "--format {:?}: not a format of `active`; use table, json or csv",
            report::escape_terminal(&args.format)
        )));
    }
    guard_endpoints()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let signals = tokio::spawn(watch_signals(cancel_tx));
    let result = active::list_active(&cfg, &sdk, cancel_rx).await;
    signals.abort();
    let listing = result.map_err(|e| UsageError(anyhow::Error::new(e)))?;
    let mut out = std::io::stdout().lock();
    let written = match format.as_str() {
        "json" => active::write_json(&listing, &mut out),
        "csv" => active::write_csv(&listing, &mut out),
        _ => active::write_table(&listing, &mut out),
    };
    written.context("writing to stdout")?;
    if !listing.complete {
        let missing = listing.not_checked();
        eprintln!(
            "incomplete: {} account(s) or region(s) could not be read; their sessions are not listed",
            missing.len().max(1)
        );
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}

/// The scan, its report files, the summary and the exit status: shared by `scan` and `demo`.
pub(crate) async fn run_and_report(
    cfg: &Config,
    sdk: &SdkConfig,
    opts: &OutputOpts,
    note: Option<&str>,
) -> Result<i32, UsageError> {
    // An unwritable --output must fail before the scan, not after it. Uploads
    // of large parts get more time than one LookupEvents call.
    let evidence_clients = ssm_session_audit::call::ClientSettings::new(
        sdk,
        cfg.scan
            .call_timeout
            .max(std::time::Duration::from_secs(120)),
    );
    let output = report::escape_terminal(&cfg.report.output.to_string());
    let evidence = report::Evidence::open(&cfg.report, &evidence_clients, cfg.scan.resolved_at)
        .await
        .with_context(|| format!("--output {output}"))?;
    let mut cfg = cfg.clone();
    if cfg.scan.since_last {
        let last = evidence
            .last_run()
            .await
            .with_context(|| format!("--since last with --output {output}"))?;
        let Some(last) = last else {
            return Err(UsageError(anyhow::anyhow!(
                "--since last: there is no earlier run in {output} to go on from; give the first run its window with --since DURATION (e.g. --since 1d) or --start TIME, and later runs with --since last go on from it"
            )));
        };
        let oldest = (cfg.scan.source == config::Source::LookupEvents).then(|| {
            cfg.scan.resolved_at - chrono::TimeDelta::days(config::LOOKUP_EVENTS_HISTORY_DAYS)
        });
        ssm_session_audit::chain::continue_from(&mut cfg.scan, &last, oldest).map_err(|e| {
            UsageError(anyhow::anyhow!(
                "--since last: {}",
                report::escape_terminal(&e.to_string())
            ))
        })?;
    }
    let cfg = &cfg;
    // So is a Security Hub import with no region to import into.
    let hub_region = ssm_session_audit::report::security_hub::region(cfg, sdk)?;

    let terminal = terminal::wanted(opts.quiet).then(TerminalProgress::start);
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
            ssm_session_audit::call::cancelled(&stop).await;
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
        ssm_session_audit::report::security_hub::apply(&mut report, cfg, sdk, region, &stop).await;
    }
    signals.abort();
    let written = evidence
        .write(&report, &cfg.report.formats)
        .await
        .with_context(|| format!("writing the report to {output}"))?;
    if !opts.quiet {
        let mut out = std::io::stdout().lock();
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let _ = report::write_summary(&report, &mut out, color);
        if let Some(details) = report.run.athena.as_ref().and_then(|v| {
            serde_json::from_value::<ssm_session_audit::source::athena::AthenaDetails>(v.clone())
                .ok()
        }) {
            println!("{}", details.summary_line());
        }
        let page = written.page.as_ref();
        println!(
            "\nreport: {} ({} files){}{}",
            report::escape_terminal(&written.location),
            written.files,
            page.map(|p| format!("\nopen in a browser: {}", p.display()))
                .unwrap_or_default(),
            note.map(|n| format!("\n{n}")).unwrap_or_default()
        );
    }
    let status = exit_status(&report, cfg);
    // The process ends next: freeing a large report one string at a time
    // only delays the exit.
    std::mem::forget(report);
    Ok(status)
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
/// Second: leave at once, once a commit of the report folder in progress is
/// done, removing every staging folder (nothing half-written is left).
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
            report::abandon_staging();
            std::process::exit(130);
        }
    }
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
    let athena = args.athena.as_deref().map(|table| {
        let (database, table) = table.split_once('.').unwrap_or((table, ""));
        templates::AthenaIam {
            database: database.to_string(),
            table: table.to_string(),
            workgroup: args.athena_workgroup.clone(),
            output: templates::S3Location::parse(args.athena_output.as_deref().unwrap_or("")),
            create: args.athena_create,
        }
    });
    let opts = templates::IamOptions {
        role_name: args.role_name.unwrap_or(role_name),
        trusted_account_id: args.trusted_account,
        external_id: args.external_id.or(external_id),
        caller_role_name: None,
        partition: args.partition,
        trail: args
            .trail_bucket
            .as_deref()
            .map(templates::S3Location::parse),
        athena,
        s3_output: args.s3_output.as_deref().map(templates::S3Location::parse),
        security_hub: args.security_hub,
    };
    opts.validate()?;
    write_files(&args.output, &templates::iam::render_all(&opts))
}
fn schedule(args: ScheduleArgs) -> Result<(), UsageError> {
    // The scan options are checked exactly as the scheduled scan will check
    // them (same flags, same messages), so a bad one fails here, not at 6 am.
    let flags = FlagValues {
        since: Some("last".to_string()),
        regions: args.regions.clone(),
        accounts: args.accounts.clone(),
        exclude_accounts: args.exclude_accounts.clone(),
        ou: args.ou.clone(),
        role_name: args.role_name.clone(),
        formats: args.format.clone(),
        fail_on: args.fail_on.clone(),
        ..FlagValues::default()
    };
    let cfg = config::resolve(&flags, None, chrono::Utc::now())?;
    let regions = args.regions.as_ref().map(|_| match &cfg.scan.regions {
        config::RegionSelection::All => vec!["all".to_string()],
        config::RegionSelection::List(list) => list.clone(),
    });
    let opts = templates::schedule::ScheduleOptions {
        schedule_expression: args.schedule,
        timezone: args.timezone,
        image: args.image,
        external_id_secret_arn: args.external_id_secret,
        emails: args.email,
        retention_days: args.retention_days,
        role_name: cfg.accounts.role_name,
        regions,
        accounts: cfg.accounts.include,
        exclude_accounts: cfg.accounts.exclude,
        ou: cfg.accounts.organizational_units,
        fail_on: args.fail_on.map(|s| s.trim().to_ascii_lowercase()),
        formats: args
            .format
            .map(|list| list.iter().map(|s| s.trim().to_ascii_lowercase()).collect()),
        scan_config: args.scan_config,
    };
    opts.validate()?;
    write_files(&args.output, &templates::schedule::render_all(&opts))
}

/// `athena-table`: the DDL on stdout; with `--create`, run through Athena.
async fn athena_table(args: AthenaTableArgs) -> Result<(), UsageError> {
    use ssm_session_audit::source::athena::{ddl, exec, TableRef};
    let trail = ddl::parse_trail_url(&args.trail)?;
    let table = TableRef::parse(&args.table).map_err(|p| {
        anyhow::anyhow!(
            "--table {:?}: {p}; write DATABASE.TABLE, e.g. audit.org_trail",
            report::escape_terminal(&args.table)
        )
    })?;
    let all = || {
        ssm_session_audit::source::lookup::ALL_REGIONS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let regions = match &args.regions {
        None => all(),
        Some(list) if list.len() == 1 && list[0].trim().eq_ignore_ascii_case("all") => all(),
        Some(list) => {
            let mut out = Vec::new();
            for r in list.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
                if !config::is_region_name(r) {
                    return Err(anyhow::anyhow!("--regions: {:?} is not a region name; write e.g. us-east-1,eu-west-1 or all", report::escape_terminal(r)).into());
                }
                out.push(r.to_string());
            }
            out
        }
    };
    let mut accounts = Vec::new();
    for a in args
        .accounts
        .iter()
        .flatten()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        if !config::is_account_id(a) {
            return Err(anyhow::anyhow!(
                "--accounts: {:?} is not a 12-digit account id",
                report::escape_terminal(a)
            )
            .into());
        }
        accounts.push(a.to_string());
    }
    let first_day =
        chrono::NaiveDate::parse_from_str(args.first_day.trim(), "%Y/%m/%d").map_err(|_| {
            anyhow::anyhow!(
                "--first-day {:?}: not a day in YYYY/MM/DD",
                report::escape_terminal(&args.first_day)
            )
        })?;
    let spec = ddl::TableSpec {
        table: table.clone(),
        trail,
        accounts,
        regions,
        first_day,
    };
    let create_db = ddl::create_database(&table);
    let create_table = ddl::create_table(&spec)?;
    println!("-- First: {create_db};\n{create_table};");
    if !args.create {
        return Ok(());
    }
    let mut athena_cfg = match &args.config {
        Some(path) => config_file_only(path)?.athena,
        None => ssm_session_audit::source::athena::AthenaConfig::default(),
    };
    if let Some(w) = args.workgroup {
        athena_cfg.workgroup = w;
    }
    if let Some(o) = args.athena_output {
        if !o.starts_with("s3://") {
            return Err(anyhow::anyhow!(
                "--athena-output {:?}: not an s3:// location",
                report::escape_terminal(&o)
            )
            .into());
        }
        athena_cfg.output = Some(o);
    }
    guard_endpoints()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let mut b = aws_sdk_athena::config::Builder::from(&sdk);
    if let Some(r) = &athena_cfg.region {
        b = b.region(aws_types::region::Region::new(r.clone()));
    }
    let client = aws_sdk_athena::Client::from_conf(b.build());
    let slots = ssm_session_audit::call::CallSlots::new(4);
    let (_never, cancel) = watch::channel(false);
    let deadline = std::time::Duration::from_secs(60);
    let mut ids = Vec::new();
    // The database statement runs in `default`: the database may not exist yet.
    for (database, sql) in [
        ("default", &create_db),
        (table.database.as_str(), &create_table),
    ] {
        let mut settings =
            ssm_session_audit::source::athena::run_settings(&table, &athena_cfg, deadline);
        settings.database = database.to_string();
        let runner = exec::Runner {
            client: &client,
            settings: &settings,
            slots: &slots,
            cancel: &cancel,
        };
        let done = exec::run_statements(&runner, std::slice::from_ref(sql))
            .await
            .map_err(|e| anyhow::anyhow!("{}", report::escape_terminal(&e)))?;
        ids.extend(done.into_iter().filter_map(|o| o.query_id));
    }
    eprintln!("created {table} (Athena queries {})", ids.join(", "));
    Ok(())
}
