use super::*;
use crate::config::{resolve, FlagValues};
use crate::model::{Account, AccountCoverage, RegionCoverage, RunStats, RunWindow, REPORT_SCHEMA};
use std::collections::BTreeSet;

const A: &str = "111111111111";
const B: &str = "222222222222";
const REGION: &str = "us-east-1";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t("2026-12-01T00:00:00Z") + TimeDelta::minutes(minutes)
}

/// A call of `account`, at `time`, that CloudTrail shows from `visible`.
#[derive(Clone)]
struct Call {
    account: &'static str,
    id: String,
    time: DateTime<Utc>,
    visible: DateTime<Utc>,
    name: &'static str,
    session: Option<&'static str>,
}

fn call(account: &'static str, id: &str, time: DateTime<Utc>, visible: DateTime<Utc>) -> Call {
    Call {
        account,
        id: id.into(),
        time,
        visible,
        name: "StartSession",
        session: None,
    }
}

fn event(c: &Call) -> SessionEvent {
    let mut e = crate::session::test_support::ev(&c.id, c.name, "2026-12-01T00:00:00Z");
    e.account_id = c.account.into();
    e.region = REGION.into();
    e.event_time = c.time;
    e.session_id = c.session.map(str::to_string);
    e
}

/// One run at `now`: fresh from `start`, or `--since last` from `last`. It
/// reads, per account, what CloudTrail shows at `now` in `[start, end]`
/// (EndTime inclusive, as LookupEvents), or fails the accounts in `failing`
/// after reading only their newest call.
fn run(
    last: Option<&LastRun>,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    calls: &[Call],
    failing: &[&str],
) -> (LastRun, Vec<SessionEvent>, Vec<Session>) {
    let flags = match last {
        Some(_) => FlagValues {
            since: Some("last".into()),
            ..FlagValues::default()
        },
        None => FlagValues {
            start: Some(start.to_rfc3339()),
            ..FlagValues::default()
        },
    };
    let mut cfg = resolve(&flags, None, now).unwrap();
    if let Some(last) = last {
        continue_from(&mut cfg.scan, last, None).unwrap();
    }
    let scan = &cfg.scan;
    let mut results = Vec::new();
    for account in [A, B] {
        let from = scan.start_of(account, REGION);
        let mut seen: Vec<SessionEvent> = calls
            .iter()
            .filter(|c| c.account == account && c.visible <= now)
            .filter(|c| from <= c.time && c.time <= scan.window.end)
            .map(event)
            .collect();
        let mut cov = RegionCoverage::new(RegionStatus::Ok);
        if failing.contains(&account) {
            // Newest first: a failed read has the newest page only.
            seen.sort_by_key(|e| std::cmp::Reverse(e.event_time));
            seen.truncate(1);
            cov.status = RegionStatus::Failed;
            cov.error = Some("gave up".into());
        }
        // The live source drops what LookupEvents gives at exactly the end.
        seen.retain(|e| e.event_time < scan.window.end);
        cov.events = seen.len() as u64;
        results.push(AccountResult {
            account: Account {
                id: account.into(),
                name: String::new(),
                state: "ACTIVE".into(),
            },
            coverage: AccountCoverage::from_regions(BTreeMap::from([(REGION.to_string(), cov)])),
            events: seen,
        });
    }
    let already = keep_new(scan, &mut results);
    let events: Vec<SessionEvent> = results.iter().flat_map(|r| r.events.clone()).collect();
    let accounts: Vec<AccountReport> = results
        .iter()
        .map(|r| AccountReport {
            account_id: r.account.id.clone(),
            account_name: String::new(),
            state: "ACTIVE".into(),
            coverage: r.coverage.clone(),
            events: r.events.len() as u64,
            sessions: 0,
            principals: 0,
            flags: Vec::new(),
            max_severity: None,
        })
        .collect();
    for a in &accounts {
        for (region, c) in &a.coverage.regions {
            let listed = events
                .iter()
                .filter(|e| e.account_id == a.account_id && e.region == *region)
                .count() as u64;
            assert_eq!(c.events, listed, "coverage counts follow what is kept");
        }
    }
    let context = joined(&scan.plan, &events);
    let mut all = events.clone();
    all.extend(context.iter().cloned());
    let sessions = crate::session::build_sessions(&all);
    let continuation = next(scan, &accounts, &events, &context, &sessions, true);
    let complete = failing.is_empty();
    let info = RunInfo {
        tool_version: "test".into(),
        started_at: now,
        finished_at: now,
        window: RunWindow {
            start: scan.window.start,
            end: scan.window.end,
            settled_until: scan.settled_until,
            partition_starts: scan.plan.partition_starts.clone(),
            account_starts: scan.plan.account_starts.clone(),
        },
        regions: vec![REGION.into()],
        event_names: Vec::new(),
        source: "lookup-events".into(),
        organization_id: None,
        caller_arn: None,
        config_digest: String::new(),
        complete,
        incomplete_reasons: Vec::new(),
        interrupted: false,
        stats: RunStats {
            already_reported: already,
            ..RunStats::default()
        },
        trail: None,
        athena: None,
        session_manager: None,
        security_hub: None,
        previous: scan.plan.previous.clone(),
        continuation: Some(continuation),
    };
    // Through JSON, as the next run reads it.
    let text =
        serde_json::to_string(&serde_json::json!({"schema": REPORT_SCHEMA, "run": info})).unwrap();
    let run = crate::report::last::read_header(text.as_bytes()).unwrap();
    assert_eq!(run, info);
    (
        LastRun {
            location: format!("run-{now}"),
            run,
        },
        events,
        sessions,
    )
}

fn ids(events: &[SessionEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

/// Every call lands in exactly one report of the chain: calls exactly on
/// each run's end and settled point, and calls that CloudTrail shows only
/// after the run whose window holds their time (within the settle margin).
#[test]
fn three_runs_hold_every_call_exactly_once() {
    let (n1, n2, n3) = (at(60), at(120), at(180));
    // settle = 15 min: run 1 is settled until 45, run 2 until 105, run 3 until 165.
    let calls = vec![
        call(A, "start", at(0), at(0)),
        call(A, "early", at(10), at(11)),
        call(A, "on-settled-1", at(45), at(46)),
        call(A, "late-in-tail-1", at(50), at(65)),
        call(A, "on-end-1", at(60), at(60)),
        call(A, "before-end-1", at(59), at(59)),
        // In run 2's tail, shown only after run 2: run 3 reads it.
        call(B, "b-late-twice", at(108), at(130)),
        // Shown 72 minutes late, beyond the 15-minute margin: no run reads it
        // (scan.settle is the promise's assumption).
        call(B, "too-late", at(58), at(130)),
        call(A, "on-settled-2", at(105), at(106)),
        call(B, "b-on-end-2", at(120), at(121)),
        call(A, "late-in-tail-2", at(110), at(125)),
        call(A, "on-end-3", at(180), at(180)),
        call(B, "b-in-3", at(170), at(171)),
    ];
    let (r1, e1, _) = run(None, at(0), n1, &calls, &[]);
    assert_eq!(r1.run.window.settled_until, at(45));
    assert!(
        !ids(&e1).contains(&"on-end-1".to_string()),
        "the end is the next window's"
    );
    assert!(ids(&e1).contains(&"on-settled-1".to_string()));
    let c1 = r1.run.continuation.as_ref().unwrap();
    assert_eq!(c1.start, at(45));
    let tail: Vec<&str> = c1.reported[A][REGION]
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(tail, ["on-settled-1", "before-end-1"]);

    let (r2, e2, _) = run(Some(&r1), at(0), n2, &calls, &[]);
    assert_eq!(r2.run.window.start, at(45));
    assert_eq!(r2.run.previous.as_ref().unwrap().location, r1.location);
    assert_eq!(
        r2.run.stats.already_reported, 2,
        "the tail read again is left out"
    );
    let (_, e3, _) = run(Some(&r2), at(0), n3, &calls, &[]);

    let mut all: Vec<String> = [e1, e2, e3].iter().flat_map(|e| ids(e)).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, all.len(), "no call in two reports");
    let want: BTreeSet<String> = calls
        .iter()
        .filter(|c| c.time < n3 && c.visible <= n3 && c.id != "too-late")
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(
        !want.contains("on-end-3"),
        "beyond the last end: the next run's"
    );
}

/// A partition that fails is read again by the next run from its own start;
/// what the failed read did report is not reported twice.
#[test]
fn a_failed_partition_is_read_again_from_its_start() {
    let calls = vec![
        call(A, "a1", at(5), at(5)),
        call(B, "b-old", at(5), at(5)),
        call(B, "b-mid", at(20), at(20)),
        call(B, "b-newest", at(40), at(40)),
        call(B, "b-next", at(100), at(100)),
    ];
    let (r1, e1, _) = run(None, at(0), at(60), &calls, &[B]);
    assert_eq!(ids(&e1), ["a1", "b-newest"]);
    let c1 = r1.run.continuation.as_ref().unwrap();
    assert_eq!(c1.start, at(45));
    assert_eq!(
        c1.partition_starts[B][REGION],
        at(0),
        "B again from run 1's start"
    );
    assert!(!c1.partition_starts.contains_key(A));

    // Run 2 fails B again: its start stays, and both runs' reads are carried.
    let (r2, e2, _) = run(Some(&r1), at(0), at(90), &calls, &[B]);
    assert_eq!(r2.run.window.start_of(B, REGION), at(0));
    assert!(e2.is_empty(), "{:?}", ids(&e2));
    let c2 = r2.run.continuation.as_ref().unwrap();
    assert_eq!(c2.partition_starts[B][REGION], at(0));

    let (r3, e3, _) = run(Some(&r2), at(0), at(120), &calls, &[]);
    assert_eq!(ids(&e3), ["b-old", "b-mid", "b-next"]);
    assert_eq!(r3.run.stats.already_reported, 1, "b-newest was in run 1");
    assert!(r3.run.continuation.unwrap().partition_starts.is_empty());
}

/// A session started in one run and ended in the next is joined across them;
/// its Start is carried in the report, not read twice.
#[test]
fn sessions_open_at_the_end_of_a_run_are_joined_in_the_next() {
    let mut start = call(A, "s-start", at(10), at(10));
    start.session = Some("alice-0a1b");
    let mut resume = call(A, "s-resume", at(70), at(70));
    resume.name = "ResumeSession";
    resume.session = Some("alice-0a1b");
    let mut end = call(A, "s-end", at(100), at(100));
    end.name = "TerminateSession";
    end.session = Some("alice-0a1b");
    let mut stale = call(
        A,
        "stale-start",
        t("2026-11-29T00:00:00Z"),
        t("2026-11-29T00:00:00Z"),
    );
    stale.session = Some("bob-ffff");
    let calls = vec![stale, start, resume, end];
    let (r1, _, _) = run(None, t("2026-11-28T00:00:00Z"), at(60), &calls, &[]);
    let open: Vec<&str> = r1
        .run
        .continuation
        .as_ref()
        .unwrap()
        .open_sessions
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(
        open,
        ["s-start"],
        "a session idle for more than a day is not carried"
    );

    let (r2, e2, s2) = run(Some(&r1), at(0), at(90), &calls, &[]);
    assert_eq!(ids(&e2), ["s-resume"]);
    let s = s2.iter().find(|s| s.session_id == "alice-0a1b").unwrap();
    assert_eq!(
        s.start_event_id.as_deref(),
        Some("s-start"),
        "joined to run 1's Start"
    );
    let open: Vec<&str> = r2
        .run
        .continuation
        .as_ref()
        .unwrap()
        .open_sessions
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(open, ["s-start", "s-resume"]);

    let (r3, e3, s3) = run(Some(&r2), at(0), at(130), &calls, &[]);
    assert_eq!(ids(&e3), ["s-end"]);
    let s = s3.iter().find(|s| s.session_id == "alice-0a1b").unwrap();
    assert_eq!(s.event_ids.len(), 3);
    assert!(s.end_time.is_some() && s.start_time.is_some());
    assert!(
        r3.run.continuation.unwrap().open_sessions.is_empty(),
        "ended: nothing to carry"
    );
}

#[test]
fn a_chain_refuses_what_it_cannot_continue() {
    let calls = vec![call(A, "a", at(1), at(1))];
    let (mut r1, _, _) = run(None, at(0), at(60), &calls, &[]);
    let mut cfg = resolve(
        &FlagValues {
            since: Some("last".into()),
            ..FlagValues::default()
        },
        None,
        at(45),
    )
    .unwrap();
    let e = continue_from(&mut cfg.scan, &r1, None).unwrap_err();
    assert!(matches!(e, ChainError::NothingNew { .. }), "{e}");
    assert!(
        e.to_string().contains("settled until 2026-12-01T00:45:00Z"),
        "{e}"
    );

    let mut cfg = resolve(
        &FlagValues {
            since: Some("last".into()),
            ..FlagValues::default()
        },
        None,
        at(120),
    )
    .unwrap();
    let e = continue_from(&mut cfg.scan, &r1, Some(at(50))).unwrap_err();
    assert!(matches!(e, ChainError::TooOld { .. }), "{e}");

    r1.run.continuation = None;
    let e = continue_from(&mut cfg.scan, &r1, None).unwrap_err();
    assert!(
        e.to_string().contains("--since DURATION or --start TIME"),
        "{e}"
    );
}

#[test]
fn an_interrupted_run_keeps_the_start_of_what_it_never_reached() {
    let mut cfg = resolve(
        &FlagValues {
            start: Some(at(0).to_rfc3339()),
            ..FlagValues::default()
        },
        None,
        at(60),
    )
    .unwrap();
    cfg.scan.plan.partition_starts = BTreeMap::from([(
        B.to_string(),
        BTreeMap::from([(REGION.to_string(), at(-30))]),
    )]);
    let ok = AccountReport {
        account_id: A.into(),
        account_name: String::new(),
        state: "ACTIVE".into(),
        coverage: AccountCoverage::from_regions(BTreeMap::from([(
            REGION.to_string(),
            RegionCoverage::new(RegionStatus::Ok),
        )])),
        events: 0,
        sessions: 0,
        principals: 0,
        flags: Vec::new(),
        max_severity: None,
    };
    // Listing not whole: what the run did not name starts where it started.
    let c = next(&cfg.scan, std::slice::from_ref(&ok), &[], &[], &[], false);
    assert_eq!(c.start, at(0));
    assert_eq!(c.partition_starts[A][REGION], at(45));
    assert_eq!(c.partition_starts[B][REGION], at(-30));
    // Whole: a partition the run did not name is new (or gone), and starts at the settled point.
    let c = next(&cfg.scan, &[ok], &[], &[], &[], true);
    assert_eq!(c.start, at(45));
    assert!(c.partition_starts.is_empty());
}

fn line(account: &str, status: AccountStatus, regions: &[(&str, RegionStatus)]) -> AccountReport {
    let mut coverage = AccountCoverage::from_regions(
        regions
            .iter()
            .map(|(r, s)| (r.to_string(), RegionCoverage::new(*s)))
            .collect(),
    );
    coverage.status = status;
    AccountReport {
        account_id: account.into(),
        account_name: String::new(),
        state: "ACTIVE".into(),
        coverage,
        events: 0,
        sessions: 0,
        principals: 0,
        flags: Vec::new(),
        max_severity: None,
    }
}

/// Under `--regions all`, an account whose role failed names no region: the
/// next run reads every region of it from this run's start, and the run
/// after that (the account read in full) goes back to the settled point.
#[test]
fn an_account_that_named_no_region_is_read_again_from_its_start() {
    let flags = |start: Option<DateTime<Utc>>| FlagValues {
        start: start.map(|s| s.to_rfc3339()),
        since: start.is_none().then(|| "last".to_string()),
        regions: Some(vec!["all".into()]),
        ..FlagValues::default()
    };
    let cfg = resolve(&flags(Some(at(0))), None, at(60)).unwrap();
    assert_eq!(cfg.scan.regions, crate::config::RegionSelection::All);
    let failed = line(A, AccountStatus::Failed, &[]);
    let ok = line(B, AccountStatus::Complete, &[(REGION, RegionStatus::Ok)]);
    let c = next(&cfg.scan, &[failed, ok.clone()], &[], &[], &[], true);
    assert_eq!(c.start, at(45));
    assert_eq!(c.account_starts, BTreeMap::from([(A.to_string(), at(0))]));
    assert!(c.partition_starts.is_empty(), "{:?}", c.partition_starts);

    let mut run = RunInfo {
        tool_version: "test".into(),
        started_at: at(60),
        finished_at: at(60),
        window: RunWindow {
            start: at(0),
            end: at(60),
            settled_until: at(45),
            partition_starts: BTreeMap::new(),
            account_starts: BTreeMap::new(),
        },
        regions: Vec::new(),
        event_names: Vec::new(),
        source: "lookup-events".into(),
        organization_id: None,
        caller_arn: None,
        config_digest: String::new(),
        complete: false,
        incomplete_reasons: Vec::new(),
        interrupted: false,
        stats: RunStats::default(),
        trail: None,
        athena: None,
        session_manager: None,
        security_hub: None,
        previous: None,
        continuation: Some(c),
    };
    let last = LastRun {
        location: "run-1".into(),
        run: run.clone(),
    };
    let mut cfg2 = resolve(&flags(None), None, at(120)).unwrap();
    continue_from(&mut cfg2.scan, &last, None).unwrap();
    let s = &cfg2.scan;
    assert_eq!(s.start_of(A, "eu-central-1"), at(0), "every region of A");
    assert_eq!(s.start_of(B, REGION), at(45));
    assert_eq!(s.read_window().start, at(0));

    // Run 2: A's regions are listed this time, but one fails: that one goes
    // on from A's start, the rest from the settled point.
    let partial = line(
        A,
        AccountStatus::Partial,
        &[
            (REGION, RegionStatus::Ok),
            ("eu-west-1", RegionStatus::Failed),
        ],
    );
    let c2 = next(s, &[partial, ok.clone()], &[], &[], &[], true);
    assert_eq!(c2.start, at(105));
    assert_eq!(c2.account_starts[A], at(0));
    assert_eq!(c2.partition_starts[A][REGION], at(105));
    assert_eq!(c2.partition_starts[A]["eu-west-1"], at(0));

    // Run 3: A read in full: nothing carried.
    run.continuation = Some(c2);
    let last = LastRun {
        location: "run-2".into(),
        run,
    };
    let mut cfg3 = resolve(&flags(None), None, at(180)).unwrap();
    continue_from(&mut cfg3.scan, &last, None).unwrap();
    let whole = line(A, AccountStatus::Complete, &[(REGION, RegionStatus::Ok)]);
    let c3 = next(&cfg3.scan, &[whole, ok], &[], &[], &[], true);
    assert!(c3.account_starts.is_empty() && c3.partition_starts.is_empty());

    // With a list of regions every region is named: no account start.
    let listed = resolve(
        &FlagValues {
            start: Some(at(0).to_rfc3339()),
            regions: Some(vec![REGION.into()]),
            ..FlagValues::default()
        },
        None,
        at(60),
    )
    .unwrap();
    let partial = line(A, AccountStatus::Partial, &[(REGION, RegionStatus::Failed)]);
    let c = next(&listed.scan, &[partial], &[], &[], &[], true);
    assert!(c.account_starts.is_empty());
    assert_eq!(c.partition_starts[A][REGION], at(0));
}
