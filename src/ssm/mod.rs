//! Session Manager's own records: its session history (`DescribeSessions`),
//! its preferences (`GetDocument SSM-SessionManagerRunShell`) and the other
//! session documents sessions used, read through the audit role.
//!
//! Not a source behind `source::read`'s seam: it yields no session events. It
//! is an enrichment the live scan runs beside each partition's LookupEvents
//! ([`enrich`]), joined into the sessions afterwards ([`join`]), and the
//! whole of `ssm-session-audit active` ([`active`]). Reading it never changes
//! what CloudTrail read, nor the run's completeness: a posture that could not
//! be read says so ("not readable: grant …") and fires nothing.

pub mod active;
pub mod document;
pub mod join;
pub mod read;
pub mod wire;

use std::collections::BTreeSet;
use std::future::Future;

pub use self::document::PREFERENCES_DOCUMENT;
pub use self::read::{read_documents, read_posture, SsmPartition, SsmRun};
pub use self::wire::SsmWire;
use crate::model::{Logging, ReadStatus, RegionStatus, SessionManagerPosture};
use crate::session::START_SESSION;
use crate::source::lookup::partition::PartitionResult;

/// Reads one partition's CloudTrail (`cloudtrail`, e.g. `read_partition`) and
/// its Session Manager records at once, then the session documents its
/// sessions used, and attaches the posture to the partition's coverage. A
/// region CloudTrail found not enabled carries no posture: it holds nothing.
pub async fn enrich<F>(run: &SsmRun, p: SsmPartition<'_>, cloudtrail: F) -> PartitionResult
where
    F: Future<Output = PartitionResult>,
{
    // The documents Session Manager's own records name are read as soon as
    // those records are, while CloudTrail is still being read: a deep
    // partition then ends with its last LookupEvents page, not one GetDocument
    // round trip per document after it.
    let early = async {
        run.after_listing().await;
        let mut posture = read_posture(run, &p).await;
        let named: BTreeSet<String> = posture
            .records
            .iter()
            .filter_map(|r| r.document_name.clone())
            .collect();
        read_documents(run, &p, &mut posture, named).await;
        posture
    };
    let (mut part, mut posture) = tokio::join!(cloudtrail, early);
    if part.coverage.status == RegionStatus::NotEnabled {
        return part;
    }
    if posture.history.status == ReadStatus::NotEnabled {
        // CloudTrail answered in this region with the same credentials: not an
        // opt-in region, a refusal.
        posture.history.status = ReadStatus::Failed;
        if posture.preferences.status == ReadStatus::NotEnabled {
            posture.preferences.status = ReadStatus::Failed;
            posture.preferences.error = posture.history.error.clone();
        }
    }
    let mut names: BTreeSet<String> = part
        .events
        .iter()
        .filter(|e| e.event_name == START_SESSION && !e.is_denied())
        .filter_map(|e| e.document_name.clone())
        .collect();
    names.extend(
        posture
            .records
            .iter()
            .filter_map(|r| r.document_name.clone()),
    );
    read_documents(run, &p, &mut posture, names).await;
    finish(&mut posture);
    part.coverage.session_manager = Some(posture);
    part
}

/// [`enrich`] for a region whose Session Manager endpoint could not be
/// resolved (`why`): CloudTrail is read, the posture says why it was not.
pub async fn enrich_unreachable<F>(run: &SsmRun, why: String, cloudtrail: F) -> PartitionResult
where
    F: Future<Output = PartitionResult>,
{
    let mut part = cloudtrail.await;
    if part.coverage.status != RegionStatus::NotEnabled {
        part.coverage.session_manager = Some(read::unreachable(run, why));
    }
    part
}

/// Sets the posture's `readable` and one-line `summary` from what was read.
pub fn finish(p: &mut SessionManagerPosture) {
    p.readable = p.preferences.status.known() && p.history.status == ReadStatus::Read;
    p.summary = summary(p);
}

/// One line: where transcripts go, or why that is not known.
pub fn summary(p: &SessionManagerPosture) -> String {
    let prefs = &p.preferences;
    let denied_prefs = prefs.status == ReadStatus::NotReadable;
    let denied_history = p.history.status == ReadStatus::NotReadable;
    if denied_prefs && denied_history {
        return "not readable: grant ssm:DescribeSessions / ssm:GetDocument to the audit role"
            .into();
    }
    let mut parts = Vec::new();
    match (prefs.status, prefs.logging) {
        (ReadStatus::NeverSaved, _) => {
            parts.push("transcripts: none (preferences never saved: the defaults log nothing)".to_string())
        }
        (ReadStatus::Read, Logging::None) => parts.push(
            "transcripts: none (the preferences name neither an S3 bucket nor a CloudWatch log group)"
                .to_string(),
        ),
        (ReadStatus::Read, Logging::Unknown) => {
            parts.push("transcripts: unknown (the preferences leave them to parameters)".to_string())
        }
        (ReadStatus::Read, _) => {
            let mut to = Vec::new();
            if let Some(b) = &prefs.s3_bucket {
                let prefix = prefs.s3_key_prefix.as_deref().unwrap_or("");
                to.push(format!(
                    "s3://{b}/{}{}",
                    prefix.trim_start_matches('/'),
                    encrypted(prefs.s3_encryption)
                ));
            }
            if let Some(g) = &prefs.cloudwatch_log_group {
                let streaming = match prefs.cloudwatch_streaming {
                    Some(true) => ", streamed",
                    _ => "",
                };
                to.push(format!(
                    "CloudWatch {g}{}{streaming}",
                    encrypted(prefs.cloudwatch_encryption)
                ));
            }
            parts.push(format!("transcripts: {}", to.join(" and ")));
        }
        (_, _) => parts.push(format!(
            "transcripts: unknown ({})",
            prefs.error.as_deref().unwrap_or("preferences not read")
        )),
    }
    if prefs.status.known() {
        let mut settings = Vec::new();
        if let Some(k) = &prefs.kms_key_id {
            settings.push(format!("KMS key {k}"));
        }
        if let Some(m) = prefs.idle_timeout_minutes {
            settings.push(format!("idle timeout {m} min"));
        }
        if let Some(m) = prefs.max_duration_minutes {
            settings.push(format!("max duration {m} min"));
        }
        match (prefs.run_as_enabled, &prefs.run_as_user) {
            (Some(true), Some(u)) => settings.push(format!("run as {u}")),
            (Some(true), None) => settings.push("run as enabled".into()),
            _ => {}
        }
        if !settings.is_empty() {
            parts.push(settings.join(", "));
        }
    }
    if p.history.status != ReadStatus::Read {
        parts.push(format!(
            "history: {}",
            p.history
                .error
                .as_deref()
                .unwrap_or(p.history.status.as_str())
        ));
    }
    crate::call::short(&parts.join("; "))
}

fn encrypted(on: Option<bool>) -> &'static str {
    match on {
        Some(true) => " (encrypted)",
        Some(false) => " (not encrypted)",
        None => "",
    }
}
