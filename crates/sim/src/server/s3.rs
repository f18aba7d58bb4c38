//! S3 for a trail tree on disk: the bucket `trail` holds every file under
//! `SimConfig::trail_root` (the `AWSLogs/…` tree `trail::gen` writes), served
//! path-style to the real SDK: ListObjectsV2 (`prefix`, `delimiter`,
//! `start-after`, `continuation-token`, `max-keys`), GetObject (with `Range`)
//! and HeadObject. A digest's `<key>.sig` sidecar is not an object: it is that
//! object's `x-amz-meta-signature` (with `x-amz-meta-signature-algorithm`).
//! With `trail_cut_bodies`, every whole GET of a log file is cut half-way.
//!
//! The key index (sorted names only) is built once at start; bodies are read
//! from disk per request. Requests are not authenticated beyond being signed.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::trail_gen::SIGNATURE_SUFFIX;

type Body = BoxBody<Bytes, io::Error>;

/// The bucket's name.
pub const BUCKET: &str = "trail";
/// ListObjectsV2's page size when the caller does not ask for less (AWS: 1,000).
const MAX_KEYS: usize = 1000;

/// The objects of the bucket.
pub struct Bucket {
    root: PathBuf,
    /// Sorted, `/`-separated, relative to `root`; sidecars excluded.
    keys: Vec<String>,
    /// Cut every whole-object GET of a log file half-way (a Range GET is
    /// served whole), so a reader must resume.
    cut_bodies: bool,
    /// Every truncated listing page answers the token it was sent (a broken proxy).
    pub(super) repeat_token: bool,
}

impl Bucket {
    /// Index every file under `root`.
    pub fn open(root: &Path, cut_bodies: bool) -> io::Result<Bucket> {
        let mut keys = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir)? {
                let e = e?;
                let p = e.path();
                if e.file_type()?.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(root) {
                    let k = rel.to_string_lossy().replace('\\', "/");
                    if !k.ends_with(SIGNATURE_SUFFIX) {
                        keys.push(k);
                    }
                }
            }
        }
        keys.sort();
        Ok(Bucket {
            root: root.to_path_buf(),
            keys,
            cut_bodies,
            repeat_token: false,
        })
    }
}

/// Is this request for S3 (path-style GET/HEAD of a bucket or object)? The
/// simulator's other services are POSTs to `/`.
pub fn is_s3<B>(req: &Request<B>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
        && req.uri().path() != "/"
        && !req.uri().path().starts_with("/_sim/")
}

/// Answer one S3 request: the operation's name (for the stats) and the response.
pub fn handle<B>(
    bucket: &Bucket,
    req: &Request<B>,
    request_id: &str,
) -> (&'static str, Response<Body>) {
    let path = req.uri().path().trim_start_matches('/');
    let (name, key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    if name != BUCKET {
        return (
            "Unknown",
            error(
                404,
                "NoSuchBucket",
                "The specified bucket does not exist",
                request_id,
            ),
        );
    }
    let query = parse_query(req.uri().query().unwrap_or(""));
    if key.is_empty() {
        return ("ListObjectsV2", list(bucket, &query, request_id));
    }
    let key = match urlencoding::decode(key) {
        Ok(k) => k.into_owned(),
        Err(_) => return ("Unknown", error(400, "InvalidURI", "bad key", request_id)),
    };
    let head = req.method() == Method::HEAD;
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let op = if head { "HeadObject" } else { "GetObject" };
    (op, object(bucket, &key, head, range.as_deref(), request_id))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .unwrap_or_default()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn response(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn error(status: u16, code: &str, message: &str, request_id: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
        xml_escape(message)
    );
    response(status, "application/xml", full(body))
}

/// The first index whose key is greater than `after` (or at least `from`).
fn lower_bound(keys: &[String], from: &str, after: Option<&str>) -> usize {
    let mut i = keys.partition_point(|k| k.as_str() < from);
    if let Some(a) = after {
        i = i.max(keys.partition_point(|k| k.as_str() <= a));
    }
    i
}

fn list(bucket: &Bucket, q: &[(String, String)], request_id: &str) -> Response<Body> {
    if get(q, "list-type") != Some("2") {
        return error(
            400,
            "NotImplemented",
            "only ListObjectsV2 is served",
            request_id,
        );
    }
    let prefix = get(q, "prefix").unwrap_or("");
    let delimiter = get(q, "delimiter").filter(|d| !d.is_empty());
    let start_after = get(q, "start-after").filter(|s| !s.is_empty());
    let token = get(q, "continuation-token").filter(|s| !s.is_empty());
    let max = get(q, "max-keys")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(MAX_KEYS)
        .min(if bucket.repeat_token { 2 } else { MAX_KEYS });
    // The token is the last key or folder returned: resume after it (and after
    // everything under it, for a folder).
    let resume = token.map(|t| {
        if delimiter.is_some_and(|d| t.ends_with(d)) {
            format!("{t}\u{7f}")
        } else {
            t.to_string()
        }
    });
    let after = match (start_after, resume.as_deref()) {
        (Some(s), Some(r)) => Some(if s > r { s } else { r }),
        (s, r) => s.or(r),
    };
    let keys = &bucket.keys;
    let mut i = lower_bound(keys, prefix, after);
    let mut contents = String::new();
    let mut prefixes = String::new();
    let mut count = 0;
    let mut last: Option<String> = None;
    let mut truncated = false;
    while i < keys.len() && keys[i].starts_with(prefix) {
        if count == max {
            truncated = true;
            break;
        }
        let k = &keys[i];
        let folder = delimiter.and_then(|d| {
            k[prefix.len()..]
                .find(d)
                .map(|at| k[..prefix.len() + at + d.len()].to_string())
        });
        match folder {
            Some(f) => {
                prefixes.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(&f)
                ));
                // Skip the folder's keys in one search (keys are ASCII).
                i = keys.partition_point(|x| x.as_str() < format!("{f}\u{7f}").as_str());
                last = Some(f);
            }
            None => {
                let size = std::fs::metadata(bucket.root.join(k)).map_or(0, |m| m.len());
                contents.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>&quot;{:016x}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    xml_escape(k),
                    crate::rng::hash_str(k)
                ));
                i += 1;
                last = Some(k.clone());
            }
        }
        count += 1;
    }
    if let (true, true, Some(t)) = (bucket.repeat_token, truncated, token) {
        last = Some(t.to_string());
    }
    let next = match (truncated, &last) {
        (true, Some(l)) => format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(l)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{BUCKET}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>{max}</MaxKeys>{}<IsTruncated>{truncated}</IsTruncated>{contents}{prefixes}{next}</ListBucketResult>",
        xml_escape(prefix),
        delimiter
            .map(|d| format!("<Delimiter>{}</Delimiter>", xml_escape(d)))
            .unwrap_or_default(),
    );
    response(200, "application/xml", full(body))
}

fn object(
    bucket: &Bucket,
    key: &str,
    head: bool,
    range: Option<&str>,
    request_id: &str,
) -> Response<Body> {
    if key.contains("..")
        || bucket
            .keys
            .binary_search_by(|k| k.as_str().cmp(key))
            .is_err()
    {
        return error(
            404,
            "NoSuchKey",
            "The specified key does not exist.",
            request_id,
        );
    }
    let path = bucket.root.join(key);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(_) => {
            return error(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
                request_id,
            )
        }
    };
    let total = data.len();
    // `bytes=N-` and `bytes=N-M`: what a resumed download asks for.
    let (status, from, to) = match range.and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let from = a.parse::<usize>().unwrap_or(0);
            let to = b.parse::<usize>().map_or(total, |e| (e + 1).min(total));
            if from >= total && total > 0 {
                return error(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                    request_id,
                );
            }
            (206, from, to.max(from))
        }
        None => (200, 0, total),
    };
    let cut = bucket.cut_bodies && range.is_none() && key.contains("/CloudTrail/") && total > 1;
    let body = if head {
        full(Bytes::new())
    } else if cut {
        // Half the body, then (once it is on the wire) the connection fails,
        // Content-Length promising the rest.
        let half = Bytes::from(data).slice(..total / 2);
        let frames = futures::stream::unfold(0u8, move |step| {
            let half = half.clone();
            async move {
                match step {
                    0 => Some((Ok(Frame::data(half)), 1)),
                    1 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        let cut = io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "simulated cut-off body",
                        );
                        Some((Err(cut), 2))
                    }
                    _ => None,
                }
            }
        });
        StreamBody::new(frames).boxed()
    } else {
        full(Bytes::from(data).slice(from..to))
    };
    let mut r = response(status, "application/octet-stream", body);
    let h = r.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(to - from));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{:016x}\"", crate::rng::hash_str(key))) {
        h.insert("etag", v);
    }
    h.insert(
        "last-modified",
        HeaderValue::from_static("Wed, 01 Jan 2025 00:00:00 GMT"),
    );
    if status == 206 {
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {from}-{}/{total}", to.saturating_sub(1)))
        {
            h.insert("content-range", v);
        }
    }
    let sidecar = bucket.root.join(format!("{key}{SIGNATURE_SUFFIX}"));
    if let Ok(sig) = std::fs::read_to_string(sidecar) {
        if let Ok(v) = HeaderValue::from_str(sig.trim()) {
            h.insert("x-amz-meta-signature", v);
            h.insert(
                "x-amz-meta-signature-algorithm",
                HeaderValue::from_static("SHA256withRSA"),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bounds_skip_to_the_first_key_after() {
        let k = keys(&["a/1", "a/2", "b/1"]);
        assert_eq!(lower_bound(&k, "a/", None), 0);
        assert_eq!(lower_bound(&k, "a/", Some("a/1")), 1);
        assert_eq!(lower_bound(&k, "a/", Some("a/")), 0);
        assert_eq!(lower_bound(&k, "", Some("a/\u{7f}")), 2);
    }

    #[test]
    fn queries_are_decoded() {
        let q = parse_query("list-type=2&prefix=AWSLogs%2Fo-1%2F&start-after=a%2Fb&delimiter=%2F");
        assert_eq!(get(&q, "prefix"), Some("AWSLogs/o-1/"));
        assert_eq!(get(&q, "start-after"), Some("a/b"));
        assert_eq!(get(&q, "delimiter"), Some("/"));
    }
}
