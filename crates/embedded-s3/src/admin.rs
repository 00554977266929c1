//! MinIO's admin API in the embedded backend, as far as the chart's setup uses it, and the
//! policy check on every S3 request, so that `gateway policies` and the least-privilege
//! identities of the chart are tested against real requests.
//!
//! `add-canned-policy`, as madmin-go's `AddCannedPolicy` sends it and MinIO answers it
//! (`AddCannedPolicy` in cmd/admin-handlers-users.go, minio/minio 7aac2a2):
//! `PUT /minio/admin/v3/add-canned-policy?name=NAME`, SigV4-signed (service `s3`), the policy
//! document as the plain JSON body; `200` with an empty body; the caller needs
//! `admin:CreatePolicy`, which here only the root key has. Refusals, in MinIO's order, as JSON
//! (`writeErrorResponseJSON`, cmd/api-response.go; codes from cmd/api-errors.go): a name with
//! a space at either end `400 XMinioInvalidResource`, with a comma `400 PolicyInvalidName`; no
//! body `411 MissingContentLength`; over 20 KiB (`maxBucketPolicySize`) `400 EntityTooLarge`;
//! a document without `Version` `400 MalformedPolicy`. A document the parser refuses is
//! `400 XMinioMalformedJSON` here (MinIO's code depends on minio/pkg's error).

use std::sync::Arc;

use crate::policy::{self, Policy};
use crate::sts::Sts;

/// The admin API's path prefix.
const ADMIN_PREFIX: &str = "/minio/admin/v3/";

/// The custom route answering the admin API.
pub struct AdminRoute {
    root_access_key: String,
    sts: Arc<Sts>,
}

impl AdminRoute {
    /// A route accepting calls signed with `root_access_key`, keeping policies in `sts`.
    pub fn new(root_access_key: &str, sts: Arc<Sts>) -> Self {
        Self {
            root_access_key: root_access_key.to_string(),
            sts,
        }
    }
}

/// The largest policy document MinIO takes: `maxBucketPolicySize`, cmd/bucket-policy-handlers.go.
const MAX_POLICY_BYTES: usize = 20 << 10;

/// An admin API error as MinIO writes it: `APIErrorResponse` (cmd/api-errors.go) encoded by
/// `encodeResponseJSON` (Go's `json.Encoder`: fields in order, a newline after), with
/// `Content-Type: application/json`.
fn admin_error(status: u16, code: &str, message: &str, resource: &str) -> s3s::S3Response<s3s::Body> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ApiErrorResponse<'a> {
        code: &'a str,
        message: &'a str,
        resource: &'a str,
        request_id: &'a str,
        host_id: &'a str,
    }
    let mut body = serde_json::to_vec(&ApiErrorResponse {
        code,
        message,
        resource,
        request_id: "",
        host_id: "",
    })
    .unwrap_or_default();
    body.push(b'\n');
    let mut resp = s3s::S3Response::new(s3s::Body::from(bytes::Bytes::from(body)));
    resp.status = hyper::StatusCode::from_u16(status).ok();
    resp.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[async_trait::async_trait]
impl s3s::route::S3Route for AdminRoute {
    fn is_match(
        &self,
        _method: &hyper::Method,
        uri: &hyper::Uri,
        _headers: &hyper::HeaderMap,
        _extensions: &mut hyper::http::Extensions,
    ) -> bool {
        uri.path().starts_with(ADMIN_PREFIX)
    }

    /// Signed with the root key (MinIO: an identity whose policy allows the admin action).
    async fn check_access(&self, req: &mut s3s::S3Request<s3s::Body>) -> s3s::S3Result<()> {
        match &req.credentials {
            Some(c) if c.access_key == self.root_access_key => Ok(()),
            Some(_) => Err(s3s::s3_error!(
                AccessDenied,
                "the admin API needs admin:CreatePolicy, which only the root credentials have here"
            )),
            None => Err(s3s::s3_error!(AccessDenied, "Signature is required")),
        }
    }

    async fn call(&self, mut req: s3s::S3Request<s3s::Body>) -> s3s::S3Result<s3s::S3Response<s3s::Body>> {
        let path = req.uri.path().to_string();
        let call = &path[ADMIN_PREFIX.len()..];
        let error = |status, code, message: &str| Ok(admin_error(status, code, message, &path));
        if call != "add-canned-policy" || !matches!(req.method, hyper::Method::PUT | hyper::Method::POST) {
            return error(
                501,
                "XMinioNotImplemented",
                &format!("the embedded backend offers add-canned-policy only, not {call}"),
            );
        }
        let name = req
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() || name.trim() != name {
            return error(
                400,
                "XMinioInvalidResource",
                "Policy, user or group names are not allowed to begin or end with space characters",
            );
        }
        if name.contains(',') {
            return error(400, "PolicyInvalidName", "Policy name may not contain comma");
        }
        let length = req
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        if length == 0 {
            return error(
                411,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
            );
        }
        if length > MAX_POLICY_BYTES {
            return error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
            );
        }
        let Ok(body) = req.input.store_all_limited(MAX_POLICY_BYTES).await else {
            return error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
            );
        };
        let version = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|doc| doc.get("Version").and_then(|v| v.as_str()).map(str::to_string));
        match Policy::parse(&body) {
            Ok(_) if version.as_deref().unwrap_or("").is_empty() => {
                error(400, "MalformedPolicy", "The policy must contain a valid version string")
            }
            Ok(policy) => {
                self.sts.add_canned(&name, policy);
                tracing::debug!(%name, "embedded S3: canned policy added");
                Ok(s3s::S3Response::new(s3s::Body::empty()))
            }
            Err(why) => error(400, "XMinioMalformedJSON", &why),
        }
    }
}

/// Every S3 request's check against the policy of the key that signed it.
pub struct Access {
    sts: Arc<Sts>,
}

impl Access {
    /// Checks against the policies of `sts`.
    pub fn new(sts: Arc<Sts>) -> Self {
        Self { sts }
    }
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3s::s3_error!(AccessDenied, "Signature is required"));
        };
        let (bucket, key) = match cx.s3_path() {
            s3s::path::S3Path::Root => (None, None),
            s3s::path::S3Path::Bucket { bucket } => (Some(&**bucket), None),
            s3s::path::S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        let resource = policy::resource(bucket, key);
        let operation = cx.s3_op().name();
        if operation == "HeadBucket" {
            // `HeadBucketHandler` (cmd/bucket-handlers.go) allows s3:HeadBucket, else
            // s3:ListBucket.
            return self
                .sts
                .authorize(&credentials.access_key, "s3:HeadBucket", &resource)
                .or_else(|_| self.sts.authorize(&credentials.access_key, "s3:ListBucket", &resource));
        }
        self.sts
            .authorize(&credentials.access_key, &policy::action(operation), &resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `writeErrorResponseJSON` with `ErrPolicyInvalidVersion`: `APIErrorResponse`'s fields in
    /// order (the empty `omitempty` ones left out), a newline after.
    #[test]
    fn golden_admin_error() {
        let resp = admin_error(
            400,
            "MalformedPolicy",
            "The policy must contain a valid version string",
            "/minio/admin/v3/add-canned-policy",
        );
        assert_eq!(resp.status.map(|s| s.as_u16()), Some(400));
        assert_eq!(resp.headers.get("content-type").unwrap(), "application/json");
        let body = resp.output.bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "{\"Code\":\"MalformedPolicy\",\"Message\":\"The policy must contain a valid version string\",\"Resource\":\"/minio/admin/v3/add-canned-policy\",\"RequestId\":\"\",\"HostId\":\"\"}\n"
        );
    }
}
