//! The SQL a scan sends, and the way its rows come back as CloudTrail records.
//!
//! Every query names its accounts, regions and days on the partition columns
//! (window days plus the next one, since a file delivered after midnight holds
//! records from before it), so Athena reads only those partitions; an injected
//! `account` column would refuse it otherwise. Every value is validated against
//! its shape (12-digit account ids, region names, alphanumeric event names)
//! before it is quoted, so configuration text never becomes SQL. Rows are
//! mapped back to a CloudTrail record (camelCase keys) and parsed by
//! [`crate::event::parse_value`], the one parser of the project.

use chrono::{DateTime, NaiveDate, SubsecRound, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::TableRef;
use crate::event::SSM_EVENT_SOURCE;
use crate::model::TimeWindow;

/// Athena refuses query text longer than this (bytes).
pub const MAX_QUERY_BYTES: usize = 262_144;

/// The partition columns of the table `athena-table` creates.
pub const PARTITION_COLUMNS: [&str; 3] = ["account", "region", "timestamp"];

/// What one scan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    pub table: TableRef,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Half-open: `[start, end)`.
    pub window: TimeWindow,
    pub event_names: Vec<String>,
}

/// One query and the accounts it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltQuery {
    pub accounts: Vec<String>,
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("account id {0:?} is not 12 digits")]
    Account(String),
    #[error("{0:?} is not a region name")]
    Region(String),
    #[error("{0:?} is not a CloudTrail event name")]
    EventName(String),
    #[error("no {0} to query")]
    Empty(&'static str),
    #[error("the window is empty")]
    EmptyWindow,
    #[error("one account's query is already {bytes} bytes, over Athena's {MAX_QUERY_BYTES}: shorten the window or the region list")]
    TooLong { bytes: usize },
}

/// A column of the result: its alias, the SQL that selects it, and where the
/// value goes in the rebuilt CloudTrail record (`[]` = partition columns).
struct Field {
    alias: &'static str,
    sql: &'static str,
    path: &'static [&'static str],
}

const fn f(alias: &'static str, sql: &'static str, path: &'static [&'static str]) -> Field {
    Field { alias, sql, path }
}

/// Only what the model (and its planned fields) needs: the parser reads these.
const FIELDS: &[Field] = &[
    f("account", "\"account\"", &[]),
    f("region", "\"region\"", &[]),
    f("partition_day", "\"timestamp\"", &[]),
    f("eventid", "eventid", &["eventID"]),
    f("eventname", "eventname", &["eventName"]),
    f("eventtime", "eventtime", &["eventTime"]),
    f("eventsource", "eventsource", &["eventSource"]),
    f("awsregion", "awsregion", &["awsRegion"]),
    f(
        "recipientaccountid",
        "recipientaccountid",
        &["recipientAccountId"],
    ),
    f(
        "identity_type",
        "useridentity.type",
        &["userIdentity", "type"],
    ),
    f("identity_arn", "useridentity.arn", &["userIdentity", "arn"]),
    f(
        "identity_account",
        "useridentity.accountid",
        &["userIdentity", "accountId"],
    ),
    f(
        "identity_principal",
        "useridentity.principalid",
        &["userIdentity", "principalId"],
    ),
    f(
        "identity_user",
        "useridentity.username",
        &["userIdentity", "userName"],
    ),
    f(
        "identity_key",
        "useridentity.accesskeyid",
        &["userIdentity", "accessKeyId"],
    ),
    f(
        "identity_invoked_by",
        "useridentity.invokedby",
        &["userIdentity", "invokedBy"],
    ),
    f(
        "on_behalf_user",
        "useridentity.onbehalfof.userid",
        &["userIdentity", "onBehalfOf", "userId"],
    ),
    f(
        "on_behalf_store",
        "useridentity.onbehalfof.identitystorearn",
        &["userIdentity", "onBehalfOf", "identityStoreArn"],
    ),
    f(
        "issuer_type",
        "useridentity.sessioncontext.sessionissuer.type",
        &["userIdentity", "sessionContext", "sessionIssuer", "type"],
    ),
    f(
        "issuer_arn",
        "useridentity.sessioncontext.sessionissuer.arn",
        &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
    ),
    f(
        "issuer_name",
        "useridentity.sessioncontext.sessionissuer.username",
        &[
            "userIdentity",
            "sessionContext",
            "sessionIssuer",
            "userName",
        ],
    ),
    f(
        "mfa",
        "useridentity.sessioncontext.attributes.mfaauthenticated",
        &[
            "userIdentity",
            "sessionContext",
            "attributes",
            "mfaAuthenticated",
        ],
    ),
    f(
        "session_created",
        "useridentity.sessioncontext.attributes.creationdate",
        &[
            "userIdentity",
            "sessionContext",
            "attributes",
            "creationDate",
        ],
    ),
    f(
        "ec2_role_delivery",
        "useridentity.sessioncontext.ec2roledelivery",
        &["userIdentity", "sessionContext", "ec2RoleDelivery"],
    ),
    f("sourceipaddress", "sourceipaddress", &["sourceIPAddress"]),
    f("useragent", "useragent", &["userAgent"]),
    f("errorcode", "errorcode", &["errorCode"]),
    f("errormessage", "errormessage", &["errorMessage"]),
    f(
        "requestparameters",
        "requestparameters",
        &["requestParameters"],
    ),
    f(
        "responseelements",
        "responseelements",
        &["responseElements"],
    ),
];

/// Columns whose text is itself JSON (STRING columns of nested objects).
const JSON_TEXT: [&str; 2] = ["requestparameters", "responseelements"];

pub use crate::ids::is_account_id;

pub fn is_region(s: &str) -> bool {
    crate::ids::is_region_name(s)
}

fn is_event_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A SQL string literal. Callers validate first; the doubling is a second wall.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The days whose folders can hold the window's records: every day of the
/// window, and the day after its last one (late delivery).
pub fn partition_days(window: TimeWindow) -> Vec<NaiveDate> {
    if window.end <= window.start {
        return Vec::new();
    }
    let first = window.start.date_naive();
    // Half-open: the last instant of the window is just before `end`.
    let last_record_day = (window.end - TimeDelta::nanoseconds(1)).date_naive();
    let Some(last) = last_record_day.succ_opt() else {
        return vec![first];
    };
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// `YYYY/MM/DD`, the projection's format.
pub fn day_value(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The window in CloudTrail's own `eventTime` text, whole seconds, widened to
/// whole seconds at both ends (the exact bounds are applied after parsing).
fn window_text(w: TimeWindow) -> (String, String) {
    let start = w.start.trunc_subsecs(0);
    let mut end = w.end.trunc_subsecs(0);
    if end < w.end {
        end += TimeDelta::seconds(1);
    }
    (ts(start), ts(end))
}

fn list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

impl QuerySpec {
    fn check(&self) -> Result<(), QueryError> {
        if self.accounts.is_empty() {
            return Err(QueryError::Empty("account"));
        }
        if self.regions.is_empty() {
            return Err(QueryError::Empty("region"));
        }
        if self.event_names.is_empty() {
            return Err(QueryError::Empty("event name"));
        }
        if self.window.end <= self.window.start {
            return Err(QueryError::EmptyWindow);
        }
        let esc = |s: &str| crate::event::escape_capped(s, 40);
        if let Some(a) = self.accounts.iter().find(|a| !is_account_id(a)) {
            return Err(QueryError::Account(esc(a)));
        }
        if let Some(r) = self.regions.iter().find(|r| !is_region(r)) {
            return Err(QueryError::Region(esc(r)));
        }
        if let Some(n) = self.event_names.iter().find(|n| !is_event_name(n)) {
            return Err(QueryError::EventName(esc(n)));
        }
        Ok(())
    }

    /// The query for `accounts` (a subset of the spec's).
    fn render(&self, accounts: &[String]) -> String {
        let columns: Vec<String> = FIELDS
            .iter()
            .map(|c| {
                if c.sql.trim_matches('"') == c.alias {
                    c.sql.to_string()
                } else {
                    format!("{} AS {}", c.sql, c.alias)
                }
            })
            .collect();
        let days: Vec<String> = partition_days(self.window)
            .into_iter()
            .map(day_value)
            .collect();
        let (start, end) = window_text(self.window);
        format!(
            "SELECT {columns}\nFROM {table}\nWHERE \"account\" IN ({accounts})\n  AND \"region\" IN ({regions})\n  AND \"timestamp\" IN ({days})\n  AND eventsource = {source}\n  AND eventname IN ({names})\n  AND eventtime >= {start}\n  AND eventtime < {end}",
            columns = columns.join(",\n       "),
            table = self.table.sql_name(),
            accounts = list(accounts),
            regions = list(&self.regions),
            days = list(&days),
            source = quote(SSM_EVENT_SOURCE),
            names = list(&self.event_names),
            start = quote(&start),
            end = quote(&end),
        )
    }

    /// One query, or several when the account list would pass `max_bytes`.
    pub fn build(&self, max_bytes: usize) -> Result<Vec<BuiltQuery>, QueryError> {
        self.check()?;
        let mut accounts = self.accounts.clone();
        accounts.sort();
        accounts.dedup();
        let one = self.render(&accounts[..1]).len();
        if one > max_bytes {
            return Err(QueryError::TooLong { bytes: one });
        }
        // Each further id adds `, '123456789012'`.
        let per = 2 + 14;
        let fit = 1 + (max_bytes - one) / per;
        Ok(accounts
            .chunks(fit)
            .map(|chunk| BuiltQuery {
                accounts: chunk.to_vec(),
                sql: self.render(chunk),
            })
            .collect())
    }
}

/// One result row, rebuilt as a CloudTrail record.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRecord {
    /// The partition the row was read from.
    pub account: String,
    pub region: String,
    pub day: String,
    /// camelCase keys, as in the trail file, for [`crate::event::parse_value`].
    pub record: Value,
}

/// Map one row (`None` = SQL NULL) by the header's names. Unknown columns are
/// ignored and missing ones are absent, so the column order does not matter.
pub fn row_to_record(header: &[String], row: &[Option<String>]) -> RowRecord {
    let mut record = Map::new();
    let (mut account, mut region, mut day) = (String::new(), String::new(), String::new());
    for (name, value) in header.iter().zip(row) {
        let name = name.to_ascii_lowercase();
        let Some(field) = FIELDS.iter().find(|c| c.alias == name) else {
            continue;
        };
        let Some(text) = value.as_deref() else {
            continue;
        };
        match field.alias {
            "account" => account = text.to_string(),
            "region" => region = text.to_string(),
            "partition_day" => day = text.to_string(),
            _ => {
                let v = if JSON_TEXT.contains(&field.alias) {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
                } else {
                    Value::String(text.to_string())
                };
                insert(&mut record, field.path, v);
            }
        }
    }
    RowRecord {
        account,
        region,
        day,
        record: Value::Object(record),
    }
}

fn insert(obj: &mut Map<String, Value>, path: &[&str], v: Value) {
    match path {
        [] => {}
        [last] => {
            obj.insert(last.to_string(), v);
        }
        [first, rest @ ..] => {
            let child = obj
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                insert(m, rest, v);
            }
        }
    }
}

/// The aliases a result carries, in order (for tests and stand-ins).
pub fn result_columns() -> Vec<&'static str> {
    FIELDS.iter().map(|c| c.alias).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn spec(accounts: usize) -> QuerySpec {
        QuerySpec {
            table: TableRef::parse("audit.org_trail").unwrap(),
            accounts: (0..accounts)
                .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
                .collect(),
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            window: TimeWindow {
                start: t("2025-02-18T12:00:00Z"),
                end: t("2025-02-20T00:00:00Z"),
            },
            event_names: vec!["StartSession".into(), "ResumeSession".into()],
        }
    }

    /// The predicates every query must carry, checked on the text.
    fn assert_partition_predicates(sql: &str, accounts: &[String]) {
        let wh = sql.split_once("\nWHERE ").expect("a WHERE clause").1;
        let acc = format!("\"account\" IN ({})", list(accounts));
        assert!(wh.starts_with(&acc), "{wh}");
        assert!(
            wh.contains("AND \"region\" IN ('eu-west-1', 'us-east-1')"),
            "{wh}"
        );
        assert!(
            wh.contains("AND \"timestamp\" IN ('2025/02/18', '2025/02/19', '2025/02/20')"),
            "{wh}"
        );
        assert!(wh.contains("AND eventsource = 'ssm.amazonaws.com'"));
        assert!(wh.contains("AND eventname IN ('StartSession', 'ResumeSession')"));
        assert!(wh.contains("AND eventtime >= '2025-02-18T12:00:00Z'"));
        assert!(wh.contains("AND eventtime < '2025-02-20T00:00:00Z'"));
        assert!(
            !wh.to_ascii_uppercase().contains(" OR "),
            "no OR may widen the partitions: {wh}"
        );
    }

    #[test]
    fn a_query_names_accounts_regions_days_source_names_and_window() {
        let q = spec(3).build(MAX_QUERY_BYTES).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].accounts.len(), 3);
        assert_partition_predicates(&q[0].sql, &q[0].accounts);
        assert!(q[0].sql.contains("FROM \"audit\".\"org_trail\""));
        assert!(q[0]
            .sql
            .contains("useridentity.sessioncontext.sessionissuer.arn AS issuer_arn"));
        assert!(q[0].sql.starts_with("SELECT \"account\",\n"));
    }

    #[test]
    fn days_are_the_window_and_the_next_day() {
        let d = |s: &str, e: &str| -> Vec<String> {
            partition_days(TimeWindow {
                start: t(s),
                end: t(e),
            })
            .into_iter()
            .map(day_value)
            .collect()
        };
        assert_eq!(
            d("2025-02-18T12:00:00Z", "2025-02-20T00:00:00Z"),
            ["2025/02/18", "2025/02/19", "2025/02/20"]
        );
        assert_eq!(
            d("2025-02-18T12:00:00Z", "2025-02-20T00:00:01Z"),
            ["2025/02/18", "2025/02/19", "2025/02/20", "2025/02/21"]
        );
        assert_eq!(
            d("2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z"),
            ["2025/12/31", "2026/01/01"]
        );
        assert!(d("2025-02-18T12:00:00Z", "2025-02-18T12:00:00Z").is_empty());
    }

    #[test]
    fn sub_second_bounds_widen_to_whole_seconds() {
        let w = TimeWindow {
            start: t("2025-02-18T12:00:00.700Z"),
            end: t("2025-02-19T08:00:00.200Z"),
        };
        assert_eq!(
            window_text(w),
            (
                "2025-02-18T12:00:00Z".to_string(),
                "2025-02-19T08:00:01Z".to_string()
            )
        );
    }

    #[test]
    fn long_account_lists_split_under_the_limit_and_keep_every_predicate() {
        let s = spec(20_000);
        let qs = s.build(MAX_QUERY_BYTES).unwrap();
        assert!(qs.len() >= 2, "20,000 ids are about 320 KB");
        let mut seen = Vec::new();
        for q in &qs {
            assert!(q.sql.len() <= MAX_QUERY_BYTES, "{}", q.sql.len());
            assert_partition_predicates(&q.sql, &q.accounts);
            seen.extend(q.accounts.iter().cloned());
        }
        let mut want = s.accounts.clone();
        want.sort();
        assert_eq!(seen, want, "every account once, in one query");
        // A small limit splits into many, each still under it.
        let qs = spec(50).build(1_800).unwrap();
        assert!(qs.len() >= 3, "{}", qs.len());
        for q in &qs {
            assert!(q.sql.len() <= 1_800);
            assert!(!q.accounts.is_empty());
        }
        assert!(matches!(
            spec(1).build(500),
            Err(QueryError::TooLong { .. })
        ));
    }

    #[test]
    fn values_are_validated_before_they_are_quoted() {
        for (accounts, regions, names) in [
            (
                vec!["11111111111'".to_string()],
                vec!["eu-west-1".to_string()],
                vec!["StartSession".to_string()],
            ),
            (
                vec!["111111111111".into()],
                vec!["eu-west-1') OR (1=1".into()],
                vec!["StartSession".into()],
            ),
            (
                vec!["111111111111".into()],
                vec!["eu-west-1".into()],
                vec!["Start'Session".into()],
            ),
            (
                vec!["1111 1111111".into()],
                vec!["eu-west-1".into()],
                vec!["StartSession".into()],
            ),
            (
                vec![],
                vec!["eu-west-1".into()],
                vec!["StartSession".into()],
            ),
        ] {
            let mut s = spec(0);
            s.accounts = accounts;
            s.regions = regions;
            s.event_names = names;
            assert!(s.build(MAX_QUERY_BYTES).is_err(), "{s:?}");
        }
        assert_eq!(quote("it's"), "'it''s'");
    }

    #[test]
    fn rows_become_records_the_parser_reads() {
        let header: Vec<String> = result_columns().iter().map(|s| s.to_string()).collect();
        let mut row: Vec<Option<String>> = vec![None; header.len()];
        let set = |row: &mut Vec<Option<String>>, name: &str, v: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            row[i] = Some(v.to_string());
        };
        set(&mut row, "account", "111122223333");
        set(&mut row, "region", "eu-west-1");
        set(&mut row, "partition_day", "2025/02/19");
        set(&mut row, "eventid", "e-1");
        set(&mut row, "eventname", "StartSession");
        set(&mut row, "eventtime", "2025-02-19T20:13:49Z");
        set(&mut row, "eventsource", "ssm.amazonaws.com");
        set(&mut row, "identity_type", "AssumedRole");
        set(
            &mut row,
            "identity_arn",
            "arn:aws:sts::111122223333:assumed-role/R/i-0abc1234",
        );
        set(&mut row, "issuer_arn", "arn:aws:iam::111122223333:role/R");
        set(&mut row, "mfa", "true");
        set(
            &mut row,
            "requestparameters",
            r#"{"target":"i-0123","documentName":"AWS-StartSSHSession"}"#,
        );
        set(
            &mut row,
            "responseelements",
            r#"{"sessionId":"alice-0abc"}"#,
        );
        let r = row_to_record(&header, &row);
        assert_eq!(
            (r.account.as_str(), r.region.as_str(), r.day.as_str()),
            ("111122223333", "eu-west-1", "2025/02/19")
        );
        let e = crate::event::parse_value(&r.record, &r.account, &r.region).unwrap();
        assert_eq!(e.event_id, "e-1");
        assert_eq!(e.target.as_deref(), Some("i-0123"));
        assert_eq!(e.document_name.as_deref(), Some("AWS-StartSSHSession"));
        assert_eq!(e.session_id.as_deref(), Some("alice-0abc"));
        assert_eq!(e.mfa_authenticated, Some(true));
        assert_eq!(
            e.session_issuer_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/R")
        );
        assert!(e.instance_role, "the session name is an instance id");
        // A NULL ec2RoleDelivery is absent, not present-and-null.
        assert!(r.record["userIdentity"]["sessionContext"]
            .get("ec2RoleDelivery")
            .is_none());
        set(&mut row, "ec2_role_delivery", "2.0");
        set(
            &mut row,
            "identity_arn",
            "arn:aws:sts::111122223333:assumed-role/R/bob",
        );
        let r = row_to_record(&header, &row);
        assert!(
            crate::event::parse_value(&r.record, "", "")
                .unwrap()
                .instance_role
        );
        // Columns in any order, and text that is not JSON stays text.
        let mut h2 = header.clone();
        h2.reverse();
        let mut r2 = row.clone();
        r2.reverse();
        set(&mut row, "requestparameters", "not json");
        assert_eq!(row_to_record(&h2, &r2).record["eventID"], "e-1");
        assert_eq!(
            row_to_record(&header, &row).record["requestParameters"],
            "not json"
        );
    }
}
