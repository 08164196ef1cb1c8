//! Logical sessions, retryable writes and the configureFailPoint test command (failCommand,
//! onPrimaryTransactionalWrite), through the driver and through raw commands on fresh
//! connections (a retry after a reconnection).

use crate::common::{self, assert_command_error, num, raw};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use std::time::{Duration, Instant};

fn lsid() -> Document {
    doc! { "id": Binary::from_uuid(mongodb::bson::Uuid::new()) }
}

fn fail_point(env: &common::Env, cmd: Document) -> Document {
    env.admin_cmd(cmd).expect("configureFailPoint")
}

fn off(env: &common::Env, name: &str) {
    fail_point(env, doc! { "configureFailPoint": name, "mode": "off" });
}

fn raw_cmd(env: &common::Env, d: Document) -> Document {
    raw::command(env.server.addr(), &d)
}

#[test]
fn configure_fail_point_needs_test_commands_and_admin() {
    let env = common::start_with(common::builder().enable_test_commands(false));
    let r = env.admin_cmd(doc! { "configureFailPoint": "failCommand", "mode": "off" });
    assert_command_error(r, 59, "CommandNotFound");

    let env = common::start();
    let r = env
        .client
        .database("x")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .run();
    assert_command_error(r, 13, "Unauthorized");
    let r = env.admin_cmd(doc! { "configureFailPoint": "noSuchFailPoint", "mode": "off" });
    assert_command_error(r, 266, "FailPointSetFailed");
    let r = env.admin_cmd(doc! { "configureFailPoint": "failCommand" });
    assert_command_error(r, 20, "IllegalOperation");
}

#[test]
fn fail_command_error_code_times_and_count() {
    let env = common::start();
    let coll = env.coll("fc");
    coll.insert_one(doc! { "_id": 1 }).run().expect("insert");
    let r = fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": { "times": 2 },
        "data": { "failCommands": ["find"], "errorCode": 2 } },
    );
    assert_eq!(num(&r, "count"), 0);
    // Other commands do not use up the activations.
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1);
    for _ in 0..2 {
        let (code, _, msg) = common::command_error(&coll.find_one(doc! {}).run().expect_err("fails"));
        assert_eq!(code, 2);
        assert_eq!(msg, "Failing command via 'failCommand' failpoint");
    }
    assert!(coll.find_one(doc! {}).run().expect("third find works").is_some());
    let r = fail_point(&env, doc! { "configureFailPoint": "failCommand", "mode": "off" });
    assert_eq!(num(&r, "count"), 2);

    // skip: the first n matches pass, then every one fails.
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": { "skip": 1 },
        "data": { "failCommands": ["find"], "errorCode": 8 } },
    );
    assert!(coll.find_one(doc! {}).run().is_ok());
    assert!(coll.find_one(doc! {}).run().is_err());
    assert!(coll.find_one(doc! {}).run().is_err());
    off(&env, "failCommand");
    assert!(coll.find_one(doc! {}).run().is_ok());
}

#[test]
fn fail_command_labels_for_retryable_writes() {
    let env = common::start();
    let db = common::unique_name("lbl");
    let ls = lsid();
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
        "data": { "failCommands": ["insert"], "errorCode": 91 } },
    );
    // A retryable write (lsid + txnNumber) with a retryable code gets the label ...
    let r = raw_cmd(
        &env,
        doc! { "insert": "c", "documents": [{ "_id": 1 }], "lsid": ls.clone(), "txnNumber": 1i64, "$db": &db },
    );
    assert_eq!(num(&r, "code"), 91);
    assert_eq!(r.get_array("errorLabels").expect("labels"), &vec![Bson::from("RetryableWriteError")]);
    // ... a plain write does not.
    let r = raw_cmd(&env, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": &db });
    assert_eq!(num(&r, "code"), 91);
    assert!(r.get("errorLabels").is_none(), "{r}");
    // errorLabels given in the fail point replace the server's.
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
        "data": { "failCommands": ["insert"], "errorCode": 2, "errorLabels": ["Custom"] } },
    );
    let r = raw_cmd(&env, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": &db });
    assert_eq!(r.get_array("errorLabels").expect("labels"), &vec![Bson::from("Custom")]);
    off(&env, "failCommand");
}

#[test]
fn driver_retries_a_labelled_error_once() {
    let env = common::start();
    let coll = env.coll("retry91");
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 },
        // HostUnreachable is retryable without being an SDAM state-change error, so the
        // driver retries at once instead of first re-discovering the server.
        "data": { "failCommands": ["insert"], "errorCode": 6 } },
    );
    coll.insert_one(doc! { "_id": 1 }).run().expect("retried insert succeeds");
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1);
}

#[test]
fn close_connection_then_driver_retry_applies_once() {
    let env = common::start();
    let coll = env.coll("close");
    coll.insert_one(doc! { "_id": 1, "n": 0 }).run().expect("seed");
    for cmd in ["insert", "update", "delete", "findAndModify"] {
        fail_point(
            &env,
            doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": [cmd], "closeConnection": true } },
        );
        match cmd {
            "insert" => {
                coll.insert_one(doc! { "_id": 2 }).run().expect("insert after retry");
            }
            "update" => {
                let r =
                    coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).run().expect("update");
                assert_eq!(r.modified_count, 1);
            }
            "delete" => {
                let r = coll.delete_one(doc! { "_id": 2 }).run().expect("delete");
                assert_eq!(r.deleted_count, 1);
            }
            _ => {
                let before = coll
                    .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
                    .run()
                    .expect("findAndModify")
                    .expect("a document");
                assert_eq!(before.get_i32("n"), Ok(1));
            }
        }
        let r = fail_point(&env, doc! { "configureFailPoint": "failCommand", "mode": "off" });
        assert!(num(&r, "count") >= 1, "{cmd}: the fail point fired");
    }
    let d = coll.find_one(doc! { "_id": 1 }).run().expect("find").expect("doc");
    assert_eq!(d.get_i32("n"), Ok(2));
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1);
}

/// The write applies, then the connection drops before the reply: the driver's retry must be
/// answered from the session's history, not applied a second time.
#[test]
fn connection_lost_after_the_write_is_not_applied_twice() {
    let env = common::start();
    let coll = env.coll("after");
    coll.insert_one(doc! { "_id": 1, "n": 0 }).run().expect("seed");
    let arm = || {
        fail_point(
            &env,
            doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 },
            "data": { "closeConnection": true } },
        )
    };
    arm();
    let r = coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).run().expect("update");
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    arm();
    let before = coll
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 10 } })
        .run()
        .expect("findAndModify")
        .expect("doc");
    assert_eq!(before.get_i32("n"), Ok(1), "the original pre-image");
    arm();
    coll.insert_many(vec![doc! { "_id": 2 }, doc! { "_id": 3 }]).run().expect("insert_many");
    arm();
    let r = coll.delete_one(doc! { "_id": 3 }).run().expect("delete");
    assert_eq!(r.deleted_count, 1);
    let r = fail_point(&env, doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": "off" });
    assert_eq!(num(&r, "count"), 4);
    let d = coll.find_one(doc! { "_id": 1 }).run().expect("find").expect("doc");
    assert_eq!(d.get_i32("n"), Ok(11));
    assert_eq!(common::ids(&coll), vec![Bson::Int32(1), Bson::Int32(2)]);
}

#[test]
fn raw_retries_on_new_connections_return_the_original_results() {
    let env = common::start();
    let db = common::unique_name("rawretry");
    let ls = lsid();
    let insert = doc! { "insert": "c", "documents": [{ "_id": 1, "n": 0 }, { "_id": 2, "n": 0 }],
    "lsid": ls.clone(), "txnNumber": 5i64, "$db": &db };
    let first = raw_cmd(&env, insert.clone());
    assert_eq!(num(&first, "n"), 2);
    assert!(first.get("retriedStmtIds").is_none());
    let again = raw_cmd(&env, insert);
    assert_eq!(num(&again, "n"), 2, "{again}");
    assert!(again.get("writeErrors").is_none(), "no duplicate key: nothing re-applied: {again}");
    assert_eq!(again.get_array("retriedStmtIds").expect("retried").len(), 2);

    let update = doc! { "update": "c", "updates": [
        { "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } },
        { "q": { "_id": 9 }, "u": { "$set": { "n": 1 } }, "upsert": true }],
    "lsid": ls.clone(), "txnNumber": 6i64, "$db": &db };
    let a = raw_cmd(&env, update.clone());
    let b = raw_cmd(&env, update);
    for r in [&a, &b] {
        assert_eq!(num(r, "n"), 2, "{r}");
        assert_eq!(num(r, "nModified"), 1, "{r}");
        let up = r.get_array("upserted").expect("upserted");
        assert_eq!(up[0].as_document().and_then(|d| d.get("_id")), Some(&Bson::Int32(9)));
    }
    let delete = doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }],
    "lsid": ls.clone(), "txnNumber": 7i64, "$db": &db };
    assert_eq!(num(&raw_cmd(&env, delete.clone()), "n"), 1);
    assert_eq!(num(&raw_cmd(&env, delete), "n"), 1);

    let fam = doc! { "findAndModify": "c", "query": { "_id": 1 }, "update": { "$inc": { "n": 1 } }, "new": true,
    "lsid": ls.clone(), "txnNumber": 8i64, "$db": &db };
    let a = raw_cmd(&env, fam.clone());
    let b = raw_cmd(&env, fam);
    assert_eq!(a.get_document("value").expect("value").get_i32("n"), Ok(2));
    assert_eq!(b.get_document("value"), a.get_document("value"));

    // An older txnNumber is refused.
    let old = raw_cmd(
        &env,
        doc! { "insert": "c", "documents": [{ "_id": 50 }], "lsid": ls.clone(), "txnNumber": 7i64, "$db": &db },
    );
    assert_eq!(num(&old, "code"), 225, "{old}");
    assert_eq!(old.get_str("codeName"), Ok("TransactionTooOld"));

    let coll = env.client.database(&db).collection::<Document>("c");
    let docs = common::all(&coll);
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_eq!(docs[0].get_i32("n"), Ok(2), "each $inc applied once");
}

#[test]
fn session_field_validation() {
    let env = common::start();
    let db = common::unique_name("osi");
    let r = raw_cmd(&env, doc! { "insert": "c", "documents": [{}], "txnNumber": 1i64, "$db": &db });
    assert_eq!(num(&r, "code"), 72, "{r}");
    let r = raw_cmd(&env, doc! { "find": "c", "lsid": lsid(), "txnNumber": 1i64, "$db": &db });
    assert_eq!(num(&r, "code"), 50768, "{r}");
    let r = raw_cmd(
        &env,
        doc! { "insert": "c", "documents": [{}], "lsid": lsid(), "txnNumber": -1i64, "$db": &db },
    );
    assert_eq!(num(&r, "code"), 72, "{r}");
    let r = raw_cmd(&env, doc! { "find": "c", "lsid": { "id": 1 }, "$db": &db });
    assert_eq!(num(&r, "code"), 14, "{r}");

    let env = common::start_with(common::builder().standalone(true));
    let r = raw_cmd(
        &env,
        doc! { "insert": "c", "documents": [{}], "lsid": lsid(), "txnNumber": 1i64, "$db": &db },
    );
    assert_eq!(num(&r, "code"), 20, "{r}");
}

#[test]
fn block_connection_and_app_name() {
    let env = common::start();
    let coll = env.coll("block");
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["ping"], "blockConnection": true, "blockTimeMS": 300 } },
    );
    let t = Instant::now();
    env.admin_cmd(doc! { "ping": 1 }).expect("ping after the block");
    assert!(t.elapsed() >= Duration::from_millis(300));

    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
        "data": { "failCommands": ["find"], "errorCode": 2, "appName": "victim" } },
    );
    assert!(coll.find_one(doc! {}).run().is_ok(), "another application is not affected");
    let victim = common::connect(&format!("{}?appName=victim", env.server.uri()));
    let vcoll = victim.database(coll.namespace().db.as_str()).collection::<Document>("c");
    assert!(vcoll.find_one(doc! {}).run().is_err());
    off(&env, "failCommand");
    let r = env.admin_cmd(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
    "data": { "blockConnection": true } });
    assert_command_error(r, 72, "InvalidOptions");
}

#[test]
fn fail_command_write_concern_error() {
    let env = common::start();
    let coll = env.coll("wce");
    fail_point(
        &env,
        doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 },
        "data": { "failCommands": ["insert"],
                  "writeConcernError": { "code": 100, "codeName": "UnsatisfiableWriteConcern", "errmsg": "Not enough data-bearing nodes" } } },
    );
    let e = coll.insert_one(doc! { "_id": 1 }).run().expect_err("write concern error");
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => assert_eq!(w.code, 100),
        other => panic!("expected a write concern error, got {other:?}"),
    }
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1, "the write itself stands");
}

#[test]
fn start_end_and_kill_sessions_kill_their_cursors() {
    let env = common::start();
    let coll = env.coll("sesscur");
    let docs: Vec<Document> = (0..10).map(|i| doc! { "_id": i }).collect();
    coll.insert_many(docs).run().expect("seed");

    let r = env.admin_cmd(doc! { "startSession": 1 }).expect("startSession");
    assert_eq!(num(&r, "timeoutMinutes"), 30);
    let id = r.get_document("id").expect("id").clone();
    assert!(
        matches!(id.get("id"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid && b.bytes.len() == 16)
    );

    for (how, by_pattern) in
        [("endSessions", false), ("killSessions", false), ("killAllSessionsByPattern", true)]
    {
        let mut s = env.client.start_session().run().expect("session");
        let mut cursor = coll.find(doc! {}).batch_size(2).session(&mut s).run().expect("find");
        assert!(cursor.next(&mut s).expect("first").is_ok());
        let lsid = s.id().clone();
        let cmd = if by_pattern {
            doc! { how: [{ "lsid": lsid }] }
        } else {
            doc! { how: [lsid] }
        };
        env.admin_cmd(cmd).expect(how);
        let mut err = None;
        while let Some(r) = cursor.next(&mut s) {
            if let Err(e) = r {
                err = Some(e);
                break;
            }
        }
        let e = err.unwrap_or_else(|| panic!("{how}: the cursor died"));
        assert_eq!(common::command_error(&e).0, 43, "{how}: CursorNotFound");
    }

    // killAllSessions: [] kills every session's cursors; refreshSessions is accepted.
    let mut s = env.client.start_session().run().expect("session");
    env.admin_cmd(doc! { "refreshSessions": [s.id().clone()] }).expect("refresh");
    let mut cursor = coll.find(doc! {}).batch_size(2).session(&mut s).run().expect("find");
    assert!(cursor.next(&mut s).expect("first").is_ok());
    env.admin_cmd(doc! { "killAllSessions": [] }).expect("killAllSessions");
    let failed = std::iter::from_fn(|| cursor.next(&mut s)).any(|r| r.is_err());
    assert!(failed, "killAllSessions killed the cursor");
}

#[test]
fn idle_sessions_expire_with_their_cursors() {
    let env = common::start();
    let coll = env.coll("expire");
    let docs: Vec<Document> = (0..10).map(|i| doc! { "_id": i }).collect();
    coll.insert_many(docs).run().expect("seed");
    let mut s = env.client.start_session().run().expect("session");
    let mut cursor = coll.find(doc! {}).batch_size(2).session(&mut s).run().expect("find");
    assert!(cursor.next(&mut s).expect("first").is_ok());
    let shared = env.server.shared();
    assert!(!shared.sessions.is_empty());
    assert_eq!(shared.expire_sessions(Instant::now()), 0, "nothing idle yet");
    let later = Instant::now() + Duration::from_secs(31 * 60);
    assert!(shared.expire_sessions(later) >= 1);
    let failed = std::iter::from_fn(|| cursor.next(&mut s)).any(|r| r.is_err());
    assert!(failed, "the expired session's cursor is gone");
}

/// `failBeforeCommitExceptionCode` fails one statement unapplied; the retry applies only it.
#[test]
fn a_statement_failed_before_commit_is_applied_by_the_retry_only() {
    let env = common::start();
    let db = common::unique_name("fbc");
    let coll = env.client.database(&db).collection::<Document>("c");
    coll.insert_many(vec![doc! { "_id": 0, "y": 0 }, doc! { "_id": 1, "y": 0 }]).run().expect("seed");
    fail_point(
        &env,
        doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "skip": 1 },
        "data": { "closeConnection": false, "failBeforeCommitExceptionCode": 1 } },
    );
    let cmd = doc! { "update": "c", "updates": [
        { "q": { "_id": 0 }, "u": { "$inc": { "y": 1 } } },
        { "q": { "_id": 1 }, "u": { "$inc": { "y": 1 } } }],
    "ordered": true, "lsid": lsid(), "txnNumber": 2i64, "$db": &db };
    let r = raw_cmd(&env, cmd.clone());
    assert_eq!(num(&r, "nModified"), 1, "{r}");
    let errs = r.get_array("writeErrors").expect("writeErrors");
    let e = errs[0].as_document().expect("error");
    assert_eq!((num(e, "index"), num(e, "code")), (1, 1));
    off(&env, "onPrimaryTransactionalWrite");
    let r = raw_cmd(&env, cmd);
    assert_eq!(num(&r, "nModified"), 2, "{r}");
    let ys: Vec<i32> = common::all(&coll).iter().map(|d| d.get_i32("y").expect("y")).collect();
    assert_eq!(ys, vec![1, 1]);
}

/// `$listLocalSessions` lists the sessions the server holds, with their last use.
#[test]
fn list_local_sessions_shows_the_sessions_in_use() {
    use mongodb::bson::{doc, Document};
    let env = crate::common::start();
    let mut s = env.client.start_session().run().unwrap();
    let db = env.db("lls");
    db.collection::<Document>("c").insert_one(doc! { "_id": 1 }).session(&mut s).run().unwrap();
    let id = s.id().get("id").unwrap().clone();
    let listed: Vec<Document> = env
        .client
        .database("admin")
        .aggregate(vec![doc! { "$listLocalSessions": {} }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    let mine = listed.iter().find(|d| d.get_document("_id").unwrap().get("id") == Some(&id)).expect("listed");
    assert!(mine.get_datetime("lastUse").is_ok());
    assert!(mine.get_document("_id").unwrap().get_binary_generic("uid").is_ok_and(|b| b.len() == 32));
}

/// Time a fail point blocks a command counts against its maxTimeMS: a write blocked past its
/// limit fails with 50 and is not applied.
#[test]
fn blocked_time_counts_against_max_time_ms() {
    use mongodb::bson::{doc, Document};
    let env = crate::common::start();
    let db = env.db("blockmt");
    env.admin_cmd(doc! {
        "configureFailPoint": "failCommand",
        "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 200 },
    })
    .unwrap();
    let r = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }], "maxTimeMS": 50 }).run();
    let e = r.unwrap_err();
    assert_eq!(crate::common::command_error(&e).0, 50, "{e}");
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).run().unwrap(), 0);
    // Without a limit the blocked write goes through.
    env.admin_cmd(doc! {
        "configureFailPoint": "failCommand",
        "mode": { "times": 1 },
        "data": { "failCommands": ["insert"], "blockConnection": true, "blockTimeMS": 20 },
    })
    .unwrap();
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 2 }] }).run().unwrap();
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).run().unwrap(), 1);
}

/// mongod keeps the retryable-write history in `config.transactions`: a retry after a restart
/// answers from it and applies nothing again; expired sessions take their history with them.
#[test]
fn retries_after_a_restart_return_the_original_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::unique_name("restartretry");
    let (ls_ins, ls_upd, ls_fam, ls_del, ls_multi) = (lsid(), lsid(), lsid(), lsid(), lsid());
    let insert = doc! { "insert": "c", "documents": [{ "_id": 1, "n": 0 }, { "_id": 2, "n": 0 }, { "_id": 3, "n": 0 }],
    "lsid": ls_ins.clone(), "txnNumber": 3i64, "$db": &db };
    let update = doc! { "update": "c", "updates": [
        { "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } },
        { "q": { "_id": 9 }, "u": { "$inc": { "n": 1 } }, "upsert": true }],
    "lsid": ls_upd.clone(), "txnNumber": 1i64, "$db": &db };
    let fam = doc! { "findAndModify": "c", "query": { "_id": 1 }, "update": { "$inc": { "n": 10 } }, "new": true,
    "lsid": ls_fam.clone(), "txnNumber": 1i64, "$db": &db };
    let delete = doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }],
    "lsid": ls_del.clone(), "txnNumber": 1i64, "$db": &db };
    let multi = doc! { "update": "c", "updates": [{ "q": {}, "u": { "$inc": { "m": 1 } }, "multi": true }],
    "lsid": ls_multi.clone(), "txnNumber": 1i64, "$db": &db };
    let firsts: Vec<Document> = {
        let env = common::start_with(common::builder().dbpath(dir.path()));
        let r: Vec<Document> =
            [&insert, &update, &fam, &delete, &multi].iter().map(|c| raw_cmd(&env, (*c).clone())).collect();
        drop(env);
        r
    };
    assert_eq!(num(&firsts[0], "n"), 3, "{}", firsts[0]);
    assert_eq!(firsts[2].get_document("value").unwrap().get_i32("n"), Ok(11));

    let env = common::start_with(common::builder().dbpath(dir.path()));
    let again: Vec<Document> =
        [&insert, &update, &fam, &delete, &multi].iter().map(|c| raw_cmd(&env, (*c).clone())).collect();
    let strip = |d: &Document| {
        let mut d = d.clone();
        for k in ["retriedStmtIds", "retriedStmtId", "$clusterTime", "operationTime"] {
            d.remove(k);
        }
        d
    };
    for (a, b) in firsts.iter().zip(&again) {
        assert_eq!(strip(a), strip(b), "a retry after the restart gives the original reply");
    }
    assert_eq!(again[0].get_array("retriedStmtIds").expect("retried").len(), 3, "{}", again[0]);
    assert_eq!(again[1].get_array("retriedStmtIds").expect("retried").len(), 2, "{}", again[1]);
    assert_eq!(again[2].get_i32("retriedStmtId"), Ok(0), "{}", again[2]);
    let coll = env.client.database(&db).collection::<Document>("c");
    let docs = common::all(&coll);
    let n_of = |id: i32| docs.iter().find(|d| d.get_i32("_id") == Ok(id)).map(|d| d.get_i32("n"));
    assert_eq!(n_of(1), Some(Ok(11)), "each $inc applied once: {docs:?}");
    assert_eq!(n_of(9), Some(Ok(1)), "{docs:?}");
    assert_eq!(n_of(2), None, "{docs:?}");
    assert!(docs.iter().all(|d| d.get_i32("m") == Ok(1)), "the multi-update applied once: {docs:?}");
    // The session's highest txnNumber survived too.
    let mut older = insert.clone();
    older.insert("txnNumber", 2i64);
    assert_eq!(num(&raw_cmd(&env, older), "code"), 225);

    // Expired sessions take their history along: after another restart the insert runs anew
    // (and meets its own documents).
    let later = Instant::now() + Duration::from_secs(31 * 60);
    assert!(env.server.shared().expire_sessions(later) >= 5);
    drop(env);
    let env = common::start_with(common::builder().dbpath(dir.path()));
    let r = raw_cmd(&env, insert);
    assert!(r.get("retriedStmtIds").is_none(), "{r}");
    assert_eq!(r.get_array("writeErrors").map(Vec::len), Ok(1), "{r}");
}

/// `$listSessions` on `config.system.sessions` lists the server's sessions (one node: the
/// collection and the local cache agree); elsewhere it is refused.
#[test]
fn list_sessions_reads_the_sessions_collection() {
    use mongodb::bson::{doc, Document};
    let env = crate::common::start();
    let mut s = env.client.start_session().run().unwrap();
    let db = env.db("listsess");
    db.collection::<Document>("c").insert_one(doc! { "x": 1 }).session(&mut s).run().unwrap();
    let id = s.id().get("id").unwrap().clone();
    let sessions = env.client.database("config").collection::<Document>("system.sessions");
    let listed: Vec<Document> = sessions
        .aggregate(vec![doc! { "$listSessions": { "allUsers": true } }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert!(listed.iter().any(|d| d.get_document("_id").unwrap().get("id") == Some(&id)), "{listed:?}");
    let e = db
        .collection::<Document>("c")
        .aggregate(vec![doc! { "$listSessions": {} }])
        .run()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(crate::common::command_error(&e).0, 73, "{e}");
}
