//! The server front door: the embedded `Server` (what test suites use) and the shared state
//! every connection thread sees.

use crate::cmd::failpoint::FailPoints;
use crate::config::{Config, Storage};
use crate::cursors::CursorManager;
use crate::net::listener::{self, Listener};
use crate::reaper::{Job, Reaper, ServerJobs};
use crate::sessions::SessionRegistry;
use crate::store::{Store, StoreError};
use bson::oid::ObjectId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Counters reported by serverStatus.
#[derive(Default)]
pub struct Stats {
    pub insert: AtomicU64,
    pub query: AtomicU64,
    pub update: AtomicU64,
    pub delete: AtomicU64,
    pub getmore: AtomicU64,
    pub command: AtomicU64,
    pub connections_current: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
}

/// State shared by every connection thread.
pub struct Shared {
    pub config: Config,
    pub store: Arc<Store>,
    pub cursors: CursorManager,
    /// Logical sessions and their retryable-write history.
    pub sessions: SessionRegistry,
    /// Fail points set by configureFailPoint (test commands).
    pub failpoints: FailPoints,
    pub stats: Stats,
    pub started: Instant,
    /// `topologyVersion.processId`: changes on every start.
    pub process_id: ObjectId,
    pub shutting_down: AtomicBool,
    /// The address clients reach us at (`host:port`), used in hello's `me`/`hosts`.
    pub me: String,
    pub next_conn_id: AtomicI64,
    pub shutdown_signal: crossbeam_channel::Receiver<()>,
    pub auth: crate::auth::AuthShared,
    /// Per-database profiler levels (the `profile` command).
    pub profiler: crate::cmd::profile::Profiler,
    /// Connections and their operations in progress (currentOp/killOp), latency counters.
    pub ops: crate::ops::OpRegistry,
}

impl Shared {
    pub fn is_replica_set(&self) -> bool {
        !self.config.standalone
    }

    /// Ends the sessions idle at `now` and kills their cursors; returns how many sessions.
    pub fn expire_sessions(&self, now: Instant) -> usize {
        let expired = self.sessions.reap(now);
        if !expired.is_empty() {
            let k = self.cursors.kill_sessions(&expired);
            let forgotten =
                self.store.session().and_then(|mut ss| crate::retry_history::forget(&mut ss, &expired));
            if let Err(e) = forgotten {
                log::warn!("cannot remove the retryable-write history of expired sessions: {e}");
            }
            log::debug!("expired {} idle sessions ({k} cursors)", expired.len());
        }
        expired.len()
    }
}

#[derive(Debug)]
pub enum StartError {
    Store(StoreError),
    Bind(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "opening the store: {e}"),
            StartError::Bind(e) => write!(f, "binding the listener: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Builder for an embedded server: `Server::builder().start()` gives a server on an
/// OS-assigned port with a temporary store that is removed when the server is dropped.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    config: Config,
}

impl ServerBuilder {
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }
    /// 0 (the default for the builder) lets the OS choose.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }
    /// Keep data in this directory (it survives restarts).
    pub fn dbpath(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.storage = Storage::Path(path.into());
        self
    }
    /// Keep data in a temporary directory removed on stop (the default).
    pub fn ephemeral(mut self) -> Self {
        self.config.storage = Storage::Ephemeral;
        self
    }
    pub fn cache_size_mb(mut self, mb: u64) -> Self {
        self.config.cache_size_mb = mb;
        self
    }
    pub fn standalone(mut self, standalone: bool) -> Self {
        self.config.standalone = standalone;
        self
    }
    /// Open transactions older than this are aborted (default 60 s, as mongod).
    pub fn transaction_lifetime_secs(mut self, secs: u64) -> Self {
        self.config.transaction_lifetime_secs = secs;
        self
    }
    pub fn enable_test_commands(mut self, on: bool) -> Self {
        self.config.enable_test_commands = on;
        self
    }
    /// Seconds between TTL monitor passes (60 by default, as mongod).
    pub fn ttl_monitor_secs(mut self, secs: u64) -> Self {
        self.config.ttl_monitor_secs = secs;
        self
    }
    /// Oplog entries older than this are pruned (3600 s by default).
    pub fn oplog_retention_secs(mut self, secs: u64) -> Self {
        self.config.oplog_retention_secs = secs;
        self
    }
    /// Keep at most this many oplog entries (0, the default: no count limit).
    pub fn oplog_max_entries(mut self, n: u64) -> Self {
        self.config.oplog_max_entries = n;
        self
    }
    /// Enforce authentication and authorization (mongod's `--auth`).
    pub fn auth(mut self, on: bool) -> Self {
        self.config.auth = on;
        self
    }
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    pub fn start(self) -> Result<Server, StartError> {
        Server::start(self.config)
    }
}

/// A running server. Dropping it stops it gracefully (stop accepting, close connections,
/// checkpoint, close WiredTiger).
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Option<Listener>,
    reaper: Option<Reaper>,
}

impl Server {
    pub fn builder() -> ServerBuilder {
        let config = Config { port: 0, enable_test_commands: true, ..Config::default() };
        ServerBuilder { config }
    }

    pub fn start(config: Config) -> Result<Server, StartError> {
        let store = Store::open(&config).map_err(StartError::Store)?;
        let sessions = SessionRegistry::default();
        crate::retry_history::open(&store, &sessions).map_err(StartError::Store)?;
        let (std_listener, addr) = listener::bind(&config.host, config.port).map_err(StartError::Bind)?;
        let host = match &config.advertised_host {
            Some(h) => h.clone(),
            None if addr.ip().is_unspecified() => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "127.0.0.1".to_string()),
            None if addr.is_ipv6() => format!("[{}]", addr.ip()),
            None => addr.ip().to_string(),
        };
        let (signal_tx, signal_rx) = crossbeam_channel::bounded(0);
        let shared = Arc::new(Shared {
            config,
            store,
            cursors: CursorManager::default(),
            sessions,
            failpoints: FailPoints::default(),
            stats: Stats::default(),
            started: Instant::now(),
            process_id: ObjectId::new(),
            shutting_down: AtomicBool::new(false),
            me: format!("{host}:{}", addr.port()),
            next_conn_id: AtomicI64::new(1),
            shutdown_signal: signal_rx,
            auth: Default::default(),
            profiler: Default::default(),
            ops: Default::default(),
        });
        let listener =
            Listener::start(std_listener, addr, shared.clone(), signal_tx).map_err(StartError::Bind)?;
        let reaper = Reaper::start(ServerJobs::new(shared.clone())).map_err(StartError::Bind)?;
        log::info!("listening on {addr}, data in {}", shared.store.path().display());
        Ok(Server { shared, addr, listener: Some(listener), reaper: Some(reaper) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection string for this server.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.shared.me)
    }

    /// Runs a reaper job now instead of at its deadline (tests use it to expire TTL
    /// documents or prune the oplog without waiting).
    pub fn run_reaper_job(&self, job: Job) {
        if let Some(r) = &self.reaper {
            r.run_now(job);
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes every connection, then checkpoints and closes the store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        listener.stop();
        if let Some(mut r) = self.reaper.take() {
            r.stop();
        }
        self.shared.cursors.clear();
        self.shared.sessions.abort_all_transactions();
        self.shared.store.shutdown();
        log::info!("server on {} stopped", self.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
