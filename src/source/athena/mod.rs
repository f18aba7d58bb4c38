//! The Athena source: session events of an organization trail read by one SQL
//! query (or a few, for very long account lists) run by Amazon Athena over
//! AWS's CloudTrail table with partition projection (see [`ddl`]).
//!
//! [`read`] learns what it can about the table (`GetTableMetadata`: its
//! projection and location; optional, a failure only costs the checks below),
//! builds the queries ([`query`]: accounts, regions and days always on the
//! partition columns), estimates their bytes from an S3 listing of the trail
//! and refuses them above `athena.max_scan` ([`cost`]), runs them ([`exec`]),
//! and maps every row through the project's one record parser into
//! [`SessionEvent`]s with coverage per account and region. An account or region
//! the table's projection does not list is `failed` with that reason, never
//! silently empty. What it read and what it cost are in [`AthenaDetails`].

mod accounts;
pub mod cost;
pub mod ddl;
pub mod exec;
pub mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::call::{call_with_retry, CallSlots};
use crate::event::ParseError;
use crate::model::{RegionCoverage, RegionStatus, SessionEvent, TimeWindow};
use cost::{EmptyDays, ListingFailure};
use ddl::TrailLocation;
use exec::{QueryOutcome, RunSettings, Runner};
use query::{QueryError, QuerySpec};

pub use accounts::read_source;

/// Queries of one scan in flight at once (Athena queues the rest of an
/// account's concurrent DML anyway; a few keep a split scan short).
const QUERIES_IN_FLIGHT: usize = 4;

/// `DATABASE.TABLE`, both checked to be plain names (letters, digits, `_`),
/// lower-cased as Glue stores them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableRef {
    pub database: String,
    pub table: String,
}

impl TableRef {
    pub fn parse(text: &str) -> Result<TableRef, String> {
        let (db, table) = text
            .trim()
            .split_once('.')
            .ok_or_else(|| "expected DATABASE.TABLE".to_string())?;
        let ok = |s: &str| {
            (1..=255).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !ok(db) || !ok(table) {
            return Err(
                "database and table names are letters, digits and underscores (1 to 255)".into(),
            );
        }
        Ok(TableRef {
            database: db.to_ascii_lowercase(),
            table: table.to_ascii_lowercase(),
        })
    }

    /// `"db"."table"` for DML.
    pub fn sql_name(&self) -> String {
        format!("\"{}\".\"{}\"", self.database, self.table)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// The `[athena]` settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaConfig {
    /// `[athena] table`: the table of `--source athena` without one.
    pub table: Option<TableRef>,
    pub workgroup: String,
    /// `s3://bucket/prefix/` for result files; `None` = the workgroup's setting.
    pub output: Option<String>,
    /// The region Athena runs in; `None` = the SDK's region.
    pub region: Option<String>,
    pub catalog: String,
    /// Refuse a scan whose estimate is above this many bytes.
    pub max_scan: Option<u64>,
    /// The trail's folder, when the table's own location is not to be used.
    pub trail: Option<TrailLocation>,
}

pub const DEFAULT_WORKGROUP: &str = "primary";
pub const DEFAULT_CATALOG: &str = "AwsDataCatalog";

impl Default for AthenaConfig {
    fn default() -> Self {
        AthenaConfig {
            table: None,
            workgroup: DEFAULT_WORKGROUP.into(),
            output: None,
            region: None,
            catalog: DEFAULT_CATALOG.into(),
            max_scan: None,
            trail: None,
        }
    }
}

/// What the table's metadata says about its partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub enabled: bool,
    pub account_type: Option<String>,
    /// The `enum` values of `account` (empty when injected).
    pub accounts: Vec<String>,
    pub region_type: Option<String>,
    pub regions: Vec<String>,
    pub location_template: Option<String>,
}

impl Projection {
    fn from_parameters(p: &HashMap<String, String>) -> Projection {
        let list = |k: &str| -> Vec<String> {
            p.get(k)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let account_type = p
            .get("projection.account.type")
            .map(|s| s.trim().to_ascii_lowercase());
        let region_type = p
            .get("projection.region.type")
            .map(|s| s.trim().to_ascii_lowercase());
        Projection {
            enabled: p
                .get("projection.enabled")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            accounts: if account_type.as_deref() == Some("enum") {
                list("projection.account.values")
            } else {
                Vec::new()
            },
            regions: if region_type.as_deref() == Some("enum") {
                list("projection.region.values")
            } else {
                Vec::new()
            },
            account_type,
            region_type,
            location_template: p
                .get("storage.location.template")
                .or_else(|| p.get("location"))
                .cloned(),
        }
    }
}

/// One query as the report keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDetail {
    #[serde(flatten)]
    pub outcome: QueryOutcome,
    pub accounts: u64,
    pub sql_bytes: u64,
    /// What Athena bills for it (10 MB minimum; nothing if it never started or failed).
    pub cost_usd: f64,
}

/// Everything the report says about an Athena read (`run.athena`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AthenaDetails {
    pub table: String,
    pub catalog: String,
    pub workgroup: String,
    pub output_location: Option<String>,
    pub athena_region: Option<String>,
    /// The trail folder listed for the estimate.
    pub trail: Option<String>,
    pub projection: Option<Projection>,
    pub table_metadata_error: Option<String>,
    pub queries: Vec<QueryDetail>,
    /// Bytes of the named partitions, from the S3 listing, before running.
    pub estimate_bytes: Option<u64>,
    pub estimate_objects: Option<u64>,
    pub estimate_error: Option<String>,
    pub listing_failures: Vec<ListingFailure>,
    pub list_calls: u64,
    pub max_scan: Option<u64>,
    /// `DataScannedInBytes`, summed over the queries.
    pub bytes_scanned: u64,
    pub cost_usd: f64,
    /// Window days without a single trail file (from the S3 listing): no record there.
    pub empty_partitions: Vec<EmptyDays>,
    pub rows: u64,
    pub malformed: u64,
    pub duplicates: u64,
    /// Rows outside the accounts, regions or window asked for (dropped).
    pub out_of_scope: u64,
}

impl AthenaDetails {
    /// One line for the terminal summary.
    pub fn summary_line(&self) -> String {
        let estimate = self
            .estimate_bytes
            .map(|b| format!(", estimated {}", cost::human_bytes(b)))
            .unwrap_or_default();
        let ids: Vec<&str> = self
            .queries
            .iter()
            .filter_map(|q| q.outcome.query_id.as_deref())
            .collect();
        format!(
            "athena: {} quer{} ({}) scanned {} ({} bytes){estimate}, cost ${:.4} at $5/TB",
            self.queries.len(),
            if self.queries.len() == 1 { "y" } else { "ies" },
            if ids.is_empty() {
                "none started".to_string()
            } else {
                ids.join(", ")
            },
            cost::human_bytes(self.bytes_scanned),
            self.bytes_scanned,
            self.cost_usd,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("athena.max_scan: the scan would read about {} ({estimate} bytes, ~${:.4}) from {objects} trail files, above the limit of {} ({max} bytes); narrow the window, the accounts or the regions, or raise --max-scan / athena.max_scan", cost::human_bytes(*estimate), cost::price_usd(*estimate), cost::human_bytes(*max))]
    OverMaxScan {
        estimate: u64,
        objects: u64,
        max: u64,
    },
    #[error("athena.max_scan is set but the scan's bytes cannot be estimated: {reason}; allow s3:ListBucket on the trail bucket, set athena.trail to the trail's s3://…/AWSLogs/o-…/ folder, or remove max_scan")]
    NoEstimate { reason: String },
    #[error("no account to query: Organizations is not reachable, no account was configured (--accounts / accounts.include), and neither the table's projection nor the trail's folders name any")]
    NoAccounts,
    #[error("building the Athena query: {0}")]
    Query(#[from] QueryError),
}

/// What [`read`] is asked.
pub struct ReadRequest<'a> {
    pub table: &'a TableRef,
    pub cfg: &'a AthenaConfig,
    /// `None` = from the table's projection, else from the trail's folders.
    pub accounts: Option<Vec<String>>,
    /// Never queried, whichever list the accounts come from.
    pub exclude: &'a [String],
    /// `None` = every region (the table's region enum when known).
    pub regions: Option<Vec<String>>,
    pub window: TimeWindow,
    pub event_names: &'a [String],
    pub retry_deadline: Duration,
}

pub struct Clients<'a> {
    pub athena: &'a aws_sdk_athena::Client,
    pub s3: &'a aws_sdk_s3::Client,
    pub slots: &'a CallSlots,
    pub cancel: &'a watch::Receiver<bool>,
}

/// What a read gave: coverage for every (account, region) asked, the events, details.
pub struct AthenaRead {
    pub regions: Vec<String>,
    /// account → region → coverage.
    pub partitions: BTreeMap<String, BTreeMap<String, RegionCoverage>>,
    pub events: Vec<SessionEvent>,
    pub details: AthenaDetails,
    pub interrupted: bool,
}

/// The default run settings for a config.
pub fn run_settings(table: &TableRef, cfg: &AthenaConfig, retry_deadline: Duration) -> RunSettings {
    RunSettings {
        workgroup: cfg.workgroup.clone(),
        output: cfg.output.clone(),
        catalog: cfg.catalog.clone(),
        database: table.database.clone(),
        retry_deadline,
        poll_first: Duration::from_millis(200),
        poll_max: Duration::from_secs(5),
        query_timeout: Duration::from_secs(35 * 60),
    }
}

async fn table_metadata(c: &Clients<'_>, req: &ReadRequest<'_>) -> Result<Projection, String> {
    // Quick: this is a check, not the scan; a stand-in without it costs nothing.
    let out = call_with_retry(
        Some(c.slots),
        Duration::from_secs(5).min(req.retry_deadline),
        || {
            c.athena
                .get_table_metadata()
                .catalog_name(&req.cfg.catalog)
                .database_name(&req.table.database)
                .table_name(&req.table.table)
                .send()
        },
    )
    .await
    .map_err(|f| format!("GetTableMetadata {}: {f}", req.table))?;
    let params = out
        .table_metadata()
        .and_then(|t| t.parameters())
        .cloned()
        .unwrap_or_default();
    Ok(Projection::from_parameters(&params))
}

/// Read the session events of the window through Athena.
pub async fn read(c: Clients<'_>, req: ReadRequest<'_>) -> Result<AthenaRead, AthenaError> {
    let cfg = req.cfg;
    let mut details = AthenaDetails {
        table: req.table.to_string(),
        catalog: cfg.catalog.clone(),
        workgroup: cfg.workgroup.clone(),
        output_location: cfg.output.clone(),
        athena_region: cfg.region.clone(),
        trail: None,
        projection: None,
        table_metadata_error: None,
        queries: Vec::new(),
        estimate_bytes: None,
        estimate_objects: None,
        estimate_error: None,
        listing_failures: Vec::new(),
        list_calls: 0,
        max_scan: cfg.max_scan,
        bytes_scanned: 0,
        cost_usd: 0.0,
        empty_partitions: Vec::new(),
        rows: 0,
        malformed: 0,
        duplicates: 0,
        out_of_scope: 0,
    };
    let projection = match table_metadata(&c, &req).await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::info!(error = %e, "no table metadata: projection checks skipped");
            details.table_metadata_error = Some(e);
            None
        }
    };
    details.projection = projection.clone();
    let trail = cfg.trail.clone().or_else(|| {
        projection
            .as_ref()
            .and_then(|p| p.location_template.as_deref())
            .and_then(ddl::trail_from_template)
    });
    details.trail = trail.as_ref().map(TrailLocation::url);
    let enum_accounts = projection
        .as_ref()
        .map(|p| p.accounts.clone())
        .unwrap_or_default();
    let enum_regions = projection
        .as_ref()
        .map(|p| p.regions.clone())
        .unwrap_or_default();

    let accounts: Vec<String> = match req.accounts.clone() {
        Some(a) => a,
        None if !enum_accounts.is_empty() => enum_accounts.clone(),
        None => match &trail {
            Some(t) => cost::list_accounts(c.s3, t, c.slots, req.retry_deadline)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        },
    };
    let accounts: Vec<String> = accounts
        .into_iter()
        .filter(|a| !req.exclude.contains(a))
        .collect();
    if accounts.is_empty() {
        return Err(AthenaError::NoAccounts);
    }
    let regions: Vec<String> = match req.regions.clone() {
        Some(r) => r,
        None if !enum_regions.is_empty() => enum_regions.clone(),
        None => crate::source::lookup::ALL_REGIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    // An enum projection answers nothing for a value it does not list: say so.
    let mut partitions: BTreeMap<String, BTreeMap<String, RegionCoverage>> = BTreeMap::new();
    let failed = |reason: String| {
        let mut c = RegionCoverage::new(RegionStatus::Failed);
        c.error = Some(reason);
        c
    };
    let mut queried_accounts = Vec::new();
    for a in &accounts {
        if !enum_accounts.is_empty() && !enum_accounts.contains(a) {
            for r in &regions {
                partitions.entry(a.clone()).or_default().insert(
                    r.clone(),
                    failed(format!("the table {}'s projection.account.values does not list this account: Athena would return nothing for it; re-create the table with `ssm-session-audit athena-table`", req.table)),
                );
            }
        } else {
            queried_accounts.push(a.clone());
        }
    }
    let mut queried_regions = Vec::new();
    for r in &regions {
        if !enum_regions.is_empty() && !enum_regions.contains(r) {
            for a in &queried_accounts {
                partitions.entry(a.clone()).or_default().insert(
                    r.clone(),
                    failed(format!("the table {}'s projection.region.values does not list {r}: Athena would return nothing for it; re-create the table with `ssm-session-audit athena-table --regions …`", req.table)),
                );
            }
        } else {
            queried_regions.push(r.clone());
        }
    }

    let mut out = AthenaRead {
        regions: regions.clone(),
        partitions,
        events: Vec::new(),
        details,
        interrupted: false,
    };
    if queried_accounts.is_empty() || queried_regions.is_empty() {
        return Ok(out);
    }
    let spec = QuerySpec {
        table: req.table.clone(),
        accounts: queried_accounts.clone(),
        regions: queried_regions.clone(),
        window: req.window,
        event_names: req.event_names.to_vec(),
    };
    let queries = spec.build(query::MAX_QUERY_BYTES)?;

    // The estimate (and the empty partitions) from the S3 listing.
    let days = query::partition_days(req.window);
    let window_days: Vec<_> = days[..days.len().saturating_sub(1)].to_vec();
    match &trail {
        Some(t) => {
            let parts: Vec<(String, String)> = queried_accounts
                .iter()
                .flat_map(|a| queried_regions.iter().map(move |r| (a.clone(), r.clone())))
                .collect();
            let e = cost::estimate(c.s3, t, &parts, &days, c.slots, req.retry_deadline).await;
            out.details.list_calls = e.list_calls;
            out.details.estimate_objects = Some(e.objects);
            out.details.empty_partitions = cost::empty_days(&e, &window_days);
            out.details.listing_failures = e.failed.clone();
            if e.failed.is_empty() {
                out.details.estimate_bytes = Some(e.bytes);
            } else {
                out.details.estimate_error = Some(format!(
                    "{} of {} partition listings failed, e.g. {}",
                    e.failed.len(),
                    parts.len(),
                    e.failed[0].error
                ));
            }
            if let Some(max) = cfg.max_scan {
                if e.bytes > max {
                    return Err(AthenaError::OverMaxScan {
                        estimate: e.bytes,
                        objects: e.objects,
                        max,
                    });
                }
                if let Some(reason) = &out.details.estimate_error {
                    return Err(AthenaError::NoEstimate {
                        reason: reason.clone(),
                    });
                }
            }
        }
        None => {
            let reason = "the trail's location is unknown (no athena.trail, and the table's metadata could not be read)".to_string();
            out.details.estimate_error = Some(reason.clone());
            if cfg.max_scan.is_some() {
                return Err(AthenaError::NoEstimate { reason });
            }
        }
    }

    let settings = run_settings(req.table, cfg, req.retry_deadline);
    let runner = Runner {
        client: c.athena,
        settings: &settings,
        slots: c.slots,
        cancel: c.cancel,
    };
    let runs: Vec<_> = stream::iter(queries.iter().enumerate())
        .map(|(i, q)| {
            let runner = &runner;
            async move { (i, runner.run(&q.sql).await) }
        })
        .buffered(QUERIES_IN_FLIGHT)
        .collect()
        .await;

    let wanted_accounts: BTreeSet<&str> = queried_accounts.iter().map(String::as_str).collect();
    let wanted_regions: BTreeSet<&str> = queried_regions.iter().map(String::as_str).collect();
    let mut parsed: Vec<SessionEvent> = Vec::new();
    let mut malformed: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (i, (outcome, rows)) in runs {
        let q = &queries[i];
        let cost = if outcome.query_id.is_some() && outcome.state != "FAILED" {
            cost::price_usd(outcome.bytes_scanned)
        } else {
            0.0
        };
        out.details.bytes_scanned += outcome.bytes_scanned;
        out.details.cost_usd += cost;
        let interrupted = outcome
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("the run was interrupted"));
        out.interrupted |= interrupted;
        let failure = rows.is_none().then(|| {
            format!(
                "Athena query {} {}: {}",
                outcome.query_id.as_deref().unwrap_or("(not started)"),
                outcome.state,
                outcome.reason.as_deref().unwrap_or("no reason given")
            )
        });
        for a in &q.accounts {
            for r in &queried_regions {
                let cov = match &failure {
                    Some(reason) => failed(reason.clone()),
                    None => RegionCoverage::new(RegionStatus::Ok),
                };
                out.partitions
                    .entry(a.clone())
                    .or_default()
                    .insert(r.clone(), cov);
            }
        }
        if let Some(rows) = rows {
            for row in &rows.rows {
                out.details.rows += 1;
                let rec = query::row_to_record(&rows.header, row);
                let has = |k: &str| {
                    rec.record
                        .get(k)
                        .and_then(|v| v.as_str())
                        .is_some_and(|s| !s.is_empty())
                };
                let account_arg = if has("recipientAccountId") {
                    ""
                } else {
                    rec.account.as_str()
                };
                let region_arg = if has("awsRegion") {
                    ""
                } else {
                    rec.region.as_str()
                };
                match crate::event::parse_value_lenient(&rec.record, account_arg, region_arg) {
                    Ok(ev) => {
                        let in_scope = wanted_accounts.contains(ev.account_id.as_str())
                            && wanted_regions.contains(ev.region.as_str())
                            && ev.event_time >= req.window.start
                            && ev.event_time < req.window.end;
                        if in_scope {
                            // Read partially: kept with what parsed, and counted.
                            if !ev.is_whole() {
                                out.details.malformed += 1;
                                malformed
                                    .entry((rec.account.clone(), rec.region.clone()))
                                    .or_default()
                                    .push(clean_event_id(&ev.event_id));
                            }
                            parsed.push(ev);
                        } else {
                            out.details.out_of_scope += 1;
                        }
                    }
                    Err(ParseError::NotSessionCall { .. }) => out.details.out_of_scope += 1,
                    Err(_) => {
                        out.details.malformed += 1;
                        let id = clean_event_id(
                            rec.record
                                .get("eventID")
                                .and_then(|v| v.as_str())
                                .unwrap_or(""),
                        );
                        malformed
                            .entry((rec.account.clone(), rec.region.clone()))
                            .or_default()
                            .push(id);
                    }
                }
            }
        }
        out.details.queries.push(QueryDetail {
            accounts: q.accounts.len() as u64,
            sql_bytes: q.sql.len() as u64,
            cost_usd: cost,
            outcome,
        });
    }

    // One event per id, the same one whatever order the rows came in.
    parsed.sort_by(|a, b| {
        (&a.event_id, &a.account_id, &a.region, a.event_time).cmp(&(
            &b.event_id,
            &b.account_id,
            &b.region,
            b.event_time,
        ))
    });
    for ev in parsed {
        let dup = out
            .events
            .last()
            .is_some_and(|k: &SessionEvent| k.event_id == ev.event_id);
        let cov = out
            .partitions
            .entry(ev.account_id.clone())
            .or_default()
            .entry(ev.region.clone())
            .or_insert_with(|| RegionCoverage::new(RegionStatus::Ok));
        if dup {
            cov.duplicates += 1;
            out.details.duplicates += 1;
        } else {
            cov.events += 1;
            out.events.push(ev);
        }
    }
    for ((a, r), mut ids) in malformed {
        if let Some(cov) = out.partitions.get_mut(&a).and_then(|m| m.get_mut(&r)) {
            ids.sort();
            ids.dedup();
            cov.malformed += ids.len() as u64;
            cov.malformed_event_ids = ids;
        }
    }
    out.events
        .sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    Ok(out)
}

/// Event ids go into reports: keep only what a UUID is made of.
fn clean_event_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        let t = TableRef::parse("Audit.Org_Trail").unwrap();
        assert_eq!(t.to_string(), "audit.org_trail");
        assert_eq!(t.sql_name(), "\"audit\".\"org_trail\"");
        for bad in [
            "audit",
            "a.b.c",
            "a.",
            ".b",
            "a-b.c",
            "a.b\"; DROP",
            "a.b c",
            "a.b'",
        ] {
            assert!(TableRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn projection_from_table_parameters() {
        let p: HashMap<String, String> = [
            ("projection.enabled", "true"),
            ("projection.account.type", "enum"),
            ("projection.account.values", "111111111111, 222222222222"),
            ("projection.region.type", "enum"),
            ("projection.region.values", "eu-west-1,us-east-1"),
            (
                "storage.location.template",
                "s3://bkt/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${timestamp}",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let pr = Projection::from_parameters(&p);
        assert!(pr.enabled);
        assert_eq!(pr.accounts, ["111111111111", "222222222222"]);
        assert_eq!(pr.regions, ["eu-west-1", "us-east-1"]);
        let t = ddl::trail_from_template(pr.location_template.as_deref().unwrap()).unwrap();
        assert_eq!(t.bucket, "bkt");
        let mut p2 = p.clone();
        p2.insert("projection.account.type".into(), "injected".into());
        assert!(Projection::from_parameters(&p2).accounts.is_empty());
    }
}
