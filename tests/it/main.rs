//! SecantusDB integration tests: one binary, one embedded server per test, driven through the
//! official `mongodb` crate (sync API) or raw wire frames. mongod 7.0 is the reference for every
//! reply shape, error code and BSON type asserted here.

mod common;

mod agg_operators;
mod aggregate;
mod api;
mod auth;
mod auth_more;
mod capped;
mod catalog;
mod change_streams;
mod collation;
mod covered;
mod crash;
mod crud;
mod current_op;
mod cursors;
mod dates;
mod geo;
mod handshake;
mod index_kinds;
mod indexes;
mod persistence;
mod plan_cache_stats;
mod planner;
mod reaper;
mod sessions;
mod snapshot_reads;
mod spilling;
mod transactions;
mod ttl;
mod validation;
mod views;
mod windows;
mod wire;
