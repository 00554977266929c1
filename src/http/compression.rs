//! Content codings for text assets: which objects are worth compressing, which coding a
//! request accepts (`Accept-Encoding`, RFC 9110 §12.5.3), and the compression itself.
//!
//! A whole site (HTML, JavaScript, CSS, JSON, SVG, fonts) shrinks three- to tenfold with
//! `br`, `zstd` or `gzip`. The gateway compresses an object once per version and coding, when
//! it is in the cache, and keeps the result there beside it (the cache counts it in the
//! byte budget), so a hit costs no compression. Objects that stream (cache off, too large, the
//! first request of a fill) go as stored, as do `Range` requests and objects that already carry
//! a `Content-Encoding`.

use std::io::Write;

use http::{HeaderMap, header};

use crate::meta::ObjectMeta;
use crate::metrics::Metrics;

/// A content coding the gateway produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Brotli (RFC 7932).
    Br,
    /// Zstandard (RFC 8878).
    Zstd,
    /// gzip (RFC 1952).
    Gzip,
}

impl Encoding {
    /// Every coding, in the default order of preference.
    pub const ALL: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// The coding a token names (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(token: &str) -> Option<Self> {
        let t = token.trim();
        [
            ("br", Encoding::Br),
            ("zstd", Encoding::Zstd),
            ("gzip", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
        ]
        .into_iter()
        .find(|(name, _)| t.eq_ignore_ascii_case(name))
        .map(|(_, e)| e)
    }

    /// The file extension of a precompressed sibling in this coding (`.br`, `.zst`, `.gz`).
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
        }
    }

    /// `bytes` compressed with this coding. Levels favour ratio over speed, since each object
    /// version is compressed once and served many times: Brotli 5, zstd 9, gzip 6.
    pub fn compress(self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
        match self {
            Encoding::Br => {
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 5,
                    ..Default::default()
                };
                let mut input = bytes;
                brotli::BrotliCompress(&mut input, &mut out, &params).ok()?;
            }
            Encoding::Zstd => out = zstd::bulk::compress(bytes, 9).ok()?,
            Encoding::Gzip => {
                let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
                w.write_all(bytes).ok()?;
                out = w.finish().ok()?;
            }
        }
        // Every coding frames even an empty input: nothing at all is a failure, never a body.
        (!out.is_empty()).then_some(out)
    }
}

/// Compression settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressionConfig {
    /// Codings offered, in the server's order of preference; empty turns compression off.
    pub encodings: Vec<Encoding>,
    /// Smaller objects go as stored (the framing costs more than it saves).
    pub min_bytes: u64,
    /// Whether a precompressed sibling (`app.js.br`, `app.js.zst`, `app.js.gz`) is sent in
    /// place of the gateway's own compression when the bucket holds one.
    pub static_siblings: bool,
}

impl CompressionConfig {
    /// Whether responses for `meta` (the object at `key`) depend on `Accept-Encoding`: a
    /// compressible type, no stored coding, large enough.
    pub fn eligible(&self, key: &str, meta: &ObjectMeta) -> bool {
        !self.encodings.is_empty()
            && meta.stored.content_encoding.is_none()
            && meta.content_length.is_some_and(|n| n >= self.min_bytes)
            && match meta.content_type.as_deref() {
                // The stored type, when it says something (no allocation on the hot path).
                Some(ct) if !crate::http::content_type::is_generic(ct) => compressible(ct),
                _ => compressible(&crate::http::content_type::content_type(None, key)),
            }
    }

    /// The coding to send for a request with `headers`, among those offered; `None` for the
    /// object as stored.
    pub fn negotiate(&self, headers: &HeaderMap) -> Option<Encoding> {
        negotiate(headers, &self.encodings)
    }
}

/// Whether a media type compresses well: text, scripts, JSON and XML (including `+json` and
/// `+xml` types such as SVG), WebAssembly, and uncompressed font formats. Images, audio,
/// video, archives and WOFF fonts are compressed already.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/json"
                | "application/ld+json"
                | "application/xml"
                | "application/wasm"
                | "application/x-font-ttf"
                | "application/vnd.ms-fontobject"
                | "font/ttf"
                | "font/otf"
                | "font/collection"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
        )
}

/// The coding for a request: among `offered` (server preference order), the one with the
/// highest q-value in `Accept-Encoding`, ties going to the server's order; `None` (as stored)
/// when there is no header, or nothing offered is acceptable.
///
/// A coding the client rated below an explicit `identity` (or `*`) loses to the stored form;
/// `identity;q=0` refuses the stored form, so any acceptable coding wins. When nothing offered
/// is acceptable, the object goes as stored, which RFC 9110 §12.5.3 allows in place of 406.
pub fn negotiate(headers: &HeaderMap, offered: &[Encoding]) -> Option<Encoding> {
    let mut any = false;
    let mut star: Option<f32> = None;
    let mut identity: Option<f32> = None;
    let mut rated: Vec<(Encoding, f32)> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            any = true;
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0);
            if token == "*" {
                star = Some(q);
            } else if token.eq_ignore_ascii_case("identity") {
                identity = Some(q);
            } else if let Some(e) = Encoding::from_token(token) {
                rated.push((e, q));
            }
        }
    }
    if !any {
        return None;
    }
    let q_of = |e: Encoding| {
        rated
            .iter()
            .filter(|(r, _)| *r == e)
            .map(|(_, q)| *q)
            .fold(None, |acc: Option<f32>, q| Some(acc.map_or(q, |a| a.max(q))))
            .or(star)
            .unwrap_or(0.0)
    };
    // Identity is acceptable unless refused; only an explicit rating competes with a coding.
    let identity_q = identity.or(star).unwrap_or(0.0);
    let mut best: Option<(Encoding, f32)> = None;
    for &e in offered {
        let q = q_of(e);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((e, q));
        }
    }
    // A coding rated below an explicitly rated identity loses to it.
    best.filter(|&(_, q)| q >= identity_q).map(|(e, _)| e)
}

/// Starts the series of the codings at zero, so that rate() and dashboards see them before
/// the first compression; the cache calls it when it is made (only cached objects are
/// compressed).
pub fn start_series(metrics: &Metrics) {
    for encoding in Encoding::ALL {
        metrics.compressed_responses.with_label_values(&[encoding.token()]);
        for outcome in ["compressed", "no_gain"] {
            metrics.compressions.with_label_values(&[encoding.token(), outcome]);
        }
    }
}

/// The entity tag of a coded representation: the stored tag with the coding appended inside
/// the quotes (`"abc"` → `"abc-br"`), so that each representation validates on its own
/// (RFC 9110 §8.8.3.3).
pub fn variant_etag(etag: &str, encoding: Encoding) -> String {
    match etag.strip_suffix('"') {
        Some(head) => format!("{head}-{}\"", encoding.token()),
        None => format!("{etag}-{}", encoding.token()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    fn pick(v: &str) -> Option<&'static str> {
        negotiate(&accept(v), &Encoding::ALL).map(Encoding::token)
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new(), &Encoding::ALL), None);
        assert_eq!(pick("gzip, deflate, br, zstd"), Some("br"));
        assert_eq!(pick("gzip, deflate"), Some("gzip"));
        assert_eq!(pick("x-gzip"), Some("gzip"));
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Some("gzip"));
        assert_eq!(pick("br;q=0, gzip"), Some("gzip"));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("*"), Some("br"));
        assert_eq!(pick("*;q=0.5, br;q=0"), Some("zstd"));
        assert_eq!(pick("deflate"), None);
        // Rated below identity: identity wins, unless identity is refused.
        assert_eq!(pick("gzip;q=0.2, identity"), None);
        assert_eq!(pick("gzip;q=0.2, identity;q=0"), Some("gzip"));
        assert_eq!(pick("gzip;q=0.2, *;q=0"), Some("gzip"));
        assert_eq!(pick("gzip;q=0.2, *;q=0.5"), Some("br"));
        assert_eq!(pick("gzip;q=0.2, identity;q=0.5"), None);
        // Nothing acceptable at all: as stored.
        assert_eq!(pick("identity;q=0"), None);
        // Malformed q-values count as 0; case does not matter.
        assert_eq!(pick("br;q=abc, GZIP"), Some("gzip"));
        assert_eq!(pick("br;q=2, gzip"), Some("gzip"));
        assert_eq!(negotiate(&accept("br, gzip"), &[Encoding::Gzip]), Some(Encoding::Gzip));
        assert_eq!(negotiate(&accept("br"), &[]), None);
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "application/javascript",
            "application/json",
            "image/svg+xml",
            "application/manifest+json",
            "application/wasm",
            "font/ttf",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in [
            "image/gif",
            "image/png",
            "font/woff2",
            "application/zip",
            "video/mp4",
            "application/octet-stream",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }

    #[test]
    fn each_coding_round_trips() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i} of the page\n").into_bytes())
            .collect();
        for e in Encoding::ALL {
            let c = e.compress(&text).unwrap();
            assert!(c.len() * 5 < text.len(), "{e:?} {}", c.len());
            let mut back = Vec::new();
            match e {
                Encoding::Br => {
                    brotli::Decompressor::new(&c[..], 4096).read_to_end(&mut back).unwrap();
                }
                Encoding::Zstd => back = zstd::stream::decode_all(&c[..]).unwrap(),
                Encoding::Gzip => {
                    flate2::read::GzDecoder::new(&c[..]).read_to_end(&mut back).unwrap();
                }
            }
            assert_eq!(back, text, "{e:?}");
        }
    }

    #[test]
    fn variant_etags() {
        assert_eq!(variant_etag("\"abc\"", Encoding::Br), "\"abc-br\"");
        assert_eq!(variant_etag("W/\"abc\"", Encoding::Gzip), "W/\"abc-gzip\"");
        assert_eq!(variant_etag("abc", Encoding::Zstd), "abc-zstd");
    }
}
