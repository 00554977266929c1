//! The aws-sdk-s3 client for one backend: its HTTP client, credentials, retries, timeouts and
//! checksum policy, set once here for every call the `Storage` handle makes.

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, IdentityCache, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::backend::credentials::CertificateCredentials;
use crate::backend::settings::{BackendConfig, CredentialSource};
use crate::backend::transport::MtlsHttpClient;
use crate::metrics::Metrics;

/// How many attempts the SDK makes per call.
#[derive(Clone, Copy, Debug)]
pub enum Retries {
    /// One retry of transient failures (a stale pooled connection), for serving requests.
    Serve,
    /// No SDK retries: the caller runs its own retry loop with a deadline (`seed`).
    CallerManaged,
}

/// Renews temporary credentials the backend refuses as `InvalidAccessKeyId` (how MinIO
/// answers expired ones) and asks for the call to be retried, once (the serving retry policy
/// allows two attempts).
#[derive(Debug)]
struct RenewOnInvalidKey(CertificateCredentials);

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for RenewOnInvalidKey {
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(op) = err.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        // The operations' error types, each able to say its code.
        macro_rules! code_of {
            ($($t:ty),*) => { None$(.or_else(|| op.downcast_ref::<$t>().and_then(|e| e.code())))* };
        }
        let code: Option<&str> = code_of!(
            aws_sdk_s3::operation::get_object::GetObjectError,
            aws_sdk_s3::operation::head_object::HeadObjectError,
            aws_sdk_s3::operation::head_bucket::HeadBucketError,
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
            aws_sdk_s3::operation::put_object::PutObjectError
        );
        if code == Some("InvalidAccessKeyId") {
            tracing::info!("the backend refused the temporary credentials: renewing them and trying again");
            self.0.forget();
            RetryAction::transient_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "renew temporary credentials on InvalidAccessKeyId"
    }
}

/// Builds the S3 client for `cfg`, with the temporary credentials' keeper when the credentials
/// are issued for the client certificate. No connection is made until the first call.
pub(super) fn build(
    cfg: &BackendConfig,
    metrics: &Arc<Metrics>,
    retries: Retries,
) -> (Client, Option<CertificateCredentials>) {
    let http = MtlsHttpClient::new(
        cfg.tls.config.clone(),
        cfg.connect_timeout,
        cfg.timeout,
        cfg.connection_max_age,
    );
    let retry = match retries {
        Retries::Serve => RetryConfig::standard().with_max_attempts(2),
        Retries::CallerManaged => RetryConfig::disabled(),
    };
    let mut builder = aws_sdk_s3::Config::builder();
    let sts = match &cfg.credentials {
        CredentialSource::Static { access_key, secret_key } => {
            builder.set_credentials_provider(Some(SharedCredentialsProvider::new(Credentials::new(
                access_key,
                secret_key.expose(),
                None,
                None,
                "gateway-static",
            ))));
            None
        }
        CredentialSource::StsCertificate { duration } => {
            let sts = CertificateCredentials::new(&cfg.endpoint, cfg.tls.config.clone(), *duration, metrics.clone());
            builder.set_credentials_provider(Some(SharedCredentialsProvider::new(sts.clone())));
            // The provider keeps and renews the credentials itself (ahead of expiry, one
            // task); the SDK asks it on each request.
            builder.set_identity_cache(IdentityCache::no_cache());
            // Credentials the backend no longer takes (it restarted, or a clock is off)
            // are renewed and the call retried once.
            builder.push_retry_classifier(
                aws_smithy_runtime_api::client::retries::classifiers::SharedRetryClassifier::new(RenewOnInvalidKey(
                    sts.clone(),
                )),
            );
            Some(sts)
        }
        CredentialSource::Chain => {
            let chain = crate::backend::credentials::Chain::new(http.clone(), &cfg.tls.config, &cfg.region);
            builder.set_credentials_provider(Some(SharedCredentialsProvider::new(chain)));
            None
        }
    };
    let conf = builder
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .endpoint_url(&cfg.endpoint)
        .force_path_style(cfg.path_style)
        .http_client(http)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(cfg.connect_timeout)
                .read_timeout(cfg.timeout)
                // The whole call, retries included, up to the response head: one connect
                // and one wait for headers (a refused connection is retried at once).
                .operation_timeout(cfg.connect_timeout + cfg.timeout)
                .build(),
        )
        // A body that stops flowing from the backend (less than 1 byte/s for this long,
        // not counting time the client spends not reading) fails instead of hanging.
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(cfg.timeout)
                .build(),
        )
        // MinIO before 2025 rejects the SDK's default CRC32 trailers; checksums are sent
        // and checked only where S3 requires them.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    (Client::from_conf(conf), sts)
}
