//! Capped collections (size and max eviction, insertion order) and tailable / awaitData
//! cursors on them.

use crate::common::*;
use mongodb::bson::{doc, Document};
use mongodb::options::CursorType;
use std::time::{Duration, Instant};

fn ids(c: &mongodb::sync::Collection<Document>) -> Vec<i32> {
    c.find(doc! {}).run().unwrap().map(|d| d.unwrap().get_i32("_id").unwrap()).collect()
}

#[test]
fn capped_by_count_keeps_the_newest_in_insertion_order() {
    let env = start();
    let db = env.db("capped");
    db.run_command(doc! { "create": "c", "capped": true, "size": 100_000, "max": 5 }).run().unwrap();
    let c = db.collection::<Document>("c");
    for i in 0..12 {
        c.insert_one(doc! { "_id": i }).run().unwrap();
    }
    assert_eq!(ids(&c), vec![7, 8, 9, 10, 11]);
    c.insert_many((12..20).map(|i| doc! { "_id": i })).run().unwrap();
    assert_eq!(ids(&c), vec![15, 16, 17, 18, 19]);
    let stats = db.run_command(doc! { "collStats": "c" }).run().unwrap();
    assert!(stats.get_bool("capped").unwrap());
    assert_eq!(num(&stats, "count"), 5);
}

#[test]
fn capped_by_size_evicts_oldest() {
    let env = start();
    let db = env.db("cappedsize");
    db.run_command(doc! { "create": "c", "capped": true, "size": 4096 }).run().unwrap();
    let c = db.collection::<Document>("c");
    let pad = "x".repeat(1000);
    for i in 0..10 {
        c.insert_one(doc! { "_id": i, "pad": pad.clone() }).run().unwrap();
    }
    let left = ids(&c);
    assert!(left.len() <= 4 && !left.is_empty(), "{left:?}");
    assert_eq!(*left.last().unwrap(), 9);
    assert!(left.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn tailable_await_cursor_sees_new_documents() {
    let env = start();
    let db = env.db("tail");
    db.run_command(doc! { "create": "c", "capped": true, "size": 100_000 }).run().unwrap();
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 0 }).run().unwrap();
    let mut cursor = c
        .find(doc! {})
        .cursor_type(CursorType::TailableAwait)
        .max_await_time(Duration::from_secs(5))
        .run()
        .unwrap();
    assert_eq!(cursor.next().unwrap().unwrap().get_i32("_id").unwrap(), 0);
    let writer = {
        let c = c.clone();
        std::thread::spawn(move || {
            for i in 1..=3 {
                std::thread::sleep(Duration::from_millis(150));
                c.insert_one(doc! { "_id": i }).run().unwrap();
            }
        })
    };
    let started = Instant::now();
    for want in 1..=3 {
        let d = cursor.next().unwrap().unwrap();
        assert_eq!(d.get_i32("_id").unwrap(), want);
    }
    // Woken by the commits, not by the 5 s await timeout.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    writer.join().unwrap();
}

#[test]
fn tailable_needs_a_capped_collection() {
    let env = start();
    let db = env.db("tailbad");
    db.collection::<Document>("c").insert_one(doc! { "a": 1 }).run().unwrap();
    assert_command_error(db.run_command(doc! { "find": "c", "tailable": true }).run(), 2, "BadValue");
    assert_command_error(db.run_command(doc! { "find": "c", "awaitData": true }).run(), 9, "FailedToParse");
}

#[test]
fn tailable_cursor_overtaken_by_eviction_fails_with_capped_position_lost() {
    let env = start();
    let db = env.db("tailost");
    // The cursor is continued in the session that opened it.
    let mut s = env.client.start_session().run().unwrap();
    db.run_command(doc! { "create": "c", "capped": true, "size": 100_000, "max": 5 }).run().unwrap();
    let c = db.collection::<Document>("c");
    c.insert_many((0..5).map(|i| doc! { "_id": i })).run().unwrap();
    let r = db.run_command(doc! { "find": "c", "tailable": true }).session(&mut s).run().unwrap();
    let id = as_i64(path(&r, "cursor.id"));
    assert_eq!(path(&r, "cursor.firstBatch").as_array().unwrap().len(), 5);
    // Keeping up: the next document arrives and the cursor stays open.
    c.insert_one(doc! { "_id": 5 }).run().unwrap();
    let r = db.run_command(doc! { "getMore": id, "collection": "c" }).session(&mut s).run().unwrap();
    assert_eq!(path(&r, "cursor.nextBatch").as_array().unwrap().len(), 1);
    // Eviction passes the cursor's position: the next getMore cannot continue.
    c.insert_many((6..16).map(|i| doc! { "_id": i })).run().unwrap();
    assert_command_error(
        db.run_command(doc! { "getMore": id, "collection": "c" }).session(&mut s).run(),
        136,
        "CappedPositionLost",
    );
    // The failed cursor is gone.
    assert_command_error(
        db.run_command(doc! { "getMore": id, "collection": "c" }).session(&mut s).run(),
        43,
        "CursorNotFound",
    );
    // A new tailable cursor starts over from the oldest surviving document.
    let r = db.run_command(doc! { "find": "c", "tailable": true }).session(&mut s).run().unwrap();
    let first: Vec<i32> = path(&r, "cursor.firstBatch")
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_document().unwrap().get_i32("_id").unwrap())
        .collect();
    assert_eq!(first, vec![11, 12, 13, 14, 15]);
}

#[test]
fn coll_stats_report_capped_limits() {
    use mongodb::bson::{doc, Document};
    let env = crate::common::start();
    let db = env.db("cappedstats");
    db.run_command(doc! { "create": "c", "capped": true, "size": 4096, "max": 10 }).run().unwrap();
    let s = db.run_command(doc! { "collStats": "c" }).run().unwrap();
    assert_eq!(crate::common::num(&s, "maxSize"), 4096);
    assert_eq!(crate::common::num(&s, "max"), 10);
    let got: Vec<Document> = db
        .collection::<Document>("c")
        .aggregate(vec![
            doc! { "$collStats": { "storageStats": {} } },
            doc! { "$project": { "_id": 0, "capped": "$storageStats.capped", "maxSize": "$storageStats.maxSize" } },
        ])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get_bool("capped"), Ok(true));
    assert_eq!(crate::common::num(&got[0], "maxSize"), 4096);
}
