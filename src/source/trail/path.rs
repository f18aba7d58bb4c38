//! Where trail files live, and which of them can hold records of a window.
//!
//! A trail file's key is
//! `[prefix/]AWSLogs/[o-<org>/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<rand>.json.gz`.
//! The folder's date is the *delivery* day and the name's timestamp the delivery
//! minute: records come before their delivery, so a file delivered before the
//! window cannot hold any of its records, and one delivered the next day can.

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, NaiveDateTime, Utc};

use crate::model::TimeWindow;

/// How long after a record its file may be delivered and still be read.
/// CloudTrail delivers within about 5 minutes but does not promise it; a day
/// of slack is what "read the day after the window" means, in minutes.
pub const MAX_DELIVERY_LAG: TimeDelta = TimeDelta::days(1);

/// The coordinates of one trail file, from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailKey {
    pub account: String,
    pub region: String,
    /// The day folder (delivery day, UTC).
    pub day: NaiveDate,
    /// The delivery minute from the file name, when the name has the usual shape.
    pub delivered: Option<DateTime<Utc>>,
}

/// Is this file name one of a trail's log files (not a digest, not a stray file)?
pub fn is_log_file_name(name: &str) -> bool {
    name.ends_with(".json.gz") || name.ends_with(".json")
}

/// The delivery minute in `<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<rand>.json.gz`.
pub fn delivered_from_name(name: &str) -> Option<DateTime<Utc>> {
    let ts = name.split('_').nth(3)?;
    let t = NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%MZ").ok()?;
    Some(t.and_utc())
}

/// Parse a key (or a relative path with `/` separators) into its coordinates.
/// `None` when it is not a log file of the trail layout.
pub fn parse_key(key: &str) -> Option<TrailKey> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "AWSLogs")?;
    let mut rest = &parts[at + 1..];
    if rest.first()?.starts_with("o-") {
        rest = &rest[1..];
    }
    // account, CloudTrail, region, YYYY, MM, DD, file
    if rest.len() != 7 || rest[1] != "CloudTrail" || !is_log_file_name(rest[6]) {
        return None;
    }
    let day = day_from_parts(rest[3], rest[4], rest[5])?;
    Some(TrailKey {
        account: rest[0].to_string(),
        region: rest[2].to_string(),
        day,
        delivered: delivered_from_name(rest[6]),
    })
}

fn day_from_parts(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// `YYYY/MM/DD` of a day folder.
pub fn day_path(day: NaiveDate) -> String {
    day.format("%Y/%m/%d").to_string()
}

/// Which day folders to list and which files of them to read for a window.
#[derive(Debug, Clone)]
pub struct DayPlan {
    window: TimeWindow,
    /// Every delivery day that can hold records of the window, in order.
    pub days: Vec<NaiveDate>,
}

impl DayPlan {
    pub fn new(window: TimeWindow) -> Self {
        let mut days = Vec::new();
        if window.start < window.end {
            let first = window.start.date_naive();
            let last = (window.end + MAX_DELIVERY_LAG).date_naive();
            let mut d = first;
            while d <= last {
                days.push(d);
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
        DayPlan { window, days }
    }

    /// A day of the window itself (not only a later delivery day): a day with
    /// no file at all is reported as missing.
    pub fn is_window_day(&self, day: NaiveDate) -> bool {
        // The window's last instant is just before its end.
        let last = self.window.end - TimeDelta::nanoseconds(1);
        day >= self.window.start.date_naive() && day <= last.date_naive()
    }

    /// Can a file delivered at this minute hold a record of the window?
    /// The name carries the minute only: the file left at most 59 s after it.
    pub fn keep_file(&self, delivered: Option<DateTime<Utc>>) -> bool {
        match delivered {
            None => true,
            Some(t) => {
                t + TimeDelta::minutes(1) > self.window.start
                    && t < self.window.end + MAX_DELIVERY_LAG
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_org_and_single_account_keys() {
        let k = parse_key("logs/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2025/02/19/111122223333_CloudTrail_eu-west-1_20250219T2015Z_AbCdEfGh12345678.json.gz").unwrap();
        assert_eq!(k.account, "111122223333");
        assert_eq!(k.region, "eu-west-1");
        assert_eq!(k.day, NaiveDate::from_ymd_opt(2025, 2, 19).unwrap());
        assert_eq!(
            k.delivered,
            Some(Utc.with_ymd_and_hms(2025, 2, 19, 20, 15, 0).unwrap())
        );
        let k = parse_key("AWSLogs/111122223333/CloudTrail/us-east-1/2025/02/19/x.json").unwrap();
        assert_eq!(k.region, "us-east-1");
        assert_eq!(k.delivered, None);
    }

    #[test]
    fn rejects_digests_and_odd_keys() {
        assert!(parse_key("AWSLogs/1/CloudTrail-Digest/us-east-1/2025/02/19/x.json.gz").is_none());
        assert!(parse_key("AWSLogs/1/CloudTrail/us-east-1/2025/02/19/x.txt").is_none());
        assert!(parse_key("AWSLogs/1/CloudTrail/us-east-1/2025/2/19/x.json.gz").is_none());
        assert!(parse_key("AWSLogs/1/CloudTrail/us-east-1/2025/02/30/x.json.gz").is_none());
        assert!(parse_key("nothing/here.json.gz").is_none());
    }

    #[test]
    fn plan_lists_the_day_after_the_window() {
        let p = DayPlan::new(TimeWindow {
            start: t("2025-02-19T10:00:00Z"),
            end: t("2025-02-20T23:59:59Z"),
        });
        let days: Vec<String> = p.days.iter().map(|d| day_path(*d)).collect();
        assert_eq!(days, ["2025/02/19", "2025/02/20", "2025/02/21"]);
        assert!(p.is_window_day(p.days[1]));
        assert!(!p.is_window_day(p.days[2]));
        let empty = DayPlan::new(TimeWindow {
            start: t("2025-02-20T00:00:00Z"),
            end: t("2025-02-19T00:00:00Z"),
        });
        assert!(empty.days.is_empty());
        // Half-open: a window ending at midnight does not reach into that day.
        let to_midnight = DayPlan::new(TimeWindow {
            start: t("2025-02-19T10:00:00Z"),
            end: t("2025-02-20T00:00:00Z"),
        });
        assert!(to_midnight.is_window_day(to_midnight.days[0]));
        assert!(!to_midnight.is_window_day(to_midnight.days[1]));
    }

    #[test]
    fn plan_prunes_files_by_delivery_minute() {
        let p = DayPlan::new(TimeWindow {
            start: t("2025-02-19T10:00:30Z"),
            end: t("2025-02-19T12:00:00Z"),
        });
        // Delivered at 09:59:xx: every record is before 10:00:00.
        assert!(!p.keep_file(Some(t("2025-02-19T09:59:00Z"))));
        // Delivered at 10:00:xx may hold a record of 10:00:30.
        assert!(p.keep_file(Some(t("2025-02-19T10:00:00Z"))));
        assert!(p.keep_file(Some(t("2025-02-20T00:05:00Z"))));
        assert!(p.keep_file(Some(t("2025-02-20T11:59:00Z"))));
        // The end is not in the window: a file of the minute a day after it
        // holds only later records.
        assert!(!p.keep_file(Some(t("2025-02-20T12:00:00Z"))));
        assert!(!p.keep_file(Some(t("2025-02-20T12:01:00Z"))));
        assert!(p.keep_file(None));
    }
}
