//! Raw bindings to WiredTiger 11.3.1 through a small C shim (`shim/shim.h`).
//!
//! Everything here is `unsafe` and mirrors the C functions one to one; the
//! safe wrapper lives in the main crate (`src/store/wt.rs`).
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

// WiredTiger's built-in zstd block compressor calls into zstd-sys's C library;
// naming the crate makes rustc link it (after libwiredtiger.a).
extern crate zstd_sys;

#[cfg(not(feature = "bindgen"))]
mod bindings;
#[cfg(feature = "bindgen")]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;

/// Version of the WiredTiger source this crate builds.
pub const WIREDTIGER_VERSION: (i32, i32, i32) = (11, 3, 1);

// WiredTiger-specific error codes (wiredtiger.h).
/// Conflict between concurrent operations; roll back the transaction and retry.
pub const WT_ROLLBACK: i32 = -31800;
/// Insert of an existing key on a cursor configured with `overwrite=false`.
pub const WT_DUPLICATE_KEY: i32 = -31801;
/// Non-specific WiredTiger error.
pub const WT_ERROR: i32 = -31802;
/// Item not found.
pub const WT_NOTFOUND: i32 = -31803;
/// Fatal error; the connection must be closed and reopened.
pub const WT_PANIC: i32 = -31804;
/// Internal restart code, never returned to applications.
pub const WT_RESTART: i32 = -31805;
/// Recovery must be run to continue.
pub const WT_RUN_RECOVERY: i32 = -31806;
/// The transaction's cache use cannot be satisfied.
pub const WT_CACHE_FULL: i32 = -31807;
/// Conflict with a prepared update.
pub const WT_PREPARE_CONFLICT: i32 = -31808;
/// Database corruption detected; salvage may help.
pub const WT_TRY_SALVAGE: i32 = -31809;

// errno values WiredTiger returns as-is (Linux numbering; this crate is Linux-only).
pub const ENOENT: i32 = 2;
pub const ENOMEM: i32 = 12;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EINVAL: i32 = 22;
pub const ENOSPC: i32 = 28;
pub const ENOTSUP: i32 = 95;
pub const ETIMEDOUT: i32 = 110;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn links_and_reports_version() {
        // SAFETY: wts_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(wts_version()) }.to_string_lossy().into_owned();
        assert!(v.starts_with("WiredTiger 11.3.1"), "{v}");
    }

    #[test]
    fn strerror_knows_wt_codes() {
        // SAFETY: wts_strerror returns a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(wts_strerror(WT_NOTFOUND)) }.to_string_lossy().into_owned();
        assert!(s.contains("not found"), "{s}");
    }
}
