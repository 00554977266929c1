//! What a response says of the cache: `X-Cache` and `Cache-Status` (RFC 9211).

/// How the cache answered one request, for `X-Cache` and `Cache-Status` (RFC 9211).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// What happened.
    pub status: CacheStatus,
    /// Seconds of freshness left, negative when stale; `None` when the answer is not stored.
    pub ttl: Option<i64>,
    /// Whether the disk tier answered (not memory).
    pub disk: bool,
}

impl Served {
    /// An answer that did not come from memory and is not kept there.
    pub fn streamed(status: CacheStatus) -> Self {
        Self {
            status,
            ttl: None,
            disk: false,
        }
    }

    /// An answer from memory.
    pub fn memory(status: CacheStatus, ttl: Option<i64>) -> Self {
        Self {
            status,
            ttl,
            disk: false,
        }
    }

    /// The `X-Cache` value: the status, prefixed `DISK-` when the disk tier answered.
    pub fn x_cache(&self) -> &'static str {
        if !self.disk {
            return self.status.as_str();
        }
        match self.status {
            CacheStatus::Hit => "DISK-HIT",
            CacheStatus::Miss => "DISK-MISS",
            CacheStatus::Revalidated => "DISK-REVALIDATED",
            CacheStatus::Updating => "DISK-UPDATING",
            CacheStatus::Stale => "DISK-STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// The `Cache-Status` value (RFC 9211), the cache named `gateway`.
    pub fn cache_status(&self) -> String {
        let (what, detail) = match self.status {
            CacheStatus::Hit => ("hit", ""),
            CacheStatus::Updating => ("hit", "; detail=stale-while-revalidate"),
            CacheStatus::Stale => ("hit", "; detail=stale-if-error"),
            CacheStatus::Miss => ("fwd=uri-miss", ""),
            CacheStatus::Revalidated => ("fwd=stale", ""),
            CacheStatus::Bypass => ("fwd=bypass", ""),
        };
        let stored = if matches!(self.status, CacheStatus::Miss | CacheStatus::Revalidated) && self.ttl.is_some() {
            "; stored"
        } else {
            ""
        };
        let ttl = self.ttl.map(|t| format!("; ttl={t}")).unwrap_or_default();
        let detail = match (self.disk, detail) {
            (false, d) => d.to_string(),
            (true, "") => "; detail=disk".to_string(),
            (true, d) => format!("{d}-disk"),
        };
        format!("gateway; {what}{stored}{ttl}{detail}")
    }
}

/// The `X-Cache` value of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from memory without asking the backend.
    Hit,
    /// Fetched from the backend (and cached if small enough).
    Miss,
    /// Confirmed or refreshed by the backend before serving.
    Revalidated,
    /// Served from memory past its TTL while a background request revalidates it
    /// (stale-while-revalidate).
    Updating,
    /// Served from memory because revalidation failed (stale-if-error).
    Stale,
    /// Not cacheable here (cache off, object too large, range on a miss, fill budget spent):
    /// streamed.
    Bypass,
}

impl CacheStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_values() {
        let s = |status, ttl| Served::memory(status, ttl).cache_status();
        assert_eq!(s(CacheStatus::Hit, Some(42)), "gateway; hit; ttl=42");
        assert_eq!(s(CacheStatus::Miss, Some(60)), "gateway; fwd=uri-miss; stored; ttl=60");
        assert_eq!(s(CacheStatus::Miss, None), "gateway; fwd=uri-miss");
        assert_eq!(
            s(CacheStatus::Revalidated, Some(60)),
            "gateway; fwd=stale; stored; ttl=60"
        );
        assert_eq!(
            s(CacheStatus::Stale, Some(-5)),
            "gateway; hit; ttl=-5; detail=stale-if-error"
        );
        assert_eq!(s(CacheStatus::Bypass, None), "gateway; fwd=bypass");
        let disk = |status, ttl| Served {
            status,
            ttl,
            disk: true,
        };
        assert_eq!(
            disk(CacheStatus::Hit, Some(9)).cache_status(),
            "gateway; hit; ttl=9; detail=disk"
        );
        assert_eq!(
            disk(CacheStatus::Stale, Some(-1)).cache_status(),
            "gateway; hit; ttl=-1; detail=stale-if-error-disk"
        );
        assert_eq!(disk(CacheStatus::Miss, Some(60)).x_cache(), "DISK-MISS");
    }
}
