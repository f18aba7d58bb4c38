//! OCSF (Open Cybersecurity Schema Framework) 1.6.0, the version AWS Security Hub
//! reads, one JSON object a line:
//! - `events.ocsf.jsonl`: one API Activity (class 6003) per session call of the
//!   report, in the report's order;
//! - `findings.ocsf.jsonl`: one Detection Finding (class 2004) per finding, with
//!   the proving calls as `evidences` and `finding_info.related_events`.
//!
//! Both carry the `cloud` profile. Every record validates against the OCSF 1.6.0
//! JSON schema (`tests/ocsf_validate.py`, run by `.ci/run`); the mapping is pure.

use std::collections::HashMap;
use std::io;

use serde_json::{json, Map, Value};

use super::{finding_id, ReportWriter};
use crate::model::{Finding, Report, RunInfo, SessionEvent, Severity};

/// The OCSF version both files follow.
pub const OCSF_VERSION: &str = "1.6.0";
const API_ACTIVITY: u32 = 6003;
const DETECTION_FINDING: u32 = 2004;

pub struct OcsfEvents;
pub struct OcsfFindings;

impl ReportWriter for OcsfEvents {
    fn file_name(&self) -> &'static str {
        "events.ocsf.jsonl"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        for e in &report.events {
            serde_json::to_writer(&mut *out, &api_activity(e, &report.run))?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

impl ReportWriter for OcsfFindings {
    fn file_name(&self) -> &'static str {
        "findings.ocsf.jsonl"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        let events: HashMap<&str, &SessionEvent> = report
            .events
            .iter()
            .map(|e| (e.event_id.as_str(), e))
            .collect();
        for f in &report.findings {
            serde_json::to_writer(&mut *out, &detection_finding(f, &events, &report.run))?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

/// `aws`, `aws-cn` or `aws-us-gov`, from a region name.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn metadata(uid: &str, run: &RunInfo) -> Value {
    json!({
        "version": OCSF_VERSION,
        "uid": uid,
        "profiles": ["cloud"],
        "product": {
            "name": "ssm-session-audit",
            "vendor_name": "ssm-session-audit",
            "version": run.tool_version,
        },
    })
}

fn cloud(account_id: &str, region: &str, run: &RunInfo) -> Value {
    let mut c = json!({
        "provider": "AWS",
        "region": region,
        "cloud_partition": partition_of_region(region),
        "account": { "uid": account_id, "type_id": 10, "type": "AWS Account" },
    });
    if let Some(org) = &run.organization_id {
        c["org"] = json!({ "uid": org });
    }
    c
}

/// (activity_id, name) of API Activity for a Session Manager call.
fn activity(event_name: &str) -> (u32, &'static str) {
    match event_name {
        "StartSession" => (1, "Create"),
        "ResumeSession" => (3, "Update"),
        "TerminateSession" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn severity(s: Severity) -> (u32, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// The caller, as OCSF `actor`.
fn actor(e: &SessionEvent) -> Value {
    let (type_id, _) = match e.principal_type.as_str() {
        "Root" => (2, "Admin"),
        "IAMUser" => (1, "User"),
        "AWSService" => (4, "Service"),
        "" | "Unknown" => (0, "Unknown"),
        _ => (99, "Other"),
    };
    let mut user = Map::new();
    user.insert("type_id".into(), json!(type_id));
    user.insert("type".into(), json!(e.principal_type));
    // The user object needs a name, a uid or an account: the principal type names
    // a record without userIdentity.
    user.insert(
        "name".into(),
        json!(e.user_name.as_deref().unwrap_or(e.principal())),
    );
    if !e.principal_arn.is_empty() {
        user.insert("uid".into(), json!(e.principal_arn));
    }
    if let Some(acct) = &e.principal_account_id {
        user.insert(
            "account".into(),
            json!({ "uid": acct, "type_id": 10, "type": "AWS Account" }),
        );
    }
    let mut actor = json!({ "user": user });
    let mut session = Map::new();
    if let Some(issuer) = &e.session_issuer_arn {
        session.insert("issuer".into(), json!(issuer));
    }
    if let Some(mfa) = e.mfa_authenticated {
        session.insert("is_mfa".into(), json!(mfa));
    }
    if !session.is_empty() {
        actor["session"] = Value::Object(session);
    }
    actor
}

/// Where the call came from: an IP address, or the AWS service that made it
/// (`ssm.amazonaws.com`), or a name (`AWS Internal`).
fn src_endpoint(e: &SessionEvent) -> Value {
    match e.source_ip.as_deref().map(str::trim) {
        Some(ip) if ip.parse::<std::net::IpAddr>().is_ok() => json!({ "ip": ip }),
        Some(svc) if svc.ends_with(".amazonaws.com") => json!({ "svc_name": svc }),
        Some(name) if !name.is_empty() => json!({ "name": name }),
        _ => json!({ "name": "unknown" }),
    }
}

fn api(e: &SessionEvent) -> Value {
    let mut api = json!({
        "operation": e.event_name,
        "service": { "name": "ssm.amazonaws.com" },
    });
    if let Some(code) = &e.error_code {
        let mut response = json!({ "error": code });
        if let Some(m) = &e.error_message {
            response["error_message"] = json!(m);
        }
        api["response"] = response;
    }
    api
}

fn resources(e: &SessionEvent) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(t) = &e.target {
        let kind = if t.starts_with("i-") || t.starts_with("mi-") {
            "AWS::EC2::Instance"
        } else {
            "AWS::SSM::ManagedInstance"
        };
        out.push(json!({ "uid": t, "type": kind, "region": e.region }));
    }
    if let Some(s) = &e.session_id {
        out.push(json!({ "uid": s, "type": "AWS::SSM::Session", "region": e.region }));
    }
    out
}

/// One session call as OCSF API Activity (6003).
pub fn api_activity(e: &SessionEvent, run: &RunInfo) -> Value {
    let (activity_id, activity_name) = activity(&e.event_name);
    let mut v = json!({
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": API_ACTIVITY * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "time": e.event_time.timestamp_millis(),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": if e.is_denied() { 2 } else { 1 },
        "status": if e.is_denied() { "Failure" } else { "Success" },
        "metadata": metadata(&e.event_id, run),
        "cloud": cloud(&e.account_id, &e.region, run),
        "actor": actor(e),
        "api": api(e),
        "src_endpoint": src_endpoint(e),
    });
    if let Some(code) = &e.error_code {
        v["status_code"] = json!(code);
        if let Some(m) = &e.error_message {
            v["status_detail"] = json!(m);
        }
    }
    if let Some(ua) = &e.user_agent {
        v["http_request"] = json!({ "user_agent": ua });
    }
    let res = resources(e);
    if !res.is_empty() {
        v["resources"] = Value::Array(res);
    }
    let mut unmapped = Map::new();
    if let Some(d) = &e.document_name {
        unmapped.insert("document_name".into(), json!(d));
    }
    if e.instance_role {
        unmapped.insert("instance_role".into(), json!(true));
    }
    if !unmapped.is_empty() {
        v["unmapped"] = Value::Object(unmapped);
    }
    v
}

/// One finding as OCSF Detection Finding (2004). `time` is its last proving
/// call (the run's end when none is in the report), so a rerun writes the same line.
pub fn detection_finding(
    f: &Finding,
    events: &HashMap<&str, &SessionEvent>,
    run: &RunInfo,
) -> Value {
    let uid = finding_id(f);
    let proving: Vec<&SessionEvent> = f
        .event_ids
        .iter()
        .filter_map(|id| events.get(id.as_str()).copied())
        .collect();
    let first = proving.iter().map(|e| e.event_time).min();
    let last = proving.iter().map(|e| e.event_time).max();
    let (severity_id, severity_name) = severity(f.severity);
    let related: Vec<Value> = f
        .event_ids
        .iter()
        .map(|id| {
            let mut r = json!({ "uid": id });
            if let Some(e) = events.get(id.as_str()) {
                r["type_uid"] = json!(API_ACTIVITY * 100 + activity(&e.event_name).0);
                r["first_seen_time"] = json!(e.event_time.timestamp_millis());
            }
            r
        })
        .collect();
    let mut info = json!({
        "uid": uid,
        "title": format!("{}: {} in {} {}", f.flag, f.principal_arn, f.account_id, f.region),
        "desc": f.detail,
        "types": [f.flag.as_str()],
        "analytic": { "type_id": 1, "type": "Rule", "name": f.flag.as_str(), "uid": f.flag.as_str() },
        "data_sources": ["CloudTrail"],
        "related_events": related,
        "related_events_count": f.event_ids.len(),
    });
    if let (Some(a), Some(b)) = (first, last) {
        info["first_seen_time"] = json!(a.timestamp_millis());
        info["last_seen_time"] = json!(b.timestamp_millis());
    }
    let mut v = json!({
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": DETECTION_FINDING * 100 + 1,
        "type_name": "Detection Finding: Create",
        "time": last.unwrap_or(run.finished_at).timestamp_millis(),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": 1,
        "status": "New",
        "is_alert": f.severity >= Severity::High,
        "message": f.detail,
        "metadata": metadata(&uid, run),
        "cloud": cloud(&f.account_id, &f.region, run),
        "finding_info": info,
        "count": f.event_ids.len(),
    });
    if let (Some(a), Some(b)) = (first, last) {
        v["start_time"] = json!(a.timestamp_millis());
        v["end_time"] = json!(b.timestamp_millis());
    }
    let evidences: Vec<Value> = proving
        .iter()
        .map(|e| {
            json!({
                "uid": e.event_id,
                "name": e.event_name,
                "actor": actor(e),
                "api": api(e),
                "src_endpoint": src_endpoint(e),
            })
        })
        .collect();
    if !evidences.is_empty() {
        v["evidences"] = Value::Array(evidences);
    }
    let mut res: Vec<Value> = Vec::new();
    for e in &proving {
        for r in resources(e) {
            if !res.contains(&r) {
                res.push(r);
            }
        }
    }
    if !res.is_empty() {
        v["resources"] = Value::Array(res);
    }
    let mut unmapped = json!({ "principal_arn": f.principal_arn });
    if let Some(s) = &f.session_id {
        unmapped["session_id"] = json!(s);
    }
    v["unmapped"] = unmapped;
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn lines(w: &dyn ReportWriter, r: &Report) -> Vec<Value> {
        let mut out = Vec::new();
        w.write(r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn one_api_activity_per_event() {
        let r = fixture::report();
        let out = lines(&OcsfEvents, &r);
        assert_eq!(out.len(), r.events.len());
        for (v, e) in out.iter().zip(&r.events) {
            assert_eq!(v["class_uid"], 6003);
            assert_eq!(v["category_uid"], 6);
            assert_eq!(
                v["type_uid"].as_u64().unwrap(),
                6003 * 100 + v["activity_id"].as_u64().unwrap()
            );
            assert_eq!(v["metadata"]["version"], "1.6.0");
            assert_eq!(v["metadata"]["uid"], e.event_id.as_str());
            assert_eq!(v["time"], e.event_time.timestamp_millis());
            assert_eq!(v["api"]["operation"], e.event_name.as_str());
            assert_eq!(v["api"]["service"]["name"], "ssm.amazonaws.com");
            assert_eq!(v["cloud"]["provider"], "AWS");
            assert_eq!(v["cloud"]["account"]["uid"], e.account_id.as_str());
            assert_eq!(v["cloud"]["region"], e.region.as_str());
            assert_eq!(v["cloud"]["org"]["uid"], "o-exampleorg1");
            assert_eq!(v["actor"]["user"]["uid"], e.principal_arn.as_str());
            assert_eq!(v["src_endpoint"]["ip"], e.source_ip.as_deref().unwrap());
        }
        // The user agent is kept as data, escapes and all.
        let alice = &out[3];
        assert_eq!(
            alice["http_request"]["user_agent"],
            "aws-cli/2.15.0 \x1b]0;pwned\x07\x1b[2J"
        );
        assert_eq!(alice["activity_id"], 1);
        assert_eq!(
            alice["unmapped"]["document_name"],
            "AWS-StartPortForwardingSession"
        );
        assert_eq!(out[4]["activity_name"], "Update");
        assert_eq!(out[1]["activity_name"], "Delete");
        // A denied call is a failure with AWS's code and message.
        let denied = &out[2];
        assert_eq!(denied["status_id"], 2);
        assert_eq!(denied["status_code"], "AccessDenied");
        assert_eq!(denied["api"]["response"]["error"], "AccessDenied");
        assert_eq!(denied["actor"]["user"]["type_id"], 1);
        assert_eq!(out[0]["actor"]["user"]["type_id"], 2, "root is admin");
    }

    #[test]
    fn one_detection_finding_per_finding() {
        let r = fixture::report();
        let out = lines(&OcsfFindings, &r);
        assert_eq!(out.len(), r.findings.len());
        for (v, f) in out.iter().zip(&r.findings) {
            assert_eq!(v["class_uid"], 2004);
            assert_eq!(v["category_uid"], 2);
            assert_eq!(v["type_uid"], 200401);
            assert_eq!(v["finding_info"]["uid"], finding_id(f).as_str());
            assert_eq!(v["metadata"]["uid"], finding_id(f).as_str());
            assert_eq!(v["finding_info"]["types"][0], f.flag.as_str());
            assert_eq!(v["finding_info"]["desc"], f.detail.as_str());
            let related: Vec<&str> = v["finding_info"]["related_events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["uid"].as_str().unwrap())
                .collect();
            assert_eq!(related, f.event_ids);
            assert_eq!(v["evidences"].as_array().unwrap().len(), f.event_ids.len());
        }
        assert_eq!(out[0]["severity_id"], 5);
        assert_eq!(out[0]["severity"], "Critical");
        assert_eq!(out[0]["is_alert"], true);
        assert_eq!(out[3]["severity_id"], 2);
        // Its time is the last proving call: the same in every run.
        let off_hours = &out[3];
        assert_eq!(
            off_hours["time"],
            fixture::t("2025-02-22T03:40:12Z").timestamp_millis()
        );
        assert_eq!(off_hours["count"], 2);
        assert_eq!(lines(&OcsfFindings, &r), out, "same report, same lines");
    }

    #[test]
    fn sources_that_are_not_ips() {
        let mut e = fixture::report().events[0].clone();
        e.source_ip = Some("ssm.amazonaws.com".into());
        assert_eq!(src_endpoint(&e), json!({ "svc_name": "ssm.amazonaws.com" }));
        e.source_ip = Some("AWS Internal".into());
        assert_eq!(src_endpoint(&e), json!({ "name": "AWS Internal" }));
        e.source_ip = None;
        assert_eq!(src_endpoint(&e), json!({ "name": "unknown" }));
        e.source_ip = Some("2001:db8::1".into());
        assert_eq!(src_endpoint(&e), json!({ "ip": "2001:db8::1" }));
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }

    #[test]
    fn a_record_without_user_identity_still_has_an_actor() {
        let mut e = fixture::report().events[0].clone();
        e.principal_type = "Unknown".into();
        e.principal_arn = String::new();
        e.user_name = None;
        e.principal_account_id = None;
        e.session_issuer_arn = None;
        e.mfa_authenticated = None;
        let a = actor(&e);
        assert_eq!(
            a,
            json!({ "user": { "type_id": 0, "type": "Unknown", "name": "Unknown" } })
        );
    }
}
