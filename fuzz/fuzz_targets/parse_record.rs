//! Arbitrary bytes as a CloudTrail record: the parser must never panic, and what
//! it keeps must come out of the terminal and CSV sanitisers as plain text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssm_session_audit::event::parse_record;
use ssm_session_audit::report::{neutralize_csv_cell, sanitize_terminal};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = parse_record(text, "", "") else {
        return;
    };
    assert!(!event.event_id.is_empty());
    for field in [
        Some(event.principal_arn.as_str()),
        event.user_name.as_deref(),
        event.user_agent.as_deref(),
        event.source_ip.as_deref(),
        event.error_message.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        let shown = sanitize_terminal(field);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        let cell = neutralize_csv_cell(field);
        assert!(!matches!(
            cell.chars().next(),
            Some('=' | '+' | '-' | '@' | '\t' | '\r')
        ));
    }
});
