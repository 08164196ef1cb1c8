//! User management: createUser, updateUser, dropUser, dropAllUsersFromDatabase, usersInfo,
//! grantRolesToUser, revokeRolesFromUser. Users live in `admin.system.users`.

use super::{format, Ctx, Request};
use crate::auth::scram::Mechanism;
use crate::auth::users::{self, parse_name, parse_roles, roles_bson, Name};
use crate::auth::{resolve_roles, restrictions, roles};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::matcher::Matcher;
use bson::{doc, Binary, Bson, Document};

/// The string in the command's first field (the user or role it acts on).
pub fn target_name(req: &Request) -> Result<String> {
    match req.body.get(&req.name) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Bson::String(_)) => Err(MongoError::bad_value(format!("{} name must not be empty", req.name))),
        Some(other) => Err(MongoError::type_mismatch(format!(
            "BSON field '{}.{}' is the wrong type '{}', expected type 'string'",
            req.name,
            req.name,
            format::type_name(other)
        ))),
        None => Err(MongoError::bad_value("Invalid command")),
    }
}

/// Roles granted must exist: built-in ones or custom ones in `admin.system.roles`.
pub fn check_roles_exist(ctx: &mut Ctx, roles: &[Name]) -> Result<()> {
    for r in roles {
        if roles::is_builtin(&r.name, &r.db) {
            continue;
        }
        if users::get(ctx.store, users::ROLES, &r.id())?.is_none() {
            return Err(MongoError::new(
                ErrorCode::RoleNotFound,
                format!("Could not find role: {}", r.display()),
            ));
        }
    }
    Ok(())
}

pub fn user_not_found(u: &Name) -> MongoError {
    MongoError::new(ErrorCode::UserNotFound, format!("Could not find user \"{}\"", u.display()))
}

fn mechanisms(req: &Request) -> Result<Option<Vec<Mechanism>>> {
    let Some(v) = req.body.get("mechanisms") else {
        return Ok(None);
    };
    let Bson::Array(a) = v else {
        return Err(MongoError::type_mismatch("mechanisms field must be an array"));
    };
    if a.is_empty() {
        return Err(MongoError::bad_value("mechanisms field must not be empty"));
    }
    let mut out = Vec::new();
    for m in a {
        match m.as_str().and_then(Mechanism::from_name) {
            Some(m) if !out.contains(&m) => out.push(m),
            Some(_) => {}
            None => {
                return Err(MongoError::bad_value(format!(
                    "Unknown auth mechanism '{}'",
                    m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string())
                )))
            }
        }
    }
    Ok(Some(out))
}

/// `pwd` made into credentials for `mechs`, honouring `digestPassword`.
fn credentials_from(req: &Request, user: &str, mechs: &[Mechanism]) -> Result<Document> {
    let pwd = match req.body.get("pwd") {
        Some(Bson::String(p)) if p.is_empty() => return Err(MongoError::bad_value("Password cannot be empty")),
        Some(Bson::String(p)) => p.clone(),
        Some(_) => return Err(MongoError::type_mismatch("\"pwd\" must be a string")),
        None => {
            return Err(MongoError::bad_value(
                "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db",
            ))
        }
    };
    if matches!(req.body.get("digestPassword"), Some(Bson::Boolean(false))) {
        return Err(MongoError::bad_value("Use of SCRAM-SHA-256 requires undigested passwords"));
    }
    users::make_credentials(user, &pwd, mechs)
}

fn custom_data(req: &Request) -> Result<Option<Document>> {
    match req.body.get("customData") {
        None => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(_) => Err(MongoError::type_mismatch("\"customData\" must be an object")),
    }
}

fn required_roles(req: &Request) -> Result<Vec<Name>> {
    match req.body.get("roles") {
        Some(v) => parse_roles(v, "roles", &req.db),
        None => Err(MongoError::bad_value(format!("\"{}\" command requires a \"roles\" array", req.name))),
    }
}

pub fn create_user(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = target_name(req)?;
    super::args::check_db_name(&req.db)?;
    if req.db == "local" {
        return Err(MongoError::bad_value("Cannot create users in the local database"));
    }
    let user = Name::new(&name, &req.db);
    let roles = required_roles(req)?;
    let mechs = mechanisms(req)?.unwrap_or_else(|| Mechanism::ALL.to_vec());
    let credentials = credentials_from(req, &name, &mechs)?;
    let custom = custom_data(req)?;
    let restrictions = restrictions::parse(req.body.get("authenticationRestrictions"))?;
    check_roles_exist(ctx, &roles)?;
    let uuid = crate::auth::scram::random_bytes(16);
    let mut d = doc! {
        "_id": user.id(),
        "userId": Bson::Binary(Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: uuid }),
        "user": &name,
        "db": &req.db,
        "credentials": credentials,
        "roles": roles_bson(&roles),
    };
    if let Some(c) = custom {
        d.insert("customData", c);
    }
    if let Some(r) = restrictions {
        d.insert("authenticationRestrictions", r);
    }
    if !users::insert(ctx.store, users::USERS, &d)? {
        return Err(MongoError::new(
            ErrorCode::Location51003,
            format!("User \"{}\" already exists", user.display()),
        ));
    }
    ctx.shared.auth.changed();
    Ok(Document::new())
}

pub fn update_user(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let name = target_name(req)?;
    let user = Name::new(&name, &req.db);
    let roles = req.body.get("roles").map(|v| parse_roles(v, "roles", &req.db)).transpose()?;
    let custom = custom_data(req)?;
    let mechs = mechanisms(req)?;
    let restrictions = restrictions::parse(req.body.get("authenticationRestrictions"))?;
    if roles.is_none()
        && custom.is_none()
        && !req.body.contains_key("pwd")
        && mechs.is_none()
        && restrictions.is_none()
    {
        return Err(MongoError::bad_value("Must specify at least one field to update in updateUser"));
    }
    let Some(existing) = users::get(ctx.store, users::USERS, &user.id())? else {
        return Err(user_not_found(&user));
    };
    let credentials = if req.body.contains_key("pwd") {
        let m = mechs.clone().unwrap_or_else(|| Mechanism::ALL.to_vec());
        Some(credentials_from(req, &name, &m)?)
    } else if let Some(m) = &mechs {
        // Narrowing the mechanisms keeps the credentials of those that remain.
        let have = users::mechanisms(&existing);
        if m.iter().any(|x| !have.contains(x)) {
            return Err(MongoError::bad_value(
                "mechanisms field must be a subset of previously set mechanisms",
            ));
        }
        let old = existing.get_document("credentials").cloned().unwrap_or_default();
        Some(old.into_iter().filter(|(k, _)| m.iter().any(|x| x.name() == k)).collect())
    } else {
        None
    };
    if let Some(r) = &roles {
        check_roles_exist(ctx, r)?;
    }
    users::modify(ctx.store, users::USERS, &user.id(), |old| {
        let mut d = old.clone();
        if let Some(c) = &credentials {
            d.insert("credentials", c.clone());
        }
        if let Some(r) = &roles {
            d.insert("roles", roles_bson(r));
        }
        if let Some(c) = &custom {
            d.insert("customData", c.clone());
        }
        if let Some(r) = &restrictions {
            d.insert("authenticationRestrictions", r.clone());
        }
        d
    })?;
    ctx.shared.auth.changed();
    Ok(Document::new())
}

pub fn drop_user(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let user = Name::new(&target_name(req)?, &req.db);
    let id = user.id();
    let n = users::remove_where(ctx.store, users::USERS, |d| d.get_str("_id") == Ok(id.as_str()))?;
    if n == 0 {
        return Err(user_not_found(&user));
    }
    ctx.shared.auth.changed();
    Ok(Document::new())
}

pub fn drop_all_users_from_database(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let db = req.db.clone();
    let n = users::remove_where(ctx.store, users::USERS, |d| d.get_str("db") == Ok(db.as_str()))?;
    ctx.shared.auth.changed();
    Ok(doc! { "n": n as i32 })
}

fn change_roles(ctx: &mut Ctx, req: &Request, grant: bool) -> Result<Document> {
    let user = Name::new(&target_name(req)?, &req.db);
    let roles = required_roles(req)?;
    if roles.is_empty() {
        return Err(MongoError::bad_value(format!(
            "\"{}\" command requires a non-empty \"roles\" array",
            req.name
        )));
    }
    check_roles_exist(ctx, &roles)?;
    let found = users::modify(ctx.store, users::USERS, &user.id(), |old| {
        let mut have = users::roles_of(old);
        if grant {
            for r in &roles {
                if !have.contains(r) {
                    have.push(r.clone());
                }
            }
        } else {
            have.retain(|r| !roles.contains(r));
        }
        let mut d = old.clone();
        d.insert("roles", roles_bson(&have));
        d
    })?;
    if !found {
        return Err(user_not_found(&user));
    }
    ctx.shared.auth.changed();
    Ok(Document::new())
}

pub fn grant_roles_to_user(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_roles(ctx, req, true)
}

pub fn revoke_roles_from_user(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_roles(ctx, req, false)
}

pub fn users_info(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let flag = |f: &str| matches!(req.body.get(f), Some(Bson::Boolean(true)));
    let (show_credentials, show_privileges) = (flag("showCredentials"), flag("showPrivileges"));
    let show_restrictions = flag("showAuthenticationRestrictions");
    let filter = match req.body.get("filter") {
        None => None,
        Some(Bson::Document(f)) => Some(Matcher::parse(f)?),
        Some(_) => return Err(MongoError::type_mismatch("\"filter\" must be an object")),
    };
    let all = users::all(ctx.store, users::USERS)?;
    let wanted: Box<dyn Fn(&Document) -> bool> = match req.body.get("usersInfo") {
        Some(Bson::Int32(1)) | Some(Bson::Int64(1)) | Some(Bson::Double(1.0)) => {
            let db = req.db.clone();
            Box::new(move |d: &Document| d.get_str("db") == Ok(db.as_str()))
        }
        Some(Bson::Document(d)) if d.contains_key("forAllDBs") => {
            if req.db != users::AUTH_DB {
                return Err(MongoError::bad_value("forAllDBs may only be used on the admin database"));
            }
            Box::new(|_: &Document| true)
        }
        Some(v @ (Bson::String(_) | Bson::Document(_))) => {
            let n = parse_name(v, "user", &req.db)?;
            Box::new(move |d: &Document| d.get_str("_id") == Ok(n.id().as_str()))
        }
        Some(Bson::Array(a)) => {
            let names = a.iter().map(|v| parse_name(v, "user", &req.db)).collect::<Result<Vec<_>>>()?;
            let ids: Vec<String> = names.iter().map(Name::id).collect();
            Box::new(move |d: &Document| d.get_str("_id").is_ok_and(|i| ids.iter().any(|x| x == i)))
        }
        _ => {
            return Err(MongoError::bad_value("User name must be either a string, an object, an array or 1"))
        }
    };
    let mut out = Vec::new();
    for d in all.iter().filter(|d| wanted(d)) {
        let mut shown = doc! {
            "_id": d.get("_id").cloned().unwrap_or(Bson::Null),
            "userId": d.get("userId").cloned().unwrap_or(Bson::Null),
            "user": d.get("user").cloned().unwrap_or(Bson::Null),
            "db": d.get("db").cloned().unwrap_or(Bson::Null),
        };
        if show_credentials {
            shown.insert(
                "credentials",
                d.get("credentials").cloned().unwrap_or(Bson::Document(Document::new())),
            );
        }
        if let Some(c) = d.get("customData") {
            shown.insert("customData", c.clone());
        }
        let own = users::roles_of(d);
        shown.insert("roles", roles_bson(&own));
        let mechs: Vec<Bson> = users::mechanisms(d).iter().map(|m| Bson::String(m.name().into())).collect();
        shown.insert("mechanisms", mechs);
        if show_privileges {
            let r = resolve_roles(ctx.store, &own)?;
            shown.insert(
                "inheritedRoles",
                r.roles.iter().map(|n| Bson::Document(n.role_doc())).collect::<Vec<_>>(),
            );
            shown.insert("inheritedPrivileges", r.privileges.to_bson());
            // One list per source (the user, then each role with restrictions), as mongod.
            let own_r = restrictions::of(d);
            let inherited: Vec<Bson> = std::iter::once(own_r)
                .filter(|l| !l.is_empty())
                .chain(r.restrictions.iter().cloned())
                .map(Bson::Array)
                .collect();
            shown.insert("inheritedAuthenticationRestrictions", inherited);
        }
        if show_privileges || show_restrictions {
            shown.insert("authenticationRestrictions", restrictions::of(d));
        }
        if filter.as_ref().is_none_or(|m| m.matches(&shown)) {
            out.push(shown);
        }
    }
    out.sort_by(|a, b| {
        let key = |d: &Document| {
            (d.get_str("db").unwrap_or("").to_string(), d.get_str("user").unwrap_or("").to_string())
        };
        key(a).cmp(&key(b))
    });
    Ok(doc! { "users": out })
}
