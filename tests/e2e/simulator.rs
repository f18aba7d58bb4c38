//! The simulated organization, driven by the real AWS SDK clients over loopback.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime as SmithyTime;
use sim::{Faults, HeavyPartition, SimConfig, SimHandle, Simulator};

const NAMES: [&str; 3] = ["StartSession", "ResumeSession", "TerminateSession"];

async fn sdk(sim: &SimHandle, creds: Credentials, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(sim.endpoint())
        .region(Region::new(region.to_string()))
        .credentials_provider(creds)
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

fn management() -> Credentials {
    Credentials::new("AKIDMANAGEMENT", "secret", None, None, "test")
}

async fn assume(sim: &SimHandle, account_id: &str) -> Credentials {
    let sts = aws_sdk_sts::Client::new(&sdk(sim, management(), "us-east-1").await);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/SessionAuditRole"))
        .role_session_name("ssm-session-audit")
        .send()
        .await
        .expect("assume role");
    let c = out.credentials().expect("credentials");
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "assumed",
    )
}

async fn cloudtrail(sim: &SimHandle, account_id: &str, region: &str) -> aws_sdk_cloudtrail::Client {
    let creds = if account_id == sim.management_account_id() {
        management()
    } else {
        assume(sim, account_id).await
    };
    aws_sdk_cloudtrail::Client::new(&sdk(sim, creds, region).await)
}

fn event_name(name: &str) -> LookupAttribute {
    LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::EventName)
        .attribute_value(name)
        .build()
        .expect("attribute")
}

/// Every page of one lookup: (event ids in order, event times, pages).
async fn lookup_all(
    ct: &aws_sdk_cloudtrail::Client,
    name: Option<&str>,
    start: i64,
    end: i64,
) -> (Vec<String>, Vec<i64>, usize) {
    let mut ids = Vec::new();
    let mut times = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = ct
            .lookup_events()
            .start_time(SmithyTime::from_secs(start))
            .end_time(SmithyTime::from_secs(end))
            .set_next_token(token.clone());
        if let Some(n) = name {
            req = req.lookup_attributes(event_name(n));
        }
        let out = req.send().await.expect("lookup page");
        pages += 1;
        assert!(out.events().len() <= 50);
        for e in out.events() {
            ids.push(e.event_id().unwrap_or_default().to_string());
            times.push(e.event_time().map(|t| t.secs()).unwrap_or_default());
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    (ids, times, pages)
}

fn fast() -> SimConfig {
    SimConfig {
        lookup_rate: 10_000.0,
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_accounts_pages_reach_every_account() {
    let sim = Simulator::start(SimConfig {
        accounts: 47,
        empty_pages: true,
        include_status_field: true,
        ..fast()
    })
    .await
    .expect("start");
    let org = aws_sdk_organizations::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let mut seen = Vec::new();
    let mut empty_with_token = 0;
    let mut token: Option<String> = None;
    loop {
        let out = org
            .list_accounts()
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        assert!(out.accounts().len() <= 20);
        if out.accounts().is_empty() && out.next_token().is_some() {
            empty_with_token += 1;
        }
        for a in out.accounts() {
            assert!(a
                .joined_timestamp()
                .is_some_and(|t| t.secs() > 1_600_000_000));
            assert_eq!(a.state().map(|s| s.as_str()), Some("ACTIVE"));
            assert!(a.status().is_some(), "status field asked for");
            seen.push(a.id().unwrap_or_default().to_string());
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert!(empty_with_token >= 1, "an empty page with a token");
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), 47);
    assert_eq!(seen.len(), 47);
    let expected: BTreeSet<_> = sim.accounts().into_iter().map(|a| a.id).collect();
    assert_eq!(unique, expected);
    assert!(unique.contains(&sim.management_account_id()));

    let bad = org
        .list_accounts()
        .max_results(21)
        .send()
        .await
        .expect_err("too many");
    assert_eq!(bad.code(), Some("InvalidInputException"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_roots_and_ous() {
    let sim = Simulator::start(SimConfig {
        accounts: 30,
        ..fast()
    })
    .await
    .expect("start");
    let org = aws_sdk_organizations::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let desc = org.describe_organization().send().await.expect("describe");
    let o = desc.organization().expect("organization");
    assert_eq!(o.id(), Some(sim.organization_id().as_str()));
    assert_eq!(
        o.master_account_id(),
        Some(sim.management_account_id().as_str())
    );

    let roots = org.list_roots().send().await.expect("roots");
    let root = roots.roots()[0].id().unwrap_or_default().to_string();
    // Walk the tree; every account must sit under exactly one parent.
    let mut parents = vec![root];
    let mut found = Vec::new();
    let mut nested = false;
    while let Some(p) = parents.pop() {
        let ous = org
            .list_organizational_units_for_parent()
            .parent_id(&p)
            .send()
            .await
            .expect("ous");
        for ou in ous.organizational_units() {
            nested |= !p.starts_with("r-");
            parents.push(ou.id().unwrap_or_default().to_string());
        }
        let mut token = None;
        loop {
            let out = org
                .list_accounts_for_parent()
                .parent_id(&p)
                .set_next_token(token)
                .send()
                .await
                .expect("accounts for parent");
            found.extend(
                out.accounts()
                    .iter()
                    .map(|a| a.id().unwrap_or_default().to_string()),
            );
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    assert!(nested, "one OU is nested");
    found.sort();
    let mut all: Vec<String> = sim.accounts().into_iter().map(|a| a.id).collect();
    all.sort();
    assert_eq!(found, all);

    let missing = org
        .list_accounts_for_parent()
        .parent_id("ou-zzzz-00000000")
        .send()
        .await
        .expect_err("no parent");
    assert_eq!(missing.code(), Some("ParentNotFoundException"));

    // Member credentials may not read the organization.
    let member = sim.accounts()[1].id.clone();
    let member_org = aws_sdk_organizations::Client::new(
        &sdk(&sim, assume(&sim, &member).await, "us-east-1").await,
    );
    let denied = member_org
        .list_accounts()
        .send()
        .await
        .expect_err("member denied");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_throttles_when_told() {
    let sim = Simulator::start(SimConfig {
        faults: Faults {
            org_throttle_rate: 1.0,
            ..Faults::default()
        },
        ..fast()
    })
    .await
    .expect("start");
    let org = aws_sdk_organizations::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let err = org.list_accounts().send().await.expect_err("throttled");
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    assert_eq!(sim.stats().org_throttled, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_and_caller_identity() {
    let sim = Simulator::start(SimConfig {
        accounts: 6,
        external_id: Some("audit-2026".into()),
        faults: Faults {
            denied_accounts: vec![2],
            suspended_accounts: vec![3],
            ..Faults::default()
        },
        ..fast()
    })
    .await
    .expect("start");
    let accounts = sim.accounts();
    let sts = aws_sdk_sts::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let me = sts.get_caller_identity().send().await.expect("whoami");
    assert_eq!(me.account(), Some(sim.management_account_id().as_str()));

    let role = |i: usize, name: &str| format!("arn:aws:iam::{}:role/{name}", accounts[i].id);
    let ok = sts
        .assume_role()
        .role_arn(role(1, "SessionAuditRole"))
        .role_session_name("audit")
        .external_id("audit-2026")
        .duration_seconds(900)
        .send()
        .await
        .expect("assume");
    let c = ok.credentials().expect("credentials");
    assert!(c.access_key_id().starts_with("ASIA"));
    assert!(c.expiration().secs() > 0);
    assert_eq!(
        ok.assumed_role_user().map(|u| u.arn()),
        Some(
            format!(
                "arn:aws:sts::{}:assumed-role/SessionAuditRole/audit",
                accounts[1].id
            )
            .as_str()
        )
    );
    let issued = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().into()),
        None,
        "t",
    );
    let member_sts = aws_sdk_sts::Client::new(&sdk(&sim, issued, "us-east-1").await);
    let who = member_sts
        .get_caller_identity()
        .send()
        .await
        .expect("member whoami");
    assert_eq!(who.account(), Some(accounts[1].id.as_str()));

    // Role chaining is capped at one hour, as in AWS.
    let chained = member_sts
        .assume_role()
        .role_arn(role(4, "SessionAuditRole"))
        .role_session_name("chained")
        .external_id("audit-2026")
        .duration_seconds(7200)
        .send()
        .await
        .expect_err("chaining beyond 1 h");
    assert_eq!(chained.code(), Some("ValidationError"));

    // Denied: a denied role, a suspended account, a wrong role name, a missing or wrong ExternalId.
    let cases = [
        (role(2, "SessionAuditRole"), Some("audit-2026")),
        (role(3, "SessionAuditRole"), Some("audit-2026")),
        (role(1, "OtherRole"), Some("audit-2026")),
        (role(1, "SessionAuditRole"), None),
        (role(1, "SessionAuditRole"), Some("wrong")),
        (
            "arn:aws:iam::999999999999:role/SessionAuditRole".to_string(),
            Some("audit-2026"),
        ),
    ];
    for (arn, ext) in cases {
        let err = sts
            .assume_role()
            .role_arn(&arn)
            .role_session_name("audit")
            .set_external_id(ext.map(str::to_string))
            .send()
            .await
            .expect_err("denied");
        assert_eq!(err.code(), Some("AccessDenied"), "{arn} {ext:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    }
    // Two assumptions give two distinct keys.
    let a = assume_key(&sts, &role(4, "SessionAuditRole")).await;
    let b = assume_key(&sts, &role(4, "SessionAuditRole")).await;
    assert_ne!(a, b);
    assert_eq!(sim.stats().access_denied, 6);
    sim.shutdown().await;
}

async fn assume_key(sts: &aws_sdk_sts::Client, arn: &str) -> String {
    let out = sts
        .assume_role()
        .role_arn(arn)
        .role_session_name("audit")
        .external_id("audit-2026")
        .send()
        .await
        .expect("assume");
    out.credentials()
        .map(|c| c.access_key_id().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_reach_exactly_the_ground_truth() {
    let cfg = SimConfig {
        plant_anomalies: true,
        hostile_records: true,
        active_regions: Some(1),
        heavy_partitions: vec![HeavyPartition {
            account_index: 1,
            region: "eu-west-1".into(),
            events: 333,
        }],
        faults: Faults {
            denied_accounts: vec![4],
            ..Faults::default()
        },
        ..fast()
    };
    let (start, end) = (cfg.window_start().timestamp(), cfg.window_end.timestamp());
    let sim = Simulator::start(cfg.clone()).await.expect("start");
    let truth = sim.ground_truth(cfg.window_start(), cfg.window_end, &NAMES);
    assert!(truth.total() > 333);
    assert!(!truth.malformed.is_empty());
    let mut heavy_pages = 0;
    for account in sim.accounts().into_iter().filter(|a| !a.denied) {
        for region in &cfg.regions {
            let ct = cloudtrail(&sim, &account.id, region).await;
            let mut found = BTreeSet::new();
            for name in NAMES {
                let (ids, times, pages) = lookup_all(&ct, Some(name), start, end).await;
                assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
                if account.index == 1 && region == "eu-west-1" {
                    heavy_pages += pages;
                }
                let before = found.len();
                found.extend(ids.iter().cloned());
                assert_eq!(found.len(), before + ids.len(), "no id twice");
            }
            let expected = truth
                .partition(&account.id, region)
                .cloned()
                .unwrap_or_default();
            assert_eq!(found, expected, "{} {region}", account.id);
            // Without a filter the other SSM calls come too; they are not in the ground truth.
            let (all, _, _) = lookup_all(&ct, None, start, end).await;
            let all: BTreeSet<_> = all.into_iter().collect();
            assert!(all.is_superset(&expected));
        }
    }
    assert!(
        heavy_pages >= 7,
        "333 events take at least 7 pages, got {heavy_pages}"
    );
    // The denied account's records exist, unreachable.
    let denied = &sim.accounts()[4];
    assert!(
        truth.events[&denied.id]
            .values()
            .map(BTreeSet::len)
            .sum::<usize>()
            > 0
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_filters_and_validation() {
    let cfg = SimConfig {
        heavy_partitions: vec![HeavyPartition {
            account_index: 0,
            region: "us-east-1".into(),
            events: 200,
        }],
        ..fast()
    };
    let sim = Simulator::start(cfg.clone()).await.expect("start");
    let ct = cloudtrail(&sim, &sim.management_account_id(), "us-east-1").await;
    let (ws, we) = (cfg.window_start().timestamp(), cfg.window_end.timestamp());

    // EventName filter: only that name comes back, checked inside the record too.
    let out = ct
        .lookup_events()
        .lookup_attributes(event_name("TerminateSession"))
        .max_results(7)
        .send()
        .await
        .expect("page");
    assert_eq!(out.events().len(), 7);
    assert!(out.next_token().is_some());
    for e in out.events() {
        assert_eq!(e.event_name(), Some("TerminateSession"));
        assert_eq!(e.read_only(), Some("false"));
        let record: serde_json::Value =
            serde_json::from_str(e.cloud_trail_event().unwrap_or_default()).expect("json record");
        assert_eq!(record["eventName"], "TerminateSession");
        assert_eq!(record["eventID"].as_str(), e.event_id());
    }
    // SendCommand shares the partition, never comes back for StartSession.
    let send = ct
        .lookup_events()
        .lookup_attributes(event_name("SendCommand"))
        .send()
        .await
        .expect("send command");
    assert!(!send.events().is_empty());
    let (starts, _, _) = lookup_all(&ct, Some("StartSession"), ws, we).await;
    let sends: HashSet<_> = send.events().iter().filter_map(|e| e.event_id()).collect();
    assert!(starts.iter().all(|id| !sends.contains(id.as_str())));

    // Time range, inclusive at both ends: take real event times as the bounds.
    let (_, times, _) = lookup_all(&ct, Some("StartSession"), ws, we).await;
    let (t_hi, t_lo) = (times[10], times[times.len() - 10]);
    let (ids, got_times, _) = lookup_all(&ct, Some("StartSession"), t_lo, t_hi).await;
    assert!(got_times.iter().all(|t| (t_lo..=t_hi).contains(t)));
    assert!(got_times.contains(&t_lo) && got_times.contains(&t_hi));
    // Ground truth is half-open, [start, end): one second past t_hi is the same set.
    let truth = sim.ground_truth(
        chrono::DateTime::from_timestamp(t_lo, 0).unwrap_or_default(),
        chrono::DateTime::from_timestamp(t_hi + 1, 0).unwrap_or_default(),
        &["StartSession"],
    );
    let expected = truth
        .partition(&sim.management_account_id(), "us-east-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    // Fractional bounds are accepted.
    ct.lookup_events()
        .start_time(SmithyTime::from_secs_f64(ws as f64 + 0.5))
        .send()
        .await
        .expect("fraction");

    // Errors.
    let two = ct
        .lookup_events()
        .lookup_attributes(event_name("StartSession"))
        .lookup_attributes(event_name("ResumeSession"))
        .send()
        .await
        .expect_err("two attributes");
    assert_eq!(two.code(), Some("InvalidLookupAttributesException"));
    let range = ct
        .lookup_events()
        .start_time(SmithyTime::from_secs(we))
        .end_time(SmithyTime::from_secs(ws))
        .send()
        .await
        .expect_err("reversed");
    assert_eq!(range.code(), Some("InvalidTimeRangeException"));
    let max = ct
        .lookup_events()
        .max_results(51)
        .send()
        .await
        .expect_err("max");
    assert_eq!(max.code(), Some("InvalidMaxResultsException"));
    let token = out.next_token().unwrap_or_default().to_string();
    let other = ct
        .lookup_events()
        .lookup_attributes(event_name("StartSession"))
        .next_token(&token)
        .send()
        .await
        .expect_err("token with other parameters");
    assert_eq!(other.code(), Some("InvalidNextTokenException"));
    let same = ct
        .lookup_events()
        .lookup_attributes(event_name("TerminateSession"))
        .next_token(&token)
        .max_results(7)
        .send()
        .await
        .expect("token with the same parameters");
    assert!(same
        .events()
        .iter()
        .all(|e| !out.events().iter().any(|o| o.event_id() == e.event_id())));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_beyond_the_rate() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let ct = cloudtrail(&sim, &sim.management_account_id(), "us-east-1").await;
    let mut throttled = 0;
    for _ in 0..6 {
        match ct.lookup_events().send().await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some("ThrottlingException"));
                assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
                throttled += 1;
            }
        }
    }
    assert!(
        throttled >= 3,
        "capacity 2: at most 2 or 3 of 6 quick calls pass, {throttled} throttled"
    );
    // Another partition (region) has its own bucket.
    let eu = cloudtrail(&sim, &sim.management_account_id(), "eu-west-1").await;
    eu.lookup_events().send().await.expect("own bucket");
    // At the pace, nothing is throttled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..3 {
        ct.lookup_events().send().await.expect("paced");
        tokio::time::sleep(Duration::from_millis(520)).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.throttled, throttled);
    assert!(stats.max_lookup_calls_1s >= 6);
    assert!(stats.max_served_lookup_calls_1s <= 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_not_enabled_and_expired_credentials() {
    let sim = Simulator::start(SimConfig {
        faults: Faults {
            disabled_regions: vec![(1, "ap-east-1".into())],
            credential_ttl: Some(Duration::from_secs(1)),
            ..Faults::default()
        },
        regions: vec!["us-east-1".into(), "ap-east-1".into()],
        ..fast()
    })
    .await
    .expect("start");
    let member = sim.accounts()[1].id.clone();
    let creds = assume(&sim, &member).await;
    let hk = aws_sdk_cloudtrail::Client::new(&sdk(&sim, creds.clone(), "ap-east-1").await);
    let err = hk.lookup_events().send().await.expect_err("not enabled");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    let us = aws_sdk_cloudtrail::Client::new(&sdk(&sim, creds.clone(), "us-east-1").await);
    us.lookup_events()
        .send()
        .await
        .expect("enabled region works");
    let truth = sim.ground_truth(sim.config().window_start(), sim.config().window_end, &NAMES);
    assert_eq!(
        truth.partition(&member, "ap-east-1").map(BTreeSet::len),
        Some(0)
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = us.lookup_events().send().await.expect_err("expired");
    assert_eq!(expired.code(), Some("ExpiredTokenException"));
    let sts = aws_sdk_sts::Client::new(&sdk(&sim, creds, "us-east-1").await);
    let expired = sts.get_caller_identity().send().await.expect_err("expired");
    assert_eq!(expired.code(), Some("ExpiredTokenException"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults() {
    let sim = Simulator::start(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..fast()
    })
    .await
    .expect("start");
    let ct = cloudtrail(&sim, &sim.management_account_id(), "us-east-1").await;
    for _ in 0..4 {
        let e = ct.lookup_events().send().await.expect_err("5xx");
        let status = e.raw_response().map(|r| r.status().as_u16());
        assert!(matches!(
            (e.code(), status),
            (Some("InternalFailure"), Some(500)) | (Some("ServiceUnavailable"), Some(503))
        ));
    }
    assert_eq!(sim.stats().injected_errors, 4);
    sim.shutdown().await;

    let sim = Simulator::start(SimConfig {
        faults: Faults {
            reset_rate: 1.0,
            ..Faults::default()
        },
        ..fast()
    })
    .await
    .expect("start");
    let ct = cloudtrail(&sim, &sim.management_account_id(), "us-east-1").await;
    let e = ct.lookup_events().send().await.expect_err("reset");
    assert!(e.raw_response().is_none() || e.code().is_none(), "{e:?}");
    assert_eq!(sim.stats().injected_resets, 1);
    sim.shutdown().await;

    let sim = Simulator::start(SimConfig {
        faults: Faults {
            slow_rate: 1.0,
            slow_delay: Duration::from_millis(600),
            ..Faults::default()
        },
        ..fast()
    })
    .await
    .expect("start");
    let conf = sdk(&sim, management(), "us-east-1").await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(150))
        .build();
    let ct = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(&conf)
            .timeout_config(timeouts)
            .build(),
    );
    let t0 = Instant::now();
    ct.lookup_events().send().await.expect_err("timed out");
    assert!(t0.elapsed() < Duration::from_millis(550));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_config_same_data_and_http_ground_truth() {
    let cfg = SimConfig {
        plant_anomalies: true,
        ..fast()
    };
    let a = Simulator::start(cfg.clone()).await.expect("start");
    let b = Simulator::start(cfg.clone()).await.expect("start");
    let ga = a.ground_truth(cfg.window_start(), cfg.window_end, &NAMES);
    assert_eq!(
        ga,
        b.ground_truth(cfg.window_start(), cfg.window_end, &NAMES)
    );
    assert_eq!(a.accounts(), b.accounts());
    assert_eq!(a.baseline_principals(), b.baseline_principals());
    let np = a.new_principal().expect("planted");
    assert!(!a.baseline_principals().contains(&np));

    // The same answer over HTTP, for scripts in other languages.
    let url = format!(
        "{}/_sim/ground-truth?start={}&end={}",
        a.endpoint(),
        urlencode(&cfg.window_start().to_rfc3339()),
        urlencode(&cfg.window_end.to_rfc3339())
    );
    let body = http_get(&url).await;
    let over_http: sim::GroundTruth = serde_json::from_str(&body).expect("json");
    assert_eq!(over_http, ga);
    let stats: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{}/_sim/stats", a.endpoint())).await)
            .expect("stats");
    assert!(stats["requests"].as_u64().is_some());
    a.shutdown().await;
    b.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A minimal HTTP/1.1 GET over a raw socket (no extra client dependency).
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_is_printed() {
    let sim = Simulator::start(SimConfig {
        accounts: 50,
        regions: vec![
            "us-east-1".into(),
            "eu-west-1".into(),
            "us-west-2".into(),
            "ap-east-1".into(),
        ],
        ..fast()
    })
    .await
    .expect("start");
    let mut clients = Vec::new();
    for region in &sim.config().regions {
        clients.push(aws_sdk_cloudtrail::Client::new(
            &sdk(&sim, management(), region).await,
        ));
    }
    let calls = 2_000;
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let per_task = calls / 32;
    for k in 0..32 {
        let ct = clients[k % clients.len()].clone();
        set.spawn(async move {
            for _ in 0..per_task {
                ct.lookup_events()
                    .lookup_attributes(event_name("StartSession"))
                    .send()
                    .await
                    .expect("call");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    let secs = t0.elapsed().as_secs_f64();
    let done = per_task * 32;
    println!(
        "simulator throughput: {done} LookupEvents in {secs:.2} s = {:.0} calls/s",
        done as f64 / secs
    );
    assert_eq!(
        sim.stats().calls.get("LookupEvents").copied(),
        Some(done as u64)
    );
    sim.shutdown().await;
}

#[test]
fn demo_config_is_valid_toml_with_known_keys() {
    let text = sim::demo_config_toml();
    let v: toml::Table = toml::from_str(&text).expect("toml");
    let allowed: &[(&str, &[&str])] = &[
        (
            "scan",
            &[
                "regions",
                "event_names",
                "since",
                "start",
                "end",
                "concurrency",
                "lookup_rate",
            ],
        ),
        (
            "accounts",
            &[
                "role_name",
                "external_id",
                "session_duration",
                "include",
                "exclude",
                "organizational_units",
            ],
        ),
        (
            "rules",
            &[
                "approved_cidrs",
                "allowed_regions",
                "trusted_accounts",
                "tunnel_documents",
                "denied_threshold",
                "denied_window",
                "fanout_targets",
                "fanout_window",
                "max_session",
                "require_reason",
                "business_hours",
            ],
        ),
        ("report", &["output", "formats", "fail_on"]),
    ];
    for (section, body) in &v {
        let keys = allowed
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, k)| *k)
            .expect("known section");
        for key in body.as_table().expect("table").keys() {
            assert!(keys.contains(&key.as_str()), "unknown key {section}.{key}");
        }
    }
    let bh = v["rules"]["business_hours"]
        .as_table()
        .expect("business hours");
    for key in bh.keys() {
        assert!(["timezone", "days", "start", "end"].contains(&key.as_str()));
    }
    let demo = SimConfig::demo();
    assert_eq!(
        v["accounts"]["role_name"].as_str(),
        Some(demo.role_name.as_str())
    );
    let regions: Vec<&str> = v["scan"]["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert_eq!(
        regions,
        demo.regions.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_organization_has_its_faults_and_latency() {
    let sim = Simulator::start(SimConfig::demo()).await.expect("start");
    let accounts = sim.accounts();
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[8].state, "SUSPENDED");
    assert!(accounts[7].denied);
    assert_eq!(accounts[9].disabled_regions, vec!["ap-east-1".to_string()]);
    let org = aws_sdk_organizations::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let t0 = Instant::now();
    let first = org.list_accounts().send().await.expect("page");
    assert!(t0.elapsed() >= Duration::from_millis(20), "latency applies");
    assert!(
        first.accounts().is_empty() && first.next_token().is_some(),
        "the demo starts with an empty page"
    );

    let sts = aws_sdk_sts::Client::new(&sdk(&sim, management(), "us-east-1").await);
    let denied = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{}:role/SessionAuditRole",
            accounts[7].id
        ))
        .role_session_name("audit")
        .send()
        .await
        .expect_err("denied role");
    assert_eq!(denied.code(), Some("AccessDenied"));
    let off = cloudtrail(&sim, &accounts[9].id, "ap-east-1").await;
    let err = off.lookup_events().send().await.expect_err("not enabled");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));

    let cfg = sim.config().clone();
    let truth = sim.ground_truth(cfg.window_start(), cfg.window_end, &NAMES);
    let quiet: usize = truth
        .events
        .values()
        .filter_map(|r| r.get("ap-east-1"))
        .map(BTreeSet::len)
        .sum();
    assert_eq!(
        quiet, 2,
        "only the planted unusual-region session (start and terminate)"
    );
    assert!(sim.new_principal().is_some());
    sim.shutdown().await;
}
