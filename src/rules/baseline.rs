//! `--baseline`: who an earlier report saw, for `new-principal`.
//!
//! A call is known when its actor is in the baseline, or its exact principal ARN
//! is: a role whose session names rotate stays known, and an Identity Center
//! user known by name is still known once records name it by `onBehalfOf`.
//! Role actors are compared without their IAM path, since a report that kept
//! only principal ARNs (`assumed-role/ROLE/SESSION`) cannot know it.

use super::*;
use crate::event::{actor_from_arn, actor_of};

/// The actors and principals of an earlier report, for `new-principal`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    actors: BTreeSet<String>,
    principals: BTreeSet<String>,
}

/// Why a baseline report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("baseline has no `events` array: is it a report.json written by ssm-session-audit?")]
    NoEvents,
}

impl Baseline {
    /// Reads `events[]` of a `report.json`: each event's `actor`, or for a report
    /// written before actors, the actor its `principal_type`, `principal_arn` and
    /// `session_issuer_arn` name (only `principal_arn` is needed); every other
    /// field is ignored and may be missing.
    pub fn from_report_json(text: &str) -> Result<Baseline, BaselineError> {
        let value: Value = serde_json::from_str(text).map_err(|e| BaselineError::NotJson {
            reason: e.to_string().chars().take(120).collect(),
        })?;
        let events = value
            .get("events")
            .and_then(Value::as_array)
            .ok_or(BaselineError::NoEvents)?;
        let mut b = Baseline::default();
        for e in events {
            let field = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let arn = field("principal_arn").unwrap_or_default();
            let actor = match field("actor") {
                Some(actor) => actor.to_string(),
                None if arn.is_empty() => continue,
                None => actor_of(
                    field("principal_type").unwrap_or_default(),
                    arn,
                    field("session_issuer_arn"),
                    None,
                ),
            };
            b.insert(&actor, arn);
        }
        Ok(b)
    }

    /// A baseline of principal ARNs alone, each also standing for the actor it
    /// names.
    pub fn from_principals<I, S>(principals: I) -> Baseline
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut b = Baseline::default();
        for p in principals {
            let p: String = p.into();
            if !p.is_empty() {
                let actor = actor_from_arn(&p).unwrap_or_else(|| p.clone());
                b.insert(&actor, &p);
            }
        }
        b
    }

    fn insert(&mut self, actor: &str, principal_arn: &str) {
        if !actor.is_empty() {
            self.actors.insert(comparable(actor));
        }
        if !principal_arn.is_empty() {
            self.principals.insert(principal_arn.to_string());
        }
    }

    /// Whether the call's actor, or its exact principal, was seen before.
    pub fn knows(&self, e: &SessionEvent) -> bool {
        self.contains(e.actor()) || self.principals.contains(&e.principal_arn)
    }

    /// Whether this actor or principal ARN was seen before.
    pub fn contains(&self, actor_or_principal: &str) -> bool {
        self.actors.contains(&comparable(actor_or_principal))
            || self.principals.contains(actor_or_principal)
    }

    /// How many distinct actors.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }
}

/// A role actor without its path (`arn:P:iam::A:role/a/b/NAME` →
/// `arn:P:iam::A:role/NAME`: role names are unique in an account); anything
/// else as it is.
fn comparable(actor: &str) -> String {
    match actor.split_once(":role/") {
        Some((head, path)) if head.starts_with("arn:") && head.contains(":iam::") => {
            let name = path.rsplit('/').next().unwrap_or(path);
            format!("{head}:role/{name}")
        }
        _ => actor.to_string(),
    }
}
