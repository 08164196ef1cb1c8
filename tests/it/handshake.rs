//! hello / isMaster, ping, buildInfo, serverStatus, listCommands and unknown commands.

use crate::common::{self, as_i64, assert_command_error, assert_ok, num, raw};
use mongodb::bson::{doc, Bson, Document};

/// maxWireVersion mongod reports for a `major.minor` release.
fn wire_version_for(major: i32, minor: i32) -> Option<i32> {
    match (major, minor) {
        (4, 4) => Some(9),
        (5, 0) => Some(13),
        (6, 0) => Some(17),
        (7, 0) => Some(21),
        (7, 1) => Some(22),
        (7, 2) => Some(23),
        (7, 3) => Some(24),
        (8, 0) => Some(25),
        _ => None,
    }
}

fn build_info(env: &common::Env) -> Document {
    let bi = env.admin_cmd(doc! {"buildInfo": 1}).expect("buildInfo");
    assert_ok(&bi);
    bi
}

/// The fields every hello/isMaster reply carries, whatever the topology.
fn assert_common_hello_fields(h: &Document) {
    assert_eq!(h.get("maxBsonObjectSize"), Some(&Bson::Int32(16_777_216)), "{h}");
    assert_eq!(h.get("maxMessageSizeBytes"), Some(&Bson::Int32(48_000_000)), "{h}");
    assert_eq!(h.get("maxWriteBatchSize"), Some(&Bson::Int32(100_000)), "{h}");
    assert_eq!(h.get("logicalSessionTimeoutMinutes"), Some(&Bson::Int32(30)), "{h}");
    assert_eq!(h.get("minWireVersion"), Some(&Bson::Int32(0)), "{h}");
    assert!(matches!(h.get("maxWireVersion"), Some(Bson::Int32(v)) if *v >= 17), "{h}");
    assert!(matches!(h.get("localTime"), Some(Bson::DateTime(_))), "localTime: {h}");
    assert_eq!(h.get("readOnly"), Some(&Bson::Boolean(false)), "{h}");
    let conn_id = h.get("connectionId").expect("connectionId");
    assert!(matches!(conn_id, Bson::Int32(_) | Bson::Int64(_)), "connectionId type: {h}");
    assert!(as_i64(conn_id) > 0, "{h}");
    let tv = h.get_document("topologyVersion").expect("topologyVersion is a document");
    assert!(matches!(tv.get("processId"), Some(Bson::ObjectId(_))), "{tv}");
    assert!(matches!(tv.get("counter"), Some(Bson::Int64(_))), "counter must be int64: {tv}");
    assert_ok(h);
}

#[test]
fn hello_replica_set_persona() {
    let env = common::start();
    let h = env.admin_cmd(doc! {"hello": 1}).expect("hello");
    assert_common_hello_fields(&h);
    assert_eq!(h.get("isWritablePrimary"), Some(&Bson::Boolean(true)), "{h}");
    assert_eq!(h.get("secondary"), Some(&Bson::Boolean(false)), "{h}");
    assert_eq!(h.get_str("setName").expect("setName"), "secantus");
    let me = h.get_str("me").expect("me");
    assert_eq!(h.get_str("primary").expect("primary"), me);
    let hosts = h.get_array("hosts").expect("hosts");
    assert_eq!(hosts, &vec![Bson::String(me.to_string())], "{h}");
    assert_eq!(me, format!("127.0.0.1:{}", env.server.addr().port()));
    assert!(h.get("setVersion").map(as_i64).unwrap_or(0) >= 1, "setVersion: {h}");
    // hello is not isMaster: the legacy field name must not appear.
    assert!(h.get("ismaster").is_none(), "{h}");

    let bi = build_info(&env);
    let va = bi.get_array("versionArray").expect("versionArray");
    let (major, minor) = (as_i64(&va[0]) as i32, as_i64(&va[1]) as i32);
    let expected =
        wire_version_for(major, minor).unwrap_or_else(|| panic!("unexpected version {major}.{minor}"));
    assert_eq!(h.get("maxWireVersion"), Some(&Bson::Int32(expected)), "{h}");
}

#[test]
fn hello_standalone_has_no_set_fields() {
    let env = common::start_with(common::builder().standalone(true));
    let h = env.admin_cmd(doc! {"hello": 1}).expect("hello");
    assert_common_hello_fields(&h);
    assert_eq!(h.get("isWritablePrimary"), Some(&Bson::Boolean(true)), "{h}");
    for f in ["setName", "hosts", "primary", "setVersion"] {
        assert!(h.get(f).is_none(), "standalone hello has {f}: {h}");
    }
}

#[test]
fn is_master_uses_legacy_field_name() {
    let env = common::start();
    for name in ["isMaster", "ismaster"] {
        let h = env.admin_cmd(doc! {name: 1}).expect("isMaster");
        assert_common_hello_fields(&h);
        assert_eq!(h.get("ismaster"), Some(&Bson::Boolean(true)), "{name}: {h}");
        assert!(h.get("isWritablePrimary").is_none(), "{name}: {h}");
    }
    let h = env.admin_cmd(doc! {"isMaster": 1, "helloOk": true}).expect("isMaster");
    assert_eq!(h.get("helloOk"), Some(&Bson::Boolean(true)), "{h}");
}

#[test]
fn hello_topology_version_is_stable_and_connection_ids_differ() {
    let env = common::start();
    let addr = env.server.addr();
    let a = raw::command(addr, &doc! {"hello": 1, "$db": "admin"});
    let b = raw::command(addr, &doc! {"hello": 1, "$db": "admin"});
    assert_ne!(a.get("connectionId"), b.get("connectionId"), "two connections, one id");
    let (ta, tb) =
        (a.get_document("topologyVersion").expect("tv"), b.get_document("topologyVersion").expect("tv"));
    assert_eq!(ta.get("processId"), tb.get("processId"));
    assert_eq!(ta.get("counter"), tb.get("counter"));

    // A restarted server is a new process: a new processId.
    let other = common::start();
    let c = raw::command(other.server.addr(), &doc! {"hello": 1, "$db": "admin"});
    let tc = c.get_document("topologyVersion").expect("tv");
    assert_ne!(ta.get("processId"), tc.get("processId"));
}

#[test]
fn ping_replies_ok() {
    let env = common::start();
    let r = env.admin_cmd(doc! {"ping": 1}).expect("ping");
    assert_ok(&r);
    // ping works against any database, not only admin.
    let r = env.db("ping").run_command(doc! {"ping": 1}).run().expect("ping");
    assert_ok(&r);
}

#[test]
fn build_info_version_fields() {
    let env = common::start();
    let bi = build_info(&env);
    let version = bi.get_str("version").expect("version string").to_string();
    let parts: Vec<i32> =
        version.split('.').map(|p| p.parse().unwrap_or_else(|_| panic!("version {version:?}"))).collect();
    assert_eq!(parts.len(), 3, "version {version:?}");
    let va = bi.get_array("versionArray").expect("versionArray");
    assert_eq!(va.len(), 4, "{bi}");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(va[i], Bson::Int32(*p), "versionArray[{i}] in {bi}");
    }
    assert!(matches!(va[3], Bson::Int32(_)), "{bi}");
    assert_eq!(bi.get("maxBsonObjectSize"), Some(&Bson::Int32(16_777_216)), "{bi}");
    assert!(bi.get_str("gitVersion").is_ok(), "gitVersion: {bi}");
    // The lowercase alias answers the same.
    let lower = env.admin_cmd(doc! {"buildinfo": 1}).expect("buildinfo");
    assert_eq!(lower.get_str("version").expect("version"), version);
}

#[test]
fn unknown_command_is_command_not_found() {
    let env = common::start();
    let msg = assert_command_error(env.admin_cmd(doc! {"noSuchCommandXyz": 1}), 59, "CommandNotFound");
    assert!(msg.contains("noSuchCommandXyz"), "errmsg should name the command: {msg}");

    // Raw reply shape: ok is the double 0, code int32.
    let r = raw::command(env.server.addr(), &doc! {"noSuchCommandXyz": 1, "$db": "admin"});
    assert_eq!(r.get("ok"), Some(&Bson::Double(0.0)), "{r}");
    assert_eq!(r.get("code"), Some(&Bson::Int32(59)), "{r}");
    assert_eq!(r.get_str("codeName").expect("codeName"), "CommandNotFound");
    assert!(r.get_str("errmsg").is_ok(), "{r}");
    // The server still serves commands on the same client afterwards.
    assert_ok(&env.admin_cmd(doc! {"ping": 1}).expect("ping"));
}

#[test]
fn server_status_reports_uptime_connections_opcounters() {
    let env = common::start();
    let before = env.admin_cmd(doc! {"serverStatus": 1}).expect("serverStatus");
    assert_ok(&before);
    let uptime = before.get("uptime").expect("uptime");
    assert!(matches!(uptime, Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_)), "{before}");
    let conns = before.get_document("connections").expect("connections");
    assert!(num(conns, "current") >= 1, "{conns}");
    assert!(num(conns, "totalCreated") >= num(conns, "current"), "{conns}");
    assert!(conns.contains_key("available"), "{conns}");
    let op = before.get_document("opcounters").expect("opcounters");
    for k in ["insert", "query", "update", "delete", "getmore", "command"] {
        assert!(num(op, k) >= 0, "opcounters.{k}: {op}");
    }
    let bi = build_info(&env);
    assert_eq!(before.get_str("version").ok(), bi.get_str("version").ok(), "version");

    let coll = env.coll("status");
    coll.insert_many(vec![doc! {"a": 1}, doc! {"a": 2}, doc! {"a": 3}]).run().expect("insert");
    coll.find_one(doc! {"a": 2}).run().expect("find");
    coll.update_one(doc! {"a": 1}, doc! {"$set": {"b": 1}}).run().expect("update");
    coll.delete_one(doc! {"a": 3}).run().expect("delete");
    let after = env.admin_cmd(doc! {"serverStatus": 1}).expect("serverStatus");
    let op2 = after.get_document("opcounters").expect("opcounters");
    // mongod counts inserted documents, and one per query/update/delete statement.
    assert!(num(op2, "insert") - num(op, "insert") >= 3, "{op} -> {op2}");
    assert!(num(op2, "query") - num(op, "query") >= 1, "{op} -> {op2}");
    assert!(num(op2, "update") - num(op, "update") >= 1, "{op} -> {op2}");
    assert!(num(op2, "delete") - num(op, "delete") >= 1, "{op} -> {op2}");
    assert!(num(op2, "command") > num(op, "command"), "{op} -> {op2}");
}

#[test]
fn list_commands_includes_crud_commands() {
    let env = common::start();
    let r = env.admin_cmd(doc! {"listCommands": 1}).expect("listCommands");
    assert_ok(&r);
    let cmds = r.get_document("commands").expect("commands");
    for name in ["find", "insert", "update", "delete", "getMore", "hello", "ping", "aggregate"] {
        assert!(
            matches!(cmds.get(name), Some(Bson::Document(_))),
            "listCommands lacks {name}: {:?}",
            cmds.keys().collect::<Vec<_>>()
        );
    }
    assert!(cmds.get("noSuchCommandXyz").is_none());
}

/// A `failCommand` filtered by appName reaches a connection's very first hello, whose
/// `client` metadata carries the name (drivers' RTT tests rely on it).
#[test]
fn app_name_fail_points_reach_the_handshake_hello() {
    let env = crate::common::start();
    env.admin_cmd(doc! {
        "configureFailPoint": "failCommand",
        "mode": { "times": 1 },
        "data": { "failCommands": ["hello", "isMaster"], "appName": "hsFail", "errorCode": 2 },
    })
    .expect("fail point");
    let other = raw::command(
        env.server.addr(),
        &doc! {"hello": 1, "client": {"application": {"name": "other"}}, "$db": "admin"},
    );
    assert!(raw::is_ok(&other), "{other}");
    let hello = doc! {"hello": 1, "client": {"application": {"name": "hsFail"}}, "$db": "admin"};
    let failed = raw::command(env.server.addr(), &hello);
    assert_eq!(failed.get_i32("code"), Ok(2), "{failed}");
    assert!(raw::is_ok(&raw::command(env.server.addr(), &hello)), "the fail point fired once");
}
