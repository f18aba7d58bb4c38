//! What an AWS error means for the run, how long to wait before trying again,
//! and the one place that bounds the calls in flight.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;
use tokio::sync::oneshot;

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

fn source_chain(err: &dyn std::error::Error) -> String {
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

/// How soon a call gets a slot when calls wait for one. Which partition is the
/// critical path is known only from its pages: a partition with more pages to read
/// goes first, so it is not still pacing itself after every other one has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Calls whose order does not change the run's length (a light partition's later event names).
    Low,
    /// The default: discovery, AssumeRole, a partition's first call.
    Normal,
    /// A partition known to have more than one page: the run's critical path.
    High,
}

/// The single bound on calls in flight across the whole run (`--concurrency`).
/// A slot is held only for the duration of one HTTP call, never while waiting.
/// Waiters are served by [`Priority`], first come first served within one.
#[derive(Clone)]
pub struct CallSlots {
    inner: Arc<SlotsInner>,
}

struct SlotsInner {
    state: Mutex<SlotsState>,
}

struct SlotsState {
    free: usize,
    next_seq: u64,
    waiting: BinaryHeap<Waiter>,
}

struct Waiter {
    priority: Priority,
    seq: u64,
    hand_over: oneshot::Sender<SlotPermit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// The heap's greatest is served first: highest priority, then the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// One call's slot; dropping it hands the slot to the next waiter.
pub struct SlotPermit {
    slots: Option<Arc<SlotsInner>>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if let Some(s) = self.slots.take() {
            s.release();
        }
    }
}

impl SlotsInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(self: Arc<Self>) {
        let mut st = self.lock();
        while let Some(w) = st.waiting.pop() {
            let permit = SlotPermit {
                slots: Some(self.clone()),
            };
            match w.hand_over.send(permit) {
                Ok(()) => return,
                // That waiter stopped waiting (its future was dropped): disarm the
                // returned permit (we hold the lock) and try the next one.
                Err(mut p) => {
                    p.slots = None;
                }
            }
        }
        st.free += 1;
    }
}

impl CallSlots {
    pub fn new(n: usize) -> Self {
        CallSlots {
            inner: Arc::new(SlotsInner {
                state: Mutex::new(SlotsState {
                    free: n.max(1),
                    next_seq: 0,
                    waiting: BinaryHeap::new(),
                }),
            }),
        }
    }

    /// A slot at [`Priority::Normal`].
    pub async fn acquire(&self) -> SlotPermit {
        self.acquire_at(Priority::Normal).await
    }

    pub async fn acquire_at(&self, priority: Priority) -> SlotPermit {
        let handed = {
            let mut st = self.inner.lock();
            // A free slot means nobody waits (release serves waiters first).
            if st.free > 0 {
                st.free -= 1;
                return SlotPermit {
                    slots: Some(self.inner.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.waiting.push(Waiter {
                priority,
                seq,
                hand_over: tx,
            });
            rx
        };
        // The sender lives in the heap, which lives as long as `self.inner`.
        handed
            .await
            .expect("a waiting sender is never dropped unsent")
    }
}

/// Run one AWS call until it succeeds, fails for good, or `deadline` has passed
/// since the first attempt. Throttles and transient failures wait with backoff;
/// each attempt holds a call slot (when `slots` is given) only while it is in flight.
pub async fn call_with_retry<T, E, F, Fut>(
    slots: Option<&CallSlots>,
    deadline: Duration,
    mut call: F,
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
            Ok(v) => return Ok(v),
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

    #[test]
    fn short_strips_control_characters_and_caps_length() {
        assert_eq!(short("a\u{1b}[31mb\nc"), "a [31mb c");
        assert_eq!(short(&"x".repeat(400)).chars().count(), 301);
    }
    #[tokio::test]
    async fn waiters_are_served_by_priority_then_in_order() {
        let slots = CallSlots::new(1);
        let held = slots.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, p) in [
            ("low1", Priority::Low),
            ("normal1", Priority::Normal),
            ("high1", Priority::High),
            ("low2", Priority::Low),
            ("high2", Priority::High),
        ] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = slots.acquire_at(p).await;
                order.lock().unwrap().push(name);
            }));
            // Let it queue before the next one.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["high1", "high2", "normal1", "low1", "low2"]
        );
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_lose_the_slot() {
        let slots = CallSlots::new(2);
        let a = slots.acquire().await;
        let b = slots.acquire().await;
        // Gives up while waiting.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), slots.acquire_at(Priority::High)).await;
        assert!(gave_up.is_err());
        drop(a);
        drop(b);
        // Both slots are back: two more fit at once.
        let c = tokio::time::timeout(Duration::from_millis(100), slots.acquire()).await;
        let d = tokio::time::timeout(Duration::from_millis(100), slots.acquire()).await;
        assert!(c.is_ok() && d.is_ok());
        let e = tokio::time::timeout(Duration::from_millis(10), slots.acquire()).await;
        assert!(e.is_err(), "a third slot appeared");
    }
}
