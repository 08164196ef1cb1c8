//! The reaper thread: oplog retention, TTL passes on demand, idle cursor expiry.

use crate::common::*;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use secantusdb::reaper::Job;
use std::time::{Duration, Instant};

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn oplog_is_pruned_to_its_entry_limit_and_old_tokens_are_lost() {
    let env = start_with(builder().oplog_max_entries(5));
    let c = env.coll("pruned");
    let mut stream = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    for i in 0..30 {
        c.insert_one(doc! { "_id": i }).run().unwrap();
    }
    let first = stream.next().unwrap().unwrap();
    let token = stream.resume_token().unwrap();
    assert_eq!(first.document_key, Some(doc! { "_id": 0 }));
    drop(stream);
    env.server.run_reaper_job(Job::OplogPrune);
    let oplog = env.client.database("local").collection::<Document>("oplog.rs");
    // Counted with find: the job runs on the reaper thread, and pruning may first checkpoint.
    let entries = || oplog.find(doc! {}).run().unwrap().count();
    wait_until("the reaper pruned the oplog", || entries() <= 5);
    let err = c.watch().resume_after(token).run().map(|_| ()).unwrap_err();
    assert_eq!(command_error(&err).0, 286, "ChangeStreamHistoryLost");
    // The newest entries are kept.
    let last = oplog.find(doc! {}).sort(doc! { "$natural": -1 }).limit(1).run().unwrap().next();
    assert_eq!(last.unwrap().unwrap().get_document("o").unwrap(), &doc! { "_id": 29 });
}

#[test]
fn a_ttl_pass_runs_when_asked_not_only_on_its_period() {
    // The default 60 s period: without the explicit run the documents would outlive the test.
    let env = start();
    let c = env.coll("ttlnow");
    let old = DateTime::from_millis(DateTime::now().timestamp_millis() - 3_600_000);
    c.insert_many(vec![doc! { "_id": 1, "at": old }, doc! { "_id": 2, "at": DateTime::now() }])
        .run()
        .unwrap();
    let opts = IndexOptions::builder().expire_after(Duration::from_secs(600)).build();
    c.create_index(IndexModel::builder().keys(doc! { "at": 1 }).options(opts).build()).run().unwrap();
    env.server.run_reaper_job(Job::Ttl);
    wait_until("the TTL pass deleted the old document", || c.count_documents(doc! {}).run().unwrap() == 1);
    assert!(c.find_one(doc! { "_id": 2 }).run().unwrap().is_some());
}

#[test]
fn idle_cursors_expire_and_report_their_deadline() {
    let env = start();
    let db = env.db("idle");
    let c = db.collection::<Document>("c");
    c.insert_many((0..5).map(|i| doc! { "_id": i })).run().unwrap();
    let open = |extra: Document| {
        let mut cmd = doc! { "find": "c", "batchSize": 1 };
        cmd.extend(extra);
        db.run_command(cmd).run().unwrap().get_document("cursor").unwrap().get_i64("id").unwrap()
    };
    let idle = open(doc! {});
    let pinned = open(doc! { "noCursorTimeout": true });
    let cursors = &env.server.shared().cursors;
    let now = Instant::now();
    let next = cursors.next_expiry(now).expect("one cursor can expire");
    assert!(next > now + Duration::from_secs(590) && next <= now + Duration::from_secs(600));
    assert_eq!(cursors.reap(now + Duration::from_secs(601)), 1);
    let err = db.run_command(doc! { "getMore": idle, "collection": "c" }).run().unwrap_err();
    assert_eq!(command_error(&err).1, "CursorNotFound");
    let more = db.run_command(doc! { "getMore": pinned, "collection": "c", "batchSize": 1 }).run().unwrap();
    assert_eq!(more.get_document("cursor").unwrap().get_array("nextBatch").unwrap().len(), 1);
    assert_eq!(cursors.next_expiry(now), None, "noCursorTimeout cursors never expire");
}
