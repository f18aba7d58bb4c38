//! Session Manager's own records in the simulated organization, derived from
//! the same plan as the CloudTrail records, so the two agree by construction:
//! every successful StartSession is a session in Session Manager's records
//! (its reason, target, document and owner from the call), ended at its
//! TerminateSession, or, when the plan has none, at an end only the history
//! knows. What the plan cannot imply is planted here: sessions still
//! connected, just-in-time ones, one history has and CloudTrail does not (and
//! the reverse), a custom shell document that logs nowhere, and per-partition
//! preferences (default: S3 and CloudWatch Logs, encrypted).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::DateTime;
use serde_json::{json, Value};

use crate::data::{office_ip, Planned, SessionPlan, World, CLI_AGENTS};
use crate::rng::{hash_str, Rng};
use crate::{SimPreferences, SsmPartitionTruth, SsmSessionTruth, SsmTruth};

/// The region's preferences document.
pub(crate) const PREFERENCES: &str = "SSM-SessionManagerRunShell";
/// The custom shell document planted with empty destinations.
pub(crate) const QUIET_DOCUMENT: &str = "Custom-QuietShell";
/// Session Manager keeps terminated sessions this long.
const RETENTION: i64 = 30 * 86_400;
const HOUR: i64 = 3_600;
const MIN: i64 = 60;

/// What the plan does not imply.
#[derive(Debug, Default)]
pub(crate) struct SsmPlanted {
    /// Sessions still connected (`Active`, `Connected`).
    pub active: BTreeSet<String>,
    /// Sessions of just-in-time node access.
    pub jit: BTreeSet<String>,
    /// Sessions without any CloudTrail record, per (account, region index).
    pub history_only: BTreeMap<(usize, usize), Vec<Hist>>,
    /// Sessions CloudTrail has that Session Manager's records lack.
    pub cloudtrail_only: BTreeSet<String>,
    /// Preferences other than the default, per (account, region index).
    pub preferences: BTreeMap<(usize, usize), SimPreferences>,
    /// Custom session documents: (account, region index) → name → content.
    pub documents: BTreeMap<(usize, usize), BTreeMap<String, String>>,
}

/// One session of Session Manager's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hist {
    pub id: String,
    pub active: bool,
    pub status: &'static str,
    pub start: i64,
    pub end: Option<i64>,
    pub target: String,
    pub document: String,
    pub owner: String,
    pub reason: Option<String>,
    pub access_type: &'static str,
}

/// The end of a session the plan does not terminate: 5 to 110 minutes after
/// its start, from its id (no draw from the plan's sequence).
fn unrecorded_end(sid: &str, start: i64) -> i64 {
    start + (5 + (hash_str(sid) % 106) as i64) * MIN
}

impl World {
    /// The partition's preferences.
    pub(crate) fn preferences(&self, a: usize, ri: usize) -> SimPreferences {
        let region = &self.cfg.regions[ri];
        self.cfg
            .ssm
            .preferences
            .iter()
            .rev()
            .find(|(ai, r, _)| *ai == a && r == region)
            .map(|p| p.2)
            .or_else(|| self.ssm.preferences.get(&(a, ri)).copied())
            .unwrap_or_default()
    }

    /// The audit role of account `a` lacks the Session Manager permissions.
    pub(crate) fn ssm_denied(&self, a: usize) -> bool {
        self.cfg.ssm.denied_accounts.contains(&a)
    }

    /// Where the default preferences send transcripts: (bucket, prefix), group.
    fn destinations(&self, a: usize, ri: usize) -> (Option<(String, String)>, Option<String>) {
        let acct = &self.org.accounts[a].id;
        let region = &self.cfg.regions[ri];
        let s3 = Some((format!("session-transcripts-{acct}"), format!("{region}/")));
        let cw = Some("/aws/ssm/session-transcripts".to_string());
        match self.preferences(a, ri) {
            SimPreferences::S3AndCloudWatch => (s3, cw),
            SimPreferences::CloudWatchOnly => (None, cw),
            SimPreferences::LogsNowhere | SimPreferences::NeverSaved => (None, None),
        }
    }

    /// The `Content` of a session document as `GetDocument` serves it in the
    /// partition, or `None` when it does not exist there.
    pub(crate) fn document(&self, a: usize, ri: usize, name: &str) -> Option<String> {
        if name == PREFERENCES {
            if self.preferences(a, ri) == SimPreferences::NeverSaved {
                return None;
            }
            let (s3, cw) = self.destinations(a, ri);
            let acct = &self.org.accounts[a].id;
            let region = &self.cfg.regions[ri];
            let (bucket, prefix) = s3.unwrap_or_default();
            return Some(
                json!({
                    "schemaVersion": "1.0",
                    "description": "Document to hold regional settings for Session Manager",
                    "sessionType": "Standard_Stream",
                    "inputs": {
                        "s3BucketName": bucket,
                        "s3KeyPrefix": prefix,
                        "s3EncryptionEnabled": true,
                        "cloudWatchLogGroupName": cw.unwrap_or_default(),
                        "cloudWatchEncryptionEnabled": true,
                        "cloudWatchStreamingEnabled": true,
                        "idleSessionTimeout": "20",
                        "maxSessionDuration": "",
                        "kmsKeyId": format!("arn:aws:kms:{region}:{acct}:key/5e55a0d1-{:04x}-4c2b-9b1e-7d0c6a1f2e3d", a % 0xffff),
                        "runAsEnabled": false,
                        "runAsDefaultUser": "",
                        "shellProfile": { "windows": "", "linux": "" }
                    }
                })
                .to_string(),
            );
        }
        if let Some(c) = self
            .ssm
            .documents
            .get(&(a, ri))
            .and_then(|docs| docs.get(name))
        {
            return Some(c.clone());
        }
        aws_document(name)
    }

    /// Every session Session Manager's records hold for the partition at
    /// `now` (epoch seconds): the connected ones, and those that ended within
    /// the 30 days history keeps. Newest first.
    pub(crate) fn ssm_sessions(&self, a: usize, ri: usize, now: i64) -> Vec<Hist> {
        let plan = self.plan(a, ri);
        let mut ends: HashMap<&str, i64> = HashMap::new();
        for p in &plan {
            if p.name == "TerminateSession" && p.error.is_none() {
                if let Some(sid) = p.request.get("sessionId").and_then(Value::as_str) {
                    // The plan is newest first: the earliest Terminate ends it.
                    ends.insert(sid, p.time);
                }
            }
        }
        let mut out: Vec<Hist> = plan.iter().filter_map(|p| self.hist_of(p, &ends)).collect();
        if let Some(extra) = self.ssm.history_only.get(&(a, ri)) {
            out.extend(extra.iter().cloned());
        }
        out.retain(|h| h.active || h.start >= now - RETENTION);
        out.sort_by(|x, y| y.start.cmp(&x.start).then_with(|| x.id.cmp(&y.id)));
        out
    }

    fn hist_of(&self, p: &Planned, ends: &HashMap<&str, i64>) -> Option<Hist> {
        if p.name != "StartSession" || p.error.is_some() || p.malformed.is_some() {
            return None;
        }
        let sid = p.response.get("sessionId").and_then(Value::as_str)?;
        if self.ssm.cloudtrail_only.contains(sid) {
            return None;
        }
        let active = self.ssm.active.contains(sid);
        let text = |k: &str| p.request.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Hist {
            id: sid.to_string(),
            active,
            status: if active { "Connected" } else { "Terminated" },
            start: p.time,
            end: match active {
                true => None,
                false => Some(
                    ends.get(sid)
                        .copied()
                        .unwrap_or_else(|| unrecorded_end(sid, p.time)),
                ),
            },
            target: text("target").unwrap_or_default(),
            document: text("documentName").unwrap_or_else(|| PREFERENCES.to_string()),
            owner: p
                .identity
                .as_ref()
                .map(|i| i.arn.clone())
                .unwrap_or_default(),
            reason: text("reason"),
            access_type: if self.ssm.jit.contains(sid) {
                "JustInTime"
            } else {
                "Standard"
            },
        })
    }

    /// What Session Manager's records hold, for every reachable account and
    /// enabled region, at `now` (epoch seconds).
    pub(crate) fn ssm_truth(&self, now: i64) -> SsmTruth {
        let mut truth = SsmTruth::default();
        for a in 0..self.org.accounts.len() {
            if !self.org.reachable(a) {
                continue;
            }
            let mut regions = BTreeMap::new();
            for ri in 0..self.cfg.regions.len() {
                let region = &self.cfg.regions[ri];
                if !self.org.region_enabled(a, region) {
                    continue;
                }
                let (s3, cw) = self.destinations(a, ri);
                let sessions: BTreeMap<String, SsmSessionTruth> = self
                    .ssm_sessions(a, ri, now)
                    .into_iter()
                    .map(|h| {
                        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
                        (
                            h.id.clone(),
                            SsmSessionTruth {
                                state: if h.active { "Active" } else { "History" }.into(),
                                status: h.status.into(),
                                start: t(h.start),
                                end: h.end.map(t),
                                target: h.target,
                                document: h.document,
                                owner: h.owner,
                                reason: h.reason,
                                access_type: h.access_type.into(),
                            },
                        )
                    })
                    .collect();
                let cloudtrail_only: BTreeSet<String> = self
                    .plan(a, ri)
                    .iter()
                    .filter(|p| p.name == "StartSession" && p.error.is_none())
                    .filter_map(|p| p.response.get("sessionId").and_then(Value::as_str))
                    .filter(|sid| self.ssm.cloudtrail_only.contains(*sid))
                    .map(str::to_string)
                    .collect();
                let silent_documents = self
                    .ssm
                    .documents
                    .get(&(a, ri))
                    .map(|d| {
                        d.iter()
                            .filter(|(_, c)| logs_nowhere(c))
                            .map(|(n, _)| n.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                regions.insert(
                    region.clone(),
                    SsmPartitionTruth {
                        denied: self.ssm_denied(a),
                        preferences: self.preferences(a, ri),
                        s3: s3.map(|(b, p)| format!("s3://{b}/{p}")),
                        cloudwatch: cw,
                        history_only: self
                            .ssm
                            .history_only
                            .get(&(a, ri))
                            .map(|v| v.iter().map(|h| h.id.clone()).collect())
                            .unwrap_or_default(),
                        cloudtrail_only,
                        silent_documents,
                        sessions,
                    },
                );
            }
            truth
                .partitions
                .insert(self.org.accounts[a].id.clone(), regions);
        }
        truth
    }

    /// Plants the Session Manager cases of the demo, each in a reachable
    /// account whose audit role may read Session Manager, in the first region.
    pub(crate) fn plant_ssm(&mut self) {
        let n = self.org.accounts.len();
        let Some(region0) = self.cfg.regions.first().cloned() else {
            return;
        };
        let usable = |w: &World, a: usize| {
            w.org.reachable(a) && w.org.region_enabled(a, &region0) && !w.ssm_denied(a)
        };
        let day = self.planted_day();
        let at = |h: i64, m: i64| day + h * HOUR + m * MIN;
        let seed = self.cfg.seed;
        // The last moments of the window: a session opened 40 minutes before it ends.
        let recent = (self.we - 40 * MIN).max(self.ws);
        let mut pos = 2usize;
        let cases = [
            "active",
            "jit",
            "no-reason",
            "custom-doc",
            "history-only",
            "cloudtrail-only",
        ];
        for (ci, case) in cases.into_iter().enumerate() {
            let Some(a) = (0..n).map(|k| (pos + k) % n).find(|&a| usable(self, a)) else {
                return;
            };
            pos = a + 1;
            self.case_at.insert(case, (a, 0));
            let mut rng = Rng::from_parts(&[seed, a as u64, ci as u64, 0x55A1]);
            let mut s = SessionPlan {
                rng: Rng::from_parts(&[seed, a as u64, ci as u64, 0x55A2]),
                region: region0.clone(),
                ip: office_ip(&mut rng),
                ua: CLI_AGENTS[ci % CLI_AGENTS.len()].to_string(),
                target: self.instance(a, 0, 800 + ci as u64),
                reason: Some(format!("change CHG-{:04}", 200 + ci)),
                events: Vec::new(),
            };
            let user = match case {
                "active" => "on.call@example.com",
                "jit" => "jit.operator@example.com",
                "no-reason" => "quick.fix@example.com",
                "custom-doc" => "quiet.admin@example.com",
                "history-only" => "console.visitor@example.com",
                _ => "lost.client@example.com",
            };
            let t = match case {
                "active" => recent,
                "jit" => at(13, 40),
                "no-reason" => at(14, 20),
                "custom-doc" => at(15, 30),
                "history-only" => at(16, 5),
                _ => at(16, 45),
            };
            let id = self.sso_identity(&mut rng, a, user, "SSMOperator", t);
            match case {
                "active" => {
                    s.reason = Some("incident INC-2291: disk full".into());
                    let sid = s.session(&id, user, t, None, None, None);
                    self.ssm.active.insert(sid);
                }
                "jit" => {
                    s.reason = Some("approved just-in-time request JIT-77".into());
                    let sid = s.session(&id, user, t, None, Some(t + 20 * MIN), None);
                    self.ssm.jit.insert(sid);
                    // Its region logs to CloudWatch only.
                    self.ssm
                        .preferences
                        .insert((a, 0), SimPreferences::CloudWatchOnly);
                }
                "no-reason" => {
                    s.reason = None;
                    s.session(&id, user, t, None, Some(t + 10 * MIN), None);
                }
                "custom-doc" => {
                    let request = json!({ "target": s.target, "documentName": QUIET_DOCUMENT });
                    s.session(&id, user, t, None, Some(t + 15 * MIN), Some(request));
                    let content = json!({
                        "schemaVersion": "1.0",
                        "description": "A shell as ops, without transcripts",
                        "sessionType": "Standard_Stream",
                        "inputs": {
                            "s3BucketName": "",
                            "cloudWatchLogGroupName": "",
                            "runAsEnabled": true,
                            "runAsDefaultUser": "ops"
                        }
                    });
                    self.ssm
                        .documents
                        .entry((a, 0))
                        .or_default()
                        .insert(QUIET_DOCUMENT.into(), content.to_string());
                }
                "history-only" => {
                    let hist = Hist {
                        id: format!("{user}-{}", rng.hex(17)),
                        active: false,
                        status: "Terminated",
                        start: t,
                        end: Some(t + 30 * MIN),
                        target: s.target.clone(),
                        document: PREFERENCES.into(),
                        owner: id.arn.clone(),
                        reason: Some("checking a stuck deploy".into()),
                        access_type: "Standard",
                    };
                    self.ssm.history_only.entry((a, 0)).or_default().push(hist);
                }
                _ => {
                    let sid = s.session(&id, user, t, None, Some(t + 5 * MIN), None);
                    self.ssm.cloudtrail_only.insert(sid);
                }
            }
            self.planted.entry((a, 0)).or_default().extend(s.events);
        }
        // The unusual-region session ran where preferences were never saved.
        if let Some(&(a, ri)) = self.case_at.get("unusual-region") {
            self.ssm
                .preferences
                .insert((a, ri), SimPreferences::NeverSaved);
        }
    }
}

/// The document names neither an S3 bucket nor a log group.
fn logs_nowhere(content: &str) -> bool {
    let v: Value = serde_json::from_str(content).unwrap_or_default();
    let empty = |k: &str| v["inputs"][k].as_str().is_none_or(|s| s.trim().is_empty());
    v["inputs"].is_object() && empty("s3BucketName") && empty("cloudWatchLogGroupName")
}

/// The AWS-owned session documents, as every region serves them.
fn aws_document(name: &str) -> Option<String> {
    let v = match name {
        "AWS-StartInteractiveCommand" | "AWS-StartNonInteractiveCommand" => json!({
            "schemaVersion": "1.0",
            "description": "Document to run single interactive command on an instance",
            "sessionType": if name == "AWS-StartInteractiveCommand" { "InteractiveCommands" } else { "NonInteractiveCommands" },
            "parameters": { "command": { "type": "String", "description": "The command to run on the instance" } },
            "properties": {
                "windows": { "commands": "{{command}}", "runAsElevated": false },
                "linux": { "commands": "{{command}}", "runAsElevated": false },
                "macos": { "commands": "{{command}}", "runAsElevated": false }
            }
        }),
        "AWS-StartPortForwardingSession"
        | "AWS-StartPortForwardingSessionToRemoteHost"
        | "AWS-StartSSHSession" => json!({
            "schemaVersion": "1.0",
            "description": "Document to start a tunnel with Session Manager",
            "sessionType": "Port",
            "parameters": { "portNumber": { "type": "String", "default": "22" } },
            "properties": { "portNumber": "{{ portNumber }}" }
        }),
        _ => return None,
    };
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use chrono::TimeZone;

    fn demo() -> World {
        World::new(SimConfig {
            window_end: chrono::Utc
                .with_ymd_and_hms(2026, 11, 18, 15, 30, 0)
                .single()
                .unwrap_or_default(),
            latency: std::time::Duration::ZERO,
            jitter: std::time::Duration::ZERO,
            ..SimConfig::demo()
        })
    }

    #[test]
    fn history_agrees_with_the_cloudtrail_plan() {
        let w = demo();
        let now = w.we + 60;
        let mut unterminated = 0;
        for a in 0..w.org.accounts.len() {
            for ri in 0..w.cfg.regions.len() {
                let plan = w.plan(a, ri);
                let starts: BTreeSet<String> = plan
                    .iter()
                    .filter(|p| {
                        p.name == "StartSession" && p.error.is_none() && p.malformed.is_none()
                    })
                    .filter_map(|p| p.response["sessionId"].as_str().map(str::to_string))
                    .collect();
                let terminated: BTreeMap<String, i64> = plan
                    .iter()
                    .filter(|p| p.name == "TerminateSession")
                    .filter_map(|p| Some((p.request["sessionId"].as_str()?.to_string(), p.time)))
                    .collect();
                let hist = w.ssm_sessions(a, ri, now);
                let ids: BTreeSet<String> = hist.iter().map(|h| h.id.clone()).collect();
                let extra: BTreeSet<String> = w
                    .ssm
                    .history_only
                    .get(&(a, ri))
                    .map(|v| v.iter().map(|h| h.id.clone()).collect())
                    .unwrap_or_default();
                let expected: BTreeSet<String> = starts
                    .difference(&w.ssm.cloudtrail_only)
                    .cloned()
                    .chain(extra.iter().cloned())
                    .collect();
                assert_eq!(ids, expected, "{a}/{ri}");
                for h in &hist {
                    match (h.active, terminated.get(&h.id)) {
                        (true, t) => assert!(t.is_none() && h.end.is_none()),
                        (false, Some(t)) => assert_eq!(h.end, Some(*t)),
                        (false, None) => {
                            unterminated += 1;
                            let end = h.end.unwrap();
                            assert!(end > h.start && end - h.start <= 110 * MIN && end < w.we);
                        }
                    }
                }
            }
        }
        assert!(
            unterminated > 5,
            "sessions whose end only history knows: {unterminated}"
        );
        assert_eq!(w.ssm.active.len(), 1);
        assert_eq!(w.ssm.jit.len(), 1);
        assert_eq!(w.ssm.cloudtrail_only.len(), 1);
    }

    #[test]
    fn preferences_and_documents() {
        let w = demo();
        let (a, ri) = w.case_at["unusual-region"];
        assert_eq!(w.preferences(a, ri), SimPreferences::NeverSaved);
        assert_eq!(w.document(a, ri, PREFERENCES), None);
        let (j, _) = w.case_at["jit"];
        let content = w.document(j, 0, PREFERENCES).unwrap();
        let v: Value = serde_json::from_str(&content).unwrap();
        assert_eq!(v["inputs"]["s3BucketName"], "");
        assert_eq!(
            v["inputs"]["cloudWatchLogGroupName"],
            "/aws/ssm/session-transcripts"
        );
        let v: Value = serde_json::from_str(&w.document(1, 1, PREFERENCES).unwrap()).unwrap();
        assert!(v["inputs"]["s3BucketName"]
            .as_str()
            .unwrap()
            .starts_with("session-transcripts-"));
        let (c, _) = w.case_at["custom-doc"];
        assert!(logs_nowhere(&w.document(c, 0, QUIET_DOCUMENT).unwrap()));
        assert_eq!(w.document(1, 0, QUIET_DOCUMENT), None, "only where planted");
        assert!(w.document(1, 0, "AWS-StartInteractiveCommand").is_some());
        assert_eq!(w.document(1, 0, "No-Such-Doc"), None);
        assert!(!w.ssm_denied(1) && w.ssm_denied(6));
        // No planted Session Manager case is in the account that may not read it.
        for case in [
            "active",
            "jit",
            "no-reason",
            "custom-doc",
            "history-only",
            "cloudtrail-only",
        ] {
            assert_ne!(w.case_at[case].0, 6, "{case}");
        }
    }
}
