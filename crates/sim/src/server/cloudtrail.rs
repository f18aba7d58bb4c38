//! CloudTrail `LookupEvents` (JSON 1.1): one lookup attribute, newest first,
//! pages and tokens, the partition's 2 calls/s, and the planted faults.

use super::*;

pub(super) const LOOKUP_KEYS: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

pub(super) fn lookup_events(
    state: &State,
    caller: &Caller,
    auth: &Auth,
    p: &Value,
    serial: u64,
) -> (Reply, Duration) {
    let world = &state.world;
    let c = &state.counters;
    let faults = &world.cfg.faults;
    let account = caller.account();
    let region = auth
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_string());
    let here = |list: &[(usize, String)]| list.iter().any(|(a, r)| *a == account && *r == region);
    if !world.org.region_enabled(account, &region) || here(&faults.unrecognized_partitions) {
        c.unrecognized_client.fetch_add(1, Ordering::Relaxed);
        return (
            json_error(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid",
            ),
            Duration::ZERO,
        );
    }
    if !state.admit(account, &region) {
        c.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            json_error(400, "ThrottlingException", "Rate exceeded"),
            Duration::ZERO,
        );
    }
    let fault = state.partition_fault(account, &region);
    let has_token = p.get("NextToken").and_then(Value::as_str).is_some();
    if fault == Some(PartitionFault::Always)
        || (fault == Some(PartitionFault::AfterFirstPage) && has_token)
    {
        c.client_errors.fetch_add(1, Ordering::Relaxed);
        return (
            json_error(
                400,
                "AccessDeniedException",
                "simulator: this partition is set to fail",
            ),
            Duration::ZERO,
        );
    }
    let roll = state.roll(serial, 0xFA17);
    let mut extra = Duration::ZERO;
    let mut reset = false;
    if roll < faults.error_rate {
        c.injected_errors.fetch_add(1, Ordering::Relaxed);
        let reply = if state.roll(serial, 0x503) < 0.5 {
            json_error(500, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
        } else {
            json_error(
                503,
                "ServiceUnavailable",
                "Service is unavailable. Try again later.",
            )
        };
        return (reply, Duration::ZERO);
    } else if roll < faults.error_rate + faults.slow_rate {
        c.injected_slow.fetch_add(1, Ordering::Relaxed);
        extra = faults.slow_delay;
    } else if roll < faults.error_rate + faults.slow_rate + faults.reset_rate {
        c.injected_resets.fetch_add(1, Ordering::Relaxed);
        reset = true;
    }
    // Not CloudTrail speaking: a 200 without `Events` (a proxy, a wrong endpoint).
    if here(&faults.missing_events_partitions)
        || state.roll(serial, 0xE7E7) < faults.missing_events_rate
    {
        c.injected_errors.fetch_add(1, Ordering::Relaxed);
        return (Reply::Json("{}".into()), extra);
    }
    let sent = p.get("NextToken").and_then(Value::as_str);
    if let (Some(t), true) = (sent, here(&faults.repeat_token_partitions)) {
        // The token it was sent, again, forever.
        c.injected_errors.fetch_add(1, Ordering::Relaxed);
        let body = format!("{{\"Events\":[],\"NextToken\":{}}}", json!(t));
        return (Reply::Json(body), extra);
    }
    let reply = match lookup_page(state, account, &region, p, serial) {
        Ok(body) if reset => Reply::Reset(body),
        Ok(body) => Reply::Json(body),
        Err(e) => {
            c.client_errors.fetch_add(1, Ordering::Relaxed);
            e
        }
    };
    (reply, extra)
}

pub(super) fn lookup_page(
    state: &State,
    account: usize,
    region: &str,
    p: &Value,
    serial: u64,
) -> Result<String, Reply> {
    let world = &state.world;
    let mut filter: Option<(&str, String)> = None;
    match p.get("LookupAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > 1 {
                return Err(json_error(
                    400,
                    "InvalidLookupAttributesException",
                    "You cannot specify more than one lookup attribute.",
                ));
            }
            if let Some(attr) = list.first() {
                let key = attr.get("AttributeKey").and_then(Value::as_str);
                let value = attr.get("AttributeValue").and_then(Value::as_str);
                match (
                    key.and_then(|k| LOOKUP_KEYS.iter().find(|x| **x == k)),
                    value,
                ) {
                    (Some(k), Some(v)) => filter = Some((k, v.to_string())),
                    _ => {
                        return Err(json_error(
                            400,
                            "InvalidLookupAttributesException",
                            "The lookup attribute key or value is not valid.",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(json_error(
                400,
                "SerializationException",
                "LookupAttributes must be a list",
            ))
        }
    }
    let time = |name: &str, default: f64| -> Result<f64, Reply> {
        match p.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| {
                json_error(
                    400,
                    "SerializationException",
                    format!("{name} must be a number of epoch seconds"),
                )
            }),
        }
    };
    let start = time("StartTime", f64::MIN)?;
    let end = time("EndTime", f64::MAX)?;
    if start > end {
        return Err(json_error(
            400,
            "InvalidTimeRangeException",
            "Start time must be before end time.",
        ));
    }
    let max = match p.get("MaxResults") {
        None | Some(Value::Null) => 50,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=50) => n as usize,
            _ => {
                return Err(json_error(
                    400,
                    "InvalidMaxResultsException",
                    "MaxResults must be between 1 and 50.",
                ))
            }
        },
    };
    let max = match world.cfg.lookup_paging {
        LookupPaging::Full => max,
        LookupPaging::Fixed(n) => max.min(n.max(1)),
        LookupPaging::Random => {
            Rng::new(hash(&[state.seed_mix, serial, 0x9A6E])).below(max as u64 + 1) as usize
        }
    };
    let check = hash(&[
        state.seed_mix,
        account as u64,
        hash_str(region),
        filter
            .as_ref()
            .map_or(0, |(k, v)| hash(&[hash_str(k), hash_str(v)])),
        start.to_bits(),
        end.to_bits(),
    ]);
    let (mut from, mut page_no) = (0usize, 0u64);
    if let Some(t) = p.get("NextToken").and_then(Value::as_str) {
        (from, page_no) = parse_lookup_token(t, check)
            .ok_or_else(|| json_error(400, "InvalidNextTokenException", "Invalid NextToken."))?;
    }
    let Some(ri) = world.region_index(region) else {
        // A region the organization does not use: enabled, and empty.
        return Ok("{\"Events\":[]}".to_string());
    };
    let recs = world.partition(account, ri);
    let first = recs.partition_point(|r| r.time as f64 > end);
    // Late calls: not in event history before their time comes (simulator clock).
    let now = (!world.visible_from.is_empty()).then(|| state.now());
    let visible = |r: &Rec| match now {
        None => true,
        Some(now) => world.visible_from.get(&r.id).is_none_or(|v| *v <= now),
    };
    let matches = |r: &Rec| match &filter {
        None => true,
        Some((k, v)) => match *k {
            "EventName" => r.name == v,
            "EventId" => r.id == *v,
            "ReadOnly" => (if r.read_only { "true" } else { "false" }) == v,
            "Username" => r.username.as_deref() == Some(v.as_str()),
            "ResourceType" => r.resource.is_some() && v == "AWS::EC2::Instance",
            "ResourceName" => r.resource.as_deref() == Some(v.as_str()),
            "EventSource" => v == crate::data::SSM,
            "AccessKeyId" => r.access_key.as_deref() == Some(v.as_str()),
            _ => false,
        },
    };
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("{\"Events\":[");
    let mut n = 0usize;
    let mut next = None;
    for (i, r) in recs.iter().enumerate().skip(first.max(from)) {
        if (r.time as f64) < start {
            break;
        }
        if !matches(r) || !visible(r) {
            continue;
        }
        if n == max {
            next = Some(i);
            break;
        }
        if n > 0 {
            out.push(',');
        }
        out.push_str(&r.json);
        n += 1;
    }
    out.push(']');
    if let Some(i) = next {
        out.push_str(&format!(
            ",\"NextToken\":\"{}\"",
            lookup_token(check, i, page_no + 1)
        ));
    }
    out.push('}');
    state
        .counters
        .events_returned
        .fetch_add(n as u64, Ordering::Relaxed);
    Ok(out)
}

/// Opaque to clients; bound to the parameters by the checksum, and numbered
/// by page, so a listing never sees the same token twice (an empty page with
/// more to come moves the page number, not the index), as with CloudTrail.
pub(super) fn lookup_token(check: u64, index: usize, page_no: u64) -> String {
    format!("SIM1{:016x}{:x}.{:x}", check ^ 0xC7C7_C7C7, index, page_no)
}

pub(super) fn parse_lookup_token(t: &str, check: u64) -> Option<(usize, u64)> {
    let rest = t.strip_prefix("SIM1")?;
    if rest.len() <= 16 || u64::from_str_radix(&rest[..16], 16).ok()? != check ^ 0xC7C7_C7C7 {
        return None;
    }
    let (index, page) = rest[16..].split_once('.')?;
    Some((
        usize::from_str_radix(index, 16).ok()?,
        u64::from_str_radix(page, 16).ok()?,
    ))
}
