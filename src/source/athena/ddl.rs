//! The Athena table over an organization trail: AWS's documented CloudTrail
//! table (JsonSerDe, CloudTrailInputFormat, the documented columns) with
//! partition projection on `account`, `region` and `timestamp`, so Athena
//! computes partition locations from the query and needs no `ALTER TABLE ADD
//! PARTITION`. Pure text generation: every value that reaches the DDL is
//! validated first, so nothing given on the command line becomes SQL.

use chrono::NaiveDate;

use super::TableRef;

/// More accounts than this are `injected` rather than `enum`: AWS advises a few
/// dozen enum values at most (the table's metadata must stay under Glue's limit),
/// and an injected column grows with the organization without a new table.
pub const ENUM_ACCOUNTS_MAX: usize = 48;

/// The first day the projection knows by default: CloudTrail's launch month, so
/// no history is outside the table. The range costs nothing: queries name their days.
pub const DEFAULT_FIRST_DAY: &str = "2013/11/01";

/// The columns of AWS's "CloudTrail table with partition projection", struct
/// types as documented (lower-case names; the JsonSerDe matches keys without case).
pub const COLUMNS: &str = "\
    eventversion STRING,
    useridentity STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        invokedby: STRING,
        accesskeyid: STRING,
        username: STRING,
        onbehalfof: STRUCT<
            userid: STRING,
            identitystorearn: STRING>,
        sessioncontext: STRUCT<
            attributes: STRUCT<
                mfaauthenticated: STRING,
                creationdate: STRING>,
            sessionissuer: STRUCT<
                type: STRING,
                principalid: STRING,
                arn: STRING,
                accountid: STRING,
                username: STRING>,
            ec2roledelivery: STRING,
            webidfederationdata: STRUCT<
                federatedprovider: STRING,
                attributes: MAP<STRING,STRING>>>>,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    readonly STRING,
    resources ARRAY<STRUCT<
        arn: STRING,
        accountid: STRING,
        type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    vpcendpointaccountid STRING,
    eventcategory STRING,
    addendum STRUCT<
        reason: STRING,
        updatedfields: STRING,
        originalrequestid: STRING,
        originaleventid: STRING>,
    sessioncredentialfromconsole STRING,
    edgedevicedetails STRING,
    tlsdetails STRUCT<
        tlsversion: STRING,
        ciphersuite: STRING,
        clientprovidedhostheader: STRING>";

pub const SERDE: &str = "org.apache.hive.hcatalog.data.JsonSerDe";
pub const INPUT_FORMAT: &str = "com.amazon.emr.cloudtrail.CloudTrailInputFormat";
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/// Where an organization trail's logs are: `s3://bucket/[prefix/]AWSLogs/o-…/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailLocation {
    pub bucket: String,
    /// The key prefix of the organization folder, ending in `/`:
    /// `[prefix/]AWSLogs/o-…/`.
    pub org_prefix: String,
    pub org_id: String,
}

impl TrailLocation {
    /// `s3://bucket/[prefix/]AWSLogs/o-…/`
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.org_prefix)
    }

    /// The key prefix of one partition's folder (account, region), ending in `/`.
    pub fn partition_prefix(&self, account: &str, region: &str) -> String {
        format!("{}{account}/CloudTrail/{region}/", self.org_prefix)
    }

    pub fn location_template(&self) -> String {
        format!(
            "{}${{account}}/CloudTrail/${{region}}/${{timestamp}}",
            self.url()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DdlError {
    #[error("--trail {value:?}: {problem}; give s3://bucket/[prefix/]AWSLogs/o-xxxxxxxxxx/ (the organization trail's folder)")]
    Trail { value: String, problem: String },
    #[error("{what} {value:?} is not valid: {problem}")]
    Value {
        what: &'static str,
        value: String,
        problem: &'static str,
    },
}

/// Parse `s3://bucket/[prefix/]AWSLogs/o-…[/]`. Only characters that are safe in
/// an S3 key and inside a SQL string literal are accepted.
pub fn parse_trail_url(text: &str) -> Result<TrailLocation, DdlError> {
    let bad = |problem: &str| DdlError::Trail {
        value: crate::event::escape_capped(text, 200),
        problem: problem.to_string(),
    };
    let rest = text
        .trim()
        .strip_prefix("s3://")
        .ok_or_else(|| bad("not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return Err(bad("the bucket is not an S3 bucket name"));
    }
    let key = key.trim_end_matches('/');
    if let Some(c) = key.chars().find(|c| !is_safe_key_char(*c)) {
        return Err(bad(&format!(
            "the key prefix holds {c:?}, which this tool does not put into SQL"
        )));
    }
    let parts: Vec<&str> = key.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("the key prefix has an empty folder name"));
    }
    let n = parts.len();
    if n < 2 || parts[n - 2] != "AWSLogs" {
        return Err(bad("it must end in AWSLogs/o-…/"));
    }
    let org = parts[n - 1];
    if !is_org_id(org) {
        return Err(bad("the folder after AWSLogs/ is not an organization id (o- and 10 to 32 lowercase letters or digits)"));
    }
    Ok(TrailLocation {
        bucket: bucket.to_string(),
        org_prefix: format!("{key}/"),
        org_id: org.to_string(),
    })
}

/// Read a `storage.location.template` (or a table `LOCATION` under the
/// organization folder) back into a trail location.
pub fn trail_from_template(template: &str) -> Option<TrailLocation> {
    let base = match template.find("${account}") {
        Some(at) => &template[..at],
        None => template,
    };
    parse_trail_url(base).ok()
}

fn is_safe_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '!' | '-' | '_' | '.' | '*' | '(' | ')')
}

pub fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// What `athena-table` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub table: TableRef,
    pub trail: TrailLocation,
    /// The organization's accounts, when known: a few dozen become an `enum`;
    /// none, or more, make the column `injected` (every query names its accounts).
    pub accounts: Vec<String>,
    /// The `region` enum (every region the trail may hold).
    pub regions: Vec<String>,
    pub first_day: NaiveDate,
}

/// How the `account` partition is projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountProjection {
    Enum,
    Injected,
}

impl TableSpec {
    pub fn account_projection(&self) -> AccountProjection {
        if !self.accounts.is_empty() && self.accounts.len() <= ENUM_ACCOUNTS_MAX {
            AccountProjection::Enum
        } else {
            AccountProjection::Injected
        }
    }

    fn check(&self) -> Result<(), DdlError> {
        for a in &self.accounts {
            if !super::query::is_account_id(a) {
                return Err(DdlError::Value {
                    what: "account id",
                    value: crate::event::escape_capped(a, 40),
                    problem: "an account id is 12 digits",
                });
            }
        }
        if self.regions.is_empty() {
            return Err(DdlError::Value {
                what: "regions",
                value: String::new(),
                problem: "the region projection needs at least one region",
            });
        }
        for r in &self.regions {
            if !super::query::is_region(r) {
                return Err(DdlError::Value {
                    what: "region",
                    value: crate::event::escape_capped(r, 40),
                    problem: "not a region name such as us-east-1",
                });
            }
        }
        // parse_trail_url validated the location; a hand-built one is checked again.
        parse_trail_url(&self.trail.url())?;
        Ok(())
    }
}

/// `CREATE DATABASE IF NOT EXISTS`, for `--create`.
pub fn create_database(table: &TableRef) -> String {
    format!("CREATE DATABASE IF NOT EXISTS `{}`", table.database)
}

/// The `CREATE EXTERNAL TABLE` statement (Hive DDL, as Athena takes it).
pub fn create_table(spec: &TableSpec) -> Result<String, DdlError> {
    spec.check()?;
    let mut props: Vec<(String, String)> = vec![("projection.enabled".into(), "true".into())];
    match spec.account_projection() {
        AccountProjection::Enum => {
            let mut ids = spec.accounts.clone();
            ids.sort();
            ids.dedup();
            props.push(("projection.account.type".into(), "enum".into()));
            props.push(("projection.account.values".into(), ids.join(",")));
        }
        AccountProjection::Injected => {
            props.push(("projection.account.type".into(), "injected".into()));
        }
    }
    let mut regions = spec.regions.clone();
    regions.sort();
    regions.dedup();
    props.push(("projection.region.type".into(), "enum".into()));
    props.push(("projection.region.values".into(), regions.join(",")));
    props.push(("projection.timestamp.type".into(), "date".into()));
    props.push(("projection.timestamp.format".into(), "yyyy/MM/dd".into()));
    props.push((
        "projection.timestamp.range".into(),
        format!("{},NOW", spec.first_day.format("%Y/%m/%d")),
    ));
    props.push(("projection.timestamp.interval".into(), "1".into()));
    props.push(("projection.timestamp.interval.unit".into(), "DAYS".into()));
    props.push((
        "storage.location.template".into(),
        spec.trail.location_template(),
    ));
    let props: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("  '{k}'='{v}'"))
        .collect();
    Ok(format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`{table}` (\n    {COLUMNS}\n)\n\
         PARTITIONED BY (\n    `account` STRING,\n    `region` STRING,\n    `timestamp` STRING\n)\n\
         ROW FORMAT SERDE '{SERDE}'\n\
         STORED AS INPUTFORMAT '{INPUT_FORMAT}'\n\
         OUTPUTFORMAT '{OUTPUT_FORMAT}'\n\
         LOCATION '{location}'\n\
         TBLPROPERTIES (\n{props}\n)",
        db = spec.table.database,
        table = spec.table.table,
        location = spec.trail.url(),
        props = props.join(",\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accounts: usize) -> TableSpec {
        TableSpec {
            table: TableRef::parse("audit.org_trail").unwrap(),
            trail: parse_trail_url("s3://org-trail-bucket/logs/AWSLogs/o-a1b2c3d4e5/").unwrap(),
            accounts: (0..accounts)
                .map(|i| format!("{:012}", 111_111_111_111u64 + i as u64))
                .collect(),
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            first_day: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        }
    }

    #[test]
    fn trail_urls() {
        let t = parse_trail_url("s3://b-1.x/AWSLogs/o-a1b2c3d4e5").unwrap();
        assert_eq!(t.org_prefix, "AWSLogs/o-a1b2c3d4e5/");
        assert_eq!(t.url(), "s3://b-1.x/AWSLogs/o-a1b2c3d4e5/");
        let t = parse_trail_url("s3://bucket/a/b/AWSLogs/o-a1b2c3d4e5/").unwrap();
        assert_eq!(
            t.partition_prefix("111122223333", "eu-west-1"),
            "a/b/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/"
        );
        assert_eq!(
            t.location_template(),
            "s3://bucket/a/b/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${timestamp}"
        );
        assert_eq!(trail_from_template(&t.location_template()), Some(t));
        for bad in [
            "bucket/AWSLogs/o-a1b2c3d4e5/",
            "s3://Bucket/AWSLogs/o-a1b2c3d4e5/",
            "s3://bucket/AWSLogs/",
            "s3://bucket/AWSLogs/111122223333/",
            "s3://bucket/x'y/AWSLogs/o-a1b2c3d4e5/",
            "s3://bucket/x${a}/AWSLogs/o-a1b2c3d4e5/",
            "s3://bucket//AWSLogs/o-a1b2c3d4e5/",
            "s3://bucket/AWSLogs/o-abc/",
        ] {
            let e = parse_trail_url(bad).unwrap_err();
            assert!(e.to_string().contains("AWSLogs/o-"), "{bad}: {e}");
        }
    }

    #[test]
    fn ddl_names_serde_formats_projection_and_template() {
        let ddl = create_table(&spec(3)).unwrap();
        for want in [
            "CREATE EXTERNAL TABLE IF NOT EXISTS `audit`.`org_trail`",
            "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
            "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'",
            "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
            "LOCATION 's3://org-trail-bucket/logs/AWSLogs/o-a1b2c3d4e5/'",
            "'projection.enabled'='true'",
            "'projection.account.type'='enum'",
            "'projection.account.values'='111111111111,111111111112,111111111113'",
            "'projection.region.type'='enum'",
            "'projection.region.values'='eu-west-1,us-east-1'",
            "'projection.timestamp.type'='date'",
            "'projection.timestamp.format'='yyyy/MM/dd'",
            "'projection.timestamp.range'='2020/01/01,NOW'",
            "'storage.location.template'='s3://org-trail-bucket/logs/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${timestamp}'",
            "PARTITIONED BY (\n    `account` STRING,\n    `region` STRING,\n    `timestamp` STRING\n)",
            "onbehalfof: STRUCT<\n            userid: STRING,\n            identitystorearn: STRING>",
            "ec2roledelivery: STRING",
            "requestparameters STRING",
            "tlsdetails STRUCT<",
        ] {
            assert!(ddl.contains(want), "missing {want:?} in\n{ddl}");
        }
        // Brackets balance: the struct types are closed where they open.
        assert_eq!(ddl.matches('<').count(), ddl.matches('>').count());
        assert_eq!(ddl.matches('(').count(), ddl.matches(')').count());
    }

    #[test]
    fn many_or_unknown_accounts_are_injected() {
        for n in [0, ENUM_ACCOUNTS_MAX + 1, 5_000] {
            let s = spec(n);
            assert_eq!(s.account_projection(), AccountProjection::Injected);
            let ddl = create_table(&s).unwrap();
            assert!(ddl.contains("'projection.account.type'='injected'"));
            assert!(!ddl.contains("projection.account.values"));
        }
        assert_eq!(
            spec(ENUM_ACCOUNTS_MAX).account_projection(),
            AccountProjection::Enum
        );
    }

    #[test]
    fn bad_values_never_reach_the_ddl() {
        let mut s = spec(1);
        s.accounts = vec!["1111'; DROP".into()];
        assert!(create_table(&s).is_err());
        let mut s = spec(1);
        s.regions = vec!["us-east-1','x".into()];
        assert!(create_table(&s).is_err());
        let mut s = spec(1);
        s.regions.clear();
        assert!(create_table(&s).is_err());
        assert_eq!(
            create_database(&s.table),
            "CREATE DATABASE IF NOT EXISTS `audit`"
        );
    }
}
