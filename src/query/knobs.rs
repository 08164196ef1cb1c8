//! The runtime query parameters mongod exposes through `setParameter`/`getParameter`: the
//! memory each blocking aggregation stage may hold before it fails (or, with `allowDiskUse`,
//! spills), and `allowDiskUseByDefault` (what a find or aggregate that omits `allowDiskUse`
//! gets; true since mongod 6.0). One instance per server, read lock-free on every query.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// mongod's default for every per-stage memory limit (100 MiB).
pub const DEFAULT_STAGE_MEMORY: usize = 100 * 1024 * 1024;

pub struct QueryKnobs {
    /// `internalDocumentSourceGroupMaxMemoryBytes` ($group, $bucket, $sortByCount).
    pub group_max_memory: AtomicUsize,
    /// `internalDocumentSourceSetWindowFieldsMaxMemoryBytes`.
    pub window_max_memory: AtomicUsize,
    /// `internalDocumentSourceBucketAutoMaxMemoryBytes`.
    pub bucket_auto_max_memory: AtomicUsize,
    /// `allowDiskUseByDefault`.
    pub allow_disk_use_by_default: AtomicBool,
}

impl Default for QueryKnobs {
    fn default() -> Self {
        QueryKnobs {
            group_max_memory: AtomicUsize::new(DEFAULT_STAGE_MEMORY),
            window_max_memory: AtomicUsize::new(DEFAULT_STAGE_MEMORY),
            bucket_auto_max_memory: AtomicUsize::new(DEFAULT_STAGE_MEMORY),
            allow_disk_use_by_default: AtomicBool::new(true),
        }
    }
}

/// The byte-size parameters by their mongod names.
pub const MEMORY_PARAMS: &[&str] = &[
    "internalDocumentSourceGroupMaxMemoryBytes",
    "internalDocumentSourceSetWindowFieldsMaxMemoryBytes",
    "internalDocumentSourceBucketAutoMaxMemoryBytes",
];

impl QueryKnobs {
    /// The limit named `name` (one of [`MEMORY_PARAMS`]).
    pub fn memory(&self, name: &str) -> Option<&AtomicUsize> {
        match name {
            "internalDocumentSourceGroupMaxMemoryBytes" => Some(&self.group_max_memory),
            "internalDocumentSourceSetWindowFieldsMaxMemoryBytes" => Some(&self.window_max_memory),
            "internalDocumentSourceBucketAutoMaxMemoryBytes" => Some(&self.bucket_auto_max_memory),
            _ => None,
        }
    }

    pub fn group(&self) -> usize {
        self.group_max_memory.load(Ordering::Relaxed)
    }

    pub fn window(&self) -> usize {
        self.window_max_memory.load(Ordering::Relaxed)
    }

    pub fn bucket_auto(&self) -> usize {
        self.bucket_auto_max_memory.load(Ordering::Relaxed)
    }

    /// A command's `allowDiskUse`, or the server default when it has none.
    pub fn allow_disk_use(&self, given: Option<bool>) -> bool {
        given.unwrap_or_else(|| self.allow_disk_use_by_default.load(Ordering::Relaxed))
    }
}
