//! CloudTrail `ListPublicKeys`: the trail generator's test key (the one its
//! digests are signed with), valid for all time, its DER in base64 as the JSON
//! 1.1 protocol sends a blob.

use serde_json::{json, Value};

/// The response body, whatever the requested time range.
pub fn list_public_keys(_params: &Value) -> String {
    let (fingerprint, der) = crate::trail_gen::digest_public_key();
    json!({
        "PublicKeyList": [{
            "Value": aws_smithy_types::base64::encode(&der),
            "ValidityStartTime": 1_420_070_400.0,
            "ValidityEndTime": 4_102_444_800.0,
            "Fingerprint": fingerprint,
        }]
    })
    .to_string()
}
