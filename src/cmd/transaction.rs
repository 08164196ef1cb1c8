//! Multi-document transactions. A transaction belongs to a logical session: its statements
//! may arrive on any connection, so the open transaction owns a WiredTiger session of its own
//! (kept in the session's state) and each statement runs on it, one at a time (the session's
//! state stays locked — "checked out" — while a statement runs). Everything a transaction
//! writes (records, index entries, oplog entries) is in that one WiredTiger transaction:
//! commit makes it visible at once, abort (or the lifetime limit) rolls all of it back.

use super::registry::CommandSpec;
use super::{args, Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::sessions::{SessionId, SessionState, Transaction};
use crate::store::StoreError;
use bson::{doc, Bson, Document};
use std::time::Instant;

pub const TRANSIENT: &str = "TransientTransactionError";
pub const UNKNOWN_COMMIT: &str = "UnknownTransactionCommitResult";

/// Codes mongod labels `TransientTransactionError` inside a transaction.
pub fn is_transient(code: i32) -> bool {
    // WriteConflict, NoSuchTransaction, LockTimeout, SnapshotUnavailable, SnapshotTooOld,
    // ExceededTimeLimit (lock acquisition), PreparedTransactionInProgress.
    matches!(code, 112 | 251 | 24 | 246 | 239 | 262 | 267)
}

/// Codes that leave a commit's outcome unknown: the driver retries the commit.
pub fn is_unknown_commit(code: i32) -> bool {
    crate::error::is_retryable_write_code(code) || matches!(code, 50 | 64 | 79 | 100)
}

/// commitTransaction / abortTransaction without `autocommit: false`.
pub fn outside_transaction(_: &mut Ctx, req: &Request) -> Result<Document> {
    Err(MongoError::new(ErrorCode::InvalidOptions, format!("{} must be run within a transaction", req.name)))
}

fn too_old(txn: i64, lsid: SessionId, highest: i64) -> MongoError {
    MongoError::new(
        ErrorCode::TransactionTooOld,
        format!(
            "Cannot start transaction {txn} on session {lsid} because a newer transaction with txnNumber \
             {highest} has already started on this session."
        ),
    )
}

fn no_such(msg: String) -> MongoError {
    let mut e = MongoError::new(ErrorCode::NoSuchTransaction, msg);
    e.labels.push(TRANSIENT.to_string());
    e
}

fn committed(txn: i64) -> MongoError {
    MongoError::new(
        ErrorCode::TransactionCommitted,
        format!("Transaction with {{ txnNumber: {txn} }} has been committed."),
    )
}

/// The options only a transaction's first statement may carry, checked as mongod does.
fn check_statement_options(req: &Request, first: bool, name: &str) -> Result<()> {
    if let Some(Bson::Document(rc)) = req.body.get("readConcern") {
        if !first && !rc.is_empty() {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "Only the first command in a transaction may specify a readConcern",
            ));
        }
        if let Some(Bson::String(level)) = rc.get("level") {
            if !matches!(level.as_str(), "local" | "majority" | "snapshot") {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "The readConcern level must be either 'snapshot' (recommended), 'majority' or 'local' \
                     for transactions.",
                ));
            }
        }
    }
    if req.body.contains_key("writeConcern") && !matches!(name, "commitTransaction" | "abortTransaction") {
        return Err(MongoError::new(
            ErrorCode::InvalidOptions,
            format!("Command does not support writeConcern in a transaction: {name}"),
        ));
    }
    Ok(())
}

/// Runs one command of a transaction (`autocommit: false`).
pub fn run(
    ctx: &mut Ctx,
    req: &Request,
    spec: &CommandSpec,
    lsid: SessionId,
    txn: i64,
    start: bool,
) -> Result<Document> {
    let state = ctx.shared.sessions.state(lsid);
    let mut guard = state.lock();
    let st: &mut SessionState = &mut guard;
    let name = spec.name;
    let is_end = matches!(name, "commitTransaction" | "abortTransaction");
    match st.txn_number {
        Some(highest) if txn < highest => return Err(too_old(txn, lsid, highest)),
        Some(highest) if txn == highest => {
            if start {
                let phase = match st.txn {
                    Transaction::InProgress { .. } => "in progress",
                    Transaction::Committed => "committed",
                    Transaction::Aborted => "aborted",
                    Transaction::None => "a retryable write",
                };
                return Err(MongoError::new(
                    ErrorCode::ConflictingOperationInProgress,
                    format!(
                        "Cannot start a transaction at given transaction number {txn} on session {lsid} \
                         using txnRetryCounter 0 because it is already {phase}."
                    ),
                ));
            }
            check_statement_options(req, false, name)?;
            match &st.txn {
                Transaction::InProgress { .. } => {}
                Transaction::Committed => {
                    return match name {
                        // A retried commit of a committed transaction succeeds.
                        "commitTransaction" => {
                            if args::journal_required(ctx, req)? {
                                ctx.store.flush_journal()?;
                            }
                            Ok(Document::new())
                        }
                        _ => Err(committed(txn)),
                    };
                }
                Transaction::Aborted => {
                    return Err(no_such(format!("Transaction with {{ txnNumber: {txn} }} has been aborted.")))
                }
                Transaction::None => {
                    return Err(no_such(format!(
                        "Given transaction number {txn} does not match any in-progress transactions. The \
                         active transaction number is {highest}"
                    )))
                }
            }
        }
        highest => {
            if !start {
                return Err(no_such(format!(
                    "Given transaction number {txn} does not match any in-progress transactions. The active \
                     transaction number is {}",
                    highest.unwrap_or(-1)
                )));
            }
            check_statement_options(req, true, name)?;
            if is_end {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    format!("{name} cannot be the first statement of a transaction"),
                ));
            }
            let read_ts = match snapshot_timestamp(ctx, req) {
                Ok(ts) => ts,
                Err(mut e) => {
                    // The transaction started and failed at once (its number is used up).
                    st.txn_number = Some(txn);
                    st.statements.clear();
                    st.txn = Transaction::Aborted;
                    if is_transient(e.code.code()) {
                        e.labels.push(TRANSIENT.to_string());
                    }
                    return Err(e);
                }
            };
            let mut store = Box::new(ctx.shared.store.session()?);
            store.begin_multi(doc! { "lsid": lsid.to_lsid(), "txnNumber": txn }, read_ts)?;
            st.txn_number = Some(txn);
            st.statements.clear();
            // Replacing an open transaction drops (rolls back) it.
            st.txn = Transaction::InProgress { store, started: Instant::now() };
        }
    }
    match name {
        "commitTransaction" => commit(ctx, req, st),
        "abortTransaction" => {
            st.txn.abort();
            Ok(Document::new())
        }
        _ => statement(ctx, req, spec, st),
    }
}

/// A transaction with `readConcern: {level: "snapshot"}` reads as of its `atClusterTime`, or
/// else as of the all-committed point when it starts (as mongod); other levels read from a
/// snapshot taken at the first statement's first read.
fn snapshot_timestamp(ctx: &Ctx, req: &Request) -> Result<Option<u64>> {
    let Some(Bson::Document(rc)) = req.body.get("readConcern") else { return Ok(None) };
    if rc.get_str("level") != Ok("snapshot") {
        return Ok(None);
    }
    Ok(ctx.shared.store.snapshot_timestamp(super::at_cluster_time(rc)?)?)
}

fn commit(ctx: &mut Ctx, req: &Request, st: &mut SessionState) -> Result<Document> {
    let durable = args::journal_required(ctx, req)?;
    let Transaction::InProgress { mut store, .. } = std::mem::replace(&mut st.txn, Transaction::Committed)
    else {
        return Ok(Document::new());
    };
    match store.commit_multi(durable) {
        Ok(()) => Ok(Document::new()),
        Err(e) => {
            st.txn = Transaction::Aborted;
            let conflict = matches!(e, StoreError::WriteConflict);
            let mut err = MongoError::from(e);
            if conflict {
                err.labels.push(TRANSIENT.to_string());
            }
            Err(err)
        }
    }
}

/// A statement: runs on the transaction's storage session; any failure aborts the transaction
/// (mongod fails the whole batch of a write inside a transaction).
fn statement(ctx: &mut Ctx, req: &Request, spec: &CommandSpec, st: &mut SessionState) -> Result<Document> {
    let Transaction::InProgress { store, .. } = &mut st.txn else {
        return Err(MongoError::internal("transaction is not in progress"));
    };
    let result = check_index_creation(ctx, req, spec.name).and_then(|_| {
        // The statement sees the collections its transaction created.
        let _view = crate::store::catalog::enter_view(store.multi_id());
        let mut tctx = Ctx { shared: ctx.shared, store, conn: &mut *ctx.conn };
        (spec.handler)(&mut tctx, req)
    });
    let result = result.and_then(|reply| match first_write_error(&reply) {
        Some(e) => Err(e),
        None => Ok(reply),
    });
    match result {
        Ok(reply) => Ok(reply),
        Err(mut e) => {
            st.txn.abort();
            if is_transient(e.code.code()) && !e.labels.iter().any(|l| l == TRANSIENT) {
                e.labels.push(TRANSIENT.to_string());
            }
            Err(e)
        }
    }
}

/// Indexes may be created in a transaction only on a collection it created itself.
fn check_index_creation(ctx: &Ctx, req: &Request, name: &str) -> Result<()> {
    if name != "createIndexes" {
        return Ok(());
    }
    let Some(Bson::String(coll)) = req.body.get("createIndexes") else { return Ok(()) };
    let ns = format!("{}.{coll}", req.db);
    if ctx.shared.store.catalog.get_committed(&ns).is_some() {
        return Err(MongoError::new(
            ErrorCode::OperationNotSupportedInTransaction,
            format!("Cannot create new indexes on existing collection {ns} in a multi-document transaction."),
        ));
    }
    Ok(())
}

/// A write reply's first write error, as the command error mongod gives in a transaction.
fn first_write_error(reply: &Document) -> Option<MongoError> {
    let Ok(errors) = reply.get_array("writeErrors") else { return None };
    let Some(Bson::Document(first)) = errors.first() else { return None };
    let code = match first.get("code") {
        Some(Bson::Int32(c)) => *c,
        Some(Bson::Int64(c)) => i32::try_from(*c).unwrap_or(1),
        _ => 1,
    };
    let msg = first.get_str("errmsg").unwrap_or_default().to_string();
    let mut info = Document::new();
    for (k, v) in first {
        if !matches!(k.as_str(), "index" | "code" | "errmsg") {
            info.insert(k.clone(), v.clone());
        }
    }
    let e = MongoError::new(ErrorCode::from_code(code).unwrap_or(ErrorCode::InternalError), msg);
    Some(if info.is_empty() { e } else { e.with_info(info) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_become_the_command_error() {
        let reply = doc! { "n": 0, "writeErrors": [{ "index": 0, "code": 11000, "errmsg": "dup", "keyValue": {"a": 1} }] };
        let e = first_write_error(&reply).unwrap();
        assert_eq!(e.code, ErrorCode::DuplicateKey);
        assert_eq!(e.to_reply().get_document("keyValue").unwrap(), &doc! {"a": 1});
        assert!(first_write_error(&doc! {"n": 1}).is_none());
        assert!(is_transient(112) && is_transient(251) && !is_transient(11000));
    }
}
