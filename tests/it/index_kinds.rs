//! Hashed and wildcard indexes: keys, the plans that use them (explain), what they refuse, and
//! that their plans return exactly what a collection scan returns.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Collection, Database};
use mongodb::IndexModel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn create(db: &Database, coll: &str, spec: Document) -> mongodb::error::Result<Document> {
    db.run_command(doc! { "createIndexes": coll, "indexes": [spec] }).run()
}

fn explain(db: &Database, coll: &str, filter: Document) -> Document {
    let r = db
        .run_command(doc! { "explain": { "find": coll, "filter": filter }, "verbosity": "executionStats" })
        .run()
        .expect("explain");
    assert_ok(&r);
    r
}

/// The winning plan's stages from the top, and the IXSCAN if there is one.
fn plan_shape(r: &Document) -> (Vec<String>, Option<Document>) {
    let mut stage = r.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    let mut names = Vec::new();
    loop {
        names.push(stage.get_str("stage").expect("stage").to_string());
        if names.last().map(String::as_str) == Some("IXSCAN") {
            return (names, Some(stage.clone()));
        }
        match stage.get_document("inputStage") {
            Ok(s) => stage = s,
            Err(_) => return (names, None),
        }
    }
}

fn sorted_ids(coll: &Collection<Document>, filter: Document, hint: Option<Document>) -> Vec<i32> {
    let mut f = coll.find(filter);
    if let Some(h) = hint {
        f = f.hint(mongodb::options::Hint::Keys(h));
    }
    let mut ids: Vec<i32> =
        f.run().expect("find").map(|d| d.expect("doc").get_i32("_id").expect("_id")).collect();
    ids.sort();
    ids
}

#[test]
fn hashed_index_answers_equality_and_in() {
    let env = start();
    let db = env.db("hashed");
    let coll = db.collection::<Document>("c");
    let docs = vec![
        doc! { "_id": 1, "a": 1 },
        doc! { "_id": 2, "a": 1.0 },
        doc! { "_id": 3, "a": Bson::Int64(1) },
        // Truncated to 1 before hashing: same key, left out by the FETCH filter.
        doc! { "_id": 4, "a": 1.5 },
        doc! { "_id": 5, "a": "x" },
        doc! { "_id": 6, "a": { "b": 1 } },
        doc! { "_id": 7 },
        doc! { "_id": 8, "a": 2 },
    ];
    coll.insert_many(docs).run().expect("insert");
    assert_ok(&create(&db, "c", doc! { "key": { "a": "hashed" }, "name": "a_hashed" }).expect("create"));
    let specs: Vec<Document> = coll
        .list_indexes()
        .run()
        .expect("list")
        .map(|i| {
            let i = i.expect("index");
            doc! { "key": i.keys, "name": i.options.and_then(|o| o.name).unwrap_or_default() }
        })
        .collect();
    assert!(specs.contains(&doc! { "key": { "a": "hashed" }, "name": "a_hashed" }), "{specs:?}");

    assert_eq!(sorted_ids(&coll, doc! { "a": 1 }, None), vec![1, 2, 3]);
    let r = explain(&db, "c", doc! { "a": 1 });
    let (stages, ixscan) = plan_shape(&r);
    assert_eq!(stages, ["FETCH", "IXSCAN"]);
    let ixscan = ixscan.expect("ixscan");
    assert_eq!(ixscan.get_document("keyPattern").expect("keyPattern"), &doc! { "a": "hashed" });
    let bounds = ixscan.get_document("indexBounds").and_then(|b| b.get_array("a")).expect("bounds");
    assert_eq!(bounds.len(), 1, "{ixscan}");
    let stats = r.get_document("executionStats").expect("stats");
    assert_eq!(num(stats, "nReturned"), 3);
    // The four values that truncate to 1 share one hash.
    assert_eq!(num(stats, "totalKeysExamined"), 4);
    let fetch = r.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    assert!(fetch.contains_key("filter"), "{fetch}");

    // $in: one point per distinct hash.
    assert_eq!(sorted_ids(&coll, doc! { "a": { "$in": [1, "x", { "b": 1 }] } }, None), vec![1, 2, 3, 5, 6]);
    let (stages, ixscan) = plan_shape(&explain(&db, "c", doc! { "a": { "$in": [1, "x", { "b": 1 }] } }));
    assert_eq!(stages, ["FETCH", "IXSCAN"]);
    let bounds = ixscan.expect("ixscan").get_document("indexBounds").and_then(|b| b.get_array("a")).cloned();
    assert_eq!(bounds.expect("bounds").len(), 3);

    // Hashes are not ordered like values: ranges scan the collection.
    assert_eq!(sorted_ids(&coll, doc! { "a": { "$gte": 1, "$lt": 2 } }, None), vec![1, 2, 3, 4]);
    let (stages, _) = plan_shape(&explain(&db, "c", doc! { "a": { "$gte": 1 } }));
    assert_eq!(stages, ["COLLSCAN"]);
}

#[test]
fn hashed_index_restrictions() {
    let env = start();
    let db = env.db("hashed");
    let coll = db.collection::<Document>("c");
    let msg = assert_command_error(
        create(&db, "c", doc! { "key": { "a": "hashed" }, "name": "u", "unique": true }),
        16764,
        "Location16764",
    );
    assert!(msg.contains("cannot guarantee uniqueness"), "{msg}");
    assert_command_error(
        create(&db, "c", doc! { "key": { "a": "hashed", "b": "hashed" }, "name": "two" }),
        31303,
        "Location31303",
    );
    // Compound with one hashed field is fine, and equality on both fields uses it.
    assert_ok(&create(&db, "c", doc! { "key": { "a": "hashed", "b": 1 }, "name": "ab" }).expect("compound"));
    coll.insert_many(vec![doc! { "_id": 1, "a": "k", "b": 1 }, doc! { "_id": 2, "a": "k", "b": 2 }])
        .run()
        .expect("insert");
    assert_eq!(sorted_ids(&coll, doc! { "a": "k", "b": { "$gte": 2 } }, None), vec![2]);
    let (stages, ixscan) = plan_shape(&explain(&db, "c", doc! { "a": "k", "b": { "$gte": 2 } }));
    assert_eq!(stages, ["FETCH", "IXSCAN"]);
    assert_eq!(ixscan.expect("ixscan").get_str("indexName").expect("name"), "ab");

    // Arrays are refused, on insert and when building over existing documents.
    let e = coll.insert_one(doc! { "_id": 3, "a": [1, 2] }).run().expect_err("array");
    assert_eq!(write_error_code(&e), 16766);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 2);
    let other = db.collection::<Document>("d");
    other.insert_one(doc! { "a": { "b": [1] } }).run().expect("insert");
    other.insert_one(doc! { "x": [1] }).run().expect("insert");
    let e = create(&db, "d", doc! { "key": { "x": "hashed" }, "name": "x" }).expect_err("array");
    assert_eq!(command_error(&e).0, 16766, "{e}");
    // An embedded document holding an array hashes as a whole.
    assert_ok(&create(&db, "d", doc! { "key": { "a": "hashed" }, "name": "a" }).expect("object value"));
}

#[test]
fn wildcard_index_answers_single_path_predicates() {
    let env = start();
    let db = env.db("wild");
    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![
        doc! { "_id": 1, "a": { "b": 5, "c": "x" }, "tags": ["red", "blue"] },
        doc! { "_id": 2, "a": { "b": 7 }, "tags": "red" },
        doc! { "_id": 3, "a": [{ "b": 5 }, { "b": 9 }] },
        doc! { "_id": 4, "a": 5, "z": 1 },
        doc! { "_id": 5, "e": {} },
        doc! { "_id": 6, "e": [{}, 1] },
    ])
    .run()
    .expect("insert");
    assert_ok(&create(&db, "c", doc! { "key": { "$**": 1 }, "name": "all" }).expect("create"));

    assert_eq!(sorted_ids(&coll, doc! { "a.b": 5 }, None), vec![1, 3]);
    let r = explain(&db, "c", doc! { "a.b": 5 });
    let (stages, ixscan) = plan_shape(&r);
    assert_eq!(stages, ["FETCH", "IXSCAN"]);
    let ixscan = ixscan.expect("ixscan");
    assert_eq!(ixscan.get_document("keyPattern").expect("keyPattern"), &doc! { "$_path": 1, "a.b": 1 });
    assert_eq!(ixscan.get_str("indexName").expect("name"), "all");
    assert_eq!(
        ixscan.get_document("indexBounds").expect("bounds"),
        &doc! { "$_path": ["[\"a.b\", \"a.b\"]"], "a.b": ["[5, 5]"] }
    );
    assert_eq!(num(r.get_document("executionStats").expect("stats"), "totalKeysExamined"), 2);

    assert_eq!(sorted_ids(&coll, doc! { "a.b": { "$gt": 5 } }, None), vec![2, 3]);
    assert_eq!(sorted_ids(&coll, doc! { "a.b": { "$in": [7, 9] } }, None), vec![2, 3]);
    assert_eq!(sorted_ids(&coll, doc! { "tags": "red" }, None), vec![1, 2]);
    assert_eq!(sorted_ids(&coll, doc! { "a": 5 }, None), vec![4]);
    // An empty document is a leaf value.
    assert_eq!(sorted_ids(&coll, doc! { "e": {} }, None), vec![5, 6]);
    for f in [doc! { "a.b": { "$gt": 5 } }, doc! { "tags": "red" }, doc! { "a": 5 }, doc! { "e": {} }] {
        assert_eq!(plan_shape(&explain(&db, "c", f.clone())).0, ["FETCH", "IXSCAN"], "{f}");
    }
    // Shapes a wildcard index cannot answer fall back to a collection scan.
    for f in [doc! { "a": { "b": 7 } }, doc! { "a.0.b": 5 }, doc! { "a.b": null }] {
        assert_eq!(plan_shape(&explain(&db, "c", f.clone())).0, ["COLLSCAN"], "{f}");
    }
    assert_eq!(sorted_ids(&coll, doc! { "a": { "b": 7 } }, None), vec![2]);
    assert_eq!(sorted_ids(&coll, doc! { "a.0.b": 5 }, None), vec![3]);
    // Hinting it without a usable predicate cannot be answered.
    assert_command_error(
        coll.find(doc! {}).hint(mongodb::options::Hint::Name("all".into())).run().map(|c| c.count()),
        291,
        "NoQueryExecutionPlans",
    );
}

#[test]
fn wildcard_projection_and_subtree() {
    let env = start();
    let db = env.db("wild");
    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![
        doc! { "_id": 1, "a": { "x": 1 }, "b": 1 },
        doc! { "_id": 2, "a": { "x": 2 }, "b": 2 },
    ])
    .run()
    .expect("insert");
    assert_ok(
        &create(&db, "c", doc! { "key": { "$**": 1 }, "name": "proj", "wildcardProjection": { "a": 1 } })
            .expect("create"),
    );
    let specs = db.run_command(doc! { "listIndexes": "c" }).run().expect("list");
    let batch = specs.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let proj = batch.iter().filter_map(|s| s.as_document()).find(|s| s.get_str("name") == Ok("proj"));
    assert_eq!(proj.and_then(|p| p.get_document("wildcardProjection").ok()), Some(&doc! { "a": 1 }));
    assert_eq!(plan_shape(&explain(&db, "c", doc! { "a.x": 2 })).0, ["FETCH", "IXSCAN"]);
    assert_eq!(plan_shape(&explain(&db, "c", doc! { "b": 2 })).0, ["COLLSCAN"]);
    assert_eq!(sorted_ids(&coll, doc! { "a.x": 2 }, None), vec![2]);
    // Without arrays at the path both range bounds are kept; once a document has an array
    // there, an element may satisfy each bound, so only one is.
    let bounds = |db: &Database| {
        let (_, ixscan) = plan_shape(&explain(db, "c", doc! { "a.x": { "$gt": 0, "$lt": 2 } }));
        ixscan.expect("ixscan").get_document("indexBounds").expect("bounds").get_array("a.x").cloned()
    };
    assert_eq!(bounds(&db), Ok(vec![Bson::String("(0, 2)".into())]));
    coll.insert_one(doc! { "_id": 9, "a": { "x": [-1, 5] }, "b": [1] }).run().expect("insert");
    assert_eq!(bounds(&db), Ok(vec![Bson::String("(0, inf.0]".into())]));
    assert_eq!(sorted_ids(&coll, doc! { "a.x": { "$gt": 0, "$lt": 2 } }, None), vec![1, 9]);
    coll.delete_one(doc! { "_id": 9 }).run().expect("delete");

    assert_ok(&create(&db, "c", doc! { "key": { "b.$**": 1 } }).expect("subtree"));
    let (stages, ixscan) = plan_shape(&explain(&db, "c", doc! { "b": 2 }));
    assert_eq!(stages, ["FETCH", "IXSCAN"]);
    assert_eq!(ixscan.expect("ixscan").get_str("indexName").expect("name"), "b.$**_1");
    assert_eq!(sorted_ids(&coll, doc! { "b": { "$lte": 2 } }, None), vec![1, 2]);

    // Writes keep the entries in step.
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "a.x": 3 } }).run().expect("update");
    assert_eq!(sorted_ids(&coll, doc! { "a.x": 3 }, None), vec![1]);
    assert_eq!(sorted_ids(&coll, doc! { "a.x": 1 }, None), Vec::<i32>::new());
}

#[test]
fn wildcard_index_restrictions() {
    let env = start();
    let db = env.db("wild");
    for (spec, what) in [
        (doc! { "key": { "$**": 1 }, "name": "u", "unique": true }, "unique"),
        (doc! { "key": { "$**": 1 }, "name": "s", "sparse": true }, "sparse"),
        (
            doc! { "key": { "a.$**": 1 }, "name": "p", "wildcardProjection": { "b": 1 } },
            "projection on a path",
        ),
        (
            doc! { "key": { "a": 1 }, "name": "p2", "wildcardProjection": { "b": 1 } },
            "projection without $**",
        ),
        (
            doc! { "key": { "$**": 1 }, "name": "m", "wildcardProjection": { "a": 1, "b": 0 } },
            "mixed projection",
        ),
        (doc! { "key": { "$**": 1, "a": 1 }, "name": "c" }, "compound"),
        (doc! { "key": { "$**": "hashed" }, "name": "h" }, "hashed"),
        (doc! { "key": { "$**": 1 }, "name": "t", "expireAfterSeconds": 10 }, "ttl"),
    ] {
        let e = create(&db, "c", spec).expect_err(what);
        assert_eq!(command_error(&e).0, 67, "{what}: {e}");
    }
}

/// Random documents and single-path filters: the hashed and wildcard plans return exactly what
/// the collection scan returns.
#[test]
fn special_index_plans_match_collection_scans() {
    let env = start();
    let db = env.db("equiv");
    let coll = db.collection::<Document>("c");
    let mut rng = StdRng::seed_from_u64(7);
    let value = |rng: &mut StdRng| -> Bson {
        match rng.gen_range(0..6) {
            0 => Bson::Int32(rng.gen_range(0..6)),
            1 => Bson::Double(rng.gen_range(0..12) as f64 / 2.0),
            2 => Bson::String(["a", "b", "c"][rng.gen_range(0..3)].into()),
            3 => Bson::Int64(rng.gen_range(0..6)),
            4 => Bson::Document(doc! { "n": rng.gen_range(0..3) }),
            _ => Bson::Null,
        }
    };
    let docs: Vec<Document> = (0..300)
        .map(|i| {
            let mut d = doc! { "_id": i, "h": value(&mut rng) };
            if rng.gen_bool(0.8) {
                d.insert("w", doc! { "v": value(&mut rng) });
            }
            d
        })
        .collect();
    coll.insert_many(docs).run().expect("insert");
    coll.create_index(IndexModel::builder().keys(doc! { "h": "hashed" }).build()).run().expect("hashed");
    coll.create_index(IndexModel::builder().keys(doc! { "$**": 1 }).build()).run().expect("wildcard");
    for _ in 0..60 {
        let field = if rng.gen_bool(0.5) { "h" } else { "w.v" };
        let scalar = |rng: &mut StdRng| match value(rng) {
            Bson::Document(_) | Bson::Null => Bson::Int32(1),
            v => v,
        };
        let pred = match rng.gen_range(0..4) {
            0 => scalar(&mut rng),
            1 => Bson::Document(doc! { "$in": [scalar(&mut rng), scalar(&mut rng)] }),
            2 => Bson::Document(doc! { "$gt": scalar(&mut rng) }),
            _ => Bson::Document(doc! { "$gte": scalar(&mut rng), "$lte": scalar(&mut rng) }),
        };
        let filter = doc! { field: pred };
        let scan = sorted_ids(&coll, filter.clone(), Some(doc! { "$natural": 1 }));
        assert_eq!(sorted_ids(&coll, filter.clone(), None), scan, "{filter}");
    }
}

/// Hashed, wildcard and collated indexes keep their kind, collation and entries across a
/// restart on the same dbpath.
#[test]
fn special_indexes_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = start_with(builder().dbpath(dir.path()));
    let db = env.client.database("restart");
    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![
        doc! { "_id": 1, "h": "k", "w": { "x": 1 }, "s": "Hello" },
        doc! { "_id": 2, "h": "j", "w": { "x": 2 }, "s": "HELLO" },
    ])
    .run()
    .expect("insert");
    for spec in [
        doc! { "key": { "h": "hashed" }, "name": "h" },
        doc! { "key": { "w.$**": 1 }, "name": "w" },
        doc! { "key": { "s": 1 }, "name": "s", "collation": { "locale": "en", "strength": 2 } },
    ] {
        assert_ok(&create(&db, "c", spec).expect("create"));
    }
    let Env { client, server } = env;
    drop(client);
    server.stop();
    let env = start_with(builder().dbpath(dir.path()));
    let db = env.client.database("restart");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 3, "h": "k", "w": { "x": 1 }, "s": "hello" }).run().expect("insert after");
    let cases = [
        (doc! { "find": "c", "filter": { "h": "k" } }, "h", vec![1, 3]),
        (doc! { "find": "c", "filter": { "w.x": 1 } }, "w", vec![1, 3]),
        (
            doc! { "find": "c", "filter": { "s": "hello" }, "collation": { "locale": "en", "strength": 2 } },
            "s",
            vec![1, 2, 3],
        ),
    ];
    for (find, index, expect) in cases {
        let r = db.run_command(find.clone()).run().expect("find");
        let mut got: Vec<i32> = r
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .expect("batch")
            .iter()
            .filter_map(|d| d.as_document().and_then(|d| d.get_i32("_id").ok()))
            .collect();
        got.sort();
        assert_eq!(got, expect, "{find}");
        let r = db.run_command(doc! { "explain": find.clone() }).run().expect("explain");
        let (stages, ixscan) = plan_shape(&r);
        assert_eq!(stages, ["FETCH", "IXSCAN"], "{find}");
        assert_eq!(
            ixscan.and_then(|i| i.get_str("indexName").ok().map(str::to_string)),
            Some(index.to_string())
        );
    }
}
