//! Data, indexes and record order survive a graceful stop and restart on the same dbpath.

use crate::common::{self, all, ids, write_error_code};
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::path::Path;

fn start_on(dir: &Path) -> common::Env {
    common::start_with(common::builder().dbpath(dir))
}

fn restart(env: common::Env, dir: &Path) -> common::Env {
    let common::Env { client, server } = env;
    drop(client);
    server.stop();
    start_on(dir)
}

fn index_summary(coll: &mongodb::sync::Collection<Document>) -> Vec<(String, Document, bool)> {
    let mut v: Vec<(String, Document, bool)> = coll
        .list_indexes()
        .run()
        .expect("list indexes")
        .map(|m| {
            let m = m.expect("index");
            let o = m.options.unwrap_or_default();
            (o.name.unwrap_or_default(), m.keys, o.unique.unwrap_or(false))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn documents_and_indexes_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = start_on(dir.path());
    let db_name = common::unique_name("persist");
    let coll = env.client.database(&db_name).collection::<Document>("c");
    let docs: Vec<Document> = (0..500i32)
        .map(|i| {
            doc! {
                "_id": i,
                "u": format!("user{i}"),
                "n": i64::from(i) * 1_000_000_007,
                "f": f64::from(i) / 3.0,
                "t": DateTime::from_millis(1_700_000_000_000 + i64::from(i)),
                "o": ObjectId::from_bytes([i as u8; 12]),
                "arr": [i, {"k": i % 4}],
                "nested": {"deep": {"x": i % 9}},
            }
        })
        .collect();
    coll.insert_many(docs.clone()).run().expect("seed");
    let unique = IndexOptions::builder().unique(true).build();
    coll.create_index(IndexModel::builder().keys(doc! {"u": 1}).options(unique).build())
        .run()
        .expect("unique index");
    coll.create_index(IndexModel::builder().keys(doc! {"nested.deep.x": 1, "n": -1}).build())
        .run()
        .expect("compound index");
    coll.update_many(doc! {"nested.deep.x": 3}, doc! {"$set": {"updated": true}}).run().expect("update");
    coll.delete_many(doc! {"_id": {"$gte": 490}}).run().expect("delete");
    let other = env.client.database(&db_name).collection::<Document>("other");
    other.insert_one(doc! {"_id": "only"}).run().expect("insert");
    let gone = env.client.database(&db_name).collection::<Document>("gone");
    gone.insert_one(doc! {"x": 1}).run().expect("insert");
    gone.drop().run().expect("drop");
    let before_docs = all(&coll);
    let before_idx = index_summary(&coll);
    assert_eq!(before_docs.len(), 490);
    assert_eq!(before_idx.len(), 3);

    let env = restart(env, dir.path());
    let db = env.client.database(&db_name);
    let coll = db.collection::<Document>("c");
    assert_eq!(all(&coll), before_docs, "every document, in the same order");
    assert_eq!(index_summary(&coll), before_idx, "every index");
    let mut names = db.list_collection_names().run().expect("list");
    names.sort();
    assert_eq!(names, vec!["c", "other"], "dropped collection stays dropped");
    assert!(env.client.list_database_names().run().expect("dbs").contains(&db_name));
    assert_eq!(coll.count_documents(doc! {"updated": true}).run().expect("count"), 55);
    // Values keep their BSON types.
    let d7 = coll.find_one(doc! {"_id": 7}).run().expect("find").expect("doc");
    assert_eq!(d7, docs[7]);
    assert!(matches!(d7.get("n"), Some(Bson::Int64(_))));

    // The unique index is still enforced and the compound index still answers queries.
    let err = coll.insert_one(doc! {"u": "user3"}).run().expect_err("duplicate u");
    assert_eq!(write_error_code(&err), 11000);
    let hinted: Vec<i32> = coll
        .find(doc! {"nested.deep.x": 4})
        .hint(mongodb::options::Hint::Name("nested.deep.x_1_n_-1".to_string()))
        .sort(doc! {"n": -1})
        .run()
        .expect("hinted find")
        .map(|d| d.expect("doc").get_i32("_id").expect("_id"))
        .collect();
    let expected: Vec<i32> = (0..490).rev().filter(|i| i % 9 == 4).collect();
    assert_eq!(hinted, expected, "hinted index scan");
    env.server.stop();
}

#[test]
fn record_order_is_kept_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = start_on(dir.path());
    let coll_of = |env: &common::Env| env.client.database("order_db").collection::<Document>("c");
    let first: Vec<Bson> = vec![
        Bson::Int32(50),
        Bson::Int32(3),
        Bson::String("z".into()),
        Bson::Int32(17),
        Bson::ObjectId(ObjectId::from_bytes([9; 12])),
        Bson::Double(-1.5),
        Bson::Int32(-40),
    ];
    for id in &first {
        coll_of(&env).insert_one(doc! {"_id": id.clone()}).run().expect("insert");
    }
    // Remove one in the middle: the others keep their places.
    coll_of(&env).delete_one(doc! {"_id": 17}).run().expect("delete");
    let mut expected: Vec<Bson> = first.into_iter().filter(|b| b != &Bson::Int32(17)).collect();
    assert_eq!(ids(&coll_of(&env)), expected);

    let env = restart(env, dir.path());
    assert_eq!(ids(&coll_of(&env)), expected, "after the first restart");
    let second = vec![Bson::Int32(1), Bson::Int32(0), Bson::String("a".into())];
    coll_of(&env).insert_many(second.iter().map(|id| doc! {"_id": id.clone()})).run().expect("more");
    expected.extend(second);
    assert_eq!(ids(&coll_of(&env)), expected, "new inserts come after old ones");

    let env = restart(env, dir.path());
    assert_eq!(ids(&coll_of(&env)), expected, "after the second restart");
    coll_of(&env).insert_one(doc! {"_id": 17}).run().expect("re-insert a deleted _id");
    expected.push(Bson::Int32(17));
    assert_eq!(ids(&coll_of(&env)), expected, "a re-inserted _id goes to the end");
    env.server.stop();
}
