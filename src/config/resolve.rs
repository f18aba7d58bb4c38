//! Merging defaults, the file and the flags, and validating the result into
//! each module's own settings.

use super::*;

/// Picks the flag, else the file's key, remembering which one it was.
pub(super) struct Layers<'a> {
    file: Option<&'a Path>,
}

impl Layers<'_> {
    pub(super) fn key(&self, key: &str) -> Origin {
        Origin::Key {
            file: self.file.map(Path::to_path_buf),
            key: key.to_string(),
        }
    }

    pub(super) fn pick<T>(
        &self,
        flag: Option<T>,
        flag_name: &'static str,
        file: Option<T>,
        key: &'static str,
    ) -> Option<(T, Origin)> {
        match (flag, file) {
            (Some(v), _) => Some((v, Origin::Flag(flag_name))),
            (None, Some(v)) => Some((v, self.key(key))),
            (None, None) => None,
        }
    }

    pub(super) fn file_only<T>(&self, file: Option<T>, key: &'static str) -> Option<(T, Origin)> {
        file.map(|v| (v, self.key(key)))
    }

    /// The value and origin, or the default with `Origin::Default`.
    pub(super) fn or_default<T>(
        picked: Option<(T, Origin)>,
        default: T,
        key: &'static str,
    ) -> (T, Origin) {
        picked.unwrap_or((default, Origin::Default(key)))
    }
}

/// Merges flags over the file over the defaults and validates the result.
/// `now` anchors `since` and the checks on the window.
pub fn resolve(
    flags: &FlagValues,
    file: Option<&FileConfig>,
    now: DateTime<Utc>,
) -> Result<Config, ConfigError> {
    let empty = FileConfig::default();
    let fc = file.unwrap_or(&empty);
    let l = Layers {
        file: fc.path.as_deref(),
    };

    let athena = resolve_athena(flags, &fc.athena, &l)?;
    let source = match &flags.source {
        // `--source athena` alone takes `[athena] table`.
        Some(s) if s.trim().eq_ignore_ascii_case("athena") => match &athena.table {
            Some(t) => Source::Athena {
                database: t.database.clone(),
                table: t.table.clone(),
            },
            None => {
                return Err(invalid(
                    &Origin::Flag("--source"),
                    s,
                    "no table: `athena` needs a table",
                    "give --source athena:DATABASE.TABLE, or set table in [athena]",
                ))
            }
        },
        Some(s) => parse_source(s, &Origin::Flag("--source"))?,
        None => Source::LookupEvents,
    };

    let scan = resolve_scan(flags, &fc.scan, &l, &source, now)?;
    let accounts = resolve_accounts(flags, &fc.accounts, &l)?;
    let rules = resolve_rules(&fc.rules, &l)?;
    let report = resolve_report(flags, &fc.report, &l, scan.since_last)?;

    Ok(Config {
        scan: ScanConfig { source, ..scan },
        accounts,
        rules,
        report,
        athena,
        baseline: flags.baseline.clone(),
        config_file: fc.path.clone().or_else(|| flags.config.clone()),
    })
}

pub(super) fn resolve_athena(
    flags: &FlagValues,
    fa: &FileAthena,
    l: &Layers<'_>,
) -> Result<crate::source::athena::AthenaConfig, ConfigError> {
    use crate::source::athena::{AthenaConfig, TableRef};
    let mut out = AthenaConfig::default();
    if let Some((t, origin)) = l.file_only(fa.table.as_deref(), "athena.table") {
        out.table = Some(TableRef::parse(t).map_err(|p| {
            invalid(
                &origin,
                t,
                p,
                "write DATABASE.TABLE, e.g. \"audit.org_trail\"",
            )
        })?);
    }
    if let Some((w, origin)) = l.file_only(fa.workgroup.as_deref(), "athena.workgroup") {
        let ok = (1..=128).contains(&w.len())
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(invalid(
                &origin,
                w,
                "not an Athena workgroup name",
                "use 1 to 128 letters, digits, '.', '_' or '-', e.g. primary",
            ));
        }
        out.workgroup = w.to_string();
    }
    if let Some((c, origin)) = l.file_only(fa.catalog.as_deref(), "athena.catalog") {
        let ok = (1..=256).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'));
        if !ok {
            return Err(invalid(
                &origin,
                c,
                "not a data catalog name",
                "use AwsDataCatalog, or your catalog's name",
            ));
        }
        out.catalog = c.to_string();
    }
    if let Some((o, origin)) = l.file_only(fa.output.as_deref(), "athena.output") {
        let o = o.trim();
        let bucket = o
            .strip_prefix("s3://")
            .map(|r| r.split('/').next().unwrap_or(""));
        let ok = bucket.is_some_and(|b| {
            (3..=63).contains(&b.len())
                && b.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        }) && !o.chars().any(char::is_control);
        if !ok {
            return Err(invalid(
                &origin,
                o,
                "not an s3:// location",
                "write s3://bucket/prefix/ for Athena's result files",
            ));
        }
        out.output = Some(o.to_string());
    }
    if let Some((r, origin)) = l.file_only(fa.region.as_deref(), "athena.region") {
        if !is_region_name(r.trim()) {
            return Err(invalid(
                &origin,
                r,
                "not a region name",
                "write the region Athena runs in, e.g. us-east-1",
            ));
        }
        out.region = Some(r.trim().to_string());
    }
    if let Some((t, origin)) = l.file_only(fa.trail.as_deref(), "athena.trail") {
        out.trail = Some(crate::source::athena::ddl::parse_trail_url(t).map_err(|e| {
            invalid(
                &origin,
                t,
                e.to_string(),
                "write s3://bucket/[prefix/]AWSLogs/o-…/",
            )
        })?);
    }
    if let Some((m, origin)) = l.pick(
        flags.max_scan.as_deref(),
        "--max-scan",
        fa.max_scan.as_deref(),
        "athena.max_scan",
    ) {
        out.max_scan = Some(
            crate::source::athena::cost::parse_size(m)
                .map_err(|p| invalid(&origin, m, p, "write a size such as 500MB, 10GB or 1TB"))?,
        );
    }
    Ok(out)
}

pub(super) fn resolve_scan(
    flags: &FlagValues,
    fs: &FileScan,
    l: &Layers<'_>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<ScanConfig, ConfigError> {
    let regions = match l.pick(
        flags.regions.clone(),
        "--regions",
        fs.regions.clone(),
        "scan.regions",
    ) {
        Some((list, origin)) => parse_region_selection(&list, &origin)?,
        None => RegionSelection::All,
    };

    let event_names = match l.file_only(fs.event_names.clone(), "scan.event_names") {
        Some((names, origin)) => parse_event_names(&names, &origin)?,
        None => crate::model::DEFAULT_EVENT_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    let (window, since_last) = resolve_window(flags, fs, l, source, now)?;

    // Not given: the run sizes its bound itself; given, it caps that bound.
    let concurrency = match l.pick(
        flags.concurrency.map(|c| c as i64),
        "--concurrency",
        fs.concurrency,
        "scan.concurrency",
    ) {
        None => None,
        Some((c, _)) if (1..=MAX_CONCURRENCY as i64).contains(&c) => Some(c as usize),
        Some((c, origin)) => {
            return Err(invalid(
                &origin,
                c,
                format!("calls in flight must be from 1 to {MAX_CONCURRENCY}"),
                "use a number such as 64, or leave it out and the scan sizes it itself".to_string(),
            ))
        }
    };

    let (lookup_rate, origin) = Layers::or_default(
        l.pick(
            flags.lookup_rate,
            "--lookup-rate",
            fs.lookup_rate,
            "scan.lookup_rate",
        ),
        DEFAULT_LOOKUP_RATE,
        "scan.lookup_rate",
    );
    // Written this way so NaN is refused too.
    if !(lookup_rate >= MIN_LOOKUP_RATE && lookup_rate <= MAX_LOOKUP_RATE) {
        return Err(invalid(
            &origin,
            lookup_rate,
            format!(
                "LookupEvents calls per second per account and region must be at least {MIN_LOOKUP_RATE} and at most {MAX_LOOKUP_RATE}"
            ),
            "CloudTrail allows 2 per second; use 2.0",
        ));
    }

    let call_timeout = duration_key(
        l.file_only(fs.call_timeout.as_deref(), "scan.call_timeout"),
        DEFAULT_CALL_TIMEOUT,
        "scan.call_timeout",
    )?;
    let retry_deadline = duration_key(
        l.file_only(fs.retry_deadline.as_deref(), "scan.retry_deadline"),
        DEFAULT_RETRY_DEADLINE,
        "scan.retry_deadline",
    )?;
    // Zero is allowed: a caller who knows its source is settled (a trail copy
    // made long ago) may say so.
    let (settle_text, settle_origin) = Layers::or_default(
        l.file_only(fs.settle.as_deref(), "scan.settle"),
        DEFAULT_SETTLE,
        "scan.settle",
    );
    let settle = parse_duration_at(settle_text, &settle_origin)?;
    let settled_until = settled_point(window, now, settle);

    Ok(ScanConfig {
        regions,
        event_names,
        window,
        resolved_at: now,
        settle,
        settled_until,
        since_last,
        plan: crate::chain::Plan::default(),
        concurrency,
        lookup_rate,
        call_timeout,
        retry_deadline,
        source: source.clone(),
        session_manager: fs.session_manager.unwrap_or(true),
    })
}

/// `min(end, now - settle)`, never before the start, in whole seconds (CloudTrail's
/// event times are whole seconds, and a next window starts exactly here).
pub fn settled_point(window: TimeWindow, now: DateTime<Utc>, settle: Duration) -> DateTime<Utc> {
    let settle = TimeDelta::from_std(settle).unwrap_or(TimeDelta::MAX);
    let point = now.checked_sub_signed(settle).unwrap_or(window.start);
    let point = DateTime::from_timestamp(point.timestamp(), 0).unwrap_or(point);
    point.clamp(window.start, window.end.max(window.start))
}

/// The window comes from the flags if any window flag is given (the file's
/// window is then ignored as a whole), else from the file, else `since = 7d`.
/// `since = last` gives a window that ends now and starts there (the binary
/// moves its start to where the last run was settled), and `true`.
pub(super) fn resolve_window(
    flags: &FlagValues,
    fs: &FileScan,
    l: &Layers<'_>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<(TimeWindow, bool), ConfigError> {
    type Part<'a> = Option<(&'a str, Origin)>;
    let from_flags = flags.since.is_some() || flags.start.is_some() || flags.end.is_some();
    let (since, start, end): (Part, Part, Part) = if from_flags {
        (
            flags.since.as_deref().map(|v| (v, Origin::Flag("--since"))),
            flags.start.as_deref().map(|v| (v, Origin::Flag("--start"))),
            flags.end.as_deref().map(|v| (v, Origin::Flag("--end"))),
        )
    } else {
        (
            fs.since.as_deref().map(|v| (v, l.key("scan.since"))),
            fs.start.as_deref().map(|v| (v, l.key("scan.start"))),
            fs.end.as_deref().map(|v| (v, l.key("scan.end"))),
        )
    };
    let either_fix = |o: &Origin| {
        if o.is_flag() {
            "give either --since DURATION, or --start TIME with an optional --end TIME".to_string()
        } else {
            "set either since, or start with an optional end".to_string()
        }
    };
    if let (Some((_, a)), Some((_, b))) = (&since, &start) {
        return Err(ConfigError::Conflict {
            first: a.clone(),
            second: b.clone(),
            fix: either_fix(a),
        });
    }
    if let (Some((_, a)), Some((_, b))) = (&since, &end) {
        return Err(ConfigError::Conflict {
            first: a.clone(),
            second: b.clone(),
            fix: either_fix(a),
        });
    }

    let (window, start_origin) = match (since, start, end) {
        (_, None, Some((v, origin))) => {
            let fix = if origin.is_flag() {
                "add --start TIME, or use --since DURATION"
            } else {
                "add start, or use since"
            };
            return Err(invalid(&origin, v, "an end needs a start", fix));
        }
        (_, Some((start_text, start_origin)), end) => {
            let start = parse_time(start_text, &start_origin)?;
            let end = match end {
                Some((v, origin)) => {
                    let end = parse_time(v, &origin)?;
                    if end <= start {
                        return Err(invalid(
                            &origin,
                            v,
                            format!("the end is not after the start ({})", rfc3339(start)),
                            "give an end later than the start",
                        ));
                    }
                    // A report covers only what CloudTrail could hold when it ran.
                    if end > now {
                        return Err(invalid(
                            &origin,
                            v,
                            format!("the end is in the future (now is {}): no report can cover time that has not happened", rfc3339(now)),
                            if origin.is_flag() {
                                "give an end in the past, or leave --end out to end now"
                            } else {
                                "give an end in the past, or leave end out to end now"
                            },
                        ));
                    }
                    end
                }
                None => now,
            };
            if start > now {
                return Err(invalid(
                    &start_origin,
                    start_text,
                    format!("the start is in the future (now is {})", rfc3339(now)),
                    "give a start in the past",
                ));
            }
            (
                TimeWindow { start, end },
                (start_text.to_string(), start_origin),
            )
        }
        (Some((text, _)), None, None) if text.trim().eq_ignore_ascii_case("last") => {
            return Ok((
                TimeWindow {
                    start: now,
                    end: now,
                },
                true,
            ));
        }
        (since, None, None) => {
            let (text, origin) = since.unwrap_or((DEFAULT_SINCE, Origin::Default("scan.since")));
            let d = parse_duration(text).map_err(|problem| {
                invalid(
                    &origin,
                    text,
                    problem,
                    "write a duration such as 7d, 12h or 1h30m, or last (go on from the last run in the output location)",
                )
            })?;
            if d.is_zero() {
                return Err(invalid(
                    &origin,
                    text,
                    "the window is empty",
                    "give a positive duration such as 7d",
                ));
            }
            let start = TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| {
                    invalid(
                        &origin,
                        text,
                        "reaches before the start of time",
                        "give a shorter duration",
                    )
                })?;
            (TimeWindow { start, end: now }, (text.to_string(), origin))
        }
    };

    if *source == Source::LookupEvents {
        let oldest = now - TimeDelta::days(LOOKUP_EVENTS_HISTORY_DAYS);
        if window.start < oldest {
            let (text, origin) = start_origin;
            return Err(invalid(
                &origin,
                text,
                format!(
                    "the window starts more than {LOOKUP_EVENTS_HISTORY_DAYS} days ago ({}), beyond what CloudTrail LookupEvents keeps",
                    rfc3339(window.start)
                ),
                "shorten the window to 90 days, or read trail files with --source DIR or --source s3://bucket/prefix, which reach further back",
            ));
        }
    }
    Ok((window, false))
}

pub(super) fn resolve_accounts(
    flags: &FlagValues,
    fa: &FileAccounts,
    l: &Layers<'_>,
) -> Result<AccountsConfig, ConfigError> {
    let (role_name, origin) = Layers::or_default(
        l.pick(
            flags.role_name.clone(),
            "--role-name",
            fa.role_name.clone(),
            "accounts.role_name",
        ),
        DEFAULT_ROLE_NAME.to_string(),
        "accounts.role_name",
    );
    check_iam_name(
        &role_name,
        &origin,
        1,
        64,
        "+=,.@_-",
        "an IAM role name (without a path)",
    )?;

    let external_id = match l.pick(
        flags.external_id.clone(),
        "--external-id",
        fa.external_id.clone(),
        "accounts.external_id",
    ) {
        // An empty value means "none", so a flag can clear the file's id.
        Some((id, _)) if id.is_empty() => None,
        Some((id, origin)) => {
            // A secret shared with the member accounts: never echoed, even when wrong.
            check_iam_name(&id, &origin, 2, 1224, "+=,.@:/_-", "an STS external id").map_err(
                |e| match e {
                    ConfigError::Invalid {
                        origin,
                        problem,
                        fix,
                        ..
                    } => ConfigError::Invalid {
                        origin,
                        value: format!("<{} characters, not shown>", id.chars().count()),
                        problem,
                        fix,
                    },
                    other => other,
                },
            )?;
            Some(id)
        }
        None => None,
    };

    let (session_name, origin) = Layers::or_default(
        l.file_only(fa.session_name.clone(), "accounts.session_name"),
        DEFAULT_SESSION_NAME.to_string(),
        "accounts.session_name",
    );
    check_iam_name(
        &session_name,
        &origin,
        2,
        64,
        "+=,.@_-",
        "an STS role session name",
    )?;

    let session_duration = duration_key(
        l.file_only(fa.session_duration.as_deref(), "accounts.session_duration"),
        DEFAULT_SESSION_DURATION,
        "accounts.session_duration",
    )?;
    if !(900..=43_200).contains(&session_duration.as_secs()) {
        let origin = l.key("accounts.session_duration");
        return Err(invalid(
            &origin,
            fa.session_duration.as_deref().unwrap_or_default(),
            "STS accepts role sessions from 15m to 12h",
            "use a duration from 15m to 12h, e.g. 1h",
        ));
    }

    let include = account_list(l.pick(
        flags.accounts.clone(),
        "--accounts",
        fa.include.clone(),
        "accounts.include",
    ))?;
    let exclude = account_list(l.pick(
        flags.exclude_accounts.clone(),
        "--exclude-accounts",
        fa.exclude.clone(),
        "accounts.exclude",
    ))?;

    let organizational_units = match l.pick(
        flags.ou.clone(),
        "--ou",
        fa.organizational_units.clone(),
        "accounts.organizational_units",
    ) {
        Some((list, origin)) => {
            let mut out = Vec::new();
            for (i, ou) in split_list(&list).into_iter().enumerate() {
                if !is_ou_id(&ou) {
                    return Err(invalid(
                        &origin.item(i),
                        &ou,
                        "not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)",
                        "copy the id from the Organizations console or `aws organizations list-roots`",
                    ));
                }
                push_unique(&mut out, ou);
            }
            out
        }
        None => Vec::new(),
    };

    Ok(AccountsConfig {
        role_name,
        external_id,
        session_name,
        session_duration,
        include,
        exclude,
        organizational_units,
    })
}

pub(super) fn resolve_rules(fr: &FileRules, l: &Layers<'_>) -> Result<RuleConfig, ConfigError> {
    let mut approved_cidrs = Vec::new();
    if let Some((list, origin)) = l.file_only(fr.approved_cidrs.as_ref(), "rules.approved_cidrs") {
        for (i, text) in list.iter().enumerate() {
            let net = parse_cidr(text.trim()).ok_or_else(|| {
                invalid(
                    &origin.item(i),
                    text,
                    "not an IP network",
                    "write a CIDR such as \"203.0.113.0/24\" or \"2001:db8::/32\", or a single address",
                )
            })?;
            if !approved_cidrs.contains(&net) {
                approved_cidrs.push(net);
            }
        }
    }

    let mut allowed_regions = Vec::new();
    if let Some((list, origin)) = l.file_only(fr.allowed_regions.as_ref(), "rules.allowed_regions")
    {
        for (i, r) in list.iter().enumerate() {
            let r = r.trim();
            if !is_region_name(r) {
                return Err(invalid(
                    &origin.item(i),
                    r,
                    "not a region name",
                    "write region names such as \"us-east-1\"",
                ));
            }
            push_unique(&mut allowed_regions, r.to_string());
        }
    }

    let trusted_accounts =
        account_list(l.file_only(fr.trusted_accounts.clone(), "rules.trusted_accounts"))?;

    let tunnel_documents = match l.file_only(fr.tunnel_documents.as_ref(), "rules.tunnel_documents")
    {
        Some((list, origin)) => {
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let d = d.trim();
                if d.is_empty() {
                    return Err(invalid(
                        &origin.item(i),
                        d,
                        "an empty document name would match every document",
                        "remove the empty entry",
                    ));
                }
                push_unique(&mut out, d.to_string());
            }
            out
        }
        None => DEFAULT_TUNNEL_DOCUMENTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };

    let denied_threshold = count_key(
        l.file_only(fr.denied_threshold, "rules.denied_threshold"),
        DEFAULT_DENIED_THRESHOLD,
        "rules.denied_threshold",
        "denied calls before the flag fires",
    )?;
    let fanout_targets = count_key(
        l.file_only(fr.fanout_targets, "rules.fanout_targets"),
        DEFAULT_FANOUT_TARGETS,
        "rules.fanout_targets",
        "distinct targets allowed before the flag fires",
    )?;
    let denied_window = delta_key(
        l.file_only(fr.denied_window.as_deref(), "rules.denied_window"),
        DEFAULT_DENIED_WINDOW,
        "rules.denied_window",
    )?;
    let fanout_window = delta_key(
        l.file_only(fr.fanout_window.as_deref(), "rules.fanout_window"),
        DEFAULT_FANOUT_WINDOW,
        "rules.fanout_window",
    )?;
    let max_session = delta_key(
        l.file_only(fr.max_session.as_deref(), "rules.max_session"),
        DEFAULT_MAX_SESSION,
        "rules.max_session",
    )?;

    let business_hours = resolve_business_hours(&fr.business_hours, l)?;
    let require_reason = fr.require_reason.unwrap_or(false);

    Ok(RuleConfig {
        approved_cidrs,
        allowed_regions,
        trusted_accounts,
        tunnel_documents,
        denied_threshold,
        denied_window,
        fanout_targets,
        fanout_window,
        max_session,
        business_hours,
        require_reason,
    })
}

pub(super) fn resolve_business_hours(
    fb: &FileBusinessHours,
    l: &Layers<'_>,
) -> Result<BusinessHours, ConfigError> {
    let (tz_text, origin) = Layers::or_default(
        l.file_only(fb.timezone.as_deref(), "rules.business_hours.timezone"),
        DEFAULT_TIMEZONE,
        "rules.business_hours.timezone",
    );
    let timezone = chrono_tz::Tz::from_str(tz_text.trim()).map_err(|_| {
        invalid(
            &origin,
            tz_text,
            "not an IANA time zone name",
            "use a name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\" (case matters)",
        )
    })?;

    let days = match l.file_only(fb.days.as_ref(), "rules.business_hours.days") {
        Some((list, origin)) => {
            if list.is_empty() {
                return Err(invalid(
                    &origin,
                    "[]",
                    "no business days would make every session off-hours",
                    "list at least one day, e.g. [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\"]",
                ));
            }
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let day = parse_day(d.trim()).ok_or_else(|| {
                    invalid(
                        &origin.item(i),
                        d,
                        "not a day name",
                        "use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
                    )
                })?;
                if !out.contains(&day) {
                    out.push(day);
                }
            }
            out
        }
        None => DEFAULT_DAYS.iter().filter_map(|d| parse_day(d)).collect(),
    };

    let (start_text, start_origin) = Layers::or_default(
        l.file_only(fb.start.as_deref(), "rules.business_hours.start"),
        DEFAULT_HOURS_START,
        "rules.business_hours.start",
    );
    let start = parse_hhmm(start_text, &start_origin)?;
    let (end_text, end_origin) = Layers::or_default(
        l.file_only(fb.end.as_deref(), "rules.business_hours.end"),
        DEFAULT_HOURS_END,
        "rules.business_hours.end",
    );
    let end = parse_hhmm(end_text, &end_origin)?;
    if start == end {
        return Err(invalid(
            &end_origin,
            end_text,
            "business hours that start and end at the same time are ambiguous",
            "give an end different from the start (an end before the start runs across midnight)",
        ));
    }

    Ok(BusinessHours {
        timezone,
        days,
        start,
        end,
    })
}

pub(super) fn resolve_report(
    flags: &FlagValues,
    fr: &FileReport,
    l: &Layers<'_>,
    since_last: bool,
) -> Result<ReportConfig, ConfigError> {
    let (output, output_origin) = Layers::or_default(
        l.pick(
            flags.output.clone(),
            "--output",
            fr.output.clone(),
            "report.output",
        ),
        PathBuf::from(DEFAULT_OUTPUT),
        "report.output",
    );
    if output.as_os_str().is_empty() {
        return Err(invalid(
            &output_origin,
            "",
            "the output folder is empty",
            "name a folder, e.g. reports, or s3://bucket/prefix",
        ));
    }
    let output = parse_output(&output, &output_origin)?;

    let picked_formats = l.pick(
        flags.formats.clone(),
        "--format",
        fr.formats.clone(),
        "report.formats",
    );
    let formats_origin = picked_formats.as_ref().map(|(_, o)| o.clone());
    let formats = match picked_formats {
        Some((list, origin)) => {
            let items = split_list(&list);
            if items.is_empty() {
                return Err(invalid(
                    &origin,
                    "",
                    "no report format",
                    "give json, csv, html, ocsf, or a list such as json,csv,html",
                ));
            }
            let mut out = Vec::new();
            for (i, f) in items.into_iter().enumerate() {
                let format = match f.to_ascii_lowercase().as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    "html" => Format::Html,
                    "ocsf" => Format::Ocsf,
                    _ => {
                        return Err(invalid(
                            &origin.item(i),
                            &f,
                            "not a report format",
                            "use json, csv, html or ocsf (comma-separated for several)",
                        ))
                    }
                };
                if !out.contains(&format) {
                    out.push(format);
                }
            }
            out.sort();
            out
        }
        None => DEFAULT_FORMATS.to_vec(),
    };
    // The next run finds where this one ended in its report.json.
    if since_last && !formats.contains(&Format::Json) {
        let origin = formats_origin.unwrap_or(Origin::Default("report.formats"));
        return Err(invalid(
            &origin,
            "without json",
            "--since last reads where the last run ended from its report.json, so every run of the chain writes one",
            "add json to the formats, e.g. json,csv",
        ));
    }

    let object_lock_days = match l.pick(
        flags.object_lock_days,
        "--object-lock-days",
        fr.object_lock_days,
        "report.object_lock_days",
    ) {
        None => None,
        Some((days, origin)) => {
            if !(1..=MAX_OBJECT_LOCK_DAYS).contains(&days) {
                return Err(invalid(
                    &origin,
                    days,
                    format!("Object Lock retention is 1 to {MAX_OBJECT_LOCK_DAYS} days"),
                    "give the days the evidence must be kept, e.g. 400",
                ));
            }
            if !matches!(output, OutputLocation::S3 { .. }) {
                return Err(invalid(
                    &origin,
                    days,
                    format!("Object Lock applies to S3 objects, and the output is the folder {output}"),
                    "write the report to s3://bucket/prefix (a bucket with Object Lock enabled), or leave the retention out",
                ));
            }
            Some(days as u32)
        }
    };

    let (fail_text, origin) = Layers::or_default(
        l.pick(
            flags.fail_on.clone(),
            "--fail-on",
            fr.fail_on.clone(),
            "report.fail_on",
        ),
        DEFAULT_FAIL_ON.to_string(),
        "report.fail_on",
    );
    let lowered = fail_text.trim().to_ascii_lowercase();
    let fail_on = if lowered == "none" {
        None
    } else {
        Some(Severity::parse(&lowered).ok_or_else(|| {
            invalid(
                &origin,
                &fail_text,
                "not a severity",
                "use info, low, medium, high, critical, or none (never fail on findings)",
            )
        })?)
    };

    let security_hub = resolve_security_hub(flags, fr, l)?;

    Ok(ReportConfig {
        output,
        formats,
        fail_on,
        security_hub,
        object_lock_days,
    })
}

/// A folder, or `s3://bucket[/prefix]`.
pub(super) fn parse_output(path: &Path, origin: &Origin) -> Result<OutputLocation, ConfigError> {
    let text = path.to_string_lossy();
    let t = text.trim();
    if !t.to_ascii_lowercase().starts_with("s3://") {
        if let Some((scheme, _)) = t.split_once("://") {
            if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    origin,
                    t,
                    format!("{scheme}:// is not a supported output"),
                    "give a local folder or s3://bucket/prefix",
                ));
            }
        }
        return Ok(OutputLocation::Dir(path.to_path_buf()));
    }
    let rest = &t["s3://".len()..];
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return Err(invalid(
            origin,
            t,
            format!("{bucket:?} is not an S3 bucket name"),
            "write s3://bucket/prefix with a bucket of 3 to 63 lowercase letters, digits, dots or hyphens",
        ));
    }
    let prefix = prefix.trim_matches('/');
    // Keys are the prefix, a run's folder and a file name: keep them plain.
    if prefix.chars().any(|c| c.is_control() || c == '\\')
        || prefix
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
            && !prefix.is_empty()
        || prefix.len() > 512
    {
        return Err(invalid(
            origin,
            t,
            "the key prefix has an empty, `.` or `..` part, a backslash or a control character, or is over 512 bytes",
            "write a plain prefix such as s3://bucket/ssm-session-audit/runs",
        ));
    }
    Ok(OutputLocation::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

pub(super) fn resolve_security_hub(
    flags: &FlagValues,
    fr: &FileReport,
    l: &Layers<'_>,
) -> Result<Option<SecurityHubConfig>, ConfigError> {
    let on = l
        .pick(
            flags.security_hub,
            "--security-hub",
            fr.security_hub,
            "report.security_hub",
        )
        .is_some_and(|(on, _)| on);
    let region = match l.pick(
        flags.security_hub_region.clone(),
        "--security-hub-region",
        fr.security_hub_region.clone(),
        "report.security_hub_region",
    ) {
        Some((r, origin)) => {
            let r = r.trim().to_string();
            if !is_region_name(&r) {
                return Err(invalid(
                    &origin,
                    &r,
                    "not a region name",
                    "write the Security Hub region such as us-east-1",
                ));
            }
            if !on {
                return Err(invalid(
                    &origin,
                    &r,
                    "a Security Hub region without the import",
                    "add --security-hub (or report.security_hub = true), or drop the region",
                ));
            }
            Some(r)
        }
        None => None,
    };
    Ok(on.then_some(SecurityHubConfig { region }))
}
