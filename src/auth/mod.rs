//! Authentication (SCRAM-SHA-1/SCRAM-SHA-256) and role-based authorization (issue 6).
//!
//! Without `--auth` every connection may run every command, as a mongod without access control
//! does (clients may still authenticate). With it, the dispatcher calls `check` before each
//! command: a command not marked `pre_auth` needs an authenticated user whose roles grant the
//! actions `privileges::required` lists, except for the localhost exception.

pub mod privileges;
pub mod restrictions;
pub mod roles;
pub mod scram;
pub mod users;

use crate::cmd::{format, ConnState, Request};
use crate::error::{ErrorCode, MongoError, Result};
use crate::server::Shared;
use crate::store::StoreSession;
use privileges::Need;
use roles::{Privileges, Resource};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use users::Name;

/// Server-wide authentication state.
#[derive(Default)]
pub struct AuthShared {
    /// Bumped by every change to users or roles: connections re-resolve their privileges.
    generation: AtomicU64,
    /// Whether any user or role exists (0: not known yet, 1: none, 2: some); the localhost
    /// exception applies only while there is none.
    users_exist: AtomicU8,
    /// serverStatus counters, per mechanism (SCRAM-SHA-1, SCRAM-SHA-256).
    stats: [MechStats; 2],
}

#[derive(Default)]
struct MechStats {
    received: AtomicU64,
    successful: AtomicU64,
    speculative_received: AtomicU64,
    speculative_successful: AtomicU64,
}

impl AuthShared {
    /// Called after any change to `admin.system.users` or `admin.system.roles`.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.users_exist.store(0, Ordering::SeqCst);
    }

    fn mech(&self, m: scram::Mechanism) -> &MechStats {
        match m {
            scram::Mechanism::Sha1 => &self.stats[0],
            scram::Mechanism::Sha256 => &self.stats[1],
        }
    }

    /// Counts a conversation started (`success` false) or completed (true).
    pub fn count(&self, m: scram::Mechanism, speculative: bool, success: bool) {
        let s = self.mech(m);
        let (all, spec) = if success {
            (&s.successful, &s.speculative_successful)
        } else {
            (&s.received, &s.speculative_received)
        };
        all.fetch_add(1, Ordering::Relaxed);
        if speculative {
            spec.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// serverStatus's `security.authentication`.
    pub fn stats_doc(&self) -> bson::Document {
        let mut mechanisms = bson::Document::new();
        for m in scram::Mechanism::ALL {
            let s = self.mech(m);
            let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
            mechanisms.insert(
                m.name(),
                bson::doc! {
                    "speculativeAuthenticate": {
                        "received": n(&s.speculative_received),
                        "successful": n(&s.speculative_successful),
                    },
                    "authenticate": { "received": n(&s.received), "successful": n(&s.successful) },
                },
            );
        }
        bson::doc! { "mechanisms": mechanisms }
    }
}

/// A SCRAM conversation waiting for the client's next message.
pub struct Pending {
    pub id: i32,
    pub user: Name,
    pub conv: scram::Conversation,
    /// The proof was accepted and the server-final message sent; only the client's empty
    /// closing message remains (when it did not ask to skip it).
    pub proved: bool,
    pub skip_empty: bool,
    /// Started by hello's speculativeAuthenticate.
    pub speculative: bool,
}

/// Roles (direct and inherited) and privileges of a connection's users.
#[derive(Debug, Default)]
pub struct Resolved {
    pub roles: BTreeSet<Name>,
    pub privileges: Privileges,
    /// The non-empty `authenticationRestrictions` of the custom roles reached.
    pub restrictions: Vec<Vec<bson::Bson>>,
}

/// What one connection knows about its authentication.
#[derive(Default)]
pub struct ConnAuth {
    pub users: Vec<Name>,
    pub conversation: Option<Pending>,
    /// The privileges the running command was authorized by: a cursor it opens keeps them,
    /// and each getMore checks them again (mongod's originating privileges).
    pub checked: Vec<(Resource, String)>,
    cache: Option<(u64, Arc<Resolved>)>,
}

impl ConnAuth {
    /// Replaces the connection's user (mongod keeps one authenticated user per connection).
    pub fn login(&mut self, user: Name) {
        self.users = vec![user];
        self.cache = None;
    }

    pub fn logout(&mut self, db: &str) {
        self.users.retain(|u| u.db != db);
        self.cache = None;
    }
}

/// The roles reachable from `roots` (through custom roles' `roles`) and their privileges.
/// Roles that do not exist contribute nothing, as in mongod.
pub fn resolve_roles(store: &mut StoreSession, roots: &[Name]) -> Result<Resolved> {
    let mut custom: Option<std::collections::HashMap<String, bson::Document>> = None;
    let mut out = Resolved::default();
    let mut todo: Vec<Name> = roots.to_vec();
    while let Some(role) = todo.pop() {
        if !out.roles.insert(role.clone()) {
            continue;
        }
        if let Some(p) = roles::builtin(&role.name, &role.db) {
            out.privileges.merge(&p);
            continue;
        }
        if custom.is_none() {
            let docs = users::all(store, users::ROLES)?;
            custom = Some(
                docs.into_iter()
                    .filter_map(|d| Some((d.get_str("_id").ok()?.to_string(), d.clone())))
                    .collect(),
            );
        }
        let Some(d) = custom.as_ref().and_then(|m| m.get(&role.id())) else {
            continue;
        };
        if let Ok(p) =
            d.get_array("privileges").map_err(|_| String::new()).and_then(|a| Privileges::from_bson(a))
        {
            out.privileges.merge(&p);
        }
        let r = restrictions::of(d);
        if !r.is_empty() {
            out.restrictions.push(r);
        }
        todo.extend(users::roles_of(d));
    }
    Ok(out)
}

/// The connection's resolved roles and privileges, recomputed after any user or role change.
pub fn resolved(shared: &Shared, store: &mut StoreSession, conn: &mut ConnState) -> Result<Arc<Resolved>> {
    let generation = shared.auth.generation.load(Ordering::SeqCst);
    if let Some((g, r)) = &conn.auth.cache {
        if *g == generation {
            return Ok(r.clone());
        }
    }
    let mut roots = Vec::new();
    for u in &conn.auth.users {
        if let Some(d) = users::get(store, users::USERS, &u.id())? {
            roots.extend(users::roles_of(&d));
        }
    }
    let r = Arc::new(resolve_roles(store, &roots)?);
    conn.auth.cache = Some((generation, r.clone()));
    Ok(r)
}

/// Whether user document `user` may log in from this connection: its own restrictions and
/// those of every role it inherits must each admit the client and server addresses.
pub fn restrictions_allow(store: &mut StoreSession, conn: &ConnState, user: &bson::Document) -> Result<bool> {
    let client = conn.peer.map(|a| a.ip());
    let server = conn.local.map(|a| a.ip());
    if !restrictions::list_allows(&restrictions::of(user), client, server) {
        return Ok(false);
    }
    let r = resolve_roles(store, &users::roles_of(user))?;
    Ok(r.restrictions.iter().all(|l| restrictions::list_allows(l, client, server)))
}

/// True while no user and no role exists (the localhost exception's condition).
fn no_users_yet(shared: &Shared, store: &mut StoreSession) -> Result<bool> {
    match shared.auth.users_exist.load(Ordering::SeqCst) {
        1 => return Ok(true),
        2 => return Ok(false),
        _ => {}
    }
    let none = users::all(store, users::USERS)?.is_empty() && users::all(store, users::ROLES)?.is_empty();
    shared.auth.users_exist.store(if none { 1 } else { 2 }, Ordering::SeqCst);
    Ok(none)
}

fn is_localhost(conn: &ConnState) -> bool {
    conn.peer.is_some_and(|p| p.ip().is_loopback())
}

/// mongod's `isCoauthorizedWith`: with `--auth`, a cursor may be continued or killed only from
/// a connection where one of the users that opened it is logged in (a cursor opened by no user
/// belongs to everyone). Without `--auth` every cursor belongs to everyone.
pub fn coauthorized(shared: &Shared, conn: &ConnState, owners: &[Name]) -> bool {
    !shared.config.auth || owners.is_empty() || owners.iter().any(|o| conn.auth.users.contains(o))
}

/// getMore: the connection must still hold the privileges the cursor was opened with.
pub fn may_continue(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &mut ConnState,
    privileges: &[(Resource, String)],
) -> Result<bool> {
    if !shared.config.auth || privileges.is_empty() {
        return Ok(true);
    }
    let r = resolved(shared, store, conn)?;
    Ok(privileges.iter().all(|(res, action)| r.privileges.allows(res, action)))
}

/// killCursors: a user may kill the cursors it opened, and any cursor with `killAnyCursor` on
/// the cluster or on the cursor's namespace.
pub fn may_kill_cursor(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &mut ConnState,
    owner: &crate::cursors::Owner,
    ns: &str,
) -> Result<bool> {
    if coauthorized(shared, conn, &owner.users) {
        return Ok(true);
    }
    let ns = owner.ns.as_deref().unwrap_or(ns);
    let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
    let r = resolved(shared, store, conn)?;
    Ok(r.privileges.allows(&Resource::Cluster, "killAnyCursor")
        || r.privileges.allows(&Resource::coll(db, coll), "killAnyCursor"))
}

/// A session id as mongod's messages print it: `<uuid> - <uid>`, where the uid is the
/// base64 SHA-256 digest of the owning user's `db.user` name (of "" without a user).
pub fn session_display(id: crate::sessions::SessionId, users: &[Name]) -> String {
    use base64::Engine;
    format!("{id} - {}", base64::engine::general_purpose::STANDARD.encode(user_digest(users)))
}

/// A session's `uid`: the SHA-256 digest of its user's `db.user` name, or of "" without one.
pub fn user_digest(users: &[Name]) -> Vec<u8> {
    let name = users.first().map(|u| u.id()).unwrap_or_default();
    ring::digest::digest(&ring::digest::SHA256, name.as_bytes()).as_ref().to_vec()
}

pub fn not_authorized(req: &Request) -> MongoError {
    MongoError::new(
        ErrorCode::Unauthorized,
        format!("not authorized on {} to execute command {}", req.db, format::shell(&req.body)),
    )
}

/// Authorizes `req` (run as registry command `name`) for this connection.
pub fn check(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &mut ConnState,
    name: &str,
    pre_auth: bool,
    req: &Request,
) -> Result<()> {
    conn.auth.checked.clear();
    if !shared.config.auth || pre_auth {
        return Ok(());
    }
    if conn.auth.users.is_empty() {
        // The localhost exception: with no user or role yet, a local client may create the
        // first user (in admin) or role.
        let first = (name == "createUser" && req.db == users::AUTH_DB) || name == "createRole";
        if first && is_localhost(conn) && no_users_yet(shared, store)? {
            return Ok(());
        }
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            format!("Command {name} requires authentication"),
        ));
    }
    let need = privileges::required(name, req);
    if name == "usersInfo" {
        // Users may always look at themselves.
        if let Some(asked) = privileges::users_asked(req) {
            if asked.iter().all(|a| conn.auth.users.contains(a)) {
                return Ok(());
            }
        }
    }
    let r = resolved(shared, store, conn)?;
    let ok = match need {
        Need::Nothing => true,
        Need::All(v) => {
            let ok = v.iter().all(|(res, action)| r.privileges.allows(res, action));
            conn.auth.checked = v;
            ok
        }
        Need::ListDatabases { must_have_action } => {
            !must_have_action || r.privileges.allows(&Resource::Cluster, "listDatabases")
        }
    };
    if ok || (name == "updateUser" && privileges::own_update_allowed(req, &conn.auth.users, &r.privileges)) {
        Ok(())
    } else {
        Err(not_authorized(req))
    }
}

/// listCollections with `authorizedCollections` and `nameOnly` from a user without the
/// `listCollections` action on the database: the privileges whose collections it may see.
/// None when nothing is filtered.
pub fn authorized_collections(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: &Request,
) -> Result<Option<Arc<Resolved>>> {
    let flag = |f: &str| matches!(req.body.get(f), Some(bson::Bson::Boolean(true)));
    if !shared.config.auth || !flag("authorizedCollections") || !flag("nameOnly") {
        return Ok(None);
    }
    let r = resolved(shared, store, conn)?;
    if r.privileges.allows(&Resource::db(&req.db), "listCollections") {
        return Ok(None);
    }
    Ok(Some(r))
}

/// listDatabases for a user without the `listDatabases` action lists only the databases the
/// user has privileges on (mongod's authorizedDatabases).
pub fn filter_list_databases(
    shared: &Shared,
    store: &mut StoreSession,
    conn: &mut ConnState,
    req: &Request,
    reply: &mut bson::Document,
) -> Result<()> {
    if !shared.config.auth || conn.auth.users.is_empty() {
        return Ok(());
    }
    let r = resolved(shared, store, conn)?;
    // authorizedDatabases: true lists only the authorized databases even to a user that may
    // list them all; unset, the action decides.
    let only_authorized = matches!(req.body.get("authorizedDatabases"), Some(bson::Bson::Boolean(true)));
    if !only_authorized && r.privileges.allows(&Resource::Cluster, "listDatabases") {
        return Ok(());
    }
    let Ok(dbs) = reply.get_array("databases") else {
        return Ok(());
    };
    let kept: Vec<bson::Bson> = dbs
        .iter()
        .filter(|d| {
            d.as_document().and_then(|d| d.get_str("name").ok()).is_some_and(|n| r.privileges.touches_db(n))
        })
        .cloned()
        .collect();
    if reply.contains_key("totalSize") {
        let total: i64 = kept
            .iter()
            .filter_map(|d| d.as_document())
            .map(|d| match d.get("sizeOnDisk") {
                Some(bson::Bson::Int64(n)) => *n,
                Some(bson::Bson::Int32(n)) => i64::from(*n),
                Some(bson::Bson::Double(n)) => *n as i64,
                _ => 0,
            })
            .sum();
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("databases", kept);
    Ok(())
}
