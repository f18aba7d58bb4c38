//! A large synthetic report, for measuring `report.html` (and the other
//! writers) at organization scale in a browser:
//!
//!     cargo run --release --example big_report -- --accounts 10000 --output DIR [--formats html,json]
//!
//! Builds a deterministic organization of N accounts × 4 regions: about 3
//! sessions per account (Start, sometimes a Resume, Terminate), a share of
//! them off-hours, from root, from IAM users and through port forwarding, so
//! the real rules raise findings; 1 % of the accounts fail (denied role), 0.5 %
//! are partial, 2 % are skipped. Sessions and findings come from the library's
//! own `session::build_sessions` and `rules::evaluate`, then the report goes
//! through `report::write_report_dir`. Prints each file's size and the time to
//! render it. `tests/browser/load.mjs` then measures the page in Chromium; the
//! figures are in BENCHMARKS.md ("report.html at 10,000 accounts").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ssm_session_audit::config::{self, FlagValues, Format};
use ssm_session_audit::model::*;
use ssm_session_audit::report;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];

/// A small deterministic generator (splitmix64), so every run builds the same report.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

fn main() -> Res<()> {
    let mut accounts_n = 10_000usize;
    let mut output = PathBuf::from("big-report");
    let mut formats = vec![Format::Html];
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--accounts" => accounts_n = it.next().ok_or("--accounts N")?.parse()?,
            "--output" => output = it.next().ok_or("--output DIR")?.into(),
            "--formats" => {
                formats = it
                    .next()
                    .ok_or("--formats LIST")?
                    .split(',')
                    .map(|f| match f {
                        "json" => Ok(Format::Json),
                        "csv" => Ok(Format::Csv),
                        "html" => Ok(Format::Html),
                        "ocsf" => Ok(Format::Ocsf),
                        other => Err(format!("unknown format {other}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let end: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 11, 20, 18, 0, 0)
        .single()
        .ok_or("time")?;
    let window = TimeWindow {
        start: end - TimeDelta::days(7),
        end,
    };
    let cfg = config::resolve(&FlagValues::default(), None, end)?;
    // The first whole day of the window.
    let day0 = (window.start + TimeDelta::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .ok_or("midnight")?
        .and_utc();

    let started = Instant::now();
    let mut rng = Rng(2026);
    let mut events = Vec::new();
    let mut coverage = Vec::new();
    let mut skipped = Vec::new();
    for a in 0..accounts_n {
        let id = format!("{:012}", 100_000_000_000u64 + a as u64 * 7919);
        let name = format!("account-{a:05}");
        if rng.chance(20) {
            skipped.push((id, name));
            continue;
        }
        let denied = rng.chance(10);
        let partial = !denied && rng.chance(5);
        let mut regions = BTreeMap::new();
        for (ri, region) in REGIONS.iter().enumerate() {
            let mut c = RegionCoverage::new(RegionStatus::Ok);
            c.pages = 1;
            if denied {
                c.status = RegionStatus::Failed;
                c.error = Some(format!(
                    "AssumeRole arn:aws:iam::{id}:role/SessionAuditRole failed: AccessDenied"
                ));
            } else if partial && ri == 3 {
                c.status = RegionStatus::Failed;
                c.error = Some("gave up on a page after 9 attempts over 300 s; last error: ThrottlingException: Rate exceeded".into());
            } else if ri == 3 && rng.chance(100) {
                c.status = RegionStatus::NotEnabled;
                c.error = Some("UnrecognizedClientException: the region is not enabled".into());
            }
            regions.insert(region.to_string(), c);
        }
        if !denied {
            let sessions = rng.below(7);
            for k in 0..sessions {
                let region = REGIONS[rng.below(3) as usize];
                let day = rng.below(6) as i64;
                let off_hours = rng.chance(60);
                let hour = if off_hours {
                    2
                } else {
                    8 + rng.below(10) as i64
                };
                let t = day0
                    + TimeDelta::days(day)
                    + TimeDelta::hours(hour)
                    + TimeDelta::minutes(rng.below(60) as i64);
                let kind = rng.below(100);
                let (ptype, parn, user, issuer) = match kind {
                    0 => (
                        "Root".to_string(),
                        format!("arn:aws:iam::{id}:root"),
                        None,
                        None,
                    ),
                    1..=3 => (
                        "IAMUser".to_string(),
                        format!("arn:aws:iam::{id}:user/deploy-bot"),
                        Some("deploy-bot".to_string()),
                        None,
                    ),
                    _ => {
                        let user = format!("user{}@example.com", rng.below(400));
                        (
                            "AssumedRole".to_string(),
                            format!("arn:aws:sts::{id}:assumed-role/AWSReservedSSO_Operator_0123/{user}"),
                            Some(user),
                            Some(format!("arn:aws:iam::{id}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Operator_0123")),
                        )
                    }
                };
                let sid = format!("s{a}-{k}-{:017x}", rng.next() >> 4);
                let target = format!("i-0{:016x}", rng.next());
                let doc = rng
                    .chance(30)
                    .then(|| "AWS-StartPortForwardingSession".to_string());
                let ev = |name: &str, at: DateTime<Utc>, n: u64| {
                    SessionEvent {
                    account_id: id.clone(),
                    region: region.into(),
                    event_time: at,
                    event_name: name.into(),
                    event_id: format!("{:08x}-{:04x}-4000-8000-{:012x}", a, k, n),
                    session_id: Some(sid.clone()),
                    principal_type: ptype.clone(),
                    principal_arn: parn.clone(),
                    principal_account_id: Some(id.clone()),
                    user_name: user.clone(),
                    session_issuer_arn: issuer.clone(),
                    mfa_authenticated: Some(true),
                    instance_role: false,
                    source_ip: Some(format!("203.0.113.{}", a % 250)),
                    user_agent: Some("aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9 md/command#ssm.start-session".into()),
                    target: (name == "StartSession").then(|| target.clone()),
                    document_name: if name == "StartSession" { doc.clone() } else { None },
                    error_code: None,
                    error_message: None,
                    ..SessionEvent::default()
                }
                };
                events.push(ev("StartSession", t, 0));
                if rng.chance(150) {
                    events.push(ev("ResumeSession", t + TimeDelta::minutes(20), 1));
                }
                events.push(ev("TerminateSession", t + TimeDelta::minutes(45), 2));
            }
        }
        coverage.push((id, name, AccountCoverage::from_regions(regions)));
    }
    events.sort_by(|a, b| {
        (&a.account_id, &a.region, a.event_time, &a.event_id).cmp(&(
            &b.account_id,
            &b.region,
            b.event_time,
            &b.event_id,
        ))
    });
    let sessions = ssm_session_audit::session::build_sessions(&events);
    let findings = ssm_session_audit::rules::evaluate(&events, &sessions, &cfg.rules, None);
    let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for e in &events {
        per.entry(e.account_id.as_str()).or_default().0 += 1;
    }
    for s in &sessions {
        per.entry(s.account_id.as_str()).or_default().1 += 1;
    }
    let mut accounts: Vec<AccountReport> = Vec::new();
    let summaries = ssm_session_audit::rules::summarize(&findings);
    for (id, name, cov) in coverage {
        let (flags, max_severity) = summaries.get(id.as_str()).cloned().unwrap_or_default();
        let (ev, se) = per.get(id.as_str()).copied().unwrap_or_default();
        accounts.push(AccountReport {
            account_id: id,
            account_name: name,
            state: "ACTIVE".into(),
            coverage: cov,
            events: ev,
            sessions: se,
            principals: 1,
            flags,
            max_severity,
        });
    }
    for (id, name) in skipped {
        accounts.push(AccountReport {
            account_id: id,
            account_name: name,
            state: "SUSPENDED".into(),
            coverage: AccountCoverage {
                status: AccountStatus::Skipped,
                reason: Some("account is SUSPENDED".into()),
                regions: BTreeMap::new(),
            },
            events: 0,
            sessions: 0,
            principals: 0,
            flags: vec![],
            max_severity: None,
        });
    }
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let complete = accounts.iter().all(|a| {
        matches!(
            a.coverage.status,
            AccountStatus::Complete | AccountStatus::Skipped
        )
    });
    let partitions = accounts
        .iter()
        .map(|a| a.coverage.regions.len() as u64)
        .sum();
    let report = Report {
        schema: REPORT_SCHEMA.into(),
        run: RunInfo {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            started_at: end,
            finished_at: end + TimeDelta::minutes(4),
            window: RunWindow {
                start: window.start,
                end: window.end,
                settled_until: window.end,
                partition_starts: BTreeMap::new(),
                account_starts: BTreeMap::new(),
            },
            regions: REGIONS.iter().map(|s| s.to_string()).collect(),
            event_names: DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect(),
            source: "lookup-events".into(),
            organization_id: Some("o-bigexample1".into()),
            caller_arn: Some("arn:aws:iam::100000000000:user/auditor".into()),
            config_digest: config::config_digest(&cfg),
            complete,
            incomplete_reasons: if complete {
                Vec::new()
            } else {
                vec!["some accounts were not fully read".into()]
            },
            interrupted: false,
            stats: RunStats {
                accounts_total: accounts.len() as u64,
                partitions,
                events: events.len() as u64,
                ..RunStats::default()
            },
            trail: None,
            athena: None,
            session_manager: None,
            security_hub: None,
            previous: None,
            continuation: None,
        },
        accounts,
        findings,
        sessions,
        events,
    };
    eprintln!(
        "built {} accounts, {} events, {} sessions, {} findings in {:?}",
        report.accounts.len(),
        report.events.len(),
        report.sessions.len(),
        report.findings.len(),
        started.elapsed()
    );
    for w in report::writers(&formats) {
        let t = Instant::now();
        let mut out = Vec::new();
        w.write(&report, &mut out)?;
        eprintln!(
            "{}: {} bytes rendered in {:?}",
            w.file_name(),
            out.len(),
            t.elapsed()
        );
    }
    let t = Instant::now();
    let written = report::write_report_dir(&report, &output, &formats)?;
    eprintln!(
        "wrote {} files to {} in {:?}",
        written.len(),
        output.display(),
        t.elapsed()
    );
    Ok(())
}
