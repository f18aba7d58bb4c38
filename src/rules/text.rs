//! Detail lines: one line a human can read, caller-chosen text escaped and capped.

use super::*;

/// Record text for a detail line: control characters escaped and at most
/// 120 characters, so a hostile field cannot break the line or flood it.
pub(super) fn clean(s: &str) -> String {
    crate::event::escape_capped(s, 120)
}

/// Distinct values, sorted, at most five named.
pub(super) fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let distinct: BTreeSet<&str> = items.filter(|s| !s.is_empty()).collect();
    let mut shown: Vec<String> = distinct.iter().take(5).map(|s| clean(s)).collect();
    if distinct.len() > 5 {
        shown.push(format!("and {} more", distinct.len() - 5));
    }
    shown.join(", ")
}

pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn time_span(times: impl Iterator<Item = DateTime<Utc>>) -> String {
    let times: Vec<DateTime<Utc>> = times.collect();
    match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("at {}", stamp(*a)),
        (Some(a), Some(b)) => format!("from {} to {}", stamp(*a), stamp(*b)),
        _ => String::new(),
    }
}

/// `9h30m`, `1h`, `45m`, `30s`, `2d3h`.
pub(super) fn human(d: TimeDelta) -> String {
    let total = d.num_seconds();
    if total <= 0 {
        return format!("{total}s");
    }
    let parts = [
        (total / 86_400, "d"),
        (total % 86_400 / 3_600, "h"),
        (total % 3_600 / 60, "m"),
        (total % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}
