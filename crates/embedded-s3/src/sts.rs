//! MinIO's STS in the embedded backend (the keys it issues and the policies they carry; the
//! HTTP API answering for them is [`crate::sts_api`]): `AssumeRoleWithCertificate`, so that
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
    pub(crate) web_tokens: Mutex<std::collections::HashSet<String>>,
    /// Temporary access key → (secret key, expiry, policy name).
    issued: Mutex<HashMap<String, (String, SystemTime, String)>>,
    max_duration: Mutex<Duration>,
    count: AtomicU64,
    /// Answer as MinIO does while its IAM is loading (tests).
    pub(crate) starting: std::sync::atomic::AtomicBool,
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
    pub(crate) fn policy_for(&self, common_name: &str) -> Option<String> {
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
    pub(crate) fn issue(&self, asked: Duration, policy: String) -> (String, String, String, SystemTime) {
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

/// A random token of `len` letters and digits.
pub(crate) fn token(len: usize) -> String {
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
