//! Reads at a past cluster time (issue 6): `readConcern: {level: "snapshot", atClusterTime}`
//! sees the data as it was at that time, in and outside transactions; a time in the future or
//! older than the kept history is refused as mongod refuses it; the history reads survive
//! crashes (the record tables are recovered from the oplog).

use crate::common::{self, raw};
use crate::crash::{client_for, spawn};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document, Timestamp};
use mongodb::options::WriteConcern;
use mongodb::sync::Database;

/// Runs a command and returns the cluster time of its reply (`operationTime`).
fn at(db: &Database, cmd: Document) -> Timestamp {
    let r = db.run_command(cmd).run().expect("command");
    match r.get("operationTime") {
        Some(Bson::Timestamp(t)) => *t,
        other => panic!("no operationTime in {r}: {other:?}"),
    }
}

fn snapshot_at(t: Timestamp) -> Document {
    doc! { "level": "snapshot", "atClusterTime": t }
}

fn find_at(db: &Database, t: Timestamp) -> Vec<Document> {
    let r = db
        .run_command(doc! { "find": "c", "sort": {"_id": 1}, "readConcern": snapshot_at(t) })
        .run()
        .expect("find");
    let cursor = r.get_document("cursor").expect("cursor");
    assert_eq!(cursor.get("atClusterTime"), Some(&Bson::Timestamp(t)), "{r}");
    cursor
        .get_array("firstBatch")
        .expect("batch")
        .iter()
        .map(|d| d.as_document().expect("document").clone())
        .collect()
}

#[test]
fn reads_at_a_cluster_time_see_the_data_as_it_was() {
    let env = common::start();
    let db = env.db("pit");
    let t1 = at(&db, doc! { "insert": "c", "documents": [{ "_id": 1, "v": 1 }] });
    let t2 = at(&db, doc! { "update": "c", "updates": [{ "q": {"_id": 1}, "u": {"$set": {"v": 2}} }] });
    let t3 = at(&db, doc! { "insert": "c", "documents": [{ "_id": 2, "v": 1 }] });
    let t4 = at(&db, doc! { "delete": "c", "deletes": [{ "q": {"_id": 1}, "limit": 1 }] });
    assert!(t1 < t2 && t2 < t3 && t3 < t4);

    assert_eq!(find_at(&db, t1), vec![doc! { "_id": 1, "v": 1 }]);
    assert_eq!(find_at(&db, t2), vec![doc! { "_id": 1, "v": 2 }]);
    assert_eq!(find_at(&db, t3), vec![doc! { "_id": 1, "v": 2 }, doc! { "_id": 2, "v": 1 }]);
    assert_eq!(find_at(&db, t4), vec![doc! { "_id": 2, "v": 1 }]);

    // aggregate and distinct read at the time too.
    let r = db
        .run_command(doc! {
            "aggregate": "c", "pipeline": [{"$group": {"_id": null, "n": {"$sum": 1}, "v": {"$sum": "$v"}}}],
            "cursor": {}, "readConcern": snapshot_at(t3),
        })
        .run()
        .unwrap();
    let batch = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch[0].as_document().unwrap(), &doc! { "_id": Bson::Null, "n": 2, "v": 3 }, "{r}");
    let r =
        db.run_command(doc! { "distinct": "c", "key": "v", "readConcern": snapshot_at(t2) }).run().unwrap();
    assert_eq!(r.get_array("values").unwrap(), &vec![Bson::Int32(2)], "{r}");
    assert_eq!(r.get("atClusterTime"), Some(&Bson::Timestamp(t2)));

    // getMores of a snapshot cursor keep reading at its time.
    let many: Vec<Document> = (10..20).map(|i| doc! { "_id": i }).collect();
    let t5 = at(&db, doc! { "insert": "c", "documents": many });
    at(&db, doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 0 }] });
    let r =
        db.run_command(doc! { "find": "c", "batchSize": 2, "readConcern": snapshot_at(t5) }).run().unwrap();
    let cursor = r.get_document("cursor").unwrap();
    let mut n = cursor.get_array("firstBatch").unwrap().len();
    let id = cursor.get_i64("id").unwrap();
    let r = db.run_command(doc! { "getMore": id, "collection": "c" }).run().unwrap();
    n += r.get_document("cursor").unwrap().get_array("nextBatch").unwrap().len();
    assert_eq!(n, 11);

    // Without atClusterTime: the newest committed data, and the time it was read at.
    let r = db.run_command(doc! { "find": "c", "readConcern": {"level": "snapshot"} }).run().unwrap();
    let cursor = r.get_document("cursor").unwrap();
    assert!(cursor.get_array("firstBatch").unwrap().is_empty(), "{r}");
    assert!(matches!(cursor.get("atClusterTime"), Some(Bson::Timestamp(t)) if *t > t5), "{r}");
}

#[test]
fn future_and_too_old_cluster_times_are_refused() {
    let env = common::start();
    let db = env.db("pit_err");
    let t1 = at(&db, doc! { "insert": "c", "documents": [{ "_id": 1 }] });
    let future = Timestamp { time: t1.time + 1000, increment: 0 };
    let err = db.run_command(doc! { "find": "c", "readConcern": snapshot_at(future) }).run().unwrap_err();
    let (code, name, msg) = common::command_error(&err);
    assert_eq!((code, name.as_str()), (72, "InvalidOptions"), "{msg}");
    assert!(msg.contains("must not be greater than the current clusterTime"), "{msg}");
    let err = db.run_command(doc! { "find": "c", "readConcern": {"level": "snapshot", "atClusterTime": 5} });
    assert_eq!(common::command_error(&err.run().unwrap_err()).0, 14);

    // Still inside the default window of 300 s.
    assert_eq!(find_at(&db, t1).len(), 1);
    let r = env.admin_cmd(doc! { "getParameter": 1, "minSnapshotHistoryWindowInSeconds": 1 }).unwrap();
    assert_eq!(r.get_i32("minSnapshotHistoryWindowInSeconds"), Ok(300));
    let t2 = at(&db, doc! { "insert": "c", "documents": [{ "_id": 2 }] });
    // With no window, history ends at the newest commit: t1 is gone, t2 is not.
    let r = env.admin_cmd(doc! { "setParameter": 1, "minSnapshotHistoryWindowInSeconds": 0 }).unwrap();
    assert_eq!(r.get_i32("was"), Ok(300));
    let err = db.run_command(doc! { "find": "c", "readConcern": snapshot_at(t1) }).run().unwrap_err();
    let (code, name, msg) = common::command_error(&err);
    assert_eq!((code, name.as_str()), (239, "SnapshotTooOld"), "{msg}");
    assert_eq!(
        msg,
        format!(
            "Read timestamp Timestamp({}, {}) is older than the oldest available timestamp.",
            t1.time, t1.increment
        )
    );
    // The newer time is still readable.
    assert_eq!(find_at(&db, t2).len(), 2);
    let err = env.admin_cmd(doc! { "setParameter": 1, "minSnapshotHistoryWindowInSeconds": -1 }).unwrap_err();
    assert_eq!(common::command_error(&err).0, 2);
}

fn lsid() -> Document {
    let mut b: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ (std::process::id() as u8));
    b[0] = b[0].wrapping_add(common::unique_name("l").len() as u8);
    b[6] = (b[6] & 0x0f) | 0x40;
    doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: b.to_vec() } }
}

#[test]
fn a_transaction_started_at_a_cluster_time_reads_there() {
    let env = common::start();
    let addr = env.server.addr();
    let dbname = common::unique_name("pit_txn");
    let db = env.client.database(&dbname);
    let t1 = at(&db, doc! { "insert": "c", "documents": [{ "_id": 1, "v": 1 }] });
    at(&db, doc! { "update": "c", "updates": [{ "q": {"_id": 1}, "u": {"$set": {"v": 2}} }] });
    at(&db, doc! { "insert": "c", "documents": [{ "_id": 2, "v": 1 }] });
    let l = lsid();
    let r = raw::command(
        addr,
        &doc! { "find": "c", "sort": {"_id": 1}, "lsid": l.clone(), "txnNumber": 1i64, "autocommit": false,
        "startTransaction": true, "readConcern": snapshot_at(t1), "$db": dbname.clone() },
    );
    assert!(raw::is_ok(&r), "{r}");
    let batch = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone();
    assert_eq!(batch, vec![Bson::Document(doc! { "_id": 1, "v": 1 })]);
    // The second statement reads the same past state.
    let r = raw::command(
        addr,
        &doc! { "aggregate": "c", "pipeline": [{"$count": "n"}], "cursor": {}, "lsid": l.clone(),
        "txnNumber": 1i64, "autocommit": false, "$db": dbname.clone() },
    );
    let batch = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone();
    assert_eq!(batch, vec![Bson::Document(doc! { "n": 1 })], "{r}");
    // Writing a document changed since the transaction's time is a write conflict.
    let r = raw::command(
        addr,
        &doc! { "update": "c", "updates": [{ "q": {"_id": 1}, "u": {"$set": {"v": 9}} }], "lsid": l.clone(),
        "txnNumber": 1i64, "autocommit": false, "$db": dbname.clone() },
    );
    assert_eq!(r.get_i32("code"), Ok(112), "{r}");
    assert!(r
        .get_array("errorLabels")
        .is_ok_and(|a| a.contains(&Bson::String("TransientTransactionError".into()))));

    // A snapshot transaction without atClusterTime reads as of its start.
    let r = raw::command(
        addr,
        &doc! { "find": "c", "lsid": l.clone(), "txnNumber": 2i64, "autocommit": false,
        "startTransaction": true, "readConcern": {"level": "snapshot"}, "$db": dbname.clone() },
    );
    assert_eq!(r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 2, "{r}");
    at(&db, doc! { "insert": "c", "documents": [{ "_id": 3 }] });
    let r = raw::command(
        addr,
        &doc! { "find": "c", "lsid": l.clone(), "txnNumber": 2i64, "autocommit": false, "$db": dbname.clone() },
    );
    assert_eq!(r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 2, "{r}");

    // A future atClusterTime fails the transaction's first statement.
    let future = Timestamp { time: t1.time + 1000, increment: 0 };
    let r = raw::command(
        addr,
        &doc! { "find": "c", "lsid": l.clone(), "txnNumber": 3i64, "autocommit": false,
        "startTransaction": true, "readConcern": snapshot_at(future), "$db": dbname.clone() },
    );
    assert_eq!(r.get_i32("code"), Ok(72), "{r}");
}

/// Record and index tables are not journaled: after SIGKILL, recovery rebuilds them from the
/// oplog, including an index built after the last checkpoint, and reads at a past cluster time
/// still work.
#[test]
fn sigkill_loses_no_acknowledged_write_and_history_stays_readable() {
    let dbdir = tempfile::tempdir().expect("tempdir");
    let logdir = tempfile::tempdir().expect("tempdir");
    let mut daemon = spawn(dbdir.path(), logdir.path(), "pit1");
    let client = client_for(&daemon);
    let db = client.database("pitcrash");
    let coll = db.collection::<Document>("c");
    let j = WriteConcern::builder().journal(true).build();
    let docs: Vec<Document> = (0..300).map(|i| doc! { "_id": i, "v": i % 10, "w": i }).collect();
    coll.insert_many(docs).write_concern(j.clone()).run().unwrap();
    coll.update_many(doc! { "v": 3 }, doc! { "$set": {"w": -1} }).write_concern(j.clone()).run().unwrap();
    coll.delete_many(doc! { "v": 4 }).write_concern(j.clone()).run().unwrap();
    coll.replace_one(doc! { "_id": 5 }, doc! { "x": "replaced" }).write_concern(j.clone()).run().unwrap();
    db.run_command(doc! { "createIndexes": "c", "indexes": [{ "key": {"w": 1}, "name": "w_1" }] })
        .run()
        .unwrap();
    let t = at(
        &db,
        doc! { "insert": "c", "documents": [{ "_id": 1000, "v": 0, "w": 1000 }], "writeConcern": {"j": true} },
    );
    coll.delete_one(doc! { "_id": 1000 }).write_concern(j).run().unwrap();
    drop(client);
    daemon.kill();

    let daemon = spawn(dbdir.path(), logdir.path(), "pit2");
    let client = client_for(&daemon);
    let db = client.database("pitcrash");
    let coll = db.collection::<Document>("c");
    assert_eq!(coll.count_documents(doc! {}).run().unwrap(), 270);
    assert_eq!(coll.count_documents(doc! { "w": -1 }).run().unwrap(), 30);
    assert_eq!(coll.find_one(doc! { "_id": 5 }).run().unwrap(), Some(doc! { "_id": 5, "x": "replaced" }));
    // The index built before the crash answers correctly (it was rebuilt).
    let r =
        db.run_command(doc! { "find": "c", "filter": {"w": {"$gte": 290}}, "hint": "w_1" }).run().unwrap();
    let n = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len();
    // 290..299 less 293 (its w became -1) and 294 (deleted).
    assert_eq!(n, 8, "{r}");
    // History from before the crash is readable at its cluster time.
    let r = db
        .run_command(doc! { "find": "c", "filter": {"_id": 1000}, "readConcern": snapshot_at(t) })
        .run()
        .unwrap();
    assert_eq!(r.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 1, "{r}");

    // A second crash: the index rebuilt by the first recovery must still be whole.
    let j = WriteConcern::builder().journal(true).build();
    coll.insert_one(doc! { "_id": 2000, "v": 0, "w": 2000 }).write_concern(j).run().unwrap();
    drop(client);
    let mut daemon = daemon;
    daemon.kill();
    let daemon = spawn(dbdir.path(), logdir.path(), "pit3");
    let client = client_for(&daemon);
    let db = client.database("pitcrash");
    let r = db.run_command(doc! { "count": "c", "query": {"w": {"$gte": 0}}, "hint": "w_1" }).run().unwrap();
    // 300 less 30 deleted, 30 with w -1 and the replaced _id 5, plus _id 2000.
    assert_eq!(r.get_i32("n"), Ok(240), "{r}");
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).run().unwrap(), 271);
}
