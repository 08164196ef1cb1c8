//! Authentication commands: saslStart, saslContinue, authenticate, logout, the hello fields
//! (`saslSupportedMechs`, `speculativeAuthenticate`) and connectionStatus's `authInfo`.

use super::{Ctx, Request};
use crate::auth::scram::{self, Conversation, Mechanism};
use crate::auth::users::{self, Name};
use crate::auth::Pending;
use crate::error::{ErrorCode, MongoError, Result};
use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document};

/// Every SCRAM failure looks the same to the client, so that user names cannot be probed.
fn auth_failed() -> MongoError {
    MongoError::new(ErrorCode::AuthenticationFailed, "Authentication failed.")
}

fn binary(s: &str) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: s.as_bytes().to_vec() })
}

/// The `payload` of a SASL command: BinData (drivers) or a string (some shells), as UTF-8.
fn payload(body: &Document) -> Result<String> {
    let bytes = match body.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => s.as_bytes().to_vec(),
        Some(other) => {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'payload' is the wrong type '{}', expected types '[string, binData]'",
                super::format::type_name(other)
            )))
        }
        None => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'payload' is missing but a required field",
            ))
        }
    };
    String::from_utf8(bytes).map_err(|_| auth_failed())
}

/// Starts a SCRAM conversation for a user of `db`; shared by saslStart and hello's
/// speculativeAuthenticate.
fn start(ctx: &mut Ctx, db: &str, body: &Document, speculative: bool) -> Result<Document> {
    let mech_name = match body.get("mechanism") {
        Some(Bson::String(m)) => m.as_str(),
        _ => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'saslStart.mechanism' is missing but a required field",
            ))
        }
    };
    let Some(mech) = Mechanism::from_name(mech_name) else {
        return Err(MongoError::new(
            ErrorCode::MechanismUnavailable,
            format!("Received authentication for mechanism {mech_name} which is unknown or not enabled"),
        ));
    };
    let skip_empty = body
        .get_document("options")
        .ok()
        .is_some_and(|o| matches!(o.get("skipEmptyExchange"), Some(Bson::Boolean(true))));
    ctx.conn.auth.conversation = None;
    ctx.shared.auth.count(mech, speculative, false);
    let first = scram::parse_client_first(&payload(body)?).map_err(|_| auth_failed())?;
    let user = Name::new(&first.user, db);
    let creds = users::get(ctx.store, users::USERS, &user.id())?
        .and_then(|d| users::credentials(&d, mech))
        .ok_or_else(auth_failed)?;
    let (conv, server_first) = Conversation::start(mech, first, creds, &Conversation::new_nonce());
    let id = 1;
    ctx.conn.auth.conversation = Some(Pending { id, user, conv, proved: false, skip_empty, speculative });
    Ok(doc! { "conversationId": id, "done": false, "payload": binary(&server_first) })
}

pub fn sasl_start(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    start(ctx, &req.db.clone(), &req.body, false)
}

pub fn sasl_continue(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let id = match req.body.get("conversationId") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(d)) => *d as i64,
        _ => {
            return Err(MongoError::new(
                ErrorCode::Location40414,
                "BSON field 'saslContinue.conversationId' is missing but a required field",
            ))
        }
    };
    let Some(mut pending) = ctx.conn.auth.conversation.take() else {
        return Err(MongoError::new(ErrorCode::ProtocolError, "No SASL session state found"));
    };
    if i64::from(pending.id) != id {
        return Err(MongoError::new(ErrorCode::ProtocolError, "sasl: Mismatched conversation id"));
    }
    if pending.user.db != req.db {
        return Err(MongoError::new(ErrorCode::ProtocolError, "sasl: Mismatched database name"));
    }
    if pending.proved {
        // The client's empty closing message.
        return Ok(doc! { "conversationId": pending.id, "done": true, "payload": binary("") });
    }
    let server_final = pending.conv.finish(&payload(&req.body)?).map_err(|_| auth_failed())?;
    // A correct proof from an address the user's authenticationRestrictions refuse fails like
    // a wrong password (mongod logs the reason; the client learns nothing more).
    let admitted = match users::get(ctx.store, users::USERS, &pending.user.id())? {
        Some(d) => crate::auth::restrictions_allow(ctx.store, ctx.conn, &d)?,
        None => false,
    };
    if !admitted {
        return Err(auth_failed());
    }
    ctx.conn.auth.login(pending.user.clone());
    ctx.shared.auth.count(pending.conv.mech, pending.speculative, true);
    let done = pending.skip_empty;
    let reply = doc! { "conversationId": pending.id, "done": done, "payload": binary(&server_final) };
    if !done {
        pending.proved = true;
        ctx.conn.auth.conversation = Some(pending);
    }
    Ok(reply)
}

/// The legacy command: only MONGODB-X509 used it, and that needs a TLS client certificate,
/// which a connection to us never has.
pub fn authenticate(_: &mut Ctx, req: &Request) -> Result<Document> {
    match req.body.get("mechanism") {
        Some(Bson::String(m)) if m == "MONGODB-X509" => Err(MongoError::new(
            ErrorCode::AuthenticationFailed,
            "No verified subject name available from client",
        )),
        Some(Bson::String(m)) => Err(MongoError::new(
            ErrorCode::MechanismUnavailable,
            format!("Unsupported mechanism {m} on authenticate command"),
        )),
        _ => Err(MongoError::new(
            ErrorCode::Location40414,
            "BSON field 'authenticate.mechanism' is missing but a required field",
        )),
    }
}

pub fn logout(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    ctx.conn.auth.logout(&req.db);
    Ok(Document::new())
}

/// hello's authentication fields: the mechanisms a named user can use, and the first round of
/// a speculative SCRAM conversation (omitted, as mongod does, when it fails).
pub fn hello_fields(ctx: &mut Ctx, req: &Request, reply: &mut Document) -> Result<()> {
    if let Some(v) = req.body.get("saslSupportedMechs") {
        let Bson::String(s) = v else {
            return Err(MongoError::type_mismatch(format!(
                "BSON field 'saslSupportedMechs' is the wrong type '{}', expected type 'string'",
                super::format::type_name(v)
            )));
        };
        let Some((db, user)) = s.split_once('.') else {
            return Err(MongoError::bad_value(format!(
                "UserName must contain a '.' separated database.user pair: {s}"
            )));
        };
        if let Some(d) = users::get(ctx.store, users::USERS, &Name::new(user, db).id())? {
            let mechs: Vec<Bson> =
                users::mechanisms(&d).iter().map(|m| Bson::String(m.name().into())).collect();
            reply.insert("saslSupportedMechs", mechs);
        }
    }
    if let Some(Bson::Document(spec)) = req.body.get("speculativeAuthenticate") {
        let db = spec.get_str("db").unwrap_or(&req.db).to_string();
        if spec.contains_key("saslStart") {
            if let Ok(r) = start(ctx, &db, spec, true) {
                reply.insert("speculativeAuthenticate", r);
            }
        }
    }
    Ok(())
}

/// connectionStatus's `authInfo`.
pub fn auth_info(ctx: &mut Ctx, show_privileges: bool) -> Result<Document> {
    let users: Vec<Bson> = ctx.conn.auth.users.iter().map(|u| Bson::Document(u.user_doc())).collect();
    let resolved = crate::auth::resolved(ctx.shared, ctx.store, ctx.conn)?;
    let roles: Vec<Bson> = resolved.roles.iter().map(|r| Bson::Document(r.role_doc())).collect();
    let mut info = doc! { "authenticatedUsers": users, "authenticatedUserRoles": roles };
    if show_privileges {
        info.insert("authenticatedUserPrivileges", resolved.privileges.to_bson());
    }
    Ok(info)
}
