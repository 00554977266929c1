//! What an object's own `Cache-Control` allows a shared cache (RFC 9111 §5.2.2), and how long
//! a copy has left (RFC 9211's `ttl`).

use std::time::Duration;

/// What the object's own `Cache-Control` allows a shared cache (RFC 9111 §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// `no-store` or `private`: do not keep it.
    DoNotStore,
    /// Keep it, fresh for this long (`s-maxage`, else `max-age`, capped by `--cache-ttl`),
    /// and whether it may be served while revalidating (`no-cache` says no).
    Store {
        ttl: Duration,
        stale_while_revalidate: bool,
    },
}

impl Policy {
    pub(crate) fn of(cache_control: Option<&str>, ttl: Duration) -> Self {
        let (mut max_age, mut s_maxage, mut no_cache) = (None, None, false);
        for directive in cache_control.unwrap_or("").split(',') {
            let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
            let seconds = || {
                value
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "private" => return Policy::DoNotStore,
                "no-cache" => no_cache = true,
                "max-age" => max_age = seconds(),
                "s-maxage" => s_maxage = seconds(),
                _ => {}
            }
        }
        let own = if no_cache {
            Some(Duration::ZERO)
        } else {
            s_maxage.or(max_age)
        };
        Policy::Store {
            ttl: own.map_or(ttl, |own| own.min(ttl)),
            stale_while_revalidate: !no_cache,
        }
    }
}

/// `ttl - age` in seconds, rounded, negative once stale (RFC 9211's `ttl`).
pub(crate) fn signed_secs(ttl: Duration, age: Duration) -> i64 {
    // Exact for any TTL a cache holds (f64 counts whole seconds exactly up to 2^53).
    (ttl.as_secs_f64() - age.as_secs_f64()).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn the_objects_own_policy() {
        let store = |secs, swr| Policy::Store {
            ttl: Duration::from_secs(secs),
            stale_while_revalidate: swr,
        };
        assert_eq!(Policy::of(None, TTL), store(60, true));
        assert_eq!(Policy::of(Some("public, max-age=300"), TTL), store(60, true));
        assert_eq!(Policy::of(Some("public, max-age=10"), TTL), store(10, true));
        assert_eq!(Policy::of(Some("max-age=300, s-maxage=5"), TTL), store(5, true));
        assert_eq!(Policy::of(Some("no-cache"), TTL), store(0, false));
        assert_eq!(Policy::of(Some("No-Store"), TTL), Policy::DoNotStore);
        assert_eq!(Policy::of(Some("private, max-age=600"), TTL), Policy::DoNotStore);
        assert_eq!(Policy::of(Some("max-age=junk"), TTL), store(60, true));
    }

    #[test]
    fn signed_ttl() {
        assert_eq!(signed_secs(TTL, Duration::from_secs(70)), -10);
    }
}
