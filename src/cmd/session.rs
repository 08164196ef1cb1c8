//! Logical sessions and retryable writes at the command level: the session fields every
//! command may carry (`lsid`, `txnNumber`), the session commands (startSession, endSessions,
//! refreshSessions, killSessions, killAllSessions, killAllSessionsByPattern), and the
//! statement bookkeeping that makes a retried write give back its original result.

use super::{Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::server::Shared;
use crate::sessions::{SessionId, SessionState};
use bson::{doc, Bson, Document};
use std::collections::HashMap;

/// Commands that are retryable writes when they carry a txnNumber without autocommit.
pub const RETRYABLE_WRITE_COMMANDS: &[&str] = &["insert", "update", "delete", "findAndModify"];
/// mongod bounds the lsid arrays of endSessions and friends.
const MAX_SESSIONS_PER_COMMAND: usize = 10_000;

/// The session fields of one command.
#[derive(Debug, Default, Clone, Copy)]
pub struct SessionInfo {
    pub lsid: Option<SessionId>,
    /// A retryable write's or a transaction statement's txnNumber.
    pub txn_number: Option<i64>,
    /// `autocommit: false`: a statement of a multi-document transaction.
    pub in_txn: bool,
    /// `startTransaction: true`: the transaction's first statement.
    pub start_transaction: bool,
}

/// The commands a transaction may run (mongod 7.0's allow-list, less the sharding ones).
const TXN_COMMANDS: &[&str] = &[
    "abortTransaction",
    "aggregate",
    "bulkWrite",
    "commitTransaction",
    "create",
    "createIndexes",
    "dbHash",
    "delete",
    "distinct",
    "find",
    "findAndModify",
    "getMore",
    "insert",
    "killCursors",
    "update",
];

fn opt_bool_field(req: &Request, field: &str) -> Result<Option<bool>> {
    match req.body.get(field) {
        None => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(v) => Err(MongoError::type_mismatch(format!(
            "BSON field 'OperationSessionInfo.{field}' is the wrong type '{}', expected type 'bool'",
            super::format::type_name(v)
        ))),
    }
}

fn parse_lsid(v: &Bson) -> Result<SessionId> {
    let Bson::Document(d) = v else {
        return Err(MongoError::type_mismatch(format!(
            "BSON field 'OperationSessionInfo.lsid' is the wrong type '{}', expected type 'object'",
            super::format::type_name(v)
        )));
    };
    match d.get("id") {
        None => Err(MongoError::new(
            ErrorCode::Location40414,
            "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field",
        )),
        Some(id) => SessionId::from_bson(id).ok_or_else(|| {
            MongoError::type_mismatch(format!(
                "BSON field 'OperationSessionInfo.lsid.id' is the wrong type '{}', expected type 'binData'",
                super::format::type_name(id)
            ))
        }),
    }
}

impl SessionInfo {
    /// Reads and checks `lsid` / `txnNumber` as mongod's initializeOperationSessionInfo does.
    pub fn parse(shared: &Shared, command: &str, req: &Request) -> Result<SessionInfo> {
        let lsid = req.body.get("lsid").map(parse_lsid).transpose()?;
        let txn = match req.body.get("txnNumber") {
            None => None,
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(v) => {
                return Err(MongoError::type_mismatch(format!(
                "BSON field 'OperationSessionInfo.txnNumber' is the wrong type '{}', expected type 'long'",
                super::format::type_name(v)
            )))
            }
        };
        let autocommit = opt_bool_field(req, "autocommit")?;
        let start = opt_bool_field(req, "startTransaction")?;
        if start.is_some() && autocommit.is_none() {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "'startTransaction' field requires 'autocommit' field to also be specified",
            ));
        }
        let Some(txn) = txn else {
            if autocommit.is_some() {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "'autocommit' field requires a transaction number to also be specified",
                ));
            }
            return Ok(SessionInfo { lsid, ..SessionInfo::default() });
        };
        if lsid.is_none() {
            return Err(MongoError::new(
                ErrorCode::InvalidOptions,
                "Transaction number requires a session ID to also be specified",
            ));
        }
        if !shared.is_replica_set() {
            return Err(MongoError::new(
                ErrorCode::IllegalOperation,
                "Transaction numbers are only allowed on a replica set member or mongos",
            ));
        }
        if txn < 0 {
            return Err(MongoError::new(ErrorCode::InvalidOptions, "Transaction number cannot be negative"));
        }
        if let Some(autocommit) = autocommit {
            if autocommit {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "Specifying autocommit=true is not allowed.",
                ));
            }
            if start == Some(false) {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "Specifying startTransaction=false is not allowed.",
                ));
            }
            if !TXN_COMMANDS.contains(&command) {
                return Err(MongoError::new(
                    ErrorCode::OperationNotSupportedInTransaction,
                    format!("Cannot run '{command}' in a multi-document transaction."),
                ));
            }
            let admin_ok = matches!(command, "commitTransaction" | "abortTransaction");
            if !admin_ok && matches!(req.db.as_str(), "admin" | "config" | "local") {
                return Err(MongoError::new(
                    ErrorCode::OperationNotSupportedInTransaction,
                    format!("Cannot run command against the '{}' database in a transaction.", req.db),
                ));
            }
            return Ok(SessionInfo {
                lsid,
                txn_number: Some(txn),
                in_txn: true,
                start_transaction: start == Some(true),
            });
        }
        if !RETRYABLE_WRITE_COMMANDS.contains(&command) {
            return Err(MongoError::new(
                ErrorCode::Location50768,
                format!(
                    "txnNumber may only be provided for multi-document transactions and retryable write \
                     commands. autocommit:false was not provided, and {command} is not a retryable write command."
                ),
            ));
        }
        Ok(SessionInfo { lsid, txn_number: Some(txn), ..SessionInfo::default() })
    }
}

/// The executed statements of the retryable write a connection is running: the session's
/// history, checked out for the duration of the command.
pub struct RetryCtx {
    pub lsid: SessionId,
    pub txn_number: i64,
    pub statements: HashMap<i32, Document>,
    /// Statement ids answered from the history in this command (mongod's `retriedStmtIds`).
    pub retried: Vec<i32>,
    /// Statements recorded in this command whose result is not on disk yet (those that
    /// changed many documents, or whose reply was completed after the write).
    pub unsaved: Vec<i32>,
}

/// The statement id of the `i`-th statement of a write command: `stmtIds[i]`, or
/// `stmtId + i`, or `i` (mongod's default).
pub fn stmt_id(req: &Request, i: usize) -> i32 {
    let i32_of = |v: &Bson| match v {
        Bson::Int32(n) => Some(*n),
        Bson::Int64(n) => i32::try_from(*n).ok(),
        _ => None,
    };
    if let Some(Bson::Array(ids)) = req.body.get("stmtIds") {
        if let Some(id) = ids.get(i).and_then(i32_of) {
            return id;
        }
    }
    let base = req.body.get("stmtId").and_then(i32_of).unwrap_or(0);
    base.saturating_add(i32::try_from(i).unwrap_or(i32::MAX))
}

/// The recorded result of a statement already executed in this retryable write.
pub fn retried(ctx: &mut Ctx, stmt: i32) -> Option<Document> {
    let r = ctx.conn.retry.as_mut()?;
    let d = r.statements.get(&stmt)?.clone();
    r.retried.push(stmt);
    Some(d)
}

/// Records a statement's result (no-op outside a retryable write); it reaches the disk when
/// the command ends.
pub fn record(ctx: &mut Ctx, stmt: i32, result: Document) {
    if let Some(r) = ctx.conn.retry.as_mut() {
        r.statements.insert(stmt, result);
        r.unsaved.push(stmt);
    }
}

/// Records a statement whose result its write already stored through `slot`.
pub fn record_saved(ctx: &mut Ctx, stmt: i32, result: Document) {
    if let Some(r) = ctx.conn.retry.as_mut() {
        r.statements.insert(stmt, result);
    }
}

/// Where statement `stmt`'s write stores its result, inside a retryable write.
pub fn slot(ctx: &Ctx, stmt: i32) -> Option<crate::retry_history::Slot> {
    let r = ctx.conn.retry.as_ref()?;
    Some(crate::retry_history::Slot { lsid: r.lsid, txn_number: r.txn_number, stmt })
}

/// Writes the results recorded by `record` to the history table, in one transaction.
fn save_unsaved(ctx: &mut Ctx, req: &Request, r: &RetryCtx) -> Result<()> {
    if r.unsaved.is_empty() {
        return Ok(());
    }
    let durable = super::args::journal_required(ctx, req).unwrap_or(false);
    ctx.store.write(durable, |t| {
        for stmt in &r.unsaved {
            if let Some(result) = r.statements.get(stmt) {
                crate::retry_history::put(t.s, r.lsid, r.txn_number, *stmt, result)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Called before each statement a retryable write executes (not for those answered from
/// history): the `onPrimaryTransactionalWrite` fail point may fail the statement or ask for
/// the connection to be closed once the command is done.
pub fn before_statement(ctx: &mut Ctx) -> Result<()> {
    if ctx.conn.retry.is_none() {
        return Ok(());
    }
    let Some(fault) = super::failpoint::on_retryable_statement(ctx.shared) else {
        return Ok(());
    };
    if fault.close {
        ctx.conn.close_requested = true;
    }
    match fault.fail_code {
        Some(code) => Err(MongoError::new(
            ErrorCode::from_code(code).unwrap_or(ErrorCode::InternalError),
            "Failing write via 'onPrimaryTransactionalWrite' failpoint",
        )),
        None => Ok(()),
    }
}

/// Adds `retriedStmtIds` to a write reply when statements were answered from history.
pub fn append_retried(ctx: &Ctx, reply: &mut Document) {
    if let Some(r) = ctx.conn.retry.as_ref() {
        if !r.retried.is_empty() {
            reply.insert("retriedStmtIds", r.retried.clone());
        }
    }
}

/// Runs a retryable write with its session checked out: a txnNumber below the session's
/// highest is 225 TransactionTooOld, a higher one starts a new history, an equal one is a
/// retry whose executed statements are answered from the history.
pub fn run_retryable(
    ctx: &mut Ctx,
    req: &Request,
    lsid: SessionId,
    txn: i64,
    handler: super::registry::Handler,
) -> Result<Document> {
    let state = ctx.shared.sessions.state(lsid);
    let mut st = state.lock();
    match st.txn_number {
        Some(highest) if txn < highest => {
            return Err(MongoError::new(
                ErrorCode::TransactionTooOld,
                format!(
                    "Retryable write with txnNumber {txn} is prohibited on session {lsid} because a newer \
                     retryable write with txnNumber {highest} has already started on this session."
                ),
            ))
        }
        Some(highest) if txn == highest => {}
        _ => {
            st.txn_number = Some(txn);
            st.statements.clear();
            // A newer txnNumber ends the session's transaction (rolled back if still open).
            st.txn = crate::sessions::Transaction::None;
        }
    }
    if !matches!(st.txn, crate::sessions::Transaction::None) {
        return Err(MongoError::new(
            ErrorCode::Location50911,
            format!(
                "Cannot start a retryable write with txnNumber {txn} on session {lsid} because a transaction \
                 with the same number exists."
            ),
        ));
    }
    let st: &mut SessionState = &mut st;
    ctx.conn.retry = Some(RetryCtx {
        lsid,
        txn_number: txn,
        statements: std::mem::take(&mut st.statements),
        retried: Vec::new(),
        unsaved: Vec::new(),
    });
    let mut result = handler(ctx, req);
    if let Some(r) = ctx.conn.retry.take() {
        let saved = save_unsaved(ctx, req, &r);
        st.statements = r.statements;
        if let (Err(e), true) = (saved, result.is_ok()) {
            result = Err(e);
        }
    }
    result
}

/// The lsids of endSessions / refreshSessions / killSessions: an array of `{id: UUID}`.
fn lsid_array(req: &Request) -> Result<Vec<SessionId>> {
    let arr = match req.body.get(&req.name) {
        Some(Bson::Array(a)) => a,
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field '{}.{}' is the wrong type '{}', expected type 'array'",
                req.name,
                req.name,
                super::format::type_name(v)
            )))
        }
        None => return Err(MongoError::bad_value(format!("{} requires an array", req.name))),
    };
    if arr.len() > MAX_SESSIONS_PER_COMMAND {
        return Err(MongoError::bad_value(format!(
            "{} may not contain more than {MAX_SESSIONS_PER_COMMAND} sessions",
            req.name
        )));
    }
    arr.iter().map(parse_lsid).collect()
}

pub fn start_session(ctx: &mut Ctx, _req: &Request) -> Result<Document> {
    let Some(id) = ctx.shared.sessions.start(&ctx.conn.auth.users) else {
        return Err(MongoError::new(
            ErrorCode::TooManyLogicalSessions,
            "Unable to add session into the cache because the number of active sessions is too high",
        ));
    };
    Ok(doc! {
        "id": id.to_lsid(),
        "timeoutMinutes": super::handshake::SESSION_TIMEOUT_MINUTES,
    })
}

/// Ends sessions: their cursors are killed and their history forgotten. Unknown ids are
/// ignored, as mongod does.
pub fn end_sessions(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let ids = own_sessions(ctx, lsid_array(req)?, false)?;
    ctx.shared.sessions.abort_transactions(&ids);
    for id in &ids {
        ctx.shared.sessions.end(*id);
    }
    ctx.shared.cursors.kill_sessions(&ids);
    Ok(Document::new())
}

pub fn refresh_sessions(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    for id in lsid_array(req)? {
        ctx.shared.sessions.touch(id, &ctx.conn.auth.users);
    }
    Ok(Document::new())
}

/// Kills the sessions' cursors and aborts their transactions (their operations finish: each
/// runs on its own connection thread). The session itself and its retryable-write history
/// stay, as on mongod.
pub fn kill_sessions(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let ids = own_sessions(ctx, lsid_array(req)?, true)?;
    ctx.shared.sessions.abort_transactions(&ids);
    ctx.shared.cursors.kill_sessions(&ids);
    Ok(Document::new())
}

/// With `--auth`, the sessions of `ids` this connection's users created (mongod tells
/// sessions apart by their user, so another user's lsid names a different session); with
/// `any_if_allowed`, every one for a user holding `killAnySession`.
fn own_sessions(ctx: &mut Ctx, ids: Vec<SessionId>, any_if_allowed: bool) -> Result<Vec<SessionId>> {
    if !ctx.shared.config.auth {
        return Ok(ids);
    }
    if any_if_allowed {
        let r = crate::auth::resolved(ctx.shared, ctx.store, ctx.conn)?;
        if r.privileges.allows(&crate::auth::roles::Resource::Cluster, "killAnySession") {
            return Ok(ids);
        }
    }
    let (shared, conn) = (ctx.shared, &*ctx.conn);
    let mine = shared.sessions.owned(|o| crate::auth::coauthorized(shared, conn, o));
    Ok(ids.into_iter().filter(|id| mine.contains(id)).collect())
}

/// Aborts the transactions and kills the cursors of these sessions.
fn kill(ctx: &mut Ctx, ids: &[SessionId]) {
    ctx.shared.sessions.abort_transactions(ids);
    ctx.shared.cursors.kill_sessions(ids);
}

/// `[{user, db}, ...]` of killAllSessions and the `users` pattern.
fn user_names(v: &Bson, what: &str) -> Result<Vec<crate::auth::users::Name>> {
    let Bson::Array(a) = v else {
        return Err(MongoError::type_mismatch(format!(
            "BSON field '{what}' is the wrong type '{}', expected type 'array'",
            super::format::type_name(v)
        )));
    };
    a.iter().map(|u| crate::auth::users::parse_name(u, "user", "")).collect()
}

/// `killAllSessions: [{user, db}, ...]`; an empty array kills every session, a list the
/// sessions created by those users.
pub fn kill_all_sessions(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let Some(v) = req.body.get("killAllSessions") else {
        return Err(MongoError::bad_value("killAllSessions requires an array"));
    };
    let users = user_names(v, "KillAllSessionsCmd.killAllSessions")?;
    let ids = if users.is_empty() {
        ctx.shared.sessions.ids()
    } else {
        ctx.shared.sessions.owned(|o| o.iter().any(|u| users.contains(u)))
    };
    kill(ctx, &ids);
    Ok(Document::new())
}

/// `killAllSessionsByPattern: [{lsid}, {uid}, {users}, {roles}, {}]`; an empty array or an
/// empty pattern matches every session. `uid` is the SHA-256 digest of the creating user's
/// name (of "" for sessions created without one), `users` the creating users, `roles` users
/// holding one of the roles (directly or inherited).
pub fn kill_all_sessions_by_pattern(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let patterns = match req.body.get("killAllSessionsByPattern") {
        Some(Bson::Array(a)) => a,
        Some(v) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'KillAllSessionsByPatternCmd.killAllSessionsByPattern' is the wrong type '{}', \
                 expected type 'array'",
                super::format::type_name(v)
            )))
        }
        None => return Err(MongoError::bad_value("killAllSessionsByPattern requires an array")),
    };
    if patterns.is_empty() {
        let ids = ctx.shared.sessions.ids();
        kill(ctx, &ids);
        return Ok(Document::new());
    }
    let mut ids = Vec::new();
    for p in patterns {
        let Bson::Document(p) = p else {
            return Err(MongoError::type_mismatch(
                "BSON field 'KillAllSessionsByPatternCmd.killAllSessionsByPattern' element is the wrong type, \
                 expected type 'object'",
            ));
        };
        if let Some(k) = p.keys().find(|k| !["lsid", "uid", "users", "roles"].contains(&k.as_str())) {
            return Err(MongoError::new(
                ErrorCode::Location40415,
                format!("BSON field 'KillAllSessionsByPattern.{k}' is an unknown field."),
            ));
        }
        let mut matched = match p.get("lsid") {
            Some(l) => vec![parse_lsid(l)?],
            None => ctx.shared.sessions.ids(),
        };
        if let Some(v) = p.get("uid") {
            let Bson::Binary(b) = v else {
                return Err(MongoError::type_mismatch(
                    "BSON field 'KillAllSessionsByPattern.uid' is the wrong type, expected type 'binData'",
                ));
            };
            let owned = ctx.shared.sessions.owned(|o| crate::auth::user_digest(o) == b.bytes.as_slice());
            matched.retain(|id| owned.contains(id));
        }
        if let Some(v) = p.get("users") {
            let users = user_names(v, "KillAllSessionsByPattern.users")?;
            let owned = ctx.shared.sessions.owned(|o| o.iter().any(|u| users.contains(u)));
            matched.retain(|id| owned.contains(id));
        }
        if let Some(v) = p.get("roles") {
            let roles = crate::auth::users::parse_roles(v, "roles", "")?;
            let owned = sessions_of_users_with_roles(ctx, &roles)?;
            matched.retain(|id| owned.contains(id));
        }
        ids.extend(matched);
    }
    ids.sort_by_key(|id| id.0);
    ids.dedup();
    kill(ctx, &ids);
    Ok(Document::new())
}

/// The sessions created by users that hold one of `roles` (directly or through inheritance).
fn sessions_of_users_with_roles(ctx: &mut Ctx, roles: &[crate::auth::users::Name]) -> Result<Vec<SessionId>> {
    use crate::auth::users;
    let mut holders = Vec::new();
    for d in users::all(ctx.store, users::USERS)? {
        let (Ok(user), Ok(db)) = (d.get_str("user"), d.get_str("db")) else { continue };
        let reach = crate::auth::resolve_roles(ctx.store, &users::roles_of(&d))?;
        if roles.iter().any(|r| reach.roles.contains(r)) {
            holders.push(users::Name::new(user, db));
        }
    }
    Ok(ctx.shared.sessions.owned(|o| o.iter().any(|u| holders.contains(u))))
}
