//! SecantusDB integration tests: one binary, one embedded server per test, driven through the
//! official `mongodb` crate (sync API) or raw wire frames. mongod 7.0 is the reference for every
//! reply shape, error code and BSON type asserted here.

mod common;

mod aggregate;
mod catalog;
mod crash;
mod crud;
mod cursors;
mod handshake;
mod indexes;
mod persistence;
mod validation;
mod wire;
