//! What the disk tier holds, in memory: the object versions it knows and their complete
//! slices, with the bytes they take and their order of last use. Eviction takes the least
//! recently used slices until the tier fits `--disk-cache-max-bytes`.
//!
//! Per slice it keeps a few dozen bytes (its place in the order, its length and checksum), per
//! version its metadata: a 1 GiB tier of 8 MiB slices indexes 128 slices.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Version;

/// One complete slice file.
#[derive(Clone, Debug)]
pub(super) struct Slice {
    /// Its length in bytes.
    pub len: u64,
    /// CRC-32 of its bytes, also in its file name.
    pub crc: u32,
    /// Whether its bytes were checked against `crc` since this process started (slices read
    /// back after a restart are checked on first use).
    pub verified: bool,
    /// Its place in the order of use.
    used: u64,
}

/// A slice of a version: the version's directory name and the slice's number.
pub(super) type SliceId = (Arc<str>, u32);

/// The tier's contents.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The current version of each object, by cache name.
    pub objects: HashMap<String, Arc<Version>>,
    /// Complete slices.
    slices: HashMap<SliceId, Slice>,
    /// Slices by last use, oldest first.
    order: BTreeMap<u64, SliceId>,
    /// The next use's number.
    clock: u64,
    /// Bytes of the complete slices.
    pub bytes: u64,
}

impl Index {
    /// The slice `id`, marked as just used.
    pub fn touch(&mut self, id: &SliceId) -> Option<Slice> {
        let clock = self.tick();
        let slice = self.slices.get_mut(id)?;
        self.order.remove(&slice.used);
        slice.used = clock;
        self.order.insert(clock, id.clone());
        Some(slice.clone())
    }

    /// Records a complete slice as the most recently used.
    pub fn insert(&mut self, id: SliceId, len: u64, crc: u32, verified: bool) {
        self.remove(&id);
        let used = self.tick();
        self.order.insert(used, id.clone());
        self.bytes += len;
        self.slices.insert(
            id,
            Slice {
                len,
                crc,
                verified,
                used,
            },
        );
    }

    /// Whether slice `id` is held (without marking it used).
    pub fn has(&self, id: &SliceId) -> bool {
        self.slices.contains_key(id)
    }

    /// Marks a slice's bytes as checked.
    pub fn verified(&mut self, id: &SliceId) {
        if let Some(s) = self.slices.get_mut(id) {
            s.verified = true;
        }
    }

    /// Forgets a slice; returns it if it was there.
    pub fn remove(&mut self, id: &SliceId) -> Option<Slice> {
        let slice = self.slices.remove(id)?;
        self.order.remove(&slice.used);
        self.bytes -= slice.len;
        Some(slice)
    }

    /// Forgets every slice of the version in directory `dir`; returns how many there were.
    pub fn remove_version(&mut self, dir: &str) -> usize {
        let ids: Vec<SliceId> = self.slices.keys().filter(|(d, _)| &**d == dir).cloned().collect();
        for id in &ids {
            self.remove(id);
        }
        ids.len()
    }

    /// The least recently used slices to drop so that `incoming` more bytes fit in `max`.
    pub fn evict_for(&mut self, incoming: u64, max: u64) -> Vec<(SliceId, Slice)> {
        let mut gone = Vec::new();
        while self.bytes + incoming > max {
            let Some((_, id)) = self.order.pop_first() else { break };
            if let Some(slice) = self.slices.remove(&id) {
                self.bytes -= slice.len;
                gone.push((id, slice));
            }
        }
        gone
    }

    /// Complete slices held.
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(dir: &str, n: u32) -> SliceId {
        (Arc::from(dir), n)
    }

    #[test]
    fn eviction_takes_the_least_recently_used_first() {
        let mut index = Index::default();
        index.insert(id("a", 0), 10, 0, true);
        index.insert(id("a", 1), 10, 0, true);
        index.insert(id("b", 0), 10, 0, true);
        assert!(index.touch(&id("a", 0)).is_some());
        let gone: Vec<SliceId> = index.evict_for(15, 30).into_iter().map(|(id, _)| id).collect();
        assert_eq!(gone, vec![id("a", 1), id("b", 0)]);
        assert_eq!((index.bytes, index.slice_count()), (10, 1));
    }

    #[test]
    fn a_version_goes_with_all_its_slices() {
        let mut index = Index::default();
        index.insert(id("a", 0), 10, 0, true);
        index.insert(id("a", 3), 5, 0, true);
        index.insert(id("b", 0), 7, 0, true);
        assert_eq!(index.remove_version("a"), 2);
        assert_eq!((index.bytes, index.slice_count()), (7, 1));
        assert!(index.touch(&id("a", 0)).is_none());
    }
}
