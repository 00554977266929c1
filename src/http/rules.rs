//! Site rules: response headers and redirects by path, in the syntax of Netlify's and
//! Cloudflare Pages' `_headers` and `_redirects` files (which sites already have), or built
//! from the sites file's tables.
//!
//! ```text
//! # _headers: a path pattern, then its headers indented below it
//! /*
//!   X-Frame-Options: DENY
//!   ! X-Powered-By
//! /assets/*
//!   Cache-Control: public, max-age=31536000, immutable
//!
//! # _redirects: from, to, and a status (301 by default; 200 serves `to` in place)
//! /old/*            /new/:splat     301
//! /blog/:year/:slug /posts/:year-:slug
//! /app/*            /index.html     200
//! ```
//!
//! Patterns: literal segments, `:name` placeholders (one segment), and a final `*` (the rest,
//! `:splat` in the target). Rules apply in order; the first redirect that matches wins, every
//! header rule that matches adds its headers. A line that cannot be read is reported with its
//! number and skipped; the file's size and its number of rules are bounded.

use http::{HeaderName, HeaderValue};

/// Most rules of each kind a site has.
pub const MAX_RULES: usize = 2000;

/// Largest rule file read, in bytes; the rest is ignored and reported.
pub const MAX_FILE_BYTES: usize = 256 << 10;

/// A line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its number, from 1.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// One segment of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

/// A path pattern: `/a/:b/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    /// Ends in `*`: matches any rest, named `splat`.
    splat: bool,
}

impl Pattern {
    /// Parses a pattern; it must start with `/`.
    ///
    /// # Errors
    /// Why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("{text:?} does not start with /"));
        };
        let mut parts: Vec<&str> = rest.split('/').collect();
        let splat = parts.last() == Some(&"*");
        if splat {
            parts.pop();
        }
        let mut segments = Vec::new();
        for part in parts {
            if part.contains('*') {
                return Err(format!("{text:?}: `*` only as the last segment"));
            }
            segments.push(match part.strip_prefix(':') {
                Some(name) if !name.is_empty() => Segment::Placeholder(name.to_string()),
                _ => Segment::Literal(part.to_string()),
            });
        }
        Ok(Self { segments, splat })
    }

    /// The placeholders' values when `path` (without query) matches.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let mut values = Vec::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Placeholder(_) if part.is_empty() => return None,
                Segment::Placeholder(name) => values.push((name.clone(), part.to_string())),
            }
        }
        let remaining: Vec<&str> = parts.collect();
        if self.splat {
            values.push(("splat".to_string(), remaining.join("/")));
            Some(values)
        } else if remaining.is_empty() || remaining == [""] && self.segments.is_empty() {
            Some(values)
        } else {
            None
        }
    }
}

/// Headers set and removed on responses to paths a pattern matches.
#[derive(Clone, Debug)]
pub struct HeaderRule {
    /// Which paths.
    pub pattern: Pattern,
    /// Headers set (values of one name in one rule are joined with `, `).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<HeaderName>,
}

/// A redirect, or with status 200 a rewrite (another key served at this path).
#[derive(Clone, Debug)]
pub struct Redirect {
    /// Which paths.
    pub from: Pattern,
    /// Where to: a path with `:name` and `:splat`, or an absolute URL.
    pub to: String,
    /// 301, 302, 303, 307, 308, or 200 for a rewrite.
    pub status: u16,
    /// Whether the request's query string goes along.
    pub keep_query: bool,
}

impl Redirect {
    /// The target for `path` (and its `query`), if the rule matches.
    pub fn target(&self, path: &str, query: Option<&str>) -> Option<String> {
        let values = self.from.matches(path)?;
        let mut to = self.to.clone();
        // Longer names first, so `:splat` is not taken for `:s` + "plat".
        let mut values = values;
        values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for (name, value) in &values {
            to = to.replace(&format!(":{name}"), value);
        }
        // A path stays a path of this site: what a placeholder brought in cannot make it
        // `//host` or `/\\host`, which browsers take for another site.
        if to.starts_with('/') {
            let rest = to.trim_start_matches(['/', '\\']);
            to = format!("/{rest}");
        }
        match query {
            Some(q) if self.keep_query && !q.is_empty() && self.status != 200 => {
                let sep = if to.contains('?') { '&' } else { '?' };
                Some(format!("{to}{sep}{q}"))
            }
            _ => Some(to),
        }
    }
}

/// A site's rules.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Header rules, in order.
    pub headers: Vec<HeaderRule>,
    /// Redirects and rewrites, in order: the first that matches wins.
    pub redirects: Vec<Redirect>,
}

impl Rules {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.redirects.is_empty()
    }

    /// The first redirect that matches `path`, with its target.
    pub fn redirect(&self, path: &str, query: Option<&str>) -> Option<(&Redirect, String)> {
        self.redirects
            .iter()
            .find_map(|r| r.target(path, query).map(|to| (r, to)))
    }

    /// Applies every header rule that matches `path` to `headers`.
    pub fn apply_headers(&self, path: &str, headers: &mut http::HeaderMap) {
        for rule in &self.headers {
            if rule.pattern.matches(path).is_none() {
                continue;
            }
            for name in &rule.remove {
                headers.remove(name);
            }
            for (name, value) in &rule.set {
                headers.insert(name.clone(), value.clone());
            }
        }
    }

    /// Appends `other`'s rules after these.
    pub fn extend(&mut self, other: Rules) {
        self.headers.extend(other.headers);
        self.redirects.extend(other.redirects);
    }
}

/// The rules parsed from a site's rule files, kept for as long as the files do not change.
#[derive(Debug, Default)]
pub struct RulesMemo(std::sync::Mutex<Option<(String, std::sync::Arc<Rules>)>>);

impl RulesMemo {
    /// The rules parsed last, if any.
    pub fn last(&self) -> Option<std::sync::Arc<Rules>> {
        let held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.as_ref().map(|(_, rules)| rules.clone())
    }

    /// The rules for files at `version` (their validators); `parse` runs only when it changed.
    pub fn get(&self, version: &str, parse: impl FnOnce() -> Rules) -> std::sync::Arc<Rules> {
        let mut held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*held {
            Some((v, rules)) if v == version => rules.clone(),
            _ => {
                let rules = std::sync::Arc::new(parse());
                *held = Some((version.to_string(), rules.clone()));
                rules
            }
        }
    }
}

/// The text a file may be read as: its first [`MAX_FILE_BYTES`], cut at a line's end.
fn bounded(text: &str, skipped: &mut Vec<Skipped>) -> String {
    if text.len() <= MAX_FILE_BYTES {
        return text.to_string();
    }
    let cut = text[..MAX_FILE_BYTES].rfind('\n').unwrap_or(0);
    let line = text[..cut].lines().count() + 1;
    skipped.push(Skipped {
        line,
        reason: format!("the file is over {MAX_FILE_BYTES} bytes: the rest is ignored"),
    });
    text[..cut].to_string()
}

/// Reads a `_headers` file.
pub fn parse_headers(text: &str) -> (Vec<HeaderRule>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let text = bounded(text, &mut skipped);
    let mut rules: Vec<HeaderRule> = Vec::new();
    // Whether lines below belong to the last rule (false after a bad pattern line).
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut skip = |reason: String| skipped.push(Skipped { line, reason });
        if !raw.starts_with([' ', '\t']) {
            open = false;
            if rules.len() == MAX_RULES {
                skip(format!("more than {MAX_RULES} rules"));
                continue;
            }
            match Pattern::parse(trimmed) {
                Ok(pattern) => {
                    rules.push(HeaderRule {
                        pattern,
                        set: Vec::new(),
                        remove: Vec::new(),
                    });
                    open = true;
                }
                Err(e) => skip(format!("not a path pattern: {e}")),
            }
            continue;
        }
        let Some(rule) = rules.last_mut().filter(|_| open) else {
            skip("a header line with no path above it".into());
            continue;
        };
        if let Some(name) = trimmed.strip_prefix('!') {
            match HeaderName::from_bytes(name.trim().as_bytes()) {
                Ok(name) => rule.remove.push(name),
                Err(_) => skip(format!("{:?} is not a header name", name.trim())),
            }
            continue;
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            skip("not `Name: value`".into());
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            skip(format!("{:?} is not a header", trimmed));
            continue;
        };
        match rule.set.iter_mut().find(|(n, _)| *n == name) {
            // Netlify joins the values of a name given twice.
            Some((_, existing)) => {
                let joined = format!("{}, {}", existing.to_str().unwrap_or(""), value.to_str().unwrap_or(""));
                if let Ok(v) = HeaderValue::from_str(&joined) {
                    *existing = v;
                }
            }
            None => rule.set.push((name, value)),
        }
    }
    (rules, skipped)
}

/// Reads a `_redirects` file.
pub fn parse_redirects(text: &str) -> (Vec<Redirect>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let text = bounded(text, &mut skipped);
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.split('#').next().unwrap_or("").trim();
        if trimmed.is_empty() {
            continue;
        }
        if rules.len() == MAX_RULES {
            skipped.push(Skipped {
                line,
                reason: format!("more than {MAX_RULES} rules"),
            });
            continue;
        }
        match redirect_line(trimmed) {
            Ok(rule) => rules.push(rule),
            Err(reason) => skipped.push(Skipped { line, reason }),
        }
    }
    (rules, skipped)
}

/// One `_redirects` line: `from to [status][!]`.
fn redirect_line(line: &str) -> Result<Redirect, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (from, to) = match fields.as_slice() {
        [from, to, ..] => (*from, *to),
        _ => return Err("needs a path and a target".into()),
    };
    let status = match fields.get(2) {
        None => 301,
        Some(s) => {
            // `!` (Netlify's "force") is what every rule here does: rules come before objects.
            let code = s.trim_end_matches('!');
            code.parse::<u16>().map_err(|_| {
                format!("{s:?} is not a status (conditions such as query or country matches are not supported)")
            })?
        }
    };
    if fields.len() > 3 {
        return Err("conditions (query, country, language, role) are not supported".into());
    }
    redirect(from, to, status, true)
}

/// A redirect rule, checked.
///
/// # Errors
/// Why it cannot be one.
pub fn redirect(from: &str, to: &str, status: u16, keep_query: bool) -> Result<Redirect, String> {
    if !matches!(status, 200 | 301 | 302 | 303 | 307 | 308) {
        return Err(format!(
            "status {status}: give 301, 302, 303, 307, 308, or 200 for a rewrite"
        ));
    }
    let from = Pattern::parse(from)?;
    let absolute = to.starts_with("https://") || to.starts_with("http://");
    if !to.starts_with('/') && !absolute {
        return Err(format!("{to:?}: the target is a path or an http(s) URL"));
    }
    if status == 200 && absolute {
        return Err(format!("{to:?}: a rewrite (200) serves a path of this site, not a URL"));
    }
    if HeaderValue::from_str(to).is_err() {
        return Err(format!("{to:?} cannot be a Location"));
    }
    Ok(Redirect {
        from,
        to: to.to_string(),
        status,
        keep_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_placeholders_and_splats() {
        let p = Pattern::parse("/blog/:year/:slug").unwrap();
        assert_eq!(
            p.matches("/blog/2024/hello"),
            Some(vec![("year".into(), "2024".into()), ("slug".into(), "hello".into())])
        );
        assert_eq!(p.matches("/blog/2024"), None);
        assert_eq!(p.matches("/blog/2024/hello/more"), None);
        let s = Pattern::parse("/assets/*").unwrap();
        assert_eq!(
            s.matches("/assets/a/b.js"),
            Some(vec![("splat".into(), "a/b.js".into())])
        );
        assert_eq!(s.matches("/assets/"), Some(vec![("splat".into(), String::new())]));
        assert_eq!(s.matches("/other/a.js"), None);
        let all = Pattern::parse("/*").unwrap();
        assert!(all.matches("/").is_some() && all.matches("/x/y").is_some());
        assert!(Pattern::parse("/").unwrap().matches("/").is_some());
        assert!(Pattern::parse("/a*/b").is_err());
        assert!(Pattern::parse("relative").is_err());
    }

    #[test]
    fn headers_file_in_netlify_syntax() {
        let text = "# security\n/*\n  X-Frame-Options: DENY\n  Link: </a.css>; rel=preload\n  Link: </b.js>; rel=preload\n  ! X-Powered-By\n\n/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n";
        let (rules, skipped) = parse_headers(text);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].set[1].1, "</a.css>; rel=preload, </b.js>; rel=preload");
        assert_eq!(rules[0].remove, vec![HeaderName::from_static("x-powered-by")]);
        let r = Rules {
            headers: rules,
            redirects: Vec::new(),
        };
        let mut h = http::HeaderMap::new();
        h.insert("x-powered-by", HeaderValue::from_static("x"));
        r.apply_headers("/assets/app.js", &mut h);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert!(!h.contains_key("x-powered-by"));
    }

    #[test]
    fn bad_header_lines_are_reported_and_skipped() {
        let text = "  X-Orphan: 1\nnot-a-path\n  X-Under-Bad: 1\n/ok\n  no colon here\n  Bad Name: x\n  X-Good: yes\n";
        let (rules, skipped) = parse_headers(text);
        let lines: Vec<usize> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 5, 6]);
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].set,
            vec![(HeaderName::from_static("x-good"), HeaderValue::from_static("yes"))]
        );
    }

    #[test]
    fn redirects_file_in_netlify_syntax() {
        let text = "/old/*  /new/:splat  301\n/blog/:year/:slug /posts/:year-:slug\n/app/*  /index.html  200\n/go https://example.com/x 302!\n/q  /r  302  Country=us\n/bad\n/s /t 404\n";
        let (rules, skipped) = parse_redirects(text);
        assert_eq!(rules.len(), 4);
        assert_eq!(skipped.iter().map(|s| s.line).collect::<Vec<_>>(), vec![5, 6, 7]);
        let r = Rules {
            headers: Vec::new(),
            redirects: rules,
        };
        let (rule, to) = r.redirect("/old/a/b.html", Some("x=1")).unwrap();
        assert_eq!((rule.status, to.as_str()), (301, "/new/a/b.html?x=1"));
        let (rule, to) = r.redirect("/blog/2024/hi", None).unwrap();
        assert_eq!((rule.status, to.as_str()), (301, "/posts/2024-hi"));
        let (rule, to) = r.redirect("/app/settings", Some("tab=2")).unwrap();
        assert_eq!((rule.status, to.as_str()), (200, "/index.html"));
        assert_eq!(r.redirect("/go", None).unwrap().1, "https://example.com/x");
        assert!(r.redirect("/elsewhere", None).is_none());
        // A splat cannot turn a path into another host.
        let (open, _) = parse_redirects("/out/* /:splat 302\n");
        let r = Rules {
            headers: Vec::new(),
            redirects: open,
        };
        assert_eq!(r.redirect("/out//evil.example/x", None).unwrap().1, "/evil.example/x");
        assert_eq!(r.redirect("/out/\\evil.example", None).unwrap().1, "/evil.example");
    }

    #[test]
    fn files_and_rule_counts_are_bounded() {
        let many: String = (0..MAX_RULES + 5).map(|i| format!("/a{i} /b{i}\n")).collect();
        let (rules, skipped) = parse_redirects(&many);
        assert_eq!(rules.len(), MAX_RULES);
        assert_eq!(skipped.len(), 5);
        let huge = "/x /y\n".repeat(MAX_FILE_BYTES / 6 + 100);
        let (_, skipped) = parse_redirects(&huge);
        assert!(skipped.iter().any(|s| s.reason.contains("over")), "{skipped:?}");
    }
}
