//! One call retried until it succeeds, fails for good, or its deadline passes.

use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;

use super::classify::{classify, CallFailure, ErrorClass};
use super::slots::CallSlots;

/// Run one AWS call until it succeeds, fails for good, or `deadline` has passed
/// since the first attempt. Throttles and transient failures wait with backoff;
/// each attempt holds a call slot (when `slots` is given) only while it is in flight.
pub async fn call_with_retry<T, E, F, Fut>(
    slots: Option<&CallSlots>,
    deadline: Duration,
    call: F,
) -> Result<T, CallFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    call_with_retry_checked(slots, deadline, call, |_| None).await
}

/// [`call_with_retry`] for answers that must hold something: `check` names what a
/// 200 lacks (a `CallFailure`, usually transient: a proxy's or a wrong endpoint's
/// answer), and such an answer is retried or failed like any other failure, never
/// taken for an empty one.
pub async fn call_with_retry_checked<T, E, F, Fut>(
    slots: Option<&CallSlots>,
    deadline: Duration,
    mut call: F,
    check: impl Fn(&T) -> Option<CallFailure>,
) -> Result<T, CallFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let started = tokio::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let permit = match slots {
            Some(s) => Some(s.acquire().await),
            None => None,
        };
        let result = call().await;
        drop(permit);
        let failure = match result {
            Ok(v) => match check(&v) {
                None => return Ok(v),
                Some(f) => f,
            },
            Err(e) => classify(&e),
        };
        let retryable = matches!(failure.class, ErrorClass::Throttled | ErrorClass::Transient);
        if !retryable || started.elapsed() >= deadline {
            return Err(failure);
        }
        tracing::debug!(error = %failure, attempt, "call retried");
        let left = deadline.saturating_sub(started.elapsed());
        tokio::time::sleep(
            backoff(Duration::from_millis(200), Duration::from_secs(10), attempt).min(left),
        )
        .await;
    }
}

/// Exponential backoff with full jitter, for the `attempt`-th consecutive failure (1-based).
pub fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
    let max = exp.min(cap);
    let lo = max / 2;
    let jitter = rand::rng().random_range(0..=(max - lo).as_millis() as u64);
    lo + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 1..20 {
            let d = backoff(base, cap, attempt);
            assert!(d <= cap, "{d:?}");
        }
        assert!(backoff(base, cap, 1) <= Duration::from_millis(100));
        assert!(backoff(base, cap, 5) >= Duration::from_millis(800));
    }
}
