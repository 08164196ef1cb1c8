//! Change streams through the driver's `watch()`: event shapes, options, resumption,
//! invalidation, and no lost or duplicated events under concurrent writers.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use std::collections::HashSet;
use std::time::Duration;

type Stream = mongodb::sync::ChangeStream<ChangeStreamEvent<Document>>;

fn next(s: &mut Stream) -> ChangeStreamEvent<Document> {
    for _ in 0..50 {
        if let Some(e) = s.next_if_any().unwrap() {
            return e;
        }
    }
    panic!("no change event arrived");
}

#[test]
fn collection_stream_reports_every_write_kind() {
    let env = start();
    let db = env.db("cs");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 0 }).run().unwrap();
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    c.insert_one(doc! { "_id": 1, "a": 1, "b": 2 }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 5 }, "$unset": { "b": "" } }).run().unwrap();
    c.replace_one(doc! { "_id": 1 }, doc! { "x": 1 }).run().unwrap();
    c.delete_one(doc! { "_id": 1 }).run().unwrap();

    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Insert);
    assert_eq!(e.full_document, Some(doc! { "_id": 1, "a": 1, "b": 2 }));
    assert_eq!(e.document_key, Some(doc! { "_id": 1 }));
    let ns = e.ns.unwrap();
    assert_eq!(ns.coll.as_deref(), Some("c"));
    assert!(e.cluster_time.is_some() && e.wall_time.is_some());

    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Update);
    let ud = e.update_description.unwrap();
    assert_eq!(ud.updated_fields, doc! { "a": 5 });
    assert_eq!(ud.removed_fields, vec!["b".to_string()]);
    assert_eq!(e.full_document, None);

    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Replace);
    assert_eq!(e.full_document, Some(doc! { "_id": 1, "x": 1 }));

    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Delete);
    assert_eq!(e.document_key, Some(doc! { "_id": 1 }));
}

#[test]
fn update_lookup_match_and_resume() {
    let env = start();
    let db = env.db("csresume");
    let c = db.collection::<Document>("c");
    let mut s = c
        .watch()
        .pipeline(vec![doc! { "$match": { "operationType": { "$in": ["insert", "update"] } } }])
        .full_document(FullDocumentType::UpdateLookup)
        .max_await_time(Duration::from_millis(200))
        .run()
        .unwrap();
    c.insert_one(doc! { "_id": 1, "n": 1 }).run().unwrap();
    c.delete_many(doc! { "_id": 99 }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).run().unwrap();
    let first = next(&mut s);
    assert_eq!(first.operation_type, OperationType::Insert);
    let token: ResumeToken = first.id.clone();
    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Update);
    assert_eq!(e.full_document, Some(doc! { "_id": 1, "n": 2 }));
    drop(s);
    // Resuming after the first event replays the second.
    let mut s2 = c.watch().resume_after(token).max_await_time(Duration::from_millis(200)).run().unwrap();
    let e = next(&mut s2);
    assert_eq!(e.operation_type, OperationType::Update);
    assert_eq!(e.update_description.unwrap().updated_fields, doc! { "n": 2 });
}

#[test]
fn drop_emits_drop_then_invalidate() {
    let env = start();
    let db = env.db("csdrop");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1 }).run().unwrap();
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    c.drop().run().unwrap();
    assert_eq!(next(&mut s).operation_type, OperationType::Drop);
    assert_eq!(next(&mut s).operation_type, OperationType::Invalidate);
    assert!(!s.is_alive() || s.next_if_any().unwrap().is_none());
}

#[test]
fn database_and_cluster_streams_see_every_collection() {
    let env = start();
    let db = env.db("csdb");
    let mut dbs = db.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    let mut all = env.client.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    db.collection::<Document>("a").insert_one(doc! { "_id": 1 }).run().unwrap();
    db.collection::<Document>("b").insert_one(doc! { "_id": 2 }).run().unwrap();
    for s in [&mut dbs, &mut all] {
        let colls: Vec<String> = (0..2).map(|_| next(s).ns.unwrap().coll.unwrap()).collect();
        assert_eq!(colls, vec!["a", "b"]);
    }
}

#[test]
fn no_event_is_lost_or_duplicated_under_concurrent_writers() {
    let env = start();
    let db = env.db("csconc");
    let c = db.collection::<Document>("c");
    let mut s = c.watch().max_await_time(Duration::from_millis(300)).batch_size(500).run().unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..400 {
                    c.insert_one(doc! { "_id": w * 1000 + i }).run().unwrap();
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut idle = 0;
    while seen.len() < 1600 && idle < 40 {
        match s.next_if_any().unwrap() {
            Some(e) => {
                let id = match e.document_key.unwrap().get("_id") {
                    Some(Bson::Int32(n)) => *n,
                    other => panic!("{other:?}"),
                };
                assert!(seen.insert(id), "duplicate event for {id}");
                idle = 0;
            }
            None => idle += 1,
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(seen.len(), 1600);
}

#[test]
fn change_stream_errors_as_mongod() {
    let env = start();
    let db = env.db("cserr");
    assert_command_error(
        db.run_command(
            doc! { "aggregate": "c", "pipeline": [{ "$match": {} }, { "$changeStream": {} }], "cursor": {} },
        )
        .run(),
        40602,
        "Location40602",
    );
    assert_command_error(
        db.run_command(
            doc! { "aggregate": "c", "pipeline": [{ "$changeStream": { "bogus": 1 } }], "cursor": {} },
        )
        .run(),
        40415,
        "Location40415",
    );
    let r = db
        .run_command(doc! { "aggregate": "c", "pipeline": [{ "$changeStream": {} }], "cursor": {} })
        .run()
        .unwrap();
    assert!(path(&r, "cursor.postBatchResumeToken._data").as_str().is_some());
    assert!(matches!(path(&r, "cursor.id"), Bson::Int64(n) if *n != 0));
}

#[test]
fn driver_resumes_after_a_resumable_get_more_error() {
    let env = start();
    let db = env.db("csresumable");
    let c = db.collection::<Document>("c");
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    c.insert_one(doc! { "_id": 1 }).run().unwrap();
    assert_eq!(next(&mut s).document_key, Some(doc! { "_id": 1 }));
    env.admin_cmd(doc! {
        "configureFailPoint": "failGetMoreAfterCursorCheckout",
        "mode": { "times": 1 },
        "data": { "errorCode": 10107 },
    })
    .unwrap();
    c.insert_one(doc! { "_id": 2 }).run().unwrap();
    // The driver sees the labelled error, resumes from its token and loses nothing.
    assert_eq!(next(&mut s).document_key, Some(doc! { "_id": 2 }));
}

#[test]
fn nested_updates_are_described_with_dotted_paths() {
    let env = start();
    let db = env.db("csnested");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "a": { "b": 1, "c": 2 }, "arr": [1, 2, 3, 4] }).run().unwrap();
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a.b": 10 }, "$unset": { "a.c": "" } }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "arr": [1, 9] } }).run().unwrap();
    let e = next(&mut s);
    let ud = e.update_description.unwrap();
    assert_eq!(ud.updated_fields, doc! { "a.b": 10 });
    assert_eq!(ud.removed_fields, vec!["a.c".to_string()]);
    let e = next(&mut s);
    let ud = e.update_description.unwrap();
    assert_eq!(ud.updated_fields, doc! { "arr.1": 9 });
    let t = ud.truncated_arrays.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].field, "arr");
    assert_eq!(t[0].new_size, 2);
}

#[test]
fn the_oplog_is_readable_tailable_and_read_only() {
    let env = start();
    let db = env.db("oplogread");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 7 }).run().unwrap();
    let oplog = env.client.database("local").collection::<Document>("oplog.rs");
    let last = oplog.find_one(doc! {}).sort(doc! { "$natural": -1 }).run().unwrap().unwrap();
    assert_eq!(last.get_str("op").unwrap(), "i");
    assert_eq!(last.get_str("ns").unwrap(), format!("{}.c", db.name()));
    assert_eq!(last.get_document("o").unwrap(), &doc! { "_id": 7 });
    assert!(matches!(last.get("ts"), Some(Bson::Timestamp(_))));
    let err = oplog.insert_one(doc! { "x": 1 }).run().unwrap_err();
    assert_eq!(command_error(&err).0, 13);
    let names = env.client.database("local").list_collection_names().run().unwrap();
    assert!(names.contains(&"oplog.rs".to_string()));
    // A tailable awaitData cursor on the oplog sees a new entry.
    let ts = last.get_timestamp("ts").unwrap();
    let mut tail = oplog
        .find(doc! { "ts": { "$gt": ts } })
        .cursor_type(mongodb::options::CursorType::TailableAwait)
        .max_await_time(Duration::from_secs(2))
        .run()
        .unwrap();
    c.insert_one(doc! { "_id": 8 }).run().unwrap();
    let e = tail.next().unwrap().unwrap();
    assert_eq!(e.get_document("o").unwrap(), &doc! { "_id": 8 });
}

/// The first error a stream's getMores report (events before it are skipped).
fn next_error(s: &mut Stream) -> mongodb::error::Error {
    for _ in 0..50 {
        if let Err(e) = s.next_if_any() {
            return e;
        }
    }
    panic!("no error arrived");
}

fn images_watch(
    c: &mongodb::sync::Collection<Document>,
    before: FullDocumentBeforeChangeType,
    after: Option<FullDocumentType>,
) -> Stream {
    let mut w = c.watch().full_document_before_change(before).max_await_time(Duration::from_millis(200));
    if let Some(after) = after {
        w = w.full_document(after);
    }
    w.run().unwrap()
}

#[test]
fn pre_and_post_images_of_updates_replaces_and_deletes() {
    let env = start();
    let db = env.db("csimages");
    db.run_command(doc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true } })
        .run()
        .unwrap();
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "a": 1, "arr": [1, 2, 3] }).run().unwrap();
    let mut s = images_watch(&c, FullDocumentBeforeChangeType::Required, Some(FullDocumentType::Required));
    let mut lenient =
        images_watch(&c, FullDocumentBeforeChangeType::WhenAvailable, Some(FullDocumentType::WhenAvailable));
    let mut off = images_watch(&c, FullDocumentBeforeChangeType::Off, None);
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 2, "arr.1": 9, "arr.3": 4 } }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 3 } }).run().unwrap();
    c.replace_one(doc! { "_id": 1 }, doc! { "x": 1 }).run().unwrap();
    c.delete_one(doc! { "_id": 1 }).run().unwrap();
    for st in [&mut s, &mut lenient] {
        // The post-image is the document right after each update, not the current one.
        let e = next(st);
        assert_eq!(e.operation_type, OperationType::Update);
        assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "a": 1, "arr": [1, 2, 3] }));
        assert_eq!(e.full_document, Some(doc! { "_id": 1, "a": 2, "arr": [1, 9, 3, 4] }));
        let e = next(st);
        assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "a": 2, "arr": [1, 9, 3, 4] }));
        assert_eq!(e.full_document, Some(doc! { "_id": 1, "a": 3, "arr": [1, 9, 3, 4] }));
        let e = next(st);
        assert_eq!(e.operation_type, OperationType::Replace);
        assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "a": 3, "arr": [1, 9, 3, 4] }));
        assert_eq!(e.full_document, Some(doc! { "_id": 1, "x": 1 }));
        let e = next(st);
        assert_eq!(e.operation_type, OperationType::Delete);
        assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "x": 1 }));
    }
    for _ in 0..4 {
        let e = next(&mut off);
        assert_eq!(e.full_document_before_change, None);
        assert!(e.operation_type == OperationType::Replace || e.full_document.is_none());
    }
}

#[test]
fn images_are_null_when_unavailable_and_required_fails() {
    let env = start();
    let db = env.db("csnoimages");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "a": 1 }).run().unwrap();
    let mut lenient =
        images_watch(&c, FullDocumentBeforeChangeType::WhenAvailable, Some(FullDocumentType::WhenAvailable));
    let mut pre_required = images_watch(&c, FullDocumentBeforeChangeType::Required, None);
    let mut post_required =
        images_watch(&c, FullDocumentBeforeChangeType::Off, Some(FullDocumentType::Required));
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 2 } }).run().unwrap();
    c.delete_one(doc! { "_id": 1 }).run().unwrap();
    let raw: ChangeStreamEvent<Document> = next(&mut lenient);
    assert_eq!(raw.operation_type, OperationType::Update);
    assert_eq!((raw.full_document, raw.full_document_before_change), (None, None));
    let e = next_error(&mut pre_required);
    let (code, name, msg) = command_error(&e);
    assert_eq!((code, name.as_str()), (47, "NoMatchingDocument"));
    assert!(msg.starts_with("Change stream was configured to require a pre-image for all update, delete and replace events, but the pre-image was not found for event: {"), "{msg}");
    let e = next_error(&mut post_required);
    let (code, _, msg) = command_error(&e);
    assert_eq!(code, 47);
    assert!(msg.starts_with("Change stream was configured to require a post-image for all update events, but the post-image was not found for event: {"), "{msg}");
    // The raw reply carries explicit nulls.
    let r = db
        .run_command(doc! {
            "aggregate": "c",
            "pipeline": [{ "$changeStream": {
                "startAtOperationTime": raw.cluster_time.unwrap(),
                "fullDocument": "whenAvailable",
                "fullDocumentBeforeChange": "whenAvailable",
            } }],
            "cursor": {},
        })
        .run()
        .unwrap();
    let first = path(&r, "cursor.firstBatch").as_array().unwrap()[0].as_document().unwrap().clone();
    assert_eq!(first.get("fullDocument"), Some(&Bson::Null));
    assert_eq!(first.get("fullDocumentBeforeChange"), Some(&Bson::Null));
}

#[test]
fn coll_mod_turns_images_on_and_off_and_checks_the_option() {
    let env = start();
    let db = env.db("csimgmod");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "n": 0 }).run().unwrap();
    for (bad, code) in [
        (Bson::Int32(1), 14),
        (Bson::Document(doc! {}), 40414),
        (Bson::Document(doc! { "enabled": 1 }), 14),
        (Bson::Document(doc! { "enabled": true, "x": 1 }), 40415),
    ] {
        let r = db.run_command(doc! { "collMod": "c", "changeStreamPreAndPostImages": bad.clone() }).run();
        assert_eq!(command_error(&r.unwrap_err()).0, code, "{bad:?}");
        let r = db.run_command(doc! { "create": "d", "changeStreamPreAndPostImages": bad.clone() }).run();
        assert_eq!(command_error(&r.unwrap_err()).0, code, "{bad:?}");
    }
    let options = |db: &mongodb::sync::Database| {
        let r = db.run_command(doc! { "listCollections": 1, "filter": { "name": "c" } }).run().unwrap();
        path(&r, "cursor.firstBatch").as_array().unwrap()[0]
            .as_document()
            .unwrap()
            .get_document("options")
            .unwrap()
            .clone()
    };
    let mut s = images_watch(&c, FullDocumentBeforeChangeType::WhenAvailable, None);
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 1 } }).run().unwrap();
    db.run_command(doc! { "collMod": "c", "changeStreamPreAndPostImages": { "enabled": true } })
        .run()
        .unwrap();
    assert_eq!(options(&db), doc! { "changeStreamPreAndPostImages": { "enabled": true } });
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 2 } }).run().unwrap();
    db.run_command(doc! { "collMod": "c", "changeStreamPreAndPostImages": { "enabled": false } })
        .run()
        .unwrap();
    assert_eq!(options(&db), doc! {});
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 3 } }).run().unwrap();
    let images: Vec<Option<Document>> = (0..3).map(|_| next(&mut s).full_document_before_change).collect();
    assert_eq!(images, vec![None, Some(doc! { "_id": 1, "n": 1 }), None]);
}

#[test]
fn pre_images_are_pruned_with_the_oplog() {
    let env = start();
    let db = env.db("csimgprune");
    db.run_command(doc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true } })
        .run()
        .unwrap();
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "n": 0 }).run().unwrap();
    let start_at = {
        let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
        c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 1 } }).run().unwrap();
        next(&mut s).cluster_time.unwrap()
    };
    let before = |db: &mongodb::sync::Database| {
        db.run_command(doc! {
            "aggregate": "c",
            "pipeline": [{ "$changeStream": { "startAtOperationTime": start_at, "fullDocumentBeforeChange": "required" } }],
            "cursor": {},
        })
        .run()
    };
    let r = before(&db).unwrap();
    let first = path(&r, "cursor.firstBatch").as_array().unwrap()[0].as_document().unwrap().clone();
    assert_eq!(first.get_document("fullDocumentBeforeChange").unwrap(), &doc! { "_id": 1, "n": 0 });
    std::thread::sleep(Duration::from_millis(1100));
    let store = env.server.shared().store.clone();
    let ss = store.session().unwrap();
    assert!(secantusdb::oplog::prune(&ss.wt, 0).unwrap() >= 2);
    assert_eq!(secantusdb::oplog::pre_image(&ss.wt, secantusdb::oplog::pack(start_at)).unwrap(), None);
    // The history (and its images) is gone.
    assert_eq!(command_error(&before(&db).unwrap_err()).0, 286);
}

#[test]
fn disambiguated_paths_with_expanded_events() {
    let env = start();
    let db = env.db("csdisamb");
    let c = db.collection::<Document>("c");
    c.insert_one(
        doc! { "_id": 1, "a": 1, "arr": [[{ "0": "x" }], 2, 3], "o": { "0": { "1": 1 } }, "plain": [1, 2] },
    )
    .run()
    .unwrap();
    let mut s =
        c.watch().show_expanded_events(true).max_await_time(Duration::from_millis(200)).run().unwrap();
    let mut plain = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 2, "plain.1": 5 } }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "arr.0.0.0": "y", "o.0.1": 2 } }).run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$unset": { "o.0": "" }, "$set": { "arr": [[{ "0": "x" }]] } })
        .run()
        .unwrap();
    let ud = next(&mut s).update_description.unwrap();
    assert_eq!(ud.disambiguated_paths, Some(doc! {}));
    let ud = next(&mut s).update_description.unwrap();
    assert_eq!(
        ud.disambiguated_paths,
        Some(doc! { "arr.0.0.0": ["arr", 0, 0, "0"], "o.0.1": ["o", "0", "1"] })
    );
    let ud = next(&mut s).update_description.unwrap();
    assert_eq!(ud.removed_fields, vec!["o.0".to_string()]);
    assert_eq!(ud.truncated_arrays.unwrap()[0].field, "arr");
    assert_eq!(ud.disambiguated_paths, Some(doc! { "o.0": ["o", "0"], "arr.0.0.0": ["arr", 0, 0, "0"] }));
    // Without showExpandedEvents the field is absent.
    assert_eq!(next(&mut plain).update_description.unwrap().disambiguated_paths, None);
}

#[test]
fn pre_images_follow_transaction_entries_to_their_commit_timestamps() {
    let env = start();
    let db = env.db("csimgtxn");
    db.run_command(doc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true } })
        .run()
        .unwrap();
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "n": 0 }).run().unwrap();
    let mut s = images_watch(&c, FullDocumentBeforeChangeType::Required, Some(FullDocumentType::Required));
    let mut session = env.client.start_session().run().unwrap();
    session.start_transaction().run().unwrap();
    c.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).session(&mut session).run().unwrap();
    c.delete_one(doc! { "_id": 1 }).session(&mut session).run().unwrap();
    session.commit_transaction().run().unwrap();
    let e = next(&mut s);
    assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "n": 0 }));
    assert_eq!(e.full_document, Some(doc! { "_id": 1, "n": 1 }));
    let e = next(&mut s);
    assert_eq!(e.operation_type, OperationType::Delete);
    assert_eq!(e.full_document_before_change, Some(doc! { "_id": 1, "n": 1 }));
}

#[test]
fn stream_resumes_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_with(builder().dbpath(dir.path()));
    let c = env.client.database("csrestart").collection::<Document>("c");
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    for i in 0..5 {
        c.insert_one(doc! { "_id": i }).run().unwrap();
    }
    // The token of the third event: only the fourth and later may come back.
    let mut token = None;
    for i in 0..5 {
        let e = next(&mut s);
        assert_eq!(e.document_key, Some(doc! { "_id": i }));
        if i == 2 {
            token = Some(e.id.clone());
        }
    }
    let token = token.unwrap();
    drop(s);
    let Env { client, server } = env;
    drop(client);
    server.stop();

    let env = start_with(builder().dbpath(dir.path()));
    let c = env.client.database("csrestart").collection::<Document>("c");
    c.insert_one(doc! { "_id": 5 }).run().unwrap();
    c.update_one(doc! { "_id": 5 }, doc! { "$set": { "a": 1 } }).run().unwrap();
    c.delete_one(doc! { "_id": 0 }).run().unwrap();
    let mut s = c.watch().resume_after(token).max_await_time(Duration::from_millis(200)).run().unwrap();
    let got: Vec<(OperationType, Option<Document>)> = (0..5)
        .map(|_| {
            let e = next(&mut s);
            (e.operation_type, e.document_key)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (OperationType::Insert, Some(doc! { "_id": 3 })),
            (OperationType::Insert, Some(doc! { "_id": 4 })),
            (OperationType::Insert, Some(doc! { "_id": 5 })),
            (OperationType::Update, Some(doc! { "_id": 5 })),
            (OperationType::Delete, Some(doc! { "_id": 0 })),
        ]
    );
    // Nothing else: no event from before the token, none twice.
    assert!(s.next_if_any().unwrap().is_none());
    env.server.stop();
}

/// Opens a change stream on `db.c` with `stages` after `$changeStream`; the cursor id.
/// Opens a change stream in session `s` (its getMores must come in the same session).
fn open_raw(
    db: &mongodb::sync::Database,
    s: &mut mongodb::sync::ClientSession,
    stages: Vec<Document>,
) -> mongodb::error::Result<i64> {
    let mut pipeline = vec![doc! { "$changeStream": {} }];
    pipeline.extend(stages);
    let r = db.run_command(doc! { "aggregate": "c", "pipeline": pipeline, "cursor": {} }).session(s).run()?;
    Ok(as_i64(path(&r, "cursor.id")))
}

fn get_more_raw(
    db: &mongodb::sync::Database,
    s: &mut mongodb::sync::ClientSession,
    id: i64,
) -> mongodb::error::Result<Vec<Document>> {
    let r = db.run_command(doc! { "getMore": id, "collection": "c", "maxTimeMS": 200 }).session(s).run()?;
    Ok(path(&r, "cursor.nextBatch")
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_document().unwrap().clone())
        .collect())
}

#[test]
fn every_stage_mongod_allows_runs_after_change_stream() {
    let env = start();
    let db = env.db("csstages");
    let c = db.collection::<Document>("c");
    let mut s = env.client.start_session().run().unwrap();
    let id = open_raw(
        &db,
        &mut s,
        vec![
            doc! { "$match": { "operationType": "insert" } },
            doc! { "$addFields": { "kind": { "$concat": ["op-", "$operationType"] } } },
            doc! { "$set": { "n2": { "$multiply": ["$fullDocument.n", 2] } } },
            doc! { "$unset": ["wallTime", "clusterTime"] },
            doc! { "$redact": { "$cond": [{ "$eq": ["$fullDocument.n", 3] }, "$$PRUNE", "$$KEEP"] } },
            doc! { "$replaceWith": { "$mergeObjects": ["$$ROOT", { "extra": true }] } },
            doc! { "$replaceRoot": { "newRoot": { "_id": "$_id", "n": "$fullDocument.n", "kind": "$kind", "n2": "$n2", "extra": "$extra" } } },
            doc! { "$project": { "ns": 0 } },
        ],
    )
    .unwrap();
    for n in 1..=4 {
        c.insert_one(doc! { "_id": n, "n": n }).run().unwrap();
    }
    c.delete_one(doc! { "_id": 1 }).run().unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(get_more_raw(&db, &mut s, id).unwrap());
        if got.len() >= 3 {
            break;
        }
    }
    let shapes: Vec<Document> = got
        .iter()
        .map(|e| {
            assert!(e.get_document("_id").unwrap().contains_key("_data"));
            let mut e = e.clone();
            e.remove("_id");
            e
        })
        .collect();
    // n = 3 was redacted, the delete did not match.
    assert_eq!(
        shapes,
        vec![
            doc! { "n": 1, "kind": "op-insert", "n2": 2, "extra": true },
            doc! { "n": 2, "kind": "op-insert", "n2": 4, "extra": true },
            doc! { "n": 4, "kind": "op-insert", "n2": 8, "extra": true },
        ]
    );

    // Changing the event's _id ends the stream with 280, whichever stage does it.
    for stage in [
        doc! { "$set": { "_id": 1 } },
        doc! { "$replaceRoot": { "newRoot": "$fullDocument" } },
        doc! { "$project": { "_id": 0 } },
        doc! { "$unset": "_id" },
    ] {
        let id = open_raw(&db, &mut s, vec![stage.clone()]).unwrap();
        c.insert_one(doc! { "n": 9 }).run().unwrap();
        let e = get_more_raw(&db, &mut s, id).unwrap_err();
        assert_eq!(command_error(&e).0, 280, "{stage}");
    }

    // Stages mongod refuses there, and unknown ones.
    let e = open_raw(&db, &mut s, vec![doc! { "$group": { "_id": null } }]).unwrap_err();
    assert_eq!(command_error(&e).0, 20);
    let e = open_raw(&db, &mut s, vec![doc! { "$limit": 1 }]).unwrap_err();
    assert_eq!(command_error(&e).0, 20);
    let e = open_raw(&db, &mut s, vec![doc! { "$bogus": {} }]).unwrap_err();
    assert_eq!(command_error(&e).0, 40324);
    // A bad spec of an allowed stage fails when the stream opens.
    assert!(open_raw(&db, &mut s, vec![doc! { "$addFields": 1 }]).is_err());
}

/// 100 000 writes from 4 threads, watched by one stream: each arrives exactly once, in commit
/// order per writer (about 30 s in a debug build on 2 cores).
#[test]
fn hundred_thousand_concurrent_writes_each_arrive_exactly_once() {
    const WRITERS: i32 = 4;
    const PER_WRITER: i32 = 25_000;
    let env = start();
    let db = env.db("cs100k");
    let c = db.collection::<Document>("c");
    let mut s = c.watch().max_await_time(Duration::from_millis(500)).batch_size(10_000).run().unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..PER_WRITER {
                    c.insert_one(doc! { "_id": w * PER_WRITER + i, "w": w }).run().unwrap();
                }
            })
        })
        .collect();
    let total = (WRITERS * PER_WRITER) as usize;
    let mut seen = vec![false; total];
    let mut last_of_writer = vec![-1i32; WRITERS as usize];
    let mut count = 0usize;
    let mut idle = 0;
    while count < total && idle < 40 {
        match s.next_if_any().unwrap() {
            Some(e) => {
                let id = match e.document_key.unwrap().get("_id") {
                    Some(Bson::Int32(n)) => *n,
                    other => panic!("{other:?}"),
                };
                let slot = seen.get_mut(id as usize).expect("an id that was written");
                assert!(!*slot, "duplicate event for {id}");
                *slot = true;
                // One writer's inserts are sequential, so its events come in order.
                let w = (id / PER_WRITER) as usize;
                assert!(id > last_of_writer[w], "writer {w}: {id} after {}", last_of_writer[w]);
                last_of_writer[w] = id;
                count += 1;
                idle = 0;
            }
            None => idle += 1,
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(count, total, "missing events: first {:?}", seen.iter().position(|b| !b));
    assert!(s.next_if_any().unwrap().is_none());
}

#[test]
fn events_from_a_transaction_carry_its_session() {
    let env = start();
    let db = env.db("cstxn");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 0 }).run().unwrap();
    let mut s = c.watch().max_await_time(Duration::from_millis(200)).run().unwrap();
    let mut session = env.client.start_session().run().unwrap();
    session.start_transaction().run().unwrap();
    c.insert_one(doc! { "_id": 1 }).session(&mut session).run().unwrap();
    session.commit_transaction().run().unwrap();
    c.insert_one(doc! { "_id": 2 }).run().unwrap();
    let e = next(&mut s);
    assert_eq!(e.document_key, Some(doc! { "_id": 1 }));
    assert!(e.txn_number.is_some());
    assert_eq!(e.lsid.as_ref(), Some(session.id()));
    let e = next(&mut s);
    assert!(e.txn_number.is_none() && e.lsid.is_none());
}

#[test]
fn change_streams_need_majority_read_concern_and_no_transaction() {
    use mongodb::options::{ReadConcern, TransactionOptions};
    let env = start();
    let db = env.db("csrc");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1 }).run().unwrap();
    let open = |level: &str| {
        db.run_command(doc! {
            "aggregate": "c", "pipeline": [{ "$changeStream": {} }], "cursor": {},
            "readConcern": { "level": level },
        })
        .run()
    };
    assert!(open("majority").is_ok());
    for level in ["local", "snapshot", "available", "linearizable"] {
        assert_eq!(command_error(&open(level).unwrap_err()).1, "InvalidOptions", "{level}");
    }
    let mut s = env.client.start_session().run().unwrap();
    s.start_transaction()
        .with_options(TransactionOptions::builder().read_concern(ReadConcern::snapshot()).build())
        .run()
        .unwrap();
    let err = c.watch().session(&mut s).run().map(|_| ()).unwrap_err();
    assert_eq!(command_error(&err).0, 263, "OperationNotSupportedInTransaction");
}

/// Events over 16 MiB fail unless `$changeStreamSplitLargeEvent` splits them into fragments,
/// each resumable on its own.
#[test]
fn large_events_are_split_into_resumable_fragments() {
    use mongodb::options::FullDocumentBeforeChangeType::Required;
    let env = start();
    let db = env.db("cssplit");
    db.run_command(doc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true } })
        .run()
        .unwrap();
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "value": "q".repeat(10 << 20) }).run().unwrap();
    let split = || {
        c.watch()
            .pipeline([doc! { "$changeStreamSplitLargeEvent": {} }])
            .full_document_before_change(Required)
            .max_await_time(Duration::from_millis(200))
    };
    let mut whole = c
        .watch()
        .full_document_before_change(Required)
        .max_await_time(Duration::from_millis(200))
        .run()
        .unwrap();
    let mut s = split().run().unwrap().with_type::<Document>();
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "value": "z".repeat(10 << 20) } }).run().unwrap();
    c.insert_one(doc! { "_id": 2 }).run().unwrap();
    let fragment = |d: &Document| {
        d.get_document("splitEvent").map(|e| (e.get_i32("fragment").unwrap(), e.get_i32("of").unwrap())).ok()
    };
    let first = s.next().unwrap().unwrap();
    assert_eq!(fragment(&first), Some((1, 2)));
    assert_eq!(first.get_str("operationType").unwrap(), "update");
    let token_after_first = s.resume_token().unwrap();
    let second = s.next().unwrap().unwrap();
    assert_eq!(fragment(&second), Some((2, 2)));
    // The fragments together hold the whole event, each field once.
    let fields =
        |d: &Document| d.keys().filter(|k| *k != "_id" && *k != "splitEvent").cloned().collect::<Vec<_>>();
    let (f1, f2) = (fields(&first), fields(&second));
    assert!(f1.iter().all(|k| !f2.contains(k)));
    for k in ["updateDescription", "fullDocumentBeforeChange", "documentKey", "clusterTime"] {
        assert!(f1.iter().chain(&f2).any(|f| f == k), "{k} missing");
    }
    assert_eq!(s.next().unwrap().unwrap().get_document("documentKey").unwrap(), &doc! { "_id": 2 });
    // Resuming from the first fragment gives the second, then the next event.
    let mut resumed = split().resume_after(token_after_first).run().unwrap().with_type::<Document>();
    assert_eq!(fragment(&resumed.next().unwrap().unwrap()), Some((2, 2)));
    assert_eq!(resumed.next().unwrap().unwrap().get_document("documentKey").unwrap(), &doc! { "_id": 2 });
    // Without the stage the event is too large to return.
    let err = whole.next().unwrap().unwrap_err();
    assert_eq!(command_error(&err).0, 10334, "BSONObjectTooLarge");
    // The stage must come last.
    let err = c
        .watch()
        .pipeline([doc! { "$changeStreamSplitLargeEvent": {} }, doc! { "$match": {} }])
        .run()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(command_error(&err).1, "BadValue");
}

#[test]
fn expanded_rename_events_describe_the_target_and_the_dropped_collection() {
    let env = start();
    let db = env.db("csrename");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1 }).run().unwrap();
    db.collection::<Document>("target").insert_one(doc! { "_id": 1 }).run().unwrap();
    let target_uuid = db
        .run_command(doc! { "listCollections": 1, "filter": { "name": "target" } })
        .run()
        .unwrap()
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("info")
        .unwrap()
        .get("uuid")
        .cloned()
        .unwrap();
    let mut s = c
        .watch()
        .show_expanded_events(true)
        .max_await_time(Duration::from_millis(200))
        .run()
        .unwrap()
        .with_type::<Document>();
    let ns = db.name().to_string();
    env.client
        .database("admin")
        .run_command(
            doc! { "renameCollection": format!("{ns}.c"), "to": format!("{ns}.target"), "dropTarget": true },
        )
        .run()
        .unwrap();
    let ev = s.next().unwrap().unwrap();
    assert_eq!(ev.get_str("operationType").unwrap(), "rename");
    let desc = ev.get_document("operationDescription").unwrap();
    assert_eq!(desc.get_document("to").unwrap(), &doc! { "db": &ns, "coll": "target" });
    assert_eq!(desc.get("dropTarget"), Some(&target_uuid));
}

#[test]
fn expanded_events_report_views_created_and_dropped() {
    let env = start();
    let db = env.db("csviews");
    db.collection::<Document>("base").insert_one(doc! { "_id": 1 }).run().unwrap();
    let mut s = db
        .watch()
        .show_expanded_events(true)
        .max_await_time(Duration::from_millis(200))
        .run()
        .unwrap()
        .with_type::<Document>();
    let mut plain =
        db.watch().max_await_time(Duration::from_millis(200)).run().unwrap().with_type::<Document>();
    db.run_command(doc! { "create": "v", "viewOn": "base", "pipeline": [{ "$match": { "_id": 1 } }] })
        .run()
        .unwrap();
    db.collection::<Document>("v").drop().run().unwrap();
    db.collection::<Document>("base").insert_one(doc! { "_id": 2 }).run().unwrap();
    let created = s.next().unwrap().unwrap();
    assert_eq!(created.get_str("operationType").unwrap(), "create");
    assert_eq!(created.get_document("ns").unwrap().get_str("coll").unwrap(), "v");
    let desc = created.get_document("operationDescription").unwrap();
    assert_eq!(desc.get_str("viewOn").unwrap(), "base");
    assert_eq!(desc.get_array("pipeline").unwrap().len(), 1);
    let dropped = s.next().unwrap().unwrap();
    assert_eq!(dropped.get_str("operationType").unwrap(), "drop");
    assert_eq!(dropped.get_document("ns").unwrap().get_str("coll").unwrap(), "v");
    assert_eq!(s.next().unwrap().unwrap().get_str("operationType").unwrap(), "insert");
    // Without showExpandedEvents a view's definition is not a change to data.
    assert_eq!(plain.next().unwrap().unwrap().get_str("operationType").unwrap(), "insert");
}

/// Small batches never drop the events queued after a full batch: a dropped database's drop,
/// dropDatabase and invalidate events all arrive, invalidate last.
#[test]
fn small_batches_deliver_every_event_up_to_the_invalidate() {
    let env = start();
    let db = env.db("csbatch");
    for c in ["a", "b", "c"] {
        db.collection::<Document>(c).insert_one(doc! { "_id": 1 }).run().unwrap();
    }
    let s = db
        .watch()
        .batch_size(2)
        .max_await_time(Duration::from_millis(200))
        .run()
        .unwrap()
        .with_type::<Document>();
    db.drop().run().unwrap();
    let mut kinds = Vec::new();
    for ev in s {
        kinds.push(ev.unwrap().get_str("operationType").unwrap().to_string());
    }
    assert_eq!(kinds, vec!["drop", "drop", "drop", "dropDatabase", "invalidate"]);
}
