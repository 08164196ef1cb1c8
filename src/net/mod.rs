//! The wire server: a blocking accept loop, one OS thread per client connection, and the
//! MongoDB wire-protocol codec.

pub mod bsoncheck;
pub mod conn;
pub mod listener;
pub mod splice;
pub mod wire;
