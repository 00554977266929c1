//! RFC 9110 semantics as pure functions: preconditions (§13), ranges (§14), content type and
//! cache policy of an object response.
//!
//! Nothing here does I/O, so every rule is unit-tested beside its code. Header syntax is parsed
//! by maintained crates (`headers` for validators and dates, `http-range-header` for `Range`);
//! what this module adds is the decision RFC 9110 asks of the server, in the order it asks it.

use std::time::SystemTime;

use headers::{ETag, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfRange, IfUnmodifiedSince, LastModified};
use http::{HeaderMap, Method, header};
use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};

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
    if !headers.contains_key(header::IF_RANGE) {
        return true;
    }
    match headers.typed_get::<IfRange>() {
        Some(if_range) => !if_range.is_modified(
            parse_etag(etag).as_ref(),
            last_modified.map(LastModified::from).as_ref(),
        ),
        // An If-Range that does not parse cannot be satisfied: send the whole object.
        None => false,
    }
}

/// How to answer a `Range` header for an object of a known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// No range applies: 200 with the whole object. Also the answer to a malformed or
    /// non-`bytes` range (ignored, RFC 9110 §14.2) and to a request for several ranges: the
    /// gateway does not produce `multipart/byteranges` (browsers and media players ask for one
    /// range; a whole-object 200 is a correct answer to many).
    Full,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

impl RangeDecision {
    /// The `Range` value to send to S3 for this decision, if any.
    pub fn to_s3(self) -> Option<String> {
        match self {
            RangeDecision::Partial { start, end } => Some(format!("bytes={start}-{end}")),
            _ => None,
        }
    }
}

/// Resolves a `Range` header value against an object of `len` bytes (RFC 9110 §14.1.2).
pub fn resolve_range(value: Option<&str>, len: u64) -> RangeDecision {
    let Some(value) = value else { return RangeDecision::Full };
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(p) => p,
        // `bytes=-0`: a syntactically valid range that selects nothing.
        Err(RangeUnsatisfiableError::ZeroSuffix) => return RangeDecision::Unsatisfiable,
        Err(_) => return RangeDecision::Full,
    };
    let [range] = parsed.ranges.as_slice() else {
        return RangeDecision::Full;
    };
    match (range.start, range.end) {
        (StartPosition::Index(a), EndPosition::Index(b)) if a > b => RangeDecision::Full,
        (StartPosition::Index(a), _) if a >= len => RangeDecision::Unsatisfiable,
        (StartPosition::Index(a), EndPosition::Index(b)) => RangeDecision::Partial {
            start: a,
            end: b.min(len - 1),
        },
        (StartPosition::Index(a), EndPosition::LastByte) => RangeDecision::Partial { start: a, end: len - 1 },
        (StartPosition::FromLast(_), _) if len == 0 => RangeDecision::Unsatisfiable,
        // A suffix longer than the object selects all of it.
        (StartPosition::FromLast(n), _) => RangeDecision::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        },
    }
}

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
    fn ranges() {
        use RangeDecision::*;
        let cases: &[(Option<&str>, u64, RangeDecision)] = &[
            (None, 10, Full),
            (Some("bytes=0-4"), 10, Partial { start: 0, end: 4 }),
            (Some("bytes=5-"), 10, Partial { start: 5, end: 9 }),
            (Some("bytes=-3"), 10, Partial { start: 7, end: 9 }),
            (Some("bytes=-30"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=5-100"), 10, Partial { start: 5, end: 9 }),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            (Some("bytes=5-3"), 10, Full),
            (Some("bytes=abc"), 10, Full),
            (Some("items=0-4"), 10, Full),
            (Some("bytes=0-1,4-5"), 10, Full),
            (Some(""), 10, Full),
        ];
        for (value, len, want) in cases {
            assert_eq!(resolve_range(*value, *len), *want, "{value:?} len {len}");
        }
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
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Some("image/gif"), "x.bin"), "image/gif");
        assert_eq!(content_type(Some("binary/octet-stream"), "a.json"), "application/json");
        assert_eq!(content_type(None, "a.gif"), "image/gif");
        assert_eq!(content_type(Some(""), "page.html"), "text/html");
        assert_eq!(content_type(None, "noext"), "application/octet-stream");
    }

    proptest::proptest! {
        /// Any Range value and length: no panic, and a partial range always lies inside the object.
        #[test]
        fn range_is_always_inside(value in "(bytes|items)=[-0-9, ]{0,20}", len in 0u64..10_000) {
            match resolve_range(Some(&value), len) {
                RangeDecision::Partial { start, end } => {
                    proptest::prop_assert!(start <= end && end < len);
                }
                RangeDecision::Full | RangeDecision::Unsatisfiable => {}
            }
        }

        /// Single well-formed ranges resolve as RFC 9110 says.
        #[test]
        fn single_ranges(a in 0u64..200, b in 0u64..200, len in 1u64..150) {
            let got = resolve_range(Some(&format!("bytes={a}-{b}")), len);
            let want = if a > b { RangeDecision::Full }
                else if a >= len { RangeDecision::Unsatisfiable }
                else { RangeDecision::Partial { start: a, end: b.min(len - 1) } };
            proptest::prop_assert_eq!(got, want);
        }
    }
}
