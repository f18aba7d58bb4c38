//! SigV4 for the JSON calls the tool sends itself ([`super::wire`]): a POST of a
//! JSON body to one endpoint, signed in the `Authorization` header, with the
//! headers `aws-sigv4`'s defaults sign for such a request (`content-type`,
//! `host`, `x-amz-date`, `x-amz-security-token` when there is one,
//! `x-amz-target`).
//!
//! `aws-sigv4` derives the signing key again for every request (four HMACs)
//! and builds the canonical request from owned strings; at tens of thousands
//! of calls that was a tenth of a scan's CPU. Here the key is derived once per
//! credentials, day, region and service and kept, and the canonical request is
//! written into one buffer. The endpoint's canonical URI is computed once: an
//! endpoint whose path would need `aws-sigv4`'s normalisation (dot segments,
//! empty segments) is not [`Signer::new`]'s to sign, and the caller signs
//! with `aws-sigv4` instead. A test signs the same requests both ways and
//! compares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_lc_rs::{digest, hmac};

/// Signing keys kept per endpoint; past this many, the cache starts again
/// (each key is one credentials' for one day: a scan needs one per account
/// it is reading at once).
const MAX_KEYS: usize = 4_096;

/// What one request's signature adds to its headers.
pub struct Signature {
    /// `x-amz-date`, `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: String,
    pub authorization: String,
}

/// Signs requests to one endpoint (host, path, region, service).
pub struct Signer {
    host: String,
    canonical_uri: String,
    region: String,
    service: &'static str,
    /// By access key id: one key per credentials, the day's.
    keys: Mutex<HashMap<String, CachedKey>>,
}

struct CachedKey {
    /// The day and the secret the key was derived for: it is only reused for both.
    day: u32,
    secret: String,
    /// Shared, not copied: an HMAC key is a whole HMAC context (several
    /// hundred bytes), which made the map's growth and each lookup costly.
    key: Arc<hmac::Key>,
}

impl Signer {
    /// `None` when `path` needs normalising before it can be signed.
    pub fn new(host: &str, path: &str, region: &str, service: &'static str) -> Option<Self> {
        Some(Signer {
            host: host.to_string(),
            canonical_uri: canonical_uri(path)?,
            region: region.to_string(),
            service,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// The signature of `POST path` with `body` and the `x-amz-target` header
    /// `target`, at `now`.
    pub fn sign(
        &self,
        creds: &Credentials,
        target: &str,
        content_type: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Signature {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (amz_date, day) = amz_date(secs);
        let date = &amz_date[..8];
        let token = creds.session_token();
        let signed_headers = if token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        } else {
            "content-type;host;x-amz-date;x-amz-target"
        };
        let mut canonical =
            String::with_capacity(256 + self.host.len() + target.len() + token.map_or(0, str::len));
        canonical.push_str("POST\n");
        canonical.push_str(&self.canonical_uri);
        canonical.push_str("\n\ncontent-type:");
        canonical.push_str(content_type);
        canonical.push_str("\nhost:");
        canonical.push_str(&self.host);
        canonical.push_str("\nx-amz-date:");
        canonical.push_str(&amz_date);
        if let Some(t) = token {
            canonical.push_str("\nx-amz-security-token:");
            canonical.push_str(t);
        }
        canonical.push_str("\nx-amz-target:");
        canonical.push_str(target);
        canonical.push_str("\n\n");
        canonical.push_str(signed_headers);
        canonical.push('\n');
        canonical.push_str(&hex::encode(digest::digest(&digest::SHA256, body)));

        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let mut to_sign = String::with_capacity(128 + scope.len());
        to_sign.push_str("AWS4-HMAC-SHA256\n");
        to_sign.push_str(&amz_date);
        to_sign.push('\n');
        to_sign.push_str(&scope);
        to_sign.push('\n');
        to_sign.push_str(&hex::encode(digest::digest(
            &digest::SHA256,
            canonical.as_bytes(),
        )));
        let signature = hex::encode(hmac::sign(&self.key(creds, date, day), to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id()
        );
        Signature {
            amz_date,
            authorization,
        }
    }

    /// The signing key of `creds` for `date` (`YYYYMMDD`, day number `day`).
    fn key(&self, creds: &Credentials, date: &str, day: u32) -> Arc<hmac::Key> {
        let (id, secret) = (creds.access_key_id(), creds.secret_access_key());
        // A poisoned lock only means another call panicked mid-insert: the
        // map is still a map.
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(id).filter(|k| k.day == day && k.secret == secret) {
            return k.key.clone();
        }
        let key = Arc::new(derive_key(secret, date, &self.region, self.service));
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(
            id.to_string(),
            CachedKey {
                day,
                secret: secret.to_string(),
                key: key.clone(),
            },
        );
        key
    }
}

/// `kSigning` of the specification: HMAC chained over the date, region,
/// service and `aws4_request`, starting from `"AWS4" + secret`.
fn derive_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        k = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
            part.as_bytes(),
        );
    }
    hmac::Key::new(hmac::HMAC_SHA256, k.as_ref())
}

/// The canonical URI of `path` for a service that is not S3 (each byte
/// outside the unreserved set percent-encoded, as the path is sent already
/// encoded: the specification's double encoding), or `None` when the path
/// holds a segment that normalisation would change (`.`, `..`, empty).
fn canonical_uri(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("/".into());
    }
    let inner = path.strip_prefix('/')?;
    let segments: Vec<&str> = inner.split('/').collect();
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        // A trailing slash (an empty last segment) is kept as it is sent.
        if (s.is_empty() && i != last) || *s == "." || *s == ".." {
            return None;
        }
    }
    let mut out = String::with_capacity(path.len() + 8);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// `YYYYMMDD'T'HHMMSS'Z'` of `secs` since the epoch, and its day number.
fn amz_date(secs: u64) -> (String, u32) {
    let day = (secs / 86_400) as u32;
    let t = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
    (t.format("%Y%m%dT%H%M%SZ").to_string(), day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The same request signed here and by `aws-sigv4` with its default
    /// settings: the same `x-amz-date` and `Authorization`.
    fn by_aws_sigv4(
        creds: &Credentials,
        url: &str,
        region: &str,
        service: &str,
        target: &str,
        body: &str,
        now: SystemTime,
    ) -> (String, String) {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().as_str();
        let identity = creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", host),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(url)
            .body(String::new())
            .unwrap();
        instructions.apply_to_request_http1x(&mut req);
        let h = |n: &str| req.headers()[n].to_str().unwrap().to_string();
        (h("x-amz-date"), h("authorization"))
    }

    #[test]
    fn signatures_are_aws_sigv4s() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600 + 3_723);
        let with_token = Credentials::new(
            "ASIAEXAMPLE",
            "secret/key+1",
            Some("tok/en==".into()),
            None,
            "t",
        );
        let without = Credentials::new("AKIAEXAMPLE", "other-secret", None, None, "t");
        for (creds, host, path, region, service, target) in [
            (
                &with_token,
                "cloudtrail.us-east-1.amazonaws.com",
                "",
                "us-east-1",
                "cloudtrail",
                "CloudTrail_20131101.LookupEvents",
            ),
            (
                &without,
                "127.0.0.1:4566",
                "/",
                "eu-west-1",
                "ssm",
                "AmazonSSM.DescribeSessions",
            ),
            (
                &with_token,
                "vpce.example:8443",
                "/prefix/a%20b~x/",
                "ap-southeast-2",
                "ssm",
                "AmazonSSM.GetDocument",
            ),
        ] {
            let signer = Signer::new(host, path, region, service).unwrap();
            let body = r#"{"MaxResults":50,"Name":"ü \"x\""}"#;
            let url = format!("https://{host}{}", if path.is_empty() { "/" } else { path });
            let ours = signer.sign(
                creds,
                target,
                "application/x-amz-json-1.1",
                body.as_bytes(),
                now,
            );
            // Twice: the second from the cached key.
            let again = signer.sign(
                creds,
                target,
                "application/x-amz-json-1.1",
                body.as_bytes(),
                now,
            );
            let theirs = by_aws_sigv4(creds, &url, region, service, target, body, now);
            assert_eq!(
                (ours.amz_date.clone(), ours.authorization.clone()),
                theirs,
                "{host}{path}"
            );
            assert_eq!(again.authorization, ours.authorization);
        }
    }

    #[test]
    fn a_key_is_not_reused_for_another_secret_or_day() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600);
        let signer = Signer::new("h", "/", "us-east-1", "ssm").unwrap();
        let a = Credentials::new("AKID", "one", None, None, "t");
        let b = Credentials::new("AKID", "two", None, None, "t");
        let sig = |c: &Credentials, t| signer.sign(c, "T", "c", b"{}", t).authorization;
        let first = sig(&a, now);
        assert_ne!(sig(&b, now), first);
        assert_eq!(sig(&a, now), first);
        let tomorrow = now + Duration::from_secs(86_400);
        let later = signer.sign(&a, "T", "c", b"{}", tomorrow);
        assert!(later.amz_date.starts_with("20251203"), "{}", later.amz_date);
        assert!(later
            .authorization
            .contains("/20251203/us-east-1/ssm/aws4_request"));
    }

    #[test]
    fn paths_that_need_normalising_are_not_signed_here() {
        for p in ["/a/../b", "/./a", "//a", "/a//b", "a"] {
            assert!(canonical_uri(p).is_none(), "{p}");
        }
        assert_eq!(canonical_uri("").as_deref(), Some("/"));
        assert_eq!(canonical_uri("/x/").as_deref(), Some("/x/"));
        assert_eq!(canonical_uri("/a%20b").as_deref(), Some("/a%2520b"));
    }
}
