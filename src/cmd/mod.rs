//! Commands: one registry table (`registry.rs`), one file per command family.
//!
//! Each handler parses the request body (with mongod's validation errors, in mongod's order)
//! and executes it. Cross-cutting work — lookup, generic reply fields (`ok`, `$clusterTime`,
//! `operationTime`), error shape — happens once, in `dispatch`.

pub mod admin;
pub mod args;
pub mod catalog;
pub mod count;
pub mod cursor;
pub mod find;
pub mod find_and_modify;
pub mod format;
pub mod handshake;
pub mod index;
pub mod registry;
pub mod write;

use crate::error::{ErrorCode, MongoError, Result};
use crate::server::Shared;
use crate::store::StoreSession;
use bson::{doc, Bson, Document};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one connection remembers between commands.
pub struct ConnState {
    pub id: i64,
    pub peer: Option<SocketAddr>,
    pub client_metadata: Option<Document>,
}

impl ConnState {
    pub fn new(id: i64, peer: Option<SocketAddr>) -> Self {
        ConnState { id, peer, client_metadata: None }
    }
}

/// One command as received: its database, name, body and OP_MSG document sequences.
pub struct Request {
    pub db: String,
    pub name: String,
    pub body: Document,
    pub sequences: Vec<(String, Vec<Document>)>,
}

impl Request {
    pub fn from_op_msg(body: Document, sequences: Vec<(String, Vec<Document>)>) -> Result<Request> {
        let name = body.keys().next().cloned().unwrap_or_default();
        let db = match body.get("$db") {
            Some(Bson::String(db)) => db.clone(),
            Some(_) => {
                return Err(MongoError::new(
                    ErrorCode::TypeMismatch,
                    "BSON field '$db' is the wrong type, expected type 'string'",
                ))
            }
            None => {
                return Err(MongoError::new(
                    ErrorCode::Location40571,
                    "OP_MSG requests require a $db argument",
                ))
            }
        };
        Ok(Request { db, name, body, sequences })
    }

    /// The documents of an array field, given either in the body or as a document sequence.
    pub fn documents(&self, field: &str) -> Result<Vec<Document>> {
        let from_seq = self.sequences.iter().find(|(id, _)| id == field);
        match (self.body.get(field), from_seq) {
            (Some(_), Some(_)) => {
                Err(MongoError::bad_value(format!("Duplicate field {field} in body and document sequence")))
            }
            (None, Some((_, docs))) => Ok(docs.clone()),
            (Some(Bson::Array(a)), None) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Bson::Document(d) => Ok(d.clone()),
                    other => Err(MongoError::type_mismatch(format!(
                        "BSON field '{}.{field}.{i}' is the wrong type '{}', expected type 'object'",
                        self.name,
                        format::type_name(other)
                    ))),
                })
                .collect(),
            (Some(other), None) => Err(MongoError::type_mismatch(format!(
                "BSON field '{}.{field}' is the wrong type '{}', expected type 'array'",
                self.name,
                format::type_name(other)
            ))),
            (None, None) => Err(MongoError::new(
                ErrorCode::Location40414,
                format!("BSON field '{}.{field}' is missing but a required field", self.name),
            )),
        }
    }
}

/// What a handler gets: the shared server state, this thread's storage session and the
/// connection's state.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub store: &'a mut StoreSession,
    pub conn: &'a mut ConnState,
}

/// Runs one command and returns the complete reply document.
pub fn dispatch(
    shared: &Arc<Shared>,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: Request,
) -> Document {
    shared.stats.command.fetch_add(1, Ordering::Relaxed);
    let Some(spec) = registry::lookup(&req.name) else {
        let err = MongoError::new(ErrorCode::CommandNotFound, format!("no such command: '{}'", req.name));
        return error_reply(shared, &err);
    };
    // Until transactions land, refuse them rather than apply their writes outside one.
    if req.body.contains_key("autocommit") || req.body.contains_key("startTransaction") {
        let err = MongoError::new(
            ErrorCode::IllegalOperation,
            "multi-document transactions are not supported by this server yet",
        );
        return error_reply(shared, &err);
    }
    let mut ctx = Ctx { shared, store, conn };
    match (spec.handler)(&mut ctx, &req) {
        Ok(mut reply) => {
            if WRITE_CONCERN_COMMANDS.contains(&spec.name) {
                if let Some(wce) = args::write_concern_error(shared, &req.body) {
                    reply.insert("writeConcernError", wce);
                }
            }
            finish(shared, reply)
        }
        Err(e) => error_reply(shared, &e),
    }
}

/// Commands that take a writeConcern; after they run, a concern one node cannot satisfy is
/// reported as mongod reports it (the write itself stands).
const WRITE_CONCERN_COMMANDS: &[&str] = &[
    "aggregate",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "renameCollection",
    "collMod",
];

fn finish(shared: &Shared, mut reply: Document) -> Document {
    if !reply.contains_key("ok") {
        reply.insert("ok", 1.0);
    }
    append_cluster_time(shared, &mut reply);
    reply
}

pub fn error_reply(shared: &Shared, err: &MongoError) -> Document {
    let mut reply = err.to_reply();
    append_cluster_time(shared, &mut reply);
    reply
}

/// Replica-set members gossip `$clusterTime` and report `operationTime` on every reply.
fn append_cluster_time(shared: &Shared, reply: &mut Document) {
    if !shared.is_replica_set() {
        return;
    }
    let ts = shared.store.clock.last();
    reply.insert(
        "$clusterTime",
        doc! {
            "clusterTime": ts,
            "signature": {
                "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                "keyId": 0i64,
            },
        },
    );
    reply.insert("operationTime", ts);
}
