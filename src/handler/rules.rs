//! The rules a request is answered under: its site's own (the sites file's tables) and, with
//! `--site-rules bucket`, the `_headers` and `_redirects` files at the site's root in the
//! bucket, read through the cache (so a deploy that replaces them takes effect as fast as any
//! object change: a change event, a purge, or the TTL) and parsed once per version.
//!
//! A line that cannot be read is logged with its file and number and skipped; while the
//! bucket cannot be read, the rules last read stay in force.

use std::sync::Arc;

use http_body_util::BodyExt;

use crate::cache::Lookup;
use crate::config::app::App;
use crate::config::sites::Hosted;
use crate::http::rules::{MAX_FILE_BYTES, Rules, Skipped, parse_headers, parse_redirects};

/// The rule files, at the site's root.
pub const FILES: [&str; 2] = ["_headers", "_redirects"];

/// The rules for a request to `site`.
pub async fn for_site(app: &App, site: &Hosted) -> Arc<Rules> {
    let own = site.site.rules.clone();
    if !site.site.bucket_rules {
        return own;
    }
    let Some(cache) = &app.cache else { return own };
    let mut texts = Vec::with_capacity(FILES.len());
    for name in FILES {
        match read(cache, site, name).await {
            Ok(file) => texts.push(file),
            Err(e) => {
                tracing::warn!(site = %site.name, file = name, error = %e, "cannot read the site's rule file: keeping the rules last read");
                return site.bucket_rules.last().unwrap_or(own);
            }
        }
    }
    let version = texts
        .iter()
        .map(|f| f.as_ref().map_or("-", |(etag, _)| etag.as_str()))
        .collect::<Vec<_>>()
        .join("|");
    site.bucket_rules.get(&version, || {
        let mut rules = (*own).clone();
        let (headers, redirects) = (&texts[0], &texts[1]);
        if let Some((_, text)) = headers {
            let (parsed, skipped) = parse_headers(text);
            report(site, FILES[0], &skipped);
            rules.headers.extend(parsed);
        }
        if let Some((_, text)) = redirects {
            let (parsed, skipped) = parse_redirects(text);
            report(site, FILES[1], &skipped);
            rules.redirects.extend(parsed);
        }
        tracing::info!(
            site = %site.name,
            headers = rules.headers.len(),
            redirects = rules.redirects.len(),
            "site rules read from the bucket"
        );
        rules
    })
}

/// Whether `key` (relative to the site's prefix) is one of the rule files, never served.
pub fn is_rule_file(site: &Hosted, relative: &str) -> bool {
    site.site.bucket_rules && FILES.contains(&relative)
}

fn report(site: &Hosted, file: &str, skipped: &[Skipped]) {
    for s in skipped {
        tracing::warn!(site = %site.name, file, line = s.line, reason = %s.reason, "site rule skipped");
    }
}

/// A rule file's validator and text, `None` when it does not exist (or is not text).
async fn read(
    cache: &Arc<crate::cache::ObjectCache>,
    site: &Hosted,
    name: &str,
) -> Result<Option<(String, String)>, crate::error::StorageError> {
    let key = site.site.key(name);
    let (meta, bytes) = match cache.lookup_internal(&site.storage, &key).await? {
        Lookup::Object(obj, _) => (obj.meta.clone(), obj.body.clone()),
        Lookup::Filling(meta, body, _) => {
            let limited = http_body_util::Limited::new(body, MAX_FILE_BYTES + 1);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| crate::error::StorageError::BadResponse(format!("reading {name}: {e}")))?
                .to_bytes();
            ((*meta).clone(), bytes)
        }
        Lookup::Missing(_) => return Ok(None),
        // Larger than the cache takes, or `no-store`: not read on every request.
        Lookup::Bypass => {
            tracing::warn!(site = %site.name, file = name, "site rule file not cacheable (too large, or no-store): ignored");
            return Ok(None);
        }
    };
    let version = meta
        .etag
        .clone()
        .unwrap_or_else(|| format!("{:?}/{}", meta.last_modified, bytes.len()));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Some((version, text)))
}
