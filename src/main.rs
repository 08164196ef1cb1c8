//! The daemon: parse flags, build a config, run the server until SIGINT/SIGTERM.

use clap::Parser;
use secantusdb::config::{Config, Storage};
use secantusdb::Server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use std::process::ExitCode;

/// The daemon allocates many short-lived documents per request; mimalloc handles that far
/// better than glibc's allocator. (The library leaves the allocator to its embedder.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "secantusdb", version, about = "A single-node MongoDB server on WiredTiger")]
struct Args {
    /// Data directory (`:memory:` for a temporary store removed on exit).
    #[arg(long = "dbpath", alias = "storage-path", default_value = "./secantus-data")]
    dbpath: String,
    #[arg(long, default_value_t = 27017)]
    port: u16,
    /// Address to listen on.
    #[arg(long = "bind_ip", alias = "host", alias = "bind-ip", default_value = "127.0.0.1")]
    bind_ip: String,
    /// WiredTiger cache size in megabytes.
    #[arg(long = "cache-size", default_value_t = 256)]
    cache_size: u64,
    /// Run without the single-node replica-set persona.
    #[arg(long)]
    standalone: bool,
    /// Replica-set name announced in hello.
    #[arg(long = "replSet", alias = "repl-set", default_value = "secantus")]
    repl_set: String,
    /// Host name announced to replica-set clients (default: the bind address, or the host
    /// name when bound to all interfaces).
    #[arg(long = "advertised-host")]
    advertised_host: Option<String>,
    /// error, warn, info, debug or trace (RUST_LOG also works).
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
    /// Enable test-only commands (configureFailPoint).
    #[arg(long = "enable-test-commands")]
    enable_test_commands: bool,
    /// Keep oplog entries this long (seconds).
    #[arg(long = "oplog-retention-seconds", default_value_t = 3600)]
    oplog_retention_seconds: u64,
    /// Keep at most this many oplog entries (0: no count limit).
    #[arg(long = "oplog-max-entries", default_value_t = 0)]
    oplog_max_entries: u64,
    /// Abort transactions open for longer than this (mongod's transactionLifetimeLimitSeconds).
    #[arg(long = "transaction-lifetime-limit-seconds", default_value_t = 60)]
    transaction_lifetime_limit_seconds: u64,
    /// Require clients to authenticate and enforce their roles.
    #[arg(long)]
    auth: bool,
    /// Refuse connections past this many.
    #[arg(long = "maxConns", alias = "max-conns", default_value_t = 10_000)]
    max_conns: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&args.log_level))
        .format_timestamp_millis()
        .init();
    let storage = if args.dbpath == ":memory:" {
        Storage::Ephemeral
    } else {
        Storage::Path(PathBuf::from(&args.dbpath))
    };
    let config = Config {
        host: args.bind_ip,
        port: args.port,
        storage,
        cache_size_mb: args.cache_size,
        standalone: args.standalone,
        replica_set_name: args.repl_set,
        advertised_host: args.advertised_host,
        oplog_retention_secs: args.oplog_retention_seconds,
        oplog_max_entries: args.oplog_max_entries,
        transaction_lifetime_secs: args.transaction_lifetime_limit_seconds.max(1),
        enable_test_commands: args.enable_test_commands,
        max_connections: args.max_conns,
        auth: args.auth,
        ..Config::default()
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("secantusdb: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("secantusdb: {e}");
            return ExitCode::from(1);
        }
    };
    log::info!("secantusdb {} ready on {}", env!("CARGO_PKG_VERSION"), server.addr());
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: shutting down");
    }
    server.stop();
    ExitCode::SUCCESS
}
