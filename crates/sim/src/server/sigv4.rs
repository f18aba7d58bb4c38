//! Checks a request's AWS Signature Version 4 the way AWS does, written from
//! the specification (canonical request, string to sign, derived key) and not
//! with the signing library the tool uses: a tool that signs its own calls
//! (`LookupEvents`, `DescribeSessions`, `GetDocument`) must be proven to sign
//! them as AWS checks them, and a verifier sharing the tool's code could not
//! show that.
//!
//! Covers what the tool sends here: header-signed requests (no presigned
//! URLs), unchunked bodies, paths without dot or empty segments (encoded
//! once more for every service but S3, as the specification says).

use aws_lc_rs::hmac;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

/// Why a signature does not verify.
pub(super) fn verify(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let field = |name: &str| -> Option<String> {
        rest.split(',')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let credential = field("Credential").ok_or("no Credential")?;
    let signed_headers = field("SignedHeaders").ok_or("no SignedHeaders")?;
    let signature = field("Signature").ok_or("no Signature")?;
    let mut scope = credential.splitn(2, '/');
    let _key = scope.next();
    let scope = scope.next().ok_or("a Credential without a scope")?;
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 4 || parts[3] != "aws4_request" {
        return Err(format!("a malformed credential scope {scope}"));
    }
    let (date, region, service) = (parts[0], parts[1], parts[2]);
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Amz-Date")?;
    if !amz_date.starts_with(date) {
        return Err("X-Amz-Date is not the scope's date".into());
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err("the host header is not signed".into());
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is not in the request"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) if h != "UNSIGNED-PAYLOAD" => h.to_string(),
        Some(h) => h.to_string(),
        None => hex::encode(Sha256::digest(body)),
    };
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        canonical_path(path, service),
        canonical_query(query.unwrap_or(""))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| -> Vec<u8> {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        hmac::sign(&k, data.as_bytes()).as_ref().to_vec()
    };
    let k_date = mac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = mac(&k_date, region);
    let k_service = mac(&k_region, service);
    let k_signing = mac(&k_service, "aws4_request");
    let expected = hex::encode(mac(&k_signing, &to_sign));
    if expected != signature {
        return Err(format!(
            "the signature does not match (service {service}, region {region}, signed headers {signed_headers})"
        ));
    }
    Ok(())
}

/// `a=1&b=2`, sorted by name then value, each part percent-encoded as SigV4 wants.
fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                urlencoding::decode(&s.replace('+', "%20"))
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| s.to_string())
            };
            (encode(&dec(k)), encode(&dec(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonical URI: the path as sent, and for every service but S3 each
/// byte outside the unreserved set (and `/`) percent-encoded again.
fn canonical_path(path: &str, service: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if service == "s3" {
        return path.to_string();
    }
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (Signature Version 4 test suite, "get-vanilla").
    #[test]
    fn the_documented_example_verifies_and_a_changed_byte_does_not() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(verify("GET", "/", None, &h, b"", secret), Ok(()));
        assert!(verify("GET", "/", None, &h, b"x", secret).is_err());
        assert!(verify("POST", "/", None, &h, b"", secret).is_err());
        assert!(verify("GET", "/", None, &h, b"", "other").is_err());
    }
}
