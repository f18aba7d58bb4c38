//! The organization's shape: accounts, OUs, ids. Small metadata, built once at start;
//! the records live in `data.rs` and are generated per partition on demand.

use std::collections::HashMap;

use super::rng::{hash, Rng};
use super::{SimAccount, SimConfig};

const TEAMS: [&str; 12] = [
    "payments",
    "identity",
    "data-platform",
    "web-frontend",
    "search",
    "billing",
    "ml-research",
    "mobile-api",
    "analytics",
    "messaging",
    "inventory",
    "checkout",
];
const ENVS: [&str; 4] = ["prod", "staging", "dev", "sandbox"];
const FOUNDATION: [&str; 3] = ["log-archive", "security-tooling", "shared-services"];

/// One organizational unit.
#[derive(Debug, Clone)]
pub(crate) struct Ou {
    pub id: String,
    pub name: String,
    pub parent_id: String,
    pub path: String,
}

#[derive(Debug)]
pub(crate) struct Org {
    pub org_id: String,
    pub root_id: String,
    pub ous: Vec<Ou>,
    pub accounts: Vec<SimAccount>,
    pub by_id: HashMap<String, usize>,
    /// Epoch seconds each account joined.
    pub joined: Vec<i64>,
    pub joined_method: Vec<&'static str>,
}

impl Org {
    pub fn new(cfg: &SimConfig) -> Org {
        let mut rng = Rng::from_parts(&[cfg.seed, 0x0A9]);
        let org_id = format!("o-{}", alnum(&mut rng, 10));
        let root_suffix = alnum(&mut rng, 4);
        let root_id = format!("r-{root_suffix}");
        let mut ou = |name: &str, parent: &str, path: String| Ou {
            id: format!("ou-{root_suffix}-{}", alnum(&mut rng, 8)),
            name: name.to_string(),
            parent_id: parent.to_string(),
            path,
        };
        let security = ou("Security", &root_id, "Root/Security".into());
        let workloads = ou("Workloads", &root_id, "Root/Workloads".into());
        let sandbox = ou("Sandbox", &root_id, "Root/Sandbox".into());
        let production = ou(
            "Production",
            &workloads.id,
            "Root/Workloads/Production".into(),
        );
        let ous = vec![security, workloads, sandbox, production];

        let base = hash(&[cfg.seed, 0x1D]) % 900_000_000_000;
        let mut accounts = Vec::with_capacity(cfg.accounts);
        let mut by_id = HashMap::with_capacity(cfg.accounts);
        let mut joined = Vec::with_capacity(cfg.accounts);
        let mut joined_method = Vec::with_capacity(cfg.accounts);
        let org_start = cfg.window_end.timestamp() - 3 * 365 * 86_400;
        for i in 0..cfg.accounts {
            // A stride coprime with 9e11 makes the ids distinct for every index.
            let id = match cfg.account_ids.as_ref().and_then(|ids| ids.get(i)) {
                Some(id) => id.clone(),
                None => {
                    let id = 100_000_000_000 + (base + i as u64 * 104_729) % 900_000_000_000;
                    format!("{id:012}")
                }
            };
            let name = account_name(i);
            let (parent_id, path) = if i == 0 {
                (root_id.clone(), "Root".to_string())
            } else if name.starts_with("log-archive") || name.starts_with("security") {
                (ous[0].id.clone(), ous[0].path.clone())
            } else if name.ends_with("-prod") {
                (ous[3].id.clone(), ous[3].path.clone())
            } else if name.contains("sandbox") {
                (ous[2].id.clone(), ous[2].path.clone())
            } else if name.starts_with("shared") {
                (root_id.clone(), "Root".to_string())
            } else {
                (ous[1].id.clone(), ous[1].path.clone())
            };
            let state = if cfg.faults.closed_accounts.contains(&i) {
                "CLOSED"
            } else if cfg.faults.suspended_accounts.contains(&i) {
                "SUSPENDED"
            } else {
                "ACTIVE"
            };
            let disabled_regions = cfg
                .faults
                .disabled_regions
                .iter()
                .filter(|(a, _)| *a == i)
                .map(|(_, r)| r.clone())
                .collect();
            by_id.insert(id.clone(), i);
            joined.push(org_start + (i as i64) * 3_600 * 7 + rng.range(0, 3_600));
            joined_method.push(if i == 0 || rng.chance(0.7) {
                "CREATED"
            } else {
                "INVITED"
            });
            accounts.push(SimAccount {
                index: i,
                email: format!("aws+{name}@example.com"),
                id,
                name,
                state: state.to_string(),
                denied: cfg.faults.denied_accounts.contains(&i),
                disabled_regions,
                parent_id,
                ou_path: path,
            });
        }
        Org {
            org_id,
            root_id,
            ous,
            accounts,
            by_id,
            joined,
            joined_method,
        }
    }

    pub fn management(&self) -> &SimAccount {
        &self.accounts[0]
    }

    pub fn region_enabled(&self, account: usize, region: &str) -> bool {
        !self.accounts[account]
            .disabled_regions
            .iter()
            .any(|r| r == region)
    }

    /// Active and the audit role may be assumed.
    pub fn reachable(&self, account: usize) -> bool {
        let a = &self.accounts[account];
        a.state == "ACTIVE" && !a.denied
    }
}

fn account_name(i: usize) -> String {
    if i == 0 {
        return "management".to_string();
    }
    if i <= FOUNDATION.len() {
        return FOUNDATION[i - 1].to_string();
    }
    let k = i - 1 - FOUNDATION.len();
    let team = TEAMS[k % TEAMS.len()];
    let env = ENVS[(k / TEAMS.len()) % ENVS.len()];
    let round = k / (TEAMS.len() * ENVS.len());
    if round == 0 {
        format!("{team}-{env}")
    } else {
        format!("{team}-{env}-{}", round + 1)
    }
}

fn alnum(rng: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| A[rng.below(A.len() as u64) as usize] as char)
        .collect()
}

/// Regions AWS enables in every account, which cannot be disabled.
pub(crate) const DEFAULT_REGIONS: [&str; 17] = [
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

pub(crate) fn is_default_region(r: &str) -> bool {
    DEFAULT_REGIONS.contains(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_unique_and_twelve_digits() {
        let cfg = SimConfig {
            accounts: 5000,
            ..SimConfig::default()
        };
        let org = Org::new(&cfg);
        assert_eq!(org.by_id.len(), 5000);
        assert!(org
            .accounts
            .iter()
            .all(|a| a.id.len() == 12 && a.id.bytes().all(|b| b.is_ascii_digit())));
        let names: std::collections::HashSet<_> = org.accounts.iter().map(|a| &a.name).collect();
        assert_eq!(names.len(), 5000);
    }
}
