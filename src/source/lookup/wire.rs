//! `LookupEvents` on the wire (see `crate::call::wire`): the request's JSON,
//! the page read straight into [`LookupRecord`]s, and the region's endpoint as
//! the CloudTrail SDK resolves it.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::call::wire::{endpoint_override, epoch, or_empty, JsonWire};
use crate::call::written::Written;
use crate::call::CallFailure;

/// What the SDK sends (AWS-FACTS.md).
const TARGET: &str = "CloudTrail_20131101.LookupEvents";

/// One record of a `LookupEvents` page: LookupEvents' own fields, and the
/// record itself as the JSON text CloudTrail keeps (`CloudTrailEvent`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupRecord {
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    /// Epoch seconds.
    #[serde(default, deserialize_with = "epoch")]
    pub event_time: Option<DateTime<Utc>>,
    pub event_source: Option<String>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    #[serde(default, deserialize_with = "or_empty")]
    pub resources: Vec<LookupResource>,
    pub cloud_trail_event: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupResource {
    pub resource_type: Option<String>,
    pub resource_name: Option<String>,
}

/// One page: `events` is `None` when the answer lacked its `Events` member.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupPage {
    pub events: Option<Vec<LookupRecord>>,
    pub next_token: Option<String>,
}

/// What one page asks for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub event_name: &'a str,
    /// StartTime and EndTime, both inclusive (LookupEvents' own semantics).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub max_results: i32,
    pub token: Option<&'a str>,
}

impl PageRequest<'_> {
    /// The JSON body, as the SDK would send it (timestamps as epoch seconds).
    pub fn body(&self) -> String {
        let name = serde_json::to_string(self.event_name).unwrap_or_else(|_| "\"\"".into());
        let mut body = format!(
            "{{\"LookupAttributes\":[{{\"AttributeKey\":\"EventName\",\"AttributeValue\":{name}}}],\"StartTime\":{},\"EndTime\":{},\"MaxResults\":{}",
            epoch_text(self.start),
            epoch_text(self.end),
            self.max_results
        );
        if let Some(t) = self.token {
            body.push_str(",\"NextToken\":");
            body.push_str(&serde_json::to_string(t).unwrap_or_else(|_| "\"\"".into()));
        }
        body.push('}');
        body
    }
}

fn epoch_text(t: DateTime<Utc>) -> String {
    match t.timestamp_subsec_nanos() {
        0 => t.timestamp().to_string(),
        n => format!("{}.{:09}", t.timestamp(), n)
            .trim_end_matches('0')
            .to_string(),
    }
}

/// One region's `LookupEvents` endpoint and the connection pool that reaches it.
#[derive(Clone, Debug)]
pub struct LookupWire(JsonWire);

impl LookupWire {
    /// The region's endpoint as the CloudTrail SDK would resolve it, on the
    /// run's HTTP client (`sdk` must hold one: see `ClientSettings`).
    pub fn new(sdk: &SdkConfig, region: &str, call_timeout: Duration) -> Result<Self, String> {
        use aws_sdk_cloudtrail::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let params = Params::builder()
            .region(region)
            .use_fips(sdk.use_fips().unwrap_or(false))
            .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
            .set_endpoint(endpoint_override(sdk, "CloudTrail"))
            .build()
            .map_err(|e| format!("CloudTrail endpoint for {region}: {e}"))?;
        // The default resolver answers at once (rules, no I/O).
        let endpoint =
            futures::FutureExt::now_or_never(DefaultResolver::new().resolve_endpoint(&params))
                .ok_or_else(|| format!("CloudTrail endpoint for {region}: not resolved at once"))?
                .map_err(|e| format!("CloudTrail endpoint for {region}: {e}"))?;
        JsonWire::new(sdk, region, "cloudtrail", endpoint.url(), call_timeout).map(LookupWire)
    }

    /// One page, signed with `creds`; `written` marked when it goes on the
    /// wire. A 200 without `Events` is returned as such (`events: None`): the
    /// caller decides what that means.
    pub async fn page(
        &self,
        creds: &Credentials,
        req: &PageRequest<'_>,
        written: &Arc<Written>,
    ) -> Result<LookupPage, CallFailure> {
        self.0
            .call_marked(creds, TARGET, req.body(), Some(written))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_sdks_json() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let r = PageRequest {
            event_name: "StartSession",
            start: t,
            end: DateTime::from_timestamp(1_700_003_600, 500_000_000).unwrap(),
            max_results: 50,
            token: Some("a\"b"),
        };
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v["LookupAttributes"][0]["AttributeKey"], "EventName");
        assert_eq!(v["LookupAttributes"][0]["AttributeValue"], "StartSession");
        assert_eq!(v["StartTime"], 1_700_000_000);
        assert_eq!(v["EndTime"], 1_700_003_600.5);
        assert_eq!(v["MaxResults"], 50);
        assert_eq!(v["NextToken"], "a\"b");
        let none = PageRequest { token: None, ..r };
        assert!(!none.body().contains("NextToken"));
    }

    #[test]
    fn pages_read_times_nulls_and_unknown_members() {
        let p: LookupPage = serde_json::from_str(
            r#"{"Events":[{"EventId":"e1","EventTime":1700000000.25,"ReadOnly":"false","Resources":null,"CloudTrailEvent":"{}"},{"EventId":"e2","Resources":[{"ResourceType":"t","ResourceName":"n"}]}],"NextToken":"tok"}"#,
        )
        .unwrap();
        let ev = p.events.unwrap();
        assert_eq!(
            ev[0].event_time,
            DateTime::from_timestamp(1_700_000_000, 250_000_000)
        );
        assert!(ev[0].resources.is_empty());
        assert_eq!(ev[1].resources[0].resource_name.as_deref(), Some("n"));
        assert_eq!(p.next_token.as_deref(), Some("tok"));
        let empty: LookupPage = serde_json::from_str("{}").unwrap();
        assert!(empty.events.is_none());
    }
}
