//! What each command needs: the one table mapping a command to the privilege actions mongod
//! checks before running it, and on which resource.

use super::roles::Resource;
use super::users::{parse_name, parse_roles, Name};
use crate::cmd::Request;
use bson::{Bson, Document};

/// Where a command's actions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The collection named by the command's first field (`{find: "c"}` → `db.c`).
    Coll,
    /// The command's database.
    Db,
    Cluster,
    /// Any authenticated user may run it (sessions, transactions, own cursors).
    Authenticated,
    /// Runs before authentication (registry `pre_auth`); listed here for completeness.
    PreAuth,
    /// Worked out from the command body in `special`.
    Special,
}

/// Sorted by name; a unit test checks that every registered command has a row.
#[rustfmt::skip]
pub static TABLE: &[(&str, On, &[&str])] = &[
    ("abortTransaction", On::Authenticated, &[]),
    ("aggregate", On::Special, &["find"]),
    ("authenticate", On::PreAuth, &[]),
    ("buildInfo", On::PreAuth, &[]),
    ("collMod", On::Coll, &["collMod"]),
    ("collStats", On::Coll, &["collStats"]),
    ("commitTransaction", On::Authenticated, &[]),
    ("configureFailPoint", On::Authenticated, &[]),
    ("connectionStatus", On::PreAuth, &[]),
    ("count", On::Coll, &["find"]),
    ("create", On::Coll, &["createCollection"]),
    ("createIndexes", On::Coll, &["createIndex"]),
    ("createRole", On::Special, &["createRole"]),
    ("createSearchIndexes", On::Coll, &["createSearchIndexes"]),
    ("createUser", On::Special, &["createUser"]),
    ("currentOp", On::Cluster, &["inprog"]),
    ("dbStats", On::Db, &["dbStats"]),
    ("delete", On::Coll, &["remove"]),
    ("distinct", On::Coll, &["find"]),
    ("drop", On::Coll, &["dropCollection"]),
    ("dropAllUsersFromDatabase", On::Db, &["dropUser"]),
    ("dropDatabase", On::Db, &["dropDatabase"]),
    ("dropIndexes", On::Coll, &["dropIndex"]),
    ("dropRole", On::Db, &["dropRole"]),
    ("dropSearchIndex", On::Coll, &["dropSearchIndex"]),
    ("dropUser", On::Db, &["dropUser"]),
    ("endSessions", On::Authenticated, &[]),
    ("explain", On::Special, &[]),
    ("find", On::Coll, &["find"]),
    ("findAndModify", On::Special, &["find"]),
    ("fsync", On::Cluster, &["fsync"]),
    ("getCmdLineOpts", On::Cluster, &["getCmdLineOpts"]),
    ("getLog", On::Cluster, &["getLog"]),
    ("getMore", On::Authenticated, &[]),
    ("getParameter", On::Cluster, &["getParameter"]),
    ("grantPrivilegesToRole", On::Db, &["grantRole"]),
    ("grantRolesToRole", On::Special, &["grantRole"]),
    ("grantRolesToUser", On::Special, &["grantRole"]),
    ("hello", On::PreAuth, &[]),
    ("hostInfo", On::Cluster, &["hostInfo"]),
    ("insert", On::Coll, &["insert"]),
    ("isMaster", On::PreAuth, &[]),
    ("killAllSessions", On::Cluster, &["killAnySession"]),
    ("killAllSessionsByPattern", On::Cluster, &["killAnySession"]),
    ("killCursors", On::Authenticated, &[]),
    ("killOp", On::Cluster, &["killop"]),
    ("killSessions", On::Authenticated, &[]),
    ("listCollections", On::Special, &["listCollections"]),
    ("listCommands", On::PreAuth, &[]),
    ("listDatabases", On::Special, &["listDatabases"]),
    ("listIndexes", On::Coll, &["listIndexes"]),
    ("logout", On::PreAuth, &[]),
    ("ping", On::PreAuth, &[]),
    ("planCacheClear", On::Coll, &["planCacheWrite"]),
    ("profile", On::Db, &["enableProfiler"]),
    ("refreshSessions", On::Authenticated, &[]),
    ("renameCollection", On::Special, &[]),
    ("revokePrivilegesFromRole", On::Db, &["revokeRole"]),
    ("revokeRolesFromRole", On::Special, &["revokeRole"]),
    ("revokeRolesFromUser", On::Special, &["revokeRole"]),
    ("rolesInfo", On::Db, &["viewRole"]),
    ("saslContinue", On::PreAuth, &[]),
    ("saslStart", On::PreAuth, &[]),
    ("serverStatus", On::Cluster, &["serverStatus"]),
    ("setParameter", On::Cluster, &["setParameter"]),
    ("startSession", On::Authenticated, &[]),
    ("testVersion2", On::Authenticated, &[]),
    ("update", On::Special, &["update"]),
    ("updateRole", On::Special, &["grantRole", "revokeRole"]),
    ("updateSearchIndex", On::Coll, &["updateSearchIndex"]),
    ("updateUser", On::Special, &[]),
    ("usersInfo", On::Special, &["viewUser"]),
    ("validate", On::Coll, &["validate"]),
    ("whatsmyuri", On::PreAuth, &[]),
];

pub fn row(name: &str) -> Option<&'static (&'static str, On, &'static [&'static str])> {
    TABLE.binary_search_by(|r| r.0.cmp(name)).ok().and_then(|i| TABLE.get(i))
}

/// What running `req` requires of an authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Being authenticated is enough.
    Nothing,
    /// Every one of these actions on its resource.
    All(Vec<(Resource, String)>),
    /// listDatabases: with the action, everything; without it, only the databases the user
    /// has privileges on (mongod's authorizedDatabases).
    ListDatabases { must_have_action: bool },
}

fn coll_of(req: &Request, field: &str) -> Resource {
    let c = req.body.get(field).and_then(Bson::as_str).unwrap_or("");
    Resource::coll(&req.db, c)
}

fn all(pairs: Vec<(Resource, &str)>) -> Need {
    Need::All(pairs.into_iter().map(|(r, a)| (r, a.to_string())).collect())
}

/// The required privileges of `req`, run as command `name` (the registry's main name). An
/// unlisted command needs `anyAction` on `anyResource`: new commands stay closed until
/// they get a row.
pub fn required(name: &str, req: &Request) -> Need {
    let Some((_, on, actions)) = row(name) else {
        return all(vec![(Resource::AnyResource, "anyAction")]);
    };
    let here = |r: Resource| all(actions.iter().map(|a| (r.clone(), *a)).collect());
    match on {
        On::PreAuth | On::Authenticated => Need::Nothing,
        On::Coll => here(coll_of(req, name)),
        On::Db => here(Resource::db(&req.db)),
        On::Cluster => here(Resource::Cluster),
        On::Special => special(name, req),
    }
}

fn special(name: &str, req: &Request) -> Need {
    let body = &req.body;
    let flag = |f: &str| matches!(body.get(f), Some(Bson::Boolean(true)));
    match name {
        "aggregate" => aggregate(req),
        "update" => {
            let target = coll_of(req, "update");
            let mut v = vec![(target.clone(), "update")];
            let upsert = req
                .documents("updates")
                .map(|us| us.iter().any(|u| matches!(u.get("upsert"), Some(Bson::Boolean(true)))))
                .unwrap_or(false);
            if upsert {
                v.push((target, "insert"));
            }
            all(v)
        }
        "findAndModify" => {
            let target = coll_of(req, name);
            let mut v = vec![(target.clone(), "find")];
            if flag("remove") {
                v.push((target, "remove"));
            } else {
                v.push((target.clone(), "update"));
                if flag("upsert") {
                    v.push((target, "insert"));
                }
            }
            all(v)
        }
        "explain" => match body.get("explain") {
            Some(Bson::Document(inner)) => {
                let inner_name = inner.keys().next().cloned().unwrap_or_default();
                let inner_req = Request {
                    db: req.db.clone(),
                    name: inner_name.clone(),
                    body: inner.clone(),
                    sequences: Vec::new(),
                };
                required(&inner_name, &inner_req)
            }
            _ => Need::Nothing,
        },
        "listDatabases" => Need::ListDatabases {
            must_have_action: matches!(body.get("authorizedDatabases"), Some(Bson::Boolean(false))),
        },
        // With both flags a user without the action may list the collections it has
        // privileges on (the handler filters them).
        "listCollections" if flag("authorizedCollections") && flag("nameOnly") => Need::Nothing,
        "listCollections" => all(vec![(Resource::db(&req.db), "listCollections")]),
        "renameCollection" => rename(body),
        "createUser" | "createRole" => {
            let mut v =
                vec![(Resource::db(&req.db), if name == "createUser" { "createUser" } else { "createRole" })];
            v.extend(role_dbs(body, "roles", &req.db).into_iter().map(|db| (Resource::db(&db), "grantRole")));
            if body.contains_key("authenticationRestrictions") {
                v.push((Resource::db(&req.db), "setAuthenticationRestriction"));
            }
            all(v)
        }
        "grantRolesToUser" | "grantRolesToRole" => all(role_dbs(body, "roles", &req.db)
            .into_iter()
            .map(|db| (Resource::db(&db), "grantRole"))
            .collect()),
        "revokeRolesFromUser" | "revokeRolesFromRole" => all(role_dbs(body, "roles", &req.db)
            .into_iter()
            .map(|db| (Resource::db(&db), "revokeRole"))
            .collect()),
        "updateRole" => {
            let mut v = vec![(Resource::db(&req.db), "grantRole"), (Resource::db(&req.db), "revokeRole")];
            v.extend(role_dbs(body, "roles", &req.db).into_iter().map(|db| (Resource::db(&db), "grantRole")));
            if body.contains_key("authenticationRestrictions") {
                v.push((Resource::db(&req.db), "setAuthenticationRestriction"));
            }
            all(v)
        }
        "updateUser" => {
            let here = Resource::db(&req.db);
            let mut v = Vec::new();
            if body.contains_key("pwd") {
                v.push((here.clone(), "changePassword"));
            }
            if body.contains_key("customData") {
                v.push((here.clone(), "changeCustomData"));
            }
            if body.contains_key("roles") {
                v.push((here.clone(), "revokeRole"));
                v.extend(
                    role_dbs(body, "roles", &req.db).into_iter().map(|db| (Resource::db(&db), "grantRole")),
                );
            }
            if body.contains_key("authenticationRestrictions") {
                v.push((here.clone(), "setAuthenticationRestriction"));
            }
            if v.is_empty() {
                v.push((here, "changeCustomData"));
            }
            all(v)
        }
        "usersInfo" => {
            if matches!(body.get("usersInfo"), Some(Bson::Document(d)) if d.contains_key("forAllDBs")) {
                all(vec![(Resource::any_db(), "viewUser")])
            } else {
                all(vec![(Resource::db(&req.db), "viewUser")])
            }
        }
        _ => all(vec![(Resource::AnyResource, "anyAction")]),
    }
}

/// updateUser on the connection's own user changing only its password and/or customData:
/// allowed by `changeOwnPassword` / `changeOwnCustomData` on the user's database (mongod's
/// checkAuthorizedToChangeOwnPassword/CustomData), as well as by the general actions.
pub fn own_update_allowed(req: &Request, logged_in: &[Name], p: &super::roles::Privileges) -> bool {
    let body = &req.body;
    let Some(Bson::String(user)) = body.get("updateUser") else { return false };
    if !logged_in.contains(&Name::new(user, &req.db)) {
        return false;
    }
    if body.contains_key("roles") || body.contains_key("authenticationRestrictions") {
        return false;
    }
    let here = Resource::db(&req.db);
    let may = |general: &str, own: &str| p.allows(&here, general) || p.allows(&here, own);
    let pwd = body.contains_key("pwd");
    let custom = body.contains_key("customData");
    (pwd || custom)
        && (!pwd || may("changePassword", "changeOwnPassword"))
        && (!custom || may("changeCustomData", "changeOwnCustomData"))
}

/// The databases of the roles a command grants or revokes.
fn role_dbs(body: &Document, field: &str, default_db: &str) -> Vec<String> {
    let mut dbs: Vec<String> = body
        .get(field)
        .and_then(|v| parse_roles(v, field, default_db).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|r: Name| r.db)
        .collect();
    dbs.sort();
    dbs.dedup();
    dbs
}

/// The users a usersInfo asks about, when it names them (to let users view themselves).
pub fn users_asked(req: &Request) -> Option<Vec<Name>> {
    match req.body.get("usersInfo")? {
        Bson::Array(a) => a.iter().map(|v| parse_name(v, "user", &req.db).ok()).collect(),
        v @ (Bson::String(_) | Bson::Document(_)) => parse_name(v, "user", &req.db).ok().map(|n| vec![n]),
        _ => None,
    }
}

fn aggregate(req: &Request) -> Need {
    let target = match req.body.get("aggregate") {
        Some(Bson::String(c)) => Resource::coll(&req.db, c),
        _ => Resource::db(&req.db),
    };
    let pipeline: Vec<Document> = match req.body.get("pipeline") {
        Some(Bson::Array(a)) => a.iter().filter_map(|s| s.as_document().cloned()).collect(),
        _ => Vec::new(),
    };
    let mut v: Vec<(Resource, &str)> = Vec::new();
    let first = pipeline.first().and_then(|s| s.keys().next().cloned()).unwrap_or_default();
    if first == "$changeStream" {
        v.push((target.clone(), "changeStream"));
    }
    if first != "$collStats" && first != "$indexStats" {
        v.push((target.clone(), "find"));
    } else if first == "$collStats" {
        v.push((target.clone(), "collStats"));
    } else {
        v.push((target.clone(), "indexStats"));
    }
    for stage in &pipeline {
        for (op, spec) in stage {
            let (db, coll) = match (op.as_str(), spec) {
                ("$out", Bson::String(c)) => (req.db.clone(), c.clone()),
                ("$out" | "$merge", Bson::Document(d)) => (
                    d.get_str("db").unwrap_or(&req.db).to_string(),
                    d.get_str("coll").or_else(|_| d.get_str("into")).unwrap_or("").to_string(),
                ),
                ("$merge", Bson::String(c)) => (req.db.clone(), c.clone()),
                ("$lookup" | "$graphLookup", Bson::Document(d)) => {
                    if let Ok(from) = d.get_str("from") {
                        v.push((Resource::coll(&req.db, from), "find"));
                    }
                    continue;
                }
                ("$unionWith", Bson::String(c)) => {
                    v.push((Resource::coll(&req.db, c), "find"));
                    continue;
                }
                ("$unionWith", Bson::Document(d)) => {
                    if let Ok(c) = d.get_str("coll") {
                        v.push((Resource::coll(&req.db, c), "find"));
                    }
                    continue;
                }
                _ => continue,
            };
            let out = Resource::coll(&db, &coll);
            v.push((out.clone(), "insert"));
            v.push((out.clone(), "remove"));
            if op == "$merge" {
                v.push((out, "update"));
            }
        }
    }
    all(v)
}

fn rename(body: &Document) -> Need {
    let split = |f: &str| {
        let ns = body.get(f).and_then(Bson::as_str).unwrap_or("");
        let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
        (db.to_string(), coll.to_string())
    };
    let (sdb, scoll) = split("renameCollection");
    let (tdb, tcoll) = split("to");
    let source = Resource::coll(&sdb, &scoll);
    let target = Resource::coll(&tdb, &tcoll);
    let mut v = if sdb == tdb {
        vec![(source, "renameCollectionSameDB")]
    } else {
        vec![
            (source.clone(), "find"),
            (source, "dropCollection"),
            (target.clone(), "insert"),
            (target.clone(), "createIndex"),
        ]
    };
    if matches!(body.get("dropTarget"), Some(Bson::Boolean(true))) {
        v.push((target, "dropCollection"));
    }
    all(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn req(db: &str, body: Document) -> Request {
        let name = body.keys().next().cloned().unwrap_or_default();
        Request { db: db.into(), name, body, sequences: Vec::new() }
    }

    #[test]
    fn table_is_sorted_and_covers_every_registered_command() {
        let names: Vec<&str> = TABLE.iter().map(|r| r.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for c in crate::cmd::registry::COMMANDS.iter().chain(crate::cmd::registry::TEST_COMMANDS) {
            let r = row(c.name).unwrap_or_else(|| panic!("no privilege row for {}", c.name));
            assert_eq!(r.1 == On::PreAuth, c.pre_auth, "pre_auth of {} disagrees with the registry", c.name);
        }
    }

    #[test]
    fn root_can_run_every_command() {
        let root = crate::auth::roles::builtin("root", "admin").unwrap();
        for (name, on, actions) in TABLE {
            let r = match on {
                On::Coll => Resource::coll("d", "c"),
                On::Db => Resource::db("d"),
                On::Cluster => Resource::Cluster,
                _ => continue,
            };
            for a in *actions {
                assert!(root.allows(&r, a), "root cannot {a} for {name}");
            }
        }
    }

    #[test]
    fn writes_with_upsert_also_need_insert() {
        let r = req("d", doc! { "update": "c", "updates": [{ "q": {}, "u": {}, "upsert": true }] });
        assert_eq!(
            required("update", &r),
            Need::All(vec![
                (Resource::coll("d", "c"), "update".into()),
                (Resource::coll("d", "c"), "insert".into())
            ])
        );
        let r = req("d", doc! { "aggregate": "c", "pipeline": [{ "$out": "o" }] });
        let Need::All(v) = required("aggregate", &r) else { panic!() };
        assert!(v.contains(&(Resource::coll("d", "o"), "insert".into())));
        assert!(v.contains(&(Resource::coll("d", "c"), "find".into())));
    }
}
