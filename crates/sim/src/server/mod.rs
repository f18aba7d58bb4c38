//! The HTTP side: one hyper server; each AWS service has a file of its own
//! (organizations.rs, sts.rs, cloudtrail.rs, ssm.rs), routed from [`handle`].
//!
//! State that every request touches is sharded (credentials, per-partition rate
//! buckets, the render cache), so calls to different partitions never wait on one lock.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::data::{iso, Rec, World};
use crate::rng::{base32_u64, hash, hash_str, mix, uuid_from, Rng};
use crate::{
    GroundTruth, IssuedSecret, LookupPaging, PartitionFault, PartitionTimes, SimAccount, SimStats,
};

mod account;
mod cloudtrail;
mod ec2;
mod public_keys;
mod s3;
mod sigv4;

pub use self::s3::BUCKET as TRAIL_BUCKET;
mod organizations;
mod ssm;
mod sts;

use self::cloudtrail::*;
use self::organizations::*;
use self::ssm::*;
use self::sts::*;

type Body = BoxBody<Bytes, io::Error>;

const JSON_TYPE: &str = "application/x-amz-json-1.1";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const SHARDS: usize = 64;
const MAX_BODY: usize = 1 << 20;

/// Operations counted in the stats.
const OPS: [&str; 17] = [
    "ListAccounts",
    "DescribeOrganization",
    "ListRoots",
    "ListOrganizationalUnitsForParent",
    "ListAccountsForParent",
    "AssumeRole",
    "GetCallerIdentity",
    "LookupEvents",
    "DescribeSessions",
    "GetDocument",
    "ListPublicKeys",
    "ListObjectsV2",
    "GetObject",
    "HeadObject",
    "ListRegions",
    "DescribeRegions",
    "Unknown",
];

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    calls: [AtomicU64; OPS.len()],
    throttled: AtomicU64,
    ssm_throttled: AtomicU64,
    injected_errors: AtomicU64,
    injected_slow: AtomicU64,
    injected_resets: AtomicU64,
    org_throttled: AtomicU64,
    access_denied: AtomicU64,
    expired_token: AtomicU64,
    unrecognized_client: AtomicU64,
    client_errors: AtomicU64,
    credentials_issued: AtomicU64,
    bad_signatures: AtomicU64,
    identities_resolved: AtomicU64,
    max_lookup_1s: AtomicU64,
    max_served_1s: AtomicU64,
    events_returned: AtomicU64,
    answer_micros: AtomicU64,
    answers: AtomicU64,
    home_answer_micros: AtomicU64,
    home_answers: AtomicU64,
}

/// Credentials the simulator handed out.
#[derive(Debug, Clone)]
struct Issued {
    account: usize,
    arn: String,
    user_id: String,
    expires: SystemTime,
}

/// What the identity resolver said about a key the simulator did not issue.
#[derive(Debug, Clone)]
enum External {
    /// A principal of one of the organization's accounts.
    Member(Issued),
    /// The resolver refused the key, or named an account outside the organization.
    Outside,
}

/// The rate bucket and recent arrivals of one partition.
struct PartState {
    tokens: f64,
    last: Instant,
    arrivals: VecDeque<Instant>,
    served: VecDeque<Instant>,
    /// The first LookupEvents call's arrival, and how many arrived.
    first: Instant,
    lookups: u64,
}

/// A partition's Session Manager bucket: its tokens and its last refill,
/// which is its last call's arrival.
struct SsmPartState {
    tokens: f64,
    last: Instant,
}

struct State {
    world: Arc<World>,
    creds: Vec<RwLock<HashMap<String, Issued>>>,
    /// Keys the identity resolver has answered for (only with a resolver).
    external: Vec<RwLock<HashMap<String, External>>>,
    parts: Vec<Mutex<HashMap<(usize, u64), PartState>>>,
    /// Session Manager's rate buckets per partition: (tokens, last refill).
    ssm_parts: Vec<Mutex<HashMap<(usize, u64), SsmPartState>>>,
    counters: Counters,
    /// The first request's arrival: the timeline's zero.
    first_request: OnceLock<Instant>,
    /// Each account's first AssumeRole (for [`SimStats::slowest`]), and the
    /// last ListAccounts call.
    roles: Mutex<HashMap<usize, Instant>>,
    last_listing: Mutex<Option<Instant>>,
    /// The first Session Manager call's arrival.
    first_ssm: OnceLock<Instant>,
    /// Each operation's first call (by `OPS` index).
    first_of_op: [OnceLock<Instant>; OPS.len()],
    max_partition: Mutex<Option<String>>,
    serial: AtomicU64,
    cred_serial: AtomicU64,
    /// Every credential set handed out, for [`SimHandle::issued_secrets`].
    issued: Mutex<Vec<IssuedSecret>>,
    seed_mix: u64,
    /// [`SimHandle::set_clock`]: the time late calls are shown against.
    clock: Mutex<Option<DateTime<Utc>>>,
    /// [`SimHandle::fail_partition`]: (account index, region) → how it fails.
    failing: Mutex<HashMap<(usize, String), PartitionFault>>,
    /// S3 over `SimConfig::trail_root`, when set.
    s3: Option<self::s3::Bucket>,
}

/// Who signed a request.
enum Caller {
    /// Static credentials: the management account's own caller.
    Management,
    Issued(Issued),
    /// A key issued elsewhere, as the identity resolver named it.
    External(Issued),
}

impl Caller {
    fn account(&self) -> usize {
        match self {
            Caller::Management => 0,
            Caller::Issued(i) | Caller::External(i) => i.account,
        }
    }
}

/// Why a request's key is refused.
enum Refusal {
    Expired,
    /// Not valid anywhere this simulator can tell (the resolver refused it).
    Invalid,
    /// The resolver could not be asked: a fault of the test setup, not of the caller.
    Unresolved,
}

impl Refusal {
    /// As a JSON 1.1 service (Organizations, CloudTrail) answers it.
    fn json(&self) -> Reply {
        match self {
            Refusal::Expired => json_error(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            Refusal::Invalid => json_error(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            Refusal::Unresolved => json_error(
                500,
                "InternalFailure",
                "simulator: the identity resolver could not be reached",
            ),
        }
    }

    /// As STS (query protocol) answers it.
    fn xml(&self) -> Reply {
        match self {
            Refusal::Expired => xml_error(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            Refusal::Invalid => xml_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
            Refusal::Unresolved => xml_error(
                500,
                "InternalFailure",
                "simulator: the identity resolver could not be reached",
            ),
        }
    }
}

/// The parsed SigV4 credential scope.
struct Auth {
    access_key: String,
    region: Option<String>,
}

/// What a handler decided; latency is added afterwards.
enum Reply {
    Json(String),
    JsonError {
        status: u16,
        code: &'static str,
        message: String,
    },
    Xml(String),
    XmlError {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// Start a JSON body, then cut the connection.
    Reset(String),
    /// XML with a status of its own (EC2's error shape).
    RawXml {
        status: u16,
        body: String,
    },
}

fn json_error(status: u16, code: &'static str, message: impl Into<String>) -> Reply {
    Reply::JsonError {
        status,
        code,
        message: message.into(),
    }
}

fn xml_error(status: u16, code: &'static str, message: impl Into<String>) -> Reply {
    Reply::XmlError {
        status,
        code,
        message: message.into(),
    }
}

/// A running simulator. Dropping it stops the server too.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The accept queue asked for (Linux caps it at `net.core.somaxconn`, 4,096 here).
const LISTEN_BACKLOG: u32 = 65_535;

pub(crate) async fn start(world: Arc<World>, addr: SocketAddr) -> io::Result<SimHandle> {
    // The kernel's largest accept queue, not tokio's default of 1,024: a scan
    // opens thousands of connections at once, and an overflowing queue drops
    // handshakes, which left calls hanging to their 20 s timeout (the kernel
    // counted 32,324 overflows over one benchmark run). An AWS endpoint does
    // not drop them so.
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let addr = listener.local_addr()?;
    let seed_mix = mix(world.cfg.seed ^ 0x5EED);
    let s3 = match &world.cfg.trail_root {
        Some(root) => {
            let mut b = self::s3::Bucket::open(root, world.cfg.trail_cut_bodies)?;
            b.repeat_token = world.cfg.faults.s3_repeat_token;
            Some(b)
        }
        None => None,
    };
    let state = Arc::new(State {
        world,
        creds: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        external: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        parts: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        ssm_parts: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        counters: Counters::default(),
        first_request: OnceLock::new(),
        roles: Mutex::new(HashMap::new()),
        last_listing: Mutex::new(None),
        first_ssm: OnceLock::new(),
        first_of_op: std::array::from_fn(|_| OnceLock::new()),
        max_partition: Mutex::new(None),
        serial: AtomicU64::new(0),
        cred_serial: AtomicU64::new(0),
        issued: Mutex::new(Vec::new()),
        seed_mix,
        clock: Mutex::new(None),
        failing: Mutex::new(HashMap::new()),
        s3,
    });
    let (stop, mut stopped) = watch::channel(false);
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let st = st.clone();
                    let mut conn_stop = stopped.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(st.clone(), req));
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = conn_stop.changed() => {}
                        }
                    });
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(SimHandle {
        addr,
        state,
        stop,
        task,
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn management_account_id(&self) -> String {
        self.state.world.org.management().id.clone()
    }

    pub fn organization_id(&self) -> String {
        self.state.world.org.org_id.clone()
    }

    /// The ARN `GetCallerIdentity` reports for static (management) credentials.
    pub fn management_caller_arn(&self) -> String {
        management_arn(&self.state.world)
    }

    pub fn config(&self) -> &crate::SimConfig {
        &self.state.world.cfg
    }

    pub fn accounts(&self) -> Vec<SimAccount> {
        self.state.world.org.accounts.clone()
    }

    /// Every event id with one of `event_names` (empty: the three session names) in
    /// `[start, end)`, per account and region, and which of them are malformed.
    pub fn ground_truth(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        event_names: &[&str],
    ) -> GroundTruth {
        self.state.world.ground_truth(start, end, event_names)
    }

    /// What Session Manager's records hold now (`DescribeSessions`,
    /// `GetDocument`), for every reachable account and enabled region.
    pub fn ssm_truth(&self) -> crate::SsmTruth {
        self.state.world.ssm_truth(ssm_now(&self.state.world))
    }

    /// Every principal ARN in the records, except the planted new principal.
    pub fn baseline_principals(&self) -> Vec<String> {
        self.state.world.baseline_principals()
    }

    /// The planted `new-principal` ARN, when anomalies are planted.
    pub fn new_principal(&self) -> Option<String> {
        self.state.world.new_principal.clone()
    }

    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Every access key, secret and session token `AssumeRole` has issued so far.
    pub fn issued_secrets(&self) -> Vec<IssuedSecret> {
        self.state
            .issued
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The time LookupEvents shows late planted calls against (`None`: the real
    /// clock), so a test can run consecutive scans at chosen times.
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        *lock(&self.state.clock) = now;
    }

    /// Makes LookupEvents in one partition fail (or, with `None`, work again),
    /// from the next call on.
    pub fn fail_partition(
        &self,
        account_index: usize,
        region: &str,
        fault: Option<PartitionFault>,
    ) {
        let mut f = lock(&self.state.failing);
        match fault {
            Some(x) => f.insert((account_index, region.to_string()), x),
            None => f.remove(&(account_index, region.to_string())),
        };
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn management_arn(world: &World) -> String {
    format!(
        "arn:aws:iam::{}:user/security-auditor",
        world.org.management().id
    )
}

impl State {
    /// Now, on the simulator's clock, in epoch seconds.
    fn now(&self) -> i64 {
        self.clock
            .lock()
            .map(|c| *c)
            .unwrap_or(None)
            .unwrap_or_else(Utc::now)
            .timestamp()
    }

    fn partition_fault(&self, account: usize, region: &str) -> Option<PartitionFault> {
        let f = lock(&self.failing);
        if f.is_empty() {
            return None;
        }
        f.get(&(account, region.to_string())).copied()
    }

    fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            requests: get(&c.requests),
            calls: OPS
                .iter()
                .zip(c.calls.iter())
                .filter(|(_, n)| get(n) > 0)
                .map(|(op, n)| (op.to_string(), get(n)))
                .collect(),
            throttled: get(&c.throttled),
            ssm_throttled: get(&c.ssm_throttled),
            injected_errors: get(&c.injected_errors),
            injected_slow: get(&c.injected_slow),
            injected_resets: get(&c.injected_resets),
            org_throttled: get(&c.org_throttled),
            access_denied: get(&c.access_denied),
            expired_token: get(&c.expired_token),
            unrecognized_client: get(&c.unrecognized_client),
            client_errors: get(&c.client_errors),
            credentials_issued: get(&c.credentials_issued),
            bad_signatures: get(&c.bad_signatures),
            identities_resolved: get(&c.identities_resolved),
            max_lookup_calls_1s: get(&c.max_lookup_1s),
            max_served_lookup_calls_1s: get(&c.max_served_1s),
            max_lookup_partition: self.max_partition.lock().map(|p| p.clone()).unwrap_or(None),
            events_returned: get(&c.events_returned),
            answer_micros_total: get(&c.answer_micros),
            answers_timed: get(&c.answers),
            home_answer_micros_total: get(&c.home_answer_micros),
            home_answers_timed: get(&c.home_answers),
            slowest: self.slowest(3),
            last_listing_s: self.since_first(*lock(&self.last_listing)),
            first_ssm_s: self.since_first(self.first_ssm.get().copied()),
            first_call_s: OPS
                .iter()
                .zip(self.first_of_op.iter())
                .filter_map(|(op, t)| Some((op.to_string(), self.since_first(t.get().copied())?)))
                .collect(),
        }
    }

    /// Seconds from the first request to `t`.
    fn since_first(&self, t: Option<Instant>) -> Option<f64> {
        let zero = *self.first_request.get()?;
        t.map(|t| t.saturating_duration_since(zero).as_secs_f64())
    }

    /// The `n` partitions whose last call came latest, and their timelines.
    fn slowest(&self, n: usize) -> Vec<PartitionTimes> {
        let mut ssm_last: HashMap<(usize, u64), Instant> = HashMap::new();
        for shard in &self.ssm_parts {
            ssm_last.extend(lock(shard).iter().map(|(k, st)| (*k, st.last)));
        }
        let mut all: Vec<((usize, u64), Instant, Instant, u64)> = Vec::new();
        for shard in &self.parts {
            all.extend(
                lock(shard)
                    .iter()
                    .map(|(k, st)| (*k, st.first, st.last, st.lookups)),
            );
        }
        let end = |k: &(usize, u64), last: Instant| ssm_last.get(k).map_or(last, |s| last.max(*s));
        all.sort_by_key(|(k, _, last, _)| std::cmp::Reverse(end(k, *last)));
        let roles = lock(&self.roles);
        let regions = &self.world.cfg.regions;
        all.into_iter()
            .take(n)
            .map(|(k, first, last, lookups)| PartitionTimes {
                partition: format!(
                    "{}/{}",
                    self.world.org.accounts[k.0].id,
                    regions
                        .iter()
                        .find(|r| hash_str(r) == k.1)
                        .map_or("?", |r| r.as_str())
                ),
                role_s: self.since_first(roles.get(&k.0).copied()),
                first_lookup_s: self.since_first(Some(first)).unwrap_or(0.0),
                last_lookup_s: self.since_first(Some(last)).unwrap_or(0.0),
                lookups,
                last_ssm_s: self.since_first(ssm_last.get(&k).copied()),
            })
            .collect()
    }

    /// Notes the arrival of an account's AssumeRole (its first only).
    pub(super) fn note_role(&self, account: usize) {
        lock(&self.roles)
            .entry(account)
            .or_insert_with(Instant::now);
    }

    fn count_op(&self, op: &str) {
        if op == "ListAccounts" {
            *lock(&self.last_listing) = Some(Instant::now());
        }
        let i = OPS.iter().position(|o| *o == op).unwrap_or(OPS.len() - 1);
        self.counters.calls[i].fetch_add(1, Ordering::Relaxed);
        self.first_of_op[i].get_or_init(Instant::now);
    }

    /// A deterministic roll in `[0, 1)` for the `serial`-th request.
    fn roll(&self, serial: u64, salt: u64) -> f64 {
        Rng::new(hash(&[self.seed_mix, serial, salt])).unit()
    }

    fn issued(&self, key: &str) -> Option<Issued> {
        let shard = &self.creds[(hash_str(key) as usize) % SHARDS];
        shard.read().map(|m| m.get(key).cloned()).unwrap_or(None)
    }

    fn external(&self, key: &str) -> Option<External> {
        let shard = &self.external[(hash_str(key) as usize) % SHARDS];
        shard.read().map(|m| m.get(key).cloned()).unwrap_or(None)
    }

    fn caller(&self, auth: &Auth) -> Result<Caller, Refusal> {
        match self.issued(&auth.access_key) {
            Some(i) if SystemTime::now() >= i.expires => {
                self.counters.expired_token.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::Expired)
            }
            Some(i) => Ok(Caller::Issued(i)),
            None if self.world.cfg.identity_resolver.is_none() => Ok(Caller::Management),
            None => match self.external(&auth.access_key) {
                Some(External::Member(i)) => Ok(Caller::External(i)),
                Some(External::Outside) => {
                    self.counters
                        .unrecognized_client
                        .fetch_add(1, Ordering::Relaxed);
                    Err(Refusal::Invalid)
                }
                None => Err(Refusal::Unresolved),
            },
        }
    }

    /// Asks the identity resolver who signs with `key`, once per key. A resolver
    /// that cannot be reached leaves the key unknown (asked again next time).
    async fn resolve(&self, key: &str, session_token: Option<String>) {
        let Some(endpoint) = &self.world.cfg.identity_resolver else {
            return;
        };
        if self.issued(key).is_some() || self.external(key).is_some() {
            return;
        }
        // The resolver (moto) maps a key to its principal without checking the
        // signature, so the secret this simulator never saw does not matter.
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                key,
                "simulator-identity-resolver",
                session_token,
                None,
                "simulator-identity-resolver",
            ))
            .timeout_config(
                aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .build();
        let answer = aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send()
            .await;
        let known = match answer {
            Ok(who) => match who
                .account()
                .and_then(|a| self.world.org.by_id.get(a).copied())
            {
                Some(account) => External::Member(Issued {
                    account,
                    arn: who.arn().unwrap_or_default().to_string(),
                    user_id: who.user_id().unwrap_or_default().to_string(),
                    // The resolver's own expiry is not visible here; it enforces it.
                    expires: SystemTime::now() + Duration::from_secs(100 * 365 * 86_400),
                }),
                None => External::Outside,
            },
            // The resolver answered, and refused the key.
            Err(aws_sdk_sts::error::SdkError::ServiceError(_)) => External::Outside,
            Err(e) => {
                tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&e), endpoint, "simulator: identity resolver unreachable");
                return;
            }
        };
        self.counters
            .identities_resolved
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.external[(hash_str(key) as usize) % SHARDS].write() {
            m.insert(key.to_string(), known);
        }
    }

    /// Takes a token from the partition's Session Manager bucket.
    fn admit_ssm(&self, account: usize, region: &str) -> bool {
        let rate = self.world.cfg.ssm.rate;
        let cap = rate.max(1.0);
        let key = (account, hash_str(region));
        let shard = &self.ssm_parts[(hash(&[key.0 as u64, key.1, 0x55]) as usize) % SHARDS];
        let now = Instant::now();
        self.first_ssm.get_or_init(|| now);
        let mut map = lock(shard);
        let st = map.entry(key).or_insert(SsmPartState {
            tokens: cap,
            last: now,
        });
        st.tokens = (st.tokens + now.duration_since(st.last).as_secs_f64() * rate).min(cap);
        st.last = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token from the partition's bucket; records the arrival either way.
    fn admit(&self, account: usize, region: &str) -> bool {
        let world = &self.world;
        let rate = world.cfg.lookup_rate;
        let cap = match world.cfg.lookup_burst {
            b if b > 0.0 => b,
            _ => rate.max(1.0),
        };
        let key = (account, hash_str(region));
        let shard = &self.parts[(hash(&[key.0 as u64, key.1]) as usize) % SHARDS];
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let (ok, arrivals, served) = {
            let mut map = lock(shard);
            let st = map.entry(key).or_insert_with(|| PartState {
                tokens: cap,
                last: now,
                arrivals: VecDeque::new(),
                served: VecDeque::new(),
                first: now,
                lookups: 0,
            });
            st.lookups += 1;
            st.tokens = (st.tokens + now.duration_since(st.last).as_secs_f64() * rate).min(cap);
            st.last = now;
            for q in [&mut st.arrivals, &mut st.served] {
                while q.front().is_some_and(|t| now.duration_since(*t) >= second) {
                    q.pop_front();
                }
            }
            st.arrivals.push_back(now);
            let ok = match world.cfg.lookup_window {
                true => (st.served.len() as f64) < rate,
                false => st.tokens >= 1.0,
            };
            if ok {
                st.tokens -= 1.0;
                st.served.push_back(now);
            }
            (ok, st.arrivals.len() as u64, st.served.len() as u64)
        };
        let c = &self.counters;
        if c.max_lookup_1s.fetch_max(arrivals, Ordering::Relaxed) < arrivals {
            if let Ok(mut p) = self.max_partition.lock() {
                *p = Some(format!("{}/{region}", world.org.accounts[account].id));
            }
        }
        c.max_served_1s.fetch_max(served, Ordering::Relaxed);
        ok
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let arrived = Instant::now();
    state.first_request.get_or_init(|| arrived);
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let serial = state.serial.fetch_add(1, Ordering::Relaxed);
    let request_id = uuid_from(mix(state.seed_mix ^ serial), mix(serial.wrapping_add(0x1D)));
    if req.method() == Method::GET && req.uri().path().starts_with("/_sim/") {
        return Ok(with_request_id(sim_api(&state, &req).await, &request_id));
    }
    if let Some(bucket) = state.s3.as_ref().filter(|_| self::s3::is_s3(&req)) {
        let (op, resp) = self::s3::handle(bucket, &req, &request_id);
        state.count_op(op);
        return Ok(with_request_id(resp, &request_id));
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let reply = json_error(
                400,
                "SerializationException",
                "request body unreadable or too large",
            );
            return Ok(finish(
                &state,
                reply,
                &request_id,
                round_trip(&state, serial, false),
                arrived,
                false,
            )
            .await);
        }
    };
    let auth = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_auth);
    if let Some(a) = &auth {
        let token = parts
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        state.resolve(&a.access_key, token).await;
    }
    if let Some(caller_secret) = &state.world.cfg.verify_signatures {
        let issued = auth.as_ref().and_then(|a| {
            lock(&state.issued)
                .iter()
                .find(|i| i.access_key_id == a.access_key)
                .map(|i| i.secret_access_key.clone())
        });
        let secret = issued.as_deref().unwrap_or(caller_secret);
        if let Err(why) = sigv4::verify(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
            &body,
            secret,
        ) {
            state
                .counters
                .bad_signatures
                .fetch_add(1, Ordering::Relaxed);
            let reply = match parts.headers.contains_key("x-amz-target") {
                true => json_error(403, "InvalidSignatureException", why),
                false => xml_error(403, "SignatureDoesNotMatch", why),
            };
            return Ok(finish(
                &state,
                reply,
                &request_id,
                round_trip(&state, serial, false),
                arrived,
                false,
            )
            .await);
        }
    }
    let target_header = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let target = target_header
        .as_deref()
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_string());
    // CloudTrail and Session Manager are regional; Organizations and STS
    // answer from the home region. (The Rust SDK sends `CloudTrail_20131101.…`,
    // boto the namespaced form.)
    let home = target_header
        .as_deref()
        .is_none_or(|t| !t.contains("CloudTrail_20131101") && !t.starts_with("AmazonSSM."));
    let trip = round_trip(&state, serial, home);
    // The way in: the call is seen (and counted by its bucket) only now.
    let share = state.world.cfg.request_path;
    if share > 0.0 {
        let way_in = trip.mul_f64(share.min(1.0));
        tokio::time::sleep_until((arrived + way_in).into()).await;
    }
    let rest_op = (parts.uri.path() == "/listRegions").then_some("ListRegions");
    let (reply, extra) = match (target, rest_op) {
        (None, Some(op)) => (rest_call(&state, op, auth, &body), Duration::ZERO),
        (Some(op), _) => json_call(&state, &op, auth, &body, serial),
        (None, None) => (
            query_call(&state, auth, &body, serial, &request_id),
            Duration::ZERO,
        ),
    };
    Ok(finish(&state, reply, &request_id, trip + extra, arrived, home).await)
}

/// Answers `wait` (the call's round trip, and any extra) after the request
/// arrived: the simulator's own work counts toward that time instead of
/// adding to it.
async fn finish(
    state: &State,
    reply: Reply,
    request_id: &str,
    wait: Duration,
    arrived: Instant,
    home: bool,
) -> Response<Body> {
    let cfg = &state.world.cfg;
    if !wait.is_zero() {
        tokio::time::sleep_until((arrived + wait).into()).await;
    }
    let resp = with_request_id(render(reply, request_id), request_id);
    let c = &state.counters;
    // With a home latency, the figure is the regional round trip's alone.
    let took = arrived.elapsed().as_micros() as u64;
    if !(home && cfg.home_latency.is_some()) {
        c.answer_micros.fetch_add(took, Ordering::Relaxed);
        c.answers.fetch_add(1, Ordering::Relaxed);
    } else {
        c.home_answer_micros.fetch_add(took, Ordering::Relaxed);
        c.home_answers.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// Call `serial`'s round trip: `latency ± jitter`, or the home region's.
fn round_trip(state: &State, serial: u64, home: bool) -> Duration {
    let cfg = &state.world.cfg;
    let (wait, jitter) = match cfg.home_latency {
        Some(h) if home => (h, h / 4),
        _ => (cfg.latency, cfg.jitter),
    };
    if jitter.is_zero() {
        return wait;
    }
    let j = jitter.as_secs_f64() * (state.roll(serial, 0x717) * 2.0 - 1.0);
    Duration::from_secs_f64((wait.as_secs_f64() + j).max(0.0))
}

fn with_request_id(mut resp: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn respond(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

fn render(reply: Reply, request_id: &str) -> Response<Body> {
    match reply {
        Reply::Json(body) => respond(200, JSON_TYPE, full(body)),
        Reply::JsonError {
            status,
            code,
            message,
        } => {
            let body = json!({ "__type": code, "message": message }).to_string();
            let mut resp = respond(status, JSON_TYPE, full(body));
            resp.headers_mut()
                .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
            resp
        }
        Reply::Xml(body) => respond(200, "text/xml", full(body)),
        Reply::RawXml { status, body } => respond(status, "text/xml", full(body)),
        Reply::XmlError {
            status,
            code,
            message,
        } => {
            let body = format!(
                "<ErrorResponse xmlns=\"{STS_NS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
                xml_escape(&message)
            );
            respond(status, "text/xml", full(body))
        }
        Reply::Reset(body) => {
            let bytes = Bytes::from(body);
            let half = bytes.slice(..bytes.len() / 2);
            let len = bytes.len();
            let frames: Vec<Result<Frame<Bytes>, io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                )),
            ];
            let mut resp = respond(
                200,
                JSON_TYPE,
                StreamBody::new(futures::stream::iter(frames)).boxed(),
            );
            resp.headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
    }
}

/// `Credential=AKID/DATE/REGION/SERVICE/aws4_request` from a SigV4 header.
fn parse_auth(header: &str) -> Option<Auth> {
    let cred = header.split("Credential=").nth(1)?;
    let cred = cred.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let access_key = parts.next()?.to_string();
    let region = parts.nth(1).map(str::to_string);
    if access_key.is_empty() {
        return None;
    }
    Some(Auth { access_key, region })
}

/// REST-JSON services, routed by path (Account Management).
fn rest_call(state: &State, op: &str, auth: Option<Auth>, body: &[u8]) -> Reply {
    state.count_op(op);
    let Some(auth) = auth else {
        state.counters.client_errors.fetch_add(1, Ordering::Relaxed);
        return json_error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    let caller = match state.caller(&auth) {
        Ok(c) => c,
        Err(e) => return e.json(),
    };
    account::list_regions(state, &caller, body)
}

fn json_call(
    state: &State,
    op: &str,
    auth: Option<Auth>,
    body: &[u8],
    serial: u64,
) -> (Reply, Duration) {
    state.count_op(op);
    let c = &state.counters;
    let Some(auth) = auth else {
        c.client_errors.fetch_add(1, Ordering::Relaxed);
        return (
            json_error(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            Duration::ZERO,
        );
    };
    let caller = match state.caller(&auth) {
        Ok(c) => c,
        Err(e) => return (e.json(), Duration::ZERO),
    };
    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                c.client_errors.fetch_add(1, Ordering::Relaxed);
                return (
                    json_error(
                        400,
                        "SerializationException",
                        "Start of structure or map found where not expected.",
                    ),
                    Duration::ZERO,
                );
            }
        }
    };
    match op {
        "LookupEvents" => lookup_events(state, &caller, &auth, &params, serial),
        "DescribeSessions" | "GetDocument" => (
            ssm_call(state, op, &caller, &auth, &params, serial),
            Duration::ZERO,
        ),
        "ListPublicKeys" => (
            Reply::Json(self::public_keys::list_public_keys(&params)),
            Duration::ZERO,
        ),
        "ListAccounts"
        | "DescribeOrganization"
        | "ListRoots"
        | "ListOrganizationalUnitsForParent"
        | "ListAccountsForParent" => (
            organizations(state, op, &caller, &params, serial),
            Duration::ZERO,
        ),
        _ => {
            c.client_errors.fetch_add(1, Ordering::Relaxed);
            (
                json_error(
                    400,
                    "UnknownOperationException",
                    format!("unknown operation {op}"),
                ),
                Duration::ZERO,
            )
        }
    }
}

// ---------------------------------------------------------------- /_sim

async fn sim_api(state: &Arc<State>, req: &Request<Incoming>) -> Response<Body> {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| parse_form(q.as_bytes()))
        .unwrap_or_default();
    let json_ok = |v: String| respond(200, "application/json", full(v));
    let bad = |msg: String| {
        respond(
            400,
            "application/json",
            full(json!({ "error": msg }).to_string()),
        )
    };
    match req.uri().path() {
        "/_sim/stats" => json_ok(serde_json::to_string(&state.stats()).unwrap_or_default()),
        "/_sim/ssm-truth" => {
            let st = state.clone();
            let body = tokio::task::spawn_blocking(move || {
                serde_json::to_string(&st.world.ssm_truth(ssm_now(&st.world)))
            })
            .await;
            match body {
                Ok(Ok(b)) => json_ok(b),
                _ => respond(500, "application/json", full("{\"error\":\"internal\"}")),
            }
        }
        "/_sim/accounts" => {
            json_ok(serde_json::to_string(&state.world.org.accounts).unwrap_or_default())
        }
        "/_sim/ground-truth" | "/_sim/baseline" => {
            let cfg = &state.world.cfg;
            let time = |k: &str, default: DateTime<Utc>| match query.get(k) {
                None => Ok(default),
                Some(v) => DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| format!("{k}: {e}")),
            };
            let (start, end) = match (
                time("start", cfg.window_start()),
                time("end", cfg.window_end),
            ) {
                (Ok(s), Ok(e)) => (s, e),
                (Err(e), _) | (_, Err(e)) => return bad(e),
            };
            let names: Vec<String> = query
                .get("event_names")
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let baseline = req.uri().path() == "/_sim/baseline";
            let st = state.clone();
            // Planning every partition is CPU work: keep it off the async workers.
            let body = tokio::task::spawn_blocking(move || {
                if baseline {
                    serde_json::to_string(&st.world.baseline_principals())
                } else {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    serde_json::to_string(&st.world.ground_truth(start, end, &names))
                }
            })
            .await;
            match body {
                Ok(Ok(b)) => json_ok(b),
                _ => respond(500, "application/json", full("{\"error\":\"internal\"}")),
            }
        }
        other => respond(
            404,
            "application/json",
            full(json!({ "error": format!("no such path {other}") }).to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sigv4_scope() {
        let a = parse_auth("AWS4-HMAC-SHA256 Credential=AKIDX/20261121/eu-west-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=ab").unwrap();
        assert_eq!(a.access_key, "AKIDX");
        assert_eq!(a.region.as_deref(), Some("eu-west-1"));
        assert!(parse_auth("Bearer x").is_none());
    }

    #[test]
    fn tokens_round_trip_and_reject_other_params() {
        let t = lookup_token(99, 1234, 7);
        assert_eq!(parse_lookup_token(&t, 99), Some((1234, 7)));
        assert_eq!(parse_lookup_token(&t, 98), None);
        assert_eq!(parse_lookup_token("garbage", 99), None);
        let o = org_token(5, 40, 3);
        assert_eq!(parse_org_token(&o, 5), Some((40, 3)));
        assert_eq!(parse_org_token(&o, 6), None);
    }

    #[test]
    fn form_decoding() {
        let f = parse_form(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FX&RoleSessionName=a+b");
        assert_eq!(f["RoleArn"], "arn:aws:iam::123456789012:role/X");
        assert_eq!(f["RoleSessionName"], "a b");
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml_escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}

/// A mutex's guard, poisoned or not: a panicked handler must not stop the others.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
