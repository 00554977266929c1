//! The STS's HTTP API in the embedded backend: `AssumeRoleWithCertificate` and
//! `AssumeRoleWithWebIdentity` answered as MinIO's source answers them (`AssumeRoleWithCertificate`
//! and `AssumeRoleWithSSO` in cmd/sts-handlers.go, the bodies in cmd/sts-datatypes.go, the
//! errors in cmd/sts-errors.go; minio/minio 7aac2a2), for the keys [`crate::sts::Sts`] issues.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sts::{PeerCertificate, Sts, rfc3339, token};

/// The custom s3s route answering `AssumeRoleWithCertificate`.
pub struct StsRoute {
    sts: std::sync::Arc<Sts>,
}

impl StsRoute {
    /// A route issuing credentials of `sts`.
    pub fn new(sts: std::sync::Arc<Sts>) -> Self {
        Self { sts }
    }
}

#[async_trait::async_trait]
impl s3s::route::S3Route for StsRoute {
    fn is_match(
        &self,
        method: &hyper::Method,
        uri: &hyper::Uri,
        headers: &hyper::HeaderMap,
        _extensions: &mut hyper::http::Extensions,
    ) -> bool {
        // AssumeRoleWithCertificate names its action in the query; the STS SDK
        // (AssumeRoleWithWebIdentity) sends a form.
        let form = headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        *method == hyper::Method::POST
            && uri.path() == "/"
            && (form
                || uri
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p.starts_with("Action="))))
    }

    /// Unsigned: the client certificate or the web identity token is the identity.
    async fn check_access(&self, _req: &mut s3s::S3Request<s3s::Body>) -> s3s::S3Result<()> {
        Ok(())
    }

    async fn call(&self, mut req: s3s::S3Request<s3s::Body>) -> s3s::S3Result<s3s::S3Response<s3s::Body>> {
        let body = req
            .input
            .store_all_limited(64 << 10)
            .await
            .map_err(|_| s3s::s3_error!(InvalidRequest, "unreadable form"))?;
        // `r.Form`: the query and a form body.
        let mut params: HashMap<String, String> = HashMap::new();
        for pair in req
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .chain(std::str::from_utf8(&body).unwrap_or("").split('&'))
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            params.insert(decode(k), decode(v));
        }
        Ok(self.answer(&req, &params))
    }
}

impl StsRoute {
    /// MinIO's answer to one STS call, success or error (cmd/sts-handlers.go).
    fn answer(&self, req: &s3s::S3Request<s3s::Body>, params: &HashMap<String, String>) -> s3s::S3Response<s3s::Body> {
        // Both handlers check this first: `ErrSTSIAMNotInitialized` with `errIAMNotInitialized`.
        if self.sts.starting.load(Ordering::SeqCst) {
            return sts_error(
                503,
                "STSIAMNotInitialized",
                "IAM sub-system is being initialized, please try again",
            );
        }
        // `GetExpiryDuration` (internal/config/identity/tls/config.go): default 1 h; not an
        // integer, below 15 min or above 365 days is `auth.ErrInvalidDuration` →
        // `ErrSTSMissingParameter`.
        let asked = match params.get("DurationSeconds").map(String::as_str) {
            None | Some("") => Duration::from_secs(3600),
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if (15 * 60..=365 * 24 * 3600).contains(&secs) => Duration::from_secs(secs),
                _ => return sts_error(400, "MissingParameter", "invalid token expiry"),
            },
        };
        match params.get("Action").map(String::as_str).unwrap_or("") {
            "AssumeRoleWithCertificate" => self.with_certificate(req, asked),
            "AssumeRoleWithWebIdentity" => self.with_web_identity(params, asked),
            other => sts_error(400, "InvalidParameterValue", &format!("Unsupported action {other}")),
        }
    }

    /// `AssumeRoleWithCertificate`: the certificate's common name names the policy; the grant
    /// ends no later than the certificate.
    fn with_certificate(&self, req: &s3s::S3Request<s3s::Body>, asked: Duration) -> s3s::S3Response<s3s::Body> {
        let Some(der) = req.extensions.get::<PeerCertificate>() else {
            return sts_error(400, "MissingParameter", "No client certificate provided");
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der.0) else {
            return sts_error(400, "InvalidClientCertificate", "unreadable client certificate");
        };
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        if cn.is_empty() {
            return sts_error(400, "MissingParameter", "certificate subject CN cannot be empty");
        }
        // "We must not issue credentials that out-live the certificate."
        let until = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let asked = asked.min(Duration::from_secs(until.saturating_sub(now)));
        // `SetTempUser` (cmd/iam-store.go) fails for a policy that does not exist:
        // `fmt.Errorf("specified policy %s, not found %w", policyName, errNoSuchPolicy)`, which
        // the handler answers as `ErrSTSInternalError`.
        let Some(policy) = self.sts.policy_for(&cn) else {
            return sts_error(
                500,
                "InternalError",
                &format!("specified policy {cn}, not found Specified canned policy does not exist"),
            );
        };
        let (ak, sk, session, expires) = self.sts.issue(asked, policy);
        xml_response(
            200,
            &format!(
                "<AssumeRoleWithCertificateResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithCertificateResult>{}</AssumeRoleWithCertificateResult>{}</AssumeRoleWithCertificateResponse>",
                credentials_xml(&ak, &sk, &session, expires),
                request_id()
            ),
        )
    }

    /// `AssumeRoleWithWebIdentity` (`AssumeRoleWithSSO`): `WebIdentityResult` with its
    /// `AssumedRoleUser` present and empty (encoding/xml does not omit a struct), no
    /// `Audience`, `PackedPolicySize` or `Provider` (empty, omitted), and the token's subject.
    fn with_web_identity(&self, params: &HashMap<String, String>, asked: Duration) -> s3s::S3Response<s3s::Body> {
        let token = params.get("WebIdentityToken").cloned().unwrap_or_default();
        let known = self
            .sts
            .web_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&token);
        if !known {
            // A token that does not validate: `ErrSTSInvalidParameterValue`.
            return sts_error(400, "InvalidParameterValue", "the web identity token is not valid");
        }
        // MinIO takes the policy from the token's claim; the tokens here stand for one that
        // names `readwrite`.
        let (ak, sk, session, expires) = self.sts.issue(asked, "readwrite".to_string());
        xml_response(
            200,
            &format!(
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser>{}<SubjectFromWebIdentityToken>gateway</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult>{}</AssumeRoleWithWebIdentityResponse>",
                credentials_xml(&ak, &sk, &session, expires),
                request_id()
            ),
        )
    }
}

/// The `<Credentials>` element of an STS answer.
fn credentials_xml(access_key: &str, secret_key: &str, session: &str, expires: SystemTime) -> String {
    format!(
        "<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{secret_key}</SecretAccessKey><SessionToken>{session}</SessionToken><Expiration>{}</Expiration></Credentials>",
        rfc3339(expires, false)
    )
}

/// The `<ResponseMetadata>` element of an STS answer.
fn request_id() -> String {
    format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>",
        token(16)
    )
}

/// An XML answer with MinIO's header (`encodeResponse`, cmd/api-response.go: `xml.Header`, then
/// the element), `Content-Type: application/xml`.
fn xml_response(status: u16, xml: &str) -> s3s::S3Response<s3s::Body> {
    let mut resp = s3s::S3Response::new(s3s::Body::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{xml}"
    )));
    resp.status = hyper::StatusCode::from_u16(status).ok();
    resp.headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    resp
}

/// An STS error as MinIO writes it: `writeSTSErrorResponse` (cmd/sts-errors.go) encodes
/// `STSErrorResponse` (namespace, `Error` with `Type`, `Code`, `Message`, then `RequestId`)
/// with the code's status from `stsErrCodes`, and the message of the error that caused it.
fn sts_error(status: u16, code: &str, message: &str) -> s3s::S3Response<s3s::Body> {
    // encoding/xml's escaping of text.
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    xml_response(
        status,
        &format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type></Type><Code>{code}</Code><Message>{escaped}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            token(16)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of `resp` with its random request id replaced by `ID`.
    fn body(resp: s3s::S3Response<s3s::Body>) -> (u16, String) {
        let status = resp.status.map_or(200, |s| s.as_u16());
        let bytes = resp.output.bytes().expect("a buffered body");
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let masked = match (text.find("<RequestId>"), text.find("</RequestId>")) {
            (Some(a), Some(b)) => format!("{}<RequestId>ID{}", &text[..a], &text[b..]),
            _ => text,
        };
        (status, masked)
    }

    /// `writeSTSErrorResponse` with `ErrSTSIAMNotInitialized` and `errIAMNotInitialized`.
    #[test]
    fn golden_sts_error() {
        assert_eq!(
            body(sts_error(503, "STSIAMNotInitialized", "IAM sub-system is being initialized, please try again")),
            (
                503,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type></Type><Code>STSIAMNotInitialized</Code><Message>IAM sub-system is being initialized, please try again</Message></Error><RequestId>ID</RequestId></ErrorResponse>".to_string()
            )
        );
    }

    /// `GetExpiryDuration`'s range, and the web identity answer's empty `AssumedRoleUser`.
    #[test]
    fn golden_web_identity() {
        let route = StsRoute::new(std::sync::Arc::new(Sts::default()));
        route.sts.web_identity_token("t");
        let req = |query: &str| s3s::S3Request {
            input: s3s::Body::empty(),
            method: hyper::Method::POST,
            uri: format!("/?{query}").parse().unwrap(),
            headers: hyper::HeaderMap::new(),
            extensions: hyper::http::Extensions::new(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        let params = |query: &str| -> HashMap<String, String> {
            query
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let short = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=t&DurationSeconds=899";
        let (status, text) = body(route.answer(&req(short), &params(short)));
        assert_eq!(status, 400);
        assert!(
            text.contains("<Code>MissingParameter</Code><Message>invalid token expiry</Message>"),
            "{text}"
        );
        let ok = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=t";
        let (status, text) = body(route.answer(&req(ok), &params(ok)));
        assert_eq!(status, 200);
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser><Credentials><AccessKeyId>"),
            "{text}"
        );
        assert!(text.ends_with("</Expiration></Credentials><SubjectFromWebIdentityToken>gateway</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>ID</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"), "{text}");
        let bad = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=x";
        assert_eq!(body(route.answer(&req(bad), &params(bad))).0, 400);
        let cert = "Action=AssumeRoleWithCertificate&Version=2011-06-15";
        let (status, text) = body(route.answer(&req(cert), &params(cert)));
        assert_eq!(status, 400);
        assert!(
            text.contains("<Code>MissingParameter</Code><Message>No client certificate provided</Message>"),
            "{text}"
        );
        route.sts.starting(true);
        assert_eq!(body(route.answer(&req(ok), &params(ok))).0, 503);
    }
}
