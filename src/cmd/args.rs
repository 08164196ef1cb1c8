//! Typed access to command fields with mongod's error messages and codes.

use super::format::type_name;
use super::{Ctx, Request};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{Bson, Document};

fn wrong_type(req: &Request, field: &str, v: &Bson, expected: &str) -> MongoError {
    MongoError::type_mismatch(format!(
        "BSON field '{}.{field}' is the wrong type '{}', expected type{expected}",
        req.name,
        type_name(v)
    ))
}

/// Validates a database name as mongod does.
pub fn check_db_name(db: &str) -> Result<()> {
    if db.is_empty()
        || db.len() >= 64
        || db.chars().any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
    {
        return Err(MongoError::new(ErrorCode::InvalidNamespace, format!("Invalid database name: '{db}'")));
    }
    Ok(())
}

/// Validates a collection name as mongod does.
pub fn check_coll_name(db: &str, coll: &str) -> Result<()> {
    if coll.is_empty() || coll.contains('\0') || coll.starts_with('.') || coll.contains('$') {
        return Err(MongoError::new(
            ErrorCode::InvalidNamespace,
            format!("Invalid namespace specified '{db}.{coll}'"),
        ));
    }
    Ok(())
}

/// The collection a command names in its first field (`{find: "c"}`).
pub fn collection(req: &Request) -> Result<String> {
    match req.body.get(&req.name) {
        Some(Bson::String(s)) => {
            check_db_name(&req.db)?;
            check_coll_name(&req.db, s)?;
            Ok(s.clone())
        }
        Some(other) => Err(MongoError::new(
            ErrorCode::InvalidNamespace,
            format!("collection name has invalid type {}", type_name(other)),
        )),
        None => Err(MongoError::new(ErrorCode::InvalidNamespace, "Invalid namespace")),
    }
}

pub fn opt_bool(req: &Request, field: &str) -> Result<Option<bool>> {
    match req.body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(Bson::Int32(n)) => Ok(Some(*n != 0)),
        Some(Bson::Int64(n)) => Ok(Some(*n != 0)),
        Some(Bson::Double(n)) => Ok(Some(*n != 0.0)),
        Some(v) => Err(wrong_type(req, field, v, " 'bool'")),
    }
}

/// A whole number given as int, long or double (doubles are truncated, as mongod does).
pub fn opt_i64(req: &Request, field: &str) -> Result<Option<i64>> {
    match req.body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(n)) => Ok(Some(*n as i64)),
        Some(Bson::Int64(n)) => Ok(Some(*n)),
        Some(Bson::Double(n)) if n.is_finite() => Ok(Some(*n as i64)),
        Some(v) => Err(wrong_type(req, field, v, "s '[long, int, decimal, double]'")),
    }
}

pub fn opt_doc<'a>(req: &'a Request, field: &str) -> Result<Option<&'a Document>> {
    match req.body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(v) => Err(wrong_type(req, field, v, " 'object'")),
    }
}

pub fn opt_str<'a>(req: &'a Request, field: &str) -> Result<Option<&'a str>> {
    match req.body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(req, field, v, " 'string'")),
    }
}

/// Whether the write must be journaled before it is acknowledged: `j: true`, or
/// `w: "majority"` (which on a single node means the same), or the replica set's implicit
/// default of majority when the client gave no write concern.
pub fn journal_required(ctx: &Ctx, req: &Request) -> Result<bool> {
    let wc = match req.body.get("writeConcern") {
        None | Some(Bson::Null) => return Ok(ctx.shared.is_replica_set()),
        Some(Bson::Document(d)) => d,
        Some(v) => return Err(wrong_type(req, "writeConcern", v, " 'object'")),
    };
    let j = match wc.get("j") {
        Some(Bson::Boolean(b)) => Some(*b),
        Some(Bson::Int32(n)) => Some(*n != 0),
        Some(Bson::Int64(n)) => Some(*n != 0),
        Some(Bson::Double(n)) => Some(*n != 0.0),
        _ => None,
    };
    let majority = matches!(wc.get("w"), Some(Bson::String(s)) if s == "majority");
    let w_missing = wc.get("w").is_none();
    Ok(match j {
        Some(j) => j,
        None => majority || (w_missing && ctx.shared.is_replica_set()),
    })
}

/// The `writeConcernError` a single node reports for a concern it cannot satisfy: `w` above
/// one (there is no second data-bearing node) or an unknown tag set name.
pub fn write_concern_error(shared: &crate::server::Shared, body: &Document) -> Option<Document> {
    let Some(Bson::Document(wc)) = body.get("writeConcern") else {
        return None;
    };
    let (code, msg) = match wc.get("w") {
        Some(Bson::Int32(n)) if *n > 1 => {
            (ErrorCode::UnsatisfiableWriteConcern, "Not enough data-bearing nodes".to_string())
        }
        Some(Bson::Int64(n)) if *n > 1 => {
            (ErrorCode::UnsatisfiableWriteConcern, "Not enough data-bearing nodes".to_string())
        }
        Some(Bson::Double(n)) if *n > 1.0 => {
            (ErrorCode::UnsatisfiableWriteConcern, "Not enough data-bearing nodes".to_string())
        }
        Some(Bson::String(s)) if s != "majority" && shared.is_replica_set() => (
            ErrorCode::UnknownReplWriteConcern,
            format!("No write concern mode named '{s}' found in replica set configuration"),
        ),
        _ => return None,
    };
    Some(
        bson::doc! { "code": code.code(), "codeName": code.name(), "errmsg": msg, "errInfo": { "writeConcern": wc.clone() } },
    )
}
