//! MinIO's admin API in the embedded backend, as far as the chart's setup uses it, and the
//! policy check on every S3 request, so that `gateway policies` and the least-privilege
//! identities of the chart are tested against real requests.
//!
//! `add-canned-policy`, as madmin-go's `AddCannedPolicy` sends it and MinIO's
//! `cmd/admin-handlers-users.go` (`AddCannedPolicy`) answers it:
//! `PUT /minio/admin/v3/add-canned-policy?name=NAME`, SigV4-signed (service `s3`), the policy
//! document as the plain JSON body; `200` with an empty body; the caller needs
//! `admin:CreatePolicy`, which here only the root key has. A malformed document is
//! `400 XMinioMalformedJSON`, an empty name `400 XMinioInvalidArgument`, as in MinIO.

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

/// An admin API error, as MinIO writes them (JSON with `Code` and `Message`).
fn admin_error(status: u16, code: &str, message: &str) -> s3s::S3Response<s3s::Body> {
    let body = serde_json::json!({"Code": code, "Message": message}).to_string();
    let mut resp = s3s::S3Response::new(s3s::Body::from(body));
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
        let call = &req.uri.path()[ADMIN_PREFIX.len()..];
        if call != "add-canned-policy" || !matches!(req.method, hyper::Method::PUT | hyper::Method::POST) {
            return Ok(admin_error(
                501,
                "XMinioNotImplemented",
                &format!("the embedded backend offers add-canned-policy only, not {call}"),
            ));
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
        if name.is_empty() || name.contains(',') {
            return Ok(admin_error(
                400,
                "XMinioInvalidArgument",
                "policy name is missing or invalid",
            ));
        }
        let body = req
            .input
            .store_all_limited(20 << 10)
            .await
            .map_err(|_| s3s::s3_error!(EntityTooLarge, "a policy is at most 20 KiB"))?;
        match Policy::parse(&body) {
            Ok(policy) => {
                self.sts.add_canned(&name, policy);
                tracing::debug!(%name, "embedded S3: canned policy added");
                Ok(s3s::S3Response::new(s3s::Body::empty()))
            }
            Err(why) => Ok(admin_error(400, "XMinioMalformedJSON", &why)),
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
        self.sts.authorize(
            &credentials.access_key,
            &policy::action(cx.s3_op().name()),
            &policy::resource(bucket, key),
        )
    }
}
