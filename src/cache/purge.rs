//! Purge: dropping objects, their codings and remembered 404s from memory, and objects from
//! the disk tier, on request, so that the next request asks the backend.

use crate::cache::store::{ObjectCache, variant_key};
use crate::http::compression::Encoding;

/// What a purge removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purge {
    /// One object key.
    Key(String),
    /// Every key that starts with this.
    Prefix(String),
    /// Everything.
    All,
}

impl ObjectCache {
    /// Removes what `scope` names from memory (objects, their codings, remembered 404s), so
    /// that the next request asks the backend; returns how many entries went. Fills in
    /// progress when the purge happens serve their readers but are not kept. Keys and
    /// prefixes are cache names ([`cache_name`]: `bucket/key`).
    pub async fn purge(&self, scope: &Purge) -> u64 {
        // Revalidations under way when the purge came are not kept (they may hold the very
        // version it drops); fills under way are discarded below.
        self.purges.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for (key, fill) in self.fills.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let hit = match scope {
                Purge::Key(k) => k == key,
                Purge::Prefix(p) => key.starts_with(p.as_str()),
                Purge::All => true,
            };
            if hit {
                fill.discard();
            }
        }
        let names = |key: &str| {
            std::iter::once(key.to_string())
                .chain(Encoding::ALL.into_iter().map(|e| variant_key(key, e)))
                .collect::<Vec<_>>()
        };
        let mut gone = 0;
        if let Some(disk) = &self.disk {
            gone += disk.purge(|name| match scope {
                Purge::Key(key) => name == key,
                Purge::Prefix(prefix) => name.starts_with(prefix.as_str()),
                Purge::All => true,
            });
        }
        match scope {
            Purge::Key(key) => {
                for name in names(key) {
                    gone += u64::from(self.entries.remove(&name).await.is_some());
                }
                gone += u64::from(self.negative.remove(key).await.is_some());
            }
            Purge::Prefix(prefix) => {
                // The object key of an entry: a coding's entry names its object after the
                // second NUL.
                let object_key = |name: &str| -> String {
                    match name.strip_prefix('\0') {
                        Some(rest) => rest.split_once('\0').map_or(rest, |(_, k)| k).to_string(),
                        None => name.to_string(),
                    }
                };
                let doomed: Vec<String> = self
                    .entries
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .filter(|name| object_key(name).starts_with(prefix.as_str()))
                    .collect();
                for name in doomed {
                    gone += u64::from(self.entries.remove(&name).await.is_some());
                }
                let doomed: Vec<String> = self
                    .negative
                    .iter()
                    .map(|(key, _)| key.to_string())
                    .filter(|key| key.starts_with(prefix.as_str()))
                    .collect();
                for key in doomed {
                    gone += u64::from(self.negative.remove(&key).await.is_some());
                }
            }
            Purge::All => {
                self.entries.run_pending_tasks().await;
                self.negative.run_pending_tasks().await;
                gone = self.entries.entry_count() + self.negative.entry_count();
                self.entries.invalidate_all();
                self.negative.invalidate_all();
                self.entries.run_pending_tasks().await;
                self.negative.run_pending_tasks().await;
            }
        }
        gone
    }
}
