//! Session calls planted at exact times ([`crate::PlantedCall`]): on a window's
//! bounds, or delivered late (LookupEvents shows them only from a given time on
//! the simulator's clock). They are ordinary records otherwise: an SSO user's
//! call from an office address, in the partition's records and ground truth.

use serde_json::json;

use crate::data::{start_response, Planned, World};
use crate::rng::{hash_str, Rng};

impl World {
    pub(crate) fn plant_calls(&mut self) {
        let calls = self.cfg.planted_calls.clone();
        for c in calls {
            let Some(ri) = self.region_index(&c.region) else {
                continue;
            };
            let t = c.time.timestamp();
            let mut rng = Rng::from_parts(&[
                self.cfg.seed,
                c.account_index as u64,
                hash_str(&c.event_id),
                0xCA11,
            ]);
            let user = "pat.planted@example.com";
            let identity = self.sso_identity(&mut rng, c.account_index, user, "SSMOperator", t);
            let target = format!("i-0{}", rng.hex(16));
            let (name, request, response) = match c.name.as_str() {
                "StartSession" => (
                    "StartSession",
                    json!({ "target": target }),
                    start_response(&c.session_id, &c.region),
                ),
                "ResumeSession" => (
                    "ResumeSession",
                    json!({ "sessionId": c.session_id }),
                    start_response(&c.session_id, &c.region),
                ),
                _ => (
                    "TerminateSession",
                    json!({ "sessionId": c.session_id }),
                    json!({ "sessionId": c.session_id }),
                ),
            };
            if let Some(v) = c.visible_from {
                self.visible_from.insert(c.event_id.clone(), v.timestamp());
            }
            self.planted
                .entry((c.account_index, ri))
                .or_default()
                .push(Planned {
                    time: t,
                    name,
                    id: c.event_id.clone(),
                    read_only: false,
                    identity: Some(identity),
                    source_ip: "203.0.113.77".into(),
                    user_agent: "aws-cli/2.22.4 md/command#ssm.start-session".into(),
                    request,
                    response,
                    error: None,
                    target: (name == "StartSession").then_some(target),
                    malformed: None,
                });
        }
    }
}
