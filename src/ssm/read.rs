//! Session Manager's own records of one partition (an account and a region),
//! through the account's credentials: `DescribeSessions` `Active` then
//! `History` (every page, 200 a page), `GetDocument SSM-SessionManagerRunShell`,
//! and `GetDocument` for the other session documents the partition's sessions
//! used. Every call is paced per partition, takes a slot of the run's bound,
//! and is retried until it succeeds or the deadline passes, as LookupEvents is;
//! like it, each is a signed JSON call on the run's HTTP client ([`super::wire`]),
//! outside the SDK's orchestrator.
//!
//! A failure is a value in the posture, never an early return: a permission
//! the audit role lacks makes the posture "not readable" (never "no
//! logging"), and nothing here changes what CloudTrail read.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use super::document::{self, PREFERENCES_DOCUMENT};
use super::wire::{SessionFilter, SessionsPage, SessionsRequest, SsmWire, WireSession};
use crate::call::{backoff, unless_cancelled, CallFailure, CallSlots, ErrorClass, Pace};
use crate::model::{
    DocumentPosture, HistoryRead, ReadStatus, SessionManagerPosture, SessionRecord, SessionState,
    TimeWindow,
};
use crate::progress::{Progress, ProgressEvent};
use crate::source::lookup::credentials::{AccountCredentials, CallerCredentials};

/// `DescribeSessions` allows at most 200 a page.
pub const PAGE_SIZE: i32 = 200;
/// Session Manager keeps terminated sessions this long.
pub const HISTORY_DAYS: i64 = 30;
/// Calls per second per partition. AWS publishes no limit for these calls;
/// the pace widens on throttling as LookupEvents' does.
pub const SSM_RATE: f64 = 5.0;
/// A listing longer than this is not ending: it fails rather than loops.
const MAX_PAGES: u64 = 5_000;
/// Other session documents read per partition; beyond, sessions are "unknown".
const MAX_DOCUMENTS: usize = 16;

/// What every partition's read shares.
#[derive(Clone)]
pub struct SsmRun {
    pub slots: CallSlots,
    pub cancel: watch::Receiver<bool>,
    /// A call still failing this long after its first attempt fails the read.
    pub retry_deadline: Duration,
    /// The scan's window: the history is read from its start (at most 30 days back).
    pub window: TimeWindow,
    /// Documents (or prefixes) that tunnel ports: never transcribed, never read.
    pub tunnel_documents: Vec<String>,
    pub progress: Arc<dyn Progress>,
    /// The caller's own credentials, for its own account's calls.
    pub caller_credentials: Arc<CallerCredentials>,
    /// True once the organization's listing has ended, or accounts wait for
    /// a place among those being read (or nothing is listed): see
    /// [`SsmRun::after_listing`].
    pub listed: watch::Receiver<bool>,
    /// Spreads the partitions' starts once the listing has ended.
    pub starts: StartSpread,
}

/// Partitions that start reading Session Manager's records at the same
/// moment (every one listed, when the listing ends) start [`START_STEP`]
/// apart, counted from the first: at a@400 the thousands of calls and
/// connections of one instant held a deep partition's LookupEvents call in the
/// client for 0.6 s, and the partition's pace waited from when it left.
#[derive(Clone, Default)]
pub struct StartSpread(Arc<Spread>);

#[derive(Default)]
struct Spread {
    first: std::sync::OnceLock<Instant>,
    started: std::sync::atomic::AtomicU32,
}

/// 4,000 starts a second: workload a's 4,000 partitions over one second; a
/// partition that comes later than its place starts at once.
pub const START_STEP: Duration = Duration::from_micros(250);

impl StartSpread {
    /// Waits for this caller's place.
    pub async fn wait(&self) {
        let first = *self.0.first.get_or_init(Instant::now);
        let k = self
            .0
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::call::pace::until(first + START_STEP * k).await;
    }
}

impl SsmRun {
    /// Waits for the organization's listing to end. Session Manager's records
    /// are read after it: on two busy cores their calls slowed the listing's
    /// chain of pages, which every account after them waits on, while they
    /// can be read at any time before the report. Once the accounts being
    /// read fill their window, waiting would hold the others back, and the
    /// records go at once. A listing that stops without saying so (its
    /// sender dropped) lets them go as well.
    pub async fn after_listing(&self) {
        let mut listed = self.listed.clone();
        let _ = listed.wait_for(|done| *done).await;
        let _ = unless_cancelled(&self.cancel, self.starts.wait()).await;
    }
}

/// A receiver that says the listing has ended: for runs that list nothing.
pub fn already_listed() -> watch::Receiver<bool> {
    watch::channel(true).1
}

/// One partition to read.
pub struct SsmPartition<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// The region's endpoint, shared by every account: each call is signed
    /// with `credentials`.
    pub wire: &'a SsmWire,
    pub credentials: &'a AccountCredentials,
}

/// Why a call gave up.
#[derive(Debug)]
enum Stop {
    Interrupted,
    /// `AccessDenied…`: the audit role lacks the permission.
    Denied(CallFailure),
    /// `UnrecognizedClientException`: the region is not enabled (or the token is bad).
    NotEnabled(CallFailure),
    /// An error the service gave that retrying will not change (e.g. `InvalidDocument`).
    Service(CallFailure),
    /// Past the deadline, a listing that does not end, ...
    Failed(String),
}

const DENIED_CODES: [&str; 4] = [
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "AuthorizationErrorException",
];

/// The per-call machinery of one partition: its pace, its counters.
struct Caller<'a> {
    run: &'a SsmRun,
    credentials: &'a AccountCredentials,
    pace: Pace,
    calls: u64,
    retries: u64,
    throttles: u64,
}

impl<'a> Caller<'a> {
    fn new(run: &'a SsmRun, credentials: &'a AccountCredentials) -> Self {
        Caller {
            run,
            credentials,
            pace: Pace::new(SSM_RATE),
            calls: 0,
            retries: 0,
            throttles: 0,
        }
    }

    /// One call until it succeeds, fails for good or its deadline passes.
    /// `check` refuses an answer that lacks what must be there (retried: it is
    /// not Session Manager speaking, or not all of it). `send` makes one
    /// attempt, signed with the credentials it is given.
    async fn call<T, Fut>(
        &mut self,
        op: &str,
        send: impl Fn(Credentials) -> Fut,
        check: impl Fn(&T) -> Option<&'static str>,
    ) -> Result<T, Stop>
    where
        Fut: std::future::Future<Output = Result<T, CallFailure>>,
    {
        let caller_credentials = &*self.run.caller_credentials;
        let cancel = &self.run.cancel;
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut throttled_in_row = 0u32;
        loop {
            attempt += 1;
            if *cancel.borrow() {
                return Err(Stop::Interrupted);
            }
            // Nothing in the step holds up a cancelled run: it waits beside
            // the cancellation as a whole.
            let credentials = self.credentials;
            let (pace, calls, slots) = (&mut self.pace, &mut self.calls, &self.run.slots);
            let step = async {
                if let Err(f) = credentials.ensure_fresh().await {
                    return Err(Stop::Failed(format!("credentials: {f}")));
                }
                pace.wait().await;
                let permit = slots.acquire().await;
                pace.sent();
                *calls += 1;
                // Boxed: inline, the call's future would make every partition
                // waiting on its pace as large as a call in flight.
                let result = Box::pin(async {
                    let creds = credentials.signing(caller_credentials).await?;
                    send(creds).await
                })
                .await;
                drop(permit);
                Ok(result)
            };
            let Some(step) = unless_cancelled(cancel, step).await else {
                return Err(Stop::Interrupted);
            };
            let result = step?;
            let failure = match result {
                Ok(out) => match check(&out) {
                    None => {
                        self.run.progress.on(ProgressEvent::Call {
                            failed: false,
                            throttled: false,
                        });
                        self.pace.succeeded();
                        return Ok(out);
                    }
                    Some(missing) => CallFailure {
                        class: ErrorClass::Transient,
                        code: "incomplete-answer".into(),
                        message: missing.into(),
                    },
                },
                Err(f) => f,
            };
            let throttled = failure.class == ErrorClass::Throttled;
            self.run.progress.on(ProgressEvent::Call {
                failed: true,
                throttled,
            });
            match failure.class {
                ErrorClass::Throttled => {
                    self.throttles += 1;
                    throttled_in_row += 1;
                    self.pace.throttled(throttled_in_row);
                }
                ErrorClass::Transient => self.pace.delay(backoff(
                    Duration::from_millis(250),
                    Duration::from_secs(10),
                    attempt,
                )),
                ErrorClass::ExpiredCredentials => {
                    self.credentials
                        .invalidate_signing(caller_credentials)
                        .await
                }
                ErrorClass::NotEnabled => return Err(Stop::NotEnabled(failure)),
                ErrorClass::Fatal if DENIED_CODES.contains(&failure.code.as_str()) => {
                    return Err(Stop::Denied(failure))
                }
                ErrorClass::Fatal => return Err(Stop::Service(failure)),
            }
            if started.elapsed() >= self.run.retry_deadline {
                return Err(Stop::Failed(format!(
                    "{op}: gave up after {attempt} attempts in {:.0?}; last error: {failure}",
                    started.elapsed()
                )));
            }
            self.retries += 1;
        }
    }

    /// Every page of one `DescribeSessions` listing.
    async fn sessions(
        &mut self,
        p: &SsmPartition<'_>,
        state: SessionState,
        filters: &[SessionFilter],
        pages: &mut u64,
    ) -> Result<Vec<SessionRecord>, Stop> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut listed = 0u64;
        loop {
            let request = &SessionsRequest {
                state: state_name(state),
                max_results: PAGE_SIZE,
                filters,
                next_token: token.as_deref(),
            };
            let wire = p.wire;
            let answer = self
                .call(
                    "DescribeSessions",
                    |creds| async move { wire.describe_sessions(&creds, request).await },
                    // A 200 without `Sessions` is not an empty last page.
                    |o: &SessionsPage| {
                        o.sessions
                            .is_none()
                            .then_some("the answer held no Sessions")
                    },
                )
                .await?;
            *pages += 1;
            listed += 1;
            for s in answer.sessions.unwrap_or_default() {
                if let Some(r) = record(p, state, s) {
                    out.push(r);
                }
            }
            match answer.next_token {
                Some(t) if !t.is_empty() => {
                    if !seen_tokens.insert(t.clone()) {
                        return Err(Stop::Failed(format!(
                            "DescribeSessions {}: a NextToken came back that was already followed: the listing does not end",
                            state_name(state)
                        )));
                    }
                    if listed >= MAX_PAGES {
                        return Err(Stop::Failed(format!(
                            "DescribeSessions {}: more than {MAX_PAGES} pages: the listing does not end",
                            state_name(state)
                        )));
                    }
                    token = Some(t);
                }
                _ => return Ok(out),
            }
        }
    }

    async fn document(&mut self, p: &SsmPartition<'_>, name: &str) -> DocumentPosture {
        let wire = p.wire;
        let answer = self
            .call(
                "GetDocument",
                |creds| async move { wire.get_document(&creds, name).await },
                |o: &super::wire::DocumentAnswer| {
                    o.content.is_none().then_some("the answer held no Content")
                },
            )
            .await;
        match answer {
            Ok(out) => document::parse(name, out.content.as_deref().unwrap_or_default()),
            Err(Stop::Service(f)) if f.code == "InvalidDocument" => {
                if name == PREFERENCES_DOCUMENT {
                    document::never_saved()
                } else {
                    DocumentPosture::unknown(
                        name,
                        ReadStatus::NotFound,
                        Some(format!("GetDocument: {f}")),
                    )
                }
            }
            Err(stop) => {
                let (status, error) = stopped("ssm:GetDocument", "GetDocument", stop);
                DocumentPosture::unknown(name, status, Some(error))
            }
        }
    }
}

fn state_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Active => "Active",
        SessionState::History => "History",
    }
}

/// What a stopped call says in the posture.
fn stopped(permission: &str, op: &str, stop: Stop) -> (ReadStatus, String) {
    match stop {
        Stop::Interrupted => (ReadStatus::NotRead, "interrupted before it was read".into()),
        Stop::Denied(f) => (
            ReadStatus::NotReadable,
            format!("not readable: grant {permission} to the audit role ({op}: {f})"),
        ),
        Stop::NotEnabled(f) => (ReadStatus::NotEnabled, format!("{op}: {f}")),
        Stop::Service(f) => (ReadStatus::Failed, format!("{op}: {f}")),
        Stop::Failed(m) => (ReadStatus::Failed, m),
    }
}

fn owned(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn record(p: &SsmPartition<'_>, state: SessionState, s: WireSession) -> Option<SessionRecord> {
    Some(SessionRecord {
        account_id: p.account_id.to_string(),
        region: p.region.to_string(),
        session_id: owned(s.session_id)?,
        state,
        status: s.status,
        target: owned(s.target),
        start_time: s.start_date,
        end_time: s.end_date,
        document_name: owned(s.document_name),
        owner: owned(s.owner),
        reason: owned(s.reason),
        access_type: s.access_type,
        max_session_duration: owned(s.max_session_duration),
    })
}

/// `InvokedAfter`/`InvokedBefore` take `2024-08-29T00:00:00Z`.
fn filter_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn filter(key: &'static str, value: String) -> SessionFilter {
    SessionFilter { key, value }
}

/// Where the history listing starts: the window's start, at most 30 days back.
pub fn history_since(window: &TimeWindow, now: DateTime<Utc>) -> DateTime<Utc> {
    window.start.max(now - TimeDelta::days(HISTORY_DAYS))
}

/// The partition's history (the `Active` list first, so a session that ends
/// between the two listings is in one of them) and, at the same time, its
/// preferences: at 400 ms the three calls one after another outlasted a
/// shallow partition's CloudTrail. `DescribeSessions` and `GetDocument` keep
/// a pace each: AWS publishes no rate for either, and two calls at once fit
/// any bucket that holds more than one (a throttle still widens the pace).
/// The posture's `readable` and `summary` are the caller's to set
/// ([`super::finish`]), once everything is read.
pub async fn read_posture(run: &SsmRun, p: &SsmPartition<'_>) -> SessionManagerPosture {
    let read_at = Utc::now();
    let since = history_since(&run.window, read_at);
    let mut lister = Caller::new(run, p.credentials);
    let mut reader = Caller::new(run, p.credentials);
    let mut pages = 0u64;
    let mut history = HistoryRead {
        status: ReadStatus::Read,
        error: None,
        since,
        active: 0,
        history: 0,
        pages: 0,
    };
    let mut records = Vec::new();
    let listed = async {
        let active = lister
            .sessions(p, SessionState::Active, &[], &mut pages)
            .await?;
        let filters = [
            filter("InvokedAfter", filter_time(since)),
            filter("InvokedBefore", filter_time(run.window.end)),
        ];
        let past = lister
            .sessions(p, SessionState::History, &filters, &mut pages)
            .await?;
        Ok::<_, Stop>((active, past))
    };
    let (listed, preferences) = tokio::join!(listed, reader.document(p, PREFERENCES_DOCUMENT));
    match listed {
        Ok((active, past)) => {
            history.active = active.len() as u64;
            history.history = past.len() as u64;
            records.extend(active);
            records.extend(past);
        }
        Err(stop) => {
            let (status, error) = stopped("ssm:DescribeSessions", "DescribeSessions", stop);
            history.status = status;
            history.error = Some(error);
        }
    }
    history.pages = pages;
    SessionManagerPosture {
        read_at,
        summary: String::new(),
        readable: false,
        preferences,
        documents: Vec::new(),
        history,
        compared: None,
        discrepancies: Vec::new(),
        calls: lister.calls + reader.calls,
        retries: lister.retries + reader.retries,
        throttles: lister.throttles + reader.throttles,
        records,
    }
}

/// The posture of a partition whose Session Manager endpoint could not be
/// resolved (`why`): nothing read, and it says so.
pub fn unreachable(run: &SsmRun, why: String) -> SessionManagerPosture {
    let read_at = Utc::now();
    let mut posture = SessionManagerPosture {
        read_at,
        summary: String::new(),
        readable: false,
        preferences: DocumentPosture::unknown(
            PREFERENCES_DOCUMENT,
            ReadStatus::Failed,
            Some(why.clone()),
        ),
        documents: Vec::new(),
        history: HistoryRead {
            status: ReadStatus::Failed,
            error: Some(why),
            since: history_since(&run.window, read_at),
            active: 0,
            history: 0,
            pages: 0,
        },
        compared: None,
        discrepancies: Vec::new(),
        calls: 0,
        retries: 0,
        throttles: 0,
        records: Vec::new(),
    };
    super::finish(&mut posture);
    posture
}

/// Reads the other session documents `names` (the default shell's and the
/// tunnels' excluded, at most [`MAX_DOCUMENTS`] in all) into `posture`,
/// beside those it holds already (never read twice). `readable` and
/// `summary` are left to the caller ([`super::finish`]).
pub async fn read_documents(
    run: &SsmRun,
    p: &SsmPartition<'_>,
    posture: &mut SessionManagerPosture,
    names: BTreeSet<String>,
) {
    if matches!(
        posture.preferences.status,
        ReadStatus::NotEnabled | ReadStatus::NotRead
    ) {
        // Not enabled, or interrupted: nothing more to ask.
        return;
    }
    let mut caller = Caller::new(run, p.credentials);
    let mut read: BTreeMap<String, DocumentPosture> = std::mem::take(&mut posture.documents)
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();
    let room = MAX_DOCUMENTS.saturating_sub(read.len());
    let wanted: Vec<String> = names
        .into_iter()
        .filter(|n| n != PREFERENCES_DOCUMENT)
        .filter(|n| !crate::rules::is_tunnel_document(n, &run.tunnel_documents))
        .filter(|n| !read.contains_key(n))
        .take(room)
        .collect();
    for name in wanted {
        let d = caller.document(p, &name).await;
        read.insert(name, d);
    }
    posture.documents = read.into_values().collect();
    posture.calls += caller.calls;
    posture.retries += caller.retries;
    posture.throttles += caller.throttles;
}

/// One session document of the partition, as the posture reads it
/// (`SSM-SessionManagerRunShell` missing = never saved, nothing logged).
pub async fn read_document(run: &SsmRun, p: &SsmPartition<'_>, name: &str) -> DocumentPosture {
    Caller::new(run, p.credentials).document(p, name).await
}

/// The partition's `Active` list alone (for `ssm-session-audit active`): every
/// page, or why it could not be read.
pub async fn read_active(
    run: &SsmRun,
    p: &SsmPartition<'_>,
) -> Result<(Vec<SessionRecord>, u64), (ReadStatus, String)> {
    let mut caller = Caller::new(run, p.credentials);
    let mut pages = 0u64;
    match caller
        .sessions(p, SessionState::Active, &[], &mut pages)
        .await
    {
        Ok(list) => Ok((list, pages)),
        Err(stop) => Err(stopped("ssm:DescribeSessions", "DescribeSessions", stop)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts at the same moment go a step apart; one that comes later than
    /// its place goes at once.
    #[tokio::test(start_paused = true)]
    async fn starts_at_one_moment_are_spread_and_late_ones_go_at_once() {
        let spread = StartSpread::default();
        let t0 = Instant::now();
        let mut at = Vec::new();
        let waits = (0..3).map(|_| async {
            spread.wait().await;
            Instant::now() - t0
        });
        at.extend(futures::future::join_all(waits).await);
        // Timers tick in milliseconds: a step may end on the next tick.
        assert_eq!(at[0], Duration::ZERO);
        assert!(at[1] >= START_STEP && at[2] >= START_STEP * 2, "{at:?}");
        assert!(at[2] <= Duration::from_millis(2), "{at:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let late = Instant::now();
        spread.wait().await;
        assert_eq!(Instant::now(), late);
    }
    use chrono::TimeZone;

    #[test]
    fn the_history_starts_at_the_window_at_most_30_days_back() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let w = |days: i64| TimeWindow {
            start: now - TimeDelta::days(days),
            end: now,
        };
        assert_eq!(history_since(&w(7), now), now - TimeDelta::days(7));
        assert_eq!(history_since(&w(90), now), now - TimeDelta::days(30));
        assert_eq!(filter_time(now), "2026-12-01T12:00:00Z");
    }

    #[test]
    fn a_denied_call_names_the_permission_to_grant() {
        let f = CallFailure {
            class: ErrorClass::Fatal,
            code: "AccessDeniedException".into(),
            message: "User: arn:aws:sts::1:assumed-role/SessionAuditRole/x is not authorized to perform: ssm:DescribeSessions".into(),
        };
        let (status, why) = stopped("ssm:DescribeSessions", "DescribeSessions", Stop::Denied(f));
        assert_eq!(status, ReadStatus::NotReadable);
        assert!(
            why.starts_with("not readable: grant ssm:DescribeSessions"),
            "{why}"
        );
    }
}
