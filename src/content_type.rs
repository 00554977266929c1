//! The `Content-Type` of an object response: the stored one, unless missing or generic.

/// Content types S3 stores when the uploader did not say.
const GENERIC_TYPES: &[&str] = &["binary/octet-stream", "application/octet-stream"];

/// The object's own content type, unless missing or generic; then one derived from the key's
/// extension (`application/octet-stream` when unknown).
pub fn content_type(stored: Option<&str>, key: &str) -> String {
    match stored.map(str::trim) {
        Some(ct) if !ct.is_empty() && !GENERIC_TYPES.iter().any(|g| ct.eq_ignore_ascii_case(g)) => ct.to_string(),
        _ => mime_guess::from_path(key).first_or_octet_stream().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(Some("image/gif"), "x.bin"), "image/gif");
        assert_eq!(content_type(Some("binary/octet-stream"), "a.json"), "application/json");
        assert_eq!(content_type(None, "a.gif"), "image/gif");
        assert_eq!(content_type(Some(""), "page.html"), "text/html");
        assert_eq!(content_type(None, "noext"), "application/octet-stream");
    }
}
