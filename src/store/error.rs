//! The storage layer's errors, in its own terms; mapped to mongod codes at the command boundary.

use super::wt::WtError;
use crate::error::{ErrorCode, MongoError};
use bson::Document;
use std::fmt;

#[derive(Debug, Clone)]
pub struct DuplicateKey {
    pub ns: String,
    pub index: String,
    pub key_pattern: Document,
    pub key_value: Document,
}

#[derive(Debug, Clone)]
pub enum StoreError {
    /// WiredTiger failed in a way that is not a write conflict.
    Engine(WtError),
    /// Two transactions wrote the same key; the write is retried.
    WriteConflict,
    /// Boxed so `StoreResult` stays small.
    DuplicateKey(Box<DuplicateKey>),
    NamespaceNotFound(String),
    NamespaceExists(String),
    IndexNotFound(String),
    /// A compound index key would need two array fields.
    ParallelArrays(String),
    /// Stored bytes that do not parse: a bug or a damaged file.
    Corrupt(String),
    Io(String),
    /// An error already in mongod's terms, raised from inside a write (e.g. an index's
    /// partial filter failing to parse).
    Mongo(MongoError),
}

impl From<WtError> for StoreError {
    fn from(e: WtError) -> Self {
        if e.is_rollback() {
            StoreError::WriteConflict
        } else {
            StoreError::Engine(e)
        }
    }
}

impl From<MongoError> for StoreError {
    fn from(e: MongoError) -> Self {
        StoreError::Mongo(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Engine(e) => write!(f, "storage engine error: {e}"),
            StoreError::WriteConflict => write!(f, "write conflict"),
            StoreError::DuplicateKey(d) => write!(
                f,
                "E11000 duplicate key error collection: {} index: {} dup key: {}",
                d.ns,
                d.index,
                crate::cmd::format::shell(&d.key_value)
            ),
            StoreError::NamespaceNotFound(ns) => write!(f, "ns does not exist: {ns}"),
            StoreError::NamespaceExists(ns) => write!(f, "Collection {ns} already exists."),
            StoreError::IndexNotFound(n) => write!(f, "index not found with name [{n}]"),
            StoreError::ParallelArrays(m) => write!(f, "{m}"),
            StoreError::Corrupt(m) => write!(f, "corrupt record: {m}"),
            StoreError::Io(m) => write!(f, "I/O error: {m}"),
            StoreError::Mongo(e) => write!(f, "{}", e.message),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for MongoError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::Mongo(m) => m,
            StoreError::DuplicateKey(d) => {
                let d = *d;
                MongoError::new(ErrorCode::DuplicateKey, message).with_info(bson::doc! {
                    "keyPattern": d.key_pattern,
                    "keyValue": d.key_value,
                })
            }
            StoreError::WriteConflict => MongoError::new(ErrorCode::WriteConflict, message),
            StoreError::NamespaceNotFound(_) => MongoError::new(ErrorCode::NamespaceNotFound, message),
            StoreError::NamespaceExists(_) => MongoError::new(ErrorCode::NamespaceExists, message),
            StoreError::IndexNotFound(_) => MongoError::new(ErrorCode::IndexNotFound, message),
            StoreError::ParallelArrays(_) => MongoError::new(ErrorCode::CannotIndexParallelArrays, message),
            StoreError::Engine(_) | StoreError::Corrupt(_) | StoreError::Io(_) => {
                MongoError::new(ErrorCode::InternalError, message)
            }
        }
    }
}
