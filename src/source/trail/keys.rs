//! CloudTrail `ListPublicKeys`: the public keys that signed a trail's digest
//! files, asked in the trail's home region for the scanned window.

use std::time::Duration;

use aws_smithy_types::DateTime as SmithyTime;
use chrono::{Duration as TimeDelta, Utc};

use super::digest::{Keys, PublicKey};
use crate::call::{call_with_retry, CallSlots};
use crate::model::TimeWindow;

/// Every key valid at some time of the window (a day of slack each side, for
/// the digests of the day after); a failure says why signatures go unchecked.
pub async fn list_public_keys(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    window: TimeWindow,
    slots: &CallSlots,
    deadline: Duration,
) -> Keys {
    let start = window.start - TimeDelta::days(1);
    let end = (window.end + TimeDelta::days(2)).min(Utc::now());
    let mut keys = Vec::new();
    let mut tokens = crate::call::Tokens::new(10_000);
    let mut token: Option<String> = None;
    loop {
        let page = call_with_retry(Some(slots), deadline, || {
            client
                .list_public_keys()
                .start_time(SmithyTime::from_secs(start.timestamp()))
                .end_time(SmithyTime::from_secs(
                    end.timestamp().max(start.timestamp()),
                ))
                .set_next_token(token.clone())
                .send()
        })
        .await;
        let page = match page {
            Ok(p) => p,
            Err(f) => {
                return Keys::Unchecked(format!(
                    "CloudTrail ListPublicKeys in {region} failed: {f}"
                ))
            }
        };
        for k in page.public_key_list() {
            if let (Some(fp), Some(v)) = (k.fingerprint(), k.value()) {
                keys.push(PublicKey {
                    fingerprint: fp.to_string(),
                    der: v.as_ref().to_vec(),
                });
            }
        }
        token = match tokens.next(page.next_token()) {
            Ok(t) => t,
            Err(e) => {
                return Keys::Unchecked(format!("CloudTrail ListPublicKeys in {region}: {e}"))
            }
        };
        if token.is_none() {
            // No key at all is an endpoint that does not know CloudTrail's keys
            // (a stand-in), not proof that every digest is forged.
            if keys.is_empty() {
                return Keys::Unchecked(format!(
                    "CloudTrail ListPublicKeys in {region} returned no key for the window"
                ));
            }
            return Keys::from_list(keys);
        }
    }
}
