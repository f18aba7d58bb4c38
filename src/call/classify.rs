//! What an AWS error means for the run: throttled, transient, expired
//! credentials, a region the account has not enabled, or fatal.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How a failed call should be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service said "slow down": try again after a pause.
    Throttled,
    /// 5xx, timeout, connection reset, truncated body: try again.
    Transient,
    /// The credentials expired: refresh them, then try again.
    ExpiredCredentials,
    /// `UnrecognizedClientException`: the region is not enabled for the account
    /// (when the same credentials work elsewhere).
    NotEnabled,
    /// Anything else (denied, invalid request): trying again will not help.
    Fatal,
}

/// A failed call, reduced to what the report needs: no credential, no request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    pub class: ErrorClass,
    /// e.g. `ThrottlingException`, `AccessDenied`, `timeout`, `HTTP 503`.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

const THROTTLE_CODES: [&str; 6] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
];

/// Reduce an SDK error to a [`CallFailure`]. Messages are cut short: they come
/// from the network and end up in reports.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> CallFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => CallFailure {
            class: ErrorClass::Transient,
            code: "timeout".into(),
            message: "the call took longer than the call timeout".into(),
        },
        // No credentials could be found or made: trying again will not help.
        SdkError::DispatchFailure(_) if caused_by_credentials(err) => CallFailure {
            class: ErrorClass::Fatal,
            code: "credentials".into(),
            message: short(&source_chain(err)),
        },
        // Connection refused, reset or closed early, or a timeout: try again.
        SdkError::DispatchFailure(d) => CallFailure {
            class: ErrorClass::Transient,
            code: if d.is_timeout() {
                "timeout".into()
            } else {
                "connection".into()
            },
            message: short(&source_chain(err)),
        },
        SdkError::ResponseError(_) => CallFailure {
            class: ErrorClass::Transient,
            code: "bad-response".into(),
            message: short(&source_chain(err)),
        },
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_string);
            let message = se.err().message().unwrap_or("").to_string();
            classify_service(status, code, message)
        }
        SdkError::ConstructionFailure(_) => CallFailure {
            class: ErrorClass::Fatal,
            code: "request".into(),
            message: short(&source_chain(err)),
        },
        _ => CallFailure {
            class: ErrorClass::Transient,
            code: "unknown".into(),
            message: short(&source_chain(err)),
        },
    }
}

/// The part of [`classify`] that depends only on status, code and message.
pub fn classify_service(status: u16, code: Option<String>, message: String) -> CallFailure {
    let code_str = code.as_deref().unwrap_or("");
    let class = if THROTTLE_CODES.contains(&code_str) || status == 429 {
        ErrorClass::Throttled
    } else if code_str == "ExpiredTokenException" || code_str == "ExpiredToken" {
        ErrorClass::ExpiredCredentials
    } else if code_str == "UnrecognizedClientException" {
        ErrorClass::NotEnabled
    } else if status >= 500 {
        ErrorClass::Transient
    } else {
        ErrorClass::Fatal
    };
    CallFailure {
        class,
        code: code.unwrap_or_else(|| format!("HTTP {status}")),
        message: short(&message),
    }
}

fn caused_by_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// An error and its sources, one after another.
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// At most 300 characters, one line, no control characters.
pub fn short(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_http_400_with_a_code() {
        let f = classify_service(
            400,
            Some("ThrottlingException".into()),
            "Rate exceeded".into(),
        );
        assert_eq!(f.class, ErrorClass::Throttled);
        let f = classify_service(400, Some("TooManyRequestsException".into()), String::new());
        assert_eq!(f.class, ErrorClass::Throttled);
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_fatal() {
        assert_eq!(
            classify_service(503, Some("ServiceUnavailable".into()), String::new()).class,
            ErrorClass::Transient
        );
        assert_eq!(classify_service(500, None, String::new()).code, "HTTP 500");
        assert_eq!(
            classify_service(403, Some("AccessDenied".into()), "no".into()).class,
            ErrorClass::Fatal
        );
        assert_eq!(
            classify_service(
                400,
                Some("UnrecognizedClientException".into()),
                String::new()
            )
            .class,
            ErrorClass::NotEnabled
        );
        assert_eq!(
            classify_service(400, Some("ExpiredTokenException".into()), String::new()).class,
            ErrorClass::ExpiredCredentials
        );
    }

    #[test]
    fn short_strips_control_characters_and_caps_length() {
        assert_eq!(short("a\u{1b}[31mb\nc"), "a [31mb c");
        assert_eq!(short(&"x".repeat(400)).chars().count(), 301);
    }
}
