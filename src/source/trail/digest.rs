//! Trail integrity from CloudTrail's digest files, the checks of
//! `aws cloudtrail validate-logs` for one partition (account and region) at a time.
//!
//! What is hashed and signed (AWS's "custom implementations of CloudTrail log
//! file integrity validation", and the aws-cli's `validate-logs`):
//! - a log file's `hashValue` is the hex SHA-256 of its *decompressed* text;
//! - a digest's `previousDigestHashValue` is the hex SHA-256 of the previous
//!   digest file's decompressed text;
//! - a digest's signature (hex, the object's `x-amz-meta-signature`) is
//!   SHA256withRSA (PKCS #1 v1.5) over
//!   `digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(this digest's decompressed text)) \n previousDigestSignature`
//!   (`null` for the first digest of a chain), with the public key (PKCS #1
//!   DER) that CloudTrail `ListPublicKeys` gives for `digestPublicKeyFingerprint`.
//!
//! [`DigestCheck`] is pure: the readers feed it the digests they fetched and the
//! hashes of the log files they read, then [`DigestCheck::finish`] names what is
//! missing, altered, unlisted, and where the digest chain is broken.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Names kept per kind of problem in one partition; the counts stay exact.
const MAX_NAMES: usize = 100;
/// Digest files are small (one entry per log file of an hour); a bigger one is refused.
pub const MAX_DIGEST_INFLATED: u64 = 64 << 20;

/// Is this key (or file name) one of a trail's digest files?
pub fn is_digest_name(name: &str) -> bool {
    name.ends_with(".json.gz") && name.contains("_CloudTrail-Digest_")
}

/// The part of a key from `AWSLogs/` on: how digests and log files are matched,
/// whatever prefix or local folder holds the copy.
pub fn trail_relative(key: &str) -> &str {
    let k = key.trim_start_matches('/');
    if k.starts_with("AWSLogs/") {
        return k;
    }
    match k.rfind("/AWSLogs/") {
        Some(at) => &k[at + 1..],
        None => k,
    }
}

/// The end time in a digest's name (`…_YYYYMMDDTHHMMSSZ.json.gz`, maybe `_backfill`).
pub fn end_from_name(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.rsplit('/').next()?.strip_suffix(".json.gz")?;
    let stem = stem.strip_suffix("_backfill").unwrap_or(stem);
    let ts = stem.rsplit('_').next()?;
    NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The trail's home region in a digest's name (`…_<trail>_<home region>_<time>.json.gz`):
/// where `ListPublicKeys` is asked.
pub fn home_region_from_name(name: &str) -> Option<String> {
    let stem = name.rsplit('/').next()?.strip_suffix(".json.gz")?;
    let stem = stem.strip_suffix("_backfill").unwrap_or(stem);
    let mut parts = stem.rsplit('_');
    parts.next()?;
    parts.next().map(str::to_string)
}

/// A digest file's fields that the checks use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestDoc {
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    #[serde(default)]
    pub digest_public_key_fingerprint: Option<String>,
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<LogEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(default)]
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
}

/// The text a digest's signature is over.
pub fn string_to_sign(doc: &DigestDoc, text_sha256: &[u8; 32]) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        doc.digest_end_time,
        doc.digest_s3_bucket,
        doc.digest_s3_object,
        hex::encode(text_sha256),
        doc.previous_digest_signature.as_deref().unwrap_or("null"),
    )
}

/// SHA256withRSA verification of `sig_hex` over `message` with a PKCS #1 (or
/// SubjectPublicKeyInfo) DER public key.
pub fn verify_signature(
    public_key_der: &[u8],
    message: &[u8],
    sig_hex: &str,
) -> Result<(), String> {
    let sig = hex::decode(sig_hex.trim()).map_err(|_| "the signature is not hex".to_string())?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key_der,
    )
    .verify(message, &sig)
    .map_err(|_| "signature verification failed".to_string())
}

/// A CloudTrail public key, from `ListPublicKeys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub fingerprint: String,
    /// DER, as `ListPublicKeys` returns it.
    pub der: Vec<u8>,
}

/// What the signatures of a partition's digests can be checked with.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Public keys by fingerprint.
    Known(HashMap<String, Vec<u8>>),
    /// Not checked, and why (a local copy keeps no metadata; ListPublicKeys failed).
    Unchecked(String),
}

impl Keys {
    pub fn from_list(keys: impl IntoIterator<Item = PublicKey>) -> Keys {
        Keys::Known(keys.into_iter().map(|k| (k.fingerprint, k.der)).collect())
    }
}

/// One digest as read.
#[derive(Debug, Clone)]
struct Seen {
    key: String,
    end: DateTime<Utc>,
    start: DateTime<Utc>,
    sha: [u8; 32],
    previous: Option<(String, String)>,
}

/// A digest-listed log file not yet matched.
#[derive(Debug, Clone)]
struct Expected {
    hash: String,
}

/// What the digests said about one partition: the `integrity` of its coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// `false`: no digest file covers this partition's window; nothing was proven.
    pub checked: bool,
    /// Said plainly when something could not be checked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub digests_read: u64,
    /// Log files read whose SHA-256 matched their digest.
    pub files_validated: u64,
    pub files_missing: u64,
    pub files_altered: u64,
    pub files_unlisted: u64,
    /// Read, but not whole (corrupt gzip, over a limit): the hash could not be computed.
    pub files_unverifiable: u64,
    /// Delivered after the newest digest read: not yet digested (the last
    /// hour of a trail), or its digest was deleted; counted and noted, not failed,
    /// since the two cannot be told apart (`validate-logs` starts from the newest digest too).
    pub files_after_last_digest: u64,
    pub digests_missing: u64,
    /// Unreadable, moved, badly signed, or not the digest its successor hashed.
    pub digests_broken: u64,
    pub signatures_checked: u64,
    pub signatures_unchecked: u64,
    /// The first [`MAX_NAMES`] of each kind, sorted; keys from `AWSLogs/` on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub altered: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unlisted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverifiable: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_digests: Vec<String>,
    /// `key: why`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broken_digests: Vec<String>,
}

impl Integrity {
    /// Missing, altered or added files, or a broken chain: the files cannot be
    /// trusted to be all there and unaltered.
    pub fn failed(&self) -> bool {
        self.files_missing
            + self.files_altered
            + self.files_unlisted
            + self.digests_missing
            + self.digests_broken
            > 0
    }

    /// One line for the region's coverage error; `None` when nothing failed.
    pub fn problem(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (self.files_missing, "log file(s) missing"),
            (self.files_altered, "altered"),
            (self.files_unlisted, "in no digest"),
            (self.digests_missing, "digest(s) missing"),
            (self.digests_broken, "digest(s) broken"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let first = self
            .missing
            .iter()
            .chain(&self.altered)
            .chain(&self.unlisted)
            .chain(&self.missing_digests)
            .chain(&self.broken_digests)
            .next()
            .map(|k| format!(" (first: {k})"))
            .unwrap_or_default();
        Some(format!("integrity: {}{first}", parts.join(", ")))
    }
}

fn push_name(list: &mut Vec<String>, name: String) {
    if list.len() < MAX_NAMES {
        list.push(name);
    }
}

/// The integrity check of one partition, fed as its reader goes.
#[derive(Debug)]
pub struct DigestCheck {
    keys: Keys,
    seen: Vec<Seen>,
    expected: HashMap<String, Expected>,
    /// Log files read without an entry yet: (key, delivered).
    unmatched: Vec<(String, Option<DateTime<Utc>>)>,
    out: Integrity,
    /// The first digest day listed: a chain link before it is out of range.
    listed_from: Option<DateTime<Utc>>,
}

impl DigestCheck {
    /// `listed_from`: the earliest digest end time the reader listed (a
    /// previous digest older than that is not looked for).
    pub fn new(keys: Keys, listed_from: DateTime<Utc>) -> Self {
        DigestCheck {
            keys,
            seen: Vec::new(),
            expected: HashMap::new(),
            unmatched: Vec::new(),
            out: Integrity::default(),
            listed_from: Some(listed_from),
        }
    }

    /// Does the partition have any digest (readable or not)?
    pub fn has_digests(&self) -> bool {
        self.out.digests_read > 0
    }

    fn broken(&mut self, key: &str, why: impl Into<String>) {
        self.out.digests_broken += 1;
        push_name(
            &mut self.out.broken_digests,
            format!("{key}: {}", why.into()),
        );
    }

    /// One digest: `key` where it was found, its decompressed text (or why it
    /// could not be read), and its `x-amz-meta-signature` when the store has metadata.
    pub fn add_digest(&mut self, key: &str, text: Result<&[u8], String>, signature: Option<&str>) {
        let rel = trail_relative(key).to_string();
        self.out.digests_read += 1;
        let text = match text {
            Ok(t) => t,
            Err(e) => return self.broken(&rel, e),
        };
        let doc: DigestDoc = match serde_json::from_slice(text) {
            Ok(d) => d,
            Err(e) => return self.broken(&rel, format!("not a digest file: {e}")),
        };
        let sha: [u8; 32] = Sha256::digest(text).into();
        if trail_relative(&doc.digest_s3_object) != rel {
            return self.broken(
                &rel,
                format!(
                    "moved: it says it is {}",
                    trail_relative(&doc.digest_s3_object)
                ),
            );
        }
        let parse = |t: &str| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc));
        let (Ok(start), Ok(end)) = (parse(&doc.digest_start_time), parse(&doc.digest_end_time))
        else {
            return self.broken(&rel, "unreadable digestStartTime or digestEndTime");
        };
        let signed = match &self.keys {
            Keys::Unchecked(_) => {
                self.out.signatures_unchecked += 1;
                Ok(())
            }
            Keys::Known(keys) => {
                self.out.signatures_checked += 1;
                match (signature, doc.digest_public_key_fingerprint.as_deref()) {
                    (None, _) => Err("no signature in the object's metadata".to_string()),
                    (_, None) => Err("no digestPublicKeyFingerprint".to_string()),
                    (Some(sig), Some(fp)) => match keys.get(fp) {
                        None => Err(format!("no public key for fingerprint {fp}")),
                        Some(der) => {
                            verify_signature(der, string_to_sign(&doc, &sha).as_bytes(), sig)
                        }
                    },
                }
            }
        };
        // A digest that fails its signature still holds its place in the chain
        // (its successor's hash is checked against it), but lists nothing: the
        // files it names are not proven by it.
        let trusted = match signed {
            Ok(()) => true,
            Err(why) => {
                self.broken(&rel, why);
                false
            }
        };
        for log in doc.log_files.iter().filter(|_| trusted) {
            self.expected.insert(
                trail_relative(&log.s3_object).to_string(),
                Expected {
                    hash: log.hash_value.to_ascii_lowercase(),
                },
            );
        }
        let previous = match (
            &doc.previous_digest_s3_object,
            &doc.previous_digest_hash_value,
        ) {
            (Some(k), Some(h)) if !k.is_empty() => {
                Some((trail_relative(k).to_string(), h.to_ascii_lowercase()))
            }
            _ => None,
        };
        self.seen.push(Seen {
            key: rel,
            end,
            start,
            sha,
            previous,
        });
    }

    /// A log file the reader read: its key, delivery minute, and SHA-256 of its
    /// decompressed text (`None`: it could not be read whole).
    pub fn add_file(&mut self, key: &str, delivered: Option<DateTime<Utc>>, sha: Option<[u8; 32]>) {
        let rel = trail_relative(key);
        match (self.expected.remove(rel), sha) {
            (Some(e), Some(sha)) if e.hash == hex::encode(sha) => self.out.files_validated += 1,
            (Some(_), Some(_)) => {
                self.out.files_altered += 1;
                push_name(&mut self.out.altered, rel.to_string());
            }
            (Some(_), None) => {
                self.out.files_unverifiable += 1;
                push_name(&mut self.out.unverifiable, rel.to_string());
            }
            (None, _) => self.unmatched.push((rel.to_string(), delivered)),
        }
    }

    /// The verdict. `in_scope(key)`: would the reader have read this listed
    /// file (its account, region, day and minute are wanted)?
    pub fn finish(mut self, in_scope: impl Fn(&str) -> bool) -> Integrity {
        let mut out = std::mem::take(&mut self.out);
        if out.digests_read == 0 {
            out.notes
                .push("integrity not checked: no digest files for this window".into());
            return out;
        }
        out.checked = true;
        if let Keys::Unchecked(why) = &self.keys {
            out.notes.push(format!("signatures not checked: {why}"));
        }
        // The chain: each digest names the previous one and its hash.
        let by_key: BTreeMap<&str, &Seen> = self.seen.iter().map(|s| (s.key.as_str(), s)).collect();
        let mut missing_digests = Vec::new();
        let mut broken = Vec::new();
        for s in &self.seen {
            let Some((prev, hash)) = &s.previous else {
                continue;
            };
            match by_key.get(prev.as_str()) {
                Some(p) if hex::encode(p.sha) == *hash => {}
                Some(_) => broken.push(format!(
                    "{prev}: its text does not match the previousDigestHashValue in {}",
                    s.key
                )),
                None => {
                    let listed = end_from_name(prev)
                        .zip(self.listed_from)
                        .is_some_and(|(t, from)| t >= from);
                    if listed {
                        missing_digests.push(format!("{prev} (named by {})", s.key));
                    }
                }
            }
        }
        out.digests_missing += missing_digests.len() as u64;
        for m in missing_digests {
            push_name(&mut out.missing_digests, m);
        }
        for b in broken {
            out.digests_broken += 1;
            push_name(&mut out.broken_digests, b);
        }
        // Listed files the reader should have read and did not.
        let mut missing: Vec<String> = self
            .expected
            .keys()
            .filter(|k| in_scope(k))
            .cloned()
            .collect();
        missing.sort();
        out.files_missing = missing.len() as u64;
        for m in missing {
            push_name(&mut out.missing, m);
        }
        // Files no digest lists: added, unless delivered after the newest
        // digest or before the first one read.
        let newest = self.seen.iter().map(|s| s.end).max();
        let oldest = self.seen.iter().map(|s| s.start).min();
        self.unmatched.sort();
        for (key, delivered) in self.unmatched {
            let pending = match (delivered, newest) {
                (Some(t), Some(n)) => t >= n,
                _ => false,
            };
            let before = match (delivered, oldest) {
                (Some(t), Some(o)) => t < o,
                _ => false,
            };
            if pending {
                out.files_after_last_digest += 1;
            } else if before {
                out.notes.push(format!(
                    "{key}: delivered before the first digest read, not checked"
                ));
            } else {
                out.files_unlisted += 1;
                push_name(&mut out.unlisted, key);
            }
        }
        if out.files_after_last_digest > 0 {
            out.notes.push(format!(
                "{} file(s) delivered after the last digest read: not checked",
                out.files_after_last_digest
            ));
        }
        out.broken_digests.sort();
        out.missing_digests.sort();
        out.altered.sort();
        out.unverifiable.sort();
        out.notes.truncate(MAX_NAMES);
        out
    }
}

/// Hex SHA-256 of bytes (for the generator and tests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The trail generator's test key (crates/sim), to sign digests here too.
    const KEY_DER: &[u8] = include_bytes!("../../../crates/sim/src/gen_digest_key.der");

    fn key_pair() -> aws_lc_rs::signature::RsaKeyPair {
        aws_lc_rs::signature::RsaKeyPair::from_der(KEY_DER).unwrap()
    }

    fn public_der() -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        key_pair().public_key().as_ref().to_vec()
    }

    fn sign(msg: &[u8]) -> String {
        let kp = key_pair();
        let mut sig = vec![0u8; kp.public_modulus_len()];
        kp.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            msg,
            &mut sig,
        )
        .unwrap();
        hex::encode(sig)
    }

    const A: &str = "AWSLogs/o-1/111/CloudTrail-Digest/us-east-1/2025/02/19/111_CloudTrail-Digest_us-east-1_org_us-east-1_20250219T010000Z.json.gz";
    const B: &str = "AWSLogs/o-1/111/CloudTrail-Digest/us-east-1/2025/02/19/111_CloudTrail-Digest_us-east-1_org_us-east-1_20250219T020000Z.json.gz";
    const LOG1: &str = "AWSLogs/o-1/111/CloudTrail/us-east-1/2025/02/19/111_CloudTrail_us-east-1_20250219T0005Z_a.json.gz";
    const LOG2: &str = "AWSLogs/o-1/111/CloudTrail/us-east-1/2025/02/19/111_CloudTrail_us-east-1_20250219T0105Z_b.json.gz";

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A digest's text and signature.
    fn digest(
        key: &str,
        start: &str,
        end: &str,
        prev: Option<(&str, &[u8], &str)>,
        logs: &[(&str, &[u8])],
    ) -> (Vec<u8>, String) {
        let logs: Vec<serde_json::Value> = logs
            .iter()
            .map(|(k, text)| serde_json::json!({"s3Bucket": "b", "s3Object": format!("pre/{k}"), "hashValue": sha256_hex(text), "hashAlgorithm": "SHA-256"}))
            .collect();
        let (pk, ph, ps) = match prev {
            Some((k, text, sig)) => (
                serde_json::json!(format!("pre/{k}")),
                serde_json::json!(sha256_hex(text)),
                serde_json::json!(sig),
            ),
            None => (
                serde_json::Value::Null,
                serde_json::Value::Null,
                serde_json::Value::Null,
            ),
        };
        let v = serde_json::json!({
            "awsAccountId": "111", "digestStartTime": start, "digestEndTime": end,
            "digestS3Bucket": "b", "digestS3Object": format!("pre/{key}"),
            "digestPublicKeyFingerprint": "fp1", "digestSignatureAlgorithm": "SHA256withRSA",
            "previousDigestS3Bucket": "b", "previousDigestS3Object": pk,
            "previousDigestHashValue": ph, "previousDigestHashAlgorithm": "SHA-256",
            "previousDigestSignature": ps, "logFiles": logs,
        });
        let text = serde_json::to_vec(&v).unwrap();
        let doc: DigestDoc = serde_json::from_slice(&text).unwrap();
        let sha: [u8; 32] = Sha256::digest(&text).into();
        let sig = sign(string_to_sign(&doc, &sha).as_bytes());
        (text, sig)
    }

    fn chain() -> ((Vec<u8>, String), (Vec<u8>, String)) {
        let a = digest(
            A,
            "2025-02-19T00:00:00Z",
            "2025-02-19T01:00:00Z",
            None,
            &[(LOG1, b"one")],
        );
        let b = digest(
            B,
            "2025-02-19T01:00:00Z",
            "2025-02-19T02:00:00Z",
            Some((A, &a.0, &a.1)),
            &[(LOG2, b"two")],
        );
        (a, b)
    }

    fn keys() -> Keys {
        Keys::from_list([PublicKey {
            fingerprint: "fp1".into(),
            der: public_der(),
        }])
    }

    fn sha(b: &[u8]) -> Option<[u8; 32]> {
        Some(Sha256::digest(b).into())
    }

    fn check(keys: Keys) -> DigestCheck {
        DigestCheck::new(keys, t("2025-02-19T00:00:00Z"))
    }

    #[test]
    fn names_are_parsed() {
        assert_eq!(end_from_name(A), Some(t("2025-02-19T01:00:00Z")));
        assert_eq!(home_region_from_name(A).as_deref(), Some("us-east-1"));
        let back = A.replace(".json.gz", "_backfill.json.gz");
        assert_eq!(end_from_name(&back), Some(t("2025-02-19T01:00:00Z")));
        assert!(is_digest_name(A) && !is_digest_name(LOG1));
        assert_eq!(trail_relative(&format!("x/y/{A}")), A);
        assert_eq!(trail_relative(A), A);
    }

    #[test]
    fn an_intact_signed_chain_validates_every_file() {
        let (a, b) = chain();
        let mut c = check(keys());
        c.add_digest(&format!("pre/{A}"), Ok(&a.0), Some(&a.1));
        c.add_digest(&format!("/local/copy/{B}"), Ok(&b.0), Some(&b.1));
        c.add_file(LOG1, None, sha(b"one"));
        c.add_file(&format!("pre/{LOG2}"), None, sha(b"two"));
        let r = c.finish(|_| true);
        assert!(r.checked && !r.failed(), "{r:?}");
        assert_eq!(
            (r.files_validated, r.signatures_checked, r.digests_read),
            (2, 2, 2)
        );
        assert!(r.notes.is_empty() && r.problem().is_none());
    }

    #[test]
    fn missing_altered_unlisted_and_unverifiable_files_are_named() {
        let (a, b) = chain();
        let mut c = check(Keys::Unchecked("local copy".into()));
        c.add_digest(A, Ok(&a.0), None);
        c.add_digest(B, Ok(&b.0), None);
        c.add_file(LOG2, None, sha(b"TWO"));
        let extra = LOG2.replace("_b.", "_c.");
        c.add_file(&extra, Some(t("2025-02-19T01:05:00Z")), sha(b"x"));
        let r = c.finish(|_| true);
        assert_eq!(r.missing, [LOG1]);
        assert_eq!(r.altered, [LOG2]);
        assert_eq!(r.unlisted, [extra]);
        assert_eq!(r.signatures_unchecked, 2);
        assert_eq!(r.notes, ["signatures not checked: local copy"]);
        assert!(r.failed());
        assert!(r
            .problem()
            .unwrap()
            .contains("1 log file(s) missing, 1 altered, 1 in no digest"));

        // Out of the reader's scope: not missing. Unreadable: unverifiable, not altered.
        let mut c = check(Keys::Unchecked("local copy".into()));
        c.add_digest(A, Ok(&a.0), None);
        c.add_file(LOG1, None, None);
        let r = c.finish(|_| false);
        assert_eq!(
            (r.files_missing, r.files_unverifiable, r.files_altered),
            (0, 1, 0)
        );
        assert!(!r.failed());
    }

    #[test]
    fn a_file_after_the_last_digest_is_noted_one_inside_is_unlisted() {
        let (a, b) = chain();
        let late = LOG2.replace("_b.", "_late.");
        for (with_b, after) in [(false, true), (true, false)] {
            let mut c = check(Keys::Unchecked("x".into()));
            c.add_digest(A, Ok(&a.0), None);
            if with_b {
                c.add_digest(B, Ok(&b.0), None);
                c.add_file(LOG2, None, sha(b"two"));
            }
            c.add_file(LOG1, None, sha(b"one"));
            c.add_file(&late, Some(t("2025-02-19T01:10:00Z")), sha(b"z"));
            let r = c.finish(|_| true);
            assert_eq!(r.files_after_last_digest, u64::from(after));
            assert_eq!(r.files_unlisted, u64::from(!after));
            assert_eq!(r.failed(), !after);
        }
    }

    #[test]
    fn a_deleted_or_altered_digest_breaks_the_chain() {
        let (a, b) = chain();
        // Deleted: B names A, which was listed but is not there.
        let mut c = check(Keys::Unchecked("x".into()));
        c.add_digest(B, Ok(&b.0), None);
        let r = c.finish(|_| false);
        assert_eq!(r.digests_missing, 1);
        assert!(r.missing_digests[0].starts_with(A));
        // Before the listed range: not looked for.
        let mut c = DigestCheck::new(Keys::Unchecked("x".into()), t("2025-02-19T01:30:00Z"));
        c.add_digest(B, Ok(&b.0), None);
        assert!(!c.finish(|_| false).failed());
        // Altered: A's text is not what B hashed (a local copy: no signature to catch it).
        let mut a2 = a.0.clone();
        let at = a2.iter().position(|c| *c == b'1').unwrap();
        a2[at] = b'9';
        let mut c = check(Keys::Unchecked("x".into()));
        c.add_digest(A, Ok(&a2), None);
        c.add_digest(B, Ok(&b.0), None);
        let r = c.finish(|_| false);
        assert_eq!(r.digests_broken, 1, "{r:?}");
        assert!(r.broken_digests[0].contains("previousDigestHashValue"));
    }

    #[test]
    fn signatures_are_verified_against_the_listed_key() {
        let (a, _) = chain();
        // A bad signature, a missing one, an unknown fingerprint, a moved digest.
        let mut bad_sig = a.1.clone();
        bad_sig.replace_range(0..2, if &bad_sig[0..2] == "00" { "01" } else { "00" });
        let cases: Vec<(&str, Option<&str>, Keys, &str)> = vec![
            (A, Some(&bad_sig), keys(), "signature verification failed"),
            (A, None, keys(), "no signature"),
            (
                A,
                Some(&a.1),
                Keys::from_list([]),
                "no public key for fingerprint fp1",
            ),
            (B, Some(&a.1), keys(), "moved"),
        ];
        for (key, sig, keys, why) in cases {
            let mut c = check(keys);
            c.add_digest(key, Ok(&a.0), sig);
            let r = c.finish(|_| false);
            assert_eq!(r.digests_broken, 1, "{why}");
            assert!(r.broken_digests[0].contains(why), "{:?}", r.broken_digests);
        }
        // Not a digest at all.
        let mut c = check(keys());
        c.add_digest(A, Ok(b"{\"no\":1}"), None);
        c.add_digest(B, Err("corrupt gzip".into()), None);
        assert_eq!(c.finish(|_| false).digests_broken, 2);
    }

    #[test]
    fn without_digests_nothing_is_claimed() {
        let mut c = check(keys());
        c.add_file(LOG1, None, sha(b"one"));
        let r = c.finish(|_| true);
        assert!(!r.checked && !r.failed());
        assert_eq!(
            r.notes,
            ["integrity not checked: no digest files for this window"]
        );
    }
}
