//! HTTP Basic authentication (RFC 7617) against an htpasswd file of bcrypt hashes (what
//! `htpasswd -B` writes), for paths a site protects: a staging or internal site behind a
//! password.
//!
//! A bcrypt check costs tens of milliseconds of CPU by design, so a credential that passed is
//! remembered (by a SHA-256 of user and password, never the password) for a minute, and checks
//! run on the blocking pool. An unknown user is checked against a dummy hash of the file's
//! cost, so the answer takes as long as for a known one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;
use subtle::ConstantTimeEq;

/// How long a credential that passed is taken without bcrypt again.
const REMEMBER: Duration = Duration::from_secs(60);

/// Most credentials remembered at once.
const REMEMBERED: usize = 1024;

/// The users of an htpasswd file.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// A hash of a random password at the cost of the file's first hash, checked for unknown
    /// users, so their answer takes as long.
    dummy: String,
    passed: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hashes are secrets too.
        f.debug_struct("Htpasswd").field("users", &self.users.len()).finish()
    }
}

impl Htpasswd {
    /// Reads `user:hash` lines (`#` comments and blank lines allowed); only bcrypt hashes
    /// (`$2a$`, `$2b$`, `$2y$`) are taken.
    ///
    /// # Errors
    /// The first line that is not one, by number (the hash is not repeated).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {}: not user:hash", i + 1));
            };
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                return Err(format!(
                    "line {}: user {user:?} has no bcrypt hash (make it with htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        let Some(first) = users.values().next() else {
            return Err("no user".into());
        };
        let cost = first
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|c| (4..=31).contains(c))
            .ok_or("a bcrypt hash without its cost")?;
        let dummy = bcrypt::hash(rand::random::<u64>().to_string(), cost).map_err(|e| e.to_string())?;
        Ok(Self {
            users,
            dummy,
            passed: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the `Authorization` header value holds a user and password of this file.
    pub async fn check(self: &Arc<Self>, authorization: Option<&str>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let digest: [u8; 32] = sha2::Sha256::digest(format!("{user}\0{password}").as_bytes()).into();
        if self.remembered(&digest) {
            return true;
        }
        let this = self.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let (hash, known) = match this.users.get(&user) {
                Some(h) => (h.as_str(), true),
                None => (this.dummy.as_str(), false),
            };
            bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
            if passed.len() >= REMEMBERED {
                passed.retain(|_, at| at.elapsed() < REMEMBER);
            }
            if passed.len() < REMEMBERED {
                passed.insert(digest, Instant::now());
            }
        }
        ok
    }

    /// Whether a credential with `digest` passed within [`REMEMBER`] (compared in constant time).
    fn remembered(&self, digest: &[u8; 32]) -> bool {
        let passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        passed
            .iter()
            .filter(|(_, at)| at.elapsed() < REMEMBER)
            .fold(false, |found, (d, _)| found | bool::from(d.ct_eq(digest)))
    }
}

/// The user and password of a `Basic` credential.
fn credentials(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn right_wrong_and_missing_credentials() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let file = Arc::new(Htpasswd::parse(&format!("# staff\nann:{hash}\n")).unwrap());
        assert!(file.check(Some(&basic("ann", "s3cret"))).await);
        // Remembered the second time, and still right.
        assert!(file.check(Some(&basic("ann", "s3cret"))).await);
        assert!(!file.check(Some(&basic("ann", "wrong"))).await);
        assert!(!file.check(Some(&basic("bob", "s3cret"))).await);
        assert!(!file.check(Some("Bearer abc")).await);
        assert!(!file.check(Some("Basic !!!")).await);
        assert!(!file.check(None).await);
    }

    #[test]
    fn only_bcrypt_lines_are_taken() {
        assert!(Htpasswd::parse("ann:$apr1$abc$def\n").unwrap_err().contains("line 1"));
        assert!(Htpasswd::parse("ann\n").is_err());
        assert!(Htpasswd::parse("# nobody\n").is_err());
        let e = Htpasswd::parse("ann:{SHA}abc").unwrap_err();
        assert!(!e.contains("abc"), "the hash is repeated: {e}");
    }
}
