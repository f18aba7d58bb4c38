//! The records: planned deterministically per partition (account, region) from the seed,
//! rendered to CloudTrail's shapes only when a partition is served.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Datelike, Utc, Weekday};
use serde::Serialize;
use serde_json::{json, Value};

use super::org::Org;
use super::rng::{hash, hash_str, Rng};
use super::{GroundTruth, PlantedCase, SimConfig};

pub(crate) const SSM: &str = "ssm.amazonaws.com";
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MIN: i64 = 60;

const FIRST: [&str; 16] = [
    "alice", "bruno", "chen", "dmitri", "elena", "farah", "goran", "hana", "ines", "jonas",
    "kavya", "liam", "mei", "noor", "omar", "priya",
];
const LAST: [&str; 12] = [
    "nguyen", "silva", "wang", "petrov", "garcia", "haddad", "novak", "sato", "costa", "berg",
    "iyer", "walsh",
];
const PERMSETS: [&str; 3] = ["AdministratorAccess", "PowerUserAccess", "SSMOperator"];
pub(crate) const CLI_AGENTS: [&str; 3] = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#ssm.start-session",
    "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0-1020-aws md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#ssm.start-session",
    "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#ssm.start-session",
];
/// The demo's planted markup user agent (the browser test looks for it as text).
pub const HOSTILE_AGENT: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";
const CONSOLE_AGENT: &str = "aws-internal/3 aws-sdk-java/1.12.720 Linux/5.10.219-186.866.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.412-b09 java/1.8.0_412 vendor/Oracle_Corporation cfg/retry-mode/standard";

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Clone)]
pub(crate) struct Issuer {
    pub arn: String,
    pub user_name: String,
    pub principal_id: String,
    pub account_id: String,
}

/// `userIdentity`.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub kind: &'static str,
    pub arn: String,
    pub account_id: String,
    pub principal_id: String,
    pub access_key_id: String,
    /// IAM user name (IAMUser only).
    pub user_name: Option<String>,
    /// Role session name (AssumedRole only).
    pub session_name: Option<String>,
    pub issuer: Option<Issuer>,
    pub ec2_role_delivery: bool,
    pub creation: i64,
}

impl Identity {
    /// What LookupEvents reports as `Username`.
    fn username(&self) -> String {
        match self.kind {
            "Root" => "root".to_string(),
            _ => self
                .session_name
                .clone()
                .or_else(|| self.user_name.clone())
                .unwrap_or_default(),
        }
    }
}

/// One record before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub time: i64,
    pub name: &'static str,
    pub id: String,
    pub read_only: bool,
    pub identity: Option<Identity>,
    pub source_ip: String,
    pub user_agent: String,
    pub request: Value,
    pub response: Value,
    pub error: Option<(String, String)>,
    pub target: Option<String>,
    /// A `CloudTrailEvent` that cannot be read in full (hostile knob): not JSON,
    /// or JSON with an odd time or fields of the wrong type.
    pub malformed: Option<String>,
}

/// One record as LookupEvents serves it.
#[derive(Debug)]
pub(crate) struct Rec {
    pub time: i64,
    pub name: &'static str,
    pub id: String,
    pub read_only: bool,
    pub username: Option<String>,
    pub access_key: Option<String>,
    pub resource: Option<String>,
    /// The whole response object, pre-serialized.
    pub json: String,
}

/// An SSO user of an account.
#[derive(Debug, Clone)]
struct User {
    name: String,
    permset: &'static str,
    /// Index into the active regions.
    home: usize,
    /// Office IP the user works from.
    ip: String,
    targets: u64,
}

/// Everything shared by the generators and the server.
pub(crate) struct World {
    pub cfg: SimConfig,
    pub org: Org,
    region_hash: Vec<u64>,
    pub(crate) ws: i64,
    pub(crate) we: i64,
    /// Midnights of weekdays whose 09:00-17:00 lies inside the window (with margins).
    days: Vec<i64>,
    pub(crate) planted: HashMap<(usize, usize), Vec<Planned>>,
    /// Event id → the first second LookupEvents shows it (planted late calls).
    pub(crate) visible_from: HashMap<String, i64>,
    pub new_principal: Option<String>,
    /// Where each planted case went: case → (account, region index).
    pub(crate) case_at: HashMap<&'static str, (usize, usize)>,
    /// Session Manager's own records beyond what the plan implies (ssm_data.rs).
    pub(crate) ssm: crate::ssm_data::SsmPlanted,
    /// [`SimConfig::rule_cases`]: what the rules must say about planted records.
    cases: Vec<CasePlan>,
    /// Principal ARNs of this run that a previous run knew under other names
    /// (rotating role session names): left out of the baseline...
    rotated: BTreeSet<String>,
    /// ...which holds the previous run's names instead.
    previous_names: Vec<String>,
    cache: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    map: HashMap<(usize, usize), CacheEntry>,
    /// Insertion order, for first-in first-out eviction.
    order: std::collections::VecDeque<(usize, usize)>,
    held: usize,
}

struct CacheEntry {
    cell: Arc<OnceLock<Arc<Vec<Rec>>>>,
    /// Records counted against the budget (0 until rendered).
    size: usize,
}

const SHARDS: usize = 32;
/// Records held by the render cache in all (about 2 KB each).
const CACHE_RECORDS: usize = 48_000;

impl World {
    pub fn new(cfg: SimConfig) -> World {
        let org = Org::new(&cfg);
        let we = cfg.window_end.timestamp();
        let ws = we - cfg.window.num_seconds().max(0);
        let mut days = Vec::new();
        let mut d = ws.div_euclid(DAY) * DAY;
        while d <= we {
            if is_weekday(d) && d + 9 * HOUR >= ws + HOUR && d + 17 * HOUR <= we - HOUR {
                days.push(d);
            }
            d += DAY;
        }
        let region_hash = cfg.regions.iter().map(|r| hash_str(r)).collect();
        let mut world = World {
            cfg,
            org,
            region_hash,
            ws,
            we,
            days,
            planted: HashMap::new(),
            visible_from: HashMap::new(),
            new_principal: None,
            case_at: HashMap::new(),
            ssm: Default::default(),
            cases: Vec::new(),
            rotated: BTreeSet::new(),
            previous_names: Vec::new(),
            cache: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        };
        if world.cfg.plant_anomalies {
            world.plant();
            world.plant_ssm();
        }
        if world.cfg.hostile_records {
            world.plant_hostile();
        }
        world.plant_calls();
        if world.cfg.rule_cases {
            world.plant_rule_cases();
        }
        world
    }

    pub fn region_index(&self, region: &str) -> Option<usize> {
        self.cfg.regions.iter().position(|r| r == region)
    }

    pub(crate) fn active_regions(&self) -> usize {
        self.cfg
            .active_regions
            .unwrap_or(self.cfg.regions.len())
            .min(self.cfg.regions.len())
    }

    fn acct(&self, a: usize) -> &str {
        &self.org.accounts[a].id
    }

    /// The partition's records, newest first, rendered (cached).
    pub fn partition(&self, a: usize, ri: usize) -> Arc<Vec<Rec>> {
        let key = (a, ri);
        let shard = &self.cache[(hash(&[a as u64, ri as u64]) as usize) % SHARDS];
        let cell = {
            let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
            match s.map.get(&key) {
                Some(e) => e.cell.clone(),
                None => {
                    let cell = Arc::new(OnceLock::new());
                    s.map.insert(
                        key,
                        CacheEntry {
                            cell: cell.clone(),
                            size: 0,
                        },
                    );
                    s.order.push_back(key);
                    cell
                }
            }
        };
        // Rendering happens outside the shard lock; concurrent callers of the same
        // partition wait on the cell instead of rendering twice.
        let recs = cell.get_or_init(|| Arc::new(self.render(a, ri))).clone();
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *guard;
        if let Some(e) = s.map.get_mut(&key) {
            if Arc::ptr_eq(&e.cell, &cell) && e.size == 0 {
                e.size = recs.len().max(1);
                s.held += e.size;
                let budget = CACHE_RECORDS / SHARDS;
                while s.held > budget && s.order.len() > 1 {
                    let Some(old) = s.order.pop_front() else {
                        break;
                    };
                    if old == key {
                        s.order.push_back(old);
                        continue;
                    }
                    if let Some(e) = s.map.remove(&old) {
                        s.held = s.held.saturating_sub(e.size);
                    }
                }
            }
        }
        recs
    }

    fn render(&self, a: usize, ri: usize) -> Vec<Rec> {
        let region = &self.cfg.regions[ri];
        let acct = self.acct(a);
        self.plan(a, ri)
            .into_iter()
            .map(|p| render(p, acct, region))
            .collect()
    }

    /// Every record of a partition, newest first.
    pub fn plan(&self, a: usize, ri: usize) -> Vec<Planned> {
        let region = &self.cfg.regions[ri];
        if !self.org.region_enabled(a, region) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let rh = self.region_hash[ri];
        let seed = self.cfg.seed;
        let users = self.users(a);
        let n_active = self.active_regions();
        if ri < n_active {
            let home: Vec<&User> = users.iter().filter(|u| u.home == ri).collect();
            let mut rng = Rng::from_parts(&[seed, a as u64, rh, 0x5E55]);
            let mean = self.cfg.sessions_per_partition as i64;
            let n = if mean == 0 {
                0
            } else {
                rng.range(mean / 2, mean + mean / 2)
            };
            if !home.is_empty() {
                for k in 0..n {
                    let user = *rng.pick(&home);
                    self.session(&mut rng, a, ri, user, k as u64, &mut out);
                }
                self.other_calls(&mut rng, a, ri, home[0], &mut out);
            }
        }
        for h in self.cfg.heavy_partitions.iter() {
            if h.account_index == a && h.region == *region {
                let mut rng = Rng::from_parts(&[seed, a as u64, rh, 0x4EA7]);
                let mut heavy = Vec::with_capacity(h.events + 4);
                let mut k = 1_000_000u64;
                while heavy.len() < h.events && !users.is_empty() {
                    let user = rng.pick(&users).clone();
                    self.session(&mut rng, a, ri, &user, k, &mut heavy);
                    k += 1;
                }
                heavy.truncate(h.events);
                out.extend(heavy);
            }
        }
        if let Some(p) = self.planted.get(&(a, ri)) {
            out.extend(p.iter().cloned());
        }
        out.retain(|p| p.time >= self.ws && p.time <= self.we);
        out.sort_by(|x, y| y.time.cmp(&x.time).then_with(|| x.id.cmp(&y.id)));
        out
    }

    /// The SSO users of an account (a few, each working in one active region).
    fn users(&self, a: usize) -> Vec<User> {
        let n_active = self.active_regions().max(1);
        let mut rng = Rng::from_parts(&[self.cfg.seed, a as u64, 0x05E5]);
        let count = (3 + rng.below(4) as usize).max(n_active);
        let offset = rng.below((FIRST.len() * LAST.len()) as u64) as usize;
        let home0 = rng.below(n_active as u64) as usize;
        (0..count)
            .map(|j| {
                let c = (offset + j * 7) % (FIRST.len() * LAST.len());
                let name = format!(
                    "{}.{}@example.com",
                    FIRST[c % FIRST.len()],
                    LAST[c / FIRST.len()]
                );
                User {
                    name,
                    permset: PERMSETS[rng.below(PERMSETS.len() as u64) as usize],
                    home: (home0 + j) % n_active,
                    ip: office_ip(&mut rng),
                    targets: 2 + rng.below(2),
                }
            })
            .collect()
    }

    pub(crate) fn instance(&self, a: usize, ri: usize, k: u64) -> String {
        let mut rng = Rng::from_parts(&[self.cfg.seed, a as u64, self.region_hash[ri], 0x1D5, k]);
        format!("i-0{}", rng.hex(16))
    }

    /// A time inside the window at `offset` seconds after midnight of a business day.
    fn business_time(&self, rng: &mut Rng, lo: i64, hi: i64) -> i64 {
        if self.days.is_empty() {
            // A window too short for a working day: anywhere inside it.
            let span = (self.we - self.ws).max(0);
            self.ws + rng.range(0, span * 2 / 3)
        } else {
            *rng.pick(&self.days) + rng.range(lo, hi)
        }
    }

    pub(crate) fn sso_identity(
        &self,
        rng: &mut Rng,
        a: usize,
        user: &str,
        permset: &str,
        t: i64,
    ) -> Identity {
        let acct = self.acct(a);
        let mut r = Rng::from_parts(&[self.cfg.seed, a as u64, hash_str(permset), 0x550]);
        let role = format!("AWSReservedSSO_{permset}_{}", r.hex(16));
        let role_id = format!("AROA{}", r.base32(17));
        let home = self.cfg.regions.first().map_or("us-east-1", |s| s.as_str());
        Identity {
            kind: "AssumedRole",
            arn: format!("arn:aws:sts::{acct}:assumed-role/{role}/{user}"),
            account_id: acct.to_string(),
            principal_id: format!("{role_id}:{user}"),
            access_key_id: format!("ASIA{}", rng.base32(16)),
            user_name: None,
            session_name: Some(user.to_string()),
            issuer: Some(Issuer {
                arn: format!(
                    "arn:aws:iam::{acct}:role/aws-reserved/sso.amazonaws.com/{home}/{role}"
                ),
                user_name: role,
                principal_id: role_id,
                account_id: acct.to_string(),
            }),
            ec2_role_delivery: false,
            creation: t - rng.range(2 * MIN, 50 * MIN),
        }
    }

    /// One ordinary session: Start, often a Resume, usually a Terminate.
    fn session(
        &self,
        rng: &mut Rng,
        a: usize,
        ri: usize,
        user: &User,
        k: u64,
        out: &mut Vec<Planned>,
    ) {
        let t0 = self.business_time(rng, 9 * HOUR, 15 * HOUR);
        let dur = rng.range(5 * MIN, 110 * MIN);
        let target = self.instance(
            a,
            ri,
            hash(&[hash_str(&user.name), rng.below(user.targets)]),
        );
        let id = self.sso_identity(rng, a, &user.name, user.permset, t0);
        let console = rng.chance(0.2);
        let (ip, ua) = if console {
            (SSM.to_string(), CONSOLE_AGENT.to_string())
        } else {
            (user.ip.clone(), rng.pick(&CLI_AGENTS).to_string())
        };
        let sid = format!("{}-{}", user.name, session_suffix(self.cfg.seed, a, ri, k));
        let region = &self.cfg.regions[ri];
        let mut req = json!({ "target": target, "reason": ordinary_reason(&sid) });
        if rng.chance(0.2) {
            req["documentName"] = json!("AWS-StartInteractiveCommand");
            req["parameters"] = json!({ "command": [*rng.pick(&["top", "journalctl -f", "sudo systemctl status nginx"])] });
        }
        let event = |t: i64, name: &'static str, req: Value, resp: Value, rng: &mut Rng| Planned {
            time: t,
            name,
            id: rng.uuid(),
            read_only: false,
            identity: Some(id.clone()),
            source_ip: ip.clone(),
            user_agent: ua.clone(),
            request: req,
            response: resp,
            error: None,
            target: if name == "StartSession" {
                Some(target.clone())
            } else {
                None
            },
            malformed: None,
        };
        out.push(event(
            t0 + rng.range(0, 59),
            "StartSession",
            req,
            start_response(&sid, region),
            rng,
        ));
        if dur > 10 * MIN && rng.chance(0.35) {
            let t = t0 + rng.range(2 * MIN, dur - 2 * MIN);
            out.push(event(
                t,
                "ResumeSession",
                json!({ "sessionId": sid }),
                start_response(&sid, region),
                rng,
            ));
        }
        if rng.chance(0.8) {
            out.push(event(
                t0 + dur,
                "TerminateSession",
                json!({ "sessionId": sid }),
                json!({ "sessionId": sid }),
                rng,
            ));
        }
    }

    /// Other SSM calls: they share the partition but are not session events.
    fn other_calls(&self, rng: &mut Rng, a: usize, ri: usize, user: &User, out: &mut Vec<Planned>) {
        for (name, ro) in [("SendCommand", false), ("GetConnectionStatus", true)] {
            let t = self.business_time(rng, 9 * HOUR, 16 * HOUR);
            let target = self.instance(a, ri, hash(&[hash_str(&user.name), 0]));
            let id = self.sso_identity(rng, a, &user.name, user.permset, t);
            let (req, resp) = if name == "SendCommand" {
                (
                    json!({ "instanceIds": [target], "documentName": "AWS-RunShellScript", "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS" }),
                    json!({ "command": { "commandId": rng.uuid(), "documentName": "AWS-RunShellScript", "status": "Pending" } }),
                )
            } else {
                (json!({ "target": target }), Value::Null)
            };
            out.push(Planned {
                time: t,
                name,
                id: rng.uuid(),
                read_only: ro,
                identity: Some(id),
                source_ip: user.ip.clone(),
                user_agent: CLI_AGENTS[0].to_string(),
                request: req,
                response: resp,
                error: None,
                target: Some(target),
                malformed: None,
            });
        }
    }

    /// Every event id in `[start, end)` with one of `names`, per account and region
    /// (half-open, as the tool's windows: an event at exactly `end` is the next
    /// window's).
    pub fn ground_truth(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        names: &[&str],
    ) -> GroundTruth {
        let names: Vec<&str> = if names.is_empty() {
            crate::DEFAULT_EVENT_NAMES.to_vec()
        } else {
            names.to_vec()
        };
        let mut gt = GroundTruth::default();
        for a in 0..self.org.accounts.len() {
            let mut regions = BTreeMap::new();
            for ri in 0..self.cfg.regions.len() {
                let mut ids = BTreeSet::new();
                for p in self.plan(a, ri) {
                    let t = DateTime::from_timestamp(p.time, 0).unwrap_or_default();
                    if t >= start && t < end && names.contains(&p.name) {
                        if p.malformed.is_some() || p.identity.is_none() {
                            gt.malformed.insert(p.id.clone());
                        }
                        ids.insert(p.id);
                    }
                }
                regions.insert(self.cfg.regions[ri].clone(), ids);
            }
            gt.events.insert(self.acct(a).to_string(), regions);
        }
        let inside = |t: i64| {
            let t = DateTime::from_timestamp(t, 0).unwrap_or_default();
            t >= start && t < end
        };
        for c in &self.cases {
            if c.calls
                .iter()
                .all(|(_, t, name)| inside(*t) && names.contains(name))
            {
                gt.cases.push(PlantedCase {
                    name: c.name.to_string(),
                    flag: c.flag.to_string(),
                    account_id: self.acct(c.account).to_string(),
                    fires: c.fires,
                    event_ids: c.calls.iter().map(|(id, _, _)| id.clone()).collect(),
                });
            }
        }
        gt
    }

    /// Every principal ARN in any parseable record, except the planted new principal.
    pub fn baseline_principals(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        for a in 0..self.org.accounts.len() {
            for ri in 0..self.cfg.regions.len() {
                for p in self.plan(a, ri) {
                    if let (Some(id), None) = (&p.identity, &p.malformed) {
                        if !id.arn.is_empty()
                            && Some(&id.arn) != self.new_principal.as_ref()
                            && !self.rotated.contains(&id.arn)
                        {
                            set.insert(id.arn.clone());
                        }
                    }
                }
            }
        }
        set.extend(self.previous_names.iter().cloned());
        set.into_iter().collect()
    }

    /// Reachable account for a planted case, starting the search at `pos`.
    pub(crate) fn pick_account(&self, pos: usize, ri: usize) -> Option<usize> {
        let n = self.org.accounts.len();
        let region = self.cfg.regions.get(ri)?;
        (0..n)
            .map(|k| (pos + k) % n)
            .find(|&a| self.org.reachable(a) && self.org.region_enabled(a, region))
    }

    /// A weekday midnight with 07:30-19:30 inside the window, else a fallback base.
    pub(crate) fn planted_day(&self) -> i64 {
        let mut d = self.we.div_euclid(DAY) * DAY;
        while d >= self.ws - DAY {
            if is_weekday(d)
                && d + 7 * HOUR + 30 * MIN >= self.ws
                && d + 19 * HOUR + 30 * MIN <= self.we
            {
                return d;
            }
            d -= DAY;
        }
        (self.we - 20 * HOUR).max(self.ws) - 7 * HOUR
    }

    fn sunday_3am(&self) -> i64 {
        let mut best = None;
        let mut d = self.we.div_euclid(DAY) * DAY;
        while d >= self.ws - DAY {
            let t = d + 3 * HOUR;
            if t >= self.ws + 10 * MIN && t + HOUR <= self.we {
                let sunday = weekday(d) == Weekday::Sun;
                if sunday {
                    return t;
                }
                best.get_or_insert(t);
            }
            d -= DAY;
        }
        best.unwrap_or(self.ws)
    }

    fn plant(&mut self) {
        let n_active = self.active_regions();
        let odd_region = if self.cfg.regions.len() > n_active && n_active > 0 {
            n_active
        } else {
            self.cfg.regions.len().saturating_sub(1)
        };
        let day = self.planted_day();
        let at = |h: i64, m: i64| day + h * HOUR + m * MIN;
        let seed = self.cfg.seed;
        let mut planted: Vec<((usize, usize), Planned)> = Vec::new();
        let mut pos = 1usize;
        let mut next = |world: &World, ri: usize| -> Option<usize> {
            let a = world.pick_account(pos, ri);
            pos += 1;
            a
        };

        // Each case has its own principal, so the cases do not add up to other flags.
        let cases: [&str; 13] = [
            "root",
            "iam-user",
            "instance-role",
            "cross-account",
            "unapproved-ip",
            "off-hours",
            "port-forwarding",
            "denied",
            "fanout",
            "resume-new-ip",
            "unusual-region",
            "new-principal",
            "long-session",
        ];
        for (ci, case) in cases.iter().enumerate() {
            let ri = if *case == "unusual-region" {
                odd_region
            } else {
                0
            };
            let Some(a) = next(self, ri) else { continue };
            self.case_at.insert(case, (a, ri));
            let acct = self.acct(a).to_string();
            let region = self.cfg.regions[ri].clone();
            let mut rng = Rng::from_parts(&[seed, a as u64, ci as u64, 0x91A7]);
            let target = self.instance(a, ri, 900 + ci as u64);
            let office = office_ip(&mut rng);
            let cli = CLI_AGENTS[ci % CLI_AGENTS.len()].to_string();
            let sso = |world: &World, rng: &mut Rng, user: &str, t: i64| {
                world.sso_identity(rng, a, user, "PowerUserAccess", t)
            };
            let mut s = SessionPlan {
                rng: Rng::from_parts(&[seed, a as u64, ci as u64, 0x5E5]),
                region: region.clone(),
                ip: office.clone(),
                ua: cli.clone(),
                target: target.clone(),
                reason: Some(format!("change CHG-{:04}", 100 + ci)),
                events: Vec::new(),
            };
            match *case {
                "root" => {
                    let t = at(10, 12);
                    let id = Identity {
                        kind: "Root",
                        arn: format!("arn:aws:iam::{acct}:root"),
                        account_id: acct.clone(),
                        principal_id: acct.clone(),
                        access_key_id: format!("ASIA{}", rng.base32(16)),
                        user_name: None,
                        session_name: None,
                        issuer: None,
                        ec2_role_delivery: false,
                        creation: t - 5 * MIN,
                    };
                    s.session(&id, "root", t, None, Some(t + 25 * MIN), None);
                }
                "iam-user" => {
                    let t = at(10, 40);
                    let id = Identity {
                        kind: "IAMUser",
                        arn: format!("arn:aws:iam::{acct}:user/deploy-bot"),
                        account_id: acct.clone(),
                        principal_id: format!("AIDA{}", rng.base32(17)),
                        access_key_id: format!("AKIA{}", rng.base32(16)),
                        user_name: Some("deploy-bot".into()),
                        session_name: None,
                        issuer: None,
                        ec2_role_delivery: false,
                        creation: t,
                    };
                    s.session(&id, "deploy-bot", t, None, Some(t + 15 * MIN), None);
                }
                "instance-role" => {
                    let t = at(11, 5);
                    let instance = format!("i-0{}", rng.hex(16));
                    let role_id = format!("AROA{}", rng.base32(17));
                    let id = Identity {
                        kind: "AssumedRole",
                        arn: format!("arn:aws:sts::{acct}:assumed-role/AppServerRole/{instance}"),
                        account_id: acct.clone(),
                        principal_id: format!("{role_id}:{instance}"),
                        access_key_id: format!("ASIA{}", rng.base32(16)),
                        user_name: None,
                        session_name: Some(instance.clone()),
                        issuer: Some(Issuer {
                            arn: format!("arn:aws:iam::{acct}:role/AppServerRole"),
                            user_name: "AppServerRole".into(),
                            principal_id: role_id,
                            account_id: acct.clone(),
                        }),
                        ec2_role_delivery: true,
                        creation: t - 40 * MIN,
                    };
                    s.session(&id, &instance, t, None, Some(t + 10 * MIN), None);
                }
                "cross-account" => {
                    let other = self
                        .pick_account(a + 1, 0)
                        .filter(|o| *o != a)
                        .unwrap_or((a + 1) % self.org.accounts.len());
                    let t = at(11, 30);
                    let mut id = self.sso_identity(
                        &mut rng,
                        other,
                        "partner.ops@example.com",
                        "AdministratorAccess",
                        t,
                    );
                    if other == a {
                        // A one-account organization: the caller comes from outside it.
                        id.account_id = "210987654321".into();
                        id.arn = id.arn.replace(&acct, "210987654321");
                    }
                    s.session(
                        &id,
                        "partner.ops@example.com",
                        t,
                        None,
                        Some(t + 20 * MIN),
                        None,
                    );
                }
                "unapproved-ip" => {
                    let t = at(12, 10);
                    let id = sso(self, &mut rng, "travel.laptop@example.com", t);
                    s.ip = "185.220.101.7".into();
                    // A caller-chosen user agent that is markup: report.html must show it as text.
                    s.ua = HOSTILE_AGENT.into();
                    s.session(
                        &id,
                        "travel.laptop@example.com",
                        t,
                        None,
                        Some(t + 30 * MIN),
                        None,
                    );
                }
                "off-hours" => {
                    let t = self.sunday_3am();
                    let id = sso(self, &mut rng, "night.owl@example.com", t);
                    s.session(
                        &id,
                        "night.owl@example.com",
                        t,
                        None,
                        Some(t + 25 * MIN),
                        None,
                    );
                }
                "port-forwarding" => {
                    let t = at(13, 15);
                    let id = sso(self, &mut rng, "db.admin@example.com", t);
                    let doc = json!({
                        "target": target,
                        "documentName": "AWS-StartPortForwardingSession",
                        "parameters": { "portNumber": ["5432"], "localPortNumber": ["15432"] }
                    });
                    s.session(
                        &id,
                        "db.admin@example.com",
                        t,
                        None,
                        Some(t + 45 * MIN),
                        Some(doc),
                    );
                }
                "denied" => {
                    let id = self.sso_identity(
                        &mut rng,
                        a,
                        "intern.probe@example.com",
                        "ReadOnlyAccess",
                        at(14, 0),
                    );
                    for (k, m) in [0, 6, 13, 24].into_iter().enumerate() {
                        let t = at(14, m) + k as i64;
                        let msg = format!(
                            "User: {} is not authorized to perform: ssm:StartSession on resource: arn:aws:ec2:{region}:{acct}:instance/{target} because no identity-based policy allows the ssm:StartSession action",
                            id.arn
                        );
                        s.events.push(Planned {
                            time: t,
                            name: "StartSession",
                            id: s.rng.uuid(),
                            read_only: false,
                            identity: Some(id.clone()),
                            source_ip: office.clone(),
                            user_agent: cli.clone(),
                            // As in real denials: the target is only in errorMessage.
                            request: Value::Null,
                            response: Value::Null,
                            error: Some(("AccessDenied".into(), msg)),
                            target: Some(target.clone()),
                            malformed: None,
                        });
                    }
                }
                "fanout" => {
                    let id = sso(self, &mut rng, "ops.sweep@example.com", at(15, 0));
                    for (k, m) in [0i64, 8, 16, 25, 38].into_iter().enumerate() {
                        s.target = self.instance(a, ri, 950 + k as u64);
                        let t = at(15, m);
                        s.session(
                            &id,
                            "ops.sweep@example.com",
                            t,
                            None,
                            Some(t + 5 * MIN),
                            None,
                        );
                    }
                }
                "resume-new-ip" => {
                    let t = at(9, 30);
                    let id = sso(self, &mut rng, "wifi.hopper@example.com", t);
                    s.ip = "203.0.113.45".into();
                    s.session(
                        &id,
                        "wifi.hopper@example.com",
                        t,
                        Some((t + 25 * MIN, "198.51.100.23".into())),
                        Some(t + 50 * MIN),
                        None,
                    );
                }
                "unusual-region" => {
                    let t = at(10, 0);
                    let id = sso(self, &mut rng, "far.traveller@example.com", t);
                    s.session(
                        &id,
                        "far.traveller@example.com",
                        t,
                        None,
                        Some(t + 20 * MIN),
                        None,
                    );
                }
                "new-principal" => {
                    let t = at(16, 0);
                    let id = self.sso_identity(
                        &mut rng,
                        a,
                        "new.contractor@example.com",
                        "AdministratorAccess",
                        t,
                    );
                    self.new_principal = Some(id.arn.clone());
                    s.session(
                        &id,
                        "new.contractor@example.com",
                        t,
                        None,
                        Some(t + 30 * MIN),
                        None,
                    );
                }
                "long-session" => {
                    let t = at(8, 2);
                    let id = sso(self, &mut rng, "batch.runner@example.com", t);
                    s.session(
                        &id,
                        "batch.runner@example.com",
                        t,
                        None,
                        Some(t + 11 * HOUR),
                        None,
                    );
                }
                _ => {}
            }
            planted.extend(s.events.into_iter().map(|e| ((a, ri), e)));
        }
        for (key, e) in planted {
            self.planted.entry(key).or_default().push(e);
        }
    }

    fn plant_hostile(&mut self) {
        let Some(a) = self.pick_account(0, 0) else {
            return;
        };
        let acct = self.acct(a).to_string();
        let region = self.cfg.regions[0].clone();
        let day = self.planted_day();
        let mut rng = Rng::from_parts(&[self.cfg.seed, a as u64, 0xBAD]);
        let target = self.instance(a, 0, 990);
        let base = day + 12 * HOUR;
        let mut out = Vec::new();
        let plain = |rng: &mut Rng, world: &World, t: i64, user: &str, ua: String| {
            let id = world.sso_identity(rng, a, user, "SSMOperator", t);
            let sid = format!("{}-{}", user, rng.hex(17));
            Planned {
                time: t,
                name: "StartSession",
                id: rng.uuid(),
                read_only: false,
                identity: Some(id),
                source_ip: "203.0.113.99".into(),
                user_agent: ua,
                request: json!({ "target": target }),
                response: start_response(&sid, &region),
                error: None,
                target: Some(target.clone()),
                malformed: None,
            }
        };
        let agents = [
            format!("aws-cli/2.15.30 {}", "A".repeat(100 * 1024)),
            "aws-cli/2.15.30 \u{1b}[2J\u{1b}[1;31mALL CLEAR\u{1b}[0m\u{7}\r\n\u{8}\u{0}"
                .to_string(),
            "=HYPERLINK(\"https://evil.example/x\",\"Click for details\")".to_string(),
            "+cmd|' /C calc'!A0".to_string(),
            "-2+3+cmd|' /C calc'!A0".to_string(),
            "@SUM(1+9)*cmd|' /C calc'!A0".to_string(),
        ];
        for (k, ua) in agents.into_iter().enumerate() {
            out.push(plain(
                &mut rng,
                self,
                base + k as i64 * 2 * MIN,
                "pat.kowalski@example.com",
                ua,
            ));
        }
        for (k, user) in [
            "mallory\u{1b}[31m\u{7}@example.com",
            "=HYPERLINK(\"https://evil.example\")@example.com",
        ]
        .into_iter()
        .enumerate()
        {
            out.push(plain(
                &mut rng,
                self,
                base + 15 * MIN + k as i64 * MIN,
                user,
                CLI_AGENTS[0].into(),
            ));
        }
        let mut missing = plain(
            &mut rng,
            self,
            base + 20 * MIN,
            "ghost@example.com",
            CLI_AGENTS[1].into(),
        );
        missing.identity = None;
        out.push(missing);
        // Records that are JSON but cannot be read in full: kept with what parsed.
        for (k, odd) in [
            // A pipeline's own time format, not CloudTrail's.
            json!({ "eventTime": Value::Null }),
            // Wrong types where strings and objects belong.
            json!({ "sourceIPAddress": 3_405_803_786u64, "requestParameters": [target.clone()] }),
        ]
        .into_iter()
        .enumerate()
        {
            let t = base + 22 * MIN + k as i64 * MIN;
            let mut e = plain(
                &mut rng,
                self,
                t,
                "odd.shape@example.com",
                CLI_AGENTS[2].into(),
            );
            let mut v: Value =
                serde_json::from_str(&record_json(&e, &acct, &region)).unwrap_or_default();
            for (key, value) in odd.as_object().into_iter().flatten() {
                v[key.as_str()] = if key == "eventTime" {
                    json!(DateTime::from_timestamp(t, 0)
                        .unwrap_or_default()
                        .format("%Y-%m-%d %H:%M:%S UTC")
                        .to_string())
                } else {
                    value.clone()
                };
            }
            e.malformed = Some(v.to_string());
            out.push(e);
        }
        for (k, raw) in [
            format!("{{\"eventVersion\":\"1.09\",\"userIdentity\":{{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::{acct}:assumed-role/"),
            "<html><body>502 Bad Gateway</body></html>\u{0}\u{1b}[31m".to_string(),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = plain(&mut rng, self, base + 25 * MIN + k as i64 * MIN, "broken@example.com", CLI_AGENTS[0].into());
            e.identity = None;
            e.malformed = Some(raw);
            out.push(e);
        }
        self.planted.entry((a, 0)).or_default().extend(out);
    }
}

/// One planted case of [`SimConfig::rule_cases`].
#[derive(Debug, Clone)]
struct CasePlan {
    name: &'static str,
    flag: &'static str,
    account: usize,
    fires: bool,
    /// (event id, time, event name) of every record the case is about.
    calls: Vec<(String, i64, &'static str)>,
}

impl CasePlan {
    fn new(
        name: &'static str,
        flag: &'static str,
        account: usize,
        fires: bool,
        events: &[Planned],
    ) -> CasePlan {
        CasePlan {
            name,
            flag,
            account,
            fires,
            calls: events
                .iter()
                .map(|e| (e.id.clone(), e.time, e.name))
                .collect(),
        }
    }
}

/// One record of a planted case, in a successful shape unless `error` is set.
#[allow(clippy::too_many_arguments)]
fn call(
    rng: &mut Rng,
    time: i64,
    name: &'static str,
    identity: &Identity,
    ip: &str,
    request: Value,
    response: Value,
    error: Option<(&str, String)>,
    target: Option<&str>,
) -> Planned {
    Planned {
        time,
        name,
        id: rng.uuid(),
        read_only: false,
        identity: Some(identity.clone()),
        source_ip: ip.to_string(),
        user_agent: CLI_AGENTS[1].to_string(),
        request,
        response,
        error: error.map(|(code, msg)| (code.to_string(), msg)),
        target: target.map(str::to_string),
        malformed: None,
    }
}

impl World {
    /// [`SimConfig::rule_cases`]: each case has its own principal, so the cases
    /// neither add up to each other nor to `plant()`'s.
    fn plant_rule_cases(&mut self) {
        let day = self.planted_day();
        let at = |h: i64, m: i64| day + h * HOUR + m * MIN;
        let seed = self.cfg.seed;
        let region = self.cfg.regions[0].clone();
        let names = [
            "target-not-connected",
            "rotating-session-names",
            "denied-tunnel",
            "console-iam-user",
            "long-term-iam-user",
            "sessionless-off-hours",
            "sessionless-tunnel",
            "resume-from-mapped-ip",
        ];
        for (ci, name) in names.into_iter().enumerate() {
            let Some(a) = self.pick_account(ci, 0) else {
                continue;
            };
            let acct = self.acct(a).to_string();
            let mut rng = Rng::from_parts(&[seed, a as u64, ci as u64, 0xCA5E]);
            let target = self.instance(a, 0, 700 + ci as u64);
            let ip = format!("203.0.113.{}", 60 + ci);
            let sso = |world: &World, rng: &mut Rng, user: &str, t: i64| {
                world.sso_identity(rng, a, user, "SSMOperator", t)
            };
            let iam_user = |rng: &mut Rng, user: &str, key: &str, t: i64| Identity {
                kind: "IAMUser",
                arn: format!("arn:aws:iam::{acct}:user/{user}"),
                account_id: acct.clone(),
                principal_id: format!("AIDA{}", rng.base32(17)),
                access_key_id: format!("{key}{}", rng.base32(16)),
                user_name: Some(user.to_string()),
                session_name: None,
                issuer: None,
                ec2_role_delivery: false,
                creation: t - 10 * MIN,
            };
            let denial = |arn: &str, resource: &str| {
                format!("User: {arn} is not authorized to perform: ssm:StartSession on resource: {resource} because no identity-based policy allows the ssm:StartSession action")
            };
            let mut s = SessionPlan {
                rng: Rng::from_parts(&[seed, a as u64, ci as u64, 0x5E55]),
                region: region.clone(),
                ip: ip.clone(),
                ua: CLI_AGENTS[0].to_string(),
                target: target.clone(),
                // A reason, so that no case adds `no-reason` under `require_reason`.
                reason: Some(format!("change CHG-{:04}", 700 + ci)),
                events: Vec::new(),
            };
            let mut cases = Vec::new();
            match name {
                // The agent is offline: failures, not denials.
                "target-not-connected" => {
                    let id = sso(self, &mut rng, "flaky.agent@example.com", at(14, 0));
                    for m in [0, 5, 10, 15] {
                        let e = call(
                            &mut rng,
                            at(14, m),
                            "StartSession",
                            &id,
                            &ip,
                            json!({ "target": target }),
                            Value::Null,
                            Some(("TargetNotConnected", format!("{target} is not connected."))),
                            Some(&target),
                        );
                        s.events.push(e);
                    }
                    cases.push(("denied-attempts", false));
                }
                // Five denials of one role under five session names, on four
                // targets named only in errorMessage (real denials carry
                // `requestParameters: null`).
                "rotating-session-names" => {
                    let role_id = format!("AROA{}", rng.base32(17));
                    let targets: Vec<String> =
                        (0..4).map(|k| self.instance(a, 0, 750 + k)).collect();
                    for (k, m) in [0i64, 7, 15, 26, 41].into_iter().enumerate() {
                        let session = format!(
                            "botocore-session-{}",
                            rng.range(1_700_000_000, 1_800_000_000)
                        );
                        let arn = format!("arn:aws:sts::{acct}:assumed-role/ci-deployer/{session}");
                        let id = Identity {
                            kind: "AssumedRole",
                            arn: arn.clone(),
                            account_id: acct.clone(),
                            principal_id: format!("{role_id}:{session}"),
                            access_key_id: format!("ASIA{}", rng.base32(16)),
                            user_name: None,
                            session_name: Some(session),
                            issuer: Some(Issuer {
                                arn: format!("arn:aws:iam::{acct}:role/ci-deployer"),
                                user_name: "ci-deployer".into(),
                                principal_id: role_id.clone(),
                                account_id: acct.clone(),
                            }),
                            ec2_role_delivery: false,
                            creation: at(15, m) - MIN,
                        };
                        let t = &targets[k % targets.len()];
                        let resource = format!("arn:aws:ec2:{region}:{acct}:instance/{t}");
                        let e = call(
                            &mut rng,
                            at(15, m),
                            "StartSession",
                            &id,
                            &ip,
                            Value::Null,
                            Value::Null,
                            Some(("AccessDenied", denial(&arn, &resource))),
                            Some(t),
                        );
                        self.rotated.insert(arn);
                        s.events.push(e);
                    }
                    // A previous run saw the same role under another name.
                    self.previous_names.push(format!(
                        "arn:aws:sts::{acct}:assumed-role/ci-deployer/botocore-session-1600000000"
                    ));
                    cases.push(("denied-attempts", true));
                    cases.push(("target-fanout", true));
                    cases.push(("new-principal", false));
                }
                // A denied tunnel: the document is named only in errorMessage.
                "denied-tunnel" => {
                    let id = sso(self, &mut rng, "tunnel.denied@example.com", at(13, 40));
                    let resource = format!(
                        "arn:aws:ssm:{region}::document/AWS-StartPortForwardingSessionToRemoteHost"
                    );
                    let msg = denial(&id.arn, &resource);
                    let e = call(
                        &mut rng,
                        at(13, 40),
                        "StartSession",
                        &id,
                        &ip,
                        Value::Null,
                        Value::Null,
                        Some(("AccessDenied", msg)),
                        None,
                    );
                    s.events.push(e);
                    cases.push(("port-forwarding", true));
                }
                // Console sign-in: temporary (ASIA) keys are not long-term keys.
                "console-iam-user" => {
                    let t = at(11, 20);
                    let id = iam_user(&mut rng, "console.admin", "ASIA", t);
                    s.ua = CONSOLE_AGENT.to_string();
                    s.session(&id, "console.admin", t, None, Some(t + 15 * MIN), None);
                    cases.push(("iam-user-session", false));
                }
                "long-term-iam-user" => {
                    let t = at(11, 50);
                    let id = iam_user(&mut rng, "build-agent", "AKIA", t);
                    s.session(&id, "build-agent", t, None, Some(t + 10 * MIN), None);
                    cases.push(("iam-user-session", true));
                }
                // Successful StartSessions whose response holds no session id.
                "sessionless-off-hours" => {
                    let t = self.sunday_3am() + 40 * MIN;
                    let id = sso(self, &mut rng, "night.batch@example.com", t);
                    let e = call(
                        &mut rng,
                        t,
                        "StartSession",
                        &id,
                        &ip,
                        json!({ "target": target }),
                        Value::Null,
                        None,
                        Some(&target),
                    );
                    s.events.push(e);
                    cases.push(("off-hours", true));
                }
                "sessionless-tunnel" => {
                    let t = at(10, 25);
                    let id = sso(self, &mut rng, "ssh.jump@example.com", t);
                    let req = json!({
                        "target": target,
                        "documentName": "AWS-StartSSHSession",
                        "parameters": { "portNumber": ["22"] }
                    });
                    let e = call(
                        &mut rng,
                        t,
                        "StartSession",
                        &id,
                        &ip,
                        req,
                        Value::Null,
                        None,
                        Some(&target),
                    );
                    s.events.push(e);
                    cases.push(("port-forwarding", true));
                }
                // The same address, written as IPv4-mapped IPv6 on the resume.
                "resume-from-mapped-ip" => {
                    let t = at(9, 45);
                    let id = sso(self, &mut rng, "dual.stack@example.com", t);
                    s.session(
                        &id,
                        "dual.stack@example.com",
                        t,
                        Some((t + 20 * MIN, format!("::ffff:{ip}"))),
                        Some(t + 40 * MIN),
                        None,
                    );
                    cases.push(("resume-from-new-ip", false));
                }
                _ => {}
            }
            for (flag, fires) in cases {
                self.cases
                    .push(CasePlan::new(name, flag, a, fires, &s.events));
            }
            self.planted.entry((a, 0)).or_default().extend(s.events);
        }
    }
}

/// Builds the records of one planted session.
pub(crate) struct SessionPlan {
    pub(crate) rng: Rng,
    pub(crate) region: String,
    pub(crate) ip: String,
    pub(crate) ua: String,
    pub(crate) target: String,
    /// StartSession's `requestParameters.reason` (`None`: no reason given).
    pub(crate) reason: Option<String>,
    pub(crate) events: Vec<Planned>,
}

impl SessionPlan {
    /// Plans Start (+ Resume) (+ Terminate); returns the session id.
    pub(crate) fn session(
        &mut self,
        id: &Identity,
        who: &str,
        start: i64,
        resume: Option<(i64, String)>,
        end: Option<i64>,
        request: Option<Value>,
    ) -> String {
        let sid = format!("{who}-{}", self.rng.hex(17));
        let mut request = request.unwrap_or_else(|| json!({ "target": self.target }));
        if let (Some(r), Some(obj)) = (&self.reason, request.as_object_mut()) {
            obj.entry("reason").or_insert_with(|| json!(r));
        }
        let push =
            |this: &mut Self, t: i64, name: &'static str, ip: String, req: Value, resp: Value| {
                let target = (name == "StartSession").then(|| this.target.clone());
                let event_id = this.rng.uuid();
                this.events.push(Planned {
                    time: t,
                    name,
                    id: event_id,
                    read_only: false,
                    identity: Some(id.clone()),
                    source_ip: ip,
                    user_agent: this.ua.clone(),
                    request: req,
                    response: resp,
                    error: None,
                    target,
                    malformed: None,
                });
            };
        let resp = start_response(&sid, &self.region);
        push(
            self,
            start,
            "StartSession",
            self.ip.clone(),
            request,
            resp.clone(),
        );
        if let Some((t, ip)) = resume {
            push(
                self,
                t,
                "ResumeSession",
                ip,
                json!({ "sessionId": sid }),
                resp,
            );
        }
        if let Some(t) = end {
            push(
                self,
                t,
                "TerminateSession",
                self.ip.clone(),
                json!({ "sessionId": sid }),
                json!({ "sessionId": sid }),
            );
        }
        sid
    }
}

/// The reason an ordinary session gives: derived from its id, so it draws
/// nothing from the plan's random sequence.
fn ordinary_reason(sid: &str) -> String {
    const WHY: [&str; 6] = [
        "patching",
        "log review",
        "incident follow-up",
        "deploy check",
        "disk cleanup",
        "on-call",
    ];
    let h = hash_str(sid);
    format!(
        "OPS-{} {}",
        1000 + h % 9000,
        WHY[(h >> 20) as usize % WHY.len()]
    )
}

pub(crate) fn start_response(sid: &str, region: &str) -> Value {
    json!({
        "sessionId": sid,
        "tokenValue": "Value hidden due to security reasons.",
        "streamUrl": format!("wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{sid}?role=publish_subscribe&cell-number=AAEAAQ"),
    })
}

fn session_suffix(seed: u64, a: usize, ri: usize, k: u64) -> String {
    Rng::from_parts(&[seed, a as u64, ri as u64, k, 0x51D]).hex(17)
}

pub(crate) fn office_ip(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 | 1 => format!("203.0.113.{}", rng.range(2, 250)),
        2 | 3 => format!("198.51.100.{}", rng.range(2, 250)),
        _ => format!(
            "2001:db8:{:x}::{:x}",
            rng.below(0xffff),
            rng.range(1, 0xffff)
        ),
    }
}

fn weekday(midnight: i64) -> Weekday {
    DateTime::from_timestamp(midnight, 0)
        .unwrap_or_default()
        .weekday()
}

fn is_weekday(midnight: i64) -> bool {
    !matches!(weekday(midnight), Weekday::Sat | Weekday::Sun)
}

pub(crate) fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn identity_json(id: &Identity) -> Value {
    let mut v = json!({
        "type": id.kind,
        "principalId": id.principal_id,
        "arn": id.arn,
        "accountId": id.account_id,
        "accessKeyId": id.access_key_id,
    });
    if let Some(u) = &id.user_name {
        v["userName"] = json!(u);
    }
    if let Some(iss) = &id.issuer {
        let mut ctx = json!({
            "sessionIssuer": {
                "type": "Role",
                "principalId": iss.principal_id,
                "arn": iss.arn,
                "accountId": iss.account_id,
                "userName": iss.user_name,
            },
            "attributes": { "creationDate": iso(id.creation), "mfaAuthenticated": "false" },
        });
        if id.ec2_role_delivery {
            ctx["ec2RoleDelivery"] = json!("2.0");
        }
        v["sessionContext"] = ctx;
    } else if id.kind == "Root" || (id.kind == "IAMUser" && id.access_key_id.starts_with("ASIA")) {
        // Root's console sign-in, or an IAM user's console sign-in or
        // GetSessionToken: temporary keys, with a session context.
        v["sessionContext"] = json!({
            "attributes": { "creationDate": iso(id.creation), "mfaAuthenticated": "true" }
        });
    }
    v
}

/// The CloudTrail record, in the shape of the fixtures.
pub(crate) fn record_json(p: &Planned, acct: &str, region: &str) -> String {
    if let Some(raw) = &p.malformed {
        return raw.clone();
    }
    let mut v = json!({
        "eventVersion": "1.09",
        "eventTime": iso(p.time),
        "eventSource": SSM,
        "eventName": p.name,
        "awsRegion": region,
        "sourceIPAddress": p.source_ip,
        "userAgent": p.user_agent,
        "requestParameters": p.request,
        "responseElements": p.response,
        "requestID": Rng::from_parts(&[hash_str(&p.id), 0x4E0]).uuid(),
        "eventID": p.id,
        "readOnly": p.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": acct,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": format!("ssm.{region}.amazonaws.com"),
        },
    });
    if let Some(id) = &p.identity {
        v["userIdentity"] = identity_json(id);
    }
    if let Some((code, msg)) = &p.error {
        v["errorCode"] = json!(code);
        v["errorMessage"] = json!(msg);
    }
    v.to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LookupEvent<'a> {
    event_id: &'a str,
    event_name: &'a str,
    read_only: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    event_time: i64,
    event_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    resources: Vec<Resource<'a>>,
    cloud_trail_event: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Resource<'a> {
    resource_type: &'a str,
    resource_name: &'a str,
}

fn render(p: Planned, acct: &str, region: &str) -> Rec {
    let ct = record_json(&p, acct, region);
    // CloudTrail's own fields: there even when the record text is odd.
    let username = p.identity.as_ref().map(Identity::username);
    let access_key = p.identity.as_ref().map(|i| i.access_key_id.clone());
    let json = serde_json::to_string(&LookupEvent {
        event_id: &p.id,
        event_name: p.name,
        read_only: if p.read_only { "true" } else { "false" },
        access_key_id: access_key.as_deref(),
        event_time: p.time,
        event_source: SSM,
        username: username.as_deref(),
        resources: p
            .target
            .iter()
            .map(|t| Resource {
                resource_type: "AWS::EC2::Instance",
                resource_name: t,
            })
            .collect(),
        cloud_trail_event: &ct,
    })
    .unwrap_or_default();
    Rec {
        time: p.time,
        name: p.name,
        id: p.id,
        read_only: p.read_only,
        username,
        access_key,
        resource: p.target,
        json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};
    use std::collections::HashSet;

    fn demo_fixed() -> SimConfig {
        SimConfig {
            // A Wednesday afternoon, so the 7-day window holds a Sunday and full weekdays.
            window_end: Utc
                .with_ymd_and_hms(2026, 11, 18, 15, 30, 0)
                .single()
                .unwrap_or_default(),
            latency: std::time::Duration::ZERO,
            jitter: std::time::Duration::ZERO,
            ..SimConfig::demo()
        }
    }

    fn approved(ip: &str) -> bool {
        ip == SSM
            || ip.starts_with("203.0.113.")
            || ip.starts_with("198.51.100.")
            || ip.starts_with("2001:db8:")
    }

    fn all_events(w: &World) -> Vec<(usize, usize, Planned)> {
        let mut v = Vec::new();
        for a in 0..w.org.accounts.len() {
            for ri in 0..w.cfg.regions.len() {
                v.extend(w.plan(a, ri).into_iter().map(|p| (a, ri, p)));
            }
        }
        v
    }

    #[test]
    fn ordinary_activity_triggers_no_demo_rule() {
        let cfg = SimConfig {
            plant_anomalies: false,
            ..demo_fixed()
        };
        let w = World::new(cfg);
        let events = all_events(&w);
        assert!(events.len() > 100, "only {} events", events.len());
        let mut starts: HashMap<String, (String, i64)> = HashMap::new();
        let mut targets: HashMap<String, HashSet<String>> = HashMap::new();
        for (a, ri, p) in &events {
            assert!(*ri < 2, "ordinary activity in {}", w.cfg.regions[*ri]);
            let t = DateTime::from_timestamp(p.time, 0).unwrap_or_default();
            assert!(
                is_weekday(p.time.div_euclid(DAY) * DAY),
                "weekend event {t}"
            );
            assert!((8..19).contains(&t.hour()), "off-hours event {t}");
            assert!(approved(&p.source_ip), "{}", p.source_ip);
            assert!(p.error.is_none());
            let id = p.identity.as_ref().expect("identity");
            assert_eq!(id.kind, "AssumedRole");
            assert_eq!(id.account_id, w.org.accounts[*a].id);
            assert!(!id.ec2_role_delivery);
            let doc = p
                .request
                .get("documentName")
                .and_then(Value::as_str)
                .unwrap_or("");
            assert!(!doc.contains("PortForwarding") && !doc.contains("SSH"));
            if p.name == "StartSession" {
                let sid = p.response["sessionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                starts.insert(sid, (p.source_ip.clone(), p.time));
                targets
                    .entry(id.arn.clone())
                    .or_default()
                    .insert(p.target.clone().unwrap_or_default());
            }
        }
        for (_, _, p) in &events {
            if let Some(sid) = p.request.get("sessionId").and_then(Value::as_str) {
                let (ip, t0) = &starts[sid];
                if p.name == "ResumeSession" {
                    assert_eq!(ip, &p.source_ip, "resume from a new ip");
                }
                assert!(p.time - t0 < 2 * HOUR, "long session");
            }
        }
        for (arn, t) in targets {
            assert!(t.len() <= 3, "{arn} on {} targets", t.len());
        }
    }

    #[test]
    fn planted_cases_are_all_there_and_ids_unique() {
        let w = World::new(demo_fixed());
        let events = all_events(&w);
        let ids: HashSet<&str> = events.iter().map(|(_, _, p)| p.id.as_str()).collect();
        assert_eq!(ids.len(), events.len(), "event ids must be unique");
        let has = |f: &dyn Fn(&(usize, usize, Planned)) -> bool| events.iter().any(f);
        let kind = |p: &Planned| p.identity.as_ref().map_or("", |i| i.kind);
        assert!(has(&|(_, _, p)| kind(p) == "Root"));
        assert!(has(&|(_, _, p)| kind(p) == "IAMUser"
            && p.identity
                .as_ref()
                .is_some_and(|i| i.access_key_id.starts_with("AKIA"))));
        assert!(has(&|(_, _, p)| p
            .identity
            .as_ref()
            .is_some_and(|i| i.ec2_role_delivery)));
        assert!(has(&|(a, _, p)| p
            .identity
            .as_ref()
            .is_some_and(|i| i.account_id != w.org.accounts[*a].id)));
        assert!(has(&|(_, _, p)| p.source_ip == "185.220.101.7"));
        assert!(has(&|(_, _, p)| p.name == "StartSession"
            && weekday(p.time.div_euclid(DAY) * DAY) == Weekday::Sun));
        assert!(has(&|(_, _, p)| p
            .request
            .get("documentName")
            .and_then(Value::as_str)
            == Some("AWS-StartPortForwardingSession")));
        assert_eq!(
            events.iter().filter(|(_, _, p)| p.error.is_some()).count(),
            4
        );
        assert!(has(&|(_, ri, _)| *ri == 2));
        let np = w.new_principal.clone().expect("new principal planted");
        assert!(!w.baseline_principals().contains(&np));
        assert!(has(&|(_, _, p)| p
            .identity
            .as_ref()
            .is_some_and(|i| i.arn == np)));
        // Planted cases spread over several accounts, none of them unreachable.
        let accounts: HashSet<usize> = events
            .iter()
            .filter(|(_, _, p)| {
                p.user_agent != CONSOLE_AGENT
                    && p.identity.as_ref().is_some_and(|i| {
                        i.arn.contains("root")
                            || i.arn.contains("deploy-bot")
                            || i.arn.contains("AppServerRole")
                    })
            })
            .map(|(a, _, _)| *a)
            .collect();
        assert_eq!(accounts.len(), 3);
        assert!(accounts.iter().all(|a| w.org.reachable(*a)));
        // Nothing in the disabled partition.
        assert!(w.plan(9, 2).is_empty());
    }

    #[test]
    fn plans_are_deterministic_and_seeded() {
        let a = World::new(demo_fixed());
        let b = World::new(demo_fixed());
        let c = World::new(SimConfig {
            seed: 7,
            ..demo_fixed()
        });
        let ids = |w: &World| w.plan(1, 0).into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&c));
        let ra = a.partition(1, 0);
        let rb = b.partition(1, 0);
        assert_eq!(
            ra.iter().map(|r| &r.json).collect::<Vec<_>>(),
            rb.iter().map(|r| &r.json).collect::<Vec<_>>()
        );
    }

    #[test]
    fn records_follow_the_fixture_shape() {
        let w = World::new(demo_fixed());
        let recs = w.partition(1, 0);
        let r = recs
            .iter()
            .find(|r| {
                r.name == "StartSession"
                    && r.username
                        .as_deref()
                        .is_some_and(|u| u.ends_with("@example.com"))
            })
            .expect("an SSO start");
        let outer: Value = serde_json::from_str(&r.json).unwrap_or_default();
        let ct: Value = serde_json::from_str(outer["CloudTrailEvent"].as_str().unwrap_or_default())
            .unwrap_or_default();
        for key in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "requestParameters",
            "responseElements",
            "eventID",
            "recipientAccountId",
        ] {
            assert!(ct.get(key).is_some(), "missing {key}");
        }
        assert_eq!(ct["eventID"], outer["EventId"]);
        assert_eq!(outer["ReadOnly"], "false");
        assert!(ct["eventTime"].as_str().unwrap_or_default().ends_with('Z'));
        assert_eq!(
            ct["responseElements"]["tokenValue"],
            "Value hidden due to security reasons."
        );
        let sid = ct["responseElements"]["sessionId"]
            .as_str()
            .unwrap_or_default();
        let user = ct["userIdentity"]["arn"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        assert!(sid.starts_with(&format!("{user}-")));
        assert!(
            recs.windows(2).all(|p| p[0].time >= p[1].time),
            "newest first"
        );
    }

    #[test]
    fn hostile_records_are_marked() {
        let w = World::new(SimConfig {
            hostile_records: true,
            ..demo_fixed()
        });
        let gt = w.ground_truth(w.cfg.window_start(), w.cfg.window_end, &[]);
        // Two not JSON, one without userIdentity, one odd time, one of wrong types.
        assert_eq!(gt.malformed.len(), 5);
        let a = w.pick_account(0, 0).unwrap_or(0);
        let recs = w.partition(a, 0);
        let mut not_json = 0;
        let mut odd = 0;
        let mut huge = false;
        for r in recs.iter() {
            let outer: Value = serde_json::from_str(&r.json).unwrap_or_default();
            let ct = outer["CloudTrailEvent"].as_str().unwrap_or_default();
            // LookupEvents' own fields are always whole.
            assert_eq!(outer["EventId"], r.id.as_str());
            assert!(outer["EventTime"].is_i64());
            match serde_json::from_str::<Value>(ct) {
                Err(_) => {
                    not_json += 1;
                    assert!(gt.malformed.contains(&r.id));
                }
                Ok(v) => {
                    huge |= v["userAgent"].as_str().is_some_and(|u| u.len() > 100_000);
                    let is_odd = v.get("userIdentity").is_none()
                        || v["eventTime"].as_str().is_some_and(|t| t.ends_with(" UTC"))
                        || v["sourceIPAddress"].is_number();
                    assert_eq!(is_odd, gt.malformed.contains(&r.id), "{ct:.200}");
                    odd += usize::from(is_odd);
                }
            }
        }
        assert_eq!((not_json, odd), (2, 3));
        assert!(huge);
    }

    #[test]
    fn rule_cases_are_planted_with_what_must_be_found() {
        let w = World::new(SimConfig {
            rule_cases: true,
            ..demo_fixed()
        });
        let gt = w.ground_truth(w.cfg.window_start(), w.cfg.window_end, &[]);
        let by_name =
            |n: &str| -> Vec<&PlantedCase> { gt.cases.iter().filter(|c| c.name == n).collect() };
        assert_eq!(gt.cases.len(), 10, "{:#?}", gt.cases);
        let records: HashMap<String, Planned> = all_events(&w)
            .into_iter()
            .map(|(_, _, p)| (p.id.clone(), p))
            .collect();
        for c in &gt.cases {
            assert!(!c.event_ids.is_empty(), "{}", c.name);
            for id in &c.event_ids {
                assert!(
                    gt.all_ids().contains(id),
                    "{}: {id} is a session event",
                    c.name
                );
            }
        }
        let rotating = by_name("rotating-session-names");
        assert_eq!(rotating.len(), 3);
        let arns: HashSet<String> = rotating[0]
            .event_ids
            .iter()
            .map(|id| {
                records[id]
                    .identity
                    .as_ref()
                    .map(|i| i.arn.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(arns.len(), 5, "five session names");
        for id in &rotating[0].event_ids {
            let r = &records[id];
            assert_eq!(
                r.request,
                Value::Null,
                "real denials have no requestParameters"
            );
            let (code, msg) = r.error.clone().unwrap_or_default();
            assert_eq!(code, "AccessDenied");
            assert!(msg.contains(":instance/i-0"), "{msg}");
        }
        // The previous run's name of the rotating role is in the baseline, this run's are not.
        let base = w.baseline_principals();
        assert!(arns.iter().all(|a| !base.contains(a)));
        assert!(base.iter().any(|b| b.contains("assumed-role/ci-deployer/")));
        let failed = &by_name("target-not-connected")[0];
        assert!(failed.event_ids.iter().all(|id| records[id]
            .error
            .as_ref()
            .is_some_and(|e| e.0 == "TargetNotConnected")));
        let sessionless = &by_name("sessionless-off-hours")[0];
        for id in &sessionless.event_ids {
            assert_eq!(records[id].response, Value::Null);
            assert_eq!(
                weekday(records[id].time.div_euclid(DAY) * DAY),
                Weekday::Sun
            );
        }
        let console = &by_name("console-iam-user")[0];
        let rec: Value = serde_json::from_str(&record_json(
            &records[console.event_ids.iter().next().unwrap()],
            "1",
            "r",
        ))
        .unwrap_or_default();
        assert!(rec["userIdentity"]["accessKeyId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ASIA"));
        assert!(rec["userIdentity"]["sessionContext"]["attributes"].is_object());
        let mapped = &by_name("resume-from-mapped-ip")[0];
        assert!(mapped
            .event_ids
            .iter()
            .any(|id| records[id].source_ip.starts_with("::ffff:203.0.113.")));
        // Off: nothing planted.
        let plain = World::new(demo_fixed());
        assert!(plain
            .ground_truth(plain.cfg.window_start(), plain.cfg.window_end, &[])
            .cases
            .is_empty());
    }

    #[test]
    fn heavy_partition_has_exactly_n_session_events() {
        let cfg = SimConfig {
            heavy_partitions: vec![crate::HeavyPartition {
                account_index: 2,
                region: "eu-west-1".into(),
                events: 777,
            }],
            ..SimConfig::default()
        };
        let w = World::new(cfg);
        let n = w
            .plan(2, 1)
            .iter()
            .filter(|p| crate::DEFAULT_EVENT_NAMES.contains(&p.name))
            .count();
        let base = World::new(SimConfig::default())
            .plan(2, 1)
            .iter()
            .filter(|p| crate::DEFAULT_EVENT_NAMES.contains(&p.name))
            .count();
        assert_eq!(n, 777 + base);
    }
}
