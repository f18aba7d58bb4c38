//! CloudTrail `LookupEvents` for one partition (an account and a region):
//! every event name, every page, paced to the partition's rate, each call in a
//! slot of the run's concurrency bound, each failed page retried until it
//! succeeds or the deadline passes. A page is never dropped silently.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use tokio::sync::watch;
use tokio::time::Instant;

use super::credentials::AccountCredentials;
use crate::call::{
    backoff, cancelled, classify, CallFailure, CallSlots, ErrorClass, Pace, Priority,
};
use crate::event::parse_record;
use crate::model::{PartitionMap, RegionCoverage, RegionStatus, SessionEvent, TimeWindow};
use crate::progress::{Progress, ProgressEvent};

/// CloudTrail's largest page.
pub const PAGE_SIZE: i32 = 50;

/// Event source of Session Manager calls: other services' records are not ours.
const SSM_SOURCE: &str = "ssm.amazonaws.com";

#[derive(Debug, Clone)]
pub struct LookupSettings {
    pub event_names: Vec<String>,
    /// `[start, end)`; a partition named in `starts` starts there instead.
    pub window: TimeWindow,
    /// `--since last`: partitions that start elsewhere than `window.start`.
    pub starts: Arc<PartitionMap<chrono::DateTime<chrono::Utc>>>,
    /// Calls per second for this partition.
    pub rate: f64,
    /// A page still failing this long after its first attempt fails the partition.
    pub retry_deadline: Duration,
}

/// What every partition of a run shares.
pub struct LookupRun {
    pub slots: CallSlots,
    pub settings: LookupSettings,
    pub progress: Arc<dyn Progress>,
    pub cancel: watch::Receiver<bool>,
}

/// One partition (an account and a region) to read, and what reading it takes.
pub struct Partition<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// The region's client, shared by every account.
    pub client: &'a aws_sdk_cloudtrail::Client,
    pub credentials: &'a AccountCredentials,
}

/// What a partition gave: its events and how it was covered.
#[derive(Debug)]
pub struct PartitionResult {
    pub region: String,
    pub events: Vec<SessionEvent>,
    pub coverage: RegionCoverage,
}

enum Outcome {
    Done,
    NotEnabled(CallFailure),
    Failed(String),
}

fn interrupted() -> Outcome {
    Outcome::Failed("interrupted before the last page".into())
}

/// Read one partition to the last page of every event name.
pub async fn read_partition(run: &LookupRun, p: Partition<'_>) -> PartitionResult {
    let Partition {
        account_id,
        region,
        client,
        credentials,
    } = p;
    let (slots, settings, cancel) = (&run.slots, &run.settings, &run.cancel);
    let progress = run.progress.as_ref();
    let mut cov = RegionCoverage::new(RegionStatus::Ok);
    let mut events = Vec::new();
    let mut seen = HashSet::new();
    let mut pace = Pace::new(settings.rate);
    // A partition that has shown a second page is the run's critical path: its
    // calls go before other partitions' first pages, which go before the rest.
    let mut many_pages = false;
    // The client is the region's, shared by every account: an assumed role's
    // credentials go with each call, uncached by the SDK (see credentials.rs).
    let per_call = credentials.provider().map(|p| {
        aws_sdk_cloudtrail::config::Builder::default()
            .credentials_provider(p)
            .identity_cache(aws_sdk_cloudtrail::config::IdentityCache::no_cache())
    });
    let start = settings
        .starts
        .get(account_id)
        .and_then(|r| r.get(region))
        .copied()
        .unwrap_or(settings.window.start);
    let start = to_smithy(start);
    let end = to_smithy(settings.window.end);

    let outcome = 'names: {
        for name in &settings.event_names {
            let attr = LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventName)
                .attribute_value(name)
                .build()
                .expect("key and value are set");
            let mut token: Option<String> = None;
            loop {
                // One page: attempts until it is read or the deadline passes.
                let page_started = Instant::now();
                let mut attempt = 0u32;
                let mut throttled_in_row = 0u32;
                let out = loop {
                    attempt += 1;
                    if *cancel.borrow() {
                        break 'names interrupted();
                    }
                    let fresh = tokio::select! {
                        r = credentials.ensure_fresh() => r,
                        _ = cancelled(cancel) => break 'names interrupted(),
                    };
                    if let Err(f) = fresh {
                        break 'names Outcome::Failed(format!("credentials: {f}"));
                    }
                    // Neither the pace, nor a slot, nor a call in flight holds up a
                    // cancelled run: each waits beside the cancellation.
                    tokio::select! {
                        _ = pace.wait() => {}
                        _ = cancelled(cancel) => break 'names interrupted(),
                    }
                    let priority = if many_pages {
                        Priority::High
                    } else if cov.pages == 0 {
                        Priority::Normal
                    } else {
                        Priority::Low
                    };
                    let permit = tokio::select! {
                        p = slots.acquire_at(priority) => p,
                        _ = cancelled(cancel) => break 'names interrupted(),
                    };
                    pace.sent();
                    let request = client
                        .lookup_events()
                        .lookup_attributes(attr.clone())
                        .start_time(start)
                        .end_time(end)
                        .max_results(PAGE_SIZE)
                        .set_next_token(token.clone());
                    // Boxed: the SDK's future is large, and inline it would make
                    // every partition waiting on its pace as large as a call in flight.
                    let call = Box::pin(async {
                        match &per_call {
                            Some(c) => request.customize().config_override(c.clone()).send().await,
                            None => request.send().await,
                        }
                    });
                    let result = tokio::select! {
                        r = call => r,
                        _ = cancelled(cancel) => break 'names interrupted(),
                    };
                    drop(permit);
                    let failure = match result {
                        Ok(out) => {
                            progress.on(ProgressEvent::Call {
                                failed: false,
                                throttled: false,
                            });
                            pace.succeeded();
                            break out;
                        }
                        Err(e) => classify(&e),
                    };
                    let throttled = failure.class == ErrorClass::Throttled;
                    progress.on(ProgressEvent::Call {
                        failed: true,
                        throttled,
                    });
                    match failure.class {
                        ErrorClass::Throttled => {
                            cov.throttles += 1;
                            throttled_in_row += 1;
                            pace.throttled(throttled_in_row);
                        }
                        ErrorClass::Transient => {
                            pace.delay(backoff(
                                Duration::from_millis(250),
                                Duration::from_secs(10),
                                attempt,
                            ));
                        }
                        ErrorClass::ExpiredCredentials => credentials.invalidate().await,
                        ErrorClass::NotEnabled if cov.pages == 0 => {
                            break 'names Outcome::NotEnabled(failure)
                        }
                        ErrorClass::NotEnabled | ErrorClass::Fatal => {
                            break 'names Outcome::Failed(format!("LookupEvents {name}: {failure}"))
                        }
                    }
                    if page_started.elapsed() >= settings.retry_deadline {
                        break 'names Outcome::Failed(format!(
                            "LookupEvents {name}: gave up on a page after {attempt} attempts in {:.0?}; last error: {failure}",
                            page_started.elapsed()
                        ));
                    }
                    cov.retries += 1;
                };
                cov.pages += 1;
                // EndTime is inclusive; the window is not: an event at exactly
                // the end belongs to the next window.
                let page = in_window(out.events(), &settings.window);
                let kept = take_page(&page, account_id, region, &mut seen, &mut events, &mut cov);
                progress.on(ProgressEvent::Page { events: kept });
                match out.next_token() {
                    Some(t) if !t.is_empty() => {
                        many_pages = true;
                        token = Some(t.to_string())
                    }
                    _ => break,
                }
            }
        }
        Outcome::Done
    };

    match outcome {
        Outcome::Done => {}
        Outcome::NotEnabled(f) => {
            cov.status = RegionStatus::NotEnabled;
            cov.error = Some(f.to_string());
        }
        Outcome::Failed(msg) => {
            cov.status = RegionStatus::Failed;
            cov.error = Some(msg);
        }
    }
    cov.events = events.len() as u64;
    cov.malformed_event_ids.sort();
    PartitionResult {
        region: region.to_string(),
        events,
        coverage: cov,
    }
}

/// Takes one page's records into `events`: other services' records are skipped,
/// a record that does not parse is counted as malformed (with its id), and an
/// event id already taken is counted as a duplicate, never kept twice. Returns
/// how many new events the page gave. Pure: the paging proptests drive it with
/// arbitrary page splits and orders.
pub fn take_page(
    page: &[aws_sdk_cloudtrail::types::Event],
    account_id: &str,
    region: &str,
    seen: &mut HashSet<String>,
    events: &mut Vec<SessionEvent>,
    cov: &mut RegionCoverage,
) -> usize {
    let mut kept = 0;
    for e in page {
        if e.event_source().is_some_and(|s| s != SSM_SOURCE) {
            continue;
        }
        let parsed = e
            .cloud_trail_event()
            .map(|raw| parse_record(raw, account_id, region));
        match parsed {
            Some(Ok(ev)) => {
                if seen.insert(ev.event_id.clone()) {
                    events.push(ev);
                    kept += 1;
                } else {
                    cov.duplicates += 1;
                }
            }
            // Another service's record under the same event name: not ours.
            Some(Err(err)) if err.is_not_session_call() => {}
            Some(Err(err)) => {
                cov.malformed += 1;
                let id = e.event_id().unwrap_or("(no event id)");
                tracing::debug!(account = account_id, region, event_id = id, error = %err, "malformed CloudTrail record");
                cov.malformed_event_ids.push(id.to_string());
            }
            None => {
                cov.malformed += 1;
                cov.malformed_event_ids
                    .push(e.event_id().unwrap_or("(no event id)").to_string());
            }
        }
    }
    kept
}

/// The page without the records at or after the window's end (by LookupEvents'
/// own `EventTime`, which `EndTime` compares); borrowed when there are none.
fn in_window<'a>(
    page: &'a [aws_sdk_cloudtrail::types::Event],
    window: &TimeWindow,
) -> std::borrow::Cow<'a, [aws_sdk_cloudtrail::types::Event]> {
    let end = to_smithy(window.end);
    let late = |e: &aws_sdk_cloudtrail::types::Event| e.event_time().is_some_and(|t| *t >= end);
    if page.iter().any(late) {
        page.iter().filter(|e| !late(e)).cloned().collect()
    } else {
        std::borrow::Cow::Borrowed(page)
    }
}

fn to_smithy(t: chrono::DateTime<chrono::Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}
