//! A small hand-built report for the writers' tests: fixed times, every
//! coverage status, and hostile text in the caller-chosen fields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::*;

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn region(status: RegionStatus, events: u64, pages: u64, error: Option<&str>) -> RegionCoverage {
    RegionCoverage {
        events,
        pages,
        retries: if status == RegionStatus::Failed { 4 } else { 1 },
        throttles: if status == RegionStatus::Failed { 3 } else { 0 },
        malformed: 0,
        duplicates: 0,
        error: error.map(str::to_string),
        ..RegionCoverage::new(status)
    }
}

fn event(account: &str, time: &str, name: &str, id: &str) -> SessionEvent {
    SessionEvent {
        account_id: account.into(),
        region: "us-east-1".into(),
        event_time: t(time),
        event_name: name.into(),
        event_id: id.into(),
        session_id: None,
        principal_type: "AssumedRole".into(),
        principal_arn: format!("arn:aws:sts::{account}:assumed-role/Admin/alice"),
        actor: format!("arn:aws:iam::{account}:role/Admin"),
        principal_account_id: Some(account.into()),
        user_name: Some("alice".into()),
        session_issuer_arn: Some(format!("arn:aws:iam::{account}:role/Admin")),
        access_key_id: Some("ASIAEXAMPLEALICE0001".into()),
        mfa_authenticated: Some(true),
        instance_role: false,
        source_ip: Some("198.51.100.4".into()),
        user_agent: Some("aws-cli/2.15.0".into()),
        target: None,
        document_name: None,
        reason: None,
        error_code: None,
        error_message: None,
        parse_error: None,
    }
}

pub(crate) fn account(
    id: &str,
    name: &str,
    coverage: AccountCoverage,
    flags: Vec<FlagCount>,
) -> AccountReport {
    let max_severity = flags.iter().map(|f| f.severity).max();
    AccountReport {
        account_id: id.into(),
        account_name: name.into(),
        state: if coverage.status == AccountStatus::Skipped {
            "SUSPENDED".into()
        } else {
            "ACTIVE".into()
        },
        coverage,
        events: 0,
        sessions: 0,
        principals: 0,
        flags,
        max_severity,
    }
}

pub(crate) fn flag(flag: Flag, count: u64) -> FlagCount {
    FlagCount {
        flag,
        severity: flag.default_severity(),
        count,
    }
}

pub(crate) fn report() -> Report {
    const PROD: &str = "111111111111";
    const DEV: &str = "222222222222";

    let e1 = SessionEvent {
        principal_type: "Root".into(),
        principal_arn: format!("arn:aws:iam::{PROD}:root"),
        actor: format!("arn:aws:iam::{PROD}:root"),
        user_name: None,
        session_issuer_arn: None,
        session_id: Some("root-0a1b2c3d4e5f60718".into()),
        source_ip: Some("203.0.113.9".into()),
        user_agent: Some("=HYPERLINK(\"http://evil.example/\",\"click\")".into()),
        target: Some("i-0123456789abcdef0".into()),
        ..event(
            PROD,
            "2025-02-19T20:13:49Z",
            "StartSession",
            "0f6a1c43-0001-4e4b-9d0e-000000000001",
        )
    };
    let e2 = SessionEvent {
        session_id: e1.session_id.clone(),
        principal_type: "Root".into(),
        principal_arn: e1.principal_arn.clone(),
        actor: e1.actor.clone(),
        user_name: None,
        session_issuer_arn: None,
        source_ip: Some("203.0.113.9".into()),
        ..event(
            PROD,
            "2025-02-19T20:23:49Z",
            "TerminateSession",
            "0f6a1c43-0002-4e4b-9d0e-000000000002",
        )
    };
    let e3 = SessionEvent {
        session_id: Some("alice-07f3e2d1c0b9a8765".into()),
        target: Some("i-0fedcba9876543210".into()),
        document_name: Some("AWS-StartPortForwardingSession".into()),
        user_agent: Some("aws-cli/2.15.0 \x1b]0;pwned\x07\x1b[2J".into()),
        ..event(
            PROD,
            "2025-02-22T03:05:00Z",
            "StartSession",
            "0f6a1c43-0003-4e4b-9d0e-000000000003",
        )
    };
    let e4 = SessionEvent {
        session_id: e3.session_id.clone(),
        source_ip: Some("192.0.2.77".into()),
        user_agent: Some("-cmd|' /C calc'!A0".into()),
        ..event(
            PROD,
            "2025-02-22T03:40:12Z",
            "ResumeSession",
            "0f6a1c43-0004-4e4b-9d0e-000000000004",
        )
    };
    let e5 = SessionEvent {
        region: "us-east-1".into(),
        principal_type: "IAMUser".into(),
        principal_arn: format!("arn:aws:iam::{DEV}:user/bob"),
        actor: format!("arn:aws:iam::{DEV}:user/bob"),
        access_key_id: Some("AKIAEXAMPLEBOB000001".into()),
        user_name: Some("bob".into()),
        session_issuer_arn: None,
        mfa_authenticated: Some(false),
        target: Some("i-0aaaabbbbccccdddd".into()),
        error_code: Some("AccessDenied".into()),
        error_message: Some(
            "User: arn:aws:iam::222222222222:user/bob is not authorized to perform: ssm:StartSession,\nsee \"policy\""
                .into(),
        ),
        ..event(DEV, "2025-02-20T10:00:00Z", "StartSession", "0f6a1c43-0005-4e4b-9d0e-000000000005")
    };

    let root_session = Session {
        session_id: "root-0a1b2c3d4e5f60718".into(),
        account_id: PROD.into(),
        region: "us-east-1".into(),
        principal_arn: e1.principal_arn.clone(),
        principal_type: "Root".into(),
        actor: e1.actor.clone(),
        target: e1.target.clone(),
        document_name: None,
        start_time: Some(e1.event_time),
        start_event_id: Some(e1.event_id.clone()),
        start_source_ip: e1.source_ip.clone(),
        resumes: vec![],
        end_time: Some(e2.event_time),
        end_event_id: Some(e2.event_id.clone()),
        duration_seconds: Some(600),
        source_ips: vec!["203.0.113.9".into()],
        event_ids: vec![e1.event_id.clone(), e2.event_id.clone()],
        ..Session::default()
    };
    let alice_session = Session {
        session_id: "alice-07f3e2d1c0b9a8765".into(),
        account_id: PROD.into(),
        region: "us-east-1".into(),
        principal_arn: e3.principal_arn.clone(),
        principal_type: "AssumedRole".into(),
        actor: e3.actor.clone(),
        target: e3.target.clone(),
        document_name: e3.document_name.clone(),
        start_time: Some(e3.event_time),
        start_event_id: Some(e3.event_id.clone()),
        start_source_ip: e3.source_ip.clone(),
        resumes: vec![Resume {
            time: e4.event_time,
            event_id: e4.event_id.clone(),
            source_ip: e4.source_ip.clone(),
        }],
        end_time: None,
        end_event_id: None,
        duration_seconds: None,
        source_ips: vec!["192.0.2.77".into(), "198.51.100.4".into()],
        event_ids: vec![e3.event_id.clone(), e4.event_id.clone()],
        ..Session::default()
    };

    let findings = vec![
        Finding {
            flag: Flag::RootSession,
            severity: Severity::Critical,
            account_id: PROD.into(),
            region: "us-east-1".into(),
            actor: e1.actor.clone(),
            principal_arn: e1.principal_arn.clone(),
            session_id: Some(root_session.session_id.clone()),
            event_ids: vec![e1.event_id.clone()],
            detail: "StartSession as the root user".into(),
        },
        Finding {
            flag: Flag::PortForwarding,
            severity: Severity::Medium,
            account_id: PROD.into(),
            region: "us-east-1".into(),
            actor: e3.actor.clone(),
            principal_arn: e3.principal_arn.clone(),
            session_id: Some(alice_session.session_id.clone()),
            event_ids: vec![e3.event_id.clone()],
            detail: "tunnel document AWS-StartPortForwardingSession".into(),
        },
        Finding {
            flag: Flag::ResumeFromNewIp,
            severity: Severity::Medium,
            account_id: PROD.into(),
            region: "us-east-1".into(),
            actor: e3.actor.clone(),
            principal_arn: e3.principal_arn.clone(),
            session_id: Some(alice_session.session_id.clone()),
            event_ids: vec![e4.event_id.clone()],
            detail: "resumed from 192.0.2.77, started from 198.51.100.4".into(),
        },
        Finding {
            flag: Flag::OffHours,
            severity: Severity::Low,
            account_id: PROD.into(),
            region: "us-east-1".into(),
            actor: e3.actor.clone(),
            principal_arn: e3.principal_arn.clone(),
            session_id: Some(alice_session.session_id.clone()),
            event_ids: vec![e3.event_id.clone(), e4.event_id.clone()],
            detail: "=2 calls outside business hours (Sat 03:05 UTC)".into(),
        },
    ];

    let ok = |events, pages| region(RegionStatus::Ok, events, pages, None);
    let mut prod = account(
        PROD,
        "prod",
        AccountCoverage::from_regions(BTreeMap::from([
            ("eu-west-1".to_string(), ok(0, 1)),
            ("us-east-1".to_string(), ok(4, 3)),
        ])),
        vec![
            flag(Flag::RootSession, 1),
            flag(Flag::OffHours, 1),
            flag(Flag::PortForwarding, 1),
            flag(Flag::ResumeFromNewIp, 1),
        ],
    );
    prod.events = 4;
    prod.sessions = 2;
    prod.principals = 2;
    let mut dev = account(
        DEV,
        "dev\x1b[31m team",
        AccountCoverage::from_regions(BTreeMap::from([
            (
                "ap-south-2".to_string(),
                region(RegionStatus::NotEnabled, 0, 0, None),
            ),
            (
                "eu-west-1".to_string(),
                region(
                    RegionStatus::Failed,
                    0,
                    2,
                    Some("ThrottlingException: Rate exceeded"),
                ),
            ),
            ("us-east-1".to_string(), ok(1, 1)),
        ])),
        vec![],
    );
    dev.events = 1;
    dev.principals = 1;
    let legacy = account(
        "333333333333",
        "legacy",
        AccountCoverage {
            status: AccountStatus::Failed,
            reason: Some("AssumeRole denied: AccessDenied".into()),
            regions: BTreeMap::new(),
        },
        vec![],
    );
    let closed = account(
        "444444444444",
        "closed",
        AccountCoverage {
            status: AccountStatus::Skipped,
            reason: Some("account is SUSPENDED".into()),
            regions: BTreeMap::new(),
        },
        vec![],
    );
    let quiet = account(
        "555555555555",
        "quiet",
        AccountCoverage::from_regions(BTreeMap::from([("us-east-1".to_string(), ok(0, 1))])),
        vec![],
    );

    Report {
        schema: REPORT_SCHEMA.into(),
        run: RunInfo {
            tool_version: "0.1.0".into(),
            started_at: t("2025-03-01T12:00:00Z"),
            finished_at: t("2025-03-01T12:03:30Z"),
            window: RunWindow {
                start: t("2025-02-22T12:00:00Z"),
                end: t("2025-03-01T12:00:00Z"),
                settled_until: t("2025-03-01T12:00:00Z"),
                partition_starts: BTreeMap::new(),
                account_starts: BTreeMap::new(),
            },
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            event_names: DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect(),
            source: "lookup-events".into(),
            organization_id: Some("o-exampleorg1".into()),
            caller_arn: Some("arn:aws:sts::999999999999:assumed-role/Audit/ci".into()),
            config_digest: "0".repeat(64),
            complete: false,
            incomplete_reasons: vec!["1 partial and 1 failed account(s) were not fully read".into()],
            interrupted: false,
            trail: None,
            athena: None,
            session_manager: None,
            previous: None,
            continuation: None,
            security_hub: None,
            stats: RunStats {
                accounts_total: 5,
                accounts_scanned: 4,
                partitions: 6,
                calls: 12,
                pages: 9,
                files: 0,
                throttles: 3,
                retries: 5,
                events: 5,
                malformed: 0,
                duplicates: 0,
                already_reported: 0,
            },
        },
        accounts: vec![prod, dev, legacy, closed, quiet],
        findings,
        sessions: vec![alice_session, root_session],
        events: vec![e1, e2, e5, e3, e4],
    }
}

/// [`report`] as a live scan with Session Manager's records would make it:
/// prod's us-east-1 logs to S3 and CloudWatch, prod's eu-west-1 never saved
/// preferences, dev's us-east-1 is not readable; alice's session is still
/// connected and history gave nothing else.
pub(crate) fn report_with_posture() -> Report {
    use crate::model::{
        DocumentPosture, HistoryRead, Logging, ReadStatus, SessionManagerPosture, Transcript,
        TranscriptStatus,
    };
    let mut r = report();
    let posture = |prefs: DocumentPosture, history: ReadStatus, active: u64| {
        let mut p = SessionManagerPosture {
            read_at: t("2025-03-01T12:00:05Z"),
            summary: String::new(),
            readable: false,
            preferences: prefs,
            documents: vec![],
            history: HistoryRead {
                status: history,
                error: (history == ReadStatus::NotReadable).then(|| {
                    "not readable: grant ssm:DescribeSessions to the audit role".to_string()
                }),
                since: t("2025-02-22T12:00:00Z"),
                active,
                history: 3,
                pages: 2,
            },
            compared: None,
            discrepancies: vec![],
            calls: 3,
            retries: 0,
            throttles: 0,
            records: vec![],
        };
        crate::ssm::finish(&mut p);
        p
    };
    let mut logs = DocumentPosture::unknown("SSM-SessionManagerRunShell", ReadStatus::Read, None);
    logs.has_inputs = true;
    logs.logging = Logging::S3AndCloudWatch;
    logs.s3_bucket = Some("=audit-logs".into());
    logs.cloudwatch_log_group = Some("/ssm/sessions".into());
    logs.s3_encryption = Some(true);
    logs.idle_timeout_minutes = Some(20);
    let denied = DocumentPosture::unknown(
        "SSM-SessionManagerRunShell",
        ReadStatus::NotReadable,
        Some("not readable: grant ssm:GetDocument to the audit role".into()),
    );
    let prod = &mut r.accounts[0].coverage.regions;
    prod.get_mut("us-east-1").unwrap().session_manager = Some(posture(logs, ReadStatus::Read, 1));
    prod.get_mut("eu-west-1").unwrap().session_manager = Some(posture(
        crate::ssm::document::never_saved(),
        ReadStatus::Read,
        0,
    ));
    let dev = r
        .accounts
        .iter_mut()
        .find(|a| a.account_id == "222222222222")
        .unwrap();
    dev.coverage
        .regions
        .get_mut("us-east-1")
        .unwrap()
        .session_manager = Some(posture(denied, ReadStatus::NotReadable, 0));
    let alice = &mut r.sessions[0];
    alice.active = true;
    alice.status = Some("Connected".into());
    alice.owner = Some(alice.principal_arn.clone());
    alice.access_type = Some("JustInTime".into());
    alice.reason = Some("@ticket".into());
    alice.transcript = Some(Transcript {
        status: TranscriptStatus::NotCaptured,
        destinations: vec![],
        document: "AWS-StartPortForwardingSession".into(),
        why: "a tunnel".into(),
    });
    let root = &mut r.sessions[1];
    root.real_end_time = root.end_time;
    root.end_source = Some(crate::model::EndSource::TerminateSession);
    r.run.session_manager = crate::ssm::join::run_summary(
        r.accounts
            .iter()
            .map(|a| (a.account_id.as_str(), &a.coverage)),
    );
    r
}
