//! The files source behind the seam: read the trail (a folder or an S3 prefix)
//! for the accounts in scope, then give every account its coverage.
//!
//! Accounts are those the trail holds plus those Organizations lists (when it
//! answers): an account with no trail file at all must not look like an account
//! with no activity. Accounts discovery said to skip stay skipped, whatever the
//! files hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::{TrailError, TrailQuery};
use crate::config::RegionSelection;
use crate::model::{
    Account, AccountCoverage, AccountStatus, RegionCoverage, RegionStatus, SessionEvent,
};
use crate::progress::ProgressEvent;
use crate::source::{AccountFeed, AccountResult, Context, ListingEnd, SourceDetails, SourceOutput};

/// Where the trail's files are.
pub enum Location<'a> {
    Dir(&'a PathBuf),
    S3 { bucket: &'a str, prefix: &'a str },
}

pub async fn read_source(
    ctx: &Arc<Context>,
    feed: AccountFeed,
    location: Location<'_>,
) -> Result<SourceOutput, TrailError> {
    let cfg = &ctx.cfg;
    let (discovered, end) = feed.collect().await;
    let listed = end == ListingEnd::Complete;
    let regions: Vec<String> = match &cfg.scan.regions {
        RegionSelection::List(r) => r.clone(),
        RegionSelection::All => Vec::new(),
    };
    let query = TrailQuery {
        accounts: (!cfg.accounts.include.is_empty())
            .then(|| cfg.accounts.include.iter().cloned().collect()),
        regions: (!regions.is_empty()).then(|| regions.iter().cloned().collect()),
        // One window for every partition; the scan keeps each partition's own.
        window: cfg.scan.read_window(),
        event_names: cfg.scan.event_names.clone(),
        now: chrono::Utc::now(),
    };
    let result = match location {
        Location::Dir(root) => {
            let root = root.clone();
            let q = query.clone();
            tokio::task::spawn_blocking(move || super::read_dir(&root, &q, 0))
                .await
                .map_err(|_| TrailError::Worker)??
        }
        Location::S3 { bucket, prefix } => {
            let s3 = ctx.clients.s3();
            let (window, deadline) = (cfg.scan.window, cfg.scan.retry_deadline);
            let (clients, slots) = (&ctx.clients, &ctx.slots);
            // Digest signatures: the keys CloudTrail lists in the trail's home region.
            let keys =
                move |region: String| -> futures::future::BoxFuture<'_, super::digest::Keys> {
                    Box::pin(async move {
                        let ct = clients.cloudtrail(&region);
                        super::list_public_keys(&ct, &region, window, slots, deadline).await
                    })
                };
            super::read_s3_with_keys(&s3, bucket, prefix, &query, slots, deadline, &keys).await?
        }
    };

    // Everything discovery listed, to scan or not; then the trail's own accounts.
    let known: BTreeMap<String, (Account, Option<String>)> = discovered
        .into_iter()
        .map(|d| (d.account.id.clone(), (d.account, d.skip)))
        .collect();
    let mut ids: BTreeSet<String> = result.coverage.partitions.keys().cloned().collect();
    ids.extend(result.coverage.failed_accounts.keys().cloned());
    ids.extend(
        known
            .iter()
            .filter(|(_, (_, skip))| skip.is_none())
            .map(|(id, _)| id.clone()),
    );
    ids.extend(cfg.accounts.include.iter().cloned());
    let mut events_of: BTreeMap<String, Vec<SessionEvent>> = BTreeMap::new();
    for e in result.events {
        events_of.entry(e.account_id.clone()).or_default().push(e);
    }
    let mut skipped = Vec::new();
    let mut results = Vec::new();
    for id in ids {
        let account = match known.get(&id) {
            // Reported by discovery as skipped.
            Some((_, Some(_))) => continue,
            Some((a, None)) => a.clone(),
            None => Account {
                id: id.clone(),
                name: String::new(),
                state: "UNKNOWN".into(),
            },
        };
        if !cfg.accounts.include.is_empty() && !cfg.accounts.include.contains(&id) {
            continue;
        }
        // With --ou, only the accounts Organizations lists under those OUs.
        if !cfg.accounts.organizational_units.is_empty() && listed && !known.contains_key(&id) {
            continue;
        }
        if cfg.accounts.exclude.contains(&id) {
            skipped.push((
                account,
                "excluded by --exclude-accounts / accounts.exclude".to_string(),
            ));
            continue;
        }
        let parts = result.coverage.partitions.get(&id);
        let mut regions_cov: BTreeMap<String, RegionCoverage> = parts
            .map(|p| {
                p.iter()
                    .map(|(r, c)| (r.clone(), c.to_region_coverage()))
                    .collect()
            })
            .unwrap_or_default();
        // A requested region without a single file is a gap: an organization
        // trail delivers every few minutes wherever anything happens.
        for r in &regions {
            regions_cov.entry(r.clone()).or_insert_with(|| {
                let mut c = RegionCoverage::new(RegionStatus::Failed);
                c.error = Some("no trail file for this region in the window".into());
                c
            });
        }
        let mut coverage = AccountCoverage::from_regions(regions_cov);
        if let Some(err) = result.coverage.failed_accounts.get(&id) {
            coverage.status = AccountStatus::Failed;
            coverage.reason = Some(format!("listing its trail files failed: {err}"));
        } else if parts.is_none() {
            coverage.status = AccountStatus::Failed;
            coverage.reason = Some(
                "no trail file for this account in the window: is it covered by the trail?".into(),
            );
        }
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
        regions,
        accounts: results,
        skipped,
        reasons: Vec::new(),
        details: SourceDetails::Trail(result.coverage),
    })
}
