//! Where session events come from, behind one seam.
//!
//! Every source reads the same scope — the accounts discovery hands over (an
//! [`AccountFeed`]), the regions, the window and the event names of the
//! [`Context`]'s config — and returns one shape, a [`SourceOutput`]: per account,
//! its coverage ([`crate::model::AccountCoverage`], one type for every source)
//! and its events, plus what only that source can say ([`SourceDetails`], carried
//! in the report's `run`). [`read`] is the one `match` over sources: a new source
//! is a folder here, a variant of [`Source`] and an arm of that match.

pub mod athena;
pub mod lookup;
pub mod trail;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::call::{CallSlots, ClientSettings};
use crate::config::Config;
use crate::model::{Account, AccountCoverage, RunInfo, SessionEvent};
use crate::progress::Progress;

/// Where session events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// CloudTrail `LookupEvents` (the default; last 90 days).
    LookupEvents,
    /// Trail files in a local folder.
    Dir(PathBuf),
    /// Trail files under an S3 prefix.
    S3 { bucket: String, prefix: String },
    /// An Athena table over the organization trail (`athena:DB.TABLE`).
    Athena { database: String, table: String },
}

impl Source {
    /// How `run.source` names it.
    pub fn describe(&self) -> String {
        match self {
            Source::LookupEvents => "lookup-events".into(),
            Source::Dir(root) => format!("dir:{}", root.display()),
            Source::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Source::Athena { database, table } => format!("athena:{database}.{table}"),
        }
    }

    /// Whether the run needs the caller's identity and the organization's
    /// account list. Trail files name their own accounts: without credentials or
    /// Organizations they are read all the same, their accounts named by id.
    pub fn discovery(&self) -> Discovery {
        match self {
            Source::LookupEvents => Discovery::Required,
            Source::Dir(_) | Source::S3 { .. } | Source::Athena { .. } => Discovery::BestEffort,
        }
    }
}

/// How much a source depends on account discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// No credentials or no account list: nothing can be scanned.
    Required,
    /// Used when it answers quickly; the source can do without.
    BestEffort,
}

/// Who is calling, from `sts:GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub arn: String,
}

/// What every source may use: the config, one way to build clients, the one
/// bound on calls in flight, progress and cancellation.
pub struct Context {
    pub cfg: Config,
    pub clients: ClientSettings,
    pub slots: CallSlots,
    pub progress: Arc<dyn Progress>,
    pub cancel: watch::Receiver<bool>,
    /// `None` when a source that can do without credentials runs without them.
    pub caller: Option<Caller>,
}

impl Context {
    pub fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }
}

/// An account of the organization as discovery hands it over: to scan, or not
/// (with the reason), so a source that finds accounts of its own (trail files)
/// does not bring back one the organization said to skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub account: Account,
    pub skip: Option<String>,
}

/// How the organization's listing ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingEnd {
    /// Every page was read.
    Complete,
    /// Not available to this run (no credentials, not allowed): the source
    /// names accounts by what it finds.
    Unavailable(String),
    /// It failed part-way or was interrupted.
    Failed(String),
}

/// Accounts as discovery lists them, page by page, then how the listing ended.
pub struct AccountFeed {
    rx: mpsc::UnboundedReceiver<FeedItem>,
    end: Option<ListingEnd>,
}

pub enum FeedItem {
    Page(Vec<Discovered>),
    End(ListingEnd),
}

impl AccountFeed {
    pub fn channel() -> (mpsc::UnboundedSender<FeedItem>, AccountFeed) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, AccountFeed { rx, end: None })
    }

    /// The next page, or `None` once the listing has ended (see [`Self::end`]).
    pub async fn next_page(&mut self) -> Option<Vec<Discovered>> {
        if self.end.is_some() {
            return None;
        }
        match self.rx.recv().await {
            Some(FeedItem::Page(p)) => Some(p),
            Some(FeedItem::End(e)) => {
                self.end = Some(e);
                None
            }
            None => {
                self.end = Some(ListingEnd::Failed(
                    "account discovery stopped unexpectedly".into(),
                ));
                None
            }
        }
    }

    /// Every remaining page, then the end.
    pub async fn collect(mut self) -> (Vec<Discovered>, ListingEnd) {
        let mut all = Vec::new();
        while let Some(p) = self.next_page().await {
            all.extend(p);
        }
        (all, self.end.unwrap_or(ListingEnd::Complete))
    }

    /// How the listing ended, once [`Self::next_page`] returned `None`.
    pub fn end(&self) -> Option<&ListingEnd> {
        self.end.as_ref()
    }
}

/// One account's finished read.
#[derive(Debug, Clone)]
pub struct AccountResult {
    pub account: Account,
    pub coverage: AccountCoverage,
    pub events: Vec<SessionEvent>,
}

/// What every source returns.
#[derive(Debug)]
pub struct SourceOutput {
    /// The regions the run covered, as `run.regions` lists them.
    pub regions: Vec<String>,
    pub accounts: Vec<AccountResult>,
    /// Accounts the source found on its own and did not read (e.g. excluded).
    pub skipped: Vec<(Account, String)>,
    /// Whatever else kept the source from reading everything in scope.
    pub reasons: Vec<String>,
    pub details: SourceDetails,
}

/// What only one source can say, for the report's `run`.
#[derive(Debug)]
pub enum SourceDetails {
    None,
    Trail(trail::TrailCoverage),
    Athena(athena::AthenaDetails),
}

impl SourceDetails {
    pub fn apply(self, run: &mut RunInfo) {
        match self {
            SourceDetails::None => {}
            SourceDetails::Trail(c) => run.trail = serde_json::to_value(&c).ok(),
            SourceDetails::Athena(d) => run.athena = serde_json::to_value(&d).ok(),
        }
    }
}

/// What stops a source before it reads anything; everything after is coverage.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Trail(#[from] trail::TrailError),
    #[error(transparent)]
    Athena(#[from] athena::AthenaError),
}

/// Read the configured source: the one place that knows which sources exist.
pub async fn read(ctx: &Arc<Context>, feed: AccountFeed) -> Result<SourceOutput, SourceError> {
    match &ctx.cfg.scan.source {
        Source::LookupEvents => Ok(lookup::read(ctx, feed).await),
        Source::Dir(root) => Ok(trail::read_source(ctx, feed, trail::Location::Dir(root)).await?),
        Source::S3 { bucket, prefix } => {
            let at = trail::Location::S3 { bucket, prefix };
            Ok(trail::read_source(ctx, feed, at).await?)
        }
        Source::Athena { database, table } => {
            let table = athena::TableRef {
                database: database.clone(),
                table: table.clone(),
            };
            Ok(athena::read_source(ctx, feed, &table).await?)
        }
    }
}
