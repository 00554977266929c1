//! MinIO's STS on the wire, shared by the two ways the gateway gets temporary credentials
//! from it (`credentials` for the client certificate, `web_identity` for a web
//! identity token): one unsigned POST, and the
//! `<Credentials>` of the answer.
//!
//! What MinIO answers (cmd/sts-handlers.go, cmd/sts-datatypes.go, cmd/sts-errors.go): 200 with
//! `<Credentials>` (`AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`); an error is
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>` with a
//! 4xx for what the request got wrong (`AccessDenied`, `MissingParameter`,
//! `InvalidClientCertificate`) and a 5xx while it cannot answer yet: 503
//! `STSIAMNotInitialized` or `STSNotInitialized` while its IAM starts, 500 `InternalError` (also
//! for a certificate whose common name names no policy, from `SetTempUser`). A 4xx is final; a
//! 5xx is worth asking again, as `seed`, `policies` and `serve` do for any backend 5xx.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;

use crate::error::error_chain;

/// `AssumeRoleWithCertificate`, the action named in errors.
pub const ASSUME_ROLE_WITH_CERTIFICATE: &str = "AssumeRoleWithCertificate";
/// `AssumeRoleWithWebIdentity`, the action named in errors.
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";

/// The HTTP client of STS calls.
pub type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Why temporary credentials could not be had, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// The request did not complete.
    #[error("{action}: {detail}")]
    Transport {
        /// The STS action.
        action: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The STS refused (4xx): asking again will not help.
    #[error("{action} refused ({status}): {detail}{}", hint(action))]
    Refused {
        /// The STS action.
        action: &'static str,
        /// HTTP status.
        status: u16,
        /// The error code and message of the answer.
        detail: String,
    },
    /// The STS could not answer (5xx), e.g. while MinIO's IAM starts: worth asking again.
    #[error(
        "{action} failed ({status}): {detail} (MinIO answers 503 while it starts, and 500 InternalError also when the certificate's common name names no policy)"
    )]
    Unavailable {
        /// The STS action.
        action: &'static str,
        /// HTTP status.
        status: u16,
        /// The error code of the answer.
        code: String,
        /// The error code and message of the answer.
        detail: String,
    },
    /// The answer could not be read.
    #[error("{action}: unreadable answer: {detail}")]
    Unreadable {
        /// The STS action.
        action: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// What to check when `action` is refused.
fn hint(action: &str) -> &'static str {
    if action == ASSUME_ROLE_WITH_CERTIFICATE {
        " (does the certificate's common name name a MinIO policy, and is MINIO_IDENTITY_TLS_ENABLE on?)"
    } else {
        " (is the token valid, and does the STS trust its issuer?)"
    }
}

/// A client for STS calls over `tls` (which presents the client certificate, if any).
pub fn client(tls: &Arc<rustls::ClientConfig>) -> Client {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((**tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    // A new connection for each call (they are rare): with a client certificate the identity
    // is the certificate of the handshake, and a pooled connection would keep presenting the
    // old one after a rotation.
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(https)
}

/// POSTs `action` to `url` (its parameters in the query, or as a form in `form`) and reads the
/// credentials of the answer.
///
/// # Errors
/// [`StsError`]: a 4xx is [`StsError::Refused`], a 5xx [`StsError::Unavailable`].
pub async fn call(
    client: &Client,
    action: &'static str,
    url: &str,
    form: Option<String>,
) -> Result<Credentials, StsError> {
    let transport = |detail: String| StsError::Transport { action, detail };
    let mut req = http::Request::post(url);
    if form.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Full::new(Bytes::from(form.unwrap_or_default())))
        .map_err(|e| transport(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| transport("no answer within 30s".into()))?
        .map_err(|e| transport(error_chain(&e)))?;
    let status = resp.status().as_u16();
    // An answer is a few KiB; a larger one is not read (a broken or hostile endpoint).
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES);
    let body = tokio::time::timeout(Duration::from_secs(30), limited.collect())
        .await
        .map_err(|_| transport("the answer stalled".into()))?
        .map_err(|e| transport(format!("reading the answer: {e} (at most {MAX_ANSWER_BYTES} bytes)")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if status != 200 {
        let code = tag(&text, "Code").unwrap_or_default();
        let detail = match tag(&text, "Message") {
            Some(message) if !code.is_empty() => format!("{code}: {message}"),
            _ if !code.is_empty() => code.clone(),
            _ => text.chars().take(200).collect(),
        };
        return Err(if status >= 500 {
            StsError::Unavailable {
                action,
                status,
                code,
                detail,
            }
        } else {
            StsError::Refused { action, status, detail }
        });
    }
    let credentials = parse_credentials(&text).map_err(|detail| StsError::Unreadable { action, detail })?;
    // A lifetime that is over already (a clock far off) or longer than any STS grants would
    // make the renewal plan spin or sleep forever: an error, retried with backoff.
    let expiry = credentials.expiry().unwrap_or(UNIX_EPOCH);
    let now = SystemTime::now();
    if expiry <= now || expiry > now + MAX_LIFETIME {
        return Err(StsError::Unreadable {
            action,
            detail: format!(
                "Expiration {} s from now is not within (0, 366 days]: is a clock off?",
                expiry
                    .duration_since(now)
                    .map_or_else(|e| -(e.duration().as_secs() as i128), |d| d.as_secs() as i128)
            ),
        });
    }
    Ok(credentials)
}

/// The largest STS answer read.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// The longest lifetime taken: MinIO grants at most 365 days (`maxExpiry`), AWS STS 12 hours.
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The inside of the first `<name>...</name>` in `xml`, as it is.
fn tag_raw<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

/// The text of the first `<name>...</name>` in `xml`, unescaped.
fn tag(xml: &str, name: &str) -> Option<String> {
    Some(
        tag_raw(xml, name)?
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The `<Credentials>` of an STS answer, and nothing else of it (MinIO's web identity answer
/// holds an empty `<AssumedRoleUser>` that must not matter).
fn parse_credentials(xml: &str) -> Result<Credentials, String> {
    let credentials = tag_raw(xml, "Credentials").ok_or("no Credentials")?;
    let field = |name: &str| tag(credentials, name).ok_or_else(|| format!("no {name}"));
    let expiration = field("Expiration")?;
    let expiry = parse_rfc3339(&expiration).ok_or_else(|| format!("Expiration {expiration:?}"))?;
    Ok(Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?),
        Some(expiry),
        "gateway-sts",
    ))
}

/// `2026-11-23T18:00:00Z` (fractional seconds allowed, UTC only) as a time.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era.checked_mul(146_097)?.checked_add(doe)?.checked_sub(719_468)?).ok()?;
    let secs = days.checked_mul(86_400)?.checked_add(h * 3600 + min * 60 + sec)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<AssumeRoleWithCertificateResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithCertificateResult><Credentials><AccessKeyId>YC12ZBHUVW588BQAE5BM</AccessKeyId><SecretAccessKey>Zgl9+zdE0pZ88+hLqtfh0ocLN+WQTJixHouCkZkW</SecretAccessKey><Expiration>2021-07-19T20:10:45Z</Expiration><SessionToken>eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.x</SessionToken></Credentials></AssumeRoleWithCertificateResult><ResponseMetadata><RequestId>169339CD8B3A6948</RequestId></ResponseMetadata></AssumeRoleWithCertificateResponse>"#;
        let c = parse_credentials(xml).unwrap();
        assert_eq!(c.access_key_id(), "YC12ZBHUVW588BQAE5BM");
        assert_eq!(c.secret_access_key(), "Zgl9+zdE0pZ88+hLqtfh0ocLN+WQTJixHouCkZkW");
        assert_eq!(c.session_token(), Some("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.x"));
        assert_eq!(c.expiry(), Some(UNIX_EPOCH + Duration::from_secs(1_626_725_445)));
        assert!(parse_credentials("<Error><Code>AccessDenied</Code></Error>").is_err());
    }

    /// MinIO's web identity answer as `AssumeRoleWithWebIdentity` writes it (cmd/sts-handlers.go;
    /// `WebIdentityResult` in cmd/sts-datatypes.go): an empty `<AssumedRoleUser>`, which
    /// aws-config cannot read, and `<Credentials>`, which is all that is read here.
    #[test]
    fn minios_web_identity_answer() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser><Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>SK</SecretAccessKey><SessionToken>ST</SessionToken><Expiration>2021-07-19T20:10:45Z</Expiration></Credentials><SubjectFromWebIdentityToken>gateway</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>";
        let c = parse_credentials(xml).unwrap();
        assert_eq!((c.access_key_id(), c.secret_access_key()), ("AK", "SK"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:01.250Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_801))
        );
        assert_eq!(parse_rfc3339("2021-07-19T20:10:45+02:00"), None);
        assert_eq!(parse_rfc3339("2021-13-19T20:10:45Z"), None);
        // Far in the future: no overflow, no panic.
        assert_eq!(parse_rfc3339("999999999999999-01-01T00:00:00Z"), None);
    }
}
