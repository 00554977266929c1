//! MinIO's STS in the embedded backend: `AssumeRoleWithCertificate`, so that
//! `--credentials sts-certificate` is tested against the real request over real mTLS, and
//! `AssumeRoleWithWebIdentity` (the same endpoint, the action in a form, as the AWS STS SDK
//! sends it), so that `--credentials chain` is tested with a web identity token as on EKS.
//!
//! As MinIO's source answers it (minio/minio 7aac2a2: `AssumeRoleWithCertificate` and
//! `AssumeRoleWithSSO` in cmd/sts-handlers.go, the response types in cmd/sts-datatypes.go, the
//! errors in cmd/sts-errors.go):
//! - `POST /?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds=N`, unsigned;
//!   the identity is the client certificate of the TLS connection, already verified against
//!   the CA (the acceptor checks it). Its common name names the policy: a canned policy of that
//!   name (MinIO's built-ins, or one added through the admin API, [`crate::admin`]); a common
//!   name without one is `500 InternalError` (from `SetTempUser`), an empty one and a missing
//!   certificate `400 MissingParameter`. Tests may also map a common name to another policy
//!   ([`Sts::policy`]).
//! - `DurationSeconds` defaults to 3600; outside 900 .. 31536000 it is `400 MissingParameter`
//!   ("invalid token expiry"); the grant ends no later than the certificate, and here at most
//!   [`Sts::max_duration`], which tests shorten.
//! - While MinIO's IAM loads, every call is `503 STSIAMNotInitialized` ([`Sts::starting`]).
//! - Errors are `<ErrorResponse>` in the STS namespace with `Type`, `Code`, `Message` and
//!   `RequestId`, `Content-Type: application/xml`.
//! - Requests signed with the temporary keys are allowed what that policy allows
//!   ([`Sts::authorize`], [`crate::policy`]); they verify until `Expiration`, and after it are
//!   refused with `InvalidAccessKeyId`, as MinIO refuses expired temporary keys.
//! - `AssumeRoleWithWebIdentity`: `WebIdentityToken` must be a token the test registered
//!   ([`Sts::web_identity_token`]; MinIO verifies an OpenID token; an invalid one is
//!   `400 InvalidParameterValue`), and the answer carries MinIO's empty `AssumedRoleUser`
//!   (`<Arn></Arn><AssumeRoleId></AssumeRoleId>`) and `SubjectFromWebIdentityToken`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::policy::Policy;

/// The DER client certificate of the TLS connection a request came on (request extension).
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Vec<u8>);

/// Temporary keys issued, and which common names may have them.
#[derive(Debug)]
pub struct Sts {
    /// Common names mapped to a policy other than their own name (tests).
    policies: Mutex<HashMap<String, String>>,
    /// Canned policies by name: MinIO's built-ins and those added through the admin API.
    canned: Mutex<HashMap<String, Policy>>,
    /// Web identity tokens accepted by `AssumeRoleWithWebIdentity`.
    web_tokens: Mutex<std::collections::HashSet<String>>,
    /// Temporary access key → (secret key, expiry, policy name).
    issued: Mutex<HashMap<String, (String, SystemTime, String)>>,
    max_duration: Mutex<Duration>,
    count: AtomicU64,
    /// Answer as MinIO does while its IAM is loading (tests).
    starting: std::sync::atomic::AtomicBool,
    /// The `Expiration` answers say instead of the real one (tests).
    expiration_said: Mutex<Option<SystemTime>>,
}

impl Default for Sts {
    /// The development PKI's client certificate (`gateway certs`, common name `gateway`) maps to
    /// MinIO's built-in `readwrite` policy.
    fn default() -> Self {
        Self {
            policies: Mutex::new(HashMap::from([("gateway".to_string(), "readwrite".to_string())])),
            canned: Mutex::new(
                Policy::builtin()
                    .into_iter()
                    .map(|(name, p)| (name.to_string(), p))
                    .collect(),
            ),
            web_tokens: Mutex::default(),
            issued: Mutex::default(),
            max_duration: Mutex::new(Duration::from_secs(12 * 3600)),
            count: AtomicU64::new(0),
            starting: std::sync::atomic::AtomicBool::new(false),
            expiration_said: Mutex::new(None),
        }
    }
}

impl Sts {
    /// Maps a certificate common name to a policy (`None` removes it).
    pub fn policy(&self, common_name: &str, policy: Option<&str>) {
        let mut policies = self.policies.lock().unwrap_or_else(|p| p.into_inner());
        match policy {
            Some(p) => policies.insert(common_name.to_string(), p.to_string()),
            None => policies.remove(common_name),
        };
    }

    /// Adds or replaces the canned policy `name` (the admin API's `add-canned-policy`).
    pub fn add_canned(&self, name: &str, policy: Policy) {
        self.canned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), policy);
    }

    /// The policy a certificate with `common_name` gets: the one its name is mapped to, else the
    /// canned policy of that name, if it exists.
    fn policy_for(&self, common_name: &str) -> Option<String> {
        let name = self
            .policies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(common_name)
            .cloned()
            .unwrap_or_else(|| common_name.to_string());
        let canned = self.canned.lock().unwrap_or_else(|p| p.into_inner());
        canned.contains_key(&name).then_some(name)
    }

    /// Whether a request signed with `access_key` may do `action` on `resource`: temporary keys
    /// are held to their policy; other keys passed signature verification with the root key,
    /// which may do anything.
    ///
    /// # Errors
    /// `AccessDenied` naming the action and the resource.
    pub fn authorize(&self, access_key: &str, action: &str, resource: &str) -> s3s::S3Result<()> {
        let policy = match self.issued.lock().unwrap_or_else(|p| p.into_inner()).get(access_key) {
            Some((_, _, policy)) => policy.clone(),
            None => return Ok(()),
        };
        let allowed = self
            .canned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&policy)
            .is_some_and(|p| p.allows(action, resource));
        if allowed {
            Ok(())
        } else {
            Err(s3s::s3_error!(
                AccessDenied,
                "policy {policy:?} does not allow {action} on {resource}"
            ))
        }
    }

    /// Accepts `token` as a web identity (an OpenID token MinIO would verify; here, a known
    /// string).
    pub fn web_identity_token(&self, token: &str) {
        self.web_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string());
    }

    /// Issues temporary keys valid for what was asked (at most [`Sts::max_duration`]):
    /// (access key, secret key, session token, expiry).
    fn issue(&self, asked: Duration, policy: String) -> (String, String, String, SystemTime) {
        let granted = asked.min(*self.max_duration.lock().unwrap_or_else(|p| p.into_inner()));
        // Whole seconds, as the answer says them.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let expires = UNIX_EPOCH + Duration::from_secs(now + granted.as_secs().max(1));
        // A clock that is off: the answer says another time than the keys really end.
        let said = self
            .expiration_said
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(expires);
        let (access_key, secret_key, session) = (token(20), token(40), token(64));
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(access_key.clone(), (secret_key.clone(), expires, policy));
        self.count.fetch_add(1, Ordering::SeqCst);
        (access_key, secret_key, session, said)
    }

    /// Says this `Expiration` in every answer (`None`: the real one), as an STS whose clock is
    /// off would (tests).
    pub fn say_expiration(&self, at: Option<SystemTime>) {
        *self.expiration_said.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Answers every STS call with `503 STSIAMNotInitialized` while `on`, as MinIO does until
    /// its IAM has loaded (`AssumeRoleWithCertificate` checks `globalIAMSys.Initialized()`
    /// first).
    pub fn starting(&self, on: bool) {
        self.starting.store(on, Ordering::SeqCst);
    }

    /// Grants at most this lifetime, whatever is asked.
    pub fn max_duration(&self, d: Duration) {
        *self.max_duration.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }

    /// Forgets every temporary key issued, as a restarted backend would: requests signed with
    /// them get `InvalidAccessKeyId`.
    pub fn revoke_all(&self) {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Credentials issued so far.
    pub fn issued(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// The secret of temporary `access_key`, while it is valid.
    fn secret(&self, access_key: &str) -> Option<Result<String, ()>> {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let (secret, expires, _) = issued.get(access_key)?.clone();
        if SystemTime::now() >= expires {
            issued.remove(access_key);
            return Some(Err(()));
        }
        Some(Ok(secret))
    }
}

/// The embedded backend's keys: the static pair, and the temporary ones of [`Sts`].
pub struct Auth {
    access_key: String,
    secret_key: String,
    sts: std::sync::Arc<Sts>,
}

impl Auth {
    /// Keys `access_key`/`secret_key`, and those `sts` issues.
    pub fn new(access_key: &str, secret_key: &str, sts: std::sync::Arc<Sts>) -> Self {
        Self {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            sts,
        }
    }
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        if access_key == self.access_key {
            return Ok(self.secret_key.clone().into());
        }
        match self.sts.secret(access_key) {
            Some(Ok(secret)) => Ok(secret.into()),
            Some(Err(())) => Err(s3s::s3_error!(InvalidAccessKeyId, "the temporary credentials expired")),
            None => Err(s3s::s3_error!(InvalidAccessKeyId)),
        }
    }
}

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

/// A random token of `len` letters and digits.
fn token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// `t` as MinIO writes its times: RFC 3339 in UTC, whole seconds (`Expiration`) or with
/// milliseconds (an event's `eventTime`).
pub(crate) fn rfc3339(t: SystemTime, millis: bool) -> String {
    let t = time::OffsetDateTime::from(t);
    let fraction = if millis {
        format!(".{:03}", t.millisecond())
    } else {
        String::new()
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
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

/// Several custom routes behind s3s's one: the first that matches answers.
pub struct Routes(pub Vec<Box<dyn s3s::route::S3Route>>);

/// Which of [`Routes`] matched (request extension).
#[derive(Clone, Copy)]
struct Matched(usize);

#[async_trait::async_trait]
impl s3s::route::S3Route for Routes {
    fn is_match(
        &self,
        method: &hyper::Method,
        uri: &hyper::Uri,
        headers: &hyper::HeaderMap,
        extensions: &mut hyper::http::Extensions,
    ) -> bool {
        match self.0.iter().position(|r| r.is_match(method, uri, headers, extensions)) {
            Some(i) => {
                extensions.insert(Matched(i));
                true
            }
            None => false,
        }
    }

    async fn check_access(&self, req: &mut s3s::S3Request<s3s::Body>) -> s3s::S3Result<()> {
        let Some(Matched(i)) = req.extensions.get::<Matched>().copied() else {
            return Err(s3s::s3_error!(InternalError));
        };
        self.0[i].check_access(req).await
    }

    async fn call(&self, req: s3s::S3Request<s3s::Body>) -> s3s::S3Result<s3s::S3Response<s3s::Body>> {
        let Some(Matched(i)) = req.extensions.get::<Matched>().copied() else {
            return Err(s3s::s3_error!(InternalError));
        };
        self.0[i].call(req).await
    }
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
