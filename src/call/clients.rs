//! How every SDK client of a run is built: one HTTP client for all of them, our
//! own timeouts, no SDK retries (the scan retries itself, paced and counted),
//! and the home region for global services.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_types::region::Region;

/// How every client of a run is built: our timeouts, no SDK retries (the scan
/// retries itself, paced and counted), and the home region for global services.
#[derive(Clone)]
pub struct ClientSettings {
    sdk: SdkConfig,
    home_region: Region,
    timeouts: TimeoutConfig,
}

impl ClientSettings {
    pub fn new(sdk: &SdkConfig, call_timeout: Duration) -> Self {
        ClientSettings {
            sdk: with_shared_http_client(sdk),
            home_region: sdk
                .region()
                .cloned()
                .unwrap_or_else(|| Region::new("us-east-1")),
            timeouts: TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(call_timeout)
                .build(),
        }
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.sdk)
                .region(self.home_region.clone())
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.sdk)
                .region(self.home_region.clone())
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(self.home_region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(self.timeouts.clone());
        // A custom endpoint (moto, MinIO, a VPC endpoint by IP) needs path-style addressing.
        if self.sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
            b = b.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// Athena in its configured region (else the home region).
    pub fn athena(&self, region: Option<&str>) -> aws_sdk_athena::Client {
        let region = region
            .map(|r| Region::new(r.to_string()))
            .unwrap_or_else(|| self.home_region.clone());
        aws_sdk_athena::Client::from_conf(
            aws_sdk_athena::config::Builder::from(&self.sdk)
                .region(region)
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    /// Account Management (`ListRegions`): a global service, asked in the home region.
    pub fn account(&self) -> aws_sdk_account::Client {
        aws_sdk_account::Client::from_conf(
            aws_sdk_account::config::Builder::from(&self.sdk)
                .region(self.home_region.clone())
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }

    /// The SDK config every client is built from (one HTTP client for all).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The region global services are asked in.
    pub fn home_region(&self) -> &str {
        self.home_region.as_ref()
    }

    /// A region's CloudTrail client with the caller's own credentials (the
    /// trail source's `ListPublicKeys`; scans call LookupEvents on the wire,
    /// see `source::lookup::wire`).
    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .retry_config(RetryConfig::disabled())
                .timeout_config(self.timeouts.clone())
                .build(),
        )
    }
}

/// The SDK's default HTTP client, built once for every SDK client of the run.
/// Left unset, each client (one per account and region) builds its own TLS
/// context and connection pool: ~0.2 MB each and a new connection per partition.
fn with_shared_http_client(sdk: &SdkConfig) -> SdkConfig {
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
    if sdk.http_client().is_some() {
        return sdk.clone();
    }
    let version = sdk
        .behavior_version()
        .unwrap_or_else(aws_config::BehaviorVersion::latest);
    let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(version);
    let http = plugin.and_then(|p| {
        p.runtime_components(&RuntimeComponentsBuilder::new("ssm-session-audit"))
            .http_client()
    });
    match http {
        Some(h) => sdk.to_builder().http_client(h).build(),
        None => sdk.clone(),
    }
}
