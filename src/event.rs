//! One CloudTrail record (the JSON text of a `CloudTrailEvent`, or one element of a
//! trail file's `Records`) → one [`SessionEvent`]. Pure functions of the text.
//!
//! The record is caller-influenced data: fields may be missing, of the wrong type,
//! huge or full of control characters. Two ways in:
//! - **lenient** ([`parse_record_lenient`], [`parse_value_lenient`],
//!   [`parse_lookup_event`]): whatever can be read is kept; a record that could
//!   not be read in full comes back with [`SessionEvent::parse_error`] saying why.
//!   Only a record with nothing to keep is an error: not a JSON object, or no
//!   event id, name or time (LookupEvents' own `EventId`, `EventName` and
//!   `EventTime` stand in for the record's), or another service's call.
//! - **strict** ([`parse_record`], [`parse_value`]): the same, but a record not
//!   read in full is [`ParseError::Partial`].
//!
//! "In full" means every field the tool reads is absent, null, or of its type,
//! `userIdentity` is there with a `type`, and `eventTime` is a time. Real
//! records' quirks read in full: `eventTime` without `T` or offset
//! (`2025-02-19 20:13:49`, taken as UTC), no `recipientAccountId` (the
//! partition's, else `userIdentity.accountId`), `requestParameters` or
//! `responseElements` null. Sanitising for display is the report's job.

use std::net::IpAddr;

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
    /// Only from the strict entry points: the lenient ones keep the event.
    #[error("record {event_id} could not be read in full: {reason}")]
    Partial { event_id: String, reason: String },
}

impl ParseError {
    /// A well-formed record of another service: a reader of trail files skips it
    /// rather than counting it as malformed.
    pub fn is_not_session_call(&self) -> bool {
        matches!(self, ParseError::NotSessionCall { .. })
    }
}

/// LookupEvents' own fields of one result, beside its `CloudTrailEvent` text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupFields<'a> {
    pub event_id: Option<&'a str>,
    pub event_name: Option<&'a str>,
    pub event_time: Option<DateTime<Utc>>,
    pub username: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    /// `(ResourceType, ResourceName)` pairs.
    pub resources: Vec<(&'a str, &'a str)>,
    pub cloud_trail_event: Option<&'a str>,
}

/// Parses one CloudTrail record, strictly: a record not read in full is
/// [`ParseError::Partial`].
///
/// `account_id` and `region` are the partition the record was read from and win
/// over the record's own `recipientAccountId` / `awsRegion`; pass `""` to take the
/// record's (trail files, where the record is the only source).
pub fn parse_record(
    record: &str,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    strict(parse_record_lenient(record, account_id, region)?)
}

/// Like [`parse_record`], for a caller that already holds the record as a JSON value.
pub fn parse_value(
    value: &Value,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    strict(parse_value_lenient(value, account_id, region)?)
}

/// Parses one record, keeping what can be read: see the module doc.
pub fn parse_record_lenient(
    record: &str,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    let value: Value = record_value(record).map_err(|e| ParseError::NotJson {
        reason: quote(&e.to_string()),
    })?;
    parse_value_lenient(&value, account_id, region)
}

/// The members of a record [`read_object`] reads. The others (`tlsDetails`,
/// `resources`, `additionalEventData`, `requestID`, …) are only checked as
/// JSON, never built into values: most of a record's text, and most of what
/// reading it as a whole `Value` cost.
const READ_MEMBERS: [&str; 13] = [
    "eventID",
    "eventSource",
    "eventName",
    "eventTime",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "userAgent",
    "recipientAccountId",
    "awsRegion",
];

/// A record's text as JSON: an object holds only its [`READ_MEMBERS`] (the
/// last of a repeated member wins, as with `Value`; a skipped member's text
/// is checked as JSON syntax only, so a number too large for a `Value` or
/// nesting deeper than its recursion limit there is no longer an error: the
/// members read are still read whole); anything else, or text that is not JSON, is what
/// reading it as a `Value` gives (the same value, the same error).
fn record_value(text: &str) -> serde_json::Result<Value> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    /// A member name, borrowed from the text unless it holds an escape.
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Map::new();
            while let Some(Key(key)) = m.next_key()? {
                if READ_MEMBERS.contains(&&*key) {
                    out.insert(key.into_owned(), m.next_value()?);
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    match de
        .deserialize_map(Members)
        .and_then(|m| de.end().map(|()| m))
    {
        Ok(members) => Ok(Value::Object(members)),
        // Not an object, or not JSON: exactly what the whole value says.
        Err(_) => serde_json::from_str(text),
    }
}

/// Like [`parse_record_lenient`], for a record already held as a JSON value.
pub fn parse_value_lenient(
    value: &Value,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    let record = value.as_object().ok_or(ParseError::NotObject {
        found: json_kind(value),
    })?;
    read_object(record, account_id, region, None)
}

/// One LookupEvents result: its `CloudTrailEvent` read leniently, with
/// LookupEvents' own fields standing in for what the record lacks. A
/// `CloudTrailEvent` that is not a JSON object still gives an event from those
/// fields alone, marked as read partially. The partition's account and region
/// are the event's.
pub fn parse_lookup_event(
    fields: &LookupFields<'_>,
    account_id: &str,
    region: &str,
) -> Result<SessionEvent, ParseError> {
    let text = fields.cloud_trail_event.unwrap_or_default();
    let error = match record_value(text) {
        Ok(Value::Object(record)) => {
            return read_object(&record, account_id, region, Some(fields));
        }
        Ok(other) => ParseError::NotObject {
            found: json_kind(&other),
        },
        Err(_) if fields.cloud_trail_event.is_none() => ParseError::MissingField {
            field: "CloudTrailEvent",
        },
        Err(e) => ParseError::NotJson {
            reason: quote(&e.to_string()),
        },
    };
    let (Some(id), Some(name), Some(time)) = (
        nonempty(fields.event_id),
        nonempty(fields.event_name),
        fields.event_time,
    ) else {
        return Err(error);
    };
    let mut e = SessionEvent {
        account_id: account_id.to_string(),
        region: region.to_string(),
        event_time: time,
        event_name: name.to_string(),
        event_id: id.to_string(),
        principal_type: "Unknown".to_string(),
        parse_error: Some(format!("{error}; only LookupEvents' own fields were read")),
        ..SessionEvent::default()
    };
    fill_from_lookup(&mut e, fields);
    e.actor = e.principal().to_string();
    Ok(e)
}

fn strict(e: SessionEvent) -> Result<SessionEvent, ParseError> {
    match e.parse_error {
        Some(reason) => Err(ParseError::Partial {
            event_id: quote(&e.event_id),
            reason,
        }),
        None => Ok(e),
    }
}

/// What was not read in full, in reading order.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn note(&mut self, what: String) {
        self.0.push(what);
    }

    /// A string field: absent, null and `""` are `None`; any other type is `None`
    /// and a problem.
    fn text<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v str> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()).filter(|s| !s.is_empty()),
            Some(other) => {
                self.note(format!(
                    "`{path}{key}` is {}, not a string",
                    json_kind(other)
                ));
                None
            }
        }
    }

    /// An object field: absent and null are `None`; any other type is a problem.
    fn object<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Map<String, Value>> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.note(format!(
                    "`{path}{key}` is {}, not an object",
                    json_kind(other)
                ));
                None
            }
        }
    }

    /// At most a few, each already quoted, so the text stays short.
    fn into_reason(self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let n = self.0.len();
        let mut shown: Vec<String> = self.0.into_iter().take(4).collect();
        if n > 4 {
            shown.push(format!("and {} more", n - 4));
        }
        Some(shown.join("; "))
    }
}

fn read_object(
    record: &Map<String, Value>,
    account_id: &str,
    region: &str,
    lookup: Option<&LookupFields<'_>>,
) -> Result<SessionEvent, ParseError> {
    let mut p = Problems::default();
    let outer_id = lookup.and_then(|l| nonempty(l.event_id));
    let event_id = match (p.text(record, "", "eventID"), outer_id) {
        (Some(own), Some(outer)) if own != outer => {
            p.note(format!(
                "`eventID` \"{}\" is not LookupEvents' EventId \"{}\"",
                quote(own),
                quote(outer)
            ));
            own
        }
        (Some(own), _) => own,
        (None, Some(outer)) => {
            p.note("no `eventID` (LookupEvents' EventId used)".into());
            outer
        }
        (None, None) => return Err(ParseError::MissingField { field: "eventID" }),
    };

    if let Some(source) = p.text(record, "", "eventSource") {
        if source != SSM_EVENT_SOURCE {
            return Err(ParseError::NotSessionCall {
                event_id: quote(event_id),
                event_source: quote(source),
            });
        }
    }

    let event_name = match (
        p.text(record, "", "eventName"),
        lookup.and_then(|l| nonempty(l.event_name)),
    ) {
        (Some(own), _) => own,
        (None, Some(outer)) => {
            p.note("no `eventName` (LookupEvents' EventName used)".into());
            outer
        }
        (None, None) => return Err(ParseError::MissingField { field: "eventName" }),
    };

    let time_text = p.text(record, "", "eventTime");
    let event_time = match (
        time_text.map(|t| (t, parse_time(t))),
        lookup.and_then(|l| l.event_time),
    ) {
        (Some((_, Some(t))), _) => t,
        (Some((raw, None)), Some(outer)) => {
            p.note(format!(
                "`eventTime` \"{}\" is not a time (LookupEvents' EventTime used)",
                quote(raw)
            ));
            outer
        }
        (None, Some(outer)) => {
            p.note("no `eventTime` (LookupEvents' EventTime used)".into());
            outer
        }
        (Some((raw, None)), None) => {
            return Err(ParseError::BadEventTime {
                event_id: quote(event_id),
                value: quote(raw),
            })
        }
        (None, None) => return Err(ParseError::MissingField { field: "eventTime" }),
    };

    let identity = match record.get("userIdentity") {
        None | Some(Value::Null) => {
            p.note("no `userIdentity`: who made the call is unknown".into());
            None
        }
        Some(_) => p.object(record, "", "userIdentity"),
    };
    let id_text =
        |p: &mut Problems, key: &str| identity.and_then(|i| p.text(i, "userIdentity.", key));
    let principal_type = match id_text(&mut p, "type") {
        Some(t) => t.to_string(),
        None => {
            if identity.is_some() {
                p.note("no `userIdentity.type`".into());
            }
            "Unknown".to_string()
        }
    };
    let principal_arn = id_text(&mut p, "arn").unwrap_or_default().to_string();
    let principal_account_id = owned(id_text(&mut p, "accountId"));
    let access_key_id = owned(id_text(&mut p, "accessKeyId"));
    let principal_id = id_text(&mut p, "principalId");
    let iam_user_name = id_text(&mut p, "userName");
    let session_context = identity.and_then(|i| p.object(i, "userIdentity.", "sessionContext"));
    let issuer =
        session_context.and_then(|c| p.object(c, "userIdentity.sessionContext.", "sessionIssuer"));
    let session_issuer_arn =
        owned(issuer.and_then(|s| p.text(s, "userIdentity.sessionContext.sessionIssuer.", "arn")));
    let attributes =
        session_context.and_then(|c| p.object(c, "userIdentity.sessionContext.", "attributes"));
    let mfa_authenticated = match attributes.and_then(|a| a.get("mfaAuthenticated")) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let b = as_bool(v);
            if b.is_none() {
                p.note(
                    "`userIdentity.sessionContext.attributes.mfaAuthenticated` is not a boolean"
                        .into(),
                );
            }
            b
        }
    };
    let on_behalf_of = identity.and_then(|i| p.object(i, "userIdentity.", "onBehalfOf"));
    let identity_center_user = on_behalf_of.and_then(|o| {
        let user = p.text(o, "userIdentity.onBehalfOf.", "userId")?;
        let store = p.text(o, "userIdentity.onBehalfOf.", "identityStoreArn");
        Some(identity_center_user(user, store))
    });
    let user_name = match principal_type.as_str() {
        "Root" => Some("root".to_string()),
        "IAMUser" => owned(iam_user_name),
        // The ARN ends in the role (or federation) session name:
        // `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
        "AssumedRole" | "FederatedUser" => owned(last_path_element(&principal_arn).or_else(|| {
            principal_id
                .and_then(|p| p.rsplit_once(':'))
                .map(|(_, session)| session)
                .filter(|s| !s.is_empty())
        })),
        _ => owned(iam_user_name),
    };
    let ec2_role_delivery = session_context.is_some_and(|c| c.contains_key("ec2RoleDelivery"));
    // Only an assumed role's session name can be an instance id; an IAM user
    // named like one is still a user.
    let instance_role = ec2_role_delivery
        || (principal_type == "AssumedRole" && user_name.as_deref().is_some_and(is_instance_id));

    let request = p.object(record, "", "requestParameters");
    let response = p.object(record, "", "responseElements");
    let from_request =
        |p: &mut Problems, key: &str| request.and_then(|r| p.text(r, "requestParameters.", key));
    let from_response =
        |p: &mut Problems, key: &str| response.and_then(|r| p.text(r, "responseElements.", key));
    // StartSession learns its id from the response; Resume/Terminate name it in
    // the request (Resume's response only mirrors it).
    let (req_sid, resp_sid) = (
        from_request(&mut p, "sessionId"),
        from_response(&mut p, "sessionId"),
    );
    let session_id = if event_name == "StartSession" {
        resp_sid.or(req_sid)
    } else {
        req_sid.or(resp_sid)
    };
    let mut target = owned(from_request(&mut p, "target"));
    let mut document_name = owned(from_request(&mut p, "documentName"));
    let reason = owned(from_request(&mut p, "reason"));
    let error_code = owned(p.text(record, "", "errorCode"));
    let error_message = owned(p.text(record, "", "errorMessage"));
    // A real denial has `requestParameters: null`: what it was about is only in
    // its message, which is trusted only where it has AWS's exact shape.
    if event_name == "StartSession" && (target.is_none() || document_name.is_none()) {
        match error_message
            .as_deref()
            .and_then(|m| denied_resource(m, "ssm:StartSession"))
        {
            Some(Named::Target(t)) => {
                target.get_or_insert(t);
            }
            Some(Named::Document(d)) => {
                document_name.get_or_insert(d);
            }
            None => {}
        }
    }

    let source_ip = owned(p.text(record, "", "sourceIPAddress"));
    let user_agent = owned(p.text(record, "", "userAgent"));
    let record_account = p.text(record, "", "recipientAccountId");
    let record_region = p.text(record, "", "awsRegion");
    let account_id = if account_id.is_empty() {
        // Published records sometimes lack recipientAccountId.
        record_account
            .or(principal_account_id.as_deref())
            .unwrap_or_default()
    } else {
        account_id
    };
    let region = if region.is_empty() {
        record_region.unwrap_or_default()
    } else {
        region
    };

    let actor = actor_of(
        &principal_type,
        &principal_arn,
        session_issuer_arn.as_deref(),
        identity_center_user.as_deref(),
    );
    let mut event = SessionEvent {
        account_id: account_id.to_string(),
        region: region.to_string(),
        event_time,
        event_name: event_name.to_string(),
        event_id: event_id.to_string(),
        session_id: owned(session_id),
        principal_type,
        principal_arn,
        actor,
        principal_account_id,
        user_name,
        session_issuer_arn,
        access_key_id,
        mfa_authenticated,
        instance_role,
        source_ip,
        user_agent,
        target,
        document_name,
        reason,
        error_code,
        error_message,
        parse_error: p.into_reason(),
    };
    // LookupEvents' own fields fill what a partly read record lacks; a record
    // read in full is the only truth, as it is for the files source.
    if let (Some(l), false) = (lookup, event.is_whole()) {
        fill_from_lookup(&mut event, l);
    }
    Ok(event)
}

/// `Username`, `AccessKeyId` and `Resources` where the event has none.
fn fill_from_lookup(e: &mut SessionEvent, l: &LookupFields<'_>) {
    if e.user_name.is_none() {
        e.user_name = owned(nonempty(l.username));
    }
    if e.access_key_id.is_none() {
        e.access_key_id = owned(nonempty(l.access_key_id));
    }
    for (kind, name) in &l.resources {
        match *kind {
            "AWS::EC2::Instance" | "AWS::SSM::ManagedInstance" if e.target.is_none() => {
                e.target = owned(nonempty(Some(name)));
            }
            "AWS::SSM::Document" if e.document_name.is_none() => {
                e.document_name = owned(nonempty(Some(name)));
            }
            _ => {}
        }
    }
}

/// `i-` followed by 8 or 17 hex digits: the shape of an EC2 instance id.
pub fn is_instance_id(name: &str) -> bool {
    name.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// `mi-` followed by 17 hex digits: a hybrid managed node.
pub fn is_managed_node_id(name: &str) -> bool {
    name.strip_prefix("mi-")
        .is_some_and(|hex| hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Who really acted (PRODUCT.md "actor"), never a name the caller picked:
/// - an IAM Identity Center user: `onBehalfOf` (`identity_center_user`, see
///   [`identity_center_user`]), else the session name of an `AWSReservedSSO_`
///   role under `aws-reserved/sso.amazonaws.com/`, written as the assumed-role ARN
///   (account, permission set role and user name: two users never merge);
/// - an IAM user or root: its ARN;
/// - any other assumed role: the role itself (the session issuer's ARN, else the
///   role of the assumed-role ARN), since whoever assumes it picks the session
///   name; a federated user: the IAM user that issued it;
/// - anything else: the principal ARN, or the identity type when there is none.
pub fn actor_of(
    principal_type: &str,
    principal_arn: &str,
    session_issuer_arn: Option<&str>,
    identity_center_user: Option<&str>,
) -> String {
    if let Some(user) = identity_center_user.filter(|u| !u.is_empty()) {
        return user.to_string();
    }
    let issuer = session_issuer_arn.filter(|a| !a.is_empty());
    let fallback = || {
        if principal_arn.is_empty() {
            principal_type.to_string()
        } else {
            principal_arn.to_string()
        }
    };
    match principal_type {
        "AssumedRole" => match issuer {
            Some(role) if is_identity_center_role(role, principal_arn) => principal_arn.to_string(),
            Some(role) => role.to_string(),
            None => actor_from_arn(principal_arn).unwrap_or_else(fallback),
        },
        "FederatedUser" => issuer.map_or_else(fallback, str::to_string),
        "IAMUser" | "Root" => fallback(),
        _ => actor_from_arn(principal_arn).unwrap_or_else(fallback),
    }
}

/// The actor an ARN alone names (a report that kept only `principal_arn`): an
/// `AWSReservedSSO_` role's session is its user, any other role session is the
/// role (`arn:P:iam::ACCOUNT:role/ROLE`); `None` for other ARNs.
pub fn actor_from_arn(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":assumed-role/")?;
    let (role, session) = rest.split_once('/')?;
    if role.is_empty() || session.is_empty() {
        return None;
    }
    if role.starts_with("AWSReservedSSO_") {
        return Some(arn.to_string());
    }
    // `arn:PARTITION:sts::ACCOUNT`
    let (prefix, account) = head.rsplit_once(':')?;
    let partition = prefix.strip_prefix("arn:")?.strip_suffix(":sts:")?;
    if partition.is_empty() || account.is_empty() {
        return None;
    }
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// `onBehalfOf` as an actor: the user id qualified by its identity store.
pub fn identity_center_user(user_id: &str, identity_store_arn: Option<&str>) -> String {
    match identity_store_arn.filter(|s| !s.is_empty()) {
        Some(store) => format!("{store}/user/{user_id}"),
        None => format!("identitystore/user/{user_id}"),
    }
}

/// An Identity Center permission set role (`…:role/aws-reserved/sso.amazonaws.com/
/// [REGION/]AWSReservedSSO_…`: only AWS creates roles under that path) that the
/// principal's assumed-role ARN names. A role merely named `AWSReservedSSO_…`
/// elsewhere is any other role.
fn is_identity_center_role(issuer_arn: &str, principal_arn: &str) -> bool {
    let Some((_, path)) = issuer_arn.split_once(":role/aws-reserved/sso.amazonaws.com/") else {
        return false;
    };
    let name = path.rsplit('/').next().unwrap_or_default();
    !name.is_empty()
        && principal_arn
            .split_once(":assumed-role/")
            .and_then(|(_, rest)| rest.split_once('/'))
            .is_some_and(|(role, session)| role == name && !session.is_empty())
}

/// What a denial's `errorMessage` says the call was about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    Target(String),
    Document(String),
}

/// The resource of AWS's denial text `… is not authorized to perform: ACTION on
/// resource: ARN …`, when the ARN is exactly an instance, a managed node or a
/// document: the text before it holds a caller-chosen session name (which cannot
/// hold a space), so nothing looser is trusted.
fn denied_resource(message: &str, action: &str) -> Option<Named> {
    let marker = format!("is not authorized to perform: {action} on resource: ");
    let at = message.find(&marker)? + marker.len();
    let rest = &message[at..];
    let mut token = rest.split(char::is_whitespace).next()?;
    if token.len() == rest.len() {
        // The message's last word may carry its full stop.
        token = token.strip_suffix('.').unwrap_or(token);
    }
    let mut parts = token.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    // `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...
    let partition_ok = partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|rest| {
            rest.split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        });
    let region_ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = crate::ids::is_account_id(account);
    if !partition_ok || !region_ok {
        return None;
    }
    match (service, resource.split_once('/')) {
        ("ec2", Some(("instance", id))) if account_ok && is_instance_id(id) => {
            Some(Named::Target(id.to_string()))
        }
        ("ssm", Some(("managed-instance", id))) if account_ok && is_managed_node_id(id) => {
            Some(Named::Target(id.to_string()))
        }
        // AWS's own documents have no account in their ARN.
        ("ssm", Some(("document", name)))
            if (account.is_empty() || account_ok) && is_document_name(name) =>
        {
            Some(Named::Document(name.to_string()))
        }
        _ => None,
    }
}

/// An SSM document name: 3 to 128 of letters, digits, `_`, `-` and `.`.
fn is_document_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// An IP address, with IPv4-mapped IPv6 (`::ffff:1.2.3.4`) taken as its IPv4
/// address; `None` for what is not an IP (`AWS Internal`, a service name).
pub fn ip_of(source: &str) -> Option<IpAddr> {
    let ip: IpAddr = source.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn last_path_element(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .map(|(_, last)| last)
        .filter(|s| !s.is_empty())
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
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

/// RFC 3339 (`2025-02-19T20:13:49Z`), an ISO 8601 offset without its colon
/// (`+0000`), or a time without an offset, taken as UTC (`2025-02-19T20:13:49`,
/// `2025-02-19 20:13:49`, as some pipelines rewrite records). Nothing looser: a
/// time zone name such as ` UTC` is not read.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
    {
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
        assert_eq!(e.access_key_id.as_deref(), Some("SAMPLE_ACCESS_KEY_ID"));
        assert_eq!(e.reason, None);
        assert_eq!(e.parse_error, None);
        // The role is under aws-reserved/sso.amazonaws.com/: the session name is
        // the Identity Center user, so the actor is that user in that role.
        assert_eq!(e.actor, e.principal_arn);
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
        assert_eq!(e.access_key_id.as_deref(), Some("AKIAVE4W5C6YJPLGCFU5"));
        assert_eq!(e.actor, e.principal_arn);
        assert!(e.is_whole());
    }

    #[test]
    fn published_quirks_read_in_full() {
        // A pipeline's time without `T` or offset, no recipientAccountId, a
        // successful StartSession with `responseElements: null`.
        let mut v: Value = serde_json::from_str(SSO_ROLE).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("eventTime".into(), "2025-02-19 20:13:49".into());
        o.remove("recipientAccountId");
        o.insert("responseElements".into(), Value::Null);
        let e = parse_value(&v, "", "").unwrap();
        assert_eq!(e.event_time, utc("2025-02-19T20:13:49Z"));
        assert_eq!(e.account_id, "111122223333", "from userIdentity.accountId");
        assert_eq!(e.session_id, None);
        assert_eq!(e.target.as_deref(), Some("i-047fce8bf4806e5ee"));
        // The partition still wins.
        assert_eq!(
            parse_value(&v, "999999999999", "r").unwrap().account_id,
            "999999999999"
        );
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

    /// A ResumeSession by an IAM user, read in full, with `extra` on top.
    fn record(extra: Value) -> String {
        let mut base = serde_json::json!({
            "eventID": "e1",
            "eventName": "ResumeSession",
            "eventTime": "2025-03-01T10:00:00Z",
            "eventSource": "ssm.amazonaws.com",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u", "userName": "u"},
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
        for (code, denied) in [
            ("AccessDenied", true),
            ("AccessDeniedException", true),
            ("Client.UnauthorizedOperation", true),
            ("ThrottlingException", false),
            ("TargetNotConnected", false),
            ("InvalidDocument", false),
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
            assert!(e.is_failed());
            assert_eq!(e.is_denied(), denied, "{code}");
            assert_eq!(e.session_id, None);
            assert!(e.error_message.unwrap().contains("not authorized"));
        }
    }

    #[test]
    fn access_denials_and_other_failures() {
        use crate::model::is_access_denial;
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "Client.AccessDenied",
            "KMS.AccessDeniedException",
            "UnauthorizedOperation",
            "Client.UnauthorizedOperation",
            "NotAuthorized",
            "NotAuthorizedException",
        ] {
            assert!(is_access_denial(code), "{code}");
        }
        for code in [
            "TargetNotConnected",
            "InvalidDocument",
            "ThrottlingException",
            "InternalServerError",
            "InvalidClientTokenId",
            "ExpiredTokenException",
            "Unauthorized",
            "",
        ] {
            assert!(!is_access_denial(code), "{code}");
        }
    }

    /// A denied StartSession as real records have it: no request parameters.
    fn denial(message: &str) -> SessionEvent {
        let text = record(serde_json::json!({
            "eventName": "StartSession",
            "errorCode": "AccessDenied",
            "errorMessage": message,
            "requestParameters": null,
            "responseElements": null,
        }));
        parse_record(&text, "1", "r").unwrap()
    }

    #[test]
    fn a_denial_names_its_target_or_document_only_in_its_message() {
        let who = "User: arn:aws:sts::123456789012:assumed-role/Dev/alice is not authorized to perform: ssm:StartSession on resource:";
        let because = "because no identity-based policy allows the ssm:StartSession action";
        let e = denial(&format!(
            "{who} arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890 {because}"
        ));
        assert_eq!(e.target.as_deref(), Some("i-0abc1234def567890"));
        assert_eq!(e.document_name, None);
        assert!(e.is_whole(), "a real denial reads in full");
        let e = denial(&format!(
            "{who} arn:aws-us-gov:ssm:us-gov-west-1:123456789012:managed-instance/mi-0123456789abcdef0 with an explicit deny in a service control policy"
        ));
        assert_eq!(e.target.as_deref(), Some("mi-0123456789abcdef0"));
        // AWS's own documents have no account; the message may end at the ARN.
        let e = denial(&format!(
            "{who} arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSessionToRemoteHost"
        ));
        assert_eq!(
            e.document_name.as_deref(),
            Some("AWS-StartPortForwardingSessionToRemoteHost")
        );
        let e = denial(&format!(
            "{who} arn:aws:ssm:eu-west-1:123456789012:document/SSM-SessionManagerRunShell."
        ));
        assert_eq!(
            e.document_name.as_deref(),
            Some("SSM-SessionManagerRunShell")
        );
        assert_eq!(e.target, None);

        // What the request says wins; the message only fills what is missing.
        let text = record(serde_json::json!({
            "eventName": "StartSession",
            "errorCode": "AccessDenied",
            "errorMessage": format!("{who} arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890 {because}"),
            "requestParameters": {"target": "i-0aaaaaaaaaaaaaaaa"},
        }));
        assert_eq!(
            parse_record(&text, "1", "r").unwrap().target.as_deref(),
            Some("i-0aaaaaaaaaaaaaaaa")
        );
    }

    #[test]
    fn a_denial_message_is_trusted_only_in_aws_exact_shape() {
        let who = "User: arn:aws:sts::123456789012:assumed-role/Dev/alice is not authorized to perform: ssm:StartSession on resource:";
        for message in [
            // Not the action asked about.
            "User: x is not authorized to perform: ssm:TerminateSession on resource: arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890",
            // Attacker-shaped ids and ARNs.
            &format!("{who} arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def56789Z"),
            &format!("{who} arn:aws:ec2:us-east-1:123456789012:instance/i-0abc;rm"),
            &format!("{who} arn:aws:ec2:us-east-1:12345:instance/i-0abc1234def567890"),
            &format!("{who} arn:evil:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"),
            &format!("{who} arn:aws:ec2:US-EAST-1:123456789012:instance/i-0abc1234def567890"),
            &format!("{who} arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc1234def567890"),
            &format!("{who} arn:aws:ssm:us-east-1::document/=HYPERLINK(\"x\")"),
            &format!("{who} arn:aws:ssm:us-east-1::document/a"),
            &format!("{who} arn:aws:ssm:us-east-1::document/{}", "A".repeat(129)),
            &format!("{who} arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0123"),
            // The marker alone, or nothing after it.
            &format!("{who} "),
            "is not authorized to perform: ssm:StartSession on resource:",
            "",
        ] {
            let e = denial(message);
            assert_eq!((e.target, e.document_name), (None, None), "{message:?}");
        }
    }

    #[test]
    fn actors_are_who_acted_not_the_session_names_callers_pick() {
        let sso_issuer = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123abcd";
        let sso = "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123abcd/alice@example.com";
        assert_eq!(actor_of("AssumedRole", sso, Some(sso_issuer), None), sso);
        // onBehalfOf names the Identity Center user itself.
        let user = identity_center_user(
            "9067abcd-1111-2222-3333-444455556666",
            Some("arn:aws:identitystore::111111111111:identitystore/d-9067abcdef"),
        );
        assert_eq!(
            user,
            "arn:aws:identitystore::111111111111:identitystore/d-9067abcdef/user/9067abcd-1111-2222-3333-444455556666"
        );
        assert_eq!(
            actor_of("AssumedRole", sso, Some(sso_issuer), Some(&user)),
            user
        );
        assert_eq!(identity_center_user("u-1", None), "identitystore/user/u-1");
        // Any other role is the role, whatever its session is called.
        let issuer = "arn:aws:iam::111111111111:role/ci/ci-deployer";
        for session in ["botocore-session-1", "x", "alice@example.com"] {
            let arn = format!("arn:aws:sts::111111111111:assumed-role/ci-deployer/{session}");
            assert_eq!(actor_of("AssumedRole", &arn, Some(issuer), None), issuer);
        }
        // A role merely named like an SSO role is any other role.
        let fake = "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123abcd/bob";
        let fake_issuer = "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_0123abcd";
        assert_eq!(
            actor_of("AssumedRole", fake, Some(fake_issuer), None),
            fake_issuer
        );
        // An SSO issuer that is not the principal's role proves nothing.
        assert_eq!(
            actor_of(
                "AssumedRole",
                "arn:aws:sts::1:assumed-role/Other/bob",
                Some(sso_issuer),
                None
            ),
            sso_issuer
        );
        // No issuer: the role of the ARN.
        assert_eq!(
            actor_of(
                "AssumedRole",
                "arn:aws-cn:sts::222222222222:assumed-role/Ops/s-1",
                None,
                None
            ),
            "arn:aws-cn:iam::222222222222:role/Ops"
        );
        // Users, root, federation, the rest.
        let bob = "arn:aws:iam::1:user/bob";
        assert_eq!(actor_of("IAMUser", bob, None, None), bob);
        assert_eq!(
            actor_of("Root", "arn:aws:iam::1:root", None, None),
            "arn:aws:iam::1:root"
        );
        assert_eq!(
            actor_of(
                "FederatedUser",
                "arn:aws:sts::1:federated-user/anything",
                Some(bob),
                None
            ),
            bob
        );
        assert_eq!(actor_of("Unknown", "", None, None), "Unknown");
        assert_eq!(actor_of("AWSService", "", None, None), "AWSService");

        assert_eq!(actor_from_arn(sso).as_deref(), Some(sso));
        assert_eq!(
            actor_from_arn("arn:aws:sts::1:assumed-role/R/s").as_deref(),
            Some("arn:aws:iam::1:role/R")
        );
        for not_a_role_session in [
            "arn:aws:iam::1:user/bob",
            "arn:aws:sts::1:assumed-role/R",
            "arn:aws:sts::1:assumed-role//s",
            "",
            "assumed-role/R/s",
        ] {
            assert_eq!(
                actor_from_arn(not_a_role_session),
                None,
                "{not_a_role_session}"
            );
        }
    }

    #[test]
    fn the_actor_is_parsed_from_the_record() {
        let text = record(serde_json::json!({"userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/ci-deployer/botocore-session-17",
            "accountId": "1",
            "accessKeyId": "ASIAXXXXXXXXXXXXXXXX",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::1:role/ci-deployer"}},
        }}));
        let e = parse_record(&text, "1", "r").unwrap();
        assert_eq!(e.actor, "arn:aws:iam::1:role/ci-deployer");
        assert_eq!(e.access_key_id.as_deref(), Some("ASIAXXXXXXXXXXXXXXXX"));
        let text = record(serde_json::json!({"userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_A_1/alice",
            "onBehalfOf": {"userId": "u-7", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"},
        }}));
        let e = parse_record(&text, "1", "r").unwrap();
        assert_eq!(
            e.actor,
            "arn:aws:identitystore::1:identitystore/d-1/user/u-7"
        );
    }

    #[test]
    fn the_reason_is_kept_as_is() {
        let reason = "ticket OPS-1\u{1b}[2J =cmd";
        let text = record(serde_json::json!({
            "eventName": "StartSession",
            "requestParameters": {"target": "i-1", "reason": reason},
        }));
        assert_eq!(
            parse_record(&text, "1", "r").unwrap().reason.as_deref(),
            Some(reason)
        );
    }

    #[test]
    fn ip_of_takes_mapped_ipv6_as_ipv4() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(ip_of("::ffff:198.51.100.7"), Some(v4));
        assert_eq!(ip_of("::FFFF:198.51.100.7"), Some(v4));
        assert_eq!(ip_of(" 198.51.100.7 "), Some(v4));
        assert_eq!(ip_of("2001:DB8::1"), Some("2001:db8::1".parse().unwrap()));
        // IPv4-compatible (deprecated) and NAT64 forms are not the IPv4 address.
        assert_ne!(ip_of("::198.51.100.7"), Some(v4));
        assert_ne!(ip_of("64:ff9b::198.51.100.7"), Some(v4));
        for not_ip in ["AWS Internal", "ssm.amazonaws.com", "", "1.2.3"] {
            assert_eq!(ip_of(not_ip), None, "{not_ip}");
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
    fn missing_user_identity_is_kept_but_not_read_in_full() {
        let mut v: Value = serde_json::from_str(&record(serde_json::json!({}))).unwrap();
        v.as_object_mut().unwrap().remove("userIdentity");
        let e = parse_value_lenient(&v, "1", "r").unwrap();
        assert_eq!(e.principal_type, "Unknown");
        assert_eq!(e.principal_arn, "");
        assert_eq!(e.principal(), "Unknown");
        assert_eq!(e.actor, "Unknown");
        assert_eq!(e.user_name, None);
        assert_eq!(e.source_ip, None);
        assert_eq!(e.session_id, None);
        assert!(e
            .parse_error
            .as_deref()
            .unwrap()
            .contains("no `userIdentity`"));
        let err = parse_value(&v, "1", "r").unwrap_err();
        assert!(matches!(err, ParseError::Partial { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("record e1 could not be read in full: no `userIdentity`"));
    }

    #[test]
    fn wrong_types_are_absent_and_mark_the_record_partial() {
        let text = record(serde_json::json!({
            "userIdentity": "not an object",
            "sourceIPAddress": 12,
            "userAgent": ["x"],
            "requestParameters": {"target": {"a": 1}, "documentName": false},
            "responseElements": "oops",
            "errorCode": "",
        }));
        let e = parse_record_lenient(&text, "1", "r").unwrap();
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
        let why = e.parse_error.unwrap();
        assert!(
            why.starts_with("`userIdentity` is a string, not an object"),
            "{why}"
        );
        assert!(
            why.contains("`requestParameters.target` is an object, not a string"),
            "{why}"
        );
        assert!(why.ends_with("and 2 more"), "at most four named: {why}");
        assert!(parse_record(&text, "1", "r").is_err());

        // Null and empty are absent, not wrong.
        let text = record(serde_json::json!({
            "sourceIPAddress": null, "requestParameters": null, "responseElements": null,
            "errorCode": "", "userAgent": "",
        }));
        assert!(parse_record(&text, "1", "r").unwrap().is_whole());
        // Wrong types deep in the identity, too.
        for identity in [
            serde_json::json!({"type": 7}),
            serde_json::json!({"type": "AssumedRole", "arn": ["x"]}),
            serde_json::json!({"type": "AssumedRole", "sessionContext": "x"}),
            serde_json::json!({"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": 1}}}),
            serde_json::json!({"type": "AssumedRole", "sessionContext": {"attributes": {"mfaAuthenticated": "maybe"}}}),
            serde_json::json!({"type": "AssumedRole", "onBehalfOf": {"userId": 3}}),
            serde_json::json!({"arn": "arn:aws:iam::1:user/u"}),
        ] {
            let text = record(serde_json::json!({ "userIdentity": identity }));
            let e = parse_record_lenient(&text, "1", "r").unwrap();
            assert!(!e.is_whole(), "{identity}");
        }
    }

    fn lookup<'a>(text: Option<&'a str>) -> LookupFields<'a> {
        LookupFields {
            event_id: Some("outer-1"),
            event_name: Some("StartSession"),
            event_time: Some(utc("2025-03-03T10:00:00Z")),
            username: Some("alice"),
            access_key_id: Some("ASIAOUTER"),
            resources: vec![
                ("AWS::EC2::Instance", "i-0abc1234"),
                ("AWS::SSM::Document", "AWS-StartSSHSession"),
            ],
            cloud_trail_event: text,
        }
    }

    #[test]
    fn lookup_fields_stand_in_for_a_record_that_is_not_json() {
        for text in [
            Some("<html>502</html>\u{0}"),
            Some("{\"eventID\":\"outer-1\",\"userIdent"),
            Some("[1]"),
            Some(""),
            None,
        ] {
            let e = parse_lookup_event(&lookup(text), "111111111111", "us-east-1").unwrap();
            assert_eq!(e.event_id, "outer-1");
            assert_eq!(e.event_name, "StartSession");
            assert_eq!(e.event_time, utc("2025-03-03T10:00:00Z"));
            assert_eq!(
                (e.account_id.as_str(), e.region.as_str()),
                ("111111111111", "us-east-1")
            );
            assert_eq!(e.user_name.as_deref(), Some("alice"));
            assert_eq!(e.access_key_id.as_deref(), Some("ASIAOUTER"));
            assert_eq!(e.target.as_deref(), Some("i-0abc1234"));
            assert_eq!(e.document_name.as_deref(), Some("AWS-StartSSHSession"));
            assert_eq!(e.principal_type, "Unknown");
            assert_eq!(e.actor, "Unknown");
            let why = e.parse_error.unwrap();
            assert!(
                why.ends_with("only LookupEvents' own fields were read"),
                "{why}"
            );
            assert!(!why.chars().any(char::is_control), "{why:?}");
        }
        // Without the outer id, name or time there is nothing to keep.
        for strip in 0..3 {
            let mut f = lookup(Some("<html>"));
            match strip {
                0 => f.event_id = None,
                1 => f.event_name = Some(""),
                _ => f.event_time = None,
            }
            assert!(parse_lookup_event(&f, "1", "r").is_err());
        }
    }

    #[test]
    fn lookup_fields_fill_what_a_partial_record_lacks() {
        // The issue's example: a time in a pipeline's own format.
        let text = record(serde_json::json!({
            "eventID": "outer-1",
            "eventName": "StartSession",
            "eventTime": "2025-03-03 10:00:00 UTC",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/R/bob"},
            "requestParameters": {"target": "i-0record1"},
        }));
        let e = parse_lookup_event(&lookup(Some(&text)), "1", "r").unwrap();
        assert_eq!(
            e.event_time,
            utc("2025-03-03T10:00:00Z"),
            "LookupEvents' EventTime"
        );
        assert_eq!(e.user_name.as_deref(), Some("bob"), "what parsed is kept");
        assert_eq!(
            e.target.as_deref(),
            Some("i-0record1"),
            "the record wins where it speaks"
        );
        assert_eq!(
            e.access_key_id.as_deref(),
            Some("ASIAOUTER"),
            "the outer fills blanks"
        );
        assert_eq!(e.actor, "arn:aws:iam::1:role/R");
        let why = e.parse_error.unwrap();
        assert!(
            why.contains("`eventTime` \"2025-03-03 10:00:00 UTC\" is not a time"),
            "{why}"
        );

        // A record without id, name or time borrows LookupEvents'.
        let mut v: Value = serde_json::from_str(&record(serde_json::json!({}))).unwrap();
        for k in ["eventID", "eventName", "eventTime"] {
            v.as_object_mut().unwrap().remove(k);
        }
        let text = v.to_string();
        let e = parse_lookup_event(&lookup(Some(&text)), "1", "r").unwrap();
        assert_eq!(
            (e.event_id.as_str(), e.event_name.as_str()),
            ("outer-1", "StartSession")
        );
        assert!(e.parse_error.unwrap().contains("no `eventID`"));

        // A record read in full is the only truth: no outer field mixes in.
        let e = parse_lookup_event(
            &lookup(Some(&record(serde_json::json!({"eventID": "outer-1"})))),
            "1",
            "r",
        )
        .unwrap();
        assert!(e.is_whole());
        assert_eq!((e.access_key_id, e.target), (None, None));
        assert_eq!(e.event_name, "ResumeSession");

        // Ids that disagree are kept by the record's and noted.
        let e =
            parse_lookup_event(&lookup(Some(&record(serde_json::json!({})))), "1", "r").unwrap();
        assert_eq!(e.event_id, "e1");
        assert!(e.parse_error.unwrap().contains("not LookupEvents' EventId"));

        // Another service's record is skipped, not kept.
        let other = record(serde_json::json!({"eventSource": "ec2.amazonaws.com"}));
        assert!(parse_lookup_event(&lookup(Some(&other)), "1", "r")
            .unwrap_err()
            .is_not_session_call());
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
            ("2025-02-19 20:13:49", "2025-02-19T20:13:49Z"),
            ("2025-02-19 20:13:49.5", "2025-02-19T20:13:49.500Z"),
            ("2025-03-01T10:00:00.000+0000", "2025-03-01T10:00:00Z"),
            ("2025-03-01 12:00:00+0200", "2025-03-01T10:00:00Z"),
        ] {
            let text = record(serde_json::json!({ "eventTime": raw }));
            let e = parse_record(&text, "1", "r").unwrap();
            assert_eq!(e.event_time, utc(want), "{raw}");
        }
        // A zone name, a date alone, nonsense: not a time.
        for raw in [
            "2025-03-03 10:00:00 UTC",
            "2025-03-03",
            "2025-13-01T10:00:00Z",
            "10:00",
        ] {
            let text = record(serde_json::json!({ "eventTime": raw }));
            assert!(
                matches!(
                    parse_record_lenient(&text, "1", "r"),
                    Err(ParseError::BadEventTime { .. })
                ),
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

    /// [`parse_record_lenient`] as it was: the record read as one whole `Value`.
    fn whole(text: &str) -> Result<SessionEvent, ParseError> {
        whole_in(text, "1", "r")
    }

    fn whole_in(text: &str, account: &str, region: &str) -> Result<SessionEvent, ParseError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ParseError::NotJson {
            reason: quote(&e.to_string()),
        })?;
        parse_value_lenient(&value, account, region)
    }

    #[test]
    fn unread_members_are_skipped_not_kept() {
        let text = format!(
            r#"{{"tlsDetails":{{"a":[1,2,{{"b":null}}]}},"eventName":"x","eventName":"StartSession","e\u0076entID":"y"{}"#,
            "}"
        );
        let v = record_value(&text).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 2, "{o:?}");
        assert_eq!(
            o["eventName"], "StartSession",
            "the last of a repeated member"
        );
        assert_eq!(
            o["eventID"], "y",
            "an escaped member name is still its name"
        );
        // Not an object, or not JSON: what the whole value gives.
        assert_eq!(record_value("[1]").unwrap(), serde_json::json!([1]));
        assert_eq!(
            record_value("{\"a\":1} x").unwrap_err().to_string(),
            serde_json::from_str::<Value>("{\"a\":1} x")
                .unwrap_err()
                .to_string()
        );
        assert!(
            record_value(r#"{"tlsDetails":[1,}"#).is_err(),
            "skipped text is still JSON"
        );
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
            Just("awsRegion".to_string()),
            Just("recipientAccountId".to_string()),
            Just("errorCode".to_string()),
            Just("errorMessage".to_string()),
            Just("userAgent".to_string()),
            Just("sourceIPAddress".to_string()),
            Just("target".to_string()),
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
                prop_assert!(e.is_whole());
                prop_assert_eq!(e.account_id, "1");
            }
            match parse_value_lenient(&value, "1", "r") {
                Ok(e) => {
                    prop_assert!(!e.event_id.is_empty());
                    prop_assert!(!e.actor.is_empty());
                    let strict = parse_value(&value, "1", "r");
                    prop_assert_eq!(strict.is_ok(), e.is_whole());
                    if let Some(why) = &e.parse_error {
                        prop_assert!(!why.chars().any(char::is_control));
                        prop_assert!(why.chars().count() < 600, "{}", why.len());
                    }
                }
                Err(err) => prop_assert!(parse_value(&value, "1", "r").unwrap_err() == err),
            }
            let fields = LookupFields {
                event_id: Some("outer"),
                event_name: Some("StartSession"),
                event_time: Some(utc("2025-03-01T10:00:00Z")),
                cloud_trail_event: Some(&text),
                ..LookupFields::default()
            };
            // With LookupEvents' fields, only another service's record is not kept.
            match parse_lookup_event(&fields, "1", "r") {
                Ok(e) => prop_assert!(!e.event_id.is_empty()),
                Err(err) => prop_assert!(err.is_not_session_call(), "{}", err),
            }
        }

        #[test]
        fn never_panics_on_mangled_records(cut in 0usize..1400, junk in any::<String>()) {
            let mut text: String = SSO_ROLE.chars().take(cut).collect();
            text.push_str(&junk);
            let _ = parse_record(&text, "1", "r");
            prop_assert_eq!(parse_record_lenient(&text, "1", "r"), whole(&text));
        }

        /// Reading only the members `read_object` reads gives what reading the
        /// whole record gives: the same event, the same error.
        #[test]
        fn skipping_unread_members_changes_nothing(
            value in arb_json(),
            extra in arb_json(),
            drop in prop::collection::vec(0usize..20, 0..3),
        ) {
            // A real record with members changed, added and removed: most
            // of them read in full or in part, not refused outright.
            let mut record: Value = serde_json::from_str(SSO_ROLE).unwrap();
            let o = record.as_object_mut().unwrap();
            for i in drop {
                if let Some(k) = o.keys().nth(i).cloned() {
                    o.remove(&k);
                }
            }
            if let Value::Object(changes) = value {
                o.extend(changes);
            }
            o.insert("tlsDetails".into(), extra);
            let text = record.to_string();
            prop_assert_eq!(parse_record_lenient(&text, "1", "r"), whole(&text));
            prop_assert_eq!(parse_record_lenient(&text, "", ""), whole_in(&text, "", ""));
        }
    }
}
