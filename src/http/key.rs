//! From a request path to an object key.
//!
//! The path is percent-decoded once (so `%20`, `%2F`, parentheses and Unicode reach the key
//! S3 stores, and `+` stays a literal plus), then checked: a key with a control character (NUL,
//! newline, ...), invalid UTF-8, or a `.`/`..` segment is refused, so no request can name
//! something outside the served bucket or forge a log line.
//! A path names a "directory" when its decoded form is empty or ends in `/` (so `/dir/` and
//! `/dir%2F` alike); that is the one definition every part of the gateway uses, and such a path
//! names the index document of that directory. The length limit applies to the whole key, the
//! served prefix included, so a key S3 would refuse as too long is a 400 here.

use percent_encoding::percent_decode_str;

/// Why a path cannot be an object key (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("path is not valid UTF-8 after percent-decoding")]
    InvalidUtf8,
    /// The path holds a control character (NUL, newline, DEL, ...): no legitimate key has one,
    /// and one in a log line could forge another.
    #[error("path contains a control character")]
    Control,
    /// The path holds a `.` or `..` segment.
    #[error("path contains a '.' or '..' segment")]
    DotSegment,
    /// The decoded key, prefix included, is longer than S3 allows (1024 bytes).
    #[error("key longer than 1024 bytes")]
    TooLong,
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The key relative to the served prefix (with the index document for a directory).
    pub rel: String,
    /// The bucket key: the prefix and `rel`.
    pub key: String,
    /// Whether the path names a directory (its decoded form is empty or ends in `/`).
    pub directory: bool,
}

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Maps a request path (without query) to the key to fetch under `prefix`; `index` names
/// directory indexes.
///
/// # Errors
/// A [`BadKey`] saying why the path cannot name an object.
pub fn object_path(path: &str, prefix: &str, index: &str) -> Result<ObjectPath, BadKey> {
    let directory = is_directory(path);
    let rel = object_key(path, index)?;
    let key = format!("{prefix}{rel}");
    if key.len() > MAX_KEY_BYTES {
        return Err(BadKey::TooLong);
    }
    Ok(ObjectPath { rel, key, directory })
}

/// Whether a raw request path names a directory: decoded, it is empty or ends in `/`.
fn is_directory(path: &str) -> bool {
    let raw = path.strip_prefix('/').unwrap_or(path);
    raw.is_empty()
        || raw.ends_with('/')
        || raw.len() >= 3 && raw.as_bytes()[raw.len() - 3..].eq_ignore_ascii_case(b"%2f")
}

/// Maps a request path (without query) to the key relative to the prefix; `index` names
/// directory indexes.
///
/// # Errors
/// A [`BadKey`] saying why the path cannot name an object.
fn object_key(path: &str, index: &str) -> Result<String, BadKey> {
    let raw = path.strip_prefix('/').unwrap_or(path);
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| BadKey::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(BadKey::Control);
    }
    if decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(BadKey::DotSegment);
    }
    Ok(if is_directory(raw) {
        format!("{decoded}{index}")
    } else {
        decoded.into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_indexes() {
        let cases = [
            ("/", "index.html"),
            ("/cat.gif", "cat.gif"),
            ("/dir/", "dir/index.html"),
            ("/a%20b.gif", "a b.gif"),
            ("/a+b.gif", "a+b.gif"),
            ("/(1).gif", "(1).gif"),
            ("/caf%C3%A9.gif", "café.gif"),
            ("/a%2Fb", "a/b"),
            ("/a//b", "a//b"),
            ("/..gif", "..gif"),
        ];
        for (path, key) in cases {
            assert_eq!(object_key(path, "index.html").as_deref(), Ok(key), "{path}");
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        assert_eq!(object_key("/../x", "i"), Err(BadKey::DotSegment));
        assert_eq!(object_key("/a/%2E%2E/x", "i"), Err(BadKey::DotSegment));
        assert_eq!(object_key("/a/./x", "i"), Err(BadKey::DotSegment));
        assert_eq!(object_key("/a%00b", "i"), Err(BadKey::Control));
        assert_eq!(object_key("/a%0Ab", "i"), Err(BadKey::Control));
        assert_eq!(object_key("/a%7Fb", "i"), Err(BadKey::Control));
        assert_eq!(object_key("/%FF", "i"), Err(BadKey::InvalidUtf8));
        assert_eq!(
            object_path(&format!("/{}", "k".repeat(1025)), "", "i"),
            Err(BadKey::TooLong)
        );
    }

    #[test]
    fn one_definition_of_directory() {
        for (path, directory) in [
            ("/", true),
            ("", true),
            ("/dir/", true),
            ("/dir%2F", true),
            ("/dir%2f", true),
            ("/dir", false),
            ("/a%2Fb", false),
        ] {
            let p = object_path(path, "", "index.html").unwrap();
            assert_eq!(p.directory, directory, "{path}");
            assert_eq!(
                p.rel.ends_with("/index.html") || p.rel == "index.html",
                directory,
                "{path}"
            );
        }
    }

    #[test]
    fn length_counts_the_prefix() {
        let rel = "k".repeat(1000);
        assert!(object_path(&format!("/{rel}"), "", "i").is_ok());
        assert_eq!(
            object_path(&format!("/{rel}"), &"p/".repeat(20), "i"),
            Err(BadKey::TooLong)
        );
        let p = object_path("/a", "site/", "i").unwrap();
        assert_eq!((p.rel.as_str(), p.key.as_str()), ("a", "site/a"));
    }

    proptest::proptest! {
        /// Arbitrary paths never panic, and whatever key comes out has no `.`/`..` segment
        /// and no NUL, so joined to a prefix it stays under that prefix.
        #[test]
        fn never_escapes(path in "/[a-zA-Z0-9%./+ _-]{0,40}") {
            if let Ok(ObjectPath { key, .. }) = object_path(&path, "", "index.html") {
                proptest::prop_assert!(!key.split('/').any(|s| s == ".." || s == "."));
                proptest::prop_assert!(!key.contains('\0'));
                proptest::prop_assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
            }
        }

        /// Any string at all (bytes the URI parser would not even accept) never panics.
        #[test]
        fn any_input_is_safe(path in proptest::prelude::any::<String>()) {
            let _ = object_path(&path, "site/", "index.html");
        }
    }
}
