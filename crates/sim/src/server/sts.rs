//! STS (query protocol, XML): GetCallerIdentity and AssumeRole, with denied
//! roles, expiring credentials and role chaining capped at an hour.

use super::*;

pub(super) fn query_call(
    state: &State,
    auth: Option<Auth>,
    body: &[u8],
    serial: u64,
    request_id: &str,
) -> Reply {
    let form = parse_form(body);
    let action = form.get("Action").map(String::as_str).unwrap_or("");
    let c = &state.counters;
    state.count_op(match action {
        "AssumeRole" | "GetCallerIdentity" | "DescribeRegions" => action,
        _ => "Unknown",
    });
    let Some(auth) = auth else {
        c.client_errors.fetch_add(1, Ordering::Relaxed);
        return xml_error(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        );
    };
    let caller = match state.caller(&auth) {
        Ok(c) => c,
        Err(e) => return e.xml(),
    };
    match action {
        "GetCallerIdentity" => {
            let world = &state.world;
            let (account, arn, user_id) = match &caller {
                Caller::Management => {
                    let mgmt = world.org.management();
                    let mut r = Rng::from_parts(&[world.cfg.seed, 0xA1DA]);
                    (
                        mgmt.id.clone(),
                        management_arn(world),
                        format!("AIDA{}", r.base32(17)),
                    )
                }
                Caller::Issued(i) | Caller::External(i) => (
                    world.org.accounts[i.account].id.clone(),
                    i.arn.clone(),
                    i.user_id.clone(),
                ),
            };
            Reply::Xml(format!(
                "<GetCallerIdentityResponse xmlns=\"{STS_NS}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
                xml_escape(&arn),
                xml_escape(&user_id)
            ))
        }
        "DescribeRegions" => super::ec2::describe_regions(state, &caller, &form, request_id),
        "AssumeRole" => match assume_role(state, &caller, &form, serial) {
            Ok(body) => Reply::Xml(body.replace("{REQUEST_ID}", request_id)),
            Err(e) => e,
        },
        _ => {
            c.client_errors.fetch_add(1, Ordering::Relaxed);
            xml_error(
                400,
                "InvalidAction",
                format!("Could not find operation {action} for version 2011-06-15"),
            )
        }
    }
}

pub(super) fn assume_role(
    state: &State,
    caller: &Caller,
    form: &HashMap<String, String>,
    serial: u64,
) -> Result<String, Reply> {
    let world = &state.world;
    let cfg = &world.cfg;
    let c = &state.counters;
    let invalid = |msg: String| {
        c.client_errors.fetch_add(1, Ordering::Relaxed);
        xml_error(400, "ValidationError", msg)
    };
    let role_arn = form.get("RoleArn").cloned().unwrap_or_default();
    let session = form.get("RoleSessionName").cloned().unwrap_or_default();
    let Some((acct, role_path)) = role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .filter(|(a, p)| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
    else {
        return Err(invalid(format!("{role_arn} is invalid")));
    };
    let session_ok = (2..=64).contains(&session.len())
        && session
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch));
    if !session_ok {
        return Err(invalid(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint"
                .into(),
        ));
    }
    let duration = match form.get("DurationSeconds") {
        None => 3600,
        Some(d) => match d.parse::<u64>() {
            Ok(n @ 900..=43200) => n,
            _ => return Err(invalid("1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint".into())),
        },
    };
    let caller_arn = match caller {
        Caller::Management => management_arn(world),
        Caller::Issued(i) | Caller::External(i) => i.arn.clone(),
    };
    let role_name = role_path.rsplit('/').next().unwrap_or(role_path);
    let index = world.org.by_id.get(acct).copied();
    let external_ok = match &cfg.external_id {
        None => true,
        Some(x) => form.get("ExternalId") == Some(x),
    };
    let allowed = index.is_some_and(|i| {
        let a = &world.org.accounts[i];
        a.state == "ACTIVE" && !a.denied && role_name == cfg.role_name && external_ok
    });
    let Some(index) = index.filter(|_| allowed) else {
        c.access_denied.fetch_add(1, Ordering::Relaxed);
        return Err(xml_error(
            403,
            "AccessDenied",
            format!("User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"),
        ));
    };
    state.note_role(index);
    let chained = match caller {
        Caller::Management => false,
        Caller::Issued(_) => true,
        Caller::External(i) => i.arn.contains(":assumed-role/"),
    };
    if chained && duration > 3600 {
        // AWS caps role chaining at one hour.
        return Err(invalid("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_string()));
    }
    let mut ttl = Duration::from_secs(duration);
    if let Some(cap) = cfg.faults.credential_ttl {
        ttl = ttl.min(cap);
    }
    let n = state.cred_serial.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::from_parts(&[state.seed_mix, n, serial, 0xC4ED]);
    // The 13 characters from a bijection of the serial make every key distinct.
    let access_key = format!(
        "ASIA{}{}",
        base32_u64(mix(n ^ state.seed_mix)),
        rng.base32(3)
    );
    let secret: String = (0..40)
        .map(|_| {
            *rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".as_ref())
                as char
        })
        .collect();
    let token = format!("IQoJb3JpZ2luX2VjE{}", rng.hex(180));
    let mut role_rng = Rng::from_parts(&[cfg.seed, index as u64, hash_str(role_name), 0xA0A]);
    let role_id = format!("AROA{}", role_rng.base32(17));
    let assumed_arn = format!("arn:aws:sts::{acct}:assumed-role/{role_name}/{session}");
    let user_id = format!("{role_id}:{session}");
    let expires = SystemTime::now() + ttl;
    let expiration = iso(expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0));
    let issued = Issued {
        account: index,
        arn: assumed_arn.clone(),
        user_id: user_id.clone(),
        expires,
    };
    if let Ok(mut m) = state.creds[(hash_str(&access_key) as usize) % SHARDS].write() {
        m.insert(access_key.clone(), issued);
    }
    c.credentials_issued.fetch_add(1, Ordering::Relaxed);
    state
        .issued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(IssuedSecret {
            access_key_id: access_key.clone(),
            secret_access_key: secret.clone(),
            session_token: token.clone(),
        });
    Ok(format!(
        "<AssumeRoleResponse xmlns=\"{STS_NS}\">\n  <AssumeRoleResult>\n    <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>{access_key}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n  </AssumeRoleResult>\n  <ResponseMetadata>\n    <RequestId>{{REQUEST_ID}}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n",
        xml_escape(&user_id),
        xml_escape(&assumed_arn),
        xml_escape(&secret),
    ))
}

pub(super) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                let s = s.replace('+', " ");
                urlencoding::decode(&s).map(|c| c.into_owned()).unwrap_or(s)
            };
            (dec(k), dec(v))
        })
        .collect()
}

pub(super) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(ch),
        }
    }
    out
}
