//! EC2 `DescribeRegions` (query protocol, XML), the fallback with the audit
//! role for which regions an account has opted into: `AllRegions=true` lists
//! every region with `opt-in-not-required`, `opted-in` or `not-opted-in`.

use super::*;

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub(super) fn describe_regions(
    state: &State,
    caller: &Caller,
    form: &HashMap<String, String>,
    request_id: &str,
) -> Reply {
    let world = &state.world;
    let account = caller.account();
    if world.cfg.faults.describe_regions_denied.contains(&account) {
        state.counters.access_denied.fetch_add(1, Ordering::Relaxed);
        return ec2_error(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
            request_id,
        );
    }
    let all = form.get("AllRegions").is_some_and(|v| v == "true");
    let mut items = String::new();
    for (region, status) in super::account::opt_statuses(state, account) {
        let opt_in = match status {
            "ENABLED_BY_DEFAULT" => "opt-in-not-required",
            "ENABLED" => "opted-in",
            _ => "not-opted-in",
        };
        // Without AllRegions, only the regions the account may use.
        if !all && opt_in == "not-opted-in" {
            continue;
        }
        items.push_str(&format!(
            "        <item>\n            <regionName>{region}</regionName>\n            <regionEndpoint>ec2.{region}.amazonaws.com</regionEndpoint>\n            <optInStatus>{opt_in}</optInStatus>\n        </item>\n"
        ));
    }
    Reply::Xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeRegionsResponse xmlns=\"{EC2_NS}\">\n    <requestId>{request_id}</requestId>\n    <regionInfo>\n{items}    </regionInfo>\n</DescribeRegionsResponse>\n"
    ))
}

/// EC2's own error shape (not STS's `ErrorResponse`).
fn ec2_error(status: u16, code: &'static str, message: &str, request_id: &str) -> Reply {
    Reply::RawXml {
        status,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
            xml_escape(message)
        ),
    }
}
