//! Fail points, for tests of what a crash does: `SSM_SESSION_AUDIT_FAIL_POINT=account:<id>`
//! makes the scan of that account panic, as a bug would. A crash must make the
//! account `failed` and the run incomplete, never a missing line; only a test can
//! show that, and only with a real crash. Unset (always, outside tests) it costs
//! one cached lookup.

use std::sync::OnceLock;

/// The environment variable that names the fail point.
pub const VAR: &str = "SSM_SESSION_AUDIT_FAIL_POINT";

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT
        .get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Panics when the fail point `place:key` is armed.
pub fn hit(place: &str, key: &str) {
    if let Some(point) = armed() {
        if point.split_once(':') == Some((place, key)) {
            panic!("fail point {point} ({VAR})");
        }
    }
}
