//! Session Manager (JSON 1.1, `AmazonSSM.*`): `DescribeSessions` (`Active` or
//! `History`, the documented filters, pages of at most `MaxResults` ≤ 200,
//! tokens bound to the parameters, newest first) and `GetDocument` (the
//! region's preferences, the planted custom documents, the AWS-owned session
//! documents), as `ssm_data` derives them from the CloudTrail plan. The
//! partition's rate, an audit role without the permissions, and injected 500s.

use super::*;
use crate::ssm_data::Hist;

const FILTER_KEYS: [&str; 7] = [
    "InvokedAfter",
    "InvokedBefore",
    "Target",
    "Owner",
    "Status",
    "SessionId",
    "AccessType",
];

/// The simulator's "now" for Session Manager: the later of the clock and the
/// window's end (records never lie in the future of their own history).
pub(super) fn ssm_now(world: &World) -> i64 {
    Utc::now().timestamp().max(world.cfg.window_end.timestamp())
}

pub(super) fn ssm_call(
    state: &State,
    op: &str,
    caller: &Caller,
    auth: &Auth,
    p: &Value,
    serial: u64,
) -> Reply {
    let world = &state.world;
    let c = &state.counters;
    let account = caller.account();
    let region = auth
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_string());
    if !world.org.region_enabled(account, &region) {
        c.unrecognized_client.fetch_add(1, Ordering::Relaxed);
        return json_error(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid",
        );
    }
    if world.ssm_denied(account) {
        c.access_denied.fetch_add(1, Ordering::Relaxed);
        let who = match caller {
            Caller::Management => management_arn(world),
            Caller::Issued(i) | Caller::External(i) => i.arn.clone(),
        };
        let acct = &world.org.accounts[account].id;
        let resource = match op {
            "GetDocument" => format!(
                "arn:aws:ssm:{region}:{acct}:document/{}",
                p.get("Name").and_then(Value::as_str).unwrap_or("")
            ),
            _ => format!("arn:aws:ssm:{region}:{acct}:*"),
        };
        return json_error(
            400,
            "AccessDeniedException",
            format!("User: {who} is not authorized to perform: ssm:{op} on resource: {resource} because no identity-based policy allows the ssm:{op} action"),
        );
    }
    if !state.admit_ssm(account, &region) {
        c.ssm_throttled.fetch_add(1, Ordering::Relaxed);
        return json_error(400, "ThrottlingException", "Rate exceeded");
    }
    if world.cfg.ssm.error_rate > 0.0 && state.roll(serial, 0x55E) < world.cfg.ssm.error_rate {
        c.injected_errors.fetch_add(1, Ordering::Relaxed);
        return json_error(
            500,
            "InternalServerError",
            "An error occurred on the server side.",
        );
    }
    let Some(ri) = world.region_index(&region) else {
        // A region the organization does not use: enabled, and empty.
        return match op {
            "DescribeSessions" => Reply::Json("{\"Sessions\":[]}".into()),
            _ => invalid_document(),
        };
    };
    let reply = match op {
        "DescribeSessions" => describe_sessions(state, account, ri, &region, p, serial),
        _ => get_document(world, account, ri, p),
    };
    if let Reply::JsonError { .. } = reply {
        c.client_errors.fetch_add(1, Ordering::Relaxed);
    }
    reply
}

fn validation(message: impl Into<String>) -> Reply {
    json_error(400, "ValidationException", message)
}

fn invalid_document() -> Reply {
    json_error(
        400,
        "InvalidDocument",
        "The specified document does not exist.",
    )
}

fn epoch(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp())
}

fn describe_sessions(
    state: &State,
    account: usize,
    ri: usize,
    region: &str,
    p: &Value,
    serial: u64,
) -> Reply {
    let world = &state.world;
    let active = match p.get("State").and_then(Value::as_str) {
        Some("Active") => true,
        Some("History") => false,
        Some(other) => {
            return validation(format!(
                "1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]"
            ))
        }
        None => {
            return validation(
                "1 validation error detected: Value null at 'state' failed to satisfy constraint: Member must not be null",
            )
        }
    };
    let max = match p.get("MaxResults") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=200) => n as usize,
            _ => {
                return validation(
                    "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 200",
                )
            }
        },
    };
    let max = match world.cfg.ssm.page_size {
        Some(n) => max.min(n.max(1)),
        None => max,
    };
    let mut filters: Vec<(&str, &str)> = Vec::new();
    match p.get("Filters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for f in list {
                let key = f.get("key").and_then(Value::as_str);
                let value = f.get("value").and_then(Value::as_str);
                match (
                    key.and_then(|k| FILTER_KEYS.iter().find(|x| **x == k)),
                    value,
                ) {
                    (Some(k), Some(v)) if !v.is_empty() => filters.push((k, v)),
                    _ => return validation("The filter key or value is not valid."),
                }
            }
        }
        Some(_) => return json_error(400, "SerializationException", "Filters must be a list"),
    }
    let mut after = i64::MIN;
    let mut before = i64::MAX;
    for (k, v) in &filters {
        match *k {
            "InvokedAfter" => match epoch(v) {
                Some(t) => after = after.max(t),
                None => return validation(format!("InvokedAfter {v:?} is not a timestamp")),
            },
            "InvokedBefore" => match epoch(v) {
                Some(t) => before = before.min(t),
                None => return validation(format!("InvokedBefore {v:?} is not a timestamp")),
            },
            _ => {}
        }
    }
    let keep = |h: &Hist| {
        h.active == active
            && h.start >= after
            && h.start < before
            && filters.iter().all(|(k, v)| match *k {
                "Target" => h.target == *v,
                "Owner" => h.owner == *v,
                "Status" => h.status == *v,
                "SessionId" => h.id == *v,
                "AccessType" => h.access_type == *v,
                _ => true,
            })
    };
    let mut key_text = format!("{active}");
    for (k, v) in &filters {
        key_text.push_str(&format!("|{k}={v}"));
    }
    let check = hash(&[
        state.seed_mix,
        account as u64,
        hash_str(region),
        hash_str(&key_text),
        0x55D,
    ]);
    let (mut from, mut page_no) = (0usize, 0u64);
    if let Some(t) = p.get("NextToken").and_then(Value::as_str) {
        match parse_lookup_token(t, check) {
            Some((i, n)) => (from, page_no) = (i, n),
            None => return json_error(400, "InvalidNextToken", "The specified token isn't valid."),
        }
    }
    let _ = serial;
    if world.cfg.ssm.omit_sessions {
        return Reply::Json("{}".into());
    }
    if world.cfg.ssm.repeat_next_token {
        let again = p
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| lookup_token(check, 0, 0));
        return Reply::Json(json!({ "Sessions": [], "NextToken": again }).to_string());
    }
    let sessions: Vec<Hist> = world
        .ssm_sessions(account, ri, ssm_now(world))
        .into_iter()
        .filter(keep)
        .collect();
    let page: Vec<Value> = sessions
        .iter()
        .skip(from)
        .take(max)
        .map(|h| {
            let mut v = json!({
                "SessionId": h.id,
                "Target": h.target,
                "Status": h.status,
                "StartDate": h.start,
                "DocumentName": h.document,
                "Owner": h.owner,
                "AccessType": h.access_type,
                "OutputUrl": {},
            });
            if let Some(e) = h.end {
                v["EndDate"] = json!(e);
            }
            if let Some(r) = &h.reason {
                v["Reason"] = json!(r);
            }
            v
        })
        .collect();
    let mut out = json!({ "Sessions": page });
    if from + max < sessions.len() {
        out["NextToken"] = json!(lookup_token(check, from + max, page_no + 1));
    }
    Reply::Json(out.to_string())
}

fn get_document(world: &World, account: usize, ri: usize, p: &Value) -> Reply {
    let Some(name) = p
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return validation(
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null",
        );
    };
    match p.get("DocumentFormat").and_then(Value::as_str) {
        None | Some("JSON") => {}
        Some("YAML") | Some("TEXT") => {
            return validation("simulator: only DocumentFormat JSON is served")
        }
        Some(other) => return validation(format!("DocumentFormat {other:?} is not valid")),
    }
    // A document may be named by its ARN.
    let short = name.rsplit_once(":document/").map_or(name, |(_, n)| n);
    match world.document(account, ri, short) {
        None => invalid_document(),
        Some(content) => Reply::Json(
            json!({
                "Name": short,
                "CreatedDate": world.cfg.window_start().timestamp(),
                "DocumentVersion": "1",
                "Status": "Active",
                "Content": content,
                "DocumentType": "Session",
                "DocumentFormat": "JSON",
                "Requires": [],
                "AttachmentsContent": [],
            })
            .to_string(),
        ),
    }
}
