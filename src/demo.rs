//! `demo` and `simulate`: the simulated organization (the `sim` crate), served
//! in-process. Built with the default `demo` feature; without it both commands
//! say how to get them.

#[cfg(feature = "demo")]
use anyhow::Context;
#[cfg(feature = "demo")]
use aws_config::BehaviorVersion;
#[cfg(feature = "demo")]
use ssm_session_audit::config::FlagValues;

use crate::cli::{DemoArgs, SimulateArgs};
use crate::run::UsageError;
#[cfg(feature = "demo")]
use crate::run::{load_config, run_and_report};

#[cfg(not(feature = "demo"))]
fn not_built(what: &str) -> UsageError {
    UsageError(anyhow::anyhow!(
        "`{what}` needs the simulated organization, which this binary was built without: rebuild with the default features (`cargo build --features demo`)"
    ))
}

#[cfg(not(feature = "demo"))]
pub async fn demo(_: DemoArgs) -> Result<i32, UsageError> {
    Err(not_built("demo"))
}

#[cfg(not(feature = "demo"))]
pub async fn simulate(_: SimulateArgs) -> Result<(), UsageError> {
    Err(not_built("simulate"))
}

#[cfg(feature = "demo")]
pub async fn demo(args: DemoArgs) -> Result<i32, UsageError> {
    let sim = sim::Simulator::start(sim::SimConfig::demo())
        .await
        .context("starting the simulated organization on 127.0.0.1")?;
    let dir = tempdir_for_demo()?;
    let config_path = dir.join("demo-config.toml");
    std::fs::write(&config_path, sim::demo_config_toml())?;
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

#[cfg(feature = "demo")]
fn tempdir_for_demo() -> Result<std::path::PathBuf, UsageError> {
    let dir = std::env::temp_dir().join(format!("ssm-session-audit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(feature = "demo")]
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

#[cfg(feature = "demo")]
pub async fn simulate(args: SimulateArgs) -> Result<(), UsageError> {
    let mut cfg = if args.demo {
        sim::SimConfig::demo()
    } else {
        sim::SimConfig::default()
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
    sim::serve_forever(cfg, addr).await?;
    Ok(())
}
