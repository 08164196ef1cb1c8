//! currentOp / $currentOp / killOp, and the per-collection latency counters of $collStats.

use crate::common::{self, assert_command_error, command_error, num, Env};
use mongodb::bson::{doc, Bson, Document};
use std::time::{Duration, Instant};

fn current_ops(env: &Env, stage: Document, filter: Document) -> Vec<Document> {
    env.admin()
        .aggregate(vec![doc! { "$currentOp": stage }, doc! { "$match": filter }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
}

/// Polls until the operation commented `comment` shows up in $currentOp (it runs on another
/// thread); gives up after 30 s.
fn wait_for_op(env: &Env, comment: &str) -> Document {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let ops = current_ops(env, doc! {}, doc! { "command.comment": comment });
        if let Some(op) = ops.into_iter().next() {
            return op;
        }
        assert!(Instant::now() < until, "the blocked operation never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_blocked_operation_is_listed_and_killop_interrupts_it() {
    let env = common::start();
    let coll = env.coll("curop");
    coll.insert_one(doc! { "_id": 1 }).run().unwrap();
    env.admin_cmd(doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 60_000, "appName": "blocked" } })
        .unwrap();
    let victim = common::connect(&format!("{}?appName=blocked", env.server.uri()));
    let vcoll = victim.database(coll.namespace().db.as_str()).collection::<Document>("c");
    let runner =
        std::thread::spawn(move || vcoll.find(doc! { "_id": 1 }).comment("victim-find").run().map(|_| ()));
    let op = wait_for_op(&env, "victim-find");
    assert_eq!(op.get_str("type"), Ok("op"));
    assert_eq!(op.get_bool("active"), Ok(true));
    assert_eq!(op.get_str("op"), Ok("query"));
    assert_eq!(op.get_str("ns").unwrap(), coll.namespace().to_string());
    assert_eq!(op.get_str("appName"), Ok("blocked"));
    assert_eq!(
        op.get_document("clientMetadata").unwrap().get_document("application").unwrap().get_str("name"),
        Ok("blocked")
    );
    let conn_id = num(&op, "connectionId");
    assert_eq!(op.get_str("desc").unwrap(), format!("conn{conn_id}"));
    assert_eq!(op.get_document("command").unwrap().get_str("find"), Ok("c"));
    assert!(op.get_document("lsid").is_ok());
    assert!(op.get_str("client").unwrap().starts_with("127.0.0.1:"));
    assert!(num(&op, "microsecs_running") >= 0);
    // The currentOp command filters the same documents.
    let reply = env.admin_cmd(doc! { "currentOp": 1, "command.comment": "victim-find" }).unwrap();
    let inprog = reply.get_array("inprog").unwrap();
    assert_eq!(inprog.len(), 1);
    assert_eq!(num(inprog[0].as_document().unwrap(), "opid"), num(&op, "opid"));
    let killed = env.admin_cmd(doc! { "killOp": 1, "op": op.get("opid").unwrap().clone() }).unwrap();
    assert_eq!(killed.get_str("info"), Ok("attempting to kill op"));
    let err = runner.join().unwrap().unwrap_err();
    assert_eq!(command_error(&err).0, 11601);
    assert!(current_ops(&env, doc! {}, doc! { "command.comment": "victim-find" }).is_empty());
}

#[test]
fn current_op_options_and_errors() {
    let env = common::start();
    let coll = env.coll("curop_opts");
    coll.insert_one(doc! { "_id": 1 }).run().unwrap();
    // Only active operations by default: this aggregate is one of them.
    let active = current_ops(&env, doc! {}, doc! {});
    assert!(active.iter().all(|d| d.get_bool("active") == Ok(true)));
    assert!(active.iter().any(|d| d.get_document("command").is_ok_and(|c| c.contains_key("aggregate"))));
    // A second client's idle connection shows with idleConnections.
    let other = common::connect(&env.server.uri());
    other.database("admin").run_command(doc! { "ping": 1 }).run().unwrap();
    let all = current_ops(&env, doc! { "idleConnections": true }, doc! { "active": false });
    assert!(!all.is_empty());
    assert!(all.iter().all(|d| !d.contains_key("opid") && d.get_str("desc").unwrap().starts_with("conn")));
    let on_db = env.client.database("test").aggregate(vec![doc! { "$currentOp": {} }]).run();
    assert_command_error(on_db, 73, "InvalidNamespace");
    let later = coll.aggregate(vec![doc! { "$match": {} }, doc! { "$currentOp": {} }]).run();
    assert_command_error(later, 40602, "Location40602");
    let bad = env.admin().aggregate(vec![doc! { "$currentOp": { "idleConnections": 1 } }]).run();
    assert_command_error(bad, 9, "FailedToParse");
    let bad = env.admin().aggregate(vec![doc! { "$currentOp": { "nope": true } }]).run();
    assert_command_error(bad, 9, "FailedToParse");
    assert_command_error(
        env.client.database("x").run_command(doc! { "currentOp": 1 }).run(),
        13,
        "Unauthorized",
    );
    assert_command_error(env.admin_cmd(doc! { "killOp": 1 }), 4, "NoSuchKey");
    // Killing an operation that is not running is not an error.
    assert!(env.admin_cmd(doc! { "killOp": 1, "op": 123_456_789 }).is_ok());
}

#[test]
fn coll_stats_latency_counts_reads_writes_and_commands() {
    let env = common::start();
    let coll = env.coll("latency");
    coll.insert_many(vec![doc! { "_id": 1 }, doc! { "_id": 2 }]).run().unwrap();
    coll.find_one(doc! {}).run().unwrap();
    coll.count_documents(doc! {}).run().unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 1 } }).run().unwrap();
    coll.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let stats: Vec<Document> = coll
        .aggregate(vec![doc! { "$collStats": { "latencyStats": {} } }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    let l = stats[0].get_document("latencyStats").unwrap();
    let ops = |k: &str| num(l.get_document(k).unwrap(), "ops");
    assert_eq!((ops("reads"), ops("writes"), ops("commands")), (2, 2, 1));
    assert!(matches!(l.get_document("reads").unwrap().get("latency"), Some(Bson::Int64(n)) if *n >= 0));
    // Another collection's counters are its own.
    let other = env.coll("latency_other");
    let s: Vec<Document> = other
        .aggregate(vec![doc! { "$collStats": { "latencyStats": {} } }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(num(s[0].get_document("latencyStats").unwrap().get_document("reads").unwrap(), "ops"), 0);
}

#[test]
fn an_open_transaction_between_statements_is_an_idle_session() {
    let env = common::start();
    let coll = env.coll("curop_txn");
    coll.insert_one(doc! { "_id": 0 }).run().unwrap();
    let mut s = env.client.start_session().run().unwrap();
    s.start_transaction().run().unwrap();
    coll.insert_one(doc! { "_id": 1 }).session(&mut s).run().unwrap();
    let idle = current_ops(&env, doc! {}, doc! { "type": "idleSession" });
    assert_eq!(idle.len(), 1);
    let lsid = idle[0].get_document("lsid").unwrap();
    assert_eq!(lsid.get("id"), s.id().get("id"));
    let t = idle[0].get_document("transaction").unwrap();
    // The driver's pooled session may have served a retryable write before: any txnNumber.
    assert!(num(t.get_document("parameters").unwrap(), "txnNumber") >= 1);
    assert_eq!(t.get_document("parameters").unwrap().get_bool("autocommit"), Ok(false));
    assert_eq!(idle[0].get_bool("active"), Ok(false));
    assert!(current_ops(&env, doc! { "idleSessions": false }, doc! { "type": "idleSession" }).is_empty());
    s.abort_transaction().run().unwrap();
    assert!(current_ops(&env, doc! {}, doc! { "type": "idleSession" }).is_empty());
}

#[test]
fn idle_cursors_are_listed_when_asked() {
    let env = common::start();
    let coll = env.coll("curop_cursors");
    coll.insert_many((0..5).map(|i| doc! { "_id": i })).run().unwrap();
    let db = env.client.database(coll.namespace().db.as_str());
    let reply = db.run_command(doc! { "find": "c", "batchSize": 1 }).run().unwrap();
    let id = reply.get_document("cursor").unwrap().get_i64("id").unwrap();
    assert!(current_ops(&env, doc! {}, doc! { "type": "idleCursor" }).is_empty());
    let idle = current_ops(&env, doc! { "idleCursors": true }, doc! { "type": "idleCursor" });
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].get_str("ns").unwrap(), coll.namespace().to_string());
    let c = idle[0].get_document("cursor").unwrap();
    assert_eq!(c.get_i64("cursorId"), Ok(id));
    assert_eq!(c.get_bool("tailable"), Ok(false));
    db.run_command(doc! { "killCursors": "c", "cursors": [id] }).run().unwrap();
    assert!(current_ops(&env, doc! { "idleCursors": true }, doc! { "type": "idleCursor" }).is_empty());
}
