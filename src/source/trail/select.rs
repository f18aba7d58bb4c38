//! One trail file's bytes → the session events it holds, with counts.
//!
//! A [`Scanner`] (one per worker, reused from file to file) takes a file whole
//! when it fits its buffers: libdeflate inflates it in one go
//! ([`inflate::Whole`]); the structural pass ([`records::find`]) counts the
//! records and, with the pre-filter's needles ([`Gate::pair`],
//! [`Gate::hits_between`]: a two-byte test per block, then a SIMD substring
//! search), hands over only those holding a literal event name, and only
//! those are tested and parsed. A file it cannot take that way
//! (larger than the buffers, corrupt, not plainly a trail file) is streamed:
//! the capped inflate stream, the windowed splitter, and the same pre-filter
//! record by record. Both ways give the same result for every input; the
//! stream is the one that names what is wrong with a file.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use std::io::{self, BufRead, Read};

use sha2::{Digest as _, Sha256};

use super::inflate::{self, Inflated};
use super::path::{parse_key, TrailKey};
use super::prefilter::{has_escape_that_matters, Gate};
use super::records;
use super::split::{for_each_record, SplitFail};
use super::{FileScan, TrailQuery};
use crate::model::SessionEvent;

/// Every Session Manager record names its source so; a record without this
/// text anywhere (and no escape that could hide it) is skipped unparsed.
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
pub(crate) type ParseFn =
    &'static (dyn Fn(&str, &str, &str) -> Result<SessionEvent, String> + Sync);

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
    parse: ParseFn,
) -> FileScan {
    Scanner::new(Arc::new(q.clone()), parse, 1).bytes(path, key, bytes, bytes.len() as u64, false)
}

/// What one worker keeps from file to file: the query's pre-filter, the
/// decompressor and the buffers, so a file costs no allocation once they
/// have grown to the largest file (at most [`Scanner::limit`] each).
pub(crate) struct Scanner {
    q: Arc<TrailQuery>,
    parse: ParseFn,
    gate: Gate,
    whole: inflate::Whole,
    /// A file's stored bytes, read whole.
    input: Vec<u8>,
    /// Its inflated text.
    text: Vec<u8>,
    /// The splitter's window (the streaming way).
    window: Vec<u8>,
    hits: Vec<usize>,
    limit: usize,
}

impl Scanner {
    /// A scanner for one of `workers` workers (their number sets its buffers' bound).
    pub(crate) fn new(q: Arc<TrailQuery>, parse: ParseFn, workers: usize) -> Scanner {
        Scanner {
            gate: Gate::new(&q.event_names),
            q,
            parse,
            whole: inflate::Whole::new(),
            input: Vec::new(),
            text: Vec::new(),
            window: Vec::new(),
            hits: Vec::new(),
            limit: inflate::whole_limit(workers),
        }
    }

    /// Scan a file of `size` stored bytes read from `src`: whole when it fits,
    /// else streaming. A read error is the file's error, after the records
    /// read before it (as when streaming).
    pub(crate) fn read(
        &mut self,
        path: &str,
        key: Option<TrailKey>,
        mut src: impl Read,
        size: u64,
        hash: bool,
    ) -> FileScan {
        if size > self.limit as u64 {
            return self.stream(
                path,
                key,
                io::BufReader::with_capacity(READ_BUF, src),
                size,
                hash,
            );
        }
        let mut input = std::mem::take(&mut self.input);
        input.clear();
        // One byte more than the limit tells a file that grew since it was listed.
        let read = (&mut src)
            .take(self.limit as u64 + 1)
            .read_to_end(&mut input);
        let scan = match read {
            Ok(_) if input.len() <= self.limit => self.bytes(path, key, &input, size, hash),
            Ok(_) => {
                let rest = io::BufReader::with_capacity(READ_BUF, src);
                self.stream(path, key, (&input[..]).chain(rest), size, hash)
            }
            Err(e) => self.stream(path, key, (&input[..]).chain(Failing(Some(e))), size, hash),
        };
        self.input = input;
        scan
    }

    /// Scan a file held in memory (`size`: its stored size, for the counts).
    pub(crate) fn bytes(
        &mut self,
        path: &str,
        key: Option<TrailKey>,
        input: &[u8],
        size: u64,
        hash: bool,
    ) -> FileScan {
        let mut text = std::mem::take(&mut self.text);
        let scan = match self
            .whole
            .inflate(input, inflate::MAX_INFLATED, self.limit, &mut text)
        {
            Inflated::Text(n) => self.scan_text(path, key, &text[..n], size, hash),
            Inflated::Plain if input.len() as u64 <= inflate::MAX_INFLATED => {
                self.scan_text(path, key, input, size, hash)
            }
            Inflated::Refused(why) => {
                let mut scan = FileScan::failed(path, key.or_else(|| parse_key(path)), why);
                scan.bytes_compressed = size;
                scan
            }
            Inflated::Plain | Inflated::Stream => self.stream(path, key, input, size, hash),
        };
        self.text = text;
        scan
    }

    /// A file's whole text: the structural pass, or the splitter when that
    /// pass cannot be sure of the file's shape.
    fn scan_text(
        &mut self,
        path: &str,
        key: Option<TrailKey>,
        text: &[u8],
        size: u64,
        hash: bool,
    ) -> FileScan {
        let key = key.or_else(|| parse_key(path));
        let mut scan = FileScan::new(path, key);
        scan.bytes_compressed = size;
        scan.bytes_uncompressed = text.len() as u64;
        if hash {
            scan.sha256 = Some(Sha256::digest(text).into());
        }
        let found = if self.gate.is_on() {
            records::find(text, &self.gate, &mut self.hits)
        } else {
            None
        };
        let Scanner {
            q,
            parse,
            gate,
            window,
            ..
        } = self;
        let mut kept = Kept::new(path, &scan.key);
        match found {
            Some(found) => {
                scan.records = found.records;
                for (s, e) in found.holding {
                    take_record(&text[s..e], q, *parse, &mut kept);
                }
            }
            None => {
                let mut src = text;
                let split = for_each_record(&mut src, window, |rec| {
                    scan.records += 1;
                    if gate.passes(rec) {
                        take_record(rec, q, *parse, &mut kept);
                    }
                });
                if let Err(e) = split {
                    scan.error = Some(e.to_string());
                }
            }
        }
        kept.into(&mut scan);
        scan
    }

    /// Scan one file as it streams from `src` (`size` bytes stored): inflate,
    /// split and select without holding the file. With `hash`, the SHA-256 of
    /// the decompressed text (what a digest lists) comes back in
    /// [`FileScan::sha256`] when the whole text was read.
    pub(crate) fn stream(
        &mut self,
        path: &str,
        key: Option<TrailKey>,
        src: impl BufRead,
        size: u64,
        hash: bool,
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
        let mut kept = Kept::new(path, &scan.key);
        let (q, parse, gate) = (&self.q, self.parse, &self.gate);
        let split = for_each_record(&mut hashed, &mut self.window, |rec| {
            records += 1;
            if gate.passes(rec) {
                take_record(rec, q, parse, &mut kept);
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
        kept.into(&mut scan);
        scan
    }
}

/// Compressed bytes read from a file at a time when streaming.
const READ_BUF: usize = 256 << 10;

/// A reader that fails once with the error it holds (what came before it was
/// read): a read error passed on after the bytes read before it.
struct Failing(Option<io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

impl BufRead for Failing {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(&[]),
        }
    }
    fn consume(&mut self, _: usize) {}
}

/// The events and malformed records one file gave.
struct Kept {
    scan: FileScan,
}

impl Kept {
    fn new(path: &str, key: &Option<TrailKey>) -> Kept {
        Kept {
            scan: FileScan::new(path, key.clone()),
        }
    }

    fn into(self, scan: &mut FileScan) {
        scan.events = self.scan.events;
        scan.malformed = self.scan.malformed;
        scan.malformed_event_ids = self.scan.malformed_event_ids;
    }
}

/// One record that passed the pre-filter.
fn take_record(rec: &[u8], q: &TrailQuery, parse: ParseFn, kept: &mut Kept) {
    match std::str::from_utf8(rec) {
        Ok(raw) => select_record(raw, q, parse, &mut kept.scan),
        Err(_) => {
            if memchr::memmem::find(rec, SSM_SOURCE.as_bytes()).is_some() {
                kept.scan
                    .malformed(event_id_of(&String::from_utf8_lossy(rec)));
            }
        }
    }
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

fn select_record(raw: &str, q: &TrailQuery, parse: ParseFn, scan: &mut FileScan) {
    // The literal tests hold only where no escape can hide what they look for.
    if !has_escape_that_matters(raw.as_bytes())
        && (!raw.contains(SSM_SOURCE) || !may_name_a_wanted_call(raw, &q.event_names))
    {
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
    const KEY: &str = "\"eventName\"";
    let mut seen = false;
    for (at, _) in raw.match_indices(KEY) {
        // `"eventName"` in another layout (`"eventName" : "…"`) may be the
        // record's own: then only the parse can tell.
        let Some(rest) = raw[at + KEY.len()..].strip_prefix(":\"") else {
            return true;
        };
        seen = true;
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
            reason: None,
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
        scan_bytes(
            "AWSLogs/o-x/999999999999/CloudTrail/us-east-1/2025/02/19/f.json",
            None,
            text.as_bytes(),
            q,
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
        // The record's own key in another layout, a nested compact one of
        // another call: the nested one must not decide.
        assert!(may_name_a_wanted_call(
            r#"{"eventName" : "StartSession","x":{"eventName":"Other"}}"#,
            &names
        ));
    }

    /// A file through one scanner both ways, whole and streamed: they agree.
    fn both_ways(path: &str, bytes: &[u8], q: &TrailQuery, parse: ParseFn) -> FileScan {
        let mut s = Scanner::new(Arc::new(q.clone()), parse, 1);
        let whole = s.bytes(path, None, bytes, bytes.len() as u64, true);
        let streamed = s.stream(path, None, bytes, bytes.len() as u64, true);
        assert_eq!(whole, streamed, "{path}");
        whole
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Session records written every way JSON allows, and look-alikes of
    /// every kind: the pre-filter and the record pass keep exactly the real ones.
    #[test]
    fn the_prefilter_is_exact_on_odd_spacing_escapes_and_look_alikes() {
        let t = "2025-02-19T10:00:00Z";
        let kept = [
            rec("compact", "ssm.amazonaws.com", "StartSession", t),
            format!(
                r#"{{ "eventVersion" : "1.10" , "eventTime" : "{t}" ,"eventSource" :
                "ssm.amazonaws.com", "eventName"	:  "ResumeSession" , "eventID" : "spaced" }}"#
            ),
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ssm\u002eamazonaws\u002ecom","eventName":"StartSession","eventID":"escaped-source"}}"#
            ),
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ssm.amazonaws.com","eventName":"Terminate\u0053ession","eventID":"escaped-name"}}"#
            ),
            format!(
                r#"{{"eventTime":"{t}","\u0065ventSource":"ssm.amazonaws.com","event\u004eame":"StartSession","eventID":"escaped-keys"}}"#
            ),
            // The record's own name spaced, another call's name nested compactly.
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ssm.amazonaws.com","eventName" : "StartSession","requestParameters":{{"eventName":"GetParameter"}},"eventID":"nested-other"}}"#
            ),
        ];
        let fake_record = format!(
            r#"{{"eventVersion":"1.10","eventTime":"{t}","eventSource":"ssm.amazonaws.com","eventName":"StartSession","eventID":"fake"}}"#
        );
        let skipped = [
            // Another service's StartSession.
            rec("athena", "athena.amazonaws.com", "StartSession", t),
            // The whole text of a session record inside another record's string.
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","userAgent":"{}","eventID":"in-a-string"}}"#,
                fake_record.replace('"', "\\\"")
            ),
            // A session record as a nested object, and in an array, of another call.
            format!(
                r#"{{"eventTime":"{t}","eventSource":"lambda.amazonaws.com","eventName":"TagResource","requestParameters":{{"tags":{fake_record},"list":[{fake_record},{fake_record}]}},"eventID":"nested"}}"#
            ),
            // SSM's other calls, naming a session call elsewhere.
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ssm.amazonaws.com","eventName":"GetParameter","requestParameters":{{"name":"/StartSession","x":{{"eventName":"StartSession"}}}},"eventID":"other-call"}}"#
            ),
            rec("agent", "ssm.amazonaws.com", "UpdateInstanceInformation", t),
            // A look-alike name and escapes that stand for nothing the test reads.
            rec("longer", "ssm.amazonaws.com", "StartSessionX", t),
            format!(
                r#"{{"eventTime":"{t}","eventSource":"ssm.amazonaws.com","eventName":"GetParameter","ua":"\u00e9t\u00e9 \\u0053","eventID":"escaped-other"}}"#
            ),
        ];
        let mut all: Vec<&String> = kept.iter().chain(skipped.iter()).collect();
        // Interleave them so the kept ones are not all at the start.
        all.sort_by_key(|r| r.len());
        let compact = format!(
            "{{\"Records\":[{}]}}",
            all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
        );
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
        )
        .unwrap();
        let mut want: Vec<&str> = [
            "compact",
            "spaced",
            "escaped-source",
            "escaped-name",
            "escaped-keys",
            "nested-other",
        ]
        .to_vec();
        want.sort();
        for (name, text) in [("compact", compact.clone()), ("pretty", pretty)] {
            for bytes in [text.as_bytes().to_vec(), gz(text.as_bytes())] {
                let s = both_ways("f.json", &bytes, &q(), &fake);
                assert_eq!(s.error, None, "{name}");
                assert_eq!(s.records, all.len() as u64, "{name}");
                let mut ids: Vec<&str> = s.events.iter().map(|e| e.event_id.as_str()).collect();
                ids.sort();
                assert_eq!(ids, want, "{name}");
                assert_eq!(s.malformed, 0, "{name}");
            }
        }
        // The whole file's text is what the scan saw and hashed.
        let s = both_ways("f.json.gz", &gz(compact.as_bytes()), &q(), &fake);
        assert_eq!(s.sha256, Some(Sha256::digest(compact.as_bytes()).into()));
        assert_eq!(s.bytes_uncompressed, compact.len() as u64);
    }

    #[test]
    fn whole_and_streamed_agree_on_damaged_files() {
        // A file of many records, then damaged at many places in many ways.
        let recs: Vec<String> = (0..200)
            .map(|i| {
                let (src, name) = match i % 5 {
                    0 => ("ssm.amazonaws.com", "StartSession"),
                    1 => ("ssm.amazonaws.com", "GetParameter"),
                    2 => ("kms.amazonaws.com", "Decrypt"),
                    3 => ("ssm.amazonaws.com", "TerminateSession"),
                    _ => ("ec2.amazonaws.com", "DescribeInstances"),
                };
                rec(&format!("id-{i}"), src, name, "2025-02-19T10:00:00Z")
            })
            .collect();
        let text = format!("{{\"Records\":[{}]}}", recs.join(","));
        let bytes = text.as_bytes();
        let mut x: u64 = 99;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut damaged = 0;
        for _ in 0..400 {
            let mut b = bytes.to_vec();
            match next(4) {
                0 => b.truncate(next(b.len())),
                1 => {
                    let at = next(b.len());
                    b[at] = b"\"\\{}[],: x\x00\xff"[next(12)];
                }
                2 => {
                    let at = next(b.len());
                    b.insert(at, b"\"\\{}[]"[next(6)]);
                }
                _ => {
                    let at = next(b.len());
                    b.drain(at..(at + next(50)).min(b.len()));
                }
            }
            let s = both_ways("f.json", &b, &q(), &fake);
            damaged += usize::from(s.error.is_some());
            let z = gz(&b);
            assert_eq!(both_ways("f.json.gz", &z, &q(), &fake).events, s.events);
        }
        assert!(damaged > 50, "the damage is seen: {damaged}");
    }

    #[test]
    fn whole_and_streamed_agree_on_a_generated_tree() {
        use sim::trail_gen::{generate, GenSpec};
        let dir = tempfile::tempdir().unwrap();
        let mut spec = GenSpec::small("2025-02-19".parse().unwrap());
        spec.digests = false;
        let m = generate(dir.path(), &spec).unwrap();
        let q = TrailQuery::new(crate::model::TimeWindow {
            start: "2025-02-18T00:00:00Z".parse().unwrap(),
            end: "2025-02-23T00:00:00Z".parse().unwrap(),
        });
        let (mut bad, mut events) = (0, 0);
        for f in &m.files {
            let bytes = std::fs::read(dir.path().join(&f.key)).unwrap();
            let s = both_ways(&f.key, &bytes, &q, &real_parse);
            bad += usize::from(s.error.is_some());
            events += s.events.len();
            if !f.corrupt {
                assert_eq!(s.records, f.records, "{}", f.key);
                assert_eq!(s.bytes_uncompressed, f.bytes_uncompressed, "{}", f.key);
            }
        }
        assert_eq!(bad, m.files.iter().filter(|f| f.corrupt).count());
        assert_eq!(events, m.sessions.len());
    }

    /// A reader that gives `n` bytes, then fails.
    struct Cut<'a>(&'a [u8]);
    impl Read for Cut<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("the disk went away"));
            }
            let n = out.len().min(self.0.len()).min(1000);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_keeps_the_records_before_it_and_names_the_error() {
        // Past the splitter's first window (1 MiB), so that the records of
        // the windows read before the error are passed on (those of the window
        // the error cut are not: the splitter fills a window before it cuts).
        let n = 10_000;
        let recs: Vec<String> = (0..n)
            .map(|i| {
                rec(
                    &format!("k{i}"),
                    "ssm.amazonaws.com",
                    "StartSession",
                    "2025-02-19T10:00:00Z",
                )
            })
            .collect();
        let text = format!("{{\"Records\":[{}]}}", recs.join(","));
        assert!(text.len() > 2 << 20, "{}", text.len());
        let mut s = Scanner::new(Arc::new(q()), &fake, 1);
        let cut = &text.as_bytes()[..text.len() / 2];
        let scan = s.read("f.json", None, Cut(cut), text.len() as u64, true);
        assert!(
            scan.error
                .as_deref()
                .unwrap()
                .contains("the disk went away"),
            "{:?}",
            scan.error
        );
        assert!(
            scan.events.len() > n / 4 && scan.events.len() < n / 2,
            "{}",
            scan.events.len()
        );
        assert_eq!(scan.sha256, None);
        // Whole, the same file gives everything.
        let scan = s.read("f.json", None, text.as_bytes(), text.len() as u64, true);
        assert_eq!((scan.events.len(), scan.error.as_deref()), (n, None));
        // Larger than the scanner's limit: streamed, the same answer.
        let mut small = Scanner::new(Arc::new(q()), &fake, 1);
        small.limit = 1000;
        let streamed = small.read("f.json", None, text.as_bytes(), text.len() as u64, true);
        assert_eq!(streamed, scan);
        // A file that grew after it was listed (bigger than its size said).
        let grew = small.read("f.json", None, text.as_bytes(), 10, true);
        assert_eq!(grew.events, scan.events);
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
        let s = scan_bytes("f.json", None, text.as_bytes(), &q, &real_parse);
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
        let s = scan_bytes("f.json", None, text.as_bytes(), &q, &real_parse);
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
        let s = scan_bytes("f.json", None, bad.as_bytes(), &q, &real_parse);
        assert_eq!((s.events.len(), s.malformed), (0, 1));
    }
}
