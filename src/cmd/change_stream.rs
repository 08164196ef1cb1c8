//! `aggregate` with a leading `$changeStream`: parse the stream's options and open a
//! tailable, awaitData cursor over the oplog (`oplog::stream`).

use super::cursor::{cursor_reply, DEFAULT_FIRST_BATCH};
use super::{Ctx, Request};
use crate::cursors::CursorSource;
use crate::error::{ErrorCode, MongoError, Result};
use crate::oplog::stream::{self, BeforeChange, ChangeStream, FullDocument, Scope};
use bson::{Bson, Document};

const OPTIONS: &[&str] = &[
    "fullDocument",
    "fullDocumentBeforeChange",
    "resumeAfter",
    "startAfter",
    "startAtOperationTime",
    "allChangesForCluster",
    "showExpandedEvents",
    "allowToRunOnConfigDB",
    "allowToRunOnSystemNS",
];

/// The stages mongod allows after `$changeStream`: each maps one event to at most one.
const ALLOWED_AFTER: &[&str] =
    &["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact"];

pub fn is_change_stream(stages: &[Document]) -> bool {
    stages.iter().any(|s| s.contains_key("$changeStream"))
}

/// Opens a change stream; `coll` is None for `aggregate: 1` (database or cluster streams).
pub fn aggregate(
    ctx: &mut Ctx,
    req: &Request,
    coll: Option<String>,
    stages: &[Document],
    batch_size: Option<usize>,
) -> Result<Document> {
    if stages.iter().skip(1).any(|s| s.contains_key("$changeStream")) {
        return Err(MongoError::new(
            ErrorCode::Location40602,
            "$changeStream is only valid as the first stage in a pipeline.",
        ));
    }
    let spec = match stages.first().and_then(|s| s.get("$changeStream")) {
        Some(Bson::Document(d)) => d.clone(),
        _ => return Err(MongoError::type_mismatch("the $changeStream stage takes an object")),
    };
    if let Some(k) = spec.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
        return Err(MongoError::new(
            ErrorCode::Location40415,
            format!("BSON field '$changeStream.{k}' is an unknown field."),
        ));
    }
    let full_document = match spec.get("fullDocument") {
        None | Some(Bson::Null) => FullDocument::Default,
        Some(Bson::String(s)) => match s.as_str() {
            "default" => FullDocument::Default,
            "updateLookup" => FullDocument::UpdateLookup,
            "whenAvailable" => FullDocument::WhenAvailable,
            "required" => FullDocument::Required,
            other => {
                return Err(MongoError::bad_value(format!(
                    "Enumeration value '{other}' for field '$changeStream.fullDocument' is not a valid value."
                )))
            }
        },
        Some(_) => return Err(MongoError::type_mismatch("'fullDocument' must be a string")),
    };
    let before_change = match spec.get("fullDocumentBeforeChange") {
        None | Some(Bson::Null) => BeforeChange::Off,
        Some(Bson::String(s)) => match s.as_str() {
            "off" => BeforeChange::Off,
            "whenAvailable" => BeforeChange::WhenAvailable,
            "required" => BeforeChange::Required,
            other => {
                return Err(MongoError::bad_value(format!(
                    "Enumeration value '{other}' for field '$changeStream.fullDocumentBeforeChange' is not a valid value."
                )))
            }
        },
        Some(_) => return Err(MongoError::type_mismatch("'fullDocumentBeforeChange' must be a string")),
    };
    let flag = |k: &str| matches!(spec.get(k), Some(Bson::Boolean(true)));
    let scope = match coll {
        Some(c) => Scope::Collection { db: req.db.clone(), coll: c },
        None if flag("allChangesForCluster") => {
            if req.db != "admin" {
                return Err(MongoError::new(
                    ErrorCode::InvalidNamespace,
                    "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database",
                ));
            }
            Scope::Cluster
        }
        None => {
            if matches!(req.db.as_str(), "admin" | "config" | "local") {
                return Err(MongoError::new(
                    ErrorCode::InvalidNamespace,
                    format!("$changeStream may not be opened on the internal {} database", req.db),
                ));
            }
            Scope::Database(req.db.clone())
        }
    };
    let token_of = |k: &str| -> Result<Option<(i64, u8, Option<u32>)>> {
        match spec.get(k) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Document(t)) => stream::parse_token_full(t).map(Some),
            Some(_) => Err(MongoError::type_mismatch(format!("'{k}' must be a resume token object"))),
        }
    };
    let resume_after = token_of("resumeAfter")?;
    let start_after = token_of("startAfter")?;
    let at = match spec.get("startAtOperationTime") {
        None | Some(Bson::Null) => None,
        Some(Bson::Timestamp(t)) => Some(*t),
        Some(_) => return Err(MongoError::type_mismatch("'startAtOperationTime' must be a timestamp")),
    };
    if [resume_after.is_some(), start_after.is_some(), at.is_some()].iter().filter(|b| **b).count() > 1 {
        return Err(MongoError::new(
            ErrorCode::Location40674,
            "Only one type of resume option is allowed, but multiple were found.",
        ));
    }
    if let Some((_, 1, _)) = resume_after {
        return Err(MongoError::new(
            ErrorCode::InvalidResumeToken,
            "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.",
        ));
    }
    let token = resume_after.or(start_after);
    // Resuming from a fragment re-reads its event and skips the fragments already seen.
    let resume_fragment = token.and_then(|(ts, _, f)| f.map(|f| (ts, f)));
    let after = token.map(|(ts, _, f)| if f.is_some() { ts - 1 } else { ts });
    let mut rest = Vec::with_capacity(stages.len().saturating_sub(1));
    let mut split = false;
    for (i, st) in stages.iter().enumerate().skip(1) {
        let Some((name, arg)) = st.iter().next() else { continue };
        if name == "$changeStreamSplitLargeEvent" {
            if i + 1 != stages.len() {
                return Err(MongoError::bad_value(
                    "$changeStreamSplitLargeEvent must be the last stage in the pipeline",
                ));
            }
            if !matches!(arg, Bson::Document(d) if d.is_empty()) {
                return Err(MongoError::bad_value(
                    "$changeStreamSplitLargeEvent accepts only an empty document as its argument",
                ));
            }
            split = true;
            continue;
        }
        if !ALLOWED_AFTER.contains(&name.as_str()) {
            // An unknown name fails as it does anywhere (40324); a known stage is refused here.
            crate::agg::prepare(&req.db, &[Bson::Document(st.clone())], None)?;
            return Err(MongoError::new(
                ErrorCode::IllegalOperation,
                format!("{name} is not permitted in a $changeStream pipeline"),
            ));
        }
        rest.push(Bson::Document(st.clone()));
    }
    // The later stages run through the aggregation engine, one event at a time.
    let pipeline = if rest.is_empty() { None } else { Some(crate::agg::prepare(&req.db, &rest, None)?) };
    let pos = stream::start_position(ctx.store, after, at)?;
    let ns = match &scope {
        Scope::Collection { db, coll } => format!("{db}.{coll}"),
        Scope::Database(db) => format!("{db}.$cmd.aggregate"),
        Scope::Cluster => "admin.$cmd.aggregate".to_string(),
    };
    let mut cs = ChangeStream::new(scope, pos, full_document, flag("showExpandedEvents"), pipeline)
        .with_before_change(before_change)
        .with_split(split, resume_fragment);
    let batch = cs.next_batch(ctx.store, batch_size.unwrap_or(DEFAULT_FIRST_BATCH))?;
    let token = cs.resume_token();
    let id = if cs.is_finished() {
        0
    } else {
        let id = ctx.shared.cursors.register(
            ns.clone(),
            CursorSource::ChangeStream(Box::new(cs)),
            None,
            false,
            ctx.conn.id,
            ctx.conn.lsid,
        );
        ctx.shared.cursors.set_owners(id, ctx.conn.auth.users.clone(), ctx.conn.auth.checked.clone());
        if let Some(c) = ctx.shared.cursors.get(id) {
            let mut c = c.lock();
            c.tailable = true;
            c.await_data = true;
        }
        id
    };
    let mut reply = cursor_reply(&ns, id, batch, true);
    if let Ok(cur) = reply.get_document_mut("cursor") {
        cur.insert("postBatchResumeToken", token);
    }
    Ok(reply)
}
