//! From a request path to an object key.
//!
//! The path is percent-decoded once (so `%20`, `%2F`, parentheses and Unicode reach the key
//! S3 stores, and `+` stays a literal plus), then checked: a key with a control character (NUL,
//! newline, ...), invalid UTF-8, or a `.`/`..` segment is refused, so no request can name
//! something outside the served bucket or forge a log line.
//! Paths ending in `/` name the index document of that "directory".

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
    /// The decoded key is longer than S3 allows (1024 bytes).
    #[error("key longer than 1024 bytes")]
    TooLong,
}

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Maps a request path (without query) to the key to fetch; `index` names directory indexes.
///
/// # Errors
/// A [`BadKey`] saying why the path cannot name an object.
pub fn object_key(path: &str, index: &str) -> Result<String, BadKey> {
    let raw = path.strip_prefix('/').unwrap_or(path);
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| BadKey::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(BadKey::Control);
    }
    if decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(BadKey::DotSegment);
    }
    let key = if decoded.is_empty() || decoded.ends_with('/') {
        format!("{decoded}{index}")
    } else {
        decoded.into_owned()
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(BadKey::TooLong);
    }
    Ok(key)
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
        assert_eq!(object_key(&format!("/{}", "k".repeat(1025)), "i"), Err(BadKey::TooLong));
    }

    proptest::proptest! {
        /// Arbitrary paths never panic, and whatever key comes out has no `.`/`..` segment
        /// and no NUL, so joined to a prefix it stays under that prefix.
        #[test]
        fn never_escapes(path in "/[a-zA-Z0-9%./+ _-]{0,40}") {
            if let Ok(key) = object_key(&path, "index.html") {
                proptest::prop_assert!(!key.split('/').any(|s| s == ".." || s == "."));
                proptest::prop_assert!(!key.contains('\0'));
                proptest::prop_assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
            }
        }

        /// Any string at all (bytes the URI parser would not even accept) never panics.
        #[test]
        fn any_input_is_safe(path in proptest::prelude::any::<String>()) {
            let _ = object_key(&path, "index.html");
        }
    }
}
