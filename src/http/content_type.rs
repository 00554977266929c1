//! The `Content-Type` of an object response: the stored one, unless missing or generic; text
//! types without a charset get `; charset=utf-8`, so that a browser does not guess one
//! (a `text/plain` file in UTF-8 is otherwise shown as Windows-1252).

/// Content types S3 stores when the uploader did not say.
const GENERIC_TYPES: &[&str] = &["binary/octet-stream", "application/octet-stream"];

/// Whether a stored content type says nothing (empty, or what S3 stores when the uploader
/// did not say).
pub fn is_generic(ct: &str) -> bool {
    let ct = ct.trim();
    ct.is_empty() || GENERIC_TYPES.iter().any(|g| ct.eq_ignore_ascii_case(g))
}

/// The object's own content type, unless missing or generic; then one derived from the key's
/// extension (`application/octet-stream` when unknown).
pub fn content_type(stored: Option<&str>, key: &str) -> String {
    let ct = match stored.map(str::trim) {
        Some(ct) if !is_generic(ct) => ct.to_string(),
        _ => mime_guess::from_path(key).first_or_octet_stream().to_string(),
    };
    if is_text(&ct) && !ct.to_ascii_lowercase().contains("charset=") {
        format!("{ct}; charset=utf-8")
    } else {
        ct
    }
}

/// Whether a media type is text that a browser decodes with a charset.
fn is_text(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/") || essence == "application/javascript"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(Some("image/gif"), "x.bin"), "image/gif");
        assert_eq!(content_type(Some("binary/octet-stream"), "a.json"), "application/json");
        assert_eq!(content_type(None, "a.gif"), "image/gif");
        assert_eq!(content_type(Some(""), "page.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(Some("text/plain"), "a"), "text/plain; charset=utf-8");
        assert_eq!(
            content_type(Some("text/html; charset=iso-8859-1"), "a"),
            "text/html; charset=iso-8859-1"
        );
        assert_eq!(
            content_type(Some("Text/CSS;Charset=UTF-8"), "a"),
            "Text/CSS;Charset=UTF-8"
        );
        assert_eq!(content_type(None, "noext"), "application/octet-stream");
    }
}
