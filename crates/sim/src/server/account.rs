//! Account Management `ListRegions` (REST-JSON, `POST /listRegions`): which
//! regions an account has enabled. Only the management account may ask about a
//! member (`AccountId`); it omits the id for itself. Every region of the
//! simulated organization is listed (default ones `ENABLED_BY_DEFAULT`, opt-in
//! ones `ENABLED` or `DISABLED` per account), then every other default region
//! (`ENABLED_BY_DEFAULT`, holding nothing) and a few opt-in regions the
//! organization never uses (`DISABLED`), as AWS lists every region.

use super::*;
use crate::org::is_default_region;

/// Opt-in regions every simulated account lists, disabled: `--regions all`
/// must read only what an account has enabled, never a built-in list.
pub(super) const UNUSED_OPT_IN: [&str; 3] = ["af-south-1", "me-south-1", "il-central-1"];

/// Every region an account lists, with its opt status, sorted by name.
pub(super) fn opt_statuses(state: &State, account: usize) -> Vec<(String, &'static str)> {
    let world = &state.world;
    let mut out: Vec<(String, &'static str)> = world
        .cfg
        .regions
        .iter()
        .map(|r| {
            let status = if is_default_region(r) {
                "ENABLED_BY_DEFAULT"
            } else if world.org.region_enabled(account, r) {
                "ENABLED"
            } else {
                "DISABLED"
            };
            (r.clone(), status)
        })
        .collect();
    for r in crate::org::DEFAULT_REGIONS {
        if !out.iter().any(|(x, _)| x == r) {
            out.push((r.to_string(), "ENABLED_BY_DEFAULT"));
        }
    }
    for r in UNUSED_OPT_IN {
        if !out.iter().any(|(x, _)| x == r) {
            out.push((r.to_string(), "DISABLED"));
        }
    }
    out.sort();
    out
}

pub(super) fn list_regions(state: &State, caller: &Caller, body: &[u8]) -> Reply {
    let world = &state.world;
    let c = &state.counters;
    if world.cfg.faults.list_regions_denied {
        c.access_denied.fetch_add(1, Ordering::Relaxed);
        return json_error(
            403,
            "AccessDeniedException",
            "You don't have permissions to access this resource: trusted access for AWS Account Management is not enabled",
        );
    }
    let p: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let asked = p.get("AccountId").and_then(Value::as_str);
    let account = match (asked, caller) {
        // Its own regions: anyone may ask.
        (None, _) => caller.account(),
        (Some(id), Caller::Management) => {
            match world.org.accounts.iter().position(|a| a.id == id) {
                Some(i) => i,
                None => {
                    c.client_errors.fetch_add(1, Ordering::Relaxed);
                    return json_error(
                        404,
                        "ResourceNotFoundException",
                        format!("The account {id} is not a member of the organization"),
                    );
                }
            }
        }
        (Some(id), _) if Some(id) == Some(world.org.accounts[caller.account()].id.as_str()) => {
            caller.account()
        }
        (Some(_), _) => {
            c.access_denied.fetch_add(1, Ordering::Relaxed);
            return json_error(
                403,
                "AccessDeniedException",
                "Only the management account or a delegated administrator may ask about another account",
            );
        }
    };
    let all = opt_statuses(state, account);
    let max = p
        .get("MaxResults")
        .and_then(Value::as_u64)
        .unwrap_or(20)
        .clamp(1, 50) as usize;
    let from = p
        .get("NextToken")
        .and_then(Value::as_str)
        .and_then(|t| t.strip_prefix("REG"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(all.len());
    let end = (from + max).min(all.len());
    let regions: Vec<Value> = all[from..end]
        .iter()
        .map(|(r, s)| json!({ "RegionName": r, "RegionOptStatus": s }))
        .collect();
    let mut out = json!({ "Regions": regions });
    if end < all.len() {
        out["NextToken"] = json!(format!("REG{end}"));
    }
    Reply::Json(out.to_string())
}
