//! The one table of commands: name, aliases, handler, whether it runs before authentication,
//! and one line of help. `listCommands` is generated from it.

use super::{
    admin, catalog, count, cursor, explain, failpoint, find, find_and_modify, handshake, index, session,
    transaction, write, Ctx, Request,
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
    cmd("buildInfo", &["buildinfo"], admin::build_info, true, "server version and build details"),
    cmd("collMod", &[], catalog::coll_mod, false, "change collection options"),
    cmd("collStats", &[], catalog::coll_stats, false, "sizes and counts of one collection"),
    cmd("commitTransaction", &[], transaction::outside_transaction, false, "commit the session's transaction"),
    cmd("connectionStatus", &[], admin::connection_status, true, "authenticated users of this connection"),
    cmd("count", &[], count::count, false, "count documents matching a filter"),
    cmd("create", &[], catalog::create, false, "create a collection"),
    cmd("createIndexes", &[], index::create_indexes, false, "build indexes"),
    cmd("createSearchIndexes", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("dbStats", &[], catalog::db_stats, false, "sizes and counts of one database"),
    cmd("delete", &[], write::delete, false, "delete documents"),
    cmd("distinct", &[], count::distinct, false, "distinct values of a field"),
    cmd("drop", &[], catalog::drop, false, "drop a collection"),
    cmd("dropDatabase", &[], catalog::drop_database, false, "drop a database"),
    cmd("dropIndexes", &["deleteIndexes"], index::drop_indexes, false, "drop indexes"),
    cmd("dropSearchIndex", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("endSessions", &[], session::end_sessions, false, "end logical sessions"),
    cmd("explain", &[], explain::explain, false, "the plan of a find, count, distinct, update, delete or findAndModify"),
    cmd("find", &[], find::find, false, "query documents"),
    cmd("findAndModify", &["findandmodify"], find_and_modify::find_and_modify, false, "update or delete one document and return it"),
    cmd("fsync", &[], catalog::fsync, false, "flush the journal and checkpoint"),
    cmd("getCmdLineOpts", &[], admin::get_cmd_line_opts, false, "the server's command-line options"),
    cmd("getLog", &[], admin::get_log, false, "recent log lines"),
    cmd("getMore", &[], cursor::get_more, false, "next batch of a cursor"),
    cmd("getParameter", &[], admin::get_parameter, false, "server parameters"),
    cmd("hello", &[], handshake::hello, true, "handshake and topology"),
    cmd("hostInfo", &[], admin::host_info, false, "the host the server runs on"),
    cmd("insert", &[], write::insert, false, "insert documents"),
    cmd("isMaster", &["ismaster"], handshake::is_master, true, "legacy handshake"),
    cmd("killAllSessions", &[], session::kill_all_sessions, false, "kill every session of the given users"),
    cmd("killAllSessionsByPattern", &[], session::kill_all_sessions_by_pattern, false, "kill the sessions matching patterns"),
    cmd("killCursors", &[], cursor::kill_cursors, false, "close cursors"),
    cmd("killSessions", &[], session::kill_sessions, false, "kill logical sessions' cursors"),
    cmd("listCollections", &[], catalog::list_collections, false, "collections of a database"),
    cmd("listCommands", &[], admin::list_commands, true, "this list"),
    cmd("listDatabases", &[], catalog::list_databases, false, "databases with their sizes"),
    cmd("listIndexes", &[], index::list_indexes, false, "indexes of a collection"),
    cmd("ping", &[], admin::ping, true, "check the server answers"),
    cmd("planCacheClear", &[], explain::plan_cache_clear, false, "forget cached query plans of a collection"),
    cmd("refreshSessions", &[], session::refresh_sessions, false, "keep logical sessions alive"),
    cmd("renameCollection", &[], catalog::rename_collection, false, "rename a collection"),
    cmd("serverStatus", &[], admin::server_status, false, "server statistics"),
    cmd("startSession", &[], session::start_session, false, "start a logical session"),
    cmd("update", &[], write::update, false, "update documents"),
    cmd("updateSearchIndex", &[], catalog::search_index_unsupported, false, "Atlas Search only: refused"),
    cmd("validate", &[], catalog::validate, false, "check a collection's records and indexes"),
    cmd("whatsmyuri", &[], admin::whats_my_uri, true, "the client's address as the server sees it"),
];

/// Test-only commands, found only when the server runs with test commands enabled.
#[rustfmt::skip]
pub static TEST_COMMANDS: &[CommandSpec] = &[
    cmd("configureFailPoint", &[], failpoint::configure_fail_point, false, "set a fail point (test command)"),
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
