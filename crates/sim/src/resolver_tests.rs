//! The `account_ids` and `identity_resolver` knobs, with a second simulator standing
//! in for the STS that issued the keys (the moto tests do the same against moto).

use aws_credential_types::Credentials;
use aws_sdk_cloudtrail::error::ProvideErrorMetadata;

use super::{SimConfig, Simulator};

const IDS: [&str; 4] = [
    "123456789012",
    "210987654321",
    "333333333333",
    "444444444444",
];

fn cfg() -> SimConfig {
    SimConfig {
        accounts: IDS.len(),
        account_ids: Some(IDS.iter().map(|s| s.to_string()).collect()),
        regions: vec!["us-east-1".into()],
        ..SimConfig::default()
    }
}

fn creds(key: &str, token: Option<String>) -> Credentials {
    Credentials::new(key, "not-the-real-secret", token, None, "test")
}

async fn sdk(endpoint: &str, creds: Credentials) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(creds)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// Every event id of one lookup, all pages.
async fn lookup_ids(ct: &aws_sdk_cloudtrail::Client) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let out = ct
            .lookup_events()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| e.code().unwrap_or("no code").to_string())?;
        ids.extend(
            out.events()
                .iter()
                .filter_map(|e| e.event_id())
                .map(str::to_string),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(ids);
        }
    }
}

#[test]
fn account_ids_must_fit_the_organization() {
    let mut c = cfg();
    c.accounts = 3;
    assert!(c.validate().is_err());
    let mut c = cfg();
    c.account_ids.as_mut().unwrap()[2] = "12345".into();
    assert!(c.validate().is_err());
    let mut c = cfg();
    c.account_ids.as_mut().unwrap()[2] = IDS[1].into();
    assert!(c.validate().is_err());
    assert!(cfg().validate().is_ok());
}

#[tokio::test]
async fn given_ids_are_the_accounts_and_the_ground_truth_keys() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let ids: Vec<String> = sim.accounts().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, IDS);
    assert_eq!(sim.management_account_id(), IDS[0]);
    let c = sim.config();
    let truth = sim.ground_truth(c.window_start(), c.window_end, &[]);
    let mut want: Vec<&str> = IDS.to_vec();
    want.sort();
    assert_eq!(
        truth.events.keys().map(String::as_str).collect::<Vec<_>>(),
        want
    );
    assert!(truth.total() > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn keys_issued_elsewhere_are_resolved_to_their_account() {
    // `issuer` plays moto: it issues the keys; `sim` only knows them through it.
    let issuer = Simulator::start(cfg()).await.unwrap();
    let sim = Simulator::start(SimConfig {
        identity_resolver: Some(issuer.endpoint()),
        ..cfg()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    let truth = sim.ground_truth(c.window_start(), c.window_end, &[]);

    let sts =
        aws_sdk_sts::Client::new(&sdk(&issuer.endpoint(), creds("AKIASTATIC0001", None)).await);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/SessionAuditRole", IDS[2]))
        .role_session_name("audit")
        .send()
        .await
        .unwrap();
    let c2 = out.credentials().unwrap();
    let member = creds(c2.access_key_id(), Some(c2.session_token().to_string()));

    // The member's key reads the member's records, the static key the management's.
    let ct = aws_sdk_cloudtrail::Client::new(&sdk(&sim.endpoint(), member.clone()).await);
    // No filter: every record of the partition comes back; the ground truth holds
    // its session events, and only the member's partition has exactly those.
    let got = lookup_ids(&ct).await.unwrap();
    let want = &truth.events[IDS[2]]["us-east-1"];
    assert!(!want.is_empty());
    assert!(want.iter().all(|id| got.contains(id)));
    for other in [IDS[0], IDS[1], IDS[3]] {
        assert!(truth.events[other]["us-east-1"]
            .iter()
            .all(|id| !got.contains(id)));
    }
    let ct =
        aws_sdk_cloudtrail::Client::new(&sdk(&sim.endpoint(), creds("AKIASTATIC0001", None)).await);
    let mgmt = lookup_ids(&ct).await.unwrap();
    assert!(truth.events[IDS[0]]["us-east-1"]
        .iter()
        .all(|id| mgmt.contains(id)));

    // An assumed role resolved from elsewhere is still capped at 1 h when it
    // chains; the static caller is not.
    let assume_2h = |c: Credentials| {
        let endpoint = sim.endpoint();
        async move {
            aws_sdk_sts::Client::new(&sdk(&endpoint, c).await)
                .assume_role()
                .role_arn(format!("arn:aws:iam::{}:role/SessionAuditRole", IDS[3]))
                .role_session_name("audit")
                .duration_seconds(7200)
                .send()
                .await
        }
    };
    let chained = assume_2h(member.clone()).await.unwrap_err();
    assert_eq!(chained.code(), Some("ValidationError"));
    assert!(assume_2h(creds("AKIASTATIC0001", None)).await.is_ok());

    // GetCallerIdentity on `sim` answers what the issuer said.
    let who = aws_sdk_sts::Client::new(&sdk(&sim.endpoint(), member).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(IDS[2]));
    assert_eq!(
        who.arn(),
        Some(
            format!(
                "arn:aws:sts::{}:assumed-role/SessionAuditRole/audit",
                IDS[2]
            )
            .as_str()
        )
    );
    let stats = sim.stats();
    assert_eq!(
        stats.identities_resolved, 2,
        "one question per key: {stats:?}"
    );
    assert_eq!(
        stats.credentials_issued, 1,
        "only the static caller's 2 h role"
    );
    sim.shutdown().await;
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_key_of_another_organization_is_refused() {
    // The issuer's accounts are its own generated ones, none of `sim`'s.
    let issuer = Simulator::start(SimConfig::default()).await.unwrap();
    let sim = Simulator::start(SimConfig {
        identity_resolver: Some(issuer.endpoint()),
        ..cfg()
    })
    .await
    .unwrap();
    let ct =
        aws_sdk_cloudtrail::Client::new(&sdk(&sim.endpoint(), creds("AKIASTATIC0001", None)).await);
    assert_eq!(
        lookup_ids(&ct).await.unwrap_err(),
        "UnrecognizedClientException"
    );
    let orgs = aws_sdk_organizations::Client::new(
        &sdk(&sim.endpoint(), creds("AKIASTATIC0001", None)).await,
    );
    let err = orgs.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
    let sts = aws_sdk_sts::Client::new(&sdk(&sim.endpoint(), creds("AKIASTATIC0001", None)).await);
    let err = sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    assert_eq!(sim.stats().identities_resolved, 1);
    sim.shutdown().await;
    issuer.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_resolver_is_a_server_fault_not_the_management_caller() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sim = Simulator::start(SimConfig {
        identity_resolver: Some(format!("http://127.0.0.1:{port}")),
        ..cfg()
    })
    .await
    .unwrap();
    let ct =
        aws_sdk_cloudtrail::Client::new(&sdk(&sim.endpoint(), creds("AKIASTATIC0001", None)).await);
    assert_eq!(lookup_ids(&ct).await.unwrap_err(), "InternalFailure");
    assert_eq!(sim.stats().identities_resolved, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn without_a_resolver_unknown_keys_stay_the_management_caller() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let who = aws_sdk_sts::Client::new(&sdk(&sim.endpoint(), creds("AKIAANYTHING01", None)).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(IDS[0]));
    assert_eq!(sim.stats().identities_resolved, 0);
    sim.shutdown().await;
}
