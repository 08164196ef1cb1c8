//! `$planCacheStats`: the plan cache entries of a collection.

use crate::common::{self, assert_command_error};
use mongodb::bson::{doc, Document};
use mongodb::IndexModel;

#[test]
fn plan_cache_stats_lists_cached_winners() {
    let env = common::start();
    let c = env.coll("pcs");
    c.insert_many((0..300).map(|i| doc! { "_id": i, "a": i % 50, "b": i % 7 })).run().unwrap();
    for k in ["a", "b"] {
        c.create_index(IndexModel::builder().keys(doc! { k: 1 }).build()).run().unwrap();
    }
    let stats = || -> Vec<Document> {
        c.aggregate(vec![doc! { "$planCacheStats": {} }]).run().unwrap().map(|d| d.unwrap()).collect()
    };
    assert!(stats().is_empty());
    // Two candidate indexes: the trial's winner is cached for the shape.
    c.find(doc! { "a": 5, "b": 1 }).run().unwrap().for_each(drop);
    c.find(doc! { "a": { "$gt": 5 }, "b": 1 }).run().unwrap().for_each(drop);
    let entries = stats();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e.get_str("version"), Ok("1"));
        assert_eq!(e.get_str("queryHash").unwrap().len(), 8);
        // A first trial leaves an inactive entry (mongod's plan cache states).
        assert!(e.get_bool("isActive").is_ok(), "{e}");
        assert!(e.get_i64("works").is_ok_and(|w| w > 0), "{e}");
        let input = e.get_document("cachedPlan").unwrap().get_document("inputStage").unwrap();
        let name = input.get_str("indexName").unwrap();
        assert!(name == "a_1" || name == "b_1", "{name}");
        assert_eq!(
            input.get_document("keyPattern").unwrap().keys().next().map(|k| format!("{k}_1")).as_deref(),
            Some(name)
        );
    }
    assert_ne!(entries[0].get_str("queryHash"), entries[1].get_str("queryHash"));
    // Later stages see the entries as documents.
    let n: Vec<Document> = c
        .aggregate(vec![doc! { "$planCacheStats": {} }, doc! { "$count": "n" }])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(n, vec![doc! { "n": 2 }]);
    let db = env.client.database(c.namespace().db.as_str());
    db.run_command(doc! { "planCacheClear": c.name() }).run().unwrap();
    assert!(stats().is_empty());
    assert_command_error(
        c.aggregate(vec![doc! { "$match": {} }, doc! { "$planCacheStats": {} }]).run(),
        40602,
        "Location40602",
    );
    assert_command_error(c.aggregate(vec![doc! { "$planCacheStats": { "x": 1 } }]).run(), 9, "FailedToParse");
}
