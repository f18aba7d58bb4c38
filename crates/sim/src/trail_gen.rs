//! A generator of realistic trail trees, for tests and the benchmark.
//!
//! Most records are other services' calls (EC2, S3, STS, IAM, KMS, CloudWatch
//! Logs, and SSM calls that are not sessions), 1–2 KB each as in real trails;
//! session calls are a small share. The tree also holds what a reader must
//! survive: corrupt files, records just before midnight in the next day's
//! folder, malformed session records and strings full of escapes. The manifest
//! says exactly what a correct reader returns.
//!
//! With `digests`, it also writes the hourly, chained digest files CloudTrail
//! writes with log file validation on, signed with the generator's own test
//! RSA key ([`digest_public_key`]; never a real key), each digest's signature
//! in a `<digest>.sig` sidecar (what S3 keeps as `x-amz-meta-signature`: the
//! simulator's S3 and the moto tests serve it as that metadata). [`Tamper`]
//! knobs then delete, alter or add log files, delete a digest or break the chain.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A day's folder in the trail layout: `YYYY/MM/DD`.
fn day_path(day: NaiveDate) -> String {
    day.format("%Y/%m/%d").to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The sidecar that holds a digest's signature (S3: `x-amz-meta-signature`).
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// `Some` = an organization trail (`AWSLogs/o-…/<account>/…`), `None` = single-account layout.
    pub org_id: Option<String>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub first_day: NaiveDate,
    pub days: u32,
    /// Per partition and day.
    pub files_per_day: u32,
    /// Average; each file holds between a third and five thirds of it.
    pub records_per_file: u32,
    /// Share of records that are session calls (0.0–1.0).
    pub session_share: f64,
    /// Unreadable files (truncated gzip, cut JSON, not gzip, trailing garbage), in turn.
    pub corrupt_files: u32,
    /// Session records that are not valid JSON (counted as malformed by a reader).
    pub malformed_records: u32,
    /// Partition days that get no file at all: (account, region, day).
    pub gaps: Vec<(String, String, NaiveDate)>,
    /// gzip level 0–9.
    pub level: u32,
    pub seed: u64,
    /// Write hourly digest files (chained, signed) for every partition.
    pub digests: bool,
    /// What to do to the tree after the digests were computed.
    pub tamper: Vec<Tamper>,
}

/// A log file of the tree: partition, day and its index among that day's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
    pub index: u32,
}

/// Damage done to a tree whose digests are honest: what a validator must find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The digest lists it; the file is gone.
    DeleteLog(FileRef),
    /// The file is rewritten (still valid JSON, the same records): its hash differs.
    AlterLog(FileRef),
    /// The file is there, in no digest (added after the fact).
    UnlistedLog(FileRef),
    /// The digest of the hour starting at `hour` (0–23) of `day` is gone.
    DeleteDigest {
        account: String,
        region: String,
        day: NaiveDate,
        hour: u32,
    },
    /// That digest's text is changed after its successor hashed it (and after
    /// it was signed): the chain breaks there.
    BreakChain {
        account: String,
        region: String,
        day: NaiveDate,
        hour: u32,
    },
}

/// The name of the generated trail, and its home region (in digest names).
pub const TRAIL_NAME: &str = "org-trail";
pub const HOME_REGION: &str = "us-east-1";
/// The bucket the digests say they are in.
pub const BUCKET: &str = "gen-trail-bucket";
/// The fingerprint the generator's key is published under.
pub const KEY_FINGERPRINT: &str = "5e1f0c0ffee0d16e57ca11ab1e5ee0d5";

/// The generator's test key: 2048-bit RSA, PKCS #1 DER, made once with
/// `openssl genrsa` for the tests and the simulator. It signs nothing real.
const DIGEST_KEY_DER: &[u8] = include_bytes!("gen_digest_key.der");

/// The public half of the generator's key (PKCS #1 DER) and its fingerprint,
/// as CloudTrail `ListPublicKeys` returns them.
pub fn digest_public_key() -> (String, Vec<u8>) {
    use aws_lc_rs::signature::KeyPair;
    let der = aws_lc_rs::signature::RsaKeyPair::from_der(DIGEST_KEY_DER)
        .map(|k| k.public_key().as_ref().to_vec())
        .unwrap_or_default();
    (KEY_FINGERPRINT.to_string(), der)
}

fn sign_hex(msg: &[u8]) -> io::Result<String> {
    let kp = aws_lc_rs::signature::RsaKeyPair::from_der(DIGEST_KEY_DER)
        .map_err(|e| io::Error::other(format!("the generator's key: {e}")))?;
    let mut sig = vec![0u8; kp.public_modulus_len()];
    kp.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg,
        &mut sig,
    )
    .map_err(|_| io::Error::other("signing a digest failed"))?;
    Ok(hex::encode(sig))
}

impl GenSpec {
    /// A small organization tree: 3 accounts, 2 regions, 3 days.
    pub fn small(first_day: NaiveDate) -> Self {
        GenSpec {
            org_id: Some("o-a1b2c3d4e5".into()),
            accounts: vec![
                "111111111111".into(),
                "222222222222".into(),
                "333333333333".into(),
            ],
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            first_day,
            days: 3,
            files_per_day: 4,
            records_per_file: 60,
            session_share: 0.05,
            corrupt_files: 4,
            malformed_records: 2,
            gaps: Vec::new(),
            level: 6,
            seed: 7,
            digests: false,
            tamper: Vec::new(),
        }
    }
}

/// A session record the generator wrote into a readable file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GenEvent {
    pub event_id: String,
    pub account: String,
    pub region: String,
    pub time: DateTime<Utc>,
    pub name: String,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GenFile {
    /// Relative to the root, `/`-separated.
    pub key: String,
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
    pub delivered: DateTime<Utc>,
    pub bytes_compressed: u64,
    pub bytes_uncompressed: u64,
    pub records: u64,
    /// Deliberately unreadable.
    pub corrupt: bool,
    /// Listed in a digest (with the hash of what was first written).
    pub digested: bool,
    /// Tampered with after the digest: deleted (not on disk), altered, or unlisted.
    pub deleted: bool,
    pub altered: bool,
}

/// Everything the generator wrote, to check a reader against.
#[derive(Debug, Clone, Default)]
pub struct GenManifest {
    pub files: Vec<GenFile>,
    pub sessions: Vec<GenEvent>,
    /// Session records written broken; a reader counts them as malformed.
    pub malformed: Vec<GenEvent>,
    /// Digest files written (keys relative to the root), deleted ones excluded.
    pub digests: Vec<String>,
}

impl GenManifest {
    /// The event ids of the well-formed session records `keep` selects: what a
    /// correct reader returns for the selection `keep` stands for.
    pub fn expected(&self, keep: impl Fn(&GenEvent) -> bool) -> BTreeSet<String> {
        self.sessions
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.event_id.clone())
            .collect()
    }

    pub fn bytes_uncompressed(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_uncompressed).sum()
    }

    pub fn bytes_compressed(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_compressed).sum()
    }
}

/// Write the tree under `root` (which gets `AWSLogs/…`), on every core.
pub fn generate(root: &Path, spec: &GenSpec) -> io::Result<GenManifest> {
    let partitions: Vec<(usize, &String, &String)> = spec
        .accounts
        .iter()
        .flat_map(|a| spec.regions.iter().map(move |r| (a, r)))
        .enumerate()
        .map(|(i, (a, r))| (i, a, r))
        .collect();
    let next = AtomicUsize::new(0);
    let out = Mutex::new(GenManifest::default());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> io::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(idx, account, region)) = partitions.get(i) else {
                            return Ok(());
                        };
                        let m = partition(root, spec, idx, partitions.len(), account, region)?;
                        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                        o.files.extend(m.files);
                        o.sessions.extend(m.sessions);
                        o.malformed.extend(m.malformed);
                        o.digests.extend(m.digests);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| io::Error::other("generator thread panicked"))??;
        }
        Ok::<(), io::Error>(())
    })?;
    let mut m = out.into_inner().unwrap_or_else(|p| p.into_inner());
    m.files.sort();
    m.sessions.sort();
    m.malformed.sort();
    m.digests.sort();
    Ok(m)
}

const SERVICES: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("s3.amazonaws.com", "GetBucketAcl"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("iam.amazonaws.com", "GetRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("logs.amazonaws.com", "CreateLogStream"),
    ("ssm.amazonaws.com", "GetParameter"),
    ("ssm.amazonaws.com", "UpdateInstanceInformation"),
    ("ssm.amazonaws.com", "ListInstanceAssociations"),
];

const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off md/command#ssm.start-session",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.155.1",
    "aws-internal/3 aws-sdk-java/1.12.680 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard",
    // Caller-chosen text: quotes, backslashes, brackets and escapes a splitter must get right.
    "evil \\\"agent\\\" {\\\"Records\\\":[} ] \\\\ \\u00e9t\\u00e9 \\t\\n",
];

const ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "AWSReservedSSO_AdministratorAccess_0123456789abcdef",
    "ci-deploy",
    "platform-readonly",
];

fn uuid(rng: &mut SmallRng) -> String {
    let a: u128 = rng.random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn hex(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn upper(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| (b'A' + rng.random_range(0..26u8)) as char)
        .collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct Ctx<'a> {
    account: &'a str,
    region: &'a str,
}

/// The identity block: an assumed role (often SSO), an IAM user, or an instance role.
fn identity(rng: &mut SmallRng, c: &Ctx, t: DateTime<Utc>) -> (String, String) {
    let acct = c.account;
    let k = rng.random_range(0..10);
    if k < 6 {
        let role = ROLES[rng.random_range(0..ROLES.len())];
        let who = ["alice", "bob", "carol", "dave", "erin"][rng.random_range(0..5)];
        let rid = upper(rng, 17);
        let key = upper(rng, 16);
        let created = ts(t - TimeDelta::minutes(rng.random_range(1..600)));
        (
            format!(
                r#"{{"type":"AssumedRole","principalId":"AROA{rid}:{who}","arn":"arn:aws:sts::{acct}:assumed-role/{role}/{who}","accountId":"{acct}","accessKeyId":"ASIA{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{rid}","arn":"arn:aws:iam::{acct}:role/{role}","accountId":"{acct}","userName":"{role}"}},"attributes":{{"creationDate":"{created}","mfaAuthenticated":"{}"}}}}}}"#,
                rng.random_bool(0.3)
            ),
            who.to_string(),
        )
    } else if k < 8 {
        let user = ["deploy-bot", "legacy.admin", "backup"][rng.random_range(0..3)];
        let uid = upper(rng, 17);
        let key = upper(rng, 16);
        (
            format!(
                r#"{{"type":"IAMUser","principalId":"AIDA{uid}","arn":"arn:aws:iam::{acct}:user/{user}","accountId":"{acct}","accessKeyId":"AKIA{key}","userName":"{user}"}}"#
            ),
            user.to_string(),
        )
    } else {
        let inst = format!("i-0{}", hex(rng, 16));
        let rid = upper(rng, 17);
        let key = upper(rng, 16);
        let created = ts(t - TimeDelta::minutes(rng.random_range(1..600)));
        (
            format!(
                r#"{{"type":"AssumedRole","principalId":"AROA{rid}:{inst}","arn":"arn:aws:sts::{acct}:assumed-role/ec2-ssm-core/{inst}","accountId":"{acct}","accessKeyId":"ASIA{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{rid}","arn":"arn:aws:iam::{acct}:role/ec2-ssm-core","accountId":"{acct}","userName":"ec2-ssm-core"}},"attributes":{{"creationDate":"{created}","mfaAuthenticated":"false"}},"ec2RoleDelivery":"2.0"}}}}"#
            ),
            inst,
        )
    }
}

fn ip(rng: &mut SmallRng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.random_range(1..224),
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    )
}

/// The common envelope around service-specific parts.
#[allow(clippy::too_many_arguments)]
fn envelope(
    out: &mut String,
    rng: &mut SmallRng,
    c: &Ctx,
    t: DateTime<Utc>,
    id: &str,
    source: &str,
    name: &str,
    identity: &str,
    source_ip: &str,
    body: &str,
) {
    let host = source.replace(".amazonaws.com", "");
    let ua = USER_AGENTS[rng.random_range(0..USER_AGENTS.len())];
    let request_id = uuid(rng);
    let read_only =
        name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List");
    let _ = write!(
        out,
        r#"{{"eventVersion":"1.10","userIdentity":{identity},"eventTime":"{}","eventSource":"{source}","eventName":"{name}","awsRegion":"{}","sourceIPAddress":"{source_ip}","userAgent":"{ua}",{body},"requestID":"{request_id}","eventID":"{id}","readOnly":{read_only},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}.{}.amazonaws.com"}}}}"#,
        ts(t),
        c.region,
        c.account,
        c.region,
    );
}

/// A record of another service (or a non-session SSM call).
fn other_record(out: &mut String, rng: &mut SmallRng, c: &Ctx, t: DateTime<Utc>) {
    let (source, name) = SERVICES[rng.random_range(0..SERVICES.len())];
    let (ident, _) = identity(rng, c, t);
    let id = uuid(rng);
    let acct = c.account;
    let region = c.region;
    let mut src_ip = ip(rng);
    let body = match name {
        "DescribeInstances" => {
            let ids: Vec<String> = (0..rng.random_range(1..6))
                .map(|_| format!(r#"{{"instanceId":"i-0{}"}}"#, hex(rng, 16)))
                .collect();
            format!(
                r#""requestParameters":{{"instancesSet":{{"items":[{}]}},"filterSet":{{"items":[{{"name":"tag:Environment","valueSet":{{"items":[{{"value":"production"}}]}}}},{{"name":"instance-state-name","valueSet":{{"items":[{{"value":"running"}},{{"value":"stopped"}}]}}}}]}}}},"responseElements":null"#,
                ids.join(",")
            )
        }
        "DescribeSecurityGroups" => format!(
            r#""requestParameters":{{"securityGroupSet":{{}},"securityGroupIdSet":{{"items":[{{"groupId":"sg-0{}"}}]}},"filterSet":{{}}}},"responseElements":null"#,
            hex(rng, 16)
        ),
        "GetBucketAcl" => {
            let bucket = format!(
                "company-{}-{}",
                ["logs", "data", "artifacts"][rng.random_range(0..3)],
                hex(rng, 8)
            );
            format!(
                r#""requestParameters":{{"bucketName":"{bucket}","Host":"{bucket}.s3.{region}.amazonaws.com","acl":""}},"responseElements":null,"additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"{}","bytesTransferredOut":{}}},"resources":[{{"accountId":"{acct}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]"#,
                upper(rng, 60),
                rng.random_range(300..900)
            )
        }
        "ListBuckets" => format!(
            r#""requestParameters":{{"Host":"s3.{region}.amazonaws.com"}},"responseElements":null,"additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"{}","bytesTransferredOut":{}}}"#,
            upper(rng, 60),
            rng.random_range(1000..9000)
        ),
        "AssumeRole" => {
            let role = ROLES[rng.random_range(0..ROLES.len())];
            format!(
                r#""requestParameters":{{"roleArn":"arn:aws:iam::{acct}:role/{role}","roleSessionName":"session-{}","durationSeconds":3600}},"responseElements":{{"credentials":{{"accessKeyId":"ASIA{}","sessionToken":"IQoJb3JpZ2luX2VjE{}","expiration":"{}"}},"assumedRoleUser":{{"assumedRoleId":"AROA{}:session","arn":"arn:aws:sts::{acct}:assumed-role/{role}/session"}}}},"resources":[{{"accountId":"{acct}","type":"AWS::IAM::Role","ARN":"arn:aws:iam::{acct}:role/{role}"}}]"#,
                hex(rng, 8),
                upper(rng, 16),
                hex(rng, 300),
                "Jan 1, 2030, 12:00:00 AM",
                upper(rng, 17)
            )
        }
        "GetRole" => format!(
            r#""requestParameters":{{"roleName":"{}"}},"responseElements":null"#,
            ROLES[rng.random_range(0..ROLES.len())]
        ),
        "Decrypt" => {
            // KMS calls made on a caller's behalf by SSM name it as the source:
            // the substring pre-filter lets them through, the field test must not.
            if rng.random_bool(0.5) {
                src_ip = "ssm.amazonaws.com".into();
            }
            format!(
                r#""requestParameters":{{"encryptionContext":{{"aws:ssm:SessionId":"session-{}","aws:ssm:TargetId":"i-0{}"}},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}},"responseElements":null,"resources":[{{"accountId":"{acct}","type":"AWS::KMS::Key","ARN":"arn:aws:kms:{region}:{acct}:key/{}"}}]"#,
                hex(rng, 17),
                hex(rng, 16),
                uuid(rng)
            )
        }
        "CreateLogStream" => format!(
            r#""requestParameters":{{"logGroupName":"/aws/ssm/sessions/{}","logStreamName":"{}/{}"}},"responseElements":null"#,
            hex(rng, 6),
            t.format("%Y/%m/%d"),
            hex(rng, 32)
        ),
        _ => format!(
            r#""requestParameters":{{"name":"/app/{}/config","withDecryption":{}}},"responseElements":null"#,
            hex(rng, 6),
            rng.random_bool(0.5)
        ),
    };
    envelope(out, rng, c, t, &id, source, name, &ident, &src_ip, &body);
}

/// A session record: returns (event id, event name).
fn session_record(
    out: &mut String,
    rng: &mut SmallRng,
    c: &Ctx,
    t: DateTime<Utc>,
) -> (String, String) {
    let (ident, who) = identity(rng, c, t);
    let id = uuid(rng);
    let region = c.region;
    let sid = format!("{who}-{}", hex(rng, 17));
    let target = format!("i-0{}", hex(rng, 16));
    let k = rng.random_range(0..100);
    let (name, body) = if k < 50 {
        let doc = match rng.random_range(0..4) {
            0 => String::new(),
            1 => r#","documentName":"AWS-StartPortForwardingSession","parameters":{"portNumber":["5432"],"localPortNumber":["15432"]}"#.to_string(),
            2 => r#","documentName":"AWS-StartSSHSession","parameters":{"portNumber":["22"]}"#.to_string(),
            _ => r#","documentName":"SSM-SessionManagerRunShell""#.to_string(),
        };
        (
            "StartSession",
            format!(
                r#""requestParameters":{{"target":"{target}"{doc}}},"responseElements":{{"sessionId":"{sid}","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{sid}?role=publish_subscribe&cell-number=AAEAAQ"}}"#
            ),
        )
    } else if k < 55 {
        (
            "StartSession",
            format!(
                r#""errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::{}:assumed-role/x/{who} is not authorized to perform: ssm:StartSession on resource: arn:aws:ec2:{region}:{}:instance/{target}","requestParameters":{{"target":"{target}"}},"responseElements":null"#,
                c.account, c.account
            ),
        )
    } else if k < 65 {
        (
            "ResumeSession",
            format!(
                r#""requestParameters":{{"sessionId":"{sid}"}},"responseElements":{{"sessionId":"{sid}","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{sid}?role=publish_subscribe"}}"#
            ),
        )
    } else {
        (
            "TerminateSession",
            format!(
                r#""requestParameters":{{"sessionId":"{sid}"}},"responseElements":{{"sessionId":"{sid}"}}"#
            ),
        )
    };
    let src_ip = ip(rng);
    envelope(
        out,
        rng,
        c,
        t,
        &id,
        "ssm.amazonaws.com",
        name,
        &ident,
        &src_ip,
        &body,
    );
    (id, name.to_string())
}

fn gz(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::new(level),
    );
    e.write_all(data)?;
    e.finish()
}

fn partition(
    root: &Path,
    spec: &GenSpec,
    idx: usize,
    partitions: usize,
    account: &str,
    region: &str,
) -> io::Result<GenManifest> {
    let mut rng =
        SmallRng::seed_from_u64(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ idx as u64);
    let c = Ctx { account, region };
    let mut m = GenManifest::default();
    let dir_of = |day: NaiveDate| -> String {
        match &spec.org_id {
            Some(o) => format!(
                "AWSLogs/{o}/{account}/CloudTrail/{region}/{}",
                day_path(day)
            ),
            None => format!("AWSLogs/{account}/CloudTrail/{region}/{}", day_path(day)),
        }
    };
    // Corrupt files and malformed records go round the partitions in turn.
    let my_corrupt: Vec<u32> = (0..spec.corrupt_files)
        .filter(|k| *k as usize % partitions == idx)
        .collect();
    let mut my_malformed = (0..spec.malformed_records)
        .filter(|k| *k as usize % partitions == idx)
        .count();
    let n = spec.files_per_day.max(1) as i64;
    let mut text = String::new();
    // (key, delivered, hash) of every log file a digest lists.
    let mut listed: Vec<(String, DateTime<Utc>, String)> = Vec::new();
    for d in 0..spec.days {
        let Some(day) = spec.first_day.checked_add_days(chrono::Days::new(d as u64)) else {
            break;
        };
        if spec
            .gaps
            .iter()
            .any(|(a, r, g)| a == account && r == region && *g == day)
        {
            continue;
        }
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let dir = dir_of(day);
        std::fs::create_dir_all(root.join(&dir))?;
        for i in 0..n {
            // First delivery 5 minutes after midnight, the rest spread over the day.
            let delivered = midnight + TimeDelta::minutes(5 + i * (1420 / n));
            let count = {
                let avg = spec.records_per_file.max(1) as f64;
                rng.random_range((avg / 3.0).max(1.0)..=(avg * 5.0 / 3.0)) as usize
            };
            text.clear();
            text.push_str(r#"{"Records":["#);
            let mut records = 0u64;
            let push_sep = |text: &mut String, records: &mut u64| {
                if *records > 0 {
                    text.push(',');
                }
                *records += 1;
            };
            // The first file of a day holds one session call from 23:58 the day before.
            if i == 0 && d > 0 {
                push_sep(&mut text, &mut records);
                let t = midnight - TimeDelta::seconds(120 - rng.random_range(0..50));
                let (id, name) = session_record(&mut text, &mut rng, &c, t);
                m.sessions.push(ev(id, &c, t, name));
            }
            if i == 0 && my_malformed > 0 {
                my_malformed -= 1;
                push_sep(&mut text, &mut records);
                let id = uuid(&mut rng);
                let t = delivered - TimeDelta::minutes(3);
                // Brackets balance, but it is not JSON.
                let _ = write!(
                    text,
                    r#"{{"eventVersion":"1.10","eventTime":"{}","eventSource":"ssm.amazonaws.com","eventName":"StartSession","awsRegion":"{region}","eventID":"{id}","recipientAccountId":"{account}","requestParameters":{{"target":}}}}"#,
                    ts(t)
                );
                m.malformed.push(ev(id, &c, t, "StartSession".into()));
            }
            for _ in 0..count {
                push_sep(&mut text, &mut records);
                let t = delivered - TimeDelta::seconds(rng.random_range(20..15 * 60));
                if rng.random_bool(spec.session_share.clamp(0.0, 1.0)) {
                    let (id, name) = session_record(&mut text, &mut rng, &c, t);
                    m.sessions.push(ev(id, &c, t, name));
                } else {
                    other_record(&mut text, &mut rng, &c, t);
                }
            }
            text.push_str("]}");
            let body = gz(text.as_bytes(), spec.level)?;
            let key = format!(
                "{dir}/{account}_CloudTrail_{region}_{}_{}.json.gz",
                delivered.format("%Y%m%dT%H%MZ"),
                upper(&mut rng, 16)
            );
            let here = |f: &FileRef| {
                f.account == account && f.region == region && f.day == day && f.index == i as u32
            };
            let tampered = |pick: fn(&Tamper) -> Option<&FileRef>| {
                spec.tamper.iter().filter_map(pick).any(here)
            };
            let deleted = tampered(|t| match t {
                Tamper::DeleteLog(f) => Some(f),
                _ => None,
            });
            let altered = tampered(|t| match t {
                Tamper::AlterLog(f) => Some(f),
                _ => None,
            });
            let unlisted = tampered(|t| match t {
                Tamper::UnlistedLog(f) => Some(f),
                _ => None,
            });
            if spec.digests && !unlisted {
                listed.push((key.clone(), delivered, sha256_hex(text.as_bytes())));
            }
            let mut body = body;
            if altered {
                // The same records, one more space: valid, and not what was hashed.
                text.insert(text.len() - 2, ' ');
                body = gz(text.as_bytes(), spec.level)?;
            }
            if !deleted {
                std::fs::write(root.join(&key), &body)?;
            }
            m.files.push(GenFile {
                key,
                account: account.into(),
                region: region.into(),
                day,
                delivered,
                bytes_compressed: body.len() as u64,
                bytes_uncompressed: text.len() as u64,
                records,
                corrupt: false,
                digested: spec.digests && !unlisted,
                deleted,
                altered,
            });
        }
        // Corrupt files: the k-th lands on day k (mod days) of its partition.
        for &k in my_corrupt.iter().filter(|k| *k % spec.days.max(1) == d) {
            let delivered = midnight + TimeDelta::minutes(30 + k as i64);
            text.clear();
            text.push_str(r#"{"Records":["#);
            for j in 0..20 {
                if j > 0 {
                    text.push(',');
                }
                other_record(&mut text, &mut rng, &c, delivered - TimeDelta::minutes(2));
            }
            text.push_str("]}");
            let body = match k % 4 {
                0 => {
                    let z = gz(text.as_bytes(), spec.level)?;
                    z[..z.len() / 2].to_vec()
                }
                1 => gz(&text.as_bytes()[..text.len() * 2 / 3], spec.level)?,
                2 => b"PK\x03\x04 this is a zip, not a trail file".to_vec(),
                _ => {
                    let mut z = gz(text.as_bytes(), spec.level)?;
                    z.extend_from_slice(b"trailing bytes");
                    z
                }
            };
            let key = format!(
                "{}/{account}_CloudTrail_{region}_{}_{}.json.gz",
                dir,
                delivered.format("%Y%m%dT%H%MZ"),
                upper(&mut rng, 16)
            );
            std::fs::write(root.join(&key), &body)?;
            m.files.push(GenFile {
                key,
                account: account.into(),
                region: region.into(),
                day,
                delivered,
                bytes_compressed: body.len() as u64,
                bytes_uncompressed: 0,
                records: 0,
                corrupt: true,
                digested: false,
                deleted: false,
                altered: false,
            });
        }
    }
    if spec.digests {
        m.digests = write_digests(root, spec, account, region, &listed)?;
    }
    Ok(m)
}

/// Hourly digests over the generated days (the last one ends at midnight after
/// them), each listing the files delivered in its hour, chained and signed.
fn write_digests(
    root: &Path,
    spec: &GenSpec,
    account: &str,
    region: &str,
    listed: &[(String, DateTime<Utc>, String)],
) -> io::Result<Vec<String>> {
    let base = match &spec.org_id {
        Some(o) => format!("AWSLogs/{o}/{account}/CloudTrail-Digest/{region}"),
        None => format!("AWSLogs/{account}/CloudTrail-Digest/{region}"),
    };
    let first = spec
        .first_day
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let hours = spec.days as i64 * 24;
    let mut written = Vec::new();
    // (key, decompressed text, signature) of the previous digest.
    let mut prev: Option<(String, Vec<u8>, String)> = None;
    let mut pending_break: Option<(String, Vec<u8>)> = None;
    for h in 0..hours {
        let start = first + TimeDelta::hours(h);
        let end = start + TimeDelta::hours(1);
        let key = format!(
            "{base}/{}/{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{HOME_REGION}_{}.json.gz",
            day_path(end.date_naive()),
            end.format("%Y%m%dT%H%M%SZ")
        );
        let logs: Vec<serde_json::Value> = listed
            .iter()
            .filter(|(_, t, _)| *t >= start && *t < end)
            .map(|(k, _, hash)| {
                serde_json::json!({
                    "s3Bucket": BUCKET, "s3Object": k, "hashValue": hash,
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": ts(end), "oldestEventTime": ts(start),
                })
            })
            .collect();
        let null = serde_json::Value::Null;
        let (pk, ph, ps) = match &prev {
            Some((k, text, sig)) => (
                serde_json::json!(k),
                serde_json::json!(sha256_hex(text)),
                serde_json::json!(sig),
            ),
            None => (null.clone(), null.clone(), null.clone()),
        };
        let doc = serde_json::json!({
            "awsAccountId": account,
            "digestStartTime": ts(start), "digestEndTime": ts(end),
            "digestS3Bucket": BUCKET, "digestS3Object": key,
            "digestPublicKeyFingerprint": KEY_FINGERPRINT,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": ts(end), "oldestEventTime": ts(start),
            "previousDigestS3Bucket": if prev.is_some() { serde_json::json!(BUCKET) } else { null.clone() },
            "previousDigestS3Object": pk, "previousDigestHashValue": ph,
            "previousDigestHashAlgorithm": if prev.is_some() { serde_json::json!("SHA-256") } else { null.clone() },
            "previousDigestSignature": ps,
            "logFiles": logs,
        });
        let text = serde_json::to_vec(&doc).map_err(io::Error::other)?;
        let to_sign = format!(
            "{}\n{BUCKET}/{key}\n{}\n{}",
            ts(end),
            sha256_hex(&text),
            prev.as_ref().map_or("null", |p| p.2.as_str())
        );
        let sig = sign_hex(to_sign.as_bytes())?;
        // The previous digest's text is broken now that this one has hashed it.
        if let Some((k, mut t)) = pending_break.take() {
            if let Some(at) = t.iter().position(|c| *c == b'{') {
                t.insert(at + 1, b' ');
            }
            std::fs::write(root.join(&k), gz(&t, spec.level)?)?;
        }
        let (hday, hour) = (start.date_naive(), (h % 24) as u32);
        let is = |t: &Tamper, want_break: bool| match t {
            Tamper::DeleteDigest {
                account: a,
                region: r,
                day,
                hour: hh,
            } if !want_break => a == account && r == region && *day == hday && *hh == hour,
            Tamper::BreakChain {
                account: a,
                region: r,
                day,
                hour: hh,
            } if want_break => a == account && r == region && *day == hday && *hh == hour,
            _ => false,
        };
        let delete = spec.tamper.iter().any(|t| is(t, false));
        let brk = spec.tamper.iter().any(|t| is(t, true));
        if !delete {
            std::fs::create_dir_all(root.join(&key).parent().unwrap_or(root))?;
            std::fs::write(root.join(&key), gz(&text, spec.level)?)?;
            std::fs::write(root.join(format!("{key}.sig")), &sig)?;
            written.push(key.clone());
            if brk {
                pending_break = Some((key.clone(), text.clone()));
            }
        }
        prev = Some((key, text, sig));
    }
    Ok(written)
}

fn ev(event_id: String, c: &Ctx, time: DateTime<Utc>, name: String) -> GenEvent {
    GenEvent {
        event_id,
        account: c.account.to_string(),
        region: c.region.to_string(),
        time,
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_json_and_realistically_sized() {
        let mut rng = SmallRng::seed_from_u64(1);
        let c = Ctx {
            account: "111122223333",
            region: "eu-west-1",
        };
        let t: DateTime<Utc> = "2025-02-19T10:00:00Z".parse().unwrap();
        let mut total = 0;
        for i in 0..400 {
            let mut s = String::new();
            if i % 4 == 0 {
                session_record(&mut s, &mut rng, &c, t);
            } else {
                other_record(&mut s, &mut rng, &c, t);
            }
            let v: serde_json::Value =
                serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
            assert_eq!(v["recipientAccountId"], "111122223333");
            total += s.len();
        }
        let avg = total / 400;
        assert!((900..2200).contains(&avg), "average record size {avg}");
    }
}
