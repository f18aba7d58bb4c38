//! Rules about bursts of one actor in one account, across its regions.

use super::*;

/// What a window must hold to qualify, kept up to date as calls enter and
/// leave it, so a busy principal costs O(n log n), not O(n²).
pub(super) trait WindowTest {
    fn enter(&mut self, e: &SessionEvent);
    fn leave(&mut self, e: &SessionEvent);
    fn qualifies(&self) -> bool;
}

pub(super) struct AtLeast {
    n: usize,
    threshold: usize,
}

impl WindowTest for AtLeast {
    fn enter(&mut self, _: &SessionEvent) {
        self.n += 1;
    }
    fn leave(&mut self, _: &SessionEvent) {
        self.n -= 1;
    }
    fn qualifies(&self) -> bool {
        self.n >= self.threshold
    }
}

pub(super) struct MoreTargetsThan {
    targets: BTreeMap<String, usize>,
    limit: usize,
}

impl WindowTest for MoreTargetsThan {
    fn enter(&mut self, e: &SessionEvent) {
        *self
            .targets
            .entry(e.target.clone().unwrap_or_default())
            .or_default() += 1;
    }
    fn leave(&mut self, e: &SessionEvent) {
        let key = e.target.clone().unwrap_or_default();
        if let Some(n) = self.targets.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.targets.remove(&key);
            }
        }
    }
    fn qualifies(&self) -> bool {
        self.targets.len() > self.limit
    }
}

/// Splits time-sorted `calls` into bursts: the calls of every qualifying window
/// `[t, t + window]` (inclusive), with qualifying windows that overlap or lie
/// within `window` of each other merged into one burst.
pub(super) fn find_bursts<'a>(
    calls: &[&'a SessionEvent],
    window: TimeDelta,
    mut test: impl WindowTest,
) -> Vec<Vec<&'a SessionEvent>> {
    // A negative window (bad config) must still hold the call that opens it.
    let window = window.max(TimeDelta::zero());
    let mut marked = vec![false; calls.len()];
    let mut end = 0; // calls[i..end] is the window starting at calls[i]
    let mut marked_to = 0;
    for i in 0..calls.len() {
        while end < calls.len() && calls[end].event_time - calls[i].event_time <= window {
            test.enter(calls[end]);
            end += 1;
        }
        if test.qualifies() {
            for m in &mut marked[marked_to.max(i)..end] {
                *m = true;
            }
            marked_to = end;
        }
        test.leave(calls[i]);
    }

    let mut bursts: Vec<Vec<&SessionEvent>> = Vec::new();
    for (call, _) in calls.iter().zip(&marked).filter(|(_, m)| **m) {
        match bursts.last_mut() {
            Some(b)
                if b.last()
                    .is_some_and(|l| call.event_time - l.event_time <= window) =>
            {
                b.push(call)
            }
            _ => bursts.push(vec![call]),
        }
    }
    bursts
}

pub(super) fn bursts(events: &[&SessionEvent], rules: &RuleConfig, out: &mut Vec<Pending>) {
    // Per (account, actor), across the account's regions: an actor spraying
    // regions, or session names, is one burst. `events` is time-sorted, so each
    // group is.
    let mut denied: BTreeMap<(&str, &str), Vec<&SessionEvent>> = BTreeMap::new();
    let mut starts: BTreeMap<(&str, &str), Vec<&SessionEvent>> = BTreeMap::new();
    for &e in events {
        let key = (e.account_id.as_str(), e.actor());
        let opens = e.event_name == START_SESSION || e.event_name == RESUME_SESSION;
        if e.is_denied() && opens {
            denied.entry(key).or_default().push(e);
        }
        // An attempt on a target counts, allowed or denied; a call that failed
        // for another reason (the agent offline, a bad document) does not.
        if e.event_name == START_SESSION && e.target.is_some() && (!e.is_failed() || e.is_denied())
        {
            starts.entry(key).or_default().push(e);
        }
    }

    for ((account, actor), calls) in denied {
        let test = AtLeast {
            n: 0,
            threshold: rules.denied_threshold.max(1),
        };
        for burst in find_bursts(&calls, rules.denied_window, test) {
            let codes = list(burst.iter().filter_map(|e| e.error_code.as_deref()));
            let detail = format!(
                "{}{} had {} denied StartSession/ResumeSession calls ({codes}) {} (threshold {} within {}){}",
                clean(actor),
                principals_suffix(&burst),
                burst.len(),
                time_span(burst.iter().map(|e| e.event_time)),
                rules.denied_threshold,
                human(rules.denied_window),
                targets_suffix(&burst)
            );
            out.push(burst_finding(
                Flag::DeniedAttempts,
                account,
                actor,
                &burst,
                detail,
            ));
        }
    }

    for ((account, actor), calls) in starts {
        let test = MoreTargetsThan {
            targets: BTreeMap::new(),
            limit: rules.fanout_targets,
        };
        for burst in find_bursts(&calls, rules.fanout_window, test) {
            let targets: BTreeSet<&str> =
                burst.iter().filter_map(|e| e.target.as_deref()).collect();
            let denied = burst.iter().filter(|e| e.is_denied()).count();
            let denied = if denied > 0 {
                format!(" ({denied} denied)")
            } else {
                String::new()
            };
            let detail = format!(
                "{}{} started {} sessions{denied} on {} distinct targets {} (limit {} within {}): {}",
                clean(actor),
                principals_suffix(&burst),
                burst.len(),
                targets.len(),
                time_span(burst.iter().map(|e| e.event_time)),
                rules.fanout_targets,
                human(rules.fanout_window),
                list(targets.iter().copied())
            );
            out.push(burst_finding(
                Flag::TargetFanout,
                account,
                actor,
                &burst,
                detail,
            ));
        }
    }
}

/// " as 5 principals (a, b, …)" when the actor acted under more than one
/// principal ARN (rotating session names), else nothing.
pub(super) fn principals_suffix(burst: &[&SessionEvent]) -> String {
    let principals: BTreeSet<&str> = burst.iter().map(|e| e.principal()).collect();
    if principals.len() < 2 {
        return String::new();
    }
    format!(
        " as {} principals ({})",
        principals.len(),
        list(principals.into_iter())
    )
}

pub(super) fn targets_suffix(burst: &[&SessionEvent]) -> String {
    let targets = list(burst.iter().filter_map(|e| e.target.as_deref()));
    if targets.is_empty() {
        String::new()
    } else {
        format!(" on {targets}")
    }
}

/// A burst may span regions of its account: the finding's region lists them,
/// sorted and comma-separated.
pub(super) fn burst_finding(
    flag: Flag,
    account: &str,
    actor: &str,
    burst: &[&SessionEvent],
    detail: String,
) -> Pending {
    let regions: BTreeSet<&str> = burst.iter().map(|e| e.region.as_str()).collect();
    let region = regions.into_iter().collect::<Vec<_>>().join(",");
    let ids: Vec<(&str, DateTime<Utc>)> = burst
        .iter()
        .map(|e| (e.event_id.as_str(), e.event_time))
        .collect();
    pending(
        flag,
        About {
            account_id: account,
            region: &region,
            actor,
            principal_arn: &burst[0].principal_arn,
        },
        single_session(burst),
        &ids,
        detail,
    )
}
