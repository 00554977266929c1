//! A web identity token (a Kubernetes projected service-account token, IRSA) exchanged for
//! temporary credentials with `AssumeRoleWithWebIdentity`, for `--credentials chain`.
//!
//! aws-config has a provider for this, but it cannot read MinIO's answer: MinIO always sends
//! `<AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser>` (its
//! `WebIdentityResult` in cmd/sts-datatypes.go marks the struct `omitempty`, which Go's
//! encoding/xml never applies to a struct), and aws-config parses the empty ARN and fails
//! ("ARN must have 6 components", awslabs/aws-sdk-rust#1288). This one reads only
//! `<Credentials>`, as the certificate path does, so it works with MinIO and with AWS STS.
//!
//! It reads what aws-config reads: `AWS_WEB_IDENTITY_TOKEN_FILE` (read again on every exchange,
//! since the kubelet rotates it), `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`, and the STS endpoint
//! from `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else AWS's regional STS. The SDK keeps
//! what it returns until shortly before expiry.

use std::path::PathBuf;
use std::sync::Arc;

use aws_credential_types::Credentials;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::backend::sts::{self, ASSUME_ROLE_WITH_WEB_IDENTITY, StsError};

/// The exchange of one token file for credentials.
#[derive(Debug)]
pub struct WebIdentity {
    client: sts::Client,
    endpoint: String,
    token_file: PathBuf,
    role_arn: String,
    session_name: String,
}

impl WebIdentity {
    /// The exchange the environment asks for: `None` without `AWS_WEB_IDENTITY_TOKEN_FILE`, or
    /// with static keys in the environment (the chain takes those first, as aws-config does).
    pub fn from_env(tls: &Arc<rustls::ClientConfig>, region: &str) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if var("AWS_ACCESS_KEY_ID").is_some() {
            return None;
        }
        let token_file = PathBuf::from(var("AWS_WEB_IDENTITY_TOKEN_FILE")?);
        let endpoint = var("AWS_ENDPOINT_URL_STS")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        Some(Self {
            client: sts::client(tls),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token_file,
            role_arn: var("AWS_ROLE_ARN").unwrap_or_default(),
            session_name: var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "gateway".to_string()),
        })
    }

    /// Exchanges the token for credentials.
    ///
    /// # Errors
    /// The token file cannot be read, or [`StsError`] from the STS.
    pub async fn provide(&self) -> Result<Credentials, StsError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| StsError::Transport {
                action: ASSUME_ROLE_WITH_WEB_IDENTITY,
                detail: format!(
                    "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {}: {e}",
                    self.token_file.display()
                ),
            })?;
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let form = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
            enc(&self.role_arn),
            enc(&self.session_name),
            enc(token.trim())
        );
        sts::call(
            &self.client,
            ASSUME_ROLE_WITH_WEB_IDENTITY,
            &format!("{}/", self.endpoint),
            Some(form),
        )
        .await
    }
}
