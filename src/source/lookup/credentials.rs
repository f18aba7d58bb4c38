//! Credentials for each account: the caller's own for its own account, an
//! assumed audit role for every other one, refreshed before it expires.
//!
//! The SDK's own cache cannot be told "this token was refused as expired", so
//! assumed-role credentials are cached here. The calls made per partition
//! (`LookupEvents`, `DescribeSessions`, `GetDocument`) are signed by hand with
//! [`AccountCredentials::signing`] (see `crate::call::wire`); the few SDK
//! clients built per account take [`AccountCredentials::provider`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

use crate::call::{call_with_retry, CallFailure, CallSlots, ErrorClass};

/// How an account's calls are signed.
#[derive(Clone)]
pub struct AccountCredentials {
    inner: Option<Arc<AssumedRole>>,
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("AccountCredentials(caller)"),
            Some(a) => write!(f, "AccountCredentials({})", a.role_arn),
        }
    }
}

/// What an assumed-role session is asked for.
#[derive(Debug, Clone)]
pub struct RoleRequest {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration: Duration,
}

struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
    duration_secs: i32,
    slots: CallSlots,
    retry_deadline: Duration,
    cached: Mutex<Option<Credentials>>,
}

impl AccountCredentials {
    /// The caller's own credentials (the SDK's default chain).
    pub fn caller() -> Self {
        AccountCredentials { inner: None }
    }

    pub fn assumed(
        sts: aws_sdk_sts::Client,
        request: RoleRequest,
        slots: CallSlots,
        retry_deadline: Duration,
    ) -> Self {
        // AssumeRole takes 900..=43200 seconds.
        let duration_secs = request.duration.as_secs().clamp(900, 43_200) as i32;
        AccountCredentials {
            inner: Some(Arc::new(AssumedRole {
                sts,
                role_arn: request.role_arn,
                session_name: request.session_name,
                external_id: request.external_id.filter(|s| !s.is_empty()),
                duration_secs,
                slots,
                retry_deadline,
                cached: Mutex::new(None),
            })),
        }
    }

    /// The provider to put into an SDK client, or `None` for the caller's own.
    pub fn provider(&self) -> Option<aws_credential_types::provider::SharedCredentialsProvider> {
        self.inner.as_ref().map(|a| {
            aws_credential_types::provider::SharedCredentialsProvider::new(Provider(a.clone()))
        })
    }

    /// Make sure usable credentials are cached, assuming the role if needed.
    /// Called before a lookup takes its call slot, so AssumeRole never waits
    /// behind the lookups it is needed for.
    pub async fn ensure_fresh(&self) -> Result<(), CallFailure> {
        match &self.inner {
            None => Ok(()),
            // Boxed: inline, the STS call's large future would make every
            // partition waiting on its pace as large as a call in flight.
            Some(a) => Box::pin(a.current(true)).await.map(|_| ()),
        }
    }

    /// The service refused the token as expired: forget it, so the next call assumes again.
    pub async fn invalidate(&self) {
        if let Some(a) = &self.inner {
            *a.cached.lock().await = None;
        }
    }

    /// The credentials to sign a call of this account by hand (`wire`): the
    /// assumed role's, normally fresh already (see `ensure_fresh`), else the
    /// caller's own from `caller`.
    pub async fn signing(&self, caller: &CallerCredentials) -> Result<Credentials, CallFailure> {
        match &self.inner {
            Some(a) => Box::pin(a.current(false)).await,
            None => caller.current().await,
        }
    }

    /// [`invalidate`](Self::invalidate), and the caller's own cache for its own account.
    pub async fn invalidate_signing(&self, caller: &CallerCredentials) {
        match &self.inner {
            Some(_) => self.invalidate().await,
            None => *caller.cached.lock().await = None,
        }
    }
}

/// The caller's own credentials (the SDK's chain: environment, profile, SSO,
/// container, instance) for calls signed by hand, cached as the SDK's identity
/// cache would: until five minutes before they expire, or until refused as expired.
pub struct CallerCredentials {
    provider: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    cached: Mutex<Option<Credentials>>,
}

impl CallerCredentials {
    pub fn new(
        provider: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    ) -> Self {
        CallerCredentials {
            provider,
            cached: Mutex::new(None),
        }
    }

    async fn current(&self) -> Result<Credentials, CallFailure> {
        let fresh = |c: &Credentials| {
            c.expiry().is_none_or(|exp| {
                exp.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            })
        };
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let provider = self.provider.as_ref().ok_or_else(|| CallFailure {
            class: ErrorClass::Fatal,
            code: "credentials".into(),
            message: "no AWS credentials to sign with".into(),
        })?;
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| CallFailure {
                class: ErrorClass::Fatal,
                code: "credentials".into(),
                message: crate::call::short(&e.to_string()),
            })?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

impl AssumedRole {
    /// Refresh when less than this remains: a quarter of the session, at most 5 minutes.
    fn margin(&self) -> Duration {
        Duration::from_secs((self.duration_secs as u64 / 4).min(300))
    }

    fn still_good(&self, creds: &Credentials) -> bool {
        match creds.expiry() {
            None => true,
            Some(exp) => match exp.duration_since(SystemTime::now()) {
                Ok(left) => left > self.margin(),
                Err(_) => false,
            },
        }
    }

    async fn current(&self, use_slot: bool) -> Result<Credentials, CallFailure> {
        if let Some(c) = self.cached.lock().await.as_ref() {
            if self.still_good(c) {
                return Ok(c.clone());
            }
        }
        // Always a slot first, then the lock, never the other way round: a request
        // being signed holds a slot and then waits for this lock, so a refresh that
        // held the lock while queueing for a slot could wait forever (one slot, or
        // every slot busy signing for this account).
        let _permit = match use_slot {
            true => Some(self.slots.acquire().await),
            false => None,
        };
        // Holding the lock while assuming coalesces concurrent refreshes into one call.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if self.still_good(c) {
                return Ok(c.clone());
            }
        }
        let fresh = self.assume().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Runs in the caller's slot (or, while signing, the request's own slot).
    async fn assume(&self) -> Result<Credentials, CallFailure> {
        let out = call_with_retry(None, self.retry_deadline, || {
            let mut req = self
                .sts
                .assume_role()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .duration_seconds(self.duration_secs);
            if let Some(id) = &self.external_id {
                req = req.external_id(id);
            }
            req.send()
        })
        .await?;
        let Some(c) = out.credentials() else {
            return Err(CallFailure {
                class: ErrorClass::Fatal,
                code: "AssumeRole".into(),
                message: "the answer held no credentials".into(),
            });
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "ssm-session-audit-assume-role",
        ))
    }
}

#[derive(Clone)]
struct Provider(Arc<AssumedRole>);

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssumedRoleProvider({})", self.0.role_arn)
    }
}

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            // Normally already fresh (see `ensure_fresh`); if not, assume without a
            // slot: the request asking for credentials already holds one.
            self.0
                .current(false)
                .await
                .map_err(|f| CredentialsError::provider_error(f.to_string()))
        })
    }
}
