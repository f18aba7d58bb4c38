//! AWS JSON 1.1 calls on the wire, for the calls a scan makes tens of
//! thousands of times (`LookupEvents`, `DescribeSessions`, `GetDocument`): the
//! request signed here (SigV4, `aws-sigv4`), sent on the run's one HTTP client
//! (the SDK's own: its pool, TLS and proxy settings), the answer read as the
//! caller's own serde type.
//!
//! Through the SDK's orchestrator each call costs about 0.3–0.4 ms of CPU
//! before its answer is read (config layers, interceptors, endpoint rules per
//! call, identity resolution, deserialising into SDK types that are then read
//! again); this path costs what signing and HTTP cost. The endpoint is the
//! SDK's own, resolved once per region by the service crate's resolver (see
//! [`endpoint_override`]), so `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`,
//! profiles' `endpoint_url`, FIPS and dual-stack still hold.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::sigv4::Signer;
use super::written::{MarkedBody, Written};
use super::{classify_service, short, source_chain, CallFailure, ErrorClass};

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One service in one region: its endpoint, signing name and the connection
/// pool that reaches it.
#[derive(Clone)]
pub struct JsonWire {
    connector: SharedHttpConnector,
    /// Signs here, with keys kept; `None` for an endpoint whose path only
    /// `aws-sigv4` canonicalises (see `super::sigv4`).
    signer: Option<Arc<Signer>>,
    uri: http::Uri,
    host: Arc<str>,
    region: Arc<str>,
    signing_name: &'static str,
    timeout: Duration,
}

impl std::fmt::Debug for JsonWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonWire({} {})", self.signing_name, self.uri)
    }
}

impl JsonWire {
    /// `endpoint`: the URL the service's resolver gave for `region`. `sdk`
    /// must hold the run's HTTP client (see `ClientSettings`).
    pub fn new(
        sdk: &SdkConfig,
        region: &str,
        signing_name: &'static str,
        endpoint: &str,
        call_timeout: Duration,
    ) -> Result<Self, String> {
        let http = sdk.http_client().ok_or("no HTTP client")?;
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| format!("endpoint {endpoint}: {e}"))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| format!("endpoint {endpoint} has no host"))?;
        // The path as sent, ending in one slash: what the signature covers.
        let path = format!("{}/", uri.path().trim_end_matches('/'));
        let url = format!("{}://{host}{path}", uri.scheme_str().unwrap_or("https"));
        let signer = Signer::new(&host, &path, region, signing_name).map(Arc::new);
        let uri = url
            .parse()
            .map_err(|e| format!("endpoint {endpoint}: {e}"))?;
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .build();
        Ok(JsonWire {
            connector: http.http_connector(&settings, &connector_components(sdk)?),
            signer,
            uri,
            host: host.into(),
            region: region.into(),
            signing_name,
            timeout: call_timeout,
        })
    }

    /// One call of `target` (the `X-Amz-Target` header the SDK sends) with
    /// `body`, signed with `creds`, its 2xx answer read as `T`. Every failure
    /// is a [`CallFailure`] for the caller to retry or report: a timeout or a
    /// broken connection is transient, an answer that is not `T`'s JSON is
    /// `bad-response` (transient), an AWS error is classified by its code.
    pub async fn call<T: DeserializeOwned>(
        &self,
        creds: &Credentials,
        target: &str,
        body: String,
    ) -> Result<T, CallFailure> {
        self.call_marked(creds, target, body, None).await
    }

    /// [`Self::call`], marking `written` when the request goes on the wire
    /// (see `super::written`).
    pub async fn call_marked<T: DeserializeOwned>(
        &self,
        creds: &Credentials,
        target: &str,
        body: String,
        written: Option<&Arc<Written>>,
    ) -> Result<T, CallFailure> {
        let request = self
            .signed(creds, target, body, written)
            .map_err(|e| CallFailure {
                class: ErrorClass::Fatal,
                code: "request".into(),
                message: short(&e),
            })?;
        let exchange = async {
            let resp = self
                .connector
                .call(request)
                .await
                .map_err(|e| CallFailure {
                    class: ErrorClass::Transient,
                    code: if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection"
                    }
                    .into(),
                    message: short(&source_chain(&e)),
                })?;
            let status = resp.status().as_u16();
            let body = aws_smithy_types::byte_stream::ByteStream::new(resp.into_body())
                .collect()
                .await
                .map_err(|e| CallFailure {
                    class: ErrorClass::Transient,
                    code: "connection".into(),
                    message: short(&source_chain(&e)),
                })?
                .into_bytes();
            Ok::<_, CallFailure>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(CallFailure {
                    class: ErrorClass::Transient,
                    code: "timeout".into(),
                    message: "the call took longer than the call timeout".into(),
                })
            }
        };
        if (200..300).contains(&status) {
            return serde_json::from_slice::<T>(&body).map_err(|e| CallFailure {
                class: ErrorClass::Transient,
                code: "bad-response".into(),
                message: short(&format!("an answer that is not the operation's JSON: {e}")),
            });
        }
        let (code, message) = error_code(&body);
        Err(classify_service(status, code, message))
    }

    fn signed(
        &self,
        creds: &Credentials,
        target: &str,
        body: String,
        written: Option<&Arc<Written>>,
    ) -> Result<HttpRequest, String> {
        let Some(signer) = &self.signer else {
            return self.signed_by_aws_sigv4(creds, target, body, written);
        };
        use http::header::{
            HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE as TYPE, HOST,
        };
        let sig = signer.sign(
            creds,
            target,
            CONTENT_TYPE,
            body.as_bytes(),
            SystemTime::now(),
        );
        let value = |v: &str| HeaderValue::from_str(v).map_err(|e| e.to_string());
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        let len = req.body().len();
        let h = req.headers_mut();
        h.reserve(8);
        h.insert(HOST, value(&self.host)?);
        h.insert(TYPE, HeaderValue::from_static(CONTENT_TYPE));
        h.insert("x-amz-target", value(target)?);
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        h.insert("x-amz-date", value(&sig.amz_date)?);
        if let Some(t) = creds.session_token() {
            let mut t = value(t)?;
            t.set_sensitive(true);
            h.insert("x-amz-security-token", t);
        }
        let mut auth = value(&sig.authorization)?;
        auth.set_sensitive(true);
        h.insert(AUTHORIZATION, auth);
        HttpRequest::try_from(req.map(|b| sdk_body(b, written))).map_err(|e| e.to_string())
    }

    /// [`Self::signed`] by `aws-sigv4`, for an endpoint path `Signer` leaves to it.
    fn signed_by_aws_sigv4(
        &self,
        creds: &Credentials,
        target: &str,
        body: String,
        written: Option<&Arc<Written>>,
    ) -> Result<HttpRequest, String> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let url = self.uri.to_string();
        let headers = [
            ("host", &*self.host),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let identity = creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(self.uri.clone())
            .header("host", &*self.host)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", target)
            .header("content-length", body.len())
            .body(body)
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut req);
        HttpRequest::try_from(req.map(|b| sdk_body(b, written))).map_err(|e| e.to_string())
    }
}

/// The request's body for the HTTP client: marking `written` when it is read.
fn sdk_body(body: String, written: Option<&Arc<Written>>) -> SdkBody {
    match written {
        Some(w) => SdkBody::from_body_1_x(MarkedBody::new(body.into(), w.clone())),
        None => SdkBody::from(body),
    }
}

/// What the HTTP client needs to make its connector: its sleep and clock. The
/// rest is what a component set must hold to be built, and is never used here
/// (no auth scheme, endpoint rules, identity cache or retries: signing,
/// endpoint and retries are this module's and the caller's).
fn connector_components(sdk: &SdkConfig) -> Result<RuntimeComponents, String> {
    use aws_smithy_runtime::client::auth::no_auth::{NoAuthScheme, NO_AUTH_SCHEME_ID};
    use aws_smithy_runtime::client::identity::no_auth::NoAuthIdentityResolver;
    use aws_smithy_runtime::client::identity::IdentityCache;
    use aws_smithy_runtime::client::orchestrator::endpoints::StaticUriEndpointResolver;
    use aws_smithy_runtime::client::retries::strategy::NeverRetryStrategy;
    use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
    RuntimeComponentsBuilder::new("ssm-session-audit-wire")
        .with_sleep_impl(sdk.sleep_impl())
        .with_time_source(sdk.time_source())
        .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
            NO_AUTH_SCHEME_ID,
        ])))
        .with_endpoint_resolver(Some(StaticUriEndpointResolver::uri("http://unused")))
        .with_auth_scheme(NoAuthScheme::new())
        .with_identity_cache(Some(IdentityCache::no_cache()))
        .with_identity_resolver(NO_AUTH_SCHEME_ID, NoAuthIdentityResolver::new())
        .with_retry_strategy(Some(NeverRetryStrategy::new()))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The endpoint URL configured for a service, in the order its SDK crate reads
/// them: the SDK config's own, else `AWS_ENDPOINT_URL_<SERVICE>` or a profile's
/// service `endpoint_url`, else `AWS_ENDPOINT_URL` or a profile's `endpoint_url`.
/// `service_id` as the SDK names it (`CloudTrail`, `SSM`).
pub fn endpoint_override(sdk: &SdkConfig, service_id: &str) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_string);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|conf| conf.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

/// An AWS JSON 1.1 error: `__type` (maybe `namespace#Code`, maybe `Code:…`)
/// and `message` or `Message`.
fn error_code(body: &[u8]) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: Option<String>,
        message: Option<String>,
        #[serde(rename = "Message")]
        message_upper: Option<String>,
    }
    let Ok(e) = serde_json::from_slice::<ErrorBody>(body) else {
        return (None, short(&String::from_utf8_lossy(body)));
    };
    let code = e.kind.map(|k| {
        let k = k.rsplit('#').next().unwrap_or(&k);
        k.split(':').next().unwrap_or(k).to_string()
    });
    (code, e.message.or(e.message_upper).unwrap_or_default())
}

/// A timestamp member of an AWS JSON answer (epoch seconds, maybe with a
/// fraction), `null` or absent as `None`: `#[serde(default, deserialize_with = "epoch")]`.
pub fn epoch<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
    let secs: Option<f64> = Option::deserialize(d)?;
    Ok(secs.and_then(|s| {
        let whole = s.floor();
        let nanos = ((s - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
        chrono::DateTime::from_timestamp(whole as i64, nanos)
    }))
}

/// A list member, `null` or absent as empty: `#[serde(default, deserialize_with = "or_empty")]`.
pub fn or_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener whose accept queue is full: a client's handshake is dropped
    /// and tried again by its kernel a second later (TCP's first retransmit),
    /// as a slow connect (a TLS handshake across the world) holds a request.
    /// The request is marked when it leaves after that, not when it was made.
    #[tokio::test]
    async fn a_call_is_marked_written_when_it_leaves_after_a_slow_connect() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // A backlog of 0 holds one connection not yet accepted.
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let filler = std::net::TcpStream::connect(addr).unwrap();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (first, _) = listener.accept().await.unwrap();
            drop(first);
            drop(filler);
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.ends_with(b"{}") {
                let n = conn.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                req.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"Ok\":true}")
                .await
                .unwrap();
            String::from_utf8_lossy(&req).to_string()
        });
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .load()
            .await;
        let clients = super::super::ClientSettings::new(&sdk, Duration::from_secs(10));
        let endpoint = format!("http://{addr}");
        let wire = JsonWire::new(
            clients.sdk(),
            "us-east-1",
            "cloudtrail",
            &endpoint,
            Duration::from_secs(10),
        )
        .unwrap();
        let written = Written::new();
        let made = tokio::time::Instant::now();
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Ok")]
            ok: bool,
        }
        let answer: Answer = wire
            .call_marked(&creds, "Test.Call", "{}".into(), Some(&written))
            .await
            .unwrap();
        assert!(answer.ok);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
        let left = written.last().expect("marked") - made;
        assert!(
            left >= Duration::from_millis(300),
            "marked {left:?} after the call was made: before its connection was open"
        );
    }

    #[test]
    fn error_codes_lose_their_namespace() {
        let (c, m) = error_code(
            br#"{"__type":"com.amazonaws.cloudtrail.v20131101#ThrottlingException","message":"Rate exceeded"}"#,
        );
        assert_eq!(c.as_deref(), Some("ThrottlingException"));
        assert_eq!(m, "Rate exceeded");
        let (c, m) = error_code(br#"{"__type":"InvalidNextTokenException:","Message":"bad"}"#);
        assert_eq!(c.as_deref(), Some("InvalidNextTokenException"));
        assert_eq!(m, "bad");
        let (c, _) = error_code(b"<html>gateway</html>");
        assert!(c.is_none());
    }
}
