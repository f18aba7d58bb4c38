//! EventBridge event-pattern matching, for the parts of the language the alert
//! templates use (and a few cheap extras), so the tests can prove which events a
//! rule fires on without deploying it.
//!
//! Semantics, as EventBridge documents them:
//! - a pattern is an object; every key must match (AND); `$or` takes a list of
//!   sub-patterns of which one must match;
//! - a nested object descends into the event's object at that key;
//! - an array lists acceptable values for a leaf (OR): exact strings, numbers,
//!   booleans or `null`, or one-key objects `prefix`, `suffix`,
//!   `equals-ignore-case`, `anything-but` (value, list, or `{prefix|suffix}`),
//!   `exists`, `numeric`, `cidr`;
//! - a field missing from the event matches nothing except `{"exists": false}`;
//!   an object is not a leaf, so it counts as missing for leaf rules;
//! - when the event holds an array, the rule matches if any element matches.
//!
//! Anything else (`wildcard`, unknown operators, a non-object pattern) does not
//! match: an unknown operator must never widen an alert rule silently.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

/// Whether `event` matches the EventBridge `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(pattern) => match_object(pattern, Some(event)),
        _ => false,
    }
}

fn match_object(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(key, rule)| {
        if key == "$or" {
            return match rule {
                Value::Array(alternatives) => alternatives.iter().any(|alternative| {
                    alternative
                        .as_object()
                        .is_some_and(|alt| match_object(alt, event))
                }),
                _ => false,
            };
        }
        let field = event.and_then(|e| e.get(key));
        match rule {
            Value::Array(allowed) => match_leaf(allowed, field),
            Value::Object(nested) => match field {
                Some(Value::Array(items)) => {
                    items.iter().any(|item| match_object(nested, Some(item)))
                }
                Some(value @ Value::Object(_)) => match_object(nested, Some(value)),
                // A missing or scalar field: only `exists: false` rules below hold.
                _ => match_object(nested, None),
            },
            _ => false,
        }
    })
}

fn match_leaf(allowed: &[Value], field: Option<&Value>) -> bool {
    let leaves: Vec<&Value> = match field {
        None | Some(Value::Object(_)) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter(|i| !i.is_object()).collect(),
        Some(value) => vec![value],
    };
    if leaves.is_empty() {
        return allowed.iter().any(|rule| exists_rule(rule) == Some(false));
    }
    allowed
        .iter()
        .any(|rule| leaves.iter().any(|value| match_value(rule, value)))
}

fn exists_rule(rule: &Value) -> Option<bool> {
    rule.as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("exists"))
        .and_then(Value::as_bool)
}

/// One rule against one present leaf value.
fn match_value(rule: &Value, value: &Value) -> bool {
    let Value::Object(operator) = rule else {
        return scalar_equal(rule, value);
    };
    let mut entries = operator.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return false;
    };
    match name.as_str() {
        "exists" => argument.as_bool() == Some(true),
        "prefix" => string_op(argument, value, |v, a| v.starts_with(a)),
        "suffix" => string_op(argument, value, |v, a| v.ends_with(a)),
        "equals-ignore-case" => string_op(argument, value, |v, a| v.eq_ignore_ascii_case(a)),
        "anything-but" => anything_but(argument, value),
        "numeric" => numeric(argument, value),
        "cidr" => cidr(argument, value),
        _ => false,
    }
}

fn scalar_equal(rule: &Value, value: &Value) -> bool {
    match (rule, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(_) | Value::Object(_), _) => false,
        _ => rule == value,
    }
}

fn string_op(argument: &Value, value: &Value, op: impl Fn(&str, &str) -> bool) -> bool {
    match (argument, value) {
        (Value::String(a), Value::String(v)) => op(v, a),
        _ => false,
    }
}

fn anything_but(argument: &Value, value: &Value) -> bool {
    match argument {
        Value::Array(excluded) => !excluded.iter().any(|e| scalar_equal(e, value)),
        Value::Object(inner) => {
            let mut entries = inner.iter();
            match (entries.next(), entries.next()) {
                (Some((name, Value::String(a))), None) => match (name.as_str(), value) {
                    ("prefix", Value::String(v)) => !v.starts_with(a.as_str()),
                    ("suffix", Value::String(v)) => !v.ends_with(a.as_str()),
                    _ => false,
                },
                _ => false,
            }
        }
        scalar => !scalar_equal(scalar, value),
    }
}

/// `{"numeric": [">", 0, "<=", 5]}`: every comparison must hold.
fn numeric(argument: &Value, value: &Value) -> bool {
    let (Value::Array(terms), Some(v)) = (argument, value.as_f64()) else {
        return false;
    };
    if terms.is_empty() || terms.len() % 2 != 0 {
        return false;
    }
    terms.chunks(2).all(|pair| {
        let (Some(op), Some(bound)) = (pair[0].as_str(), pair[1].as_f64()) else {
            return false;
        };
        match op {
            "=" => v == bound,
            "<" => v < bound,
            "<=" => v <= bound,
            ">" => v > bound,
            ">=" => v >= bound,
            _ => false,
        }
    })
}

fn cidr(argument: &Value, value: &Value) -> bool {
    let (Some(net), Some(ip)) = (
        argument.as_str().and_then(|a| a.parse::<IpNet>().ok()),
        value.as_str().and_then(|v| v.parse::<IpAddr>().ok()),
    ) else {
        return false;
    };
    net.contains(&ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "source": "aws.ssm",
            "detail-type": "AWS API Call via CloudTrail",
            "resources": ["arn:aws:ec2:us-east-1:1:instance/i-1", "arn:aws:ec2:us-east-1:1:instance/i-2"],
            "detail": {
                "eventName": "StartSession",
                "count": 4,
                "flag": true,
                "nothing": null,
                "sourceIPAddress": "10.0.0.17",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/alice"},
                "items": [{"kind": "a"}, {"kind": "b"}],
            }
        })
    }

    fn m(pattern: Value) -> bool {
        matches(&pattern, &event())
    }

    #[test]
    fn exact_values_in_a_list_are_alternatives() {
        assert!(m(json!({"source": ["aws.ssm"]})));
        assert!(m(json!({"source": ["aws.ec2", "aws.ssm"]})));
        assert!(!m(json!({"source": ["aws.ec2"]})));
        assert!(!m(json!({"source": []})));
        assert!(!m(json!({"source": ["AWS.SSM"]})), "case matters");
    }

    #[test]
    fn keys_are_all_required_and_nest() {
        assert!(m(
            json!({"source": ["aws.ssm"], "detail": {"eventName": ["StartSession"]}})
        ));
        assert!(!m(
            json!({"source": ["aws.ssm"], "detail": {"eventName": ["SendCommand"]}})
        ));
        assert!(m(
            json!({"detail": {"userIdentity": {"type": ["IAMUser", "Root"]}}})
        ));
        assert!(!m(json!({"detail": {"userIdentity": {"type": ["Root"]}}})));
    }

    #[test]
    fn missing_fields_do_not_match() {
        assert!(!m(json!({"detail": {"errorCode": ["AccessDenied"]}})));
        assert!(!m(json!({"nowhere": {"deeper": ["x"]}})));
        assert!(!m(json!({"detail": {"nothing": ["null"]}})));
        assert!(m(json!({"detail": {"nothing": [null]}})));
        assert!(
            !m(json!({"detail": {"errorCode": [null]}})),
            "missing is not null"
        );
    }

    #[test]
    fn a_leaf_rule_does_not_match_an_object() {
        assert!(!m(json!({"detail": {"userIdentity": ["IAMUser"]}})));
        assert!(!m(json!({"detail": ["StartSession"]})));
    }

    #[test]
    fn arrays_in_the_event_match_if_any_element_does() {
        assert!(m(
            json!({"resources": ["arn:aws:ec2:us-east-1:1:instance/i-2"]})
        ));
        assert!(!m(
            json!({"resources": ["arn:aws:ec2:us-east-1:1:instance/i-3"]})
        ));
        assert!(m(json!({"detail": {"items": {"kind": ["b"]}}})));
        assert!(!m(json!({"detail": {"items": {"kind": ["c"]}}})));
    }

    #[test]
    fn numbers_and_booleans_compare_by_value_and_type() {
        assert!(m(json!({"detail": {"count": [4]}})));
        assert!(m(json!({"detail": {"count": [4.0]}})));
        assert!(!m(json!({"detail": {"count": ["4"]}})));
        assert!(m(json!({"detail": {"flag": [true]}})));
        assert!(!m(json!({"detail": {"flag": ["true"]}})));
    }

    #[test]
    fn prefix_suffix_and_case() {
        assert!(m(json!({"detail": {"eventName": [{"prefix": "Start"}]}})));
        assert!(!m(json!({"detail": {"eventName": [{"prefix": "Stop"}]}})));
        assert!(m(json!({"detail": {"eventName": [{"suffix": "Session"}]}})));
        assert!(m(
            json!({"detail": {"eventName": [{"equals-ignore-case": "startsession"}]}})
        ));
        assert!(!m(json!({"detail": {"count": [{"prefix": "4"}]}})));
    }

    #[test]
    fn anything_but() {
        assert!(m(
            json!({"detail": {"eventName": [{"anything-but": "SendCommand"}]}})
        ));
        assert!(!m(
            json!({"detail": {"eventName": [{"anything-but": "StartSession"}]}})
        ));
        assert!(!m(
            json!({"detail": {"eventName": [{"anything-but": ["A", "StartSession"]}]}})
        ));
        assert!(m(
            json!({"detail": {"eventName": [{"anything-but": {"prefix": "Send"}}]}})
        ));
        assert!(!m(
            json!({"detail": {"eventName": [{"anything-but": {"prefix": "Start"}}]}})
        ));
        assert!(
            !m(json!({"detail": {"errorCode": [{"anything-but": "x"}]}})),
            "needs the field"
        );
    }

    #[test]
    fn exists() {
        assert!(m(json!({"detail": {"eventName": [{"exists": true}]}})));
        assert!(!m(json!({"detail": {"errorCode": [{"exists": true}]}})));
        assert!(m(json!({"detail": {"errorCode": [{"exists": false}]}})));
        assert!(!m(json!({"detail": {"eventName": [{"exists": false}]}})));
        // Objects are not leaves (EventBridge's documented behaviour).
        assert!(m(json!({"detail": {"userIdentity": [{"exists": false}]}})));
        assert!(!m(json!({"detail": {"userIdentity": [{"exists": true}]}})));
        // Through a missing intermediate object.
        assert!(m(json!({"nowhere": {"deeper": [{"exists": false}]}})));
    }

    #[test]
    fn numeric_and_cidr() {
        assert!(m(
            json!({"detail": {"count": [{"numeric": [">", 0, "<=", 5]}]}})
        ));
        assert!(!m(json!({"detail": {"count": [{"numeric": [">", 4]}]}})));
        assert!(!m(json!({"detail": {"count": [{"numeric": [">"]}]}})));
        assert!(m(
            json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}})
        ));
        assert!(!m(
            json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.1.0/24"}]}})
        ));
        assert!(!m(
            json!({"detail": {"eventName": [{"cidr": "10.0.0.0/8"}]}})
        ));
    }

    #[test]
    fn or_combines_sub_patterns() {
        assert!(m(
            json!({"$or": [{"source": ["aws.ec2"]}, {"detail": {"count": [4]}}]})
        ));
        assert!(!m(
            json!({"$or": [{"source": ["aws.ec2"]}, {"detail": {"count": [5]}}]})
        ));
        assert!(!m(json!({"$or": {"source": ["aws.ssm"]}})));
    }

    #[test]
    fn unknown_or_malformed_rules_never_match() {
        assert!(!m(
            json!({"detail": {"eventName": [{"wildcard": "Start*"}]}})
        ));
        assert!(!m(
            json!({"detail": {"eventName": [{"prefix": "S", "suffix": "n"}]}})
        ));
        assert!(
            !m(json!({"source": "aws.ssm"})),
            "a bare string is not a pattern value"
        );
        assert!(!matches(&json!(["aws.ssm"]), &event()));
        assert!(
            matches(&json!({}), &event()),
            "the empty pattern matches everything"
        );
    }
}
