//! The Athena source behind the seam: the accounts in scope (from discovery
//! when the organization could be listed, else the configured list, else what
//! the table or the trail names), one read, and each account's coverage.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{read, AthenaError, Clients, ReadRequest, TableRef};
use crate::config::RegionSelection;
use crate::model::{Account, AccountCoverage, SessionEvent};
use crate::progress::ProgressEvent;
use crate::source::{AccountFeed, AccountResult, Context, ListingEnd, SourceDetails, SourceOutput};

pub async fn read_source(
    ctx: &Arc<Context>,
    feed: AccountFeed,
    table: &TableRef,
) -> Result<SourceOutput, AthenaError> {
    let cfg = &ctx.cfg;
    let (discovered, end) = feed.collect().await;
    let known: BTreeMap<String, Account> = discovered
        .iter()
        .map(|d| (d.account.id.clone(), d.account.clone()))
        .collect();
    let accounts = if end == ListingEnd::Complete {
        Some(
            discovered
                .iter()
                .filter(|d| d.skip.is_none())
                .map(|d| d.account.id.clone())
                .collect(),
        )
    } else if !cfg.accounts.include.is_empty() {
        Some(cfg.accounts.include.clone())
    } else {
        None
    };
    let regions = match &cfg.scan.regions {
        RegionSelection::List(r) => Some(r.clone()),
        RegionSelection::All => None,
    };
    let (athena, s3) = (
        ctx.clients.athena(cfg.athena.region.as_deref()),
        ctx.clients.s3(),
    );
    let got = read(
        Clients {
            athena: &athena,
            s3: &s3,
            slots: &ctx.slots,
            cancel: &ctx.cancel,
        },
        ReadRequest {
            table,
            cfg: &cfg.athena,
            accounts,
            exclude: &cfg.accounts.exclude,
            regions,
            window: cfg.scan.read_window(),
            event_names: &cfg.scan.event_names,
            retry_deadline: cfg.scan.retry_deadline,
        },
    )
    .await?;
    let mut events_of: BTreeMap<String, Vec<SessionEvent>> = BTreeMap::new();
    for e in got.events {
        events_of.entry(e.account_id.clone()).or_default().push(e);
    }
    let mut results = Vec::new();
    for (id, regions) in got.partitions {
        let account = known.get(&id).cloned().unwrap_or_else(|| Account {
            id: id.clone(),
            name: String::new(),
            state: "UNKNOWN".into(),
        });
        let coverage = AccountCoverage::from_regions(regions);
        ctx.progress.on(ProgressEvent::AccountDone {
            status: coverage.status,
        });
        let events = events_of.remove(&id).unwrap_or_default();
        results.push(AccountResult {
            account,
            coverage,
            events,
        });
    }
    Ok(SourceOutput {
        regions: got.regions,
        accounts: results,
        skipped: Vec::new(),
        reasons: Vec::new(),
        details: SourceDetails::Athena(got.details),
    })
}
