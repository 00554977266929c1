//! Byte ranges (RFC 9110 §14): one `Range` header resolved against an object's length.
//!
//! Pure functions, unit- and property-tested beside their code; the syntax is parsed by
//! `http-range-header`.

use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};

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

#[cfg(test)]
mod tests {
    use super::*;

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
