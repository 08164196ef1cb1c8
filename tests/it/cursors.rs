//! Cursors: batches, getMore, limits, killing, and unknown cursor ids.

use crate::common::{self, assert_command_error, assert_ok, num};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{ClientSession, Collection, Database};

const N: i32 = 1000;

/// A permutation of 0..N so that natural order differs from `_id` order.
fn scrambled_ids() -> Vec<i32> {
    // 7919 is prime and coprime to N, so this visits every residue once.
    (0..N).map(|i| (i * 7919 + 13) % N).collect()
}

/// Inserts N documents (in several insert_many calls) and returns their `_id`s in insertion order.
fn seed(coll: &Collection<Document>) -> Vec<i32> {
    let order = scrambled_ids();
    for chunk in order.chunks(250) {
        let docs: Vec<Document> =
            chunk.iter().map(|i| doc! {"_id": *i, "v": *i % 17, "pad": "p".repeat(20)}).collect();
        coll.insert_many(docs).run().expect("seed");
    }
    order
}

fn getmore_count(env: &common::Env) -> i64 {
    let s = env.admin_cmd(doc! {"serverStatus": 1}).expect("serverStatus");
    num(s.get_document("opcounters").expect("opcounters"), "getmore")
}

fn collect_ids(cursor: mongodb::sync::Cursor<Document>) -> Vec<i32> {
    cursor.map(|d| d.expect("doc").get_i32("_id").expect("_id")).collect()
}

#[test]
fn small_batches_return_everything_in_insertion_order() {
    let env = common::start();
    let coll = env.coll("batch7");
    let order = seed(&coll);
    let before = getmore_count(&env);
    let got = collect_ids(coll.find(doc! {}).batch_size(7).run().expect("find"));
    assert_eq!(got.len(), N as usize);
    assert_eq!(got, order, "no sort: natural (insertion) order");
    // 7 in the first batch, then ceil(993 / 7) = 142 getMores at least.
    let getmores = getmore_count(&env) - before;
    assert!(getmores >= 142, "only {getmores} getMores for batch size 7");

    // The default batch sizes return the same.
    assert_eq!(collect_ids(coll.find(doc! {}).run().expect("find")), order);
}

#[test]
fn sorted_query_across_get_mores() {
    let env = common::start();
    let coll = env.coll("sorted");
    seed(&coll);
    let got: Vec<(i32, i32)> = coll
        .find(doc! {"v": {"$lt": 5}})
        .sort(doc! {"v": -1, "_id": 1})
        .batch_size(11)
        .run()
        .expect("find")
        .map(|d| {
            let d = d.expect("doc");
            (d.get_i32("v").expect("v"), d.get_i32("_id").expect("_id"))
        })
        .collect();
    let mut expected: Vec<(i32, i32)> = (0..N).filter(|i| i % 17 < 5).map(|i| (i % 17, i)).collect();
    expected.sort_by_key(|&(v, id)| (-v, id));
    assert_eq!(got, expected);
}

/// Runs a find or getMore in session `s`: a cursor opened in a session may only be continued
/// in it, and the driver's implicit sessions can differ from one command to the next.
fn find_cmd(db: &Database, s: &mut ClientSession, cmd: Document) -> (i64, Vec<Bson>, String) {
    let r = db.run_command(cmd).session(s).run().expect("find/getMore");
    assert_ok(&r);
    let c = r.get_document("cursor").expect("cursor");
    let id = match c.get("id") {
        Some(Bson::Int64(id)) => *id,
        other => panic!("cursor.id must be int64, got {other:?} in {r}"),
    };
    let batch = c
        .get_array("firstBatch")
        .or_else(|_| c.get_array("nextBatch"))
        .unwrap_or_else(|_| panic!("no batch in {r}"))
        .clone();
    (id, batch, c.get_str("ns").expect("ns").to_string())
}

#[test]
fn default_first_batch_is_101_then_get_more_returns_the_rest() {
    let env = common::start();
    let db = env.db("defbatch");
    let mut s = env.client.start_session().run().expect("session");
    let coll = db.collection::<Document>("c");
    seed(&coll);
    let ns = format!("{}.c", db.name());
    let (id, first, cns) = find_cmd(&db, &mut s, doc! {"find": "c", "filter": {}});
    assert_eq!(first.len(), 101);
    assert_ne!(id, 0, "more to read: the cursor stays open");
    assert_eq!(cns, ns);
    let first_batch = first.first().and_then(Bson::as_document).cloned().expect("doc");
    assert!(first.iter().all(|d| matches!(d, Bson::Document(_))));

    let (id2, next, gns) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c", "batchSize": 500});
    assert_eq!(next.len(), 500);
    assert_eq!(id2, id, "same cursor id while open");
    assert_eq!(gns, ns);
    // Without batchSize, getMore returns everything left (well under 16 MB).
    let (id3, rest, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c"});
    assert_eq!(rest.len(), (N as usize) - 601);
    assert_eq!(id3, 0, "exhausted cursor reports id 0");
    // An exhausted cursor is gone.
    assert_command_error(db.run_command(doc! {"getMore": id, "collection": "c"}).run(), 43, "CursorNotFound");
    assert_eq!(first_batch.get_i32("_id").expect("_id"), scrambled_ids()[0]);
}

#[test]
fn limit_and_batch_size_interplay() {
    let env = common::start();
    let db = env.db("limit");
    let mut s = env.client.start_session().run().expect("session");
    let coll = db.collection::<Document>("c");
    let order = seed(&coll);

    let got = collect_ids(coll.find(doc! {}).limit(20).batch_size(7).run().expect("find"));
    assert_eq!(got, order[..20].to_vec());
    let got = collect_ids(coll.find(doc! {}).limit(5).batch_size(7).run().expect("find"));
    assert_eq!(got, order[..5].to_vec());
    let got = collect_ids(coll.find(doc! {}).skip(995).batch_size(2).run().expect("find"));
    assert_eq!(got, order[995..].to_vec());

    // Raw: limit 20 batchSize 7 -> 7, 7, 6 and the cursor closes with the limit.
    let (id, b1, _) = find_cmd(&db, &mut s, doc! {"find": "c", "limit": 20, "batchSize": 7});
    assert_eq!(b1.len(), 7);
    assert_ne!(id, 0);
    let (id, b2, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c", "batchSize": 7});
    assert_eq!(b2.len(), 7);
    assert_ne!(id, 0);
    let (id, b3, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c", "batchSize": 7});
    assert_eq!(b3.len(), 6);
    assert_eq!(id, 0, "limit reached: cursor closed");
    // A limit inside the first batch closes the cursor at once.
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "limit": 5, "batchSize": 7});
    assert_eq!((b.len(), id), (5, 0));
    // singleBatch never leaves a cursor open.
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 3, "singleBatch": true});
    assert_eq!((b.len(), id), (3, 0));
}

#[test]
fn dropping_a_cursor_mid_way_leaves_the_server_healthy() {
    let env = common::start();
    let coll = env.coll("kill");
    let order = seed(&coll);
    for _ in 0..5 {
        let mut cursor = coll.find(doc! {}).batch_size(7).run().expect("find");
        let first: Vec<i32> =
            (&mut cursor).take(10).map(|d| d.expect("doc").get_i32("_id").expect("_id")).collect();
        assert_eq!(first, order[..10].to_vec());
        drop(cursor);
    }
    // Writes and full reads still work.
    coll.insert_one(doc! {"_id": -1}).run().expect("insert");
    let got = collect_ids(coll.find(doc! {}).batch_size(50).run().expect("find"));
    assert_eq!(got.len(), N as usize + 1);
    assert_eq!(got[..N as usize], order[..]);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), N as u64 + 1);
}

#[test]
fn kill_cursors_then_get_more_is_cursor_not_found() {
    let env = common::start();
    let db = env.db("killraw");
    let mut s = env.client.start_session().run().expect("session");
    seed(&db.collection::<Document>("c"));
    let (id, _, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 2});
    assert_ne!(id, 0);
    let r = db
        .run_command(doc! {"killCursors": "c", "cursors": [id, 123_456_789_i64]})
        .run()
        .expect("killCursors");
    assert_ok(&r);
    assert_eq!(r.get_array("cursorsKilled").expect("cursorsKilled"), &vec![Bson::Int64(id)]);
    assert_eq!(r.get_array("cursorsNotFound").expect("cursorsNotFound"), &vec![Bson::Int64(123_456_789)]);
    assert!(r.get_array("cursorsAlive").expect("cursorsAlive").is_empty());
    assert!(r.get_array("cursorsUnknown").expect("cursorsUnknown").is_empty());
    let msg = assert_command_error(
        db.run_command(doc! {"getMore": id, "collection": "c"}).run(),
        43,
        "CursorNotFound",
    );
    assert!(msg.contains(&id.to_string()), "errmsg names the cursor: {msg}");
}

#[test]
fn get_more_on_unknown_cursor_id() {
    let env = common::start();
    let db = env.db("unknown");
    db.collection::<Document>("c").insert_one(doc! {"a": 1}).run().expect("insert");
    assert_command_error(
        db.run_command(doc! {"getMore": 987_654_321_987_i64, "collection": "c"}).run(),
        43,
        "CursorNotFound",
    );
}

/// An exhaust getMore (exhaustAllowed) streams every remaining batch with moreToCome, each
/// reply answering the previous one, the last with cursor id 0.
#[test]
fn exhaust_get_more_streams_batches() {
    use crate::common::raw;
    use std::io::Write;
    let env = crate::common::start();
    let db = env.db("exhaust");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((0..10).map(|i| mongodb::bson::doc! { "_id": i })).run().unwrap();
    // Opened without an lsid (a raw frame), as the raw getMore below has none.
    let find = mongodb::bson::doc! { "find": "c", "batchSize": 2, "$db": db.name() };
    let first = raw::command(env.server.addr(), &find);
    let id = first.get_document("cursor").unwrap().get_i64("id").unwrap();
    let mut s = raw::connect(env.server.addr());
    let get_more = mongodb::bson::doc! { "getMore": id, "collection": "c", "batchSize": 2, "$db": db.name() };
    s.write_all(&raw::op_msg_flags(77, 1 << 16, &get_more)).unwrap();
    let mut expected_response_to = 77;
    let mut got = 0;
    loop {
        let r = raw::read_frame(&mut s).unwrap();
        assert_eq!(r.response_to, expected_response_to);
        let flags = u32::from_le_bytes(r.body[..4].try_into().unwrap());
        let d = raw::op_msg_doc(&r);
        let cur = d.get_document("cursor").unwrap();
        got += cur.get_array("nextBatch").unwrap().len();
        let open = cur.get_i64("id").unwrap() != 0;
        assert_eq!(flags & 2 != 0, open, "moreToCome exactly while the cursor is open");
        if !open {
            break;
        }
        expected_response_to = r.request_id;
    }
    assert_eq!(got, 8);
}

/// noCursorTimeout cursors are exempt from the idle reaper.
#[test]
fn no_cursor_timeout_is_recorded() {
    let env = crate::common::start();
    let db = env.db("nct");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((0..5).map(|i| mongodb::bson::doc! { "_id": i })).run().unwrap();
    let r = db
        .run_command(mongodb::bson::doc! { "find": "c", "batchSize": 1, "noCursorTimeout": true })
        .run()
        .unwrap();
    let id = r.get_document("cursor").unwrap().get_i64("id").unwrap();
    let cur = env.server.shared().cursors.get(id).expect("registered");
    assert!(cur.lock().no_timeout);
}

/// find's maxTimeMS bounds the work of the query (50 MaxTimeMSExpired), not idle time.
#[test]
fn find_max_time_ms_stops_a_long_query() {
    let env = crate::common::start();
    let db = env.db("maxtime");
    let c = db.collection::<mongodb::bson::Document>("c");
    let docs: Vec<_> =
        (0..30_000).map(|i| mongodb::bson::doc! { "_id": i, "v": (i * 7919) % 30_011 }).collect();
    c.insert_many(docs).run().unwrap();
    let run = |ms: i64| {
        db.run_command(
            mongodb::bson::doc! { "find": "c", "sort": { "v": 1 }, "maxTimeMS": ms, "batchSize": 2 },
        )
        .run()
    };
    let err = run(1).unwrap_err();
    assert_eq!(crate::common::command_error(&err).0, 50, "MaxTimeMSExpired");
    let ok = run(600_000).unwrap();
    let first = ok.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(first[0].as_document().unwrap().get_i32("v").unwrap(), 0);
    let err = run(-1).unwrap_err();
    assert_eq!(crate::common::command_error(&err).1, "BadValue");
    // A scan without a sort is also cut off.
    let err = db
        .run_command(mongodb::bson::doc! { "find": "c", "filter": { "v": { "$lt": -1 } }, "maxTimeMS": 1 })
        .run()
        .unwrap_err();
    assert_eq!(crate::common::command_error(&err).0, 50);
}

/// A blocking sort past internalQueryMaxBlockingSortMemoryUsageBytes fails with
/// allowDiskUse: false (292) and spills to disk with it, returning every document in order.
#[test]
fn blocking_sorts_spill_to_disk_with_allow_disk_use() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let admin = env.client.database("admin");
    let was = admin
        .run_command(doc! { "setParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 100_000 })
        .run()
        .unwrap();
    assert_eq!(crate::common::num(&was, "was"), 100 * 1024 * 1024);
    let db = env.db("spill");
    let c = db.collection::<mongodb::bson::Document>("c");
    let n = 3000;
    c.insert_many((0..n).map(|i| doc! { "_id": i, "k": (i * 7919) % n, "pad": "x".repeat(100) }))
        .run()
        .unwrap();
    let err = c
        .find(doc! {})
        .sort(doc! { "k": -1 })
        .allow_disk_use(false)
        .run()
        .map(|cur| cur.count())
        .unwrap_err();
    assert_eq!(crate::common::command_error(&err).0, 292);
    let keys: Vec<i32> = c
        .find(doc! {})
        .sort(doc! { "k": -1 })
        .allow_disk_use(true)
        .batch_size(500)
        .run()
        .unwrap()
        .map(|d| d.unwrap().get_i32("k").unwrap())
        .collect();
    assert_eq!(keys, (0..n).rev().collect::<Vec<i32>>());
    // The aggregation $sort spills the same way.
    let pipeline = vec![doc! { "$sort": { "k": 1 } }, doc! { "$project": { "k": 1 } }];
    let err = c.aggregate(pipeline.clone()).allow_disk_use(false).run().map(|cur| cur.count()).unwrap_err();
    assert_eq!(crate::common::command_error(&err).0, 292);
    let keys: Vec<i32> = c
        .aggregate(pipeline)
        .allow_disk_use(true)
        .run()
        .unwrap()
        .map(|d| d.unwrap().get_i32("k").unwrap())
        .collect();
    assert_eq!(keys, (0..n).collect::<Vec<i32>>());
    let got = admin
        .run_command(doc! { "getParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 1 })
        .run()
        .unwrap();
    assert_eq!(crate::common::num(&got, "internalQueryMaxBlockingSortMemoryUsageBytes"), 100_000);
    let err = admin.run_command(doc! { "setParameter": 1, "noSuchParameter": 1 }).run().unwrap_err();
    assert_eq!(crate::common::command_error(&err).1, "InvalidOptions");
}

/// As mongod, a full batch does not look ahead: a cursor whose last documents exactly fill a
/// batch stays open and the next getMore returns an empty batch with id 0; a short batch or a
/// met limit closes it at once.
#[test]
fn a_full_batch_leaves_the_cursor_open() {
    let env = common::start();
    let db = env.db("fullbatch");
    let coll = db.collection::<Document>("c");
    let mut s = env.client.start_session().run().expect("session");
    coll.insert_many((0..3).map(|i| doc! {"_id": i})).run().expect("insert");
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 3});
    assert_eq!(b.len(), 3);
    assert_ne!(id, 0, "a full batch does not know it was the last");
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c"});
    assert_eq!((b.len(), id), (0, 0));
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 1});
    assert_ne!(id, 0);
    assert_eq!(b.len(), 1);
    let (id2, b, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c", "batchSize": 2});
    assert_eq!((b.len(), id2), (2, id));
    let (id3, b, _) = find_cmd(&db, &mut s, doc! {"getMore": id, "collection": "c", "batchSize": 2});
    assert_eq!((b.len(), id3), (0, 0));
    // A short batch closes at once, and so does a limit met by a full batch.
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 5});
    assert_eq!((b.len(), id), (3, 0));
    let (id, b, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 2, "limit": 2});
    assert_eq!((b.len(), id), (2, 0));
    // Aggregation cursors behave the same.
    let r = db
        .run_command(doc! {"aggregate": "c", "pipeline": [{"$match": {}}], "cursor": {"batchSize": 3}})
        .session(&mut s)
        .run()
        .expect("aggregate");
    assert_ne!(r.get_document("cursor").and_then(|c| c.get_i64("id")).expect("id"), 0, "{r}");
}

/// `maxTimeAlwaysTimeOut` fails a getMore on a cursor opened with maxTimeMS (50).
#[test]
fn max_time_fail_point_reaches_get_more() {
    let env = common::start();
    let db = env.db("mtfp");
    let coll = db.collection::<Document>("c");
    coll.insert_many((0..10).map(|i| doc! {"_id": i})).run().expect("insert");
    let mut s = env.client.start_session().run().expect("session");
    let (id, _, _) = find_cmd(&db, &mut s, doc! {"find": "c", "batchSize": 2, "maxTimeMS": 60_000});
    env.admin_cmd(doc! {"configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "alwaysOn"}).expect("fp on");
    let r = db.run_command(doc! {"getMore": id, "collection": "c"}).session(&mut s).run();
    env.admin_cmd(doc! {"configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "off"}).expect("fp off");
    assert_command_error(r, 50, "MaxTimeMSExpired");
}

/// The profiler writes each operation of a profiled database to `system.profile`.
#[test]
fn profiler_records_operations_with_their_comment() {
    let env = common::start();
    let db = env.db("prof");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"type": "a"}).run().expect("insert");
    let r = db.run_command(doc! {"profile": 2}).run().expect("profile 2");
    assert_eq!(r.get_i32("was"), Ok(0), "{r}");
    assert_eq!(r.get_i32("slowms"), Ok(100), "{r}");
    coll.find(doc! {}).comment("foo").run().expect("find").for_each(drop);
    db.run_command(doc! {"distinct": "c", "key": "type", "comment": "foo"}).run().expect("distinct");
    let profile = db.collection::<Document>("system.profile");
    let ns = format!("{}.c", db.name());
    let n = |f: Document| profile.count_documents(f).run().expect("count");
    assert_eq!(n(doc! {"ns": &ns, "op": "query", "command.comment": "foo"}), 1);
    assert_eq!(n(doc! {"ns": &ns, "op": "command", "command.distinct": "c", "command.comment": "foo"}), 1);
    let r = db.run_command(doc! {"profile": 0}).run().expect("profile 0");
    assert_eq!(r.get_i32("was"), Ok(2), "{r}");
    let before = n(doc! {});
    coll.find(doc! {}).run().expect("find").for_each(drop);
    assert_eq!(n(doc! {}), before, "profiling is off");
    let opts = db
        .run_command(doc! {"listCollections": 1, "filter": {"name": "system.profile"}})
        .run()
        .expect("list");
    let entry = opts.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(entry.len(), 1, "{opts}");
    let e = db.run_command(doc! {"profile": 5}).run().expect_err("bad level");
    assert_eq!(common::command_error(&e).0, 2);
}
