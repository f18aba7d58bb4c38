//! Conformance against moto, an AWS stand-in we did not write: Organizations
//! discovery, OUs and STS AssumeRole through the real SDK and our own code.
//!
//! These tests are `#[ignore]`d in a plain `cargo test` (no Python needed) and run
//! by `.ci/run`, which installs moto, starts `moto_server` and sets MOTO_ENDPOINT.
//! Run that way without moto they FAIL: they never skip silently.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use chrono::{TimeDelta, Utc};
use sim::{Faults, SimConfig, SimHandle, Simulator};
use ssm_session_audit::call::CallSlots;
use ssm_session_audit::org;
use ssm_session_audit::source::lookup::credentials::{AccountCredentials, RoleRequest};

const DEADLINE: Duration = Duration::from_secs(30);

fn moto_endpoint() -> String {
    let url = std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: these tests run through .ci/run, which installs moto and starts moto_server",
    );
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "moto must be on loopback: {url}"
    );
    url
}

/// Wipe moto's state so each test starts from nothing.
fn reset_moto(endpoint: &str) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("moto_server is reachable");
    write!(s, "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "moto reset: {resp}");
}

pub async fn sdk_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIAMOTOMANAGEMENT01",
            "moto-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

/// An organization in moto: `n` member accounts, the first `closed` of them closed.
pub async fn moto_org(sdk: &SdkConfig, n: usize, closed: usize) -> (String, Vec<String>) {
    let orgs = aws_sdk_organizations::Client::new(sdk);
    let org = orgs
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create_organization");
    let management = org
        .organization()
        .unwrap()
        .master_account_id()
        .unwrap()
        .to_string();
    let mut members = Vec::new();
    for i in 0..n {
        let out = orgs
            .create_account()
            .account_name(format!("member-{i:02}"))
            .email(format!("member-{i:02}@example.com"))
            .send()
            .await
            .expect("create_account");
        members.push(
            out.create_account_status()
                .unwrap()
                .account_id()
                .unwrap()
                .to_string(),
        );
    }
    for id in &members[..closed] {
        orgs.close_account()
            .account_id(id)
            .send()
            .await
            .expect("close_account");
    }
    (management, members)
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn discovery_reads_every_page_and_the_state_field() {
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let sdk = sdk_for(&endpoint).await;
    let (management, members) = moto_org(&sdk, 27, 3).await;
    let client = aws_sdk_organizations::Client::new(&sdk);
    let found = org::discover(&client, &[], &CallSlots::new(4), DEADLINE)
        .await
        .expect("discover");

    let want: BTreeSet<String> = members
        .iter()
        .cloned()
        .chain([management.clone()])
        .collect();
    let got: BTreeSet<String> = found.iter().map(|a| a.id.clone()).collect();
    assert_eq!(
        got, want,
        "28 accounts need two pages of 20: every one is found once"
    );
    assert_eq!(found.len(), 28);
    for a in &found {
        let closed = members[..3].contains(&a.id);
        assert_eq!(
            a.state,
            if closed { "SUSPENDED" } else { "ACTIVE" },
            "{a:?}"
        );
        assert_eq!(org::skip_reason(a, &[], &[]).is_some(), closed);
    }
    let named = found.iter().find(|a| a.id == members[5]).unwrap();
    assert_eq!(named.name, "member-05");
    assert!(org::organization_id(&client, &CallSlots::new(1), DEADLINE)
        .await
        .unwrap()
        .starts_with("o-"));
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn ou_discovery_is_recursive() {
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let sdk = sdk_for(&endpoint).await;
    let (_, members) = moto_org(&sdk, 6, 0).await;
    let client = aws_sdk_organizations::Client::new(&sdk);
    let roots = client.list_roots().send().await.expect("list_roots");
    let root = roots.roots()[0].id().unwrap().to_string();
    let ou = |parent: String, name: &'static str| {
        let client = client.clone();
        async move {
            client
                .create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .expect("create_organizational_unit")
                .organizational_unit()
                .unwrap()
                .id()
                .unwrap()
                .to_string()
        }
    };
    let security = ou(root.clone(), "security").await;
    let nested = ou(security.clone(), "security-prod").await;
    let other = ou(root.clone(), "sandbox").await;
    for (id, dest) in [
        (&members[0], &security),
        (&members[1], &nested),
        (&members[2], &nested),
        (&members[3], &other),
    ] {
        client
            .move_account()
            .account_id(id)
            .source_parent_id(&root)
            .destination_parent_id(dest)
            .send()
            .await
            .expect("move_account");
    }
    let slots = CallSlots::new(2);
    let under = |ous: Vec<String>| {
        let client = client.clone();
        let slots = slots.clone();
        async move {
            org::discover(&client, &ous, &slots, DEADLINE)
                .await
                .expect("discover")
                .into_iter()
                .map(|a| a.id)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        under(vec![security.clone()]).await,
        members[..3].iter().cloned().collect()
    );
    assert_eq!(
        under(vec![nested.clone()]).await,
        members[1..3].iter().cloned().collect()
    );
    assert_eq!(
        under(vec![nested, other]).await,
        members[1..4].iter().cloned().collect(),
        "several OUs, no duplicates"
    );
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn assumed_role_credentials_answer_as_the_member_account() {
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let sdk = sdk_for(&endpoint).await;
    let (management, members) = moto_org(&sdk, 2, 0).await;
    let sts = aws_sdk_sts::Client::new(&sdk);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(management.as_str()));
    for member in &members {
        let creds = AccountCredentials::assumed(
            sts.clone(),
            RoleRequest {
                role_arn: format!("arn:aws:iam::{member}:role/SessionAuditRole"),
                session_name: "ssm-session-audit".into(),
                external_id: Some("the-external-id".into()),
                duration: Duration::from_secs(3600),
            },
            CallSlots::new(2),
            DEADLINE,
        );
        creds.ensure_fresh().await.expect("AssumeRole against moto");
        let member_sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&sdk)
                .credentials_provider(creds.provider().unwrap())
                .build(),
        );
        let who = member_sts
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity as the member");
        assert_eq!(who.account(), Some(member.as_str()));
        assert!(
            who.arn()
                .unwrap()
                .contains(":assumed-role/SessionAuditRole/ssm-session-audit"),
            "{:?}",
            who.arn()
        );
    }
}

// ------------------------------------------------------------------ moto vs the simulator
//
// The same requests go to moto and to the simulator through the real SDK clients,
// and what the tool reads (src/org.rs, src/credentials.rs, src/scan.rs) is compared.
// A difference is a simulator bug and is fixed there. Where moto itself departs
// from AWS (the SDK service models, AWS-FACTS.md), the simulator keeps AWS's
// behaviour and the difference is listed here instead of asserted:
// - ListAccounts without MaxResults: moto answers 100 a page, AWS at most 20 (the
//   tool always asks for 20). MaxResults above 20: AWS InvalidInputException,
//   moto answers. A bad NextToken: moto `InvalidToken`, AWS InvalidInputException.
// - ListAccounts / ListRoots with a member account's credentials: moto answers (an
//   empty list, the roots), AWS AccessDeniedException (management account or
//   delegated administrator only).
// - AssumeRole with a malformed RoleArn or DurationSeconds below 900: moto issues
//   credentials, AWS answers ValidationError. moto does not check ExternalId, nor
//   whether the role exists.
// - GetCallerIdentity with static keys moto knows nothing of: moto answers
//   `arn:aws:sts::<acct>:user/moto`; an IAM user's ARN is `arn:aws:iam::…:user/…`.
//   The account (what the tool reads) agrees.
// - The management account's name: moto calls it `master`; names are data, not
//   protocol, and the members' names are replayed from the simulator.

/// moto and the simulator holding the same organization: the simulator's accounts
/// carry moto's ids, and moto carries the simulator's names, OU tree and closed
/// (SUSPENDED) accounts.
struct Twin {
    moto: SdkConfig,
    sim: SimHandle,
    sim_sdk: SdkConfig,
    /// Index 0 is the management account (moto's 123456789012).
    ids: Vec<String>,
    /// (simulator parent id, moto parent id), the root first.
    parents: Vec<(String, String)>,
}

/// Builds a [`Twin`] of `cfg.accounts` accounts; `cfg.faults.suspended_accounts`
/// are closed in moto. `cfg.account_ids` is filled in here.
async fn twin(mut cfg: SimConfig) -> Twin {
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let moto = sdk_for(&endpoint).await;
    let m = aws_sdk_organizations::Client::new(&moto);
    let management = m
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create_organization")
        .organization()
        .and_then(|o| o.master_account_id())
        .expect("a management account")
        .to_string();

    // Names, emails and the OU tree depend only on the seed and the index, so a
    // simulator with its own ids shows what to replay in moto.
    let shape = Simulator::start(SimConfig {
        account_ids: None,
        identity_resolver: None,
        ..cfg.clone()
    })
    .await
    .expect("simulator");
    let shape_sdk = sdk_for(&shape.endpoint()).await;
    let s = aws_sdk_organizations::Client::new(&shape_sdk);
    let mut ids = vec![management];
    for a in &shape.accounts()[1..] {
        let out = m
            .create_account()
            .account_name(&a.name)
            .email(&a.email)
            .send()
            .await
            .expect("create_account");
        ids.push(
            out.create_account_status()
                .and_then(|c| c.account_id())
                .expect("an account id")
                .to_string(),
        );
    }
    let sim_root = s.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let moto_root = m.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let mut parents = vec![(sim_root.clone(), moto_root.clone())];
    let mut i = 0;
    while i < parents.len() {
        let (sp, mp) = parents[i].clone();
        let children = s
            .list_organizational_units_for_parent()
            .parent_id(&sp)
            .send()
            .await
            .unwrap();
        for ou in children.organizational_units() {
            let created = m
                .create_organizational_unit()
                .parent_id(&mp)
                .name(ou.name().unwrap())
                .send()
                .await
                .expect("create_organizational_unit");
            parents.push((
                ou.id().unwrap().to_string(),
                created
                    .organizational_unit()
                    .and_then(|o| o.id())
                    .unwrap()
                    .to_string(),
            ));
        }
        i += 1;
    }
    let moto_parent: BTreeMap<&str, &str> = parents
        .iter()
        .map(|(s, m)| (s.as_str(), m.as_str()))
        .collect();
    for (a, id) in shape.accounts().iter().zip(&ids).skip(1) {
        if a.parent_id != sim_root {
            m.move_account()
                .account_id(id)
                .source_parent_id(&moto_root)
                .destination_parent_id(moto_parent[a.parent_id.as_str()])
                .send()
                .await
                .expect("move_account");
        }
    }
    for &i in &cfg.faults.suspended_accounts {
        m.close_account()
            .account_id(&ids[i])
            .send()
            .await
            .expect("close_account");
    }
    shape.shutdown().await;

    cfg.account_ids = Some(ids.clone());
    let sim = Simulator::start(cfg).await.expect("simulator");
    let sim_sdk = sdk_for(&sim.endpoint()).await;
    Twin {
        moto,
        sim,
        sim_sdk,
        ids,
        parents,
    }
}

/// The SDK error code and HTTP status of a failed call.
fn error_shape<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> (Option<String>, Option<u16>) {
    (
        e.code().map(str::to_string),
        e.raw_response().map(|r| r.status().as_u16()),
    )
}

/// `min..=max` lowercase letters and digits.
fn alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `prefix` then `min..=max` lowercase letters and digits.
fn id_shaped(id: &str, prefix: &str, min: usize, max: usize) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| alnum(rest, min, max))
}

/// `ou-<4 to 32>-<8 to 32>`, as the Organizations model's pattern says.
fn ou_shaped(id: &str) -> bool {
    id.strip_prefix("ou-")
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(root, own)| alnum(root, 4, 32) && alnum(own, 8, 32))
}

/// What the tool reads of an account.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AccountRow {
    id: String,
    name: String,
    state: Option<String>,
    status: Option<String>,
}

#[allow(deprecated)]
fn row(a: &aws_sdk_organizations::types::Account, management: &str) -> AccountRow {
    let id = a.id().unwrap_or_default().to_string();
    AccountRow {
        // See the list above: the management account's name is moto's own.
        name: if id == management {
            String::new()
        } else {
            a.name().unwrap_or_default().to_string()
        },
        id,
        state: a.state().map(|s| s.as_str().to_string()),
        status: a.status().map(|s| s.as_str().to_string()),
    }
}

/// Every page of ListAccounts (MaxResults 20): the rows of each page.
async fn list_accounts_pages(
    c: &aws_sdk_organizations::Client,
    management: &str,
) -> Vec<Vec<AccountRow>> {
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .list_accounts()
            .max_results(20)
            .set_next_token(token)
            .send()
            .await
            .expect("ListAccounts");
        pages.push(out.accounts().iter().map(|a| row(a, management)).collect());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return pages;
        }
    }
}

/// Every page of ListAccountsForParent: the ids of each page.
async fn accounts_for_parent_pages(
    c: &aws_sdk_organizations::Client,
    parent: &str,
    max: i32,
) -> Vec<BTreeSet<String>> {
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .list_accounts_for_parent()
            .parent_id(parent)
            .max_results(max)
            .set_next_token(token)
            .send()
            .await
            .expect("ListAccountsForParent");
        pages.push(
            out.accounts()
                .iter()
                .filter_map(|a| a.id().map(str::to_string))
                .collect(),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return pages;
        }
    }
}

/// Every page of ListOrganizationalUnitsForParent: (id, name) of each page.
async fn ous_for_parent_pages(
    c: &aws_sdk_organizations::Client,
    parent: &str,
    max: i32,
) -> Vec<Vec<(String, String)>> {
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .max_results(max)
            .set_next_token(token)
            .send()
            .await
            .expect("ListOrganizationalUnitsForParent");
        pages.push(
            out.organizational_units()
                .iter()
                .map(|o| {
                    (
                        o.id().unwrap_or_default().to_string(),
                        o.name().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return pages;
        }
    }
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn organizations_answers_match_moto_field_by_field() {
    // 25 accounts: two ListAccounts pages; 1 and 2 (the Security OU) closed.
    let t = twin(SimConfig {
        accounts: 25,
        include_status_field: true,
        faults: Faults {
            suspended_accounts: vec![1, 2],
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let m = aws_sdk_organizations::Client::new(&t.moto);
    let s = aws_sdk_organizations::Client::new(&t.sim_sdk);
    let management = t.ids[0].as_str();

    // DescribeOrganization: Id and MasterAccountId.
    for (who, c) in [("moto", &m), ("simulator", &s)] {
        let out = c.describe_organization().send().await.unwrap();
        let o = out.organization().unwrap();
        assert!(id_shaped(o.id().unwrap(), "o-", 10, 32), "{who}: {o:?}");
        assert_eq!(o.master_account_id(), Some(management), "{who}");
    }

    // ListRoots: one root, its id shaped as the model says.
    for (who, c) in [("moto", &m), ("simulator", &s)] {
        let roots = c.list_roots().send().await.unwrap();
        assert_eq!(roots.roots().len(), 1, "{who}");
        assert!(
            id_shaped(roots.roots()[0].id().unwrap(), "r-", 4, 32),
            "{who}: {roots:?}"
        );
        assert!(roots.next_token().is_none(), "{who}");
    }

    // ListAccounts, MaxResults 20: the same pages, the same rows.
    let moto_pages = list_accounts_pages(&m, management).await;
    let sim_pages = list_accounts_pages(&s, management).await;
    let sizes = |p: &Vec<Vec<AccountRow>>| p.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(&moto_pages), vec![20, 5]);
    assert_eq!(sizes(&sim_pages), sizes(&moto_pages));
    let flat = |p: Vec<Vec<AccountRow>>| p.into_iter().flatten().collect::<BTreeSet<_>>();
    let (moto_rows, sim_rows) = (flat(moto_pages), flat(sim_pages));
    assert_eq!(sim_rows, moto_rows);
    let suspended: Vec<&AccountRow> = moto_rows
        .iter()
        .filter(|r| r.state.as_deref() == Some("SUSPENDED"))
        .collect();
    assert_eq!(suspended.len(), 2, "closed accounts are SUSPENDED");
    assert!(suspended
        .iter()
        .all(|r| r.status.as_deref() == Some("SUSPENDED")));

    // Per parent: accounts (pages of 2, to page) and child OUs (pages of 1).
    for (sp, mp) in &t.parents {
        let (ma, sa) = (
            accounts_for_parent_pages(&m, mp, 2).await,
            accounts_for_parent_pages(&s, sp, 2).await,
        );
        assert_eq!(
            sa.iter().map(BTreeSet::len).collect::<Vec<_>>(),
            ma.iter().map(BTreeSet::len).collect::<Vec<_>>(),
            "page sizes under {sp} / {mp}"
        );
        let union = |p: Vec<BTreeSet<String>>| p.into_iter().flatten().collect::<BTreeSet<_>>();
        assert_eq!(union(sa), union(ma), "accounts under {sp} / {mp}");
        let (mo, so) = (
            ous_for_parent_pages(&m, mp, 1).await,
            ous_for_parent_pages(&s, sp, 1).await,
        );
        assert_eq!(so.len(), mo.len(), "OU pages under {sp} / {mp}");
        let names = |p: &Vec<Vec<(String, String)>>| {
            p.iter()
                .flatten()
                .map(|(_, n)| n.clone())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(names(&so), names(&mo));
        for (id, _) in so.iter().chain(mo.iter()).flatten() {
            assert!(ou_shaped(id), "OU id {id}");
        }
    }
    assert!(t.parents.len() >= 4, "a tree of OUs: {:?}", t.parents);

    // The tool's own discovery, whole organization and under OUs, agrees.
    let slots = CallSlots::new(2);
    let all_m = org::discover(&m, &[], &slots, DEADLINE).await.unwrap();
    let all_s = org::discover(&s, &[], &slots, DEADLINE).await.unwrap();
    let view = |v: &[ssm_session_audit::model::Account]| {
        v.iter()
            .map(|a| (a.id.clone(), a.state.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(view(&all_s), view(&all_m));
    assert_eq!(all_m.len(), 25);
    // The root (the whole tree, recursively), one OU, two OUs.
    for pick in [vec![0usize], vec![1], vec![2, 3]] {
        let (sims, motos): (Vec<String>, Vec<String>) =
            pick.iter().map(|&k| t.parents[k].clone()).unzip();
        assert_eq!(
            view(&org::discover(&s, &sims, &slots, DEADLINE).await.unwrap()),
            view(&org::discover(&m, &motos, &slots, DEADLINE).await.unwrap()),
            "under {sims:?} / {motos:?}"
        );
    }

    // Errors moto produces: an unknown (well-formed) parent.
    let unknown = "ou-zzzz-zzzzzzzz";
    let (me, se) = (
        m.list_accounts_for_parent()
            .parent_id(unknown)
            .send()
            .await
            .unwrap_err(),
        s.list_accounts_for_parent()
            .parent_id(unknown)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error_shape(&me),
        (Some("ParentNotFoundException".into()), Some(400))
    );
    assert_eq!(error_shape(&se), error_shape(&me));
    let (me, se) = (
        m.list_organizational_units_for_parent()
            .parent_id(unknown)
            .send()
            .await
            .unwrap_err(),
        s.list_organizational_units_for_parent()
            .parent_id(unknown)
            .send()
            .await
            .unwrap_err(),
    );
    assert_eq!(error_shape(&se), error_shape(&me));
    t.sim.shutdown().await;
}

/// What STS answered, reduced to what the tool reads.
#[derive(Debug, PartialEq)]
struct StsView {
    static_account: String,
    assumed_arn: String,
    assumed_caller: (String, String),
    member_sees_management: String,
    long_session_name: (Option<String>, Option<u16>),
}

async fn sts_view(sdk: &SdkConfig, member: &str) -> StsView {
    let sts = aws_sdk_sts::Client::new(sdk);
    let me = sts.get_caller_identity().send().await.unwrap();
    let static_account = me.account().unwrap().to_string();
    let arn = me.arn().unwrap();
    // Only the account and the resource type agree (see the list above).
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    assert_eq!(parts[..2], ["arn", "aws"], "{arn}");
    assert_eq!(parts[4], static_account, "{arn}");
    assert!(parts[5].starts_with("user/"), "{arn}");

    let role_arn = format!("arn:aws:iam::{member}:role/SessionAuditRole");
    let mut assumed_arn = String::new();
    let mut assumed_creds = None;
    for duration in [900, 3600] {
        let asked = SystemTime::now();
        let out = sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("ssm-session-audit")
            .duration_seconds(duration)
            .send()
            .await
            .expect("AssumeRole");
        let c = out.credentials().expect("Credentials");
        assert!(!c.access_key_id().is_empty());
        assert!(!c.secret_access_key().is_empty());
        assert!(!c.session_token().is_empty());
        let expires = SystemTime::try_from(*c.expiration()).expect("Expiration is a time");
        let wanted = asked + Duration::from_secs(duration as u64);
        let off = match expires.duration_since(wanted) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(off < Duration::from_secs(60), "Expiration {off:?} off");
        assumed_arn = out.assumed_role_user().unwrap().arn().to_string();
        assumed_creds = Some(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "test",
        ));
    }

    // The tool's own credentials: assumed, refreshed, expiring as asked.
    let creds = AccountCredentials::assumed(
        sts.clone(),
        RoleRequest {
            role_arn: role_arn.clone(),
            session_name: "ssm-session-audit".into(),
            external_id: None,
            duration: Duration::from_secs(1800),
        },
        CallSlots::new(1),
        DEADLINE,
    );
    creds.ensure_fresh().await.expect("AssumeRole by the tool");
    let provided = creds
        .provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    let left = provided
        .expiry()
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(1740) && left <= Duration::from_secs(1800),
        "{left:?}"
    );

    let as_member = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(sdk)
            .credentials_provider(assumed_creds.clone().unwrap())
            .build(),
    );
    let who = as_member.get_caller_identity().send().await.unwrap();
    let member_orgs = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(sdk)
            .credentials_provider(assumed_creds.unwrap())
            .build(),
    );
    let described = member_orgs
        .describe_organization()
        .send()
        .await
        .expect("any member may describe its organization");
    let long = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("s".repeat(65))
        .send()
        .await
        .unwrap_err();
    StsView {
        static_account,
        assumed_arn,
        assumed_caller: (
            who.account().unwrap().to_string(),
            who.arn().unwrap().to_string(),
        ),
        member_sees_management: described
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap()
            .to_string(),
        long_session_name: error_shape(&long),
    }
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn sts_answers_match_moto_field_by_field() {
    let t = twin(SimConfig {
        accounts: 4,
        ..SimConfig::default()
    })
    .await;
    let member = &t.ids[2];
    let moto = sts_view(&t.moto, member).await;
    let sim = sts_view(&t.sim_sdk, member).await;
    assert_eq!(moto.static_account, t.ids[0]);
    assert_eq!(
        moto.assumed_arn,
        format!("arn:aws:sts::{member}:assumed-role/SessionAuditRole/ssm-session-audit")
    );
    assert_eq!(
        moto.assumed_caller,
        (member.clone(), moto.assumed_arn.clone())
    );
    assert_eq!(
        moto.long_session_name,
        (Some("ValidationError".into()), Some(400))
    );
    assert_eq!(sim, moto);
    t.sim.shutdown().await;
}

// ------------------------------------------------------------------ one scan, two stand-ins

const SCAN_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn a_scan_across_moto_and_the_simulator_finds_the_ground_truth() {
    // Organizations and STS in moto, LookupEvents (and Session Manager, which
    // moto does not list) in the simulator: those calls carry moto's keys,
    // which the simulator resolves through moto.
    let endpoint = moto_endpoint();
    let closed = vec![3usize, 4];
    let t = twin(SimConfig {
        seed: 11,
        accounts: 28,
        regions: SCAN_REGIONS.iter().map(|s| s.to_string()).collect(),
        window_end: Utc::now() - TimeDelta::minutes(5),
        window: TimeDelta::days(7),
        sessions_per_partition: 6,
        identity_resolver: Some(endpoint.clone()),
        faults: Faults {
            suspended_accounts: closed.clone(),
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let cfg = t.sim.config().clone();
    let (start, end) = (cfg.window_start(), cfg.window_end);
    let dir = common::tempdir();
    let out_dir = common::out_dir(&dir);
    let mut cmd = common::command(&endpoint);
    cmd.env("AWS_ENDPOINT_URL_CLOUDTRAIL", t.sim.endpoint())
        .env("AWS_ENDPOINT_URL_SSM", t.sim.endpoint())
        .args(["scan", "--regions", &SCAN_REGIONS.join(",")])
        .args(["--start", &start.to_rfc3339(), "--end", &end.to_rfc3339()])
        .args(["--role-name", &cfg.role_name, "--output"])
        .arg(&out_dir)
        .args(["--fail-on", "none", "--quiet"]);
    let out = common::run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "a complete scan exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::read_report(&out_dir);
    assert_eq!(report["run"]["complete"], true);

    let truth = t.sim.ground_truth(
        start,
        end,
        &["StartSession", "ResumeSession", "TerminateSession"],
    );
    let got = common::report_event_ids(&report);
    let mut checked = 0;
    let mut expected = 0;
    assert_eq!(
        report["accounts"].as_array().unwrap().len(),
        t.ids.len(),
        "every account of moto's organization is in the report"
    );
    for (i, id) in t.ids.iter().enumerate() {
        let a = common::account(&report, id);
        expected += truth.events[id].values().map(BTreeSet::len).sum::<usize>();
        if closed.contains(&i) {
            assert_eq!(a["coverage"]["status"], "skipped", "{id}");
            assert!(got.get(id).is_none(), "{id} was not scanned");
            expected -= truth.events[id].values().map(BTreeSet::len).sum::<usize>();
            continue;
        }
        assert_eq!(a["coverage"]["status"], "complete", "{id}: {a}");
        for region in SCAN_REGIONS {
            assert_eq!(common::region_status(&report, id, region), "ok");
            let want: Vec<String> = truth.events[id][region].iter().cloned().collect();
            let have = got
                .get(id)
                .and_then(|r| r.get(region))
                .cloned()
                .unwrap_or_default();
            assert_eq!(have, want, "{id}/{region} differs from the ground truth");
            checked += want.len();
        }
    }
    assert!(truth.malformed.is_empty());
    assert_eq!(
        checked, expected,
        "every event of the scanned accounts, none of the closed accounts'"
    );
    assert!(
        checked > 100,
        "the comparison covered many events: {checked}"
    );

    // The crossing really happened: only LookupEvents and Session Manager's
    // calls reached the simulator, with keys it learnt from moto (26 members'
    // assumed roles and the static caller), and every posture was read.
    let stats = t.sim.stats();
    assert!(stats.calls.get("LookupEvents").copied().unwrap_or(0) > 0);
    assert_eq!(
        stats.calls.keys().collect::<Vec<_>>(),
        ["DescribeSessions", "GetDocument", "LookupEvents"],
        "{stats:?}"
    );
    assert_eq!(
        report["run"]["session_manager"]["partitions_read"],
        ((t.ids.len() - closed.len()) * SCAN_REGIONS.len()) as u64
    );
    assert!(stats.identities_resolved >= 26, "{stats:?}");
    assert_eq!(stats.credentials_issued, 0);
    assert_eq!(stats.unrecognized_client, 0);
    t.sim.shutdown().await;
}

// ------------------------------------------------------------------ GetDocument

/// What `GetDocument` answers, reduced to what the tool reads, and the tool's
/// own reading of it.
#[derive(Debug, PartialEq)]
struct DocumentView {
    name: Option<String>,
    document_type: Option<String>,
    document_format: Option<String>,
    status: Option<String>,
    version: Option<String>,
    content: serde_json::Value,
    posture: ssm_session_audit::model::DocumentPosture,
    missing: (Option<String>, Option<u16>),
    tool_missing: ssm_session_audit::model::ReadStatus,
}

/// The tool's Session Manager endpoint for `sdk`'s endpoint, in us-east-1.
fn ssm_wire(sdk: &SdkConfig) -> ssm_session_audit::ssm::SsmWire {
    let clients = ssm_session_audit::call::ClientSettings::new(sdk, Duration::from_secs(10));
    ssm_session_audit::ssm::SsmWire::new(clients.sdk(), "us-east-1", Duration::from_secs(10))
        .expect("SSM endpoint")
}

fn caller_credentials(
    sdk: &SdkConfig,
) -> std::sync::Arc<ssm_session_audit::source::lookup::credentials::CallerCredentials> {
    std::sync::Arc::new(
        ssm_session_audit::source::lookup::credentials::CallerCredentials::new(
            sdk.credentials_provider(),
        ),
    )
}

async fn document_view(sdk: &SdkConfig, account: &str, name: &str) -> DocumentView {
    use aws_sdk_ssm::types::DocumentFormat;
    use ssm_session_audit::ssm::{read::read_document, SsmPartition, SsmRun};
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let out = ssm
        .get_document()
        .name(name)
        .document_format(DocumentFormat::Json)
        .send()
        .await
        .expect("GetDocument");
    // Not compared: moto refuses a document named by its ARN, which AWS
    // accepts (shared documents); the simulator accepts it too.
    let missing = ssm
        .get_document()
        .name("No-Such-Session-Document")
        .document_format(DocumentFormat::Json)
        .send()
        .await
        .unwrap_err();
    let (_never, cancel) = tokio::sync::watch::channel(false);
    let run = SsmRun {
        slots: CallSlots::new(2),
        cancel,
        retry_deadline: DEADLINE,
        window: ssm_session_audit::model::TimeWindow {
            start: Utc::now() - TimeDelta::days(1),
            end: Utc::now(),
        },
        tunnel_documents: Vec::new(),
        progress: std::sync::Arc::new(ssm_session_audit::progress::NoProgress),
        caller_credentials: caller_credentials(sdk),
        listed: ssm_session_audit::ssm::read::already_listed(),
        starts: Default::default(),
    };
    let credentials = AccountCredentials::caller();
    let wire = ssm_wire(sdk);
    let p = SsmPartition {
        account_id: account,
        region: "us-east-1",
        wire: &wire,
        credentials: &credentials,
    };
    DocumentView {
        name: out.name().map(str::to_string),
        document_type: out.document_type().map(|t| t.as_str().to_string()),
        document_format: out.document_format().map(|f| f.as_str().to_string()),
        status: out.status().map(|s| s.as_str().to_string()),
        version: out.document_version().map(str::to_string),
        content: serde_json::from_str(out.content().unwrap_or_default()).expect("JSON content"),
        posture: read_document(&run, &p, name).await,
        missing: error_shape(&missing),
        tool_missing: read_document(&run, &p, "No-Such-Session-Document")
            .await
            .status,
    }
}

#[tokio::test]
#[ignore = "needs moto (MOTO_ENDPOINT); run by .ci/run"]
async fn get_document_matches_moto_field_by_field() {
    use ssm_session_audit::model::{Logging, ReadStatus};
    use ssm_session_audit::ssm::{read::read_document, SsmPartition, SsmRun};
    let endpoint = moto_endpoint();
    reset_moto(&endpoint);
    let moto = sdk_for(&endpoint).await;
    let moto_ssm = aws_sdk_ssm::Client::new(&moto);
    let me = aws_sdk_sts::Client::new(&moto)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let moto_account = me.account().unwrap().to_string();

    // Before anything is saved: the tool says "never saved", for both.
    let (_never, cancel) = tokio::sync::watch::channel(false);
    let run = SsmRun {
        slots: CallSlots::new(2),
        cancel,
        retry_deadline: DEADLINE,
        window: ssm_session_audit::model::TimeWindow {
            start: Utc::now() - TimeDelta::days(1),
            end: Utc::now(),
        },
        tunnel_documents: Vec::new(),
        progress: std::sync::Arc::new(ssm_session_audit::progress::NoProgress),
        caller_credentials: caller_credentials(&moto),
        listed: ssm_session_audit::ssm::read::already_listed(),
        starts: Default::default(),
    };
    let caller = AccountCredentials::caller();
    let fresh = read_document(
        &run,
        &SsmPartition {
            account_id: &moto_account,
            region: "us-east-1",
            wire: &ssm_wire(&moto),
            credentials: &caller,
        },
        "SSM-SessionManagerRunShell",
    )
    .await;
    assert_eq!(fresh.status, ReadStatus::NeverSaved);
    assert_eq!(fresh.logging, Logging::None);
    let sim = Simulator::start(SimConfig {
        accounts: 3,
        ssm: sim::SsmSim {
            preferences: vec![(0, "us-east-1".into(), sim::SimPreferences::NeverSaved)],
            ..sim::SsmSim::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_sdk = sdk_for(&sim.endpoint()).await;
    let mgmt = sim.management_account_id();
    // The simulator's credentials are not moto's: sign as its caller.
    let run = SsmRun {
        caller_credentials: caller_credentials(&sim_sdk),
        listed: ssm_session_audit::ssm::read::already_listed(),
        starts: Default::default(),
        ..run
    };
    let never = read_document(
        &run,
        &SsmPartition {
            account_id: &mgmt,
            region: "us-east-1",
            wire: &ssm_wire(&sim_sdk),
            credentials: &caller,
        },
        "SSM-SessionManagerRunShell",
    )
    .await;
    assert_eq!(never, fresh);
    sim.shutdown().await;

    // The simulator's default preferences, saved in moto as an administrator would.
    let sim = Simulator::start(SimConfig {
        accounts: 3,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_sdk = sdk_for(&sim.endpoint()).await;
    let content = aws_sdk_ssm::Client::new(&sim_sdk)
        .get_document()
        .name("SSM-SessionManagerRunShell")
        .send()
        .await
        .unwrap()
        .content()
        .unwrap()
        .to_string();
    moto_ssm
        .create_document()
        .name("SSM-SessionManagerRunShell")
        .content(&content)
        .document_type(aws_sdk_ssm::types::DocumentType::Session)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .send()
        .await
        .expect("CreateDocument in moto");
    let from_moto = document_view(&moto, &moto_account, "SSM-SessionManagerRunShell").await;
    let from_sim = document_view(
        &sim_sdk,
        &sim.management_account_id(),
        "SSM-SessionManagerRunShell",
    )
    .await;
    assert_eq!(
        from_moto.name.as_deref(),
        Some("SSM-SessionManagerRunShell")
    );
    assert_eq!(from_moto.document_type.as_deref(), Some("Session"));
    assert_eq!(from_moto.document_format.as_deref(), Some("JSON"));
    assert_eq!(from_moto.status.as_deref(), Some("Active"));
    assert_eq!(from_moto.version.as_deref(), Some("1"));
    assert_eq!(
        from_moto.missing,
        (Some("InvalidDocument".into()), Some(400))
    );
    assert_eq!(from_moto.tool_missing, ReadStatus::NotFound);
    assert_eq!(from_moto.posture.logging, Logging::S3AndCloudWatch);
    assert_eq!(from_moto.posture.status, ReadStatus::Read);
    assert_eq!(from_sim, from_moto);
    sim.shutdown().await;
}
