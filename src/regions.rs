//! Which regions an account has enabled: asked, never guessed from an error.
//!
//! The Account Management API (`account:ListRegions`, from the management
//! account or a delegated administrator) says it for every account; where it is
//! not allowed, EC2 `DescribeRegions` with the account's own audit role says it
//! too. An error code alone (`UnrecognizedClientException`) never marks a region
//! as holding nothing: it is a failed region. The regions AWS enables in every
//! account, which cannot be disabled, need no question.
//!
//! EC2 is one call of one API, so it is made here, signed with SigV4 and sent
//! through the run's own HTTP client, rather than by a client crate whose build
//! alone takes longer than the whole test suite.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::metadata::{ErrorMetadata, ProvideErrorMetadata};
use aws_smithy_types::timeout::TimeoutConfig;

use crate::call::{call_with_retry, CallFailure, CallSlots, ErrorClass, Tokens};
use crate::config::RegionSelection;

/// Regions AWS enables in every account (all launched before March 2019); they
/// cannot be disabled. Every later region is opt-in.
pub const DEFAULT_REGIONS: [&str; 17] = [
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// A region AWS enables in every account. (Regions outside the `aws`
/// partition are treated as opt-in: asked, not assumed.)
pub fn is_default_region(r: &str) -> bool {
    DEFAULT_REGIONS.contains(&r)
}

/// What is known of one region of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enablement {
    /// Enabled (or enabling, or disabling: it may hold activity): read it.
    Enabled,
    /// Not enabled: it can hold no activity.
    NotEnabled,
    /// Could not be told: read it, and if it refuses the credentials the region
    /// is failed with this reason (which names the permission to grant).
    Unknown(String),
}

/// The regions to read in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRegions {
    pub regions: Vec<(String, Enablement)>,
    /// Why the account's regions could not all be known (with `--regions all`,
    /// only the default regions were read): makes the account partial.
    pub incomplete: Option<String>,
}

/// Ask for an account's enabled regions, as `selection` needs them.
pub struct RegionAsker<'a> {
    pub account: &'a aws_sdk_account::Client,
    pub ec2: Ec2Regions<'a>,
    pub slots: &'a CallSlots,
    pub deadline: Duration,
}

impl RegionAsker<'_> {
    /// `is_caller`: the account is the caller's own (ListRegions then omits the id).
    /// `audit_role`: the account's own credentials, for the EC2 fallback (`None` = the caller's).
    pub async fn regions(
        &self,
        selection: &RegionSelection,
        account_id: &str,
        is_caller: bool,
        audit_role: Option<SharedCredentialsProvider>,
    ) -> AccountRegions {
        if let RegionSelection::List(list) = selection {
            if list.iter().all(|r| is_default_region(r)) {
                return AccountRegions {
                    regions: list
                        .iter()
                        .map(|r| (r.clone(), Enablement::Enabled))
                        .collect(),
                    incomplete: None,
                };
            }
        }
        let known = match self.list_regions(account_id, is_caller).await {
            Ok(m) => Ok(m),
            Err(listed) => match self.ec2.describe(audit_role, self.slots, self.deadline).await {
                Ok(m) => Ok(m),
                Err(described) => Err(format!(
                    "cannot tell which regions the account has enabled: grant account:ListRegions to the caller (with trusted access for AWS Account Management) or ec2:DescribeRegions to the audit role (account:ListRegions: {listed}; ec2:DescribeRegions: {described})"
                )),
            },
        };
        match (selection, known) {
            (RegionSelection::List(list), Ok(map)) => AccountRegions {
                regions: list
                    .iter()
                    .map(|r| {
                        let state = match map.get(r) {
                            Some(true) => Enablement::Enabled,
                            Some(false) => Enablement::NotEnabled,
                            None if is_default_region(r) => Enablement::Enabled,
                            None => Enablement::NotEnabled,
                        };
                        (r.clone(), state)
                    })
                    .collect(),
                incomplete: None,
            },
            (RegionSelection::List(list), Err(why)) => AccountRegions {
                regions: list
                    .iter()
                    .map(|r| {
                        let state = if is_default_region(r) {
                            Enablement::Enabled
                        } else {
                            Enablement::Unknown(why.clone())
                        };
                        (r.clone(), state)
                    })
                    .collect(),
                incomplete: None,
            },
            (RegionSelection::All, Ok(map)) => AccountRegions {
                regions: map
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(r, _)| (r, Enablement::Enabled))
                    .collect(),
                incomplete: None,
            },
            (RegionSelection::All, Err(why)) => AccountRegions {
                regions: DEFAULT_REGIONS
                    .iter()
                    .map(|r| (r.to_string(), Enablement::Enabled))
                    .collect(),
                incomplete: Some(format!(
                    "only the regions every account has were read: {why}"
                )),
            },
        }
    }

    /// `account:ListRegions`, every page: region → may hold activity.
    async fn list_regions(
        &self,
        account_id: &str,
        is_caller: bool,
    ) -> Result<BTreeMap<String, bool>, CallFailure> {
        let mut out = BTreeMap::new();
        let mut tokens = Tokens::new(1_000);
        let mut token: Option<String> = None;
        loop {
            let page = call_with_retry(Some(self.slots), self.deadline, || {
                let mut req = self
                    .account
                    .list_regions()
                    .max_results(50)
                    .set_next_token(token.clone());
                if !is_caller {
                    req = req.account_id(account_id);
                }
                req.send()
            })
            .await?;
            let Some(regions) = page.regions.as_deref() else {
                return Err(CallFailure {
                    class: ErrorClass::Fatal,
                    code: "malformed-response".into(),
                    message: "a ListRegions answer without its Regions member".into(),
                });
            };
            for r in regions {
                if let Some(name) = r.region_name() {
                    use aws_sdk_account::types::RegionOptStatus as S;
                    let on = !matches!(r.region_opt_status(), Some(S::Disabled));
                    out.insert(name.to_string(), on);
                }
            }
            match tokens.next(page.next_token()) {
                Ok(Some(t)) => token = Some(t),
                Ok(None) => return Ok(out),
                Err(e) => {
                    return Err(CallFailure {
                        class: ErrorClass::Fatal,
                        code: "paging".into(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }
}

/// EC2 `DescribeRegions` with an account's own credentials.
pub struct Ec2Regions<'a> {
    pub sdk: &'a SdkConfig,
    /// The region whose EC2 endpoint is asked (the run's home region).
    pub region: String,
    pub call_timeout: Duration,
}

/// An EC2 error, as its XML names it.
#[derive(Debug)]
pub struct Ec2Error(ErrorMetadata);

impl std::fmt::Display for Ec2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.0.code().unwrap_or("error"),
            self.0.message().unwrap_or("")
        )
    }
}

impl std::error::Error for Ec2Error {}

impl ProvideErrorMetadata for Ec2Error {
    fn meta(&self) -> &ErrorMetadata {
        &self.0
    }
}

impl Ec2Regions<'_> {
    fn endpoint(&self) -> String {
        if let Some(u) = std::env::var("AWS_ENDPOINT_URL_EC2")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.sdk.endpoint_url().map(str::to_string))
        {
            return u;
        }
        let suffix = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://ec2.{}.{suffix}", self.region)
    }

    /// Region → opted in (or not required), from `AllRegions=true`.
    pub async fn describe(
        &self,
        credentials: Option<SharedCredentialsProvider>,
        slots: &CallSlots,
        deadline: Duration,
    ) -> Result<BTreeMap<String, bool>, CallFailure> {
        let fail = |code: &str, message: String| CallFailure {
            class: ErrorClass::Fatal,
            code: code.into(),
            message,
        };
        let provider = credentials
            .or_else(|| self.sdk.credentials_provider())
            .ok_or_else(|| {
                fail(
                    "credentials",
                    "no credentials to sign DescribeRegions".into(),
                )
            })?;
        let http = self
            .sdk
            .http_client()
            .ok_or_else(|| fail("request", "no HTTP client".into()))?;
        let sleep = self
            .sdk
            .sleep_impl()
            .ok_or_else(|| fail("request", "no async sleep".into()))?;
        let endpoint = self.endpoint();
        let body = call_with_retry(Some(slots), deadline, || {
            let (provider, http, sleep, endpoint) = (
                provider.clone(),
                http.clone(),
                sleep.clone(),
                endpoint.clone(),
            );
            let region = self.region.clone();
            let timeout = self.call_timeout;
            async move {
                let creds = provider.provide_credentials().await.map_err(|e| {
                    aws_smithy_runtime_api::client::result::SdkError::construction_failure(e)
                })?;
                let op = Operation::builder()
                    .service_name("ec2")
                    .operation_name("DescribeRegions")
                    .http_client(http)
                    .endpoint_url(&endpoint)
                    .no_auth()
                    .no_retry()
                    .sleep_impl(sleep)
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(5))
                            .operation_attempt_timeout(timeout)
                            .build(),
                    )
                    .serializer(move |_: ()| signed_request(&endpoint, &region, &creds))
                    .deserializer::<String, Ec2Error>(deserialize)
                    .build();
                op.invoke(()).await
            }
        })
        .await?;
        Ok(parse_regions(&body))
    }
}

const EC2_BODY: &str = "Action=DescribeRegions&AllRegions=true&Version=2016-11-15";

/// The request, signed with SigV4 for `ec2` in `region`.
fn signed_request(
    endpoint: &str,
    region: &str,
    creds: &aws_credential_types::Credentials,
) -> Result<HttpRequest, aws_smithy_runtime_api::box_error::BoxError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let uri: http::Uri = endpoint.parse()?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or("the EC2 endpoint has no host")?;
    let scheme = uri.scheme_str().unwrap_or("https");
    let url = format!("{scheme}://{host}/");
    // The orchestrator puts the endpoint's path before the request's ("/"):
    // the signature covers the path that is sent, not the one built here.
    let sent = format!("{scheme}://{host}{}/", uri.path().trim_end_matches('/'));
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host.as_str()), ("content-type", content_type)];
    let identity = creds.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &sent,
        headers.iter().copied(),
        SignableBody::Bytes(EC2_BODY.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut req = http::Request::builder()
        .method("POST")
        .uri(&url)
        .header("host", &host)
        .header("content-type", content_type)
        .body(EC2_BODY.to_string())?;
    instructions.apply_to_request_http1x(&mut req);
    let (parts, body) = req.into_parts();
    Ok(HttpRequest::try_from(http::Request::from_parts(
        parts,
        SdkBody::from(body),
    ))?)
}

fn deserialize(resp: &HttpResponse) -> Result<String, OrchestratorError<Ec2Error>> {
    let text = resp
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    if resp.status().is_success() {
        if !text.contains("<regionInfo") {
            return Err(OrchestratorError::operation(Ec2Error(
                ErrorMetadata::builder()
                    .code("malformed-response")
                    .message("a DescribeRegions answer without regionInfo")
                    .build(),
            )));
        }
        return Ok(text);
    }
    let code = tag(&text, "Code").unwrap_or_else(|| format!("HTTP {}", resp.status().as_u16()));
    let message = tag(&text, "Message").unwrap_or_default();
    let meta = ErrorMetadata::builder().code(code).message(message).build();
    Err(OrchestratorError::operation(Ec2Error(meta)))
}

/// The text of the first `<name>…</name>` in `xml`.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].trim().to_string())
}

/// `regionInfo/item`s: region → opted in (or not required).
fn parse_regions(xml: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for item in xml.split("<item>").skip(1) {
        let item = item.split("</item>").next().unwrap_or("");
        if let Some(name) = tag(item, "regionName") {
            let status = tag(item, "optInStatus").unwrap_or_default();
            out.insert(name, status != "not-opted-in");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_regions_need_no_question() {
        assert!(is_default_region("us-east-1"));
        assert!(is_default_region("ap-southeast-2"));
        assert!(!is_default_region("ap-east-1"));
        assert!(!is_default_region("me-central-1"));
        assert!(!is_default_region("us-gov-west-1"));
    }

    #[test]
    fn describe_regions_xml_reads_opt_in_status() {
        let xml = "<DescribeRegionsResponse><requestId>x</requestId><regionInfo>\
            <item><regionName>us-east-1</regionName><regionEndpoint>e</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>\
            <item><regionName>ap-east-1</regionName><optInStatus>not-opted-in</optInStatus></item>\
            <item><regionName>me-central-1</regionName><optInStatus>opted-in</optInStatus></item>\
            </regionInfo></DescribeRegionsResponse>";
        let m = parse_regions(xml);
        assert_eq!(m.get("us-east-1"), Some(&true));
        assert_eq!(m.get("ap-east-1"), Some(&false));
        assert_eq!(m.get("me-central-1"), Some(&true));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn ec2_errors_name_their_code() {
        let xml = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized</Message></Error></Errors></Response>";
        assert_eq!(tag(xml, "Code").as_deref(), Some("UnauthorizedOperation"));
        assert_eq!(
            tag(xml, "Message").as_deref(),
            Some("You are not authorized")
        );
    }
}
