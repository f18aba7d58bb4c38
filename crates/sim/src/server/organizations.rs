//! Organizations (JSON 1.1): ListAccounts, the OU listings, DescribeOrganization,
//! with pages of any size (empty ones too) and throttling faults.

use super::*;

pub(super) fn organizations(
    state: &State,
    op: &str,
    caller: &Caller,
    p: &Value,
    serial: u64,
) -> Reply {
    let world = &state.world;
    let c = &state.counters;
    if let Caller::Issued(i) | Caller::External(i) = caller {
        // Any account of the organization may describe it; only the management
        // account may list it (no delegated administrators here).
        if i.account != 0 && op != "DescribeOrganization" {
            c.access_denied.fetch_add(1, Ordering::Relaxed);
            return json_error(
                400,
                "AccessDeniedException",
                "You don't have permissions to access this resource.",
            );
        }
    }
    if world.cfg.faults.org_throttle_rate > 0.0
        && state.roll(serial, 0x0F6) < world.cfg.faults.org_throttle_rate
    {
        c.org_throttled.fetch_add(1, Ordering::Relaxed);
        return json_error(
            400,
            "TooManyRequestsException",
            "AWS Organizations can't complete your request because another request is already in progress. Try again later.",
        );
    }
    let org = &world.org;
    let mgmt = org.management();
    let org_arn = |kind: &str, id: &str| {
        format!(
            "arn:aws:organizations::{}:{kind}/{}/{id}",
            mgmt.id, org.org_id
        )
    };
    let reply = match op {
        "DescribeOrganization" => Ok(json!({
            "Organization": {
                "Id": org.org_id,
                "Arn": format!("arn:aws:organizations::{}:organization/{}", mgmt.id, org.org_id),
                "FeatureSet": "ALL",
                "MasterAccountArn": org_arn("account", &mgmt.id),
                "MasterAccountId": mgmt.id,
                "MasterAccountEmail": mgmt.email,
                "AvailablePolicyTypes": [{ "Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED" }],
            }
        })),
        "ListRoots" => Ok(json!({
            "Roots": [{
                "Id": org.root_id,
                "Arn": format!("arn:aws:organizations::{}:root/{}/{}", mgmt.id, org.org_id, org.root_id),
                "Name": "Root",
                "PolicyTypes": [{ "Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED" }],
            }]
        })),
        "ListAccounts" => {
            let faults = &state.world.cfg.faults;
            if state.roll(serial, 0xACC7) < faults.org_missing_accounts_rate {
                // Not Organizations speaking: a 200 without `Accounts`.
                return Reply::Json("{}".into());
            }
            if let (true, Some(t)) = (
                faults.org_repeat_token,
                p.get("NextToken").and_then(Value::as_str),
            ) {
                return Reply::Json(json!({ "Accounts": [], "NextToken": t }).to_string());
            }
            let all: Vec<usize> = (0..org.accounts.len()).collect();
            page(state, &all, p, 0x11, true).map(|(items, token)| {
                let accounts: Vec<Value> = items.iter().map(|&i| account_json(state, i)).collect();
                with_token(json!({ "Accounts": accounts }), token)
            })
        }
        "ListAccountsForParent" | "ListOrganizationalUnitsForParent" => match parent(state, p) {
            Err(e) => Err(e),
            Ok(parent_id) => {
                if op == "ListAccountsForParent" {
                    let ids: Vec<usize> = org
                        .accounts
                        .iter()
                        .filter(|a| a.parent_id == parent_id)
                        .map(|a| a.index)
                        .collect();
                    page(state, &ids, p, hash_str(&parent_id), false).map(|(items, token)| {
                        let accounts: Vec<Value> =
                            items.iter().map(|&i| account_json(state, i)).collect();
                        with_token(json!({ "Accounts": accounts }), token)
                    })
                } else {
                    let ous: Vec<usize> = (0..org.ous.len())
                        .filter(|&i| org.ous[i].parent_id == parent_id)
                        .collect();
                    page(state, &ous, p, hash_str(&parent_id) ^ 0x0E, false).map(|(items, token)| {
                        let list: Vec<Value> = items
                            .iter()
                            .map(|&i| {
                                let ou = &org.ous[i];
                                json!({ "Id": ou.id, "Arn": org_arn("ou", &ou.id), "Name": ou.name })
                            })
                            .collect();
                        with_token(json!({ "OrganizationalUnits": list }), token)
                    })
                }
            }
        },
        _ => Err(json_error(
            400,
            "UnknownOperationException",
            "unknown operation",
        )),
    };
    match reply {
        Ok(v) => Reply::Json(v.to_string()),
        Err(e) => {
            c.client_errors.fetch_add(1, Ordering::Relaxed);
            e
        }
    }
}

pub(super) fn parent(state: &State, p: &Value) -> Result<String, Reply> {
    let org = &state.world.org;
    let Some(id) = p.get("ParentId").and_then(Value::as_str) else {
        return Err(json_error(
            400,
            "InvalidInputException",
            "ParentId is required",
        ));
    };
    if id == org.root_id || org.ous.iter().any(|o| o.id == id) {
        Ok(id.to_string())
    } else {
        Err(json_error(
            400,
            "ParentNotFoundException",
            format!("We can't find a root or OU with the ParentId {id}."),
        ))
    }
}

pub(super) fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let Some(t) = token {
        v["NextToken"] = json!(t);
    }
    v
}

/// One page of an Organizations listing; `empty_pages` may answer an empty page.
pub(super) fn page<'a>(
    state: &State,
    items: &'a [usize],
    p: &Value,
    kind: u64,
    may_be_empty: bool,
) -> Result<(&'a [usize], Option<String>), Reply> {
    let cfg = &state.world.cfg;
    let max = match p.get("MaxResults") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=20) => n as usize,
            _ => {
                return Err(json_error(
                    400,
                    "InvalidInputException",
                    "MaxResults must be between 1 and 20",
                ))
            }
        },
    };
    let size = max.min(cfg.org_page_size.max(1));
    let check = hash(&[state.seed_mix, kind]);
    let (offset, page_no) = match p.get("NextToken").and_then(Value::as_str) {
        None => (0usize, 0u64),
        Some(t) => parse_org_token(t, check)
            .filter(|(o, _)| *o <= items.len())
            .ok_or_else(|| {
                json_error(400, "InvalidInputException", "The NextToken is not valid")
            })?,
    };
    if may_be_empty && cfg.empty_pages && page_no % 3 == 0 && offset < items.len() {
        // Real Organizations does this: an empty page, more to come.
        return Ok((
            &items[offset..offset],
            Some(org_token(check, offset, page_no + 1)),
        ));
    }
    let end = (offset + size).min(items.len());
    let token = (end < items.len()).then(|| org_token(check, end, page_no + 1));
    Ok((&items[offset..end], token))
}

pub(super) fn org_token(check: u64, offset: usize, page_no: u64) -> String {
    format!("{:016x}{:08x}{:08x}", check, offset, page_no)
}

pub(super) fn parse_org_token(t: &str, check: u64) -> Option<(usize, u64)> {
    if t.len() != 32 || u64::from_str_radix(&t[..16], 16).ok()? != check {
        return None;
    }
    let offset = usize::from_str_radix(&t[16..24], 16).ok()?;
    let page_no = u64::from_str_radix(&t[24..], 16).ok()?;
    Some((offset, page_no))
}

pub(super) fn account_json(state: &State, i: usize) -> Value {
    let world = &state.world;
    let org = &world.org;
    let a = &org.accounts[i];
    let mut v = json!({
        "Id": a.id,
        "Arn": format!("arn:aws:organizations::{}:account/{}/{}", org.management().id, org.org_id, a.id),
        "Email": a.email,
        "Name": a.name,
        "State": a.state,
        "JoinedMethod": org.joined_method[i],
        "JoinedTimestamp": org.joined[i] as f64 + 0.25,
    });
    if world.cfg.include_status_field {
        v["Status"] = json!(if a.state == "ACTIVE" {
            "ACTIVE"
        } else {
            "SUSPENDED"
        });
    }
    v
}
