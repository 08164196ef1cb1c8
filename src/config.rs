//! Server configuration shared by the daemon's flags and the embedded builder.

use std::path::PathBuf;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A directory that survives restarts.
    Path(PathBuf),
    /// A temporary directory removed when the server stops.
    Ephemeral,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub storage: Storage,
    /// WiredTiger cache size in megabytes.
    pub cache_size_mb: u64,
    /// Drop the single-node replica-set persona (no `setName` in hello).
    pub standalone: bool,
    pub replica_set_name: String,
    /// `host:port`-style host name announced in hello's `me`/`hosts`; clients of a replica
    /// set connect to it. Defaults to the bind address, or the machine's host name when bound
    /// to all interfaces.
    pub advertised_host: Option<String>,
    pub enable_test_commands: bool,
    pub max_connections: usize,
    /// Seconds between WiredTiger checkpoints.
    pub checkpoint_secs: u64,
    /// Milliseconds between journal flushes for writes that did not ask for `j: true`.
    pub journal_flush_ms: u64,
    /// Oplog entries older than this are pruned.
    pub oplog_retention_secs: u64,
    /// At most this many oplog entries are kept, oldest pruned first (0: no count limit).
    pub oplog_max_entries: u64,
    /// Seconds between passes of the TTL monitor (mongod's ttlMonitorSleepSecs).
    pub ttl_monitor_secs: u64,
    /// mongod's transactionLifetimeLimitSeconds: older open transactions are aborted.
    pub transaction_lifetime_secs: u64,
    /// Require authentication and enforce roles (mongod's `--auth`).
    pub auth: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 27017,
            storage: Storage::Ephemeral,
            cache_size_mb: 256,
            standalone: false,
            replica_set_name: "secantus".into(),
            advertised_host: None,
            enable_test_commands: false,
            max_connections: 10_000,
            checkpoint_secs: 60,
            journal_flush_ms: 50,
            oplog_retention_secs: 3600,
            oplog_max_entries: 0,
            ttl_monitor_secs: 60,
            transaction_lifetime_secs: 60,
            auth: false,
        }
    }
}
