//! CloudTrail `LookupEvents` for one partition (an account and a region):
//! every event name, every page, paced to the partition's rate, each call in a
//! slot of the run's concurrency bound, each failed page retried until it
//! succeeds or the deadline passes. A page is never dropped silently.
//!
//! The partition's 2 calls a second are AWS's limit; the round trip is not. So
//! its event names are read as chains side by side, and a chain that shows a
//! second page hands the rest of its window over as time slices (newest-first
//! pages tell how dense the window is), so a deep partition stays at its pace
//! whatever the latency. Of the chains waiting for a turn of the pace, the one
//! with the most of its time range still to read takes it, so they end
//! together rather than one reading its last pages alone, a round trip apart.
//! Slices meet on a shared second, and the partition keeps each event id once:
//! no gap, no double.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::credentials::{AccountCredentials, CallerCredentials};
use super::wire::{LookupPage, LookupRecord, LookupWire, PageRequest};
use crate::call::pace::take_turn;
use crate::call::{
    backoff, lock, unless_cancelled, CallFailure, CallSlots, ErrorClass, Pace, Priority, Tokens,
};
use crate::event::{parse_lookup_event, LookupFields};
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
    /// `--since last`: accounts whose partitions not in `starts` start elsewhere.
    pub account_starts: Arc<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>>,
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
    /// The caller's own credentials, for its own account's calls.
    pub caller_credentials: Arc<CallerCredentials>,
}

/// One partition (an account and a region) to read, and what reading it takes.
pub struct Partition<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// The region's endpoint, shared by every account: each call is signed
    /// with `credentials`.
    pub wire: &'a LookupWire,
    pub credentials: &'a AccountCredentials,
}

/// What a partition gave: its events and how it was covered.
#[derive(Debug)]
pub struct PartitionResult {
    pub region: String,
    pub events: Vec<SessionEvent>,
    pub coverage: RegionCoverage,
}

/// Most chains one partition runs at once. A partition's calls are paced to
/// `rate`; this many in flight keep that pace even at a 1 s round trip.
const MAX_CHAINS: usize = 8;

/// A chain is split only if each new slice can be expected to take at least
/// this many pages: every slice costs one partly filled page.
const MIN_SLICE_PAGES: f64 = 4.0;

/// No listing is this long (LookupEvents keeps 90 days): past it, it is a loop.
const MAX_PAGES_PER_CHAIN: u64 = 1_000_000;

/// One query of a partition: an event name over a time slice, page by page.
/// A partition starts with one chain per event name over the whole window;
/// a chain that shows many pages is split into slices read side by side.
#[derive(Debug, Clone)]
struct Chain {
    name: usize,
    /// StartTime, inclusive.
    start: DateTime<Utc>,
    /// EndTime, inclusive (LookupEvents' own semantics); slices that meet share
    /// this second and the partition keeps each event id once.
    end: DateTime<Utc>,
}

/// What a chain reports to its partition when it stops.
enum ChainEnd {
    Done,
    /// Its remaining range, as slices to read side by side.
    Split(Vec<Chain>),
    Failed(String),
}

/// What the chains of one partition share.
struct Shared {
    pace: Pace,
    cov: RegionCoverage,
    events: Vec<SessionEvent>,
    seen: HashSet<String>,
    /// A partition that has shown a second page is the run's critical path:
    /// its calls go before other partitions' first pages, which go before the rest.
    many_pages: bool,
    /// Round trip of its calls (a moving average), for how many chains keep
    /// the pace busy.
    latency: Duration,
    /// Chains running now: fewer than the pace can feed, and the next chain to
    /// reach a page with more to come splits (`plan_split`).
    running: usize,
    /// Set once one chain failed: the others stop at their next call.
    stop: bool,
}

impl Shared {
    /// Chains that keep this partition's pace busy: `rate × latency` calls in
    /// flight, with room for jitter. No more: each split costs a partly filled
    /// page, which at the pace costs as much time as a full one (measured: at
    /// 400 ms, one chain too many made 48 calls of a 42-call partition). The
    /// latency is an average, and jitter of ±25 % around it moves each call,
    /// not the average: 10 % above `rate × latency` is room enough.
    fn target_chains(&self, rate: f64) -> usize {
        let in_flight = rate * self.latency.as_secs_f64() * 1.1;
        (in_flight.ceil() as usize).clamp(1, MAX_CHAINS)
    }

    fn observe(&mut self, round_trip: Duration) {
        self.latency = match self.latency.is_zero() {
            true => round_trip,
            false => (self.latency * 4 + round_trip) / 5,
        };
    }
}

/// Full pages a chain has left, from what it has read: newest first, its
/// pages so far covered `(at, end]`; the rest of its range, `[start, at]`, is
/// taken to be as dense in events.
fn pages_left(chain: &Chain, at: DateTime<Utc>, kept: u64, pages: u64) -> f64 {
    let per_page = (kept.max(1) as f64 / pages.max(1) as f64).max(1.0);
    share_left(chain, at) * kept as f64 / per_page
}

/// A chain's claim on the pace's turns (`take_turn`): the seconds of its range
/// still to read, `[start, at]`. A partition's event names keep one rhythm (a
/// session's StartSession, ResumeSession and TerminateSession fall in the same
/// hours), so chains kept at the same point in time have the same share of
/// their pages left, whatever that rhythm is, and end together. The claim
/// before it, pages so far × time left over time read, took events to be spread
/// evenly over the range: with sessions in business hours it rated a 7-page
/// ResumeSession chain below its partition's 19- and 16-page chains from first
/// to last, so it read its last 4 pages alone at 800 ms, 0.8 s past the pace.
fn range_left(chain: &Chain, at: DateTime<Utc>) -> f64 {
    (at - chain.start).num_milliseconds().max(0) as f64 / 1000.0
}

/// The rest of a chain's range over what its pages so far covered.
fn share_left(chain: &Chain, at: DateTime<Utc>) -> f64 {
    let covered = (chain.end - at).num_milliseconds().max(1000) as f64;
    let left = (at - chain.start).num_milliseconds().max(0) as f64;
    left / covered
}

/// Read one partition to the last page of every event name.
pub async fn read_partition(run: &LookupRun, p: Partition<'_>) -> PartitionResult {
    let settings = &run.settings;
    let shared = Mutex::new(Shared {
        pace: Pace::new(settings.rate),
        cov: RegionCoverage::new(RegionStatus::Ok),
        events: Vec::new(),
        seen: HashSet::new(),
        many_pages: false,
        latency: Duration::ZERO,
        running: 0,
        stop: false,
    });
    let ctx = ChainCtx {
        run,
        p: &p,
        shared: &shared,
    };

    // The chains of one partition run side by side in this one task: boxed,
    // so a partition waiting on its pace stays small.
    let start = crate::model::start_in(
        &settings.starts,
        &settings.account_starts,
        settings.window.start,
        p.account_id,
        p.region,
    );
    let mut chains = FuturesUnordered::new();
    for name in 0..settings.event_names.len() {
        lock(&shared).running += 1;
        chains.push(Box::pin(ctx.read_chain(Chain {
            name,
            start,
            end: settings.window.end,
        })));
    }
    let mut failure: Option<String> = None;
    while let Some(end) = chains.next().await {
        let mut st = lock(&shared);
        st.running -= 1;
        match end {
            ChainEnd::Done => {}
            ChainEnd::Split(slices) => {
                for c in slices {
                    st.running += 1;
                    chains.push(Box::pin(ctx.read_chain(c)));
                }
            }
            ChainEnd::Failed(msg) => {
                st.stop = true;
                failure.get_or_insert(msg);
            }
        }
    }

    drop(chains);
    drop(ctx);
    let st = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let (mut cov, events) = (st.cov, st.events);
    if let Some(msg) = failure {
        cov.status = RegionStatus::Failed;
        cov.error = Some(msg);
    }
    cov.events = events.len() as u64;
    cov.malformed_event_ids.sort();
    cov.malformed_event_ids.dedup();
    PartitionResult {
        region: p.region.to_string(),
        events,
        coverage: cov,
    }
}

/// What a chain needs, borrowed from its partition.
struct ChainCtx<'a> {
    run: &'a LookupRun,
    p: &'a Partition<'a>,
    shared: &'a Mutex<Shared>,
}

impl ChainCtx<'_> {
    /// Read one chain page by page, until its last page, a split or a failure.
    async fn read_chain(&self, chain: Chain) -> ChainEnd {
        let (settings, cancel) = (&self.run.settings, &self.run.cancel);
        let name = &settings.event_names[chain.name];
        let mut tokens = Tokens::new(MAX_PAGES_PER_CHAIN);
        let mut token: Option<String> = None;
        // What this chain has read: its own events (the partition keeps each id
        // once, since slices meet on a shared second), and how far back it got.
        let mut seen_here: HashSet<String> = HashSet::new();
        let mut kept_here = 0u64;
        let mut oldest: Option<DateTime<Utc>> = None;
        // Unknown before the first page, which tells how dense the range is:
        // first pages go first.
        let mut left = f64::INFINITY;
        loop {
            let request = PageRequest {
                event_name: name,
                start: chain.start,
                end: chain.end,
                max_results: PAGE_SIZE,
                token: token.as_deref(),
            };
            let out = match self.one_page(&request, left).await {
                Ok(out) => out,
                Err(end) => return end,
            };
            let Some(page) = out.events.as_deref() else {
                unreachable!("one_page returns only pages that hold Events")
            };
            // EndTime is inclusive; the window is not: an event at exactly
            // the end belongs to the next window.
            let in_window = in_window(page, &settings.window);
            let mut fresh = Vec::new();
            let mut scratch = RegionCoverage::new(RegionStatus::Ok);
            take_page(
                &in_window,
                self.p.account_id,
                self.p.region,
                &mut seen_here,
                &mut fresh,
                &mut scratch,
            );
            for e in page {
                if let Some(t) = e.event_time {
                    oldest = Some(oldest.map_or(t, |o| o.min(t)));
                }
            }
            kept_here += fresh.len() as u64;
            let next = match tokens.next(out.next_token.as_deref()) {
                Ok(next) => next,
                Err(e) => return ChainEnd::Failed(format!("LookupEvents {name}: {e}")),
            };
            let split = {
                let mut st = lock(self.shared);
                st.cov.pages += 1;
                st.cov.malformed += scratch.malformed;
                st.cov.duplicates += scratch.duplicates;
                st.cov
                    .malformed_event_ids
                    .append(&mut scratch.malformed_event_ids);
                let mut added = 0;
                for e in fresh {
                    if st.seen.insert(e.event_id.clone()) {
                        st.events.push(e);
                        added += 1;
                    }
                }
                self.run.progress.on(ProgressEvent::Page { events: added });
                if next.is_some() {
                    st.many_pages = true;
                }
                match (&next, oldest) {
                    (Some(_), Some(at)) => {
                        left = range_left(&chain, at);
                        self.plan_split(&mut st, &chain, at, kept_here, tokens.pages())
                    }
                    _ => None,
                }
            };
            if *cancel.borrow() {
                return interrupted();
            }
            match (next, split) {
                (None, _) => return ChainEnd::Done,
                (Some(_), Some(slices)) => return ChainEnd::Split(slices),
                (Some(t), None) => token = Some(t),
            }
        }
    }

    /// Whether a chain that has read back to `at` (with more pages to come)
    /// should hand its remaining range `[start, at]` over as slices: when its
    /// partition runs fewer chains than its pace can feed, and the range holds
    /// enough pages to be worth a partly filled page per slice.
    fn plan_split(
        &self,
        st: &mut Shared,
        chain: &Chain,
        at: DateTime<Utc>,
        kept: u64,
        pages: u64,
    ) -> Option<Vec<Chain>> {
        let target = st.target_chains(self.run.settings.rate);
        // This chain becomes k slices: k − 1 more chains, as many as are missing.
        let room = target.saturating_sub(st.running);
        if room == 0 || at <= chain.start {
            return None;
        }
        let pages_left = pages_left(chain, at, kept, pages);
        let k = ((pages_left / MIN_SLICE_PAGES).floor() as usize).min(room + 1);
        if k < 2 {
            return None;
        }
        tracing::debug!(
            account = self.p.account_id,
            region = self.p.region,
            name = %self.run.settings.event_names[chain.name],
            slices = k,
            running = st.running,
            target,
            latency_ms = st.latency.as_millis() as u64,
            pages_left = pages_left as u64,
            "LookupEvents chain split"
        );
        let step = (at - chain.start) / k as i32;
        let mut slices = Vec::with_capacity(k);
        for i in 0..k {
            let s = chain.start + step * i as i32;
            let e = if i + 1 == k {
                at
            } else {
                chain.start + step * (i as i32 + 1)
            };
            slices.push(Chain {
                name: chain.name,
                start: trunc_second(s),
                end: ceil_second(e),
            });
        }
        Some(slices)
    }

    /// One page: attempts until it is read, the deadline passes, or the
    /// partition stops. A response without `Events` is not CloudTrail speaking
    /// (a proxy, a wrong endpoint): it is retried like a 5xx, never an empty page.
    async fn one_page(&self, request: &PageRequest<'_>, left: f64) -> Result<LookupPage, ChainEnd> {
        let name = request.event_name;
        let (run, cancel) = (self.run, &self.run.cancel);
        let credentials = self.p.credentials;
        let page_started = Instant::now();
        let mut attempt = 0u32;
        let mut throttled_in_row = 0u32;
        loop {
            attempt += 1;
            if *cancel.borrow() {
                return Err(interrupted());
            }
            if lock(self.shared).stop {
                return Err(ChainEnd::Done);
            }
            // Neither the credentials, nor the pace, nor a slot, nor a call in
            // flight holds up a cancelled run: the whole step waits beside the
            // cancellation.
            let step = async {
                if let Err(f) = credentials.ensure_fresh().await {
                    return Err(ChainEnd::Failed(format!("credentials: {f}")));
                }
                let (turn, permit, written) = loop {
                    let turn = take_turn(self.shared, |st| &mut st.pace, left).await;
                    let priority = {
                        let st = lock(self.shared);
                        if st.many_pages {
                            Priority::High
                        } else if st.cov.pages == 0 {
                            Priority::Normal
                        } else {
                            Priority::Low
                        }
                    };
                    let permit = run.slots.acquire_at(priority).await;
                    let mut st = lock(self.shared);
                    if st.pace.try_send() {
                        break (turn, permit, st.pace.written().clone());
                    }
                    drop(st);
                    // Another chain's call, late for a slot, went less than an
                    // interval ago: a later turn, without holding the slot.
                    drop(permit);
                };
                let sent = Instant::now();
                // Boxed: inline, the call's future would make every chain waiting
                // on its pace as large as a call in flight.
                let result = Box::pin(async {
                    let creds = credentials.signing(&run.caller_credentials).await?;
                    self.p.wire.page(&creds, request, &written).await
                })
                .await;
                drop(permit);
                Ok((turn, sent, result))
            };
            let Some(step) = unless_cancelled(cancel, step).await else {
                return Err(interrupted());
            };
            let (turn, sent, result) = step?;
            tracing::debug!(
                account = self.p.account_id,
                region = self.p.region,
                name,
                waited_ms = (sent - turn).as_millis() as u64,
                took_ms = sent.elapsed().as_millis() as u64,
                ok = result.is_ok(),
                left = left.min(1e9) as u64,
                "LookupEvents page"
            );
            let failure = match result {
                Ok(out) if out.events.is_some() => {
                    run.progress.on(ProgressEvent::Call {
                        failed: false,
                        throttled: false,
                    });
                    let mut st = lock(self.shared);
                    st.pace.succeeded();
                    st.observe(sent.elapsed());
                    return Ok(out);
                }
                Ok(_) => CallFailure {
                    class: ErrorClass::Transient,
                    code: "malformed-response".into(),
                    message: "a LookupEvents answer without its Events member: not CloudTrail speaking (a proxy, or AWS_ENDPOINT_URL_CLOUDTRAIL pointing elsewhere?)".into(),
                },
                Err(f) => f,
            };
            let throttled = failure.class == ErrorClass::Throttled;
            run.progress.on(ProgressEvent::Call {
                failed: true,
                throttled,
            });
            {
                let mut st = lock(self.shared);
                match failure.class {
                    ErrorClass::Throttled => {
                        st.cov.throttles += 1;
                        throttled_in_row += 1;
                        st.pace.throttled(throttled_in_row);
                    }
                    ErrorClass::Transient => {
                        st.pace.delay(backoff(
                            Duration::from_millis(250),
                            Duration::from_secs(10),
                            attempt,
                        ));
                    }
                    ErrorClass::ExpiredCredentials => {}
                    // The region is enabled (the account's region list says so, or
                    // it would not be read), so a refused token is a credentials
                    // problem, never "this region holds nothing".
                    ErrorClass::NotEnabled => {
                        return Err(ChainEnd::Failed(format!(
                            "LookupEvents {name}: {failure} (the credentials were refused in a region the account has enabled: a revoked key, or STS v1 tokens in an opt-in region?)"
                        )))
                    }
                    ErrorClass::Fatal => {
                        return Err(ChainEnd::Failed(format!("LookupEvents {name}: {failure}")))
                    }
                }
            }
            if failure.class == ErrorClass::ExpiredCredentials {
                credentials
                    .invalidate_signing(&run.caller_credentials)
                    .await;
            }
            if page_started.elapsed() >= run.settings.retry_deadline {
                return Err(ChainEnd::Failed(format!(
                    "LookupEvents {name}: gave up on a page after {attempt} attempts in {:.0?}; last error: {failure}",
                    page_started.elapsed()
                )));
            }
            lock(self.shared).cov.retries += 1;
        }
    }
}

fn interrupted() -> ChainEnd {
    ChainEnd::Failed("interrupted before the last page".into())
}

fn trunc_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(s, 0).unwrap_or(t)
}

/// Takes one page's records into `events`: other services' records are skipped,
/// an event id already taken is counted as a duplicate and never kept twice, and
/// a record that cannot be read in full is kept with what could be read (its own
/// fields that parsed, else LookupEvents' `EventId`, `EventName`, `EventTime`,
/// `Username`, `Resources`), marked by `parse_error`, and counted as malformed
/// with its id. A record with nothing to keep (no id, name or time anywhere) is
/// counted as malformed and dropped. `malformed` counts records, not copies: a
/// record not read in full returned twice is one malformed record and one
/// duplicate (only records without any event id are counted per copy).
/// Returns how many new events the page gave. Pure: the paging proptests drive
/// it with arbitrary page splits and orders.
pub fn take_page(
    page: &[LookupRecord],
    account_id: &str,
    region: &str,
    seen: &mut HashSet<String>,
    events: &mut Vec<SessionEvent>,
    cov: &mut RegionCoverage,
) -> usize {
    let mut kept = 0;
    for e in page {
        if e.event_source.as_deref().is_some_and(|s| s != SSM_SOURCE) {
            continue;
        }
        let fields = LookupFields {
            event_id: e.event_id.as_deref(),
            event_name: e.event_name.as_deref(),
            event_time: e.event_time,
            username: e.username.as_deref(),
            access_key_id: e.access_key_id.as_deref(),
            resources: e
                .resources
                .iter()
                .filter_map(|r| Some((r.resource_type.as_deref()?, r.resource_name.as_deref()?)))
                .collect(),
            cloud_trail_event: e.cloud_trail_event.as_deref(),
        };
        match parse_lookup_event(&fields, account_id, region) {
            Ok(ev) => {
                if !seen.insert(ev.event_id.clone()) {
                    cov.duplicates += 1;
                    continue;
                }
                // (Listed already only if an unreadable copy came first.)
                if let Some(why) = &ev.parse_error {
                    if !cov.malformed_event_ids.contains(&ev.event_id) {
                        tracing::debug!(account = account_id, region, event_id = ?ev.event_id, error = %why, "CloudTrail record read partially");
                        cov.malformed += 1;
                        cov.malformed_event_ids.push(ev.event_id.clone());
                    }
                }
                events.push(ev);
                kept += 1;
            }
            // Another service's record under the same event name: not ours.
            Err(err) if err.is_not_session_call() => {}
            Err(err) => match e.event_id.as_deref().filter(|id| !id.is_empty()) {
                // The same unreadable record again: a copy, not another record.
                Some(id) if cov.malformed_event_ids.iter().any(|m| m == id) => {
                    cov.duplicates += 1;
                }
                id => {
                    let id = id.unwrap_or("(no event id)");
                    tracing::debug!(account = account_id, region, event_id = ?id, error = %err, "malformed CloudTrail record");
                    cov.malformed += 1;
                    cov.malformed_event_ids.push(id.to_string());
                }
            },
        }
    }
    kept
}

/// The page without the records at or after the window's end (by LookupEvents'
/// own `EventTime`, which `EndTime` compares); borrowed when there are none.
fn in_window<'a>(
    page: &'a [LookupRecord],
    window: &TimeWindow,
) -> std::borrow::Cow<'a, [LookupRecord]> {
    let end = window.end;
    let late = |e: &LookupRecord| e.event_time.is_some_and(|t| t >= end);
    if page.iter().any(late) {
        page.iter().filter(|e| !late(e)).cloned().collect()
    } else {
        std::borrow::Cow::Borrowed(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Event times of one event name, newest first: `n` of them in business
    /// hours (9:00–15:00 on weekdays) of the window, as sessions fall, spread
    /// by a fixed pseudo-random sequence (`seed`).
    fn business_hours(
        n: usize,
        seed: u64,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Vec<DateTime<Utc>> {
        let span = (window.1 - window.0).num_seconds();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut times = Vec::with_capacity(n);
        while times.len() < n {
            let t = window.0 + chrono::Duration::seconds(rng.random_range(0..span));
            let weekday = t.weekday().num_days_from_monday() < 5;
            if weekday && (9..15).contains(&t.hour()) {
                times.push(t);
            }
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        times
    }

    /// The deepest partition of the benchmark's i60 at 800 ms: 19, 16 and 7
    /// pages of StartSession, TerminateSession and ResumeSession, all in
    /// business hours of the simulator's window (the 7 days to a Friday
    /// 18:00: a weekend at its start), read newest first by one chain each,
    /// sharing 2 calls/s; each round trip 600–1,000 ms, by a pseudo-random
    /// sequence (`jitter`). Each chain claims turns with `claim` once it has
    /// read a page. Returns the virtual seconds until the last page was read.
    async fn partition_ends_after(
        jitter: u64,
        claim: fn(&Chain, DateTime<Utc>, u64) -> f64,
    ) -> f64 {
        let window = (
            Utc.with_ymd_and_hms(2026, 11, 13, 18, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap(),
        );
        let shared = Mutex::new(Pace::new(2.0));
        let started = Instant::now();
        let chains = [(950, 1), (800, 2), (350, 3)].map(|(events, seed)| {
            let shared = &shared;
            let times = business_hours(events, seed, window);
            let chain = Chain {
                name: seed as usize,
                start: window.0,
                end: window.1,
            };
            async move {
                let mut left = f64::INFINITY;
                let mut rng = SmallRng::seed_from_u64(seed * 7919 + jitter);
                for (page, read) in times.chunks(PAGE_SIZE as usize).zip(1u64..) {
                    take_turn(shared, |p| p, left).await;
                    let round_trip = rng.random_range(600..=1000);
                    tokio::time::sleep(Duration::from_millis(round_trip)).await;
                    left = claim(&chain, *page.last().unwrap(), read);
                }
            }
        });
        futures::future::join_all(chains).await;
        started.elapsed().as_secs_f64()
    }

    /// Chains that claim with the part of their range still to read end
    /// within a round trip's jitter of the partition's floor, (42 − 1) / 2 s
    /// + 0.8 s, with sessions in business hours. The claim before it (pages
    /// so far × time left over time read) ended about a second later in the
    /// benchmark, and here 0.8 s later on average (21.3 s against 22.1 s over
    /// these five round-trip sequences): the guard that this case tells the
    /// two apart. It read the weekend left at the start as if it were as busy
    /// as the week.
    #[tokio::test(start_paused = true)]
    async fn chains_claiming_their_range_left_end_together_whatever_the_hours() {
        let floor = 41.0 * 0.5 + 0.8;
        let (mut by_range, mut spread_evenly) = (0.0, 0.0);
        for jitter in 1..=5 {
            let ended = partition_ends_after(jitter, |c, at, _| range_left(c, at)).await;
            assert!(
                ended - floor < 0.35,
                "by range left: {ended} s, floor {floor} s (round trips {jitter})"
            );
            by_range += ended / 5.0;
            spread_evenly +=
                partition_ends_after(jitter, |c, at, pages| share_left(c, at) * pages as f64).await
                    / 5.0;
        }
        assert!(
            spread_evenly > by_range + 0.5,
            "events taken as spread evenly: {spread_evenly} s, by range left {by_range} s (the case this guards against)"
        );
    }
}
