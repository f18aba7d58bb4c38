//! Conformance against moto, an AWS stand-in we did not write: Organizations
//! discovery, OUs and STS AssumeRole through the real SDK and our own code.
//!
//! These tests are `#[ignore]`d in a plain `cargo test` (no Python needed) and run
//! by `.ci/run`, which installs moto, starts `moto_server` and sets MOTO_ENDPOINT.
//! Run that way without moto they FAIL: they never skip silently.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use ssm_session_audit::credentials::{AccountCredentials, RoleRequest};
use ssm_session_audit::org;
use ssm_session_audit::retry::CallSlots;

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
