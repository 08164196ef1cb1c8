//! Resources, privileges and mongod's built-in roles (the actions each grants on which
//! resources, as the built-in roles reference documents them).

use bson::{doc, Bson, Document};
use std::collections::{BTreeMap, BTreeSet};

/// What a privilege applies to. In `Ns`, an empty `db` means every database and an empty
/// `coll` every non-system collection (and, asked for alone, the database itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Cluster,
    AnyResource,
    Ns { db: String, coll: String },
}

impl Resource {
    pub fn db(db: &str) -> Resource {
        Resource::Ns { db: db.to_string(), coll: String::new() }
    }

    pub fn coll(db: &str, coll: &str) -> Resource {
        Resource::Ns { db: db.to_string(), coll: coll.to_string() }
    }

    pub fn any_db() -> Resource {
        Resource::db("")
    }

    /// True when a privilege on `self` covers a request on `want`.
    pub fn covers(&self, want: &Resource) -> bool {
        match (self, want) {
            (Resource::AnyResource, _) => true,
            (Resource::Cluster, Resource::Cluster) => true,
            (Resource::Ns { db: hdb, coll: hcoll }, Resource::Ns { db: wdb, coll: wcoll }) => {
                let db_ok = hdb.is_empty() || hdb == wdb;
                let coll_ok = if wcoll.is_empty() {
                    hcoll.is_empty()
                } else if hcoll.is_empty() {
                    !wcoll.starts_with("system.")
                } else {
                    hcoll == wcoll
                };
                db_ok && coll_ok
            }
            _ => false,
        }
    }

    pub fn to_doc(&self) -> Document {
        match self {
            Resource::Cluster => doc! { "cluster": true },
            Resource::AnyResource => doc! { "anyResource": true },
            Resource::Ns { db, coll } => doc! { "db": db, "collection": coll },
        }
    }

    pub fn from_doc(d: &Document) -> Result<Resource, String> {
        if d.get("cluster").is_some() {
            return match d.get("cluster") {
                Some(Bson::Boolean(true)) if d.len() == 1 => Ok(Resource::Cluster),
                _ => Err("resource: {cluster: true} must be the only field".into()),
            };
        }
        if d.get("anyResource").is_some() {
            return match d.get("anyResource") {
                Some(Bson::Boolean(true)) if d.len() == 1 => Ok(Resource::AnyResource),
                _ => Err("resource: {anyResource: true} must be the only field".into()),
            };
        }
        match (d.get("db"), d.get("collection")) {
            (Some(Bson::String(db)), Some(Bson::String(coll))) if d.len() == 2 => {
                Ok(Resource::coll(db, coll))
            }
            _ => Err("resource pattern must contain 'db' and 'collection' fields".into()),
        }
    }
}

/// Actions by resource: the privileges of a user or role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges(pub BTreeMap<Resource, BTreeSet<String>>);

impl Privileges {
    pub fn add(&mut self, r: Resource, actions: &[&str]) {
        self.0.entry(r).or_default().extend(actions.iter().map(|a| a.to_string()));
    }

    pub fn merge(&mut self, other: &Privileges) {
        for (r, a) in &other.0 {
            self.0.entry(r.clone()).or_default().extend(a.iter().cloned());
        }
    }

    /// True when some privilege covers `action` on `want`.
    pub fn allows(&self, want: &Resource, action: &str) -> bool {
        self.0.iter().any(|(r, acts)| r.covers(want) && (acts.contains(action) || acts.contains("anyAction")))
    }

    /// True when some privilege (any action) covers `want`.
    pub fn touches(&self, want: &Resource) -> bool {
        self.0.iter().any(|(r, acts)| !acts.is_empty() && r.covers(want))
    }

    /// True when the user holds any privilege naming database `db` (what a user without
    /// `listDatabases` sees in listDatabases).
    pub fn touches_db(&self, db: &str) -> bool {
        self.0.keys().any(|r| match r {
            Resource::AnyResource => true,
            Resource::Ns { db: d, .. } => d.is_empty() || d == db,
            Resource::Cluster => false,
        })
    }

    /// `[{resource, actions}]`, as usersInfo / rolesInfo / connectionStatus show them.
    pub fn to_bson(&self) -> Vec<Bson> {
        self.0
            .iter()
            .map(|(r, a)| {
                Bson::Document(doc! {
                    "resource": r.to_doc(),
                    "actions": a.iter().map(|s| Bson::String(s.clone())).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    /// Parses `[{resource, actions: [..]}]` (createRole, grantPrivilegesToRole).
    pub fn from_bson(v: &[Bson]) -> Result<Privileges, String> {
        let mut p = Privileges::default();
        for item in v {
            let Bson::Document(d) = item else {
                return Err("Each privilege must be an object".into());
            };
            let resource = match d.get("resource") {
                Some(Bson::Document(r)) => Resource::from_doc(r)?,
                _ => return Err("Privilege must have a 'resource' object".into()),
            };
            let Some(Bson::Array(actions)) = d.get("actions") else {
                return Err("Privilege must have an 'actions' array".into());
            };
            let set = p.0.entry(resource).or_default();
            for a in actions {
                match a {
                    Bson::String(s) if is_known_action(s) => {
                        set.insert(s.clone());
                    }
                    Bson::String(s) => return Err(format!("Unrecognized action privilege string: {s}")),
                    _ => return Err("Privilege actions must be strings".into()),
                }
            }
        }
        Ok(p)
    }
}

const READ: &[&str] = &[
    "changeStream",
    "collStats",
    "dbHash",
    "dbStats",
    "find",
    "killCursors",
    "listCollections",
    "listIndexes",
    "listSearchIndexes",
];

const READ_WRITE_EXTRA: &[&str] = &[
    "convertToCapped",
    "createCollection",
    "createIndex",
    "createSearchIndexes",
    "dropCollection",
    "dropIndex",
    "dropSearchIndex",
    "insert",
    "remove",
    "renameCollectionSameDB",
    "update",
    "updateSearchIndex",
];

const DB_ADMIN: &[&str] = &[
    "bypassDocumentValidation",
    "collMod",
    "collStats",
    "compact",
    "convertToCapped",
    "createCollection",
    "createIndex",
    "dbStats",
    "dropCollection",
    "dropDatabase",
    "dropIndex",
    "enableProfiler",
    "listCollections",
    "listIndexes",
    "planCacheIndexFilter",
    "planCacheRead",
    "planCacheWrite",
    "reIndex",
    "renameCollectionSameDB",
    "storageDetails",
    "validate",
];

const DB_ADMIN_PROFILE: &[&str] = &[
    "changeStream",
    "collStats",
    "convertToCapped",
    "createCollection",
    "dbHash",
    "dbStats",
    "dropCollection",
    "find",
    "killCursors",
    "listCollections",
    "listIndexes",
    "planCacheRead",
];

const USER_ADMIN: &[&str] = &[
    "changeCustomData",
    "changePassword",
    "createRole",
    "createUser",
    "dropRole",
    "dropUser",
    "grantRole",
    "revokeRole",
    "setAuthenticationRestriction",
    "viewRole",
    "viewUser",
];

const CLUSTER_MONITOR: &[&str] = &[
    "checkFreeMonitoringStatus",
    "connPoolStats",
    "getCmdLineOpts",
    "getDefaultRWConcern",
    "getLog",
    "getParameter",
    "hostInfo",
    "inprog",
    "listDatabases",
    "listSessions",
    "netstat",
    "replSetGetConfig",
    "replSetGetStatus",
    "serverStatus",
    "top",
];

const CLUSTER_MONITOR_ANY_DB: &[&str] = &["collStats", "dbStats", "getShardVersion", "indexStats"];

const HOST_MANAGER: &[&str] = &[
    "applicationMessage",
    "closeAllDatabases",
    "connPoolSync",
    "flushRouterConfig",
    "fsync",
    "invalidateUserCache",
    "killAnyCursor",
    "killAnySession",
    "killop",
    "logRotate",
    "resync",
    "setParameter",
    "shutdown",
    "touch",
    "unlock",
];

const CLUSTER_MANAGER: &[&str] = &[
    "addShard",
    "appendOplogNote",
    "applicationMessage",
    "cleanupOrphaned",
    "flushRouterConfig",
    "getDefaultRWConcern",
    "listSessions",
    "listShards",
    "removeShard",
    "replSetConfigure",
    "replSetGetConfig",
    "replSetGetStatus",
    "replSetStateChange",
    "resync",
    "setDefaultRWConcern",
    "setFeatureCompatibilityVersion",
];

const BACKUP_CLUSTER: &[&str] = &["appendOplogNote", "getParameter", "listDatabases", "serverStatus"];
const BACKUP_ANY_DB: &[&str] = &["collStats", "dbStats", "find", "listCollections", "listIndexes"];

const RESTORE_ANY_DB: &[&str] = &[
    "bypassDocumentValidation",
    "changeCustomData",
    "changePassword",
    "collMod",
    "convertToCapped",
    "createCollection",
    "createIndex",
    "createRole",
    "createUser",
    "dropCollection",
    "dropRole",
    "dropUser",
    "grantRole",
    "insert",
    "revokeRole",
    "viewRole",
    "viewUser",
];

/// The collections that hold users and roles; the user-admin-anywhere roles read them.
const AUTH_COLLECTIONS: &[&str] = &["system.users", "system.roles", "system.version"];

/// Roles every database has.
pub const DB_ROLES: &[&str] = &["read", "readWrite", "dbAdmin", "userAdmin", "dbOwner"];

/// Roles that exist only in `admin`.
pub const ADMIN_ROLES: &[&str] = &[
    "readAnyDatabase",
    "readWriteAnyDatabase",
    "dbAdminAnyDatabase",
    "userAdminAnyDatabase",
    "clusterMonitor",
    "clusterManager",
    "hostManager",
    "clusterAdmin",
    "backup",
    "restore",
    "root",
];

pub fn is_builtin(role: &str, db: &str) -> bool {
    DB_ROLES.contains(&role) || (db == "admin" && ADMIN_ROLES.contains(&role))
}

/// The privileges of built-in role `role` defined on `db`, or None if there is none.
pub fn builtin(role: &str, db: &str) -> Option<Privileges> {
    if !is_builtin(role, db) {
        return None;
    }
    let mut p = Privileges::default();
    let here = Resource::db(db);
    match role {
        "read" => {
            p.add(here, READ);
            p.add(Resource::coll(db, "system.js"), READ);
        }
        "readWrite" => {
            p.add(here.clone(), READ);
            p.add(here, READ_WRITE_EXTRA);
            p.add(Resource::coll(db, "system.js"), READ);
            p.add(Resource::coll(db, "system.js"), READ_WRITE_EXTRA);
        }
        "dbAdmin" => {
            p.add(here, DB_ADMIN);
            p.add(Resource::coll(db, "system.profile"), DB_ADMIN_PROFILE);
        }
        "userAdmin" => p.add(here, USER_ADMIN),
        "dbOwner" => {
            for r in ["readWrite", "dbAdmin", "userAdmin"] {
                p.merge(&builtin(r, db).unwrap_or_default());
            }
        }
        "readAnyDatabase" => {
            p.add(Resource::any_db(), READ);
            p.add(Resource::Cluster, &["listDatabases"]);
        }
        "readWriteAnyDatabase" => {
            p.add(Resource::any_db(), READ);
            p.add(Resource::any_db(), READ_WRITE_EXTRA);
            p.add(Resource::Cluster, &["listDatabases"]);
        }
        "dbAdminAnyDatabase" => {
            p.add(Resource::any_db(), DB_ADMIN);
            p.add(Resource::Cluster, &["listDatabases"]);
        }
        "userAdminAnyDatabase" => {
            p.add(Resource::any_db(), USER_ADMIN);
            p.add(Resource::Cluster, &["authSchemaUpgrade", "invalidateUserCache", "listDatabases"]);
            for c in AUTH_COLLECTIONS {
                p.add(Resource::coll("admin", c), &["find"]);
            }
        }
        "clusterMonitor" => {
            p.add(Resource::Cluster, CLUSTER_MONITOR);
            p.add(Resource::any_db(), CLUSTER_MONITOR_ANY_DB);
        }
        "hostManager" => {
            p.add(Resource::Cluster, HOST_MANAGER);
            p.add(Resource::any_db(), &["killCursors", "repairDatabase"]);
        }
        "clusterManager" => p.add(Resource::Cluster, CLUSTER_MANAGER),
        "clusterAdmin" => {
            for r in ["clusterManager", "clusterMonitor", "hostManager"] {
                p.merge(&builtin(r, db).unwrap_or_default());
            }
            p.add(Resource::any_db(), &["dropDatabase"]);
        }
        "backup" => {
            p.add(Resource::Cluster, BACKUP_CLUSTER);
            p.add(Resource::any_db(), BACKUP_ANY_DB);
            for c in AUTH_COLLECTIONS {
                p.add(Resource::coll("admin", c), &["find"]);
            }
        }
        "restore" => {
            p.add(Resource::any_db(), RESTORE_ANY_DB);
            for c in AUTH_COLLECTIONS {
                p.add(Resource::coll("admin", c), &["find", "insert", "remove", "update", "createIndex"]);
            }
        }
        "root" => {
            for r in [
                "readWriteAnyDatabase",
                "dbAdminAnyDatabase",
                "userAdminAnyDatabase",
                "clusterAdmin",
                "restore",
                "backup",
            ] {
                p.merge(&builtin(r, db).unwrap_or_default());
            }
            // Root may validate and inspect the system collections too.
            p.add(Resource::coll("", "system.profile"), DB_ADMIN_PROFILE);
        }
        _ => return None,
    }
    Some(p)
}

/// Every action any built-in role grants, plus the few only custom roles name.
pub fn is_known_action(a: &str) -> bool {
    const EXTRA: &[&str] = &["anyAction", "changeOwnPassword", "changeOwnCustomData", "killAnyCursor"];
    [
        READ,
        READ_WRITE_EXTRA,
        DB_ADMIN,
        DB_ADMIN_PROFILE,
        USER_ADMIN,
        CLUSTER_MONITOR,
        CLUSTER_MONITOR_ANY_DB,
        HOST_MANAGER,
        CLUSTER_MANAGER,
        BACKUP_CLUSTER,
        BACKUP_ANY_DB,
        RESTORE_ANY_DB,
        EXTRA,
        &["authSchemaUpgrade", "repairDatabase"],
    ]
    .iter()
    .any(|set| set.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_wide_privileges_skip_system_collections() {
        let p = builtin("readWrite", "a").unwrap();
        assert!(p.allows(&Resource::coll("a", "c"), "insert"));
        assert!(!p.allows(&Resource::coll("b", "c"), "find"));
        assert!(!p.allows(&Resource::coll("a", "system.users"), "find"));
        assert!(p.allows(&Resource::db("a"), "listCollections"));
        assert!(!p.allows(&Resource::Cluster, "listDatabases"));
    }

    #[test]
    fn any_database_roles_live_in_admin_only() {
        assert!(builtin("readAnyDatabase", "test").is_none());
        let p = builtin("readAnyDatabase", "admin").unwrap();
        assert!(p.allows(&Resource::coll("x", "y"), "find"));
        assert!(!p.allows(&Resource::coll("x", "y"), "insert"));
        assert!(p.allows(&Resource::Cluster, "listDatabases"));
    }

    #[test]
    fn root_includes_its_component_roles() {
        let root = builtin("root", "admin").unwrap();
        for r in ["readWriteAnyDatabase", "userAdminAnyDatabase", "clusterAdmin", "backup"] {
            for (res, actions) in &builtin(r, "admin").unwrap().0 {
                for a in actions {
                    assert!(root.allows(res, a), "root lacks {a} on {res:?}");
                }
            }
        }
    }

    #[test]
    fn privileges_parse_and_reject_unknown_actions() {
        let v =
            vec![Bson::Document(doc! { "resource": { "db": "a", "collection": "c" }, "actions": ["find"] })];
        let p = Privileges::from_bson(&v).unwrap();
        assert!(p.allows(&Resource::coll("a", "c"), "find"));
        let bad =
            vec![Bson::Document(doc! { "resource": { "db": "a", "collection": "c" }, "actions": ["fly"] })];
        assert!(Privileges::from_bson(&bad).is_err());
    }
}
