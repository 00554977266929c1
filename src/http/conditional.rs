//! Conditional requests (RFC 9110 §13): `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` and `If-Range`, evaluated against an object's validators.
//!
//! Pure functions, unit-tested beside their code. Header syntax is parsed by the `headers`
//! crate; what this module adds is the decision RFC 9110 asks of the server, in its order.

use std::time::SystemTime;

use headers::{ETag, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfUnmodifiedSince};
use http::{HeaderMap, Method, header};

/// What the preconditions of a request say to do (RFC 9110 §13.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and serve the object.
    Proceed,
    /// 304 Not Modified (GET/HEAD whose cached copy is current).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Whether the request carries any precondition header.
pub fn has_preconditions(headers: &HeaderMap) -> bool {
    [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|h| headers.contains_key(h))
}

fn parse_etag(etag: Option<&str>) -> Option<ETag> {
    etag.and_then(|e| e.parse().ok())
}

/// Evaluates preconditions in the order of RFC 9110 §13.2.2 against the object's validators.
///
/// Headers that do not parse are ignored, as the RFC asks of recipients.
pub fn evaluate_preconditions(
    method: &Method,
    headers: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
) -> Precondition {
    let etag = parse_etag(etag);
    // 1. If-Match; 2. else If-Unmodified-Since.
    if let Some(if_match) = headers.typed_get::<IfMatch>() {
        let passes = match &etag {
            Some(e) => if_match.precondition_passes(e),
            None => if_match.is_any(),
        };
        if !passes {
            return Precondition::Failed;
        }
    } else if let (Some(ius), Some(lm)) = (headers.typed_get::<IfUnmodifiedSince>(), last_modified)
        && !ius.precondition_passes(lm)
    {
        return Precondition::Failed;
    }
    let safe = *method == Method::GET || *method == Method::HEAD;
    // 3. If-None-Match; 4. else If-Modified-Since (GET/HEAD only).
    if let Some(inm) = headers.typed_get::<IfNoneMatch>() {
        let matches = match &etag {
            Some(e) => !inm.precondition_passes(e),
            // `*` matches any existing representation.
            None => inm == IfNoneMatch::any(),
        };
        if matches {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe
        && let (Some(ims), Some(lm)) = (headers.typed_get::<IfModifiedSince>(), last_modified)
        && !ims.is_modified(lm)
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether `If-Range` (if any) lets the `Range` header apply (RFC 9110 §13.1.5): an entity tag
/// must match strongly, a date must equal the last modification exactly.
pub fn if_range_allows(headers: &HeaderMap, etag: Option<&str>, last_modified: Option<SystemTime>) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    // An If-Range that does not parse cannot be satisfied: send the whole object.
    let Ok(value) = value.to_str() else { return false };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        // A weak tag never matches (§13.1.5 asks for the strong comparison).
        return match etag.map(str::trim) {
            Some(current) => value.starts_with('"') && !current.starts_with("W/") && value == current,
            None => false,
        };
    }
    // A date matches only when it is exactly the Last-Modified value, to the second (HTTP
    // dates have no finer unit); a later date is not "unchanged since".
    match (httpdate::parse_http_date(value), last_modified) {
        (Ok(given), Some(lm)) => seconds(given) == seconds(lm),
        _ => false,
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    const ETAG: &str = "\"abc\"";

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn precondition_order() {
        use Precondition::*;
        let get = Method::GET;
        let lm = Some(t(1_000_000));
        let cases: &[(&[(&str, &str)], Precondition)] = &[
            (&[], Proceed),
            (&[("if-none-match", ETAG)], NotModified),
            (&[("if-none-match", "W/\"abc\"")], NotModified), // weak comparison
            (&[("if-none-match", "\"x\", \"abc\"")], NotModified),
            (&[("if-none-match", "*")], NotModified),
            (&[("if-none-match", "\"x\"")], Proceed),
            (&[("if-match", "\"x\"")], Failed),
            (&[("if-match", ETAG)], Proceed),
            (&[("if-match", "*")], Proceed),
            (&[("if-match", "W/\"abc\"")], Failed), // strong comparison
            (&[("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")], Failed),
            (&[("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")], NotModified),
            (&[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")], Proceed),
            // If-None-Match wins over If-Modified-Since.
            (
                &[
                    ("if-none-match", "\"x\""),
                    ("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
                ],
                Proceed,
            ),
            // If-Match failing wins over If-None-Match.
            (&[("if-match", "\"x\""), ("if-none-match", ETAG)], Failed),
            // Unparseable dates are ignored.
            (&[("if-modified-since", "yesterday")], Proceed),
        ];
        for (headers, want) in cases {
            assert_eq!(
                evaluate_preconditions(&get, &hm(headers), Some(ETAG), lm),
                *want,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn if_range() {
        let lm = Some(t(1_000_000));
        assert!(if_range_allows(&hm(&[]), Some(ETAG), lm));
        assert!(if_range_allows(&hm(&[("if-range", ETAG)]), Some(ETAG), lm));
        assert!(!if_range_allows(&hm(&[("if-range", "\"old\"")]), Some(ETAG), lm));
        let date = httpdate::fmt_http_date(t(1_000_000));
        assert!(if_range_allows(&hm(&[("if-range", &date)]), Some(ETAG), lm));
        let older = httpdate::fmt_http_date(t(999_000));
        assert!(!if_range_allows(&hm(&[("if-range", &older)]), Some(ETAG), lm));
        // Only the exact date matches: one second later, or far in the future, sends it whole.
        for later in [t(1_000_001), t(4_102_444_800)] {
            let later = httpdate::fmt_http_date(later);
            assert!(!if_range_allows(&hm(&[("if-range", &later)]), Some(ETAG), lm));
        }
        assert!(!if_range_allows(&hm(&[("if-range", "W/\"x\"")]), Some("W/\"x\""), lm));
        assert!(!if_range_allows(&hm(&[("if-range", "soon")]), Some(ETAG), lm));
    }
}
