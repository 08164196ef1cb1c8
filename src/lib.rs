//! SecantusDB: a single-node MongoDB server on WiredTiger.
//!
//! Layers (see docs/architecture.md): `net` (wire protocol, one thread per connection) ->
//! `cmd` (command registry and handlers) -> `query` / `agg` (matcher, planner, executor) ->
//! `store` / `oplog` (catalog, records, indexes, WiredTiger) -> WiredTiger.

pub mod agg;
pub mod auth;
pub mod cmd;
pub mod config;
pub mod cursors;
pub mod error;
pub mod net;
pub mod oplog;
pub mod ops;
pub mod query;
pub mod reaper;
pub mod retry_history;
pub mod server;
pub mod sessions;
pub mod store;
pub mod ttl;

pub use config::Config;
pub use server::{Server, ServerBuilder};
