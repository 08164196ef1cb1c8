//! Custom roles: createRole, updateRole, dropRole, grantPrivilegesToRole,
//! revokePrivilegesFromRole, grantRolesToRole, revokeRolesFromRole, rolesInfo. Custom roles
//! live in `admin.system.roles`; built-in ones come from `auth::roles`.

use super::users::{check_roles_exist, target_name};
use super::{Ctx, Request};
use crate::auth::roles::{self, Privileges, Resource};
use crate::auth::users::{self, parse_name, parse_roles, roles_bson, Name};
use crate::auth::{resolve_roles, restrictions};
use crate::error::{ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};

fn role_not_found(r: &Name) -> MongoError {
    MongoError::new(ErrorCode::RoleNotFound, format!("Could not find role: {}", r.display()))
}

fn privileges_arg(req: &Request, field: &str, role_db: &str) -> Result<Option<Privileges>> {
    let Some(v) = req.body.get(field) else {
        return Ok(None);
    };
    let Bson::Array(a) = v else {
        return Err(MongoError::bad_value(format!("\"{field}\" field must be an array")));
    };
    let p = Privileges::from_bson(a).map_err(MongoError::bad_value)?;
    // Only roles of admin may grant privileges beyond their own database.
    if role_db != users::AUTH_DB {
        let foreign = p.0.keys().any(|r| match r {
            Resource::Ns { db, .. } => db != role_db,
            _ => true,
        });
        if foreign {
            return Err(MongoError::bad_value(format!(
                "Roles on the '{role_db}' database cannot be granted privileges that target other databases or the cluster"
            )));
        }
    }
    Ok(Some(p))
}

fn roles_arg(req: &Request) -> Result<Option<Vec<Name>>> {
    req.body.get("roles").map(|v| parse_roles(v, "roles", &req.db)).transpose()
}

/// Refuses a role graph in which `role` would inherit from itself.
fn check_no_cycle(ctx: &mut Ctx, role: &Name, inherits: &[Name]) -> Result<()> {
    let reach = resolve_roles(ctx.store, inherits)?;
    if reach.roles.contains(role) {
        return Err(MongoError::new(
            ErrorCode::GraphContainsCycle,
            format!("Granting roles to {} would introduce a cycle in the role graph", role.display()),
        ));
    }
    Ok(())
}

fn refuse_builtin(role: &Name, what: &str) -> Result<()> {
    if roles::is_builtin(&role.name, &role.db) {
        return Err(MongoError::new(
            ErrorCode::InvalidRoleModification,
            format!("Cannot {what} built-in role: {}", role.display()),
        ));
    }
    Ok(())
}

pub fn create_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let role = Name::new(&target_name(req)?, &req.db);
    if roles::is_builtin(&role.name, &role.db) || roles::is_builtin(&role.name, users::AUTH_DB) {
        return Err(MongoError::bad_value(format!(
            "Cannot create roles with the same name as a built-in role: {}",
            role.display()
        )));
    }
    let privileges = privileges_arg(req, "privileges", &req.db)?
        .ok_or_else(|| MongoError::bad_value("\"createRole\" command requires a \"privileges\" array"))?;
    let inherits = roles_arg(req)?
        .ok_or_else(|| MongoError::bad_value("\"createRole\" command requires a \"roles\" array"))?;
    let restrictions = restrictions::parse(req.body.get("authenticationRestrictions"))?;
    check_roles_exist(ctx, &inherits)?;
    check_no_cycle(ctx, &role, &inherits)?;
    let mut d = doc! {
        "_id": role.id(),
        "role": &role.name,
        "db": &role.db,
        "privileges": privileges.to_bson(),
        "roles": roles_bson(&inherits),
    };
    if let Some(r) = restrictions {
        d.insert("authenticationRestrictions", r);
    }
    if !users::insert(ctx.store, users::ROLES, &d)? {
        return Err(MongoError::new(
            ErrorCode::Location51002,
            format!("Role \"{}\" already exists", role.display()),
        ));
    }
    ctx.shared.auth.changed();
    Ok(Document::new())
}

/// Applies `f` to a custom role's document (its privileges and inherited roles).
fn modify_role(ctx: &mut Ctx, role: &Name, f: impl Fn(&mut Privileges, &mut Vec<Name>)) -> Result<()> {
    refuse_builtin(role, "modify")?;
    let found = users::modify(ctx.store, users::ROLES, &role.id(), |old| {
        let mut p =
            old.get_array("privileges").ok().and_then(|a| Privileges::from_bson(a).ok()).unwrap_or_default();
        let mut r = users::roles_of(old);
        f(&mut p, &mut r);
        let mut d = old.clone();
        d.insert("privileges", p.to_bson());
        d.insert("roles", roles_bson(&r));
        d
    })?;
    if !found {
        return Err(role_not_found(role));
    }
    ctx.shared.auth.changed();
    Ok(())
}

pub fn update_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let role = Name::new(&target_name(req)?, &req.db);
    let privileges = privileges_arg(req, "privileges", &req.db)?;
    let inherits = roles_arg(req)?;
    let restrictions = restrictions::parse(req.body.get("authenticationRestrictions"))?;
    if privileges.is_none() && inherits.is_none() && restrictions.is_none() {
        return Err(MongoError::bad_value("Must specify at least one field to update in updateRole"));
    }
    if let Some(r) = &inherits {
        check_roles_exist(ctx, r)?;
        check_no_cycle(ctx, &role, r)?;
    }
    modify_role(ctx, &role, |p, r| {
        if let Some(np) = &privileges {
            *p = np.clone();
        }
        if let Some(nr) = &inherits {
            *r = nr.clone();
        }
    })?;
    if let Some(list) = restrictions {
        users::modify(ctx.store, users::ROLES, &role.id(), |old| {
            let mut d = old.clone();
            d.insert("authenticationRestrictions", list.clone());
            d
        })?;
        ctx.shared.auth.changed();
    }
    Ok(Document::new())
}

pub fn drop_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let role = Name::new(&target_name(req)?, &req.db);
    refuse_builtin(&role, "drop")?;
    let id = role.id();
    let n = users::remove_where(ctx.store, users::ROLES, |d| d.get_str("_id") == Ok(id.as_str()))?;
    if n == 0 {
        return Err(role_not_found(&role));
    }
    // Users and roles that held it lose it, as in mongod.
    for coll in [users::USERS, users::ROLES] {
        for d in users::all(ctx.store, coll)? {
            if users::roles_of(&d).contains(&role) {
                let did = d.get_str("_id").unwrap_or("").to_string();
                users::modify(ctx.store, coll, &did, |old| {
                    let mut r = users::roles_of(old);
                    r.retain(|x| *x != role);
                    let mut nd = old.clone();
                    nd.insert("roles", roles_bson(&r));
                    nd
                })?;
            }
        }
    }
    ctx.shared.auth.changed();
    Ok(Document::new())
}

fn change_privileges(ctx: &mut Ctx, req: &Request, grant: bool) -> Result<Document> {
    let role = Name::new(&target_name(req)?, &req.db);
    let privileges = privileges_arg(req, "privileges", &req.db)?.ok_or_else(|| {
        MongoError::bad_value(format!("\"{}\" command requires a \"privileges\" array", req.name))
    })?;
    modify_role(ctx, &role, |p, _| {
        if grant {
            p.merge(&privileges);
        } else {
            for (res, actions) in &privileges.0 {
                if let Some(have) = p.0.get_mut(res) {
                    have.retain(|a| !actions.contains(a));
                    if have.is_empty() {
                        p.0.remove(res);
                    }
                }
            }
        }
    })?;
    Ok(Document::new())
}

pub fn grant_privileges_to_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_privileges(ctx, req, true)
}

pub fn revoke_privileges_from_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_privileges(ctx, req, false)
}

fn change_inherited(ctx: &mut Ctx, req: &Request, grant: bool) -> Result<Document> {
    let role = Name::new(&target_name(req)?, &req.db);
    let given = roles_arg(req)?.unwrap_or_default();
    if given.is_empty() {
        return Err(MongoError::bad_value(format!(
            "\"{}\" command requires a non-empty \"roles\" array",
            req.name
        )));
    }
    check_roles_exist(ctx, &given)?;
    if grant {
        check_no_cycle(ctx, &role, &given)?;
    }
    modify_role(ctx, &role, |_, r| {
        if grant {
            for g in &given {
                if !r.contains(g) {
                    r.push(g.clone());
                }
            }
        } else {
            r.retain(|x| !given.contains(x));
        }
    })?;
    Ok(Document::new())
}

pub fn grant_roles_to_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_inherited(ctx, req, true)
}

pub fn revoke_roles_from_role(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    change_inherited(ctx, req, false)
}

/// One role as rolesInfo shows it, or None when it does not exist.
fn describe(
    ctx: &mut Ctx,
    role: &Name,
    show_privileges: bool,
    show_restrictions: bool,
) -> Result<Option<Document>> {
    let (direct_roles, own_privileges, builtin, own_restrictions) = if let Some(p) =
        roles::builtin(&role.name, &role.db)
    {
        (Vec::new(), p, true, Vec::new())
    } else if let Some(d) = users::get(ctx.store, users::ROLES, &role.id())? {
        let p =
            d.get_array("privileges").ok().and_then(|a| Privileges::from_bson(a).ok()).unwrap_or_default();
        (users::roles_of(&d), p, false, restrictions::of(&d))
    } else {
        return Ok(None);
    };
    let inherited = resolve_roles(ctx.store, &direct_roles)?;
    let mut out = Document::new();
    if !builtin {
        out.insert("_id", role.id());
    }
    out.insert("role", &role.name);
    out.insert("db", &role.db);
    if show_privileges {
        let mut all = own_privileges.clone();
        all.merge(&inherited.privileges);
        out.insert("privileges", own_privileges.to_bson());
        out.insert("inheritedPrivileges", all.to_bson());
    }
    if show_restrictions {
        let inherited: Vec<Bson> = std::iter::once(own_restrictions.clone())
            .filter(|l| !l.is_empty())
            .chain(inherited.restrictions.iter().cloned())
            .map(Bson::Array)
            .collect();
        out.insert("authenticationRestrictions", own_restrictions);
        out.insert("inheritedAuthenticationRestrictions", inherited);
    }
    out.insert("isBuiltin", builtin);
    out.insert("roles", roles_bson(&direct_roles));
    out.insert(
        "inheritedRoles",
        inherited.roles.iter().map(|r| Bson::Document(r.role_doc())).collect::<Vec<_>>(),
    );
    Ok(Some(out))
}

pub fn roles_info(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    let flag = |f: &str| matches!(req.body.get(f), Some(Bson::Boolean(true)));
    let show_privileges = flag("showPrivileges");
    let show_restrictions = flag("showAuthenticationRestrictions");
    let names: Vec<Name> = match req.body.get("rolesInfo") {
        Some(Bson::Int32(1)) | Some(Bson::Int64(1)) | Some(Bson::Double(1.0)) => {
            let mut v: Vec<Name> = users::all(ctx.store, users::ROLES)?
                .iter()
                .filter(|d| d.get_str("db") == Ok(req.db.as_str()))
                .filter_map(|d| Some(Name::new(d.get_str("role").ok()?, &req.db)))
                .collect();
            if flag("showBuiltinRoles") {
                let builtins = roles::DB_ROLES
                    .iter()
                    .chain(if req.db == users::AUTH_DB { roles::ADMIN_ROLES } else { &[] })
                    .map(|r| Name::new(r, &req.db));
                v.extend(builtins);
            }
            v.sort();
            v
        }
        Some(Bson::Array(a)) => a.iter().map(|v| parse_name(v, "role", &req.db)).collect::<Result<_>>()?,
        Some(v @ (Bson::String(_) | Bson::Document(_))) => vec![parse_name(v, "role", &req.db)?],
        _ => {
            return Err(MongoError::bad_value(
                "rolesInfo argument must be a string, an object, an array or 1",
            ))
        }
    };
    let mut out = Vec::new();
    for n in &names {
        if let Some(d) = describe(ctx, n, show_privileges, show_restrictions)? {
            out.push(d);
        }
    }
    Ok(doc! { "roles": out })
}
