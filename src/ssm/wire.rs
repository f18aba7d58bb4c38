//! `DescribeSessions` and `GetDocument` on the wire (see `crate::call::wire`):
//! the requests' JSON as the SSM SDK sends it, the answers read into our own
//! types (only the members the posture reads; unknown members ignored, `null`s
//! as absent), and the region's endpoint as the SSM SDK resolves it.
//!
//! An answer lacking its `Sessions` or `Content` member reads as `None`, never
//! as empty: the caller retries it (it is not Session Manager speaking).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call::wire::{endpoint_override, epoch, JsonWire};
use crate::call::CallFailure;

/// What the SDK sends: the service shape `AmazonSSM`, then the operation.
const DESCRIBE_SESSIONS: &str = "AmazonSSM.DescribeSessions";
const GET_DOCUMENT: &str = "AmazonSSM.GetDocument";

/// One `DescribeSessions` page asked for.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionsRequest<'a> {
    /// `Active` or `History`.
    pub state: &'a str,
    pub max_results: i32,
    /// Omitted when empty, as the SDK does for no filters.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub filters: &'a [SessionFilter],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<&'a str>,
}

/// A `DescribeSessions` filter: its members are lower-case in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionFilter {
    /// `InvokedAfter`, `InvokedBefore`, `Target`, `Owner`, `Status`, ...
    pub key: &'static str,
    pub value: String,
}

/// One page: `sessions` is `None` when the answer lacked its `Sessions` member.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionsPage {
    #[serde(default, deserialize_with = "sessions")]
    pub sessions: Option<Vec<WireSession>>,
    pub next_token: Option<String>,
}

/// One session of a page, as Session Manager lists it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireSession {
    pub session_id: Option<String>,
    pub target: Option<String>,
    pub status: Option<String>,
    /// Epoch seconds.
    #[serde(default, deserialize_with = "epoch")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "epoch")]
    pub end_date: Option<DateTime<Utc>>,
    pub document_name: Option<String>,
    pub owner: Option<String>,
    pub reason: Option<String>,
    pub max_session_duration: Option<String>,
    pub access_type: Option<String>,
}

/// A `GetDocument` answer: the document's text (`None` when it was missing).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentAnswer {
    pub content: Option<String>,
}

/// `Sessions`, a `null` list as absent and `null` entries skipped.
fn sessions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<WireSession>>, D::Error> {
    let list: Option<Vec<Option<WireSession>>> = Option::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().flatten().collect()))
}

/// The `GetDocument` request's JSON: the document in JSON whatever it was saved as.
pub fn document_body(name: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetDocument<'a> {
        name: &'a str,
        document_format: &'static str,
    }
    serde_json::to_string(&GetDocument {
        name,
        document_format: "JSON",
    })
    .unwrap_or_default()
}

/// One region's Session Manager endpoint and the connection pool that reaches it.
#[derive(Clone, Debug)]
pub struct SsmWire(JsonWire);

impl SsmWire {
    /// The region's endpoint as the SSM SDK would resolve it, on the run's
    /// HTTP client (`sdk` must hold one: see `ClientSettings`).
    pub fn new(sdk: &SdkConfig, region: &str, call_timeout: Duration) -> Result<Self, String> {
        use aws_sdk_ssm::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let params = Params::builder()
            .region(region)
            .use_fips(sdk.use_fips().unwrap_or(false))
            .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
            .set_endpoint(endpoint_override(sdk, "SSM"))
            .build()
            .map_err(|e| format!("Session Manager endpoint for {region}: {e}"))?;
        // The default resolver answers at once (rules, no I/O).
        let endpoint =
            futures::FutureExt::now_or_never(DefaultResolver::new().resolve_endpoint(&params))
                .ok_or_else(|| {
                    format!("Session Manager endpoint for {region}: not resolved at once")
                })?
                .map_err(|e| format!("Session Manager endpoint for {region}: {e}"))?;
        JsonWire::new(sdk, region, "ssm", endpoint.url(), call_timeout).map(SsmWire)
    }

    /// One `DescribeSessions` page, signed with `creds`.
    pub async fn describe_sessions(
        &self,
        creds: &Credentials,
        req: &SessionsRequest<'_>,
    ) -> Result<SessionsPage, CallFailure> {
        let body = serde_json::to_string(req).unwrap_or_default();
        self.0.call(creds, DESCRIBE_SESSIONS, body).await
    }

    /// `GetDocument` of `name` (its JSON form), signed with `creds`.
    pub async fn get_document(
        &self,
        creds: &Credentials,
        name: &str,
    ) -> Result<DocumentAnswer, CallFailure> {
        self.0.call(creds, GET_DOCUMENT, document_body(name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_the_sdks_json() {
        let filters = [
            SessionFilter {
                key: "InvokedAfter",
                value: "2026-12-01T12:00:00Z".into(),
            },
            SessionFilter {
                key: "InvokedBefore",
                value: "2026-12-02T12:00:00Z".into(),
            },
        ];
        let r = SessionsRequest {
            state: "History",
            max_results: 200,
            filters: &filters,
            next_token: Some("t\"1"),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "State": "History",
                "MaxResults": 200,
                "Filters": [
                    {"key": "InvokedAfter", "value": "2026-12-01T12:00:00Z"},
                    {"key": "InvokedBefore", "value": "2026-12-02T12:00:00Z"},
                ],
                "NextToken": "t\"1",
            })
        );
        let first = SessionsRequest {
            state: "Active",
            max_results: 200,
            filters: &[],
            next_token: None,
        };
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            r#"{"State":"Active","MaxResults":200}"#
        );
        let d: serde_json::Value = serde_json::from_str(&document_body("My\"Doc")).unwrap();
        assert_eq!(
            d,
            serde_json::json!({"Name": "My\"Doc", "DocumentFormat": "JSON"})
        );
    }

    #[test]
    fn a_page_reads_times_nulls_and_unknown_members() {
        let p: SessionsPage = serde_json::from_str(
            r#"{"Sessions":[
                {"SessionId":"s-1","Target":"i-1","Status":"Terminated","StartDate":1700000000,
                 "EndDate":1700000600.5,"DocumentName":"AWS-StartPortForwardingSession",
                 "Owner":"arn:aws:iam::111122223333:user/a","Reason":"r","AccessType":"Standard",
                 "MaxSessionDuration":"60","Details":null,"OutputUrl":{"S3OutputUrl":"x"},"NewMember":[1,2]},
                null,
                {"SessionId":"s-2","StartDate":null,"EndDate":null,"Reason":null,"Status":null}
            ],"NextToken":null,"Extra":true}"#,
        )
        .unwrap();
        let s = p.sessions.unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].session_id.as_deref(), Some("s-1"));
        assert_eq!(s[0].start_date, DateTime::from_timestamp(1_700_000_000, 0));
        assert_eq!(
            s[0].end_date,
            DateTime::from_timestamp(1_700_000_600, 500_000_000)
        );
        assert_eq!(s[0].access_type.as_deref(), Some("Standard"));
        assert_eq!(s[0].max_session_duration.as_deref(), Some("60"));
        assert!(s[1].start_date.is_none() && s[1].status.is_none() && s[1].reason.is_none());
        assert!(p.next_token.is_none());
    }

    #[test]
    fn a_page_without_sessions_is_not_an_empty_page() {
        let none: SessionsPage = serde_json::from_str(r#"{"NextToken":"t"}"#).unwrap();
        assert!(none.sessions.is_none());
        let null: SessionsPage = serde_json::from_str(r#"{"Sessions":null}"#).unwrap();
        assert!(null.sessions.is_none());
        let empty: SessionsPage = serde_json::from_str(r#"{"Sessions":[]}"#).unwrap();
        assert_eq!(empty.sessions.map(|s| s.len()), Some(0));
        // Not the operation's JSON at all: the wire reports `bad-response`.
        assert!(serde_json::from_str::<SessionsPage>(r#"{"Sessions":{}}"#).is_err());
    }

    #[test]
    fn a_document_answer_holds_its_content_as_text() {
        let d: DocumentAnswer = serde_json::from_str(
            r#"{"Name":"SSM-SessionManagerRunShell","CreatedDate":1700000000.123,"Status":"Active",
                "Content":"{\"schemaVersion\":\"1.0\",\"inputs\":{\"s3BucketName\":\"b\"}}",
                "DocumentType":"Session","DocumentFormat":"JSON","Requires":[],"AttachmentsContent":null}"#,
        )
        .unwrap();
        let content: serde_json::Value = serde_json::from_str(&d.content.unwrap()).unwrap();
        assert_eq!(content["inputs"]["s3BucketName"], "b");
        let missing: DocumentAnswer =
            serde_json::from_str(r#"{"Name":"x","Content":null}"#).unwrap();
        assert!(missing.content.is_none());
    }
}
