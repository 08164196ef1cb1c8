//! The one table of commands: name, aliases, handler, whether it runs before authentication,
//! and one line of help. `listCommands` is generated from it.

use super::{
    admin, auth, catalog, count, current_op, cursor, explain, failpoint, find, find_and_modify, handshake,
    index, profile, roles, session, transaction, users, write, Ctx, Request,
};
use crate::error::Result;
use bson::Document;
use std::collections::HashMap;
use std::sync::OnceLock;

pub type Handler = fn(&mut Ctx, &Request) -> Result<Document>;

pub struct CommandSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub handler: Handler,
    /// Runs on a connection that has not authenticated (hello, ping, ...).
    pub pre_auth: bool,
    pub help: &'static str,
}

const fn cmd(
    name: &'static str,
    aliases: &'static [&'static str],
    handler: Handler,
    pre_auth: bool,
    help: &'static str,
) -> CommandSpec {
    CommandSpec { name, aliases, handler, pre_auth, help }
}

/// Sorted by name (a unit test checks it).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd("abortTransaction", &[], transaction::outside_transaction, false, "roll back the session's transaction"),
    cmd("aggregate", &[], find::aggregate, false, "run an aggregation pipeline (subset until the aggregation issue)"),
    cmd("authenticate", &[], auth::authenticate, true, "legacy authentication (MONGODB-X509 needs TLS)"),
    cmd("buildInfo", &["buildinfo"], admin::build_info, true, "server version and build details"),
    cmd("collMod", &[], catalog::coll_mod, false, "change collection options"),
    cmd("collStats", &["collstats"], catalog::coll_stats, false, "sizes and counts of one collection"),
    cmd("commitTransaction", &[], transaction::outside_transaction, false, "commit the session's transaction"),
    cmd("connectionStatus", &[], admin::connection_status, true, "authenticated users of this connection"),
    cmd("count", &[], count::count, false, "count documents matching a filter"),
    cmd("create", &[], catalog::create, false, "create a collection"),
    cmd("createIndexes", &[], index::create_indexes, false, "build indexes"),
    cmd("createRole", &[], roles::create_role, false, "create a custom role"),
    cmd("createSearchIndexes", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("createUser", &[], users::create_user, false, "create a user"),
    cmd("currentOp", &[], current_op::current_op, false, "operations in progress"),
    cmd("dbStats", &["dbstats"], catalog::db_stats, false, "sizes and counts of one database"),
    cmd("delete", &[], write::delete, false, "delete documents"),
    cmd("distinct", &[], count::distinct, false, "distinct values of a field"),
    cmd("drop", &[], catalog::drop, false, "drop a collection"),
    cmd("dropAllUsersFromDatabase", &[], users::drop_all_users_from_database, false, "drop every user of a database"),
    cmd("dropDatabase", &[], catalog::drop_database, false, "drop a database"),
    cmd("dropIndexes", &["deleteIndexes"], index::drop_indexes, false, "drop indexes"),
    cmd("dropRole", &[], roles::drop_role, false, "drop a custom role"),
    cmd("dropSearchIndex", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("dropUser", &[], users::drop_user, false, "drop a user"),
    cmd("endSessions", &[], session::end_sessions, false, "end logical sessions"),
    cmd("explain", &[], explain::explain, false, "the plan of a find, count, distinct, update, delete or findAndModify"),
    cmd("find", &[], find::find, false, "query documents"),
    cmd("findAndModify", &["findandmodify"], find_and_modify::find_and_modify, false, "update or delete one document and return it"),
    cmd("fsync", &[], catalog::fsync, false, "flush the journal and checkpoint"),
    cmd("getCmdLineOpts", &[], admin::get_cmd_line_opts, false, "the server's command-line options"),
    cmd("getLog", &[], admin::get_log, false, "recent log lines"),
    cmd("getMore", &[], cursor::get_more, false, "next batch of a cursor"),
    cmd("getParameter", &[], admin::get_parameter, false, "server parameters"),
    cmd("grantPrivilegesToRole", &[], roles::grant_privileges_to_role, false, "add privileges to a custom role"),
    cmd("grantRolesToRole", &[], roles::grant_roles_to_role, false, "make a custom role inherit roles"),
    cmd("grantRolesToUser", &[], users::grant_roles_to_user, false, "grant roles to a user"),
    cmd("hello", &[], handshake::hello, true, "handshake and topology"),
    cmd("hostInfo", &[], admin::host_info, false, "the host the server runs on"),
    cmd("insert", &[], write::insert, false, "insert documents"),
    cmd("isMaster", &["ismaster"], handshake::is_master, true, "legacy handshake"),
    cmd("killAllSessions", &[], session::kill_all_sessions, false, "kill every session of the given users"),
    cmd("killAllSessionsByPattern", &[], session::kill_all_sessions_by_pattern, false, "kill the sessions matching patterns"),
    cmd("killCursors", &[], cursor::kill_cursors, false, "close cursors"),
    cmd("killOp", &[], current_op::kill_op, false, "interrupt an operation in progress"),
    cmd("killSessions", &[], session::kill_sessions, false, "kill logical sessions' cursors"),
    cmd("listCollections", &[], catalog::list_collections, false, "collections of a database"),
    cmd("listCommands", &[], admin::list_commands, true, "this list"),
    cmd("listDatabases", &[], catalog::list_databases, false, "databases with their sizes"),
    cmd("listIndexes", &[], index::list_indexes, false, "indexes of a collection"),
    cmd("logout", &[], auth::logout, true, "log out the users of a database"),
    cmd("ping", &[], admin::ping, true, "check the server answers"),
    cmd("planCacheClear", &[], explain::plan_cache_clear, false, "forget cached query plans of a collection"),
    cmd("profile", &[], profile::profile, false, "set or read the database profiler's level"),
    cmd("refreshSessions", &[], session::refresh_sessions, false, "keep logical sessions alive"),
    cmd("renameCollection", &[], catalog::rename_collection, false, "rename a collection"),
    cmd("revokePrivilegesFromRole", &[], roles::revoke_privileges_from_role, false, "remove privileges from a custom role"),
    cmd("revokeRolesFromRole", &[], roles::revoke_roles_from_role, false, "remove inherited roles from a custom role"),
    cmd("revokeRolesFromUser", &[], users::revoke_roles_from_user, false, "revoke roles from a user"),
    cmd("rolesInfo", &[], roles::roles_info, false, "describe roles"),
    cmd("saslContinue", &[], auth::sasl_continue, true, "continue a SASL (SCRAM) conversation"),
    cmd("saslStart", &[], auth::sasl_start, true, "start a SASL (SCRAM) conversation"),
    cmd("serverStatus", &[], admin::server_status, false, "server statistics"),
    cmd("setParameter", &[], admin::set_parameter, false, "change a runtime server parameter"),
    cmd("startSession", &[], session::start_session, false, "start a logical session"),
    cmd("update", &[], write::update, false, "update documents"),
    cmd("updateRole", &[], roles::update_role, false, "replace a custom role's privileges or roles"),
    cmd("updateSearchIndex", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("updateUser", &[], users::update_user, false, "change a user's password, roles or customData"),
    cmd("usersInfo", &[], users::users_info, false, "describe users"),
    cmd("validate", &[], catalog::validate, false, "check a collection's records and indexes"),
    cmd("whatsmyuri", &[], admin::whats_my_uri, true, "the client's address as the server sees it"),
];

/// Test-only commands, found only when the server runs with test commands enabled.
#[rustfmt::skip]
pub static TEST_COMMANDS: &[CommandSpec] = &[
    cmd("configureFailPoint", &[], failpoint::configure_fail_point, false, "set a fail point (test command)"),
    cmd("testVersion2", &[], failpoint::test_version_2, false, "a command only in API version 2 (test command)"),
];

pub fn lookup_test(name: &str) -> Option<&'static CommandSpec> {
    TEST_COMMANDS.iter().find(|c| c.name == name)
}

fn index() -> &'static HashMap<&'static str, &'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for c in COMMANDS {
            m.insert(c.name, c);
            for a in c.aliases {
                m.insert(*a, c);
            }
        }
        m
    })
}

pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    index().get(name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut all: Vec<&str> =
            COMMANDS.iter().flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied())).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(lookup("ismaster").is_some());
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_lowercase());
        assert_eq!(names, sorted);
        assert!(lookup("nosuch").is_none());
    }
}
