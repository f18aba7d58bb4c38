//! The grammars of single values: durations, times, lists, regions, ids,
//! names, sources.

use super::*;
use crate::ids::{is_account_id, is_region_name};

/// Parses `90s`, `90m`, `1h`, `7d`, or a combination in decreasing units
/// such as `1h30m` or `1d12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let s = text.trim();
    if s.is_empty() {
        return Err("a duration is empty".into());
    }
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (s, m, h or d)".into());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        rest = &rest[digits..];
        let unit = rest
            .chars()
            .next()
            .ok_or_else(|| "a number without a unit (s, m, h or d)".to_string())?;
        let idx = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("unknown unit {unit:?} (use s, m, h or d)"))?;
        if last_unit.is_some_and(|last| idx <= last) {
            return Err("units must go from larger to smaller, each once (e.g. 1h30m)".into());
        }
        last_unit = Some(idx);
        rest = &rest[unit.len_utf8()..];
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too large".to_string())?;
    }
    Ok(Duration::from_secs(total))
}

pub(super) fn parse_duration_at(text: &str, origin: &Origin) -> Result<Duration, ConfigError> {
    parse_duration(text).map_err(|problem| {
        invalid(
            origin,
            text,
            problem,
            "write a duration such as 90s, 90m, 1h or 7d",
        )
    })
}

/// A positive duration from the file, or the default.
pub(super) fn duration_key(
    picked: Option<(&str, Origin)>,
    default: &str,
    key: &'static str,
) -> Result<Duration, ConfigError> {
    let (text, origin) = Layers::or_default(picked, default, key);
    let d = parse_duration_at(text, &origin)?;
    if d.is_zero() {
        return Err(invalid(
            &origin,
            text,
            "must be longer than zero",
            format!("use e.g. {default}"),
        ));
    }
    Ok(d)
}

pub(super) fn delta_key(
    picked: Option<(&str, Origin)>,
    default: &str,
    key: &'static str,
) -> Result<TimeDelta, ConfigError> {
    let d = duration_key(picked.clone(), default, key)?;
    TimeDelta::from_std(d).map_err(|_| {
        let (text, origin) = Layers::or_default(picked, default, key);
        invalid(
            &origin,
            text,
            "the duration is too large",
            format!("use e.g. {default}"),
        )
    })
}

pub(super) fn count_key(
    picked: Option<(i64, Origin)>,
    default: usize,
    key: &'static str,
    what: &str,
) -> Result<usize, ConfigError> {
    let (n, origin) = Layers::or_default(picked, default as i64, key);
    if n < 1 {
        return Err(invalid(
            &origin,
            n,
            format!("the number of {what} must be at least 1"),
            format!("use e.g. {default}"),
        ));
    }
    usize::try_from(n).map_err(|_| invalid(&origin, n, "too large", format!("use e.g. {default}")))
}

pub(super) fn parse_time(text: &str, origin: &Origin) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            invalid(
                origin,
                text,
                format!("not an RFC 3339 time ({e})"),
                "write a time such as 2025-02-19T20:13:49Z",
            )
        })
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn parse_hhmm(text: &str, origin: &Origin) -> Result<NaiveTime, ConfigError> {
    let t = text.trim();
    let ok = t.len() == 5 && t.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(t, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            invalid(
                origin,
                text,
                "not a time of day in HH:MM (24-hour)",
                "write e.g. \"08:00\" or \"19:30\"",
            )
        })
}

pub(super) fn parse_day(text: &str) -> Option<Weekday> {
    match text.to_ascii_lowercase().as_str() {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// A CIDR, or a single address taken as a host network.
pub(super) fn parse_cidr(text: &str) -> Option<IpNet> {
    IpNet::from_str(text)
        .ok()
        .or_else(|| std::net::IpAddr::from_str(text).ok().map(IpNet::from))
}

/// Flags may come as `a,b` in one value or as repeated values; the file as a list.
pub(super) fn split_list(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

pub(super) fn push_unique(out: &mut Vec<String>, v: String) {
    if !out.contains(&v) {
        out.push(v);
    }
}

pub(super) fn parse_region_selection(
    list: &[String],
    origin: &Origin,
) -> Result<RegionSelection, ConfigError> {
    let items = split_list(list);
    if items.is_empty() {
        return Err(invalid(
            origin,
            "",
            "no region",
            "list regions such as us-east-1,eu-west-1, or all",
        ));
    }
    if items.iter().any(|r| r.eq_ignore_ascii_case("all")) {
        if items.len() > 1 {
            return Err(invalid(
                origin,
                items.join(","),
                "`all` cannot be mixed with region names",
                "give either all, or a list of regions",
            ));
        }
        return Ok(RegionSelection::All);
    }
    let mut out = Vec::new();
    for (i, r) in items.into_iter().enumerate() {
        if !is_region_name(&r) {
            return Err(invalid(
                &origin.item(i),
                &r,
                "not a region name",
                "write region names such as us-east-1, or all",
            ));
        }
        push_unique(&mut out, r);
    }
    Ok(RegionSelection::List(out))
}

pub(super) fn parse_event_names(
    list: &[String],
    origin: &Origin,
) -> Result<Vec<String>, ConfigError> {
    if list.is_empty() {
        return Err(invalid(
            origin,
            "[]",
            "no event name to look up",
            "list e.g. [\"StartSession\", \"ResumeSession\", \"TerminateSession\"]",
        ));
    }
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let n = n.trim();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                &origin.item(i),
                n,
                "not a CloudTrail event name",
                "use names such as StartSession",
            ));
        }
        push_unique(&mut out, n.to_string());
    }
    Ok(out)
}

pub(super) fn account_list(
    picked: Option<(Vec<String>, Origin)>,
) -> Result<Vec<String>, ConfigError> {
    let Some((list, origin)) = picked else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, id) in split_list(&list).into_iter().enumerate() {
        if !is_account_id(&id) {
            return Err(invalid(
                &origin.item(i),
                &id,
                "an AWS account id is exactly 12 digits",
                "write the id with its leading zeros, e.g. 012345678901",
            ));
        }
        push_unique(&mut out, id);
    }
    Ok(out)
}

/// IAM / STS names: `min..=max` characters, alphanumerics or `extra`.
pub(super) fn check_iam_name(
    s: &str,
    origin: &Origin,
    min: usize,
    max: usize,
    extra: &str,
    what: &str,
) -> Result<(), ConfigError> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(invalid(
            origin,
            s,
            format!("{what} has {min} to {max} characters"),
            format!("give {what} of {min} to {max} characters"),
        ));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        return Err(invalid(
            origin,
            s,
            format!("{what} cannot contain {bad:?}"),
            format!("use only letters, digits and {extra}"),
        ));
    }
    Ok(())
}

pub(super) fn parse_source(text: &str, origin: &Origin) -> Result<Source, ConfigError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(
            origin,
            text,
            "no source given",
            "give a folder of trail files or s3://bucket/prefix",
        ));
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("athena:") {
        let table = crate::source::athena::TableRef::parse(&t["athena:".len()..]).map_err(|p| {
            invalid(
                origin,
                text,
                p,
                "write athena:DATABASE.TABLE, e.g. athena:audit.org_trail",
            )
        })?;
        return Ok(Source::Athena {
            database: table.database,
            table: table.table,
        });
    }
    if lower.starts_with("s3://") {
        let rest = &t["s3://".len()..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(invalid(
                origin,
                text,
                format!("{bucket:?} is not an S3 bucket name"),
                "write s3://bucket/prefix with a bucket of 3 to 63 lowercase letters, digits, dots or hyphens",
            ));
        }
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        });
    }
    // Any other URL scheme is a mistake, not a folder name.
    if let Some((scheme, _)) = t.split_once("://") {
        if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                origin,
                text,
                format!("{scheme}:// is not a supported source"),
                "give a local folder of trail files, s3://bucket/prefix or athena:DATABASE.TABLE",
            ));
        }
    }
    Ok(Source::Dir(PathBuf::from(t)))
}
