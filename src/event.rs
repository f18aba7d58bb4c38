//! One CloudTrail record (the JSON text of a `CloudTrailEvent`, or one element of a
//! trail file's `Records`) → one [`SessionEvent`]. A pure function of the text.
//!
//! The record is caller-influenced data: fields may be missing, of the wrong type,
//! huge or full of control characters. Only a record that is not a JSON object or
//! lacks `eventID`, `eventTime` or `eventName` is an error; every other field is
//! optional and kept as is (sanitising for display is the report's job).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::model::SessionEvent;

/// The event source of every Session Manager call.
pub const SSM_EVENT_SOURCE: &str = "ssm.amazonaws.com";

/// At most this many characters of record text go into an error message.
const MAX_QUOTE: usize = 60;

/// Why a record could not become a [`SessionEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("record is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("record is JSON but not an object (found {found})")]
    NotObject { found: &'static str },
    #[error("record has no `{field}` string")]
    MissingField { field: &'static str },
    #[error("record {event_id}: `eventTime` \"{value}\" is not an RFC 3339 time")]
    BadEventTime { event_id: String, value: String },
    #[error("record {event_id}: event source \"{event_source}\" is not Session Manager ({SSM_EVENT_SOURCE})")]
    NotSessionCall {
        event_id: String,
        event_source: String,
    },
}

impl ParseError {
    /// A well-formed record of another service: a reader of trail files skips it
    /// rather than counting it as malformed.
    pub fn is_not_session_call(&self) -> bool {
        matches!(self, ParseError::NotSessionCall { .. })
    }
}

/// Parses one CloudTrail record.
///
/// `account_id` and `region` are the partition the record was read from and win
/// over the record's own `recipientAccountId` / `awsRegion`; pass `""` to take the
/// record's (trail files, where the record is the only source).
pub fn parse_record(
    record: &str,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    let value: Value = serde_json::from_str(record).map_err(|e| ParseError::NotJson {
        reason: quote(&e.to_string()),
    })?;
    parse_value(&value, account_id, region)
}

/// Like [`parse_record`], for a caller that already holds the record as a JSON value.
pub fn parse_value(
    value: &Value,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    let record = value.as_object().ok_or(ParseError::NotObject {
        found: json_kind(value),
    })?;

    let event_id = required(record, "eventID")?;
    let event_name = required(record, "eventName")?;
    let time_text = required(record, "eventTime")?;
    let event_time = parse_time(time_text).ok_or_else(|| ParseError::BadEventTime {
        event_id: quote(event_id),
        value: quote(time_text),
    })?;

    if let Some(source) = text(record, "eventSource") {
        if source != SSM_EVENT_SOURCE {
            return Err(ParseError::NotSessionCall {
                event_id: quote(event_id),
                event_source: quote(source),
            });
        }
    }

    let account_id = if account_id.is_empty() {
        text(record, "recipientAccountId").unwrap_or_default()
    } else {
        account_id
    };
    let region = if region.is_empty() {
        text(record, "awsRegion").unwrap_or_default()
    } else {
        region
    };

    let identity = record.get("userIdentity").and_then(Value::as_object);
    let principal_type = identity
        .and_then(|i| text(i, "type"))
        .unwrap_or("Unknown")
        .to_string();
    let principal_arn = identity
        .and_then(|i| text(i, "arn"))
        .unwrap_or_default()
        .to_string();
    let session_context = identity
        .and_then(|i| i.get("sessionContext"))
        .and_then(Value::as_object);
    let user_name = identity.and_then(|i| user_name(&principal_type, &principal_arn, i));
    let ec2_role_delivery = session_context.is_some_and(|c| c.contains_key("ec2RoleDelivery"));
    // Only an assumed role's session name can be an instance id; an IAM user
    // named like one is still a user.
    let instance_role = ec2_role_delivery
        || (principal_type == "AssumedRole" && user_name.as_deref().is_some_and(is_instance_id));

    let request = record.get("requestParameters").and_then(Value::as_object);
    let response = record.get("responseElements").and_then(Value::as_object);
    let from_request = |key: &str| request.and_then(|r| text(r, key));
    let from_response = |key: &str| response.and_then(|r| text(r, key));
    // StartSession learns its id from the response; Resume/Terminate name it in
    // the request (Resume's response only mirrors it).
    let session_id = if event_name == "StartSession" {
        from_response("sessionId").or_else(|| from_request("sessionId"))
    } else {
        from_request("sessionId").or_else(|| from_response("sessionId"))
    };

    Ok(SessionEvent {
        account_id: account_id.to_string(),
        region: region.to_string(),
        event_time,
        event_name: event_name.to_string(),
        event_id: event_id.to_string(),
        session_id: owned(session_id),
        principal_type,
        principal_arn,
        principal_account_id: owned(identity.and_then(|i| text(i, "accountId"))),
        user_name,
        session_issuer_arn: owned(
            session_context
                .and_then(|c| c.get("sessionIssuer"))
                .and_then(Value::as_object)
                .and_then(|s| text(s, "arn")),
        ),
        mfa_authenticated: session_context
            .and_then(|c| c.get("attributes"))
            .and_then(|a| a.get("mfaAuthenticated"))
            .and_then(as_bool),
        instance_role,
        source_ip: owned(text(record, "sourceIPAddress")),
        user_agent: owned(text(record, "userAgent")),
        target: owned(from_request("target")),
        document_name: owned(from_request("documentName")),
        reason: owned(from_request("reason")),
        error_code: owned(text(record, "errorCode")),
        error_message: owned(text(record, "errorMessage")),
    })
}

/// `i-` followed by 8 or 17 hex digits: the shape of an EC2 instance id.
pub fn is_instance_id(name: &str) -> bool {
    name.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn user_name(principal_type: &str, arn: &str, identity: &Map<String, Value>) -> Option<String> {
    let name = match principal_type {
        "Root" => Some("root"),
        "IAMUser" => text(identity, "userName"),
        // The ARN ends in the role (or federation) session name:
        // `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
        "AssumedRole" | "FederatedUser" => last_path_element(arn).or_else(|| {
            text(identity, "principalId")
                .and_then(|p| p.rsplit_once(':'))
                .map(|(_, session)| session)
                .filter(|s| !s.is_empty())
        }),
        _ => text(identity, "userName"),
    };
    owned(name)
}

fn last_path_element(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .map(|(_, last)| last)
        .filter(|s| !s.is_empty())
}

fn required<'a>(
    record: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ParseError> {
    text(record, field).ok_or(ParseError::MissingField { field })
}

/// A non-empty string field; any other JSON type counts as absent.
fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

/// CloudTrail writes `"true"`/`"false"` strings; accept real booleans too.
fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// RFC 3339 (`2025-02-19T20:13:49Z`); a time without an offset is taken as UTC,
/// since some tools rewrite records that way.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Record text for an error message: at most [`MAX_QUOTE`] characters, control
/// characters escaped, so a hostile record can neither flood nor steer a terminal.
fn quote(s: &str) -> String {
    escape_capped(s, MAX_QUOTE)
}

/// At most `max` characters of `s` (then `…`), control characters escaped:
/// record text quoted in a message or a finding's detail.
pub(crate) fn escape_capped(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// /work/shared/fixtures/cloudtrail/start-session-sso-role.json, byte for byte
    /// (kept inline so the tests do not depend on where shared/ is checked out).
    const SSO_ROLE: &str = r#"{"awsRegion":"us-west-2","eventCategory":"Management","eventID":"c61c9a5d-4d9c-45ee-8c46-9845ea001e97","eventName":"StartSession","eventSource":"ssm.amazonaws.com","eventTime":"2025-02-19T20:13:49Z","eventType":"AwsApiCall","eventVersion":"1.10","managementEvent":true,"readOnly":false,"recipientAccountId":"111122223333","requestID":"8e6cef5f-2610-43fb-898b-48acd3aa6240","requestParameters":{"target":"i-047fce8bf4806e5ee"},"responseElements":{"sessionId":"bobson.dugnutt-4njnyxxl8yn676nsla8j6l4bra","tokenValue":"Value hidden due to security reasons."},"sourceIPAddress":"1.2.3.4","tlsDetails":{"cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":"ssm.us-west-2.amazonaws.com","tlsVersion":"TLSv1.2"},"userAgent":"sample-user-agent","userIdentity":{"accessKeyId":"SAMPLE_ACCESS_KEY_ID","accountId":"111122223333","arn":"arn:aws:sts::111122223333:assumed-role/SampleRole/bobson.dugnutt","principalId":"SAMPLE_PRINCIPAL_ID:bobson.dugnutt","sessionContext":{"attributes":{"creationDate":"2025-02-19T16:29:24Z","mfaAuthenticated":"false"},"sessionIssuer":{"accountId":"111122223333","arn":"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-west-2/SampleRole","principalId":"SAMPLE_PRINCIPAL_ID","type":"Role","userName":"SampleRole"}},"type":"AssumedRole"}}"#;

    /// /work/shared/fixtures/cloudtrail/start-session-iam-user-custom-document.json.
    const IAM_USER: &str = r#"{"eventVersion":"1.05","userIdentity":{"type":"IAMUser","principalId":"AIDAVE4W5C6YOXXF5XPOR","arn":"arn:aws:iam::354114410416:user/garland.kan.temp","accountId":"354114410416","accessKeyId":"AKIAVE4W5C6YJPLGCFU5","userName":"garland.kan.temp"},"eventTime":"2020-05-18T17:00:24Z","eventSource":"ssm.amazonaws.com","eventName":"StartSession","awsRegion":"us-east-1","sourceIPAddress":"38.30.8.138","userAgent":"aws-cli/2.0.0 Python/3.7.3 Linux/5.4.0-29-generic botocore/2.0.0dev4","requestParameters":{"target":"i-02311671588e96626","documentName":"SSM-sudo"},"responseElements":{"sessionId":"garland.kan.temp-0e34861185201706f","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/garland.kan.temp-0e34861185201706f?role=publish_subscribe"},"requestID":"35714caa-4b64-47c1-9842-2dc6d4786070","eventID":"4b7a66fc-bffb-4179-be64-69bba2bf714c","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"354114410416"}"#;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fixtures_match_the_shared_files_when_present() {
        // Guards the inline copies against drift when shared/ is beside the repo.
        for (name, inline) in [
            ("start-session-sso-role.json", SSO_ROLE),
            ("start-session-iam-user-custom-document.json", IAM_USER),
        ] {
            for dir in [
                "/work/shared/fixtures/cloudtrail",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/cloudtrail"),
            ] {
                if let Ok(text) = std::fs::read_to_string(format!("{dir}/{name}")) {
                    assert_eq!(text.trim(), inline, "{dir}/{name}");
                }
            }
        }
    }

    #[test]
    fn sso_role_start_session() {
        let e = parse_record(SSO_ROLE, "111122223333", "us-west-2").unwrap();
        assert_eq!(e.account_id, "111122223333");
        assert_eq!(e.region, "us-west-2");
        assert_eq!(e.event_time, utc("2025-02-19T20:13:49Z"));
        assert_eq!(e.event_name, "StartSession");
        assert_eq!(e.event_id, "c61c9a5d-4d9c-45ee-8c46-9845ea001e97");
        assert_eq!(
            e.session_id.as_deref(),
            Some("bobson.dugnutt-4njnyxxl8yn676nsla8j6l4bra")
        );
        assert_eq!(e.principal_type, "AssumedRole");
        assert_eq!(
            e.principal_arn,
            "arn:aws:sts::111122223333:assumed-role/SampleRole/bobson.dugnutt"
        );
        assert_eq!(e.principal_account_id.as_deref(), Some("111122223333"));
        assert_eq!(e.user_name.as_deref(), Some("bobson.dugnutt"));
        assert_eq!(
            e.session_issuer_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-west-2/SampleRole")
        );
        assert_eq!(e.mfa_authenticated, Some(false));
        assert!(!e.instance_role);
        assert_eq!(e.source_ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(e.user_agent.as_deref(), Some("sample-user-agent"));
        assert_eq!(e.target.as_deref(), Some("i-047fce8bf4806e5ee"));
        assert_eq!(e.document_name, None);
        assert_eq!(e.error_code, None);
        assert_eq!(e.error_message, None);
    }

    #[test]
    fn iam_user_start_session_with_custom_document() {
        let e = parse_record(IAM_USER, "354114410416", "us-east-1").unwrap();
        assert_eq!(e.principal_type, "IAMUser");
        assert_eq!(
            e.principal_arn,
            "arn:aws:iam::354114410416:user/garland.kan.temp"
        );
        assert_eq!(e.user_name.as_deref(), Some("garland.kan.temp"));
        assert_eq!(e.session_issuer_arn, None);
        assert_eq!(e.mfa_authenticated, None);
        assert_eq!(e.document_name.as_deref(), Some("SSM-sudo"));
        assert_eq!(e.target.as_deref(), Some("i-02311671588e96626"));
        assert_eq!(
            e.session_id.as_deref(),
            Some("garland.kan.temp-0e34861185201706f")
        );
        assert_eq!(e.source_ip.as_deref(), Some("38.30.8.138"));
        assert_eq!(e.event_time, utc("2020-05-18T17:00:24Z"));
        assert!(!e.instance_role);
    }

    #[test]
    fn partition_wins_over_record_and_record_fills_blanks() {
        let e = parse_record(SSO_ROLE, "999999999999", "eu-west-1").unwrap();
        assert_eq!(
            (e.account_id.as_str(), e.region.as_str()),
            ("999999999999", "eu-west-1")
        );
        let e = parse_record(SSO_ROLE, "", "").unwrap();
        assert_eq!(
            (e.account_id.as_str(), e.region.as_str()),
            ("111122223333", "us-west-2")
        );
    }

    fn record(extra: Value) -> String {
        let mut base = serde_json::json!({
            "eventID": "e1",
            "eventName": "ResumeSession",
            "eventTime": "2025-03-01T10:00:00Z",
            "eventSource": "ssm.amazonaws.com",
        });
        if let (Some(b), Some(x)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        base.to_string()
    }

    #[test]
    fn resume_and_terminate_take_the_session_id_from_the_request() {
        let text = record(serde_json::json!({
            "requestParameters": {"sessionId": "alice-0123"},
            "responseElements": {"sessionId": "alice-9999"},
        }));
        let e = parse_record(&text, "1", "r").unwrap();
        assert_eq!(e.session_id.as_deref(), Some("alice-0123"));

        let text = record(serde_json::json!({
            "eventName": "TerminateSession",
            "requestParameters": {"sessionId": "alice-0123"},
            "responseElements": {"sessionId": "alice-0123"},
        }));
        assert_eq!(
            parse_record(&text, "1", "r").unwrap().session_id.as_deref(),
            Some("alice-0123")
        );
        // A Start names it in the response.
        let text = record(serde_json::json!({
            "eventName": "StartSession",
            "requestParameters": {"target": "i-1"},
            "responseElements": {"sessionId": "bob-1"},
        }));
        assert_eq!(
            parse_record(&text, "1", "r").unwrap().session_id.as_deref(),
            Some("bob-1")
        );
    }

    #[test]
    fn denied_call_keeps_its_error_and_has_no_session() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "ThrottlingException",
        ] {
            let text = record(serde_json::json!({
                "eventName": "StartSession",
                "errorCode": code,
                "errorMessage": "User: x is not authorized to perform: ssm:StartSession",
                "requestParameters": {"target": "i-1"},
                "responseElements": null,
            }));
            let e = parse_record(&text, "1", "r").unwrap();
            assert_eq!(e.error_code.as_deref(), Some(code));
            assert!(e.is_denied());
            assert_eq!(e.session_id, None);
            assert!(e.error_message.unwrap().contains("not authorized"));
        }
    }

    #[test]
    fn root_user_is_named_root() {
        let text = record(serde_json::json!({"userIdentity": {
            "type": "Root", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012"
        }}));
        let e = parse_record(&text, "123456789012", "r").unwrap();
        assert_eq!(e.principal_type, "Root");
        assert_eq!(e.user_name.as_deref(), Some("root"));
    }

    #[test]
    fn instance_role_by_session_name_or_ec2_role_delivery() {
        let by_name = |session: &str| {
            let text = record(serde_json::json!({"userIdentity": {
                "type": "AssumedRole",
                "arn": format!("arn:aws:sts::1:assumed-role/AppRole/{session}"),
            }}));
            parse_record(&text, "1", "r").unwrap().instance_role
        };
        assert!(by_name("i-0abc1234def567890")); // 17 hex
        assert!(by_name("i-0abc1234")); // 8 hex
        assert!(!by_name("i-0abc123")); // 7
        assert!(!by_name("i-0abc1234def56789")); // 16
        assert!(!by_name("i-0abc1234def56789z"));
        assert!(!by_name("alice"));

        let text = record(serde_json::json!({"userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/AppRole/some-name",
            "sessionContext": {"ec2RoleDelivery": "2.0"}
        }}));
        assert!(parse_record(&text, "1", "r").unwrap().instance_role);

        // An IAM user whose name looks like an instance id is still a user.
        let text = record(serde_json::json!({"userIdentity": {
            "type": "IAMUser", "userName": "i-0abc1234", "arn": "arn:aws:iam::1:user/i-0abc1234"
        }}));
        assert!(!parse_record(&text, "1", "r").unwrap().instance_role);
    }

    #[test]
    fn missing_user_identity_is_unknown_not_an_error() {
        let e = parse_record(&record(serde_json::json!({})), "1", "r").unwrap();
        assert_eq!(e.principal_type, "Unknown");
        assert_eq!(e.principal_arn, "");
        assert_eq!(e.principal(), "Unknown");
        assert_eq!(e.user_name, None);
        assert_eq!(e.source_ip, None);
        assert_eq!(e.session_id, None);
    }

    #[test]
    fn wrong_types_in_optional_fields_are_absent() {
        let text = record(serde_json::json!({
            "userIdentity": "not an object",
            "sourceIPAddress": 12,
            "userAgent": ["x"],
            "requestParameters": {"target": {"a": 1}, "documentName": false},
            "responseElements": "oops",
            "errorCode": "",
        }));
        let e = parse_record(&text, "1", "r").unwrap();
        assert_eq!(e.principal_type, "Unknown");
        assert_eq!(
            (
                e.source_ip,
                e.user_agent,
                e.target,
                e.document_name,
                e.error_code
            ),
            (None, None, None, None, None)
        );
    }

    #[test]
    fn control_characters_and_huge_fields_are_kept_as_is() {
        let agent = format!("evil\u{1b}[2J\r\n\u{0}{}", "A".repeat(1_000_000));
        let text = record(serde_json::json!({"userAgent": agent}));
        let e = parse_record(&text, "1", "r").unwrap();
        assert_eq!(e.user_agent.as_deref(), Some(agent.as_str()));
    }

    #[test]
    fn times_without_offset_or_with_fractions() {
        for (raw, want) in [
            ("2025-03-01T10:00:00Z", "2025-03-01T10:00:00Z"),
            ("2025-03-01T10:00:00.250Z", "2025-03-01T10:00:00.250Z"),
            ("2025-03-01T12:00:00+02:00", "2025-03-01T10:00:00Z"),
            ("2025-03-01T10:00:00", "2025-03-01T10:00:00Z"),
        ] {
            let text = record(serde_json::json!({ "eventTime": raw }));
            assert_eq!(
                parse_record(&text, "1", "r").unwrap().event_time,
                utc(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = parse_record("{not json", "1", "r").unwrap_err();
        assert!(matches!(err, ParseError::NotJson { .. }), "{err}");
        assert!(err.to_string().starts_with("record is not JSON"));

        let err = parse_record("[1,2]", "1", "r").unwrap_err();
        assert_eq!(err, ParseError::NotObject { found: "an array" });

        for field in ["eventID", "eventName", "eventTime"] {
            let mut v: Value = serde_json::from_str(&record(serde_json::json!({}))).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let err = parse_value(&v, "1", "r").unwrap_err();
            assert_eq!(err, ParseError::MissingField { field });
            assert!(err.to_string().contains(field));
        }

        let err = parse_record(
            &record(serde_json::json!({"eventTime": "yesterday"})),
            "1",
            "r",
        )
        .unwrap_err();
        assert!(matches!(err, ParseError::BadEventTime { .. }));
        assert!(err.to_string().contains("yesterday"));

        let err = parse_record(
            &record(serde_json::json!({"eventSource": "ec2.amazonaws.com"})),
            "1",
            "r",
        )
        .unwrap_err();
        assert!(err.is_not_session_call());
        assert!(!ParseError::MissingField { field: "eventID" }.is_not_session_call());
    }

    #[test]
    fn error_messages_quote_little_and_escape_control_characters() {
        let long = format!("\u{1b}[31m{}", "9".repeat(10_000));
        let err = parse_record(&record(serde_json::json!({"eventTime": long})), "1", "r")
            .unwrap_err()
            .to_string();
        assert!(err.chars().count() < 200, "{}", err.len());
        assert!(!err.contains('\u{1b}'));

        let err = parse_record(&format!("{{\"a\": \"{}", "x".repeat(100_000)), "1", "r")
            .unwrap_err()
            .to_string();
        assert!(err.chars().count() < 200, "{}", err.len());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_record(&deep, "1", "r").is_err());
        let deep = format!(
            "{{\"eventID\":\"e\",\"x\":{}{}}}",
            "{\"a\":".repeat(50_000),
            "}".repeat(50_000)
        );
        assert!(parse_record(&deep, "1", "r").is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            // Values that reach the interesting paths.
            prop_oneof![
                Just("StartSession"),
                Just("ResumeSession"),
                Just("AssumedRole"),
                Just("Root"),
                Just("IAMUser"),
                Just("2025-03-01T10:00:00Z"),
                Just("ssm.amazonaws.com"),
                Just("i-0abc1234"),
                Just("arn:aws:sts::1:assumed-role/R/i-0abc1234"),
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        let keys = prop_oneof![
            Just("eventID".to_string()),
            Just("eventName".to_string()),
            Just("eventTime".to_string()),
            Just("eventSource".to_string()),
            Just("userIdentity".to_string()),
            Just("type".to_string()),
            Just("arn".to_string()),
            Just("sessionContext".to_string()),
            Just("ec2RoleDelivery".to_string()),
            Just("attributes".to_string()),
            Just("mfaAuthenticated".to_string()),
            Just("requestParameters".to_string()),
            Just("responseElements".to_string()),
            Just("sessionId".to_string()),
            Just("principalId".to_string()),
            any::<String>(),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>(), acct in ".{0,4}") {
            let _ = parse_record(&text, &acct, "");
        }

        #[test]
        fn never_panics_on_arbitrary_json(value in arb_json()) {
            let text = value.to_string();
            let _ = parse_record(&text, "", "");
            if let Ok(e) = parse_value(&value, "1", "r") {
                prop_assert!(!e.event_id.is_empty());
                prop_assert_eq!(e.account_id, "1");
            }
        }

        #[test]
        fn never_panics_on_mangled_records(cut in 0usize..1400, junk in any::<String>()) {
            let mut text: String = SSO_ROLE.chars().take(cut).collect();
            text.push_str(&junk);
            let _ = parse_record(&text, "1", "r");
        }
    }
}
