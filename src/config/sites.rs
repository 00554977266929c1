//! Several sites by `Host`: a sites file maps host names to a bucket and prefix, each with its
//! own documents, CORS and Cache-Control; `serve`'s flags stay for the one-site case and are
//! the defaults of every site in the file.
//!
//! ```toml
//! # Hosts no site names get this site; without it they get 404.
//! default_site = "www"
//!
//! [[sites]]
//! name = "www"                      # the `site` label of the metrics
//! hosts = ["example.com", "www.example.com"]
//! prefix = "www/"                   # in --bucket, unless `bucket` is set
//! spa_fallback = "index.html"
//!
//! [[sites]]
//! name = "docs"
//! hosts = ["*.docs.example.com"]   # any subdomain, at any depth
//! bucket = "docs"
//! error_document = "404.html"
//! cors_origins = ["https://example.com"]
//!
//! [[sites.headers]]                 # headers by path ([`crate::http::rules`])
//! for = "/assets/*"
//! set = { "Cache-Control" = "public, max-age=31536000, immutable" }
//! remove = ["X-Powered-By"]
//!
//! [[sites.redirects]]               # the first that matches wins; 200 serves `to` in place
//! from = "/guide/*"
//! to = "/docs/:splat"
//! status = 301
//! ```
//!
//! The file is read and checked once, before anything binds; a mistake names the site and the
//! field. Host names are matched without port and case, exact names first, then the longest
//! wildcard.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::backend::storage::Storage;
use crate::cli::ServeArgs;
use crate::error::ConfigError;

/// The flag of the sites file, named in its errors.
const FLAG: &str = "--sites";

/// One `[[sites]]` table as written; a field left out takes `serve`'s flag.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// Name: the `site` label of the metrics and the `site` of `/purge`.
    pub name: String,
    /// Host names (`example.com`, `*.example.com`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Bucket; default `--bucket`.
    pub bucket: Option<String>,
    /// `--prefix`.
    pub prefix: Option<String>,
    /// `--index`.
    pub index: Option<String>,
    /// `--error-document`.
    pub error_document: Option<String>,
    /// `--spa-fallback`.
    pub spa_fallback: Option<String>,
    /// `--cache-control`.
    pub cache_control: Option<String>,
    /// `--error-cache-control`.
    pub error_cache_control: Option<String>,
    /// `--list-directories`.
    pub list_directories: Option<bool>,
    /// `--cors-origin`.
    pub cors_origins: Option<Vec<String>>,
    /// `--site-rules`.
    pub site_rules: Option<crate::cli::SiteRules>,
    /// `[[sites.headers]]`: headers set or removed by path pattern, in order.
    #[serde(default)]
    pub headers: Vec<HeaderSpec>,
    /// `[[sites.redirects]]`: redirects and rewrites by path pattern; the first match wins.
    #[serde(default)]
    pub redirects: Vec<RedirectSpec>,
    /// `[[sites.protect]]`: paths behind HTTP Basic authentication.
    #[serde(default)]
    pub protect: Vec<ProtectSpec>,
}

/// One `[[sites.protect]]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectSpec {
    /// The path pattern.
    #[serde(rename = "for")]
    pub pattern: String,
    /// An htpasswd file of bcrypt hashes (`htpasswd -B`), e.g. mounted from a Secret.
    pub htpasswd: std::path::PathBuf,
    /// The realm the browser shows; default the site's name.
    pub realm: Option<String>,
}

/// Paths behind a password.
#[derive(Clone, Debug)]
pub struct Protected {
    /// Which paths.
    pub pattern: crate::http::rules::Pattern,
    /// `WWW-Authenticate` of a refusal.
    pub challenge: http::HeaderValue,
    /// Who may pass.
    pub users: Arc<crate::http::basic_auth::Htpasswd>,
}

/// One `[[sites.headers]]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSpec {
    /// The path pattern: `/assets/*`, `/blog/:slug`.
    #[serde(rename = "for")]
    pub pattern: String,
    /// Headers set, by name.
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Headers removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// One `[[sites.redirects]]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectSpec {
    /// The path pattern.
    pub from: String,
    /// The target: a path (with `:name`, `:splat`) or an http(s) URL.
    pub to: String,
    /// 301 (the default), 302, 303, 307, 308, or 200 to serve `to` in place.
    pub status: Option<u16>,
    /// Whether the request's query string goes along (default true).
    pub keep_query: Option<bool>,
}

/// The sites file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    default_site: Option<String>,
    #[serde(default)]
    sites: Vec<SiteSpec>,
}

/// One site, validated: where its objects are and how they are served.
#[derive(Clone, Debug)]
pub struct SiteConfig {
    /// Its name.
    pub name: String,
    /// Its host names, lowercase (`*.` for wildcards); empty for the one-site case.
    pub hosts: Vec<String>,
    /// Its bucket.
    pub bucket: String,
    /// Its presentation.
    pub site: Site,
}

/// Every site, validated, and which one answers hosts no site names.
#[derive(Clone, Debug)]
pub struct SitesConfig {
    /// The sites, in the file's order.
    pub sites: Vec<SiteConfig>,
    /// Index of the site for unknown hosts; `None`: they get 404.
    pub default: Option<usize>,
}

impl SitesConfig {
    /// One site, named `default`, for every host: the flags alone.
    pub fn single(bucket: &str, site: Site) -> Self {
        Self {
            sites: vec![SiteConfig {
                name: "default".into(),
                hosts: Vec::new(),
                bucket: bucket.to_string(),
                site,
            }],
            default: Some(0),
        }
    }

    /// The sites of `--sites`, or the one site of the flags.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag, or for the file the site and field at fault.
    pub fn from_args(args: &ServeArgs, bucket: &str) -> Result<Self, ConfigError> {
        let Some(path) = &args.sites else {
            return Ok(Self::single(bucket, Site::from_args(args)?));
        };
        Self::from_file(path, args, bucket)
    }

    fn from_file(path: &Path, args: &ServeArgs, bucket: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(FLAG, format!("cannot read {}: {e}", path.display())))?;
        let file: SitesFile = toml::from_str(&text).map_err(|e| {
            let (line, site) = e.span().map_or((None, None), |span| place(&text, span.start));
            let mut at = path.display().to_string();
            if let Some(line) = line {
                at.push_str(&format!(" line {line}"));
            }
            if let Some(site) = site {
                at.push_str(&format!(", site {site:?}"));
            }
            ConfigError::new(FLAG, format!("{at}: {}", e.message()))
        })?;
        if file.sites.is_empty() {
            return Err(ConfigError::new(FLAG, format!("{} names no [[sites]]", path.display())));
        }
        let mut sites = Vec::new();
        let mut seen_hosts: HashMap<String, String> = HashMap::new();
        for spec in &file.sites {
            let name = spec.name.trim();
            let fail = |msg: String| ConfigError::new(FLAG, format!("site {name:?}: {msg}"));
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail("name must be 1-64 letters, digits, '-' or '_'".into()));
            }
            if sites.iter().any(|s: &SiteConfig| s.name == name) {
                return Err(fail("is named twice".into()));
            }
            let mut hosts = Vec::new();
            for host in &spec.hosts {
                let host = normalize(host).ok_or_else(|| fail(format!("hosts: {host:?} is not a host name")))?;
                if let Some(other) = seen_hosts.insert(host.clone(), name.to_string()) {
                    return Err(fail(format!("hosts: {host:?} is also a host of site {other:?}")));
                }
                hosts.push(host);
            }
            if hosts.is_empty() && file.default_site.as_deref() != Some(name) {
                return Err(fail(
                    "hosts: name at least one host (or make it the default_site)".into(),
                ));
            }
            let bucket = match &spec.bucket {
                Some(b) => {
                    crate::backend::settings::validate_bucket(b).map_err(|e| fail(format!("bucket: {}", e.message)))?;
                    b.clone()
                }
                None => bucket.to_string(),
            };
            let site = Site::from_spec(spec, args).map_err(|e| {
                // The field, as the file names it (`--error-document` is `error_document`).
                let field = match e.flag {
                    "--cors-origin" => "cors_origins".to_string(),
                    flag => flag.trim_start_matches('-').replace('-', "_"),
                };
                fail(format!("{field}: {}", e.message))
            })?;
            sites.push(SiteConfig {
                name: name.to_string(),
                hosts,
                bucket,
                site,
            });
        }
        let default = match &file.default_site {
            None => None,
            Some(d) => Some(
                sites
                    .iter()
                    .position(|s| s.name == *d)
                    .ok_or_else(|| ConfigError::new(FLAG, format!("default_site {d:?} is not the name of a site")))?,
            ),
        };
        Ok(Self { sites, default })
    }
}

/// How paths map to objects and what a response looks like.
#[derive(Clone, Debug)]
pub struct Site {
    /// Key prefix everything is served from: empty, or ending in `/`.
    pub prefix: String,
    /// Index document name for `/` and `.../`.
    pub index: String,
    /// Key (under the prefix) served with 404 for missing paths.
    pub error_document: Option<String>,
    /// Key (under the prefix) served with 200 for missing paths.
    pub spa_fallback: Option<String>,
    /// Cache-Control for objects without their own.
    pub cache_control: http::HeaderValue,
    /// Cache-Control of not-found answers (error document, plain 404).
    pub error_cache_control: http::HeaderValue,
    /// Render listings for directories without an index.
    pub list_directories: bool,
    /// Cross-origin policy; `None` when CORS is off.
    pub cors: Option<crate::http::cors::Cors>,
    /// Headers and redirects by path, from the sites file.
    pub rules: Arc<crate::http::rules::Rules>,
    /// Whether `_headers` and `_redirects` in the bucket add to them.
    pub bucket_rules: bool,
    /// Paths behind a password, in order: the first that matches applies.
    pub protect: Vec<Protected>,
}

impl Site {
    /// Validates the site flags of `serve`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut protect = Vec::new();
        for rule in &args.protect {
            let fields: Vec<&str> = rule.split_whitespace().collect();
            let (pattern, file, realm) = match fields.as_slice() {
                [p, f] => (*p, *f, None),
                [p, f, realm @ ..] => (*p, *f, Some(realm.join(" "))),
                _ => {
                    return Err(ConfigError::new(
                        "--protect",
                        format!("{rule:?}: give PATTERN HTPASSWD [REALM]"),
                    ));
                }
            };
            protect.push(ProtectSpec {
                pattern: pattern.to_string(),
                htpasswd: file.into(),
                realm,
            });
        }
        let spec = SiteSpec {
            name: "default".into(),
            protect,
            ..SiteSpec::default()
        };
        let mut site = Self::from_spec(&spec, args)?;
        site.rules = Arc::new(flag_rules(args)?);
        Ok(site)
    }

    /// Validates one site of the sites file: its own fields, else the flags of `serve`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag of the field at fault.
    pub fn from_spec(spec: &SiteSpec, args: &ServeArgs) -> Result<Self, ConfigError> {
        let index = spec
            .index
            .as_deref()
            .unwrap_or(&args.index)
            .trim_matches('/')
            .to_string();
        if index.is_empty() || index.split('/').any(|s| s == "." || s == "..") {
            return Err(ConfigError::new("--index", "must be an object name such as index.html"));
        }
        let prefix = spec.prefix.as_deref().unwrap_or(&args.prefix).trim_start_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains('\0') {
            return Err(ConfigError::new(
                "--prefix",
                format!("{prefix:?} must not contain '.' or '..' segments"),
            ));
        }
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        let document = |flag: &'static str, v: Option<&str>| -> Result<Option<String>, ConfigError> {
            match v.map(|d| d.trim_start_matches('/')) {
                None => Ok(None),
                Some(d) if d.is_empty() || d.ends_with('/') || d.split('/').any(|s| s == "." || s == "..") => Err(
                    ConfigError::new(flag, format!("{d:?} must be an object key such as 404.html")),
                ),
                Some(d) => Ok(Some(d.to_string())),
            }
        };
        let header = |flag: &'static str, v: &str, example: &str| {
            http::HeaderValue::from_str(v.trim())
                .map_err(|_| ConfigError::new(flag, format!("must be a valid header value, e.g. {example}")))
        };
        let cache_control = header(
            "--cache-control",
            spec.cache_control.as_deref().unwrap_or(&args.cache_control),
            "public, max-age=300",
        )?;
        let error_cache_control = header(
            "--error-cache-control",
            spec.error_cache_control.as_deref().unwrap_or(&args.error_cache_control),
            "no-store",
        )?;
        Ok(Self {
            prefix,
            index,
            error_document: document(
                "--error-document",
                spec.error_document.as_deref().or(args.error_document.as_deref()),
            )?,
            spa_fallback: document(
                "--spa-fallback",
                spec.spa_fallback.as_deref().or(args.spa_fallback.as_deref()),
            )?,
            cache_control,
            error_cache_control,
            list_directories: spec.list_directories.unwrap_or(args.list_directories),
            cors: crate::http::cors::Cors::from_args(spec.cors_origins.as_deref().unwrap_or(&args.cors_origins))?,
            rules: Arc::new(rules(spec)?),
            bucket_rules: spec.site_rules.unwrap_or(args.site_rules) == crate::cli::SiteRules::Bucket,
            protect: protected(spec)?,
        })
    }

    /// The bucket key for a key relative to the served prefix.
    pub fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }
}

/// The rules of `--header-rule` and `--redirect` (the one-site case), in the files' syntax.
fn flag_rules(args: &ServeArgs) -> Result<crate::http::rules::Rules, ConfigError> {
    use crate::http::rules::{Rules, parse_headers, parse_redirects};
    let mut rules = Rules::default();
    for rule in &args.header_rules {
        let (pattern, header) = rule.trim().split_once(char::is_whitespace).ok_or_else(|| {
            ConfigError::new(
                "--header-rule",
                format!("{rule:?}: give PATTERN Name: value, or PATTERN ! Name"),
            )
        })?;
        let (parsed, skipped) = parse_headers(&format!("{pattern}\n  {}\n", header.trim()));
        if let Some(s) = skipped.first() {
            return Err(ConfigError::new("--header-rule", format!("{rule:?}: {}", s.reason)));
        }
        rules.headers.extend(parsed);
    }
    for rule in &args.redirects {
        let (parsed, skipped) = parse_redirects(rule);
        if let Some(s) = skipped.first() {
            return Err(ConfigError::new("--redirect", format!("{rule:?}: {}", s.reason)));
        }
        rules.redirects.extend(parsed);
    }
    Ok(rules)
}

/// The site's `[[sites.protect]]` tables, their htpasswd files read and checked.
fn protected(spec: &SiteSpec) -> Result<Vec<Protected>, ConfigError> {
    spec.protect
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let fail = |msg: String| ConfigError::new("--protect", format!("[{i}] ({}): {msg}", p.pattern));
            let pattern = crate::http::rules::Pattern::parse(&p.pattern).map_err(&fail)?;
            let text = std::fs::read_to_string(&p.htpasswd)
                .map_err(|e| fail(format!("cannot read {}: {e}", p.htpasswd.display())))?;
            let users = crate::http::basic_auth::Htpasswd::parse(&text)
                .map_err(|e| fail(format!("{}: {e}", p.htpasswd.display())))?;
            let realm = p.realm.clone().unwrap_or_else(|| spec.name.clone());
            if realm.contains(['"', '\\']) {
                return Err(fail("realm: no quotes or backslashes".into()));
            }
            let challenge = http::HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .map_err(|_| fail("realm: not a header value".into()))?;
            Ok(Protected {
                pattern,
                challenge,
                users: Arc::new(users),
            })
        })
        .collect()
}

/// The rules of a site's `[[sites.headers]]` and `[[sites.redirects]]` tables.
fn rules(spec: &SiteSpec) -> Result<crate::http::rules::Rules, ConfigError> {
    use crate::http::rules::{HeaderRule, MAX_RULES, Pattern, Rules, redirect};
    if spec.headers.len() > MAX_RULES || spec.redirects.len() > MAX_RULES {
        return Err(ConfigError::new(
            "--headers",
            format!("at most {MAX_RULES} rules of each kind"),
        ));
    }
    let mut rules = Rules::default();
    for (i, h) in spec.headers.iter().enumerate() {
        let fail = |msg: String| ConfigError::new("--headers", format!("[{i}] ({}): {msg}", h.pattern));
        let pattern = Pattern::parse(&h.pattern).map_err(&fail)?;
        let mut set = Vec::new();
        for (name, value) in &h.set {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| fail(format!("{name:?} is not a header name")))?;
            let value =
                http::HeaderValue::from_str(value).map_err(|_| fail(format!("{value:?} is not a header value")))?;
            set.push((name, value));
        }
        let remove = h
            .remove
            .iter()
            .map(|name| {
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| fail(format!("{name:?} is not a header name")))
            })
            .collect::<Result<_, _>>()?;
        rules.headers.push(HeaderRule { pattern, set, remove });
    }
    for (i, r) in spec.redirects.iter().enumerate() {
        let rule = redirect(&r.from, &r.to, r.status.unwrap_or(301), r.keep_query.unwrap_or(true))
            .map_err(|msg| ConfigError::new("--redirects", format!("[{i}] ({}): {msg}", r.from)))?;
        rules.redirects.push(rule);
    }
    Ok(rules)
}

/// A host name as matched: lowercase, without port or trailing dot; `*.` kept for wildcards.
/// `None` when it is not a host name.
pub fn normalize(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let host = if host.starts_with('[') {
        // [v6]:port
        host.split_once(']').map(|(h, _)| format!("{h}]"))?
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    let host = host.trim_end_matches('.').to_string();
    let body = host.strip_prefix("*.").unwrap_or(&host);
    let valid = !body.is_empty()
        && body.len() <= 253
        && (body.starts_with('[')
            || body
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    valid.then_some(host)
}

/// A site the gateway serves, with the bucket it reads.
#[derive(Debug)]
pub struct Hosted {
    /// Its name.
    pub name: String,
    /// How paths map to objects and what responses look like.
    pub site: Site,
    /// Its bucket.
    pub storage: Storage,
    /// The rules last read from the bucket, parsed once per version of the files.
    pub bucket_rules: crate::http::rules::RulesMemo,
}

/// The sites of a running gateway, by host.
#[derive(Debug)]
pub struct Sites {
    hosted: Vec<Arc<Hosted>>,
    exact: HashMap<String, usize>,
    /// `(".example.com", site)`, longest first.
    wildcards: Vec<(String, usize)>,
    default: Option<usize>,
}

impl Sites {
    /// The sites of `config`, each reading its bucket through `storage` (which reads the
    /// `--bucket`; other buckets share its client).
    pub fn new(config: &SitesConfig, storage: &Storage) -> Self {
        let mut exact = HashMap::new();
        let mut wildcards = Vec::new();
        let hosted = config
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                for host in &s.hosts {
                    match host.strip_prefix('*') {
                        Some(suffix) => wildcards.push((suffix.to_string(), i)),
                        None => {
                            exact.insert(host.clone(), i);
                        }
                    }
                }
                Arc::new(Hosted {
                    name: s.name.clone(),
                    site: s.site.clone(),
                    storage: storage.for_bucket(&s.bucket),
                    bucket_rules: crate::http::rules::RulesMemo::default(),
                })
            })
            .collect();
        wildcards.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Self {
            hosted,
            exact,
            wildcards,
            default: config.default,
        }
    }

    /// The site for a request's host (`Host`, or the authority of an absolute target).
    pub fn select(&self, host: Option<&str>) -> Option<&Arc<Hosted>> {
        if self.exact.is_empty() && self.wildcards.is_empty() {
            // One site for every host: nothing to match (no work per request).
            return self.default.map(|i| &self.hosted[i]);
        }
        let found = host.and_then(normalize).and_then(|h| {
            self.exact.get(&h).copied().or_else(|| {
                self.wildcards
                    .iter()
                    .find(|(suffix, _)| h.ends_with(suffix.as_str()) && h.len() > suffix.len())
                    .map(|(_, i)| *i)
            })
        });
        found.or(self.default).map(|i| &self.hosted[i])
    }

    /// The site named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Hosted>> {
        self.hosted.iter().find(|h| h.name == name)
    }

    /// The site that answers when none is named: the default, or the only one.
    pub fn fallback(&self) -> Option<&Arc<Hosted>> {
        self.default
            .map(|i| &self.hosted[i])
            .or_else(|| (self.hosted.len() == 1).then(|| &self.hosted[0]))
    }

    /// Every site.
    pub fn all(&self) -> &[Arc<Hosted>] {
        &self.hosted
    }
}

/// The line (from 1) of byte `offset` in a sites file, and the `name` of the `[[sites]]` table
/// it falls in, if any: an error in the file names the site as well as the line.
fn place(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let Some(start) = before.rfind("[[sites]]") else {
        return (Some(line), None);
    };
    let table = text[start + "[[sites]]".len()..]
        .split("\n[")
        .next()
        .unwrap_or_default();
    let name = table.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
    });
    (Some(line), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(normalize("Example.COM:8080").as_deref(), Some("example.com"));
        assert_eq!(normalize("example.com.").as_deref(), Some("example.com"));
        assert_eq!(normalize("*.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(normalize("[::1]:8080").as_deref(), Some("[::1]"));
        for bad in ["", "a b", "ex_ample.com", "..", "*."] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
