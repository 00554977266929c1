//! Memory as a pod's limit sees it: the gateway in a memory cgroup of its own, whose usage
//! counts what the kubelet's limit and the OOM killer count, the cache's sealed memory files
//! (shared memory, not in VmRSS when unmapped) included.
//!
//! cgroup v1 (`/sys/fs/cgroup/memory`, `memory.max_usage_in_bytes`) or v2 (`memory.peak`);
//! creating one needs root: the tests fail saying so, the benchmark says so and goes on.

use std::path::PathBuf;

/// A memory cgroup holding one process; removed when dropped (after the process is gone).
pub struct MemCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemCgroup {
    /// Moves `pid` into a new memory cgroup, or says why it cannot.
    pub fn enter(pid: u32) -> Result<Self, String> {
        let (root, v2) = if std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
            (PathBuf::from("/sys/fs/cgroup/memory"), false)
        } else if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
            (PathBuf::from("/sys/fs/cgroup"), true)
        } else {
            return Err("no memory cgroup hierarchy under /sys/fs/cgroup".into());
        };
        let dir = root.join(format!("gateway-memory-{pid}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {} (run as root): {e}", dir.display()))?;
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move {pid} into {}: {e}", dir.display()))?;
        Ok(Self { dir, v2 })
    }

    fn read(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Bytes charged now.
    pub fn usage(&self) -> u64 {
        self.read(if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        })
    }

    /// The most bytes charged since the cgroup was made or [`MemCgroup::reset_peak`].
    pub fn peak(&self) -> u64 {
        self.read(if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        })
    }

    /// Starts a new peak from the current usage.
    pub fn reset_peak(&self) {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        let _ = std::fs::write(self.dir.join(file), "0");
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // Empty once the process has exited; a few tries while it finishes.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
