//! One trail file's bytes → the session events it holds, with counts.
//! The local and S3 readers stream into it; the tests pass bytes.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use std::io::{self, BufRead, Read};

use sha2::{Digest as _, Sha256};

use super::inflate;
use super::path::{parse_key, TrailKey};
use super::split::{for_each_record, SplitFail};
use super::{FileScan, TrailQuery};
use crate::model::SessionEvent;

/// Every Session Manager record names its source so; a record without this
/// text anywhere is skipped after one substring test.
const SSM_SOURCE: &str = "ssm.amazonaws.com";

/// The fields that decide whether a record is wanted, borrowed from its text.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventTime", borrow, default)]
    event_time: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "recipientAccountId", borrow, default)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(rename = "awsRegion", borrow, default)]
    aws_region: Option<Cow<'a, str>>,
}

/// The parser of one record: `crate::event::parse_record_lenient`, or a stand-in
/// in tests. An event it returns with `parse_error` set is kept and counted as
/// malformed.
pub(crate) type ParseFn<'p> = &'p dyn Fn(&str, &str, &str) -> Result<SessionEvent, String>;

pub(crate) fn real_parse(
    record: &str,
    account: &str,
    region: &str,
) -> Result<SessionEvent, String> {
    crate::event::parse_record_lenient(record, account, region).map_err(|e| e.to_string())
}

/// Scan one file's bytes (tests and [`super::scan_file_bytes`]).
pub(crate) fn scan_bytes(
    path: &str,
    key: Option<TrailKey>,
    bytes: &[u8],
    q: &TrailQuery,
    buf: &mut Vec<u8>,
    parse: ParseFn<'_>,
) -> FileScan {
    let size = bytes.len() as u64;
    scan_stream(path, key, bytes, size, false, q, buf, parse)
}

/// Scan one file as it streams from `src` (`size` bytes stored): inflate,
/// split and select without holding the file. `buf` is the caller's window,
/// kept between files. With `hash`, the SHA-256 of the decompressed text (what
/// a digest lists) comes back in [`FileScan::sha256`] when the whole text was read.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_stream(
    path: &str,
    key: Option<TrailKey>,
    src: impl BufRead,
    size: u64,
    hash: bool,
    q: &TrailQuery,
    buf: &mut Vec<u8>,
    parse: ParseFn<'_>,
) -> FileScan {
    let key = key.or_else(|| parse_key(path));
    let mut scan = FileScan::new(path, key);
    scan.bytes_compressed = size;
    let mut text = inflate::open(src, inflate::MAX_INFLATED);
    let mut hashed = Hashed {
        inner: &mut text,
        sha: hash.then(Sha256::new),
    };
    let mut records = 0u64;
    let mut found = FileScan::new(path, None);
    found.key = scan.key.clone();
    let split = for_each_record(&mut hashed, buf, |rec| {
        records += 1;
        match std::str::from_utf8(rec) {
            Ok(raw) => select_record(raw, q, parse, &mut found),
            Err(_) => {
                if contains_bytes(rec, SSM_SOURCE.as_bytes()) {
                    found.malformed(event_id_of(&String::from_utf8_lossy(rec)));
                }
            }
        }
    });
    let complete = match split {
        Ok(()) => true,
        Err(SplitFail::Read(e)) => {
            scan.error = Some(e.to_string());
            false
        }
        Err(SplitFail::Json(e)) => {
            scan.error = Some(e.to_string());
            // Not a trail file's JSON, but it may still be the file the digest
            // lists: read the rest (bounded by the inflate cap) to hash it.
            hashed.sha.is_some() && io::copy(&mut hashed, &mut io::sink()).is_ok()
        }
    };
    scan.sha256 = match (complete, hashed.sha.take()) {
        (true, Some(h)) => Some(h.finalize().into()),
        _ => None,
    };
    scan.bytes_uncompressed = text.produced();
    scan.records = records;
    scan.events = found.events;
    scan.malformed = found.malformed;
    scan.malformed_event_ids = found.malformed_event_ids;
    scan
}

/// Hashes what passes through, when asked to.
struct Hashed<'a, R> {
    inner: &'a mut R,
    sha: Option<Sha256>,
}

impl<R: Read> Read for Hashed<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if let Some(h) = &mut self.sha {
            h.update(&out[..n]);
        }
        Ok(n)
    }
}

fn select_record(raw: &str, q: &TrailQuery, parse: ParseFn<'_>, scan: &mut FileScan) {
    if !raw.contains(SSM_SOURCE) || !may_name_a_wanted_call(raw, &q.event_names) {
        return;
    }
    let head: Head = match serde_json::from_str(raw) {
        Ok(h) => h,
        Err(_) => {
            // Unreadable: count it only if it may be one of ours.
            if q.event_names.iter().any(|n| raw.contains(n.as_str())) {
                scan.malformed(event_id_of(raw));
            }
            return;
        }
    };
    if head.event_source.as_deref() != Some(SSM_SOURCE) {
        return;
    }
    let Some(name) = head.event_name.as_deref() else {
        return;
    };
    if !q.event_names.iter().any(|n| n == name) {
        return;
    }
    let id = head.event_id.as_deref().map(clean_id);
    // The record's own account and region are the truth; the path only says
    // where it was found, and stands in when the record lacks them.
    let (path_account, path_region) = match &scan.key {
        Some(k) => (k.account.as_str(), k.region.as_str()),
        None => ("", ""),
    };
    let account = head.recipient_account_id.as_deref().unwrap_or(path_account);
    let region = head.aws_region.as_deref().unwrap_or(path_region);
    if !q.wants_account(account) || !q.wants_region(region) {
        return;
    }
    // RFC 3339 (CloudTrail's own form) decides here, before the full parse;
    // any other form is left to the parser, which knows what it accepts.
    let time = head
        .event_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let in_window = |t: DateTime<Utc>| q.window.contains(t);
    if time.is_some_and(|t| !in_window(t)) {
        return;
    }
    let (account_arg, region_arg) = (
        if head.recipient_account_id.is_some() {
            ""
        } else {
            account
        },
        if head.aws_region.is_some() {
            ""
        } else {
            region
        },
    );
    match parse(raw, account_arg, region_arg) {
        Ok(ev) if in_window(ev.event_time) => {
            // Read partially: kept with what parsed, and counted.
            if !ev.is_whole() {
                scan.malformed(Some(clean_id(&ev.event_id)));
            }
            scan.events.push(ev)
        }
        Ok(_) => {}
        Err(_) => scan.malformed(id),
    }
}

/// CloudTrail writes records compactly, so `"eventName":"X"` is there verbatim.
/// Most records naming SSM are its other calls (the agent's
/// UpdateInstanceInformation, GetParameter, KMS calls made for a session): when
/// every compact `eventName` names another call the record is skipped without a
/// parse. A record without one (another layout) is left to the full test.
fn may_name_a_wanted_call(raw: &str, names: &[String]) -> bool {
    const KEY: &str = "\"eventName\":\"";
    let mut seen = false;
    for (at, _) in raw.match_indices(KEY) {
        seen = true;
        let rest = &raw[at + KEY.len()..];
        let value = rest.find('"').map_or(rest, |end| &rest[..end]);
        if names.iter().any(|n| n == value) {
            return true;
        }
    }
    !seen
}

/// Event ids go into reports: keep only what a UUID is made of.
fn clean_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// The `eventID` of a record too broken to parse, if its text shows one.
fn event_id_of(raw: &str) -> Option<String> {
    let at = raw.find("\"eventID\"")? + "\"eventID\"".len();
    let rest = raw[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let id = clean_id(&rest[..rest.find('"')?]);
    (!id.is_empty()).then_some(id)
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TimeWindow;

    fn q() -> TrailQuery {
        TrailQuery::new(TimeWindow {
            start: "2025-02-19T00:00:00Z".parse().unwrap(),
            end: "2025-02-19T23:59:59Z".parse().unwrap(),
        })
    }

    /// Stands in for the real parser: enough of an event to check selection.
    fn fake(raw: &str, account: &str, region: &str) -> Result<SessionEvent, String> {
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        if s("eventID").contains("reject") {
            return Err("rejected".into());
        }
        Ok(SessionEvent {
            account_id: if account.is_empty() {
                s("recipientAccountId")
            } else {
                account.into()
            },
            region: if region.is_empty() {
                s("awsRegion")
            } else {
                region.into()
            },
            event_time: s("eventTime")
                .parse()
                .or_else(|_| format!("{}Z", s("eventTime")).parse())
                .map_err(|_| "time")?,
            event_name: s("eventName"),
            event_id: s("eventID"),
            session_id: None,
            principal_type: String::new(),
            principal_arn: String::new(),
            principal_account_id: None,
            user_name: None,
            session_issuer_arn: None,
            mfa_authenticated: None,
            instance_role: false,
            source_ip: None,
            user_agent: None,
            target: None,
            document_name: None,
            error_code: None,
            error_message: None,
            ..SessionEvent::default()
        })
    }

    fn rec(id: &str, source: &str, name: &str, time: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.10","eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"ssm.amazonaws.com","eventID":"{id}","recipientAccountId":"111122223333","userAgent":"a \"q\" {{["}}"#
        )
    }

    fn scan(text: &str, q: &TrailQuery) -> FileScan {
        let mut buf = Vec::new();
        scan_bytes(
            "AWSLogs/o-x/999999999999/CloudTrail/us-east-1/2025/02/19/f.json",
            None,
            text.as_bytes(),
            q,
            &mut buf,
            &fake,
        )
    }

    #[test]
    fn keeps_only_session_calls_in_the_window() {
        let recs = [
            rec(
                "keep-1",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T10:00:00Z",
            ),
            rec(
                "other-name",
                "ssm.amazonaws.com",
                "GetParameter",
                "2025-02-19T10:00:00Z",
            ),
            rec(
                "invoked-by-ssm",
                "kms.amazonaws.com",
                "Decrypt",
                "2025-02-19T10:00:00Z",
            ),
            rec(
                "before",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-18T23:59:59Z",
            ),
            rec(
                "at-start",
                "ssm.amazonaws.com",
                "ResumeSession",
                "2025-02-19T00:00:00Z",
            ),
            // The window is half-open: its end is the next window's.
            rec(
                "at-end",
                "ssm.amazonaws.com",
                "TerminateSession",
                "2025-02-19T23:59:59Z",
            ),
            rec(
                "after",
                "ssm.amazonaws.com",
                "ResumeSession",
                "2025-02-20T00:00:00Z",
            ),
            rec("bad-time", "ssm.amazonaws.com", "StartSession", "yesterday"),
            rec(
                "naive-time",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T11:00:00",
            ),
            rec(
                "naive-out",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-20T11:00:00",
            ),
            rec(
                "reject-me",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T10:00:00Z",
            ),
        ];
        let good = format!("{{\"Records\":[{}]}}", recs.join(","));
        let s = scan(&good, &q());
        assert_eq!(s.error, None);
        assert_eq!(s.records, 11);
        let ids: Vec<_> = s.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["keep-1", "at-start", "naive-time"]);
        // The record's account wins over the path's.
        assert_eq!(s.events[0].account_id, "111122223333");
        assert_eq!(s.events[0].region, "eu-west-1");
        assert_eq!(s.malformed, 2);
        assert_eq!(s.malformed_event_ids, ["bad-time", "reject-me"]);
    }

    #[test]
    fn a_broken_record_is_malformed_with_its_id() {
        // Balanced brackets but not JSON: the splitter passes it, serde does not.
        let text = r#"{"Records":[{"eventSource":"ssm.amazonaws.com","eventName":"StartSession","eventID":"broken-1","x":[1,]}]}"#;
        let s = scan(text, &q());
        assert_eq!(s.error, None);
        assert_eq!((s.records, s.malformed), (1, 1));
        assert_eq!(s.malformed_event_ids, ["broken-1"]);
    }

    #[test]
    fn filters_by_the_records_account_and_region() {
        let text = format!(
            "{{\"Records\":[{}]}}",
            rec(
                "k",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T10:00:00Z"
            )
        );
        let mut q = q();
        q.accounts = Some(["999999999999".to_string()].into());
        assert!(scan(&text, &q).events.is_empty());
        q.accounts = Some(["111122223333".to_string()].into());
        q.regions = Some(["us-east-1".to_string()].into());
        assert!(scan(&text, &q).events.is_empty());
        q.regions = Some(["eu-west-1".to_string()].into());
        assert_eq!(scan(&text, &q).events.len(), 1);
    }

    #[test]
    fn a_cut_file_keeps_its_whole_records_and_names_the_error() {
        let text = format!(
            "{{\"Records\":[{},{}",
            rec(
                "k1",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T10:00:00Z"
            ),
            &rec(
                "k2",
                "ssm.amazonaws.com",
                "StartSession",
                "2025-02-19T10:00:00Z"
            )[..50]
        );
        let s = scan(&text, &q());
        assert_eq!(s.events.len(), 1);
        assert!(
            s.error.as_deref().unwrap().contains("bad JSON"),
            "{:?}",
            s.error
        );
    }

    #[test]
    fn the_name_test_skips_only_compact_records_of_other_calls() {
        let names = TrailQuery::new(q().window).event_names;
        assert!(may_name_a_wanted_call(
            r#"{"eventName":"StartSession"}"#,
            &names
        ));
        assert!(!may_name_a_wanted_call(
            r#"{"eventName":"GetParameter"}"#,
            &names
        ));
        // Another layout: the full parse decides.
        assert!(may_name_a_wanted_call(
            r#"{"eventName" : "GetParameter"}"#,
            &names
        ));
        // Any compact occurrence of a wanted name keeps it.
        assert!(may_name_a_wanted_call(
            r#"{"x":{"eventName":"Other"},"eventName":"TerminateSession"}"#,
            &names
        ));
        assert!(!may_name_a_wanted_call(
            r#"{"eventName":"StartSessionX"}"#,
            &names
        ));
    }

    #[test]
    fn event_id_is_found_in_broken_text() {
        assert_eq!(
            event_id_of(r#"{"eventID" : "ab-12","#),
            Some("ab-12".into())
        );
        assert_eq!(
            event_id_of(r#"{"eventID":"<script>"}"#),
            Some("script".into())
        );
        assert_eq!(event_id_of(r#"{"eventID":1}"#), None);
    }
}

#[cfg(test)]
mod real_parser_tests {
    use super::*;
    use crate::model::TimeWindow;

    #[test]
    fn real_records_go_through_the_real_parser() {
        // Two real Session Manager records, an SSM-invoked KMS call and an EC2 call.
        let text = include_str!("../../../tests/fixtures/trail/real-records.json");
        let q = TrailQuery::new(TimeWindow {
            start: "2020-01-01T00:00:00Z".parse().unwrap(),
            end: "2025-12-31T00:00:00Z".parse().unwrap(),
        });
        let s = scan_bytes(
            "f.json",
            None,
            text.as_bytes(),
            &q,
            &mut Vec::new(),
            &real_parse,
        );
        assert_eq!((s.records, s.malformed, s.error), (4, 0, None));
        let ids: Vec<_> = s.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "c61c9a5d-4d9c-45ee-8c46-9845ea001e97",
                "4b7a66fc-bffb-4179-be64-69bba2bf714c"
            ]
        );
        assert_eq!(s.events[0].account_id, "111122223333");
        assert_eq!(s.events[1].region, "us-east-1");
        assert_eq!(s.events[1].document_name.as_deref(), Some("SSM-sudo"));
        assert!(s.events.iter().all(SessionEvent::is_whole));
    }

    #[test]
    fn a_record_not_read_in_full_is_kept_and_counted() {
        let q = TrailQuery::new(TimeWindow {
            start: "2025-02-19T00:00:00Z".parse().unwrap(),
            end: "2025-02-20T00:00:00Z".parse().unwrap(),
        });
        let record = |id: &str, extra: &str| {
            format!(
                r#"{{"eventVersion":"1.10","eventTime":"2025-02-19T10:00:00Z","eventSource":"ssm.amazonaws.com","eventName":"StartSession","awsRegion":"eu-west-1","eventID":"{id}","recipientAccountId":"111122223333"{extra}}}"#
            )
        };
        let text = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            record("no-identity", ""),
            record(
                "wrong-types",
                r#","userIdentity":{"type":"IAMUser"},"sourceIPAddress":7"#
            ),
            record(
                "whole",
                r#","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u"}"#
            ),
        );
        let s = scan_bytes(
            "f.json",
            None,
            text.as_bytes(),
            &q,
            &mut Vec::new(),
            &real_parse,
        );
        let ids: Vec<_> = s.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["no-identity", "wrong-types", "whole"]);
        assert_eq!(s.malformed, 2);
        assert_eq!(s.malformed_event_ids, ["no-identity", "wrong-types"]);
        assert!(s.events[2].is_whole());
        // No time to keep it by: counted and dropped (a file has no outer fields).
        let bad = format!(
            r#"{{"Records":[{}]}}"#,
            record("t", "").replace("2025-02-19T10:00:00Z", "2025-02-19 10:00:00 UTC")
        );
        let s = scan_bytes(
            "f.json",
            None,
            bad.as_bytes(),
            &q,
            &mut Vec::new(),
            &real_parse,
        );
        assert_eq!((s.events.len(), s.malformed), (0, 1));
    }
}
