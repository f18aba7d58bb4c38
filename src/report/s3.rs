//! Evidence in S3 (`--output s3://bucket/prefix`): each run under its own
//! folder `prefix/<run start>/` (`2026-12-01T06-00-00Z`, so names sort by
//! time), every file uploaded from its staged copy (in parts of 8 MiB above
//! that size, so no file is ever held whole in memory), then `SHA256SUMS`,
//! then `prefix/latest.json` naming the run. With `--object-lock-days N` every
//! object, `latest.json` included, gets Object Lock retention in compliance
//! mode until N days after the upload. Every object carries its own SHA-256
//! (`x-amz-checksum-sha256`), which S3 checks on arrival.
//!
//! The promise is the local folder's: a reader trusts a run only if its
//! `SHA256SUMS` exists and matches; `SHA256SUMS` is uploaded after every other
//! file and `latest.json` after it, so `latest.json` never names a run that is
//! not whole. A run killed part-way leaves a folder without `SHA256SUMS`.
//!
//! Calls: ListObjectsV2 (s3:ListBucket), PutObject, CreateMultipartUpload,
//! UploadPart, CompleteMultipartUpload (s3:PutObject, plus s3:PutObjectRetention
//! with a retention), AbortMultipartUpload, GetObject and HeadObject
//! (s3:GetObject); with a retention also GetObjectLockConfiguration
//! (s3:GetBucketObjectLockConfiguration, before the scan) and, for a multipart
//! object that did not take the retention of its CreateMultipartUpload (some
//! S3 stand-ins), PutObjectRetention. Nothing is ever deleted.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockEnabled, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::write::{parse_sums, stage_files, sums_text, Staged, Staging, SUMS_FILE};
use super::{ReportError, ReportWriter};
use crate::call::{call_with_retry, CallFailure, CallSlots, ErrorClass};
use crate::chain::LastRun;
use crate::model::Report;

/// Files above this size go up in parts of this size (S3's least is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// The pointer to the last run written whole.
pub const LATEST: &str = "latest.json";
/// Schema of `latest.json`.
pub const LATEST_SCHEMA: &str = "ssm-session-audit/latest/v1";
/// Staging folders of uploads, in the temporary folder: this, the pid, the run.
const UPLOAD_PREFIX: &str = ".ssm-session-audit-upload-";
/// One call may be retried for this long.
const DEADLINE: Duration = Duration::from_secs(120);

/// `latest.json`: which run is the last one written whole, and what it covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub schema: String,
    /// The run's folder name, e.g. `2026-12-01T06-00-00Z`.
    pub run: String,
    /// Its key prefix, ending in `/`.
    pub prefix: String,
    /// `s3://bucket/prefix/RUN/`.
    pub location: String,
    /// SHA-256 (hex) of the run's `SHA256SUMS`.
    pub sha256sums: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub settled_until: DateTime<Utc>,
    pub complete: bool,
    pub interrupted: bool,
    pub tool_version: String,
}

/// A run's folder name: its start, sortable, in whole seconds.
pub fn run_folder(start: DateTime<Utc>) -> String {
    start.format("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// The start a run folder's name says (a `-N` suffix, for runs started in the
/// same second, is allowed), or `None` for any other name.
pub fn parse_run_folder(name: &str) -> Option<(DateTime<Utc>, u32)> {
    let (stamp, n) = match name.get(20..) {
        Some("") => (name, 0),
        Some(rest) => (&name[..20], rest.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%SZ").ok()?;
    Some((t.and_utc(), n))
}

/// The evidence location of one run.
pub struct S3Evidence {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Without a trailing `/`; may be empty.
    prefix: String,
    /// This run's folder name.
    run: String,
    retain_until: Option<DateTime<Utc>>,
    slots: CallSlots,
}

fn failure(operation: &'static str, location: String, f: CallFailure) -> ReportError {
    ReportError::S3 {
        operation,
        location,
        failure: f.to_string(),
    }
}

impl S3Evidence {
    /// Proves, before the scan, that the run can be written: the bucket may be
    /// listed (and this run's folder is new: a second run in the same second
    /// takes `-2`), and an upload is accepted with the retention asked for (a
    /// multipart upload started and aborted, so nothing is left behind).
    pub async fn open(
        client: aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        object_lock_days: Option<u32>,
        run_start: DateTime<Utc>,
    ) -> Result<S3Evidence, ReportError> {
        let mut ev = S3Evidence {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            run: run_folder(run_start),
            retain_until: object_lock_days.map(|d| {
                let t = Utc::now() + TimeDelta::days(i64::from(d));
                DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
            }),
            slots: CallSlots::new(4),
        };
        let base = ev.run.clone();
        for n in 1..=20u32 {
            if n > 1 {
                ev.run = format!("{base}-{n}");
            }
            let folder = ev.key(&format!("{}/", ev.run));
            let listed = call_with_retry(Some(&ev.slots), DEADLINE, || {
                ev.client
                    .list_objects_v2()
                    .bucket(&ev.bucket)
                    .prefix(&folder)
                    .max_keys(1)
                    .send()
            })
            .await
            .map_err(|f| failure("ListObjectsV2", ev.url(&folder), f))?;
            if listed.contents().is_empty() {
                break;
            }
        }
        // Retention on a bucket without Object Lock fails every upload: say so now.
        if ev.retain_until.is_some() {
            let lock = call_with_retry(Some(&ev.slots), DEADLINE, || {
                ev.client
                    .get_object_lock_configuration()
                    .bucket(&ev.bucket)
                    .send()
            })
            .await;
            let enabled = match lock {
                Ok(l) => {
                    l.object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        == Some(&ObjectLockEnabled::Enabled)
                }
                Err(f) if f.code == "ObjectLockConfigurationNotFoundError" => false,
                Err(f) => return Err(failure("GetObjectLockConfiguration", ev.url(""), f)),
            };
            if !enabled {
                return Err(ReportError::S3 {
                    operation: "GetObjectLockConfiguration",
                    location: ev.url(""),
                    failure: "the bucket does not have Object Lock enabled; --object-lock-days needs a bucket created with Object Lock".into(),
                });
            }
        }
        let probe = ev.run_key("report.json");
        let created = call_with_retry(Some(&ev.slots), DEADLINE, || {
            ev.lock(
                ev.client
                    .create_multipart_upload()
                    .bucket(&ev.bucket)
                    .key(&probe)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256),
            )
            .send()
        })
        .await
        .map_err(|f| failure("CreateMultipartUpload", ev.url(&probe), f))?;
        if let Some(id) = created.upload_id() {
            ev.abort(&probe, id).await;
        }
        Ok(ev)
    }

    /// `s3://bucket/prefix/RUN/`.
    pub fn location(&self) -> String {
        self.url(&self.run_key(""))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    fn run_key(&self, name: &str) -> String {
        self.key(&format!("{}/{name}", self.run))
    }

    /// Adds the retention headers, when a retention is asked for.
    fn lock<B: LockHeaders>(&self, b: B) -> B {
        match self.retain_until {
            Some(t) => b.locked(t),
            None => b,
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let r = call_with_retry(Some(&self.slots), DEADLINE, || {
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
        })
        .await;
        if let Err(f) = r {
            // The bucket's lifecycle removes unfinished uploads (the schedule
            // template's does after 7 days); nothing of it is a visible object.
            tracing::warn!(key, error = %f, "could not abort a multipart upload");
        }
    }

    /// Writes the run: every file staged, uploaded, then `SHA256SUMS`, then
    /// `latest.json`. Returns the keys written, `latest.json` last.
    pub async fn write_run(
        &self,
        report: &Report,
        writers: &[Box<dyn ReportWriter>],
    ) -> Result<Vec<String>, ReportError> {
        let tmp = std::env::temp_dir();
        super::write::remove_stale_staging(&tmp, UPLOAD_PREFIX);
        let dir = tmp.join(format!(
            "{UPLOAD_PREFIX}{}-{}",
            std::process::id(),
            self.run
        ));
        let staging = Staging::create(dir.clone()).map_err(|source| ReportError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let staged = stage_files(report, staging.path(), writers)?;
        let mut keys = Vec::new();
        for s in &staged {
            keys.push(self.upload(s).await?);
        }
        let sums = sums_text(staged.iter().map(|s| (s.name, s.sha256.as_str())));
        let sums_hex = hex::encode(Sha256::digest(sums.as_bytes()));
        let key = self.run_key(SUMS_FILE);
        self.put_small(&key, sums.into_bytes(), "text/plain; charset=utf-8")
            .await?;
        keys.push(key);

        let r = &report.run;
        let latest = Latest {
            schema: LATEST_SCHEMA.to_string(),
            run: self.run.clone(),
            prefix: self.run_key(""),
            location: self.location(),
            sha256sums: sums_hex,
            started_at: r.started_at,
            finished_at: r.finished_at,
            window_start: r.window.start,
            window_end: r.window.end,
            settled_until: r.window.settled_until,
            complete: r.complete,
            interrupted: r.interrupted,
            tool_version: r.tool_version.clone(),
        };
        let mut body = serde_json::to_vec_pretty(&latest).unwrap_or_default();
        body.push(b'\n');
        let key = self.key(LATEST);
        self.put_small(&key, body, "application/json").await?;
        keys.push(key);
        Ok(keys)
    }

    async fn upload(&self, s: &Staged) -> Result<String, ReportError> {
        let key = self.run_key(s.name);
        let content_type = if s.name.ends_with(".json") {
            "application/json"
        } else if s.name.ends_with(".csv") {
            "text/csv; charset=utf-8"
        } else if s.name.ends_with(".html") {
            "text/html; charset=utf-8"
        } else if s.name.ends_with(".jsonl") {
            "application/x-ndjson"
        } else {
            "application/octet-stream"
        };
        if s.size as usize <= PART_SIZE {
            let bytes = std::fs::read(&s.tmp).map_err(|source| ReportError::Write {
                file: s.tmp.clone(),
                source,
            })?;
            self.put_small(&key, bytes, content_type).await?;
        } else {
            self.put_parts(&key, &s.tmp, content_type).await?;
        }
        Ok(key)
    }

    /// One PutObject, with its SHA-256 for S3 to check.
    async fn put_small(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ReportError> {
        let checksum = aws_smithy_types::base64::encode(Sha256::digest(&body));
        let body = bytes::Bytes::from(body);
        call_with_retry(Some(&self.slots), DEADLINE, || {
            self.lock(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .checksum_sha256(&checksum)
                    .body(ByteStream::from(body.clone())),
            )
            .send()
        })
        .await
        .map_err(|f| failure("PutObject", self.url(key), f))?;
        Ok(())
    }

    /// A multipart upload read from the file a part at a time.
    async fn put_parts(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), ReportError> {
        let created = call_with_retry(Some(&self.slots), DEADLINE, || {
            self.lock(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256),
            )
            .send()
        })
        .await
        .map_err(|f| failure("CreateMultipartUpload", self.url(key), f))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(ReportError::S3 {
                operation: "CreateMultipartUpload",
                location: self.url(key),
                failure: "the answer has no UploadId".into(),
            });
        };
        match self.send_parts(key, path, &upload_id).await {
            Ok(parts) => {
                let done = call_with_retry(Some(&self.slots), DEADLINE, || {
                    self.client
                        .complete_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(parts.clone()))
                                .build(),
                        )
                        .send()
                })
                .await;
                match done {
                    Ok(_) => self.ensure_retention(key).await,
                    Err(f) => {
                        self.abort(key, &upload_id).await;
                        Err(failure("CompleteMultipartUpload", self.url(key), f))
                    }
                }
            }
            Err(e) => {
                self.abort(key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// A multipart object takes the retention of its CreateMultipartUpload; where
    /// it did not (moto does not carry it over), it is set on the object.
    async fn ensure_retention(&self, key: &str) -> Result<(), ReportError> {
        let Some(until) = self.retain_until else {
            return Ok(());
        };
        let head = call_with_retry(Some(&self.slots), DEADLINE, || {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        })
        .await
        .map_err(|f| failure("HeadObject", self.url(key), f))?;
        let held = head.object_lock_mode() == Some(&ObjectLockMode::Compliance)
            && head
                .object_lock_retain_until_date()
                .is_some_and(|t| t.secs() >= until.timestamp());
        if held {
            return Ok(());
        }
        call_with_retry(Some(&self.slots), DEADLINE, || {
            self.client
                .put_object_retention()
                .bucket(&self.bucket)
                .key(key)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::Compliance)
                        .retain_until_date(smithy_time(until))
                        .build(),
                )
                .send()
        })
        .await
        .map_err(|f| failure("PutObjectRetention", self.url(key), f))?;
        Ok(())
    }

    async fn send_parts(
        &self,
        key: &str,
        path: &Path,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, ReportError> {
        let io_err = |source| ReportError::Write {
            file: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io_err)?;
        let size = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut parts = Vec::new();
        let mut buf = vec![0u8; PART_SIZE];
        let mut sent = 0u64;
        let mut number = 0i32;
        while sent < size || number == 0 {
            number += 1;
            let n = read_full(&mut file, &mut buf).map_err(io_err)?;
            let part = bytes::Bytes::copy_from_slice(&buf[..n]);
            let checksum = aws_smithy_types::base64::encode(Sha256::digest(&part));
            let out = call_with_retry(Some(&self.slots), DEADLINE, || {
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .checksum_sha256(&checksum)
                    .body(ByteStream::from(part.clone()))
                    .send()
            })
            .await
            .map_err(|f| failure("UploadPart", self.url(key), f))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_sha256(out.checksum_sha256().unwrap_or(&checksum))
                    .build(),
            );
            sent += n as u64;
            if n == 0 {
                break;
            }
        }
        Ok(parts)
    }

    /// The last run written whole under the prefix: the newest run folder
    /// whose `SHA256SUMS` exists (a folder without it is a run that never
    /// finished, and is passed over), with its report.json checked against it.
    pub async fn last_run(&self) -> Result<Option<LastRun>, ReportError> {
        let base = self.key("");
        let mut folders: Vec<(DateTime<Utc>, u32, String)> = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            let page = call_with_retry(Some(&self.slots), DEADLINE, || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&base)
                    .delimiter("/")
                    .set_continuation_token(token.clone())
                    .send()
            })
            .await
            .map_err(|f| failure("ListObjectsV2", self.url(&base), f))?;
            for p in page.common_prefixes() {
                let Some(name) = p
                    .prefix()
                    .and_then(|k| k.strip_prefix(base.as_str()))
                    .and_then(|k| k.strip_suffix('/'))
                else {
                    continue;
                };
                if let Some((t, n)) = parse_run_folder(name) {
                    folders.push((t, n, name.to_string()));
                }
            }
            let next = page.next_continuation_token().map(str::to_string);
            // A token that repeats, or a listing without end, is not S3 speaking.
            if next.is_none() || next == token || pages > 100_000 {
                break;
            }
            token = next;
        }
        folders.sort();
        for (_, _, name) in folders.into_iter().rev() {
            if name == self.run {
                continue;
            }
            let folder = self.key(&format!("{name}/"));
            let sums_key = format!("{folder}{SUMS_FILE}");
            let sums = match self.get_small(&sums_key).await? {
                Some(b) => b,
                None => {
                    tracing::info!(run = %self.url(&folder), "a run without SHA256SUMS (it never finished) is passed over");
                    continue;
                }
            };
            let location = self.url(&folder);
            let problem = |problem: String| ReportError::LastRun {
                location: location.clone(),
                problem,
            };
            let sums = String::from_utf8(sums.to_vec())
                .ok()
                .and_then(|t| parse_sums(&t))
                .ok_or_else(|| problem("its SHA256SUMS is not sha256sum text".into()))?;
            let Some((_, want)) = sums.iter().find(|(n, _)| n == "report.json") else {
                return Err(problem("it wrote no report.json (its --format had no json), and --since last reads where it ended from there".into()));
            };
            let run = self
                .read_report_header(&format!("{folder}report.json"), want)
                .await
                .map_err(problem)?;
            return Ok(Some(LastRun { location, run }));
        }
        Ok(None)
    }

    /// GetObject of a small object; `None` when there is no such key.
    async fn get_small(&self, key: &str) -> Result<Option<bytes::Bytes>, ReportError> {
        let got = call_with_retry(Some(&self.slots), DEADLINE, || {
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        })
        .await;
        let out = match got {
            Ok(o) => o,
            Err(f) if f.code == "NoSuchKey" || f.code == "HTTP 404" => return Ok(None),
            Err(f) => return Err(failure("GetObject", self.url(key), f)),
        };
        out.body
            .collect()
            .await
            .map(|b| Some(b.into_bytes()))
            .map_err(|e| ReportError::S3 {
                operation: "GetObject",
                location: self.url(key),
                failure: format!("reading the body: {e}"),
            })
    }

    /// Streams report.json into a temporary file (hashing it), checks it
    /// against its sum, and reads its `run`.
    async fn read_report_header(
        &self,
        key: &str,
        want_sha256: &str,
    ) -> Result<crate::model::RunInfo, String> {
        let got = call_with_retry(Some(&self.slots), DEADLINE, || {
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        })
        .await
        .map_err(|f: CallFailure| {
            if f.class == ErrorClass::Fatal && (f.code == "NoSuchKey" || f.code == "HTTP 404") {
                "its SHA256SUMS lists report.json, which is missing".to_string()
            } else {
                format!("GetObject report.json: {f}")
            }
        })?;
        let mut file = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
        let mut hasher = Sha256::new();
        let mut body = got.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("reading report.json: {e}"))?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| format!("a temporary file: {e}"))?;
        }
        if hex::encode(hasher.finalize()) != want_sha256 {
            return Err("its report.json does not match its SHA256SUMS".into());
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| format!("a temporary file: {e}"))?;
        super::last::read_header(std::io::BufReader::new(file))
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The Object Lock headers of PutObject and CreateMultipartUpload.
trait LockHeaders {
    fn locked(self, until: DateTime<Utc>) -> Self;
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

impl LockHeaders for aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
    fn locked(self, until: DateTime<Utc>) -> Self {
        self.object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(smithy_time(until))
    }
}

impl LockHeaders
    for aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder
{
    fn locked(self, until: DateTime<Utc>) -> Self {
        self.object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(smithy_time(until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_sort_by_time_and_parse_back() {
        let t: DateTime<Utc> = "2026-12-01T06:00:00.750Z".parse().unwrap();
        assert_eq!(run_folder(t), "2026-12-01T06-00-00Z");
        assert_eq!(
            parse_run_folder("2026-12-01T06-00-00Z"),
            Some(("2026-12-01T06:00:00Z".parse().unwrap(), 0))
        );
        assert_eq!(
            parse_run_folder("2026-12-01T06-00-00Z-3").map(|p| p.1),
            Some(3)
        );
        for bad in [
            "latest.json",
            "2026-12-01",
            "2026-12-01T06-00-00Z-",
            "2026-13-01T06-00-00Z",
            "x026-12-01T06-00-00Z",
        ] {
            assert_eq!(parse_run_folder(bad), None, "{bad}");
        }
        let mut names = vec![
            run_folder("2027-01-02T00:00:00Z".parse().unwrap()),
            run_folder("2026-12-31T23:59:59Z".parse().unwrap()),
            run_folder("2026-12-01T06:00:00Z".parse().unwrap()),
        ];
        let by_time = names.clone();
        names.sort();
        assert_eq!(names, by_time.into_iter().rev().collect::<Vec<_>>());
    }

    #[test]
    fn a_short_read_fills_the_buffer() {
        struct Dribble(Vec<u8>);
        impl Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut r = Dribble((0..20).collect());
        let mut buf = [0u8; 8];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(buf, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(read_full(&mut r, &mut [0u8; 64]).unwrap(), 12);
    }
}
