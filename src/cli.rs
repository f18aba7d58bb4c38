//! The command line (clap). Parsed values go into `config::FlagValues`; the clap
//! structs are never the runtime config.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use ssm_session_audit::config::FlagValues;

#[derive(Debug, Parser)]
#[command(
    name = "ssm-session-audit",
    version,
    about = "Who opened AWS Session Manager sessions, across every account and region of an organization, and what looks wrong",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan the organization's CloudTrail for Session Manager calls and write a report.
    Scan(ScanArgs),
    /// Run the whole scan against a simulated organization served on 127.0.0.1.
    Demo(DemoArgs),
    /// The Session Manager sessions connected right now, across the organization.
    Active(ActiveArgs),
    /// Write CloudFormation for organization-wide live alerts (EventBridge → SNS).
    Alerts(AlertsArgs),
    /// Write the least-privilege audit role (StackSet-ready) and the caller's policy.
    Iam(IamArgs),
    /// Print (or, with --create, create) the Athena table over the organization trail.
    AthenaTable(AthenaTableArgs),
    /// Write CloudFormation for a scheduled scan (Fargate) that keeps its evidence in S3.
    Schedule(ScheduleArgs),
    /// Serve the simulated organization on a port, for the AWS CLI, boto3 or benchmarks.
    #[command(hide = true)]
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// TOML config file (see config.example.toml); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Look back this far from now, e.g. 90m, 12h, 7d (at most 90d for CloudTrail
    /// lookups); or `last`: go on from where the last run in the --output location
    /// was settled, reading again what it failed to read.
    #[arg(long, value_name = "DURATION|last", conflicts_with_all = ["start", "end"])]
    pub since: Option<String>,
    /// Window start, RFC 3339 (e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Window end (exclusive), RFC 3339, not in the future; defaults to now.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Regions to scan, comma-separated, or `all`.
    #[arg(long, value_name = "REGIONS", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Only these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Skip these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub exclude_accounts: Option<Vec<String>>,
    /// Only accounts under these OUs (recursive), comma-separated.
    #[arg(long, value_name = "OU_IDS", value_delimiter = ',')]
    pub ou: Option<Vec<String>>,
    /// The audit role assumed in each member account.
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// ExternalId required by the audit role's trust policy.
    #[arg(
        long,
        value_name = "ID",
        env = "SSM_SESSION_AUDIT_EXTERNAL_ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,
    /// At most this many calls in flight (default: sized by the scan from the round trip).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// LookupEvents calls per second per account and region (AWS allows 2).
    #[arg(long, value_name = "PER_SECOND")]
    pub lookup_rate: Option<f64>,
    /// Report formats, comma-separated: json, csv, html, ocsf (default json,csv,html).
    #[arg(long, value_name = "FORMATS", value_delimiter = ',')]
    pub format: Option<Vec<String>>,
    /// Where the report files go: a folder (it holds this run's files only), or
    /// s3://bucket/prefix (each run under prefix/<run start>/, then prefix/latest.json).
    #[arg(long, value_name = "DIR|S3_URL")]
    pub output: Option<PathBuf>,
    /// S3 output: Object Lock retention (compliance mode) of every object, in days.
    #[arg(long, value_name = "DAYS")]
    pub object_lock_days: Option<i64>,
    /// An earlier report.json: principals not in it are flagged `new-principal`.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 when a finding is at or above this severity (info|low|medium|high|critical|none).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// Read trail files from a folder or s3://bucket/prefix, or query an Athena
    /// table (athena:DATABASE.TABLE, see `athena-table`), instead of LookupEvents.
    #[arg(long, value_name = "DIR|S3_URL|athena:DB.TABLE")]
    pub source: Option<String>,
    /// Athena source: refuse a scan whose estimated bytes are above this (e.g. 10GB).
    #[arg(long, value_name = "SIZE")]
    pub max_scan: Option<String>,
    /// Import the findings into AWS Security Hub (ASFF BatchImportFindings) from the caller's account.
    #[arg(long)]
    pub security_hub: bool,
    /// The Security Hub region (default: the SDK's region, e.g. AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub security_hub_region: Option<String>,
    #[command(flatten)]
    pub output_opts: OutputOpts,
}

#[derive(Debug, Args)]
pub struct OutputOpts {
    /// No progress display and no summary (errors still go to stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// More log detail on stderr (-v, -vv). Never shows credentials.
    #[arg(long, short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
}

impl ScanArgs {
    pub fn flag_values(&self) -> FlagValues {
        FlagValues {
            config: self.config.clone(),
            since: self.since.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
            regions: self.regions.clone(),
            accounts: self.accounts.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
            ou: self.ou.clone(),
            role_name: self.role_name.clone(),
            external_id: self.external_id.clone(),
            concurrency: self.concurrency,
            lookup_rate: self.lookup_rate,
            formats: self.format.clone(),
            output: self.output.clone(),
            object_lock_days: self.object_lock_days,
            baseline: self.baseline.clone(),
            fail_on: self.fail_on.clone(),
            source: self.source.clone(),
            max_scan: self.max_scan.clone(),
            security_hub: self.security_hub.then_some(true),
            security_hub_region: self.security_hub_region.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ActiveArgs {
    /// TOML config file (its [scan] regions and [accounts] are used); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Regions to look in, comma-separated, or `all`.
    #[arg(long, value_name = "REGIONS", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Only these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Skip these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub exclude_accounts: Option<Vec<String>>,
    /// Only accounts under these OUs (recursive), comma-separated.
    #[arg(long, value_name = "OU_IDS", value_delimiter = ',')]
    pub ou: Option<Vec<String>>,
    /// The audit role assumed in each member account.
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// ExternalId required by the audit role's trust policy.
    #[arg(
        long,
        value_name = "ID",
        env = "SSM_SESSION_AUDIT_EXTERNAL_ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,
    /// Calls in flight across the whole run (default 256 for `active`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Output on stdout: table, json or csv.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
}

impl ActiveArgs {
    pub fn flag_values(&self) -> FlagValues {
        FlagValues {
            config: self.config.clone(),
            regions: self.regions.clone(),
            accounts: self.accounts.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
            ou: self.ou.clone(),
            role_name: self.role_name.clone(),
            external_id: self.external_id.clone(),
            concurrency: self.concurrency,
            ..FlagValues::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory that receives the demo report.
    #[arg(long, value_name = "DIR", default_value = "demo-report")]
    pub output: PathBuf,
    #[command(flatten)]
    pub output_opts: OutputOpts,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Config file: its [scan] event_names are the alerting event names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory that receives the templates.
    #[arg(long, value_name = "DIR", default_value = "alerts")]
    pub output: PathBuf,
    /// E-mail address subscribed to the alert topic (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Vec<String>,
    /// The security account that receives every member account's events (organization mode).
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub central_account: Option<String>,
    /// SNS topic name.
    #[arg(long, value_name = "NAME")]
    pub topic_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct IamArgs {
    /// Config file: its [accounts] role_name and external_id are used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory that receives the templates and policies.
    #[arg(long, value_name = "DIR", default_value = "iam")]
    pub output: PathBuf,
    /// The account (management or security) allowed to assume the audit role.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub trusted_account: Option<String>,
    /// Audit role name.
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// ExternalId the role's trust policy requires.
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Partition of the ARNs in the plain documents: aws, aws-us-gov or aws-cn.
    #[arg(long, value_name = "PARTITION", default_value = "aws")]
    pub partition: String,
    /// Add reading trail files from this bucket, for an s3:// source (BUCKET or s3://BUCKET/prefix).
    #[arg(long, value_name = "BUCKET")]
    pub trail_bucket: Option<String>,
    /// Add the Athena source (athena:DATABASE.TABLE); needs --trail-bucket and --athena-output.
    #[arg(long, value_name = "DATABASE.TABLE", requires_all = ["trail_bucket", "athena_output"])]
    pub athena: Option<String>,
    /// The Athena workgroup the queries run in.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "primary",
        requires = "athena"
    )]
    pub athena_workgroup: String,
    /// The Athena query result location (s3://BUCKET/prefix).
    #[arg(long, value_name = "S3_URL", requires = "athena")]
    pub athena_output: Option<String>,
    /// Also allow athena-table to create the Athena database and table.
    #[arg(long, requires = "athena")]
    pub athena_create: bool,
    /// Add writing evidence to this bucket: an s3:// output, "since last", Object Lock retention.
    #[arg(long, value_name = "BUCKET")]
    pub s3_output: Option<String>,
    /// Add importing findings into AWS Security Hub.
    #[arg(long)]
    pub security_hub: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Directory that receives the template.
    #[arg(long, value_name = "DIR", default_value = "schedule")]
    pub output: PathBuf,
    /// When the scan runs: an EventBridge Scheduler expression.
    #[arg(long, value_name = "EXPR", default_value = "cron(0 6 * * ? *)")]
    pub schedule: String,
    /// The IANA time zone the schedule is read in.
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    pub timezone: String,
    /// The container image URI (the template's ImageUri default).
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Secrets Manager secret or SSM parameter ARN holding the external id.
    #[arg(long, value_name = "ARN")]
    pub external_id_secret: Option<String>,
    /// E-mail address told when a run exits non-zero or cannot start (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Vec<String>,
    /// Object Lock (compliance) retention of the evidence, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    pub retention_days: u32,
    /// A config file inside the image, for the scheduled scan to read.
    #[arg(long, value_name = "PATH")]
    pub scan_config: Option<String>,
    /// The audit role assumed in each member account.
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// Regions to scan, comma-separated, or `all` (the scan's default).
    #[arg(long, value_name = "REGIONS", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Only these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Skip these account ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub exclude_accounts: Option<Vec<String>>,
    /// Only accounts under these OUs (recursive), comma-separated.
    #[arg(long, value_name = "OU_IDS", value_delimiter = ',')]
    pub ou: Option<Vec<String>>,
    /// Exit 1 (and mail) when a finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// Report formats, comma-separated: json, csv.
    #[arg(long, value_name = "FORMATS", value_delimiter = ',')]
    pub format: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct AthenaTableArgs {
    /// The organization trail's folder: s3://bucket/[prefix/]AWSLogs/o-…/
    #[arg(long, value_name = "S3_URL")]
    pub trail: String,
    /// The table, DATABASE.TABLE (the database is created with --create if missing).
    #[arg(long, value_name = "DB.TABLE")]
    pub table: String,
    /// The regions the trail records, comma-separated, or `all` (the default).
    #[arg(long, value_name = "REGIONS", value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// The organization's account ids: up to 48 become an `enum` projection;
    /// without them (or with more) the column is `injected` and every query names its accounts.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// First day the date projection covers, YYYY/MM/DD.
    #[arg(long, value_name = "DAY", default_value = ssm_session_audit::source::athena::ddl::DEFAULT_FIRST_DAY)]
    pub first_day: String,
    /// Run CREATE DATABASE IF NOT EXISTS and the CREATE TABLE through Athena.
    #[arg(long)]
    pub create: bool,
    /// Config file: its [athena] workgroup, output, region and catalog are used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Athena workgroup for --create (default: [athena] workgroup, else primary).
    #[arg(long, value_name = "NAME")]
    pub workgroup: Option<String>,
    /// Where Athena writes the statements' result files, s3://bucket/prefix/.
    #[arg(long, value_name = "S3_URL")]
    pub athena_output: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 4566)]
    pub port: u16,
    /// Serve the demo organization (planted anomalies and faults).
    #[arg(long)]
    pub demo: bool,
    /// Number of accounts.
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Regions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Seed of the generated records.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mean sessions per account and region.
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Round-trip latency added to every call, in milliseconds.
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// Latency jitter, in milliseconds.
    #[arg(long)]
    pub jitter_ms: Option<u64>,
    /// LookupEvents calls per second allowed per account and region.
    #[arg(long)]
    pub rate: Option<f64>,
}
