//! Session documents, read: the `Content` of `GetDocument` (JSON) → its
//! settings ([`DocumentPosture`]), and which settings apply to a session, so
//! whether its transcript can exist ([`transcript`]). Pure functions of text.
//!
//! The content is written by whoever administers the account: values may be
//! strings or booleans (`"true"`, `true`), numbers or numeric strings, and a
//! value may be a `{{ parameter }}` the caller fills in when starting the
//! session. Such a value is not known here, and is never taken as "off".

use serde_json::{Map, Value};

use crate::model::{DocumentPosture, Logging, ReadStatus, Transcript, TranscriptStatus};

/// The region's preferences: the document Session Manager uses for a default shell.
pub const PREFERENCES_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The settings of a document whose `Content` is `content`.
pub fn parse(name: &str, content: &str) -> DocumentPosture {
    let value: Value = match serde_json::from_str(content) {
        Ok(v) => v,
        Err(_) => {
            return DocumentPosture::unknown(
                name,
                ReadStatus::Failed,
                Some("its content is not JSON".into()),
            )
        }
    };
    let Some(doc) = value.as_object() else {
        return DocumentPosture::unknown(
            name,
            ReadStatus::Failed,
            Some("its content is not a JSON object".into()),
        );
    };
    let mut out = DocumentPosture::unknown(name, ReadStatus::Read, None);
    out.session_type = text(doc.get("sessionType")).and_then(Setting::known);
    let Some(inputs) = doc.get("inputs").and_then(Value::as_object) else {
        // No preferences of its own (an AWS-StartInteractiveCommand-like document):
        // what it logs is not in it.
        out.logging = Logging::Unknown;
        return out;
    };
    out.has_inputs = true;
    let s3 = text(inputs.get("s3BucketName"));
    let cw = text(inputs.get("cloudWatchLogGroupName"));
    out.logging = logging(&s3, &cw);
    out.s3_bucket = s3.and_then(Setting::known);
    out.s3_key_prefix = text(inputs.get("s3KeyPrefix")).and_then(Setting::known);
    out.s3_encryption = flag(inputs, "s3EncryptionEnabled");
    out.cloudwatch_log_group = cw.and_then(Setting::known);
    out.cloudwatch_encryption = flag(inputs, "cloudWatchEncryptionEnabled");
    out.cloudwatch_streaming = flag(inputs, "cloudWatchStreamingEnabled");
    out.kms_key_id = text(inputs.get("kmsKeyId")).and_then(Setting::known);
    out.idle_timeout_minutes = minutes(inputs, "idleSessionTimeout");
    out.max_duration_minutes = minutes(inputs, "maxSessionDuration");
    out.run_as_enabled = flag(inputs, "runAsEnabled");
    out.run_as_user = text(inputs.get("runAsDefaultUser")).and_then(Setting::known);
    out
}

/// The preferences of a region that never saved any: the defaults, which log nothing.
pub fn never_saved() -> DocumentPosture {
    let mut d = DocumentPosture::unknown(PREFERENCES_DOCUMENT, ReadStatus::NeverSaved, None);
    d.logging = Logging::None;
    d.session_type = Some("Standard_Stream".into());
    d
}

/// A value as written: absent/empty, a `{{ parameter }}`, or a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    Empty,
    Parameter,
    Value(String),
}

impl Setting {
    fn known(self) -> Option<String> {
        match self {
            Setting::Value(v) => Some(v),
            Setting::Empty | Setting::Parameter => None,
        }
    }
}

fn text(v: Option<&Value>) -> Option<Setting> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // A list or a map where a name belongs: not a name.
        _ => return Some(Setting::Parameter),
    };
    Some(if s.is_empty() {
        Setting::Empty
    } else if s.contains("{{") {
        Setting::Parameter
    } else {
        Setting::Value(s)
    })
}

fn logging(s3: &Option<Setting>, cw: &Option<Setting>) -> Logging {
    let on = |s: &Option<Setting>| match s {
        None | Some(Setting::Empty) => Some(false),
        Some(Setting::Value(_)) => Some(true),
        Some(Setting::Parameter) => None,
    };
    match (on(s3), on(cw)) {
        (Some(true), Some(true)) => Logging::S3AndCloudWatch,
        (Some(true), _) => Logging::S3,
        (_, Some(true)) => Logging::CloudWatch,
        (Some(false), Some(false)) => Logging::None,
        _ => Logging::Unknown,
    }
}

fn flag(inputs: &Map<String, Value>, key: &str) -> Option<bool> {
    match inputs.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn minutes(inputs: &Map<String, Value>, key: &str) -> Option<u32> {
    match inputs.get(key)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Where transcripts go under `d`, e.g. `s3://bucket/prefix`, `cloudwatch:/ssm/sessions`.
pub fn destinations(d: &DocumentPosture) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = &d.s3_bucket {
        let prefix = d.s3_key_prefix.as_deref().unwrap_or("");
        out.push(format!("s3://{b}/{}", prefix.trim_start_matches('/')));
    }
    if let Some(g) = &d.cloudwatch_log_group {
        out.push(format!("cloudwatch:{g}"));
    }
    out
}

/// Whether a transcript of a session started with `document` (`None`: the
/// default shell) can exist, given the region's preferences and the other
/// documents read. `tunnel` says the document is a tunnel (never transcribed).
pub fn transcript(
    document: Option<&str>,
    tunnel: bool,
    preferences: &DocumentPosture,
    documents: &[DocumentPosture],
) -> Transcript {
    let name = document.unwrap_or(PREFERENCES_DOCUMENT);
    if tunnel {
        return Transcript {
            status: TranscriptStatus::NotCaptured,
            destinations: Vec::new(),
            document: name.to_string(),
            why: format!("{name} tunnels a port: Session Manager never transcribes it"),
        };
    }
    let prefs_status = |why: &str| -> Transcript { settings_transcript(preferences, name, why) };
    if name == PREFERENCES_DOCUMENT {
        return prefs_status("the region's preferences apply");
    }
    let Some(doc) = documents.iter().find(|d| d.name == name) else {
        return unknown(name, format!("{name} was not read"));
    };
    if !doc.status.known() {
        let why = doc.error.as_deref().unwrap_or("not read");
        return unknown(name, format!("{name}: {why}"));
    }
    if doc.session_type.as_deref() == Some("Port") {
        return Transcript {
            status: TranscriptStatus::NotCaptured,
            destinations: Vec::new(),
            document: name.to_string(),
            why: format!("{name} is a Port session document: never transcribed"),
        };
    }
    if doc.has_inputs {
        return settings_transcript(doc, name, "the document's own settings apply");
    }
    // A document without settings of its own: whichever settings apply to it
    // (its own empty ones, or the region's), if the region's log nowhere too,
    // nothing can.
    if preferences.status.known() && preferences.logging == Logging::None {
        return Transcript {
            status: TranscriptStatus::None,
            destinations: Vec::new(),
            document: name.to_string(),
            why: format!(
                "{name} sets no logging of its own and the region's preferences log nowhere"
            ),
        };
    }
    unknown(
        name,
        format!("{name} sets no logging of its own; whether the region's preferences apply to it is not documented"),
    )
}

fn settings_transcript(d: &DocumentPosture, document: &str, applies: &str) -> Transcript {
    if !d.status.known() {
        let why = d.error.as_deref().unwrap_or("not read");
        return unknown(document, format!("{}: {why}", d.name));
    }
    let (status, why) = match d.logging {
        Logging::None if d.status == ReadStatus::NeverSaved => (
            TranscriptStatus::None,
            format!("{applies}, and were never saved: the defaults log nowhere"),
        ),
        Logging::None => (
            TranscriptStatus::None,
            format!("{applies}: neither an S3 bucket nor a CloudWatch log group"),
        ),
        Logging::Unknown => (
            TranscriptStatus::Unknown,
            format!("{applies}: where they log is left to the session's parameters"),
        ),
        Logging::S3 | Logging::CloudWatch | Logging::S3AndCloudWatch => {
            (TranscriptStatus::Recorded, applies.to_string())
        }
    };
    Transcript {
        status,
        destinations: destinations(d),
        document: document.to_string(),
        why,
    }
}

fn unknown(document: &str, why: String) -> Transcript {
    Transcript {
        status: TranscriptStatus::Unknown,
        destinations: Vec::new(),
        document: document.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape AWS documents for the preferences, with both destinations.
    const FULL: &str = r#"{
      "schemaVersion": "1.0",
      "description": "Document to hold regional settings for Session Manager",
      "sessionType": "Standard_Stream",
      "inputs": {
        "s3BucketName": "audit-session-logs",
        "s3KeyPrefix": "ssm/",
        "s3EncryptionEnabled": true,
        "cloudWatchLogGroupName": "/ssm/sessions",
        "cloudWatchEncryptionEnabled": "true",
        "cloudWatchStreamingEnabled": false,
        "idleSessionTimeout": "20",
        "maxSessionDuration": 60,
        "kmsKeyId": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "runAsEnabled": true,
        "runAsDefaultUser": "auditor",
        "shellProfile": { "windows": "", "linux": "" }
      }
    }"#;

    #[test]
    fn every_setting_is_read_whatever_its_json_type() {
        let d = parse(PREFERENCES_DOCUMENT, FULL);
        assert_eq!(d.status, ReadStatus::Read);
        assert_eq!(d.session_type.as_deref(), Some("Standard_Stream"));
        assert!(d.has_inputs);
        assert_eq!(d.logging, Logging::S3AndCloudWatch);
        assert_eq!(d.s3_bucket.as_deref(), Some("audit-session-logs"));
        assert_eq!(d.s3_key_prefix.as_deref(), Some("ssm/"));
        assert_eq!(d.s3_encryption, Some(true));
        assert_eq!(d.cloudwatch_log_group.as_deref(), Some("/ssm/sessions"));
        assert_eq!(d.cloudwatch_encryption, Some(true));
        assert_eq!(d.cloudwatch_streaming, Some(false));
        assert_eq!(d.idle_timeout_minutes, Some(20));
        assert_eq!(d.max_duration_minutes, Some(60));
        assert!(d.kms_key_id.as_deref().unwrap().ends_with("1234567890ab"));
        assert_eq!(d.run_as_enabled, Some(true));
        assert_eq!(d.run_as_user.as_deref(), Some("auditor"));
        assert_eq!(
            destinations(&d),
            ["s3://audit-session-logs/ssm/", "cloudwatch:/ssm/sessions"]
        );
    }

    #[test]
    fn empty_destinations_log_nowhere_and_one_is_enough() {
        let none = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"","cloudWatchLogGroupName":"  ","idleSessionTimeout":"20","maxSessionDuration":""}}"#;
        let d = parse(PREFERENCES_DOCUMENT, none);
        assert_eq!(d.logging, Logging::None);
        assert_eq!(d.max_duration_minutes, None);
        let cw = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"","cloudWatchLogGroupName":"/ssm/x"}}"#;
        assert_eq!(parse(PREFERENCES_DOCUMENT, cw).logging, Logging::CloudWatch);
        let s3 = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"b"}}"#;
        assert_eq!(parse(PREFERENCES_DOCUMENT, s3).logging, Logging::S3);
    }

    #[test]
    fn a_parameter_or_a_bad_shape_is_unknown_never_off() {
        let p = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"{{ bucket }}","cloudWatchLogGroupName":""}}"#;
        assert_eq!(parse("Custom", p).logging, Logging::Unknown);
        // Parameterized bucket but a real log group: it logs to CloudWatch at least.
        let p = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"{{bucket}}","cloudWatchLogGroupName":"/g"}}"#;
        assert_eq!(parse("Custom", p).logging, Logging::CloudWatch);
        let list = r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":["a"]}}"#;
        assert_eq!(parse("Custom", list).logging, Logging::Unknown);
        for bad in ["", "not json", "[1,2]", "\"text\""] {
            let d = parse("Custom", bad);
            assert_eq!(d.status, ReadStatus::Failed, "{bad:?}");
            assert_eq!(d.logging, Logging::Unknown);
        }
        let no_inputs = r#"{"schemaVersion":"1.0","sessionType":"InteractiveCommands","parameters":{"command":{"type":"String"}}}"#;
        let d = parse("AWS-StartInteractiveCommand", no_inputs);
        assert!(!d.has_inputs);
        assert_eq!(d.logging, Logging::Unknown);
    }

    fn prefs(json: &str) -> DocumentPosture {
        parse(PREFERENCES_DOCUMENT, json)
    }

    #[test]
    fn which_settings_apply_to_a_session() {
        let logs = prefs(FULL);
        let off = never_saved();
        let unreadable = DocumentPosture::unknown(
            PREFERENCES_DOCUMENT,
            ReadStatus::NotReadable,
            Some("not readable: grant ssm:GetDocument".into()),
        );
        // The default shell: the region's preferences.
        assert_eq!(
            transcript(None, false, &logs, &[]).status,
            TranscriptStatus::Recorded
        );
        let t = transcript(None, false, &off, &[]);
        assert_eq!(t.status, TranscriptStatus::None);
        assert!(t.why.contains("never saved"), "{}", t.why);
        assert_eq!(
            transcript(None, false, &unreadable, &[]).status,
            TranscriptStatus::Unknown,
            "unreadable is never 'no logging'"
        );
        // A tunnel: not this question.
        assert_eq!(
            transcript(Some("AWS-StartSSHSession"), true, &off, &[]).status,
            TranscriptStatus::NotCaptured
        );
        // A custom shell document logs by its own settings, whatever the region's.
        let quiet = parse(
            "Quiet-Shell",
            r#"{"sessionType":"Standard_Stream","inputs":{"s3BucketName":"","cloudWatchLogGroupName":""}}"#,
        );
        let t = transcript(
            Some("Quiet-Shell"),
            false,
            &logs,
            std::slice::from_ref(&quiet),
        );
        assert_eq!(t.status, TranscriptStatus::None);
        assert_eq!(t.document, "Quiet-Shell");
        let loud = parse(
            "Loud-Shell",
            r#"{"sessionType":"Standard_Stream","inputs":{"cloudWatchLogGroupName":"/x"}}"#,
        );
        assert_eq!(
            transcript(Some("Loud-Shell"), false, &off, &[loud]).status,
            TranscriptStatus::Recorded
        );
        // A custom Port document is a tunnel too.
        let port = parse("My-Tunnel", r#"{"sessionType":"Port","properties":{}}"#);
        assert_eq!(
            transcript(Some("My-Tunnel"), false, &off, &[port]).status,
            TranscriptStatus::NotCaptured
        );
        // A document without settings: off only if the region logs nowhere too.
        let ic = parse(
            "AWS-StartInteractiveCommand",
            r#"{"sessionType":"InteractiveCommands","properties":{}}"#,
        );
        assert_eq!(
            transcript(
                Some("AWS-StartInteractiveCommand"),
                false,
                &off,
                std::slice::from_ref(&ic)
            )
            .status,
            TranscriptStatus::None
        );
        assert_eq!(
            transcript(
                Some("AWS-StartInteractiveCommand"),
                false,
                &logs,
                std::slice::from_ref(&ic)
            )
            .status,
            TranscriptStatus::Unknown
        );
        assert_eq!(
            transcript(
                Some("AWS-StartInteractiveCommand"),
                false,
                &unreadable,
                &[ic]
            )
            .status,
            TranscriptStatus::Unknown
        );
        // A document not read: unknown.
        assert_eq!(
            transcript(Some("Never-Read"), false, &off, &[]).status,
            TranscriptStatus::Unknown
        );
    }
}
