//! Users and custom roles as mongod keeps them: documents in `admin.system.users`
//! (`_id: "db.user"`, user, db, credentials with salted keys only, roles, customData) and
//! `admin.system.roles` (`_id: "db.role"`, role, db, privileges, roles).

use super::scram::{Credentials, Mechanism};
use crate::error::{ErrorCode, MongoError, Result};
use crate::store::{scan, StoreSession};
use bson::{doc, Bson, Document};

pub const AUTH_DB: &str = "admin";
pub const USERS: &str = "system.users";
pub const ROLES: &str = "system.roles";

/// `{role, db}` (also used for user names: `{user, db}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub name: String,
    pub db: String,
}

impl Name {
    pub fn new(name: &str, db: &str) -> Name {
        Name { name: name.to_string(), db: db.to_string() }
    }

    /// The `_id` of its document: `db.name`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    pub fn role_doc(&self) -> Document {
        doc! { "role": &self.name, "db": &self.db }
    }

    pub fn user_doc(&self) -> Document {
        doc! { "user": &self.name, "db": &self.db }
    }

    /// `name@db`, as mongod's messages write it.
    pub fn display(&self) -> String {
        format!("{}@{}", self.name, self.db)
    }
}

/// Parses a roles array: each entry is a role name (in `default_db`) or `{role, db}`.
pub fn parse_roles(v: &Bson, field: &str, default_db: &str) -> Result<Vec<Name>> {
    let Bson::Array(items) = v else {
        return Err(MongoError::bad_value(format!("\"{field}\" field must be an array")));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(parse_name(item, "role", default_db)?);
    }
    Ok(out)
}

/// A user or role name given as a string (in `default_db`) or as `{<kind>: name, db}`.
pub fn parse_name(v: &Bson, kind: &str, default_db: &str) -> Result<Name> {
    match v {
        Bson::String(s) => Ok(Name::new(s, default_db)),
        Bson::Document(d) => match (d.get(kind), d.get("db")) {
            (Some(Bson::String(n)), Some(Bson::String(db))) => Ok(Name::new(n, db)),
            (None, _) => {
                Err(MongoError::new(ErrorCode::NoSuchKey, format!("Missing expected field \"{kind}\"")))
            }
            (_, None) => Err(MongoError::new(ErrorCode::NoSuchKey, "Missing expected field \"db\"")),
            _ => Err(MongoError::type_mismatch(format!("\"{kind}\" and \"db\" fields must be strings"))),
        },
        _ => Err(MongoError::bad_value(format!("{kind} names must be either strings or objects"))),
    }
}

/// The roles of a user or role document.
pub fn roles_of(d: &Document) -> Vec<Name> {
    d.get_array("roles")
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_document())
                .filter_map(|r| Some(Name::new(r.get_str("role").ok()?, r.get_str("db").ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn roles_bson(roles: &[Name]) -> Vec<Bson> {
    roles.iter().map(|r| Bson::Document(r.role_doc())).collect()
}

/// The stored credentials of one mechanism of a user document.
pub fn credentials(user: &Document, mech: Mechanism) -> Option<Credentials> {
    user.get_document("credentials").ok()?.get_document(mech.name()).ok().and_then(Credentials::from_doc)
}

/// The mechanisms a user document has credentials for.
pub fn mechanisms(user: &Document) -> Vec<Mechanism> {
    Mechanism::ALL.into_iter().filter(|m| credentials(user, *m).is_some()).collect()
}

/// Salted credentials for each mechanism (the password itself is never kept).
pub fn make_credentials(user: &str, pwd: &str, mechs: &[Mechanism]) -> Result<Document> {
    let mut creds = Document::new();
    for m in mechs {
        let c = Credentials::generate(*m, user, pwd).map_err(|e| match e {
            super::scram::ScramError::Malformed(m) => MongoError::bad_value(m),
            super::scram::ScramError::Failed => MongoError::bad_value("Error preparing password"),
        })?;
        creds.insert(m.name(), c.to_doc());
    }
    Ok(creds)
}

fn storage(e: crate::store::StoreError) -> MongoError {
    MongoError::from(e)
}

/// The document with `_id` `id` in `admin.<coll>`.
pub fn get(store: &mut StoreSession, coll: &str, id: &str) -> Result<Option<Document>> {
    let Some(c) = store.store.collection(&format!("{AUTH_DB}.{coll}")) else {
        return Ok(None);
    };
    let key = Bson::String(id.to_string());
    store.read(|t| Ok(t.find_by_id(&c, &key)?.map(|(_, d)| d))).map_err(storage)
}

/// Every document of `admin.<coll>`.
pub fn all(store: &mut StoreSession, coll: &str) -> Result<Vec<Document>> {
    let Some(c) = store.store.collection(&format!("{AUTH_DB}.{coll}")) else {
        return Ok(Vec::new());
    };
    store
        .read(|t| {
            let mut out = Vec::new();
            scan::scan_records(t.s, &c, None, true, |_, bytes| {
                out.push(scan::parse_record(bytes)?);
                Ok(true)
            })?;
            Ok(out)
        })
        .map_err(storage)
}

/// Inserts a new document; false when one with its `_id` exists.
pub fn insert(store: &mut StoreSession, coll: &str, d: &Document) -> Result<bool> {
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    let r = store
        .write_collection(AUTH_DB, coll, true, false, |t, c| {
            if t.find_by_id(c, &id)?.is_some() {
                return Ok(false);
            }
            t.insert(c, d)?;
            Ok(true)
        })
        .map_err(storage)?;
    Ok(r.unwrap_or(false))
}

/// Replaces the document with `_id` `id` by `f(old)`; false when there is none.
pub fn modify(
    store: &mut StoreSession,
    coll: &str,
    id: &str,
    f: impl Fn(&Document) -> Document,
) -> Result<bool> {
    let key = Bson::String(id.to_string());
    let r = store
        .write_collection(AUTH_DB, coll, false, false, |t, c| {
            let Some((rid, old)) = t.find_by_id(c, &key)? else {
                return Ok(false);
            };
            let new = f(&old);
            t.update(c, rid, &old, &new, new.clone())?;
            Ok(true)
        })
        .map_err(storage)?;
    Ok(r.unwrap_or(false))
}

/// Removes every document `keep` rejects; returns how many.
pub fn remove_where(
    store: &mut StoreSession,
    coll: &str,
    matches: impl Fn(&Document) -> bool,
) -> Result<i64> {
    let r = store
        .write_collection(AUTH_DB, coll, false, false, |t, c| {
            let mut doomed = Vec::new();
            scan::scan_records(t.s, c, None, true, |rid, bytes| {
                let d = scan::parse_record(bytes)?;
                if matches(&d) {
                    doomed.push((rid, d));
                }
                Ok(true)
            })?;
            for (rid, d) in &doomed {
                t.delete(c, *rid, d)?;
            }
            Ok(doomed.len() as i64)
        })
        .map_err(storage)?;
    Ok(r.unwrap_or(0))
}
