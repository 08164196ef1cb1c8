//! Index plans must return exactly what a collection scan returns: random documents and
//! random equality / range / $in filters, with and without sorts, compared between an indexed
//! plan and a `$natural` (collection scan) plan.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::IndexModel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_value(rng: &mut StdRng) -> Bson {
    match rng.gen_range(0..10) {
        0 => Bson::Int32(rng.gen_range(-5..15)),
        1 => Bson::Int64(rng.gen_range(-5..15)),
        2 => Bson::Double(rng.gen_range(-5.0..15.0)),
        3 => Bson::String(["a", "b", "bb", "c", ""][rng.gen_range(0..5)].to_string()),
        4 => Bson::Null,
        5 => Bson::Array(vec![Bson::Int32(rng.gen_range(0..10)), Bson::Int32(rng.gen_range(0..10))]),
        6 => Bson::Boolean(rng.gen()),
        _ => Bson::Int32(rng.gen_range(0..10)),
    }
}

fn random_filter(rng: &mut StdRng) -> Document {
    let field = ["a", "b"][rng.gen_range(0..2)];
    let num = |rng: &mut StdRng| -> Bson {
        if rng.gen_bool(0.2) {
            Bson::String(["a", "b", "c"][rng.gen_range(0..3)].into())
        } else {
            Bson::Int32(rng.gen_range(-2..12))
        }
    };
    let mut f = Document::new();
    match rng.gen_range(0..6) {
        0 => {
            f.insert(field, num(rng));
        }
        1 => {
            f.insert(field, doc! { "$gt": num(rng) });
        }
        2 => {
            f.insert(field, doc! { "$gte": num(rng), "$lt": num(rng) });
        }
        3 => {
            f.insert(field, doc! { "$in": [num(rng), num(rng), num(rng)] });
        }
        4 => {
            f.insert("a", num(rng));
            f.insert("b", doc! { "$lte": num(rng) });
        }
        _ => {
            f.insert(field, doc! { "$lt": num(rng) });
        }
    }
    f
}

#[test]
fn index_plans_match_collection_scans() {
    let env = start();
    let c = env.coll("planner");
    let mut rng = StdRng::seed_from_u64(7);
    let docs: Vec<Document> = (0..600)
        .map(|i| {
            let mut d = doc! { "_id": i };
            if rng.gen_bool(0.9) {
                d.insert("a", random_value(&mut rng));
            }
            if rng.gen_bool(0.9) {
                // Only `a` holds arrays: a compound index cannot index two array fields.
                let mut b = random_value(&mut rng);
                while matches!(b, Bson::Array(_)) {
                    b = random_value(&mut rng);
                }
                d.insert("b", b);
            }
            d
        })
        .collect();
    c.insert_many(docs).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "b": -1 }).build()).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": 1 }).build()).run().unwrap();
    let ids = |f: &Document, sort: Option<Document>, hint: Option<Document>| -> Vec<Bson> {
        let mut q = c.find(f.clone());
        if let Some(s) = sort {
            q = q.sort(s);
        }
        if let Some(h) = hint {
            q = q.hint(mongodb::options::Hint::Keys(h));
        }
        q.run().unwrap().map(|d| d.unwrap().get("_id").unwrap().clone()).collect()
    };
    for round in 0..150 {
        let f = random_filter(&mut rng);
        let mut scan = ids(&f, None, Some(doc! { "$natural": 1 }));
        let mut planned = ids(&f, None, None);
        scan.sort_by_key(|b| b.as_i32());
        planned.sort_by_key(|b| b.as_i32());
        assert_eq!(planned, scan, "round {round}: filter {f}");
        for hint in [doc! { "a": 1 }, doc! { "b": -1 }, doc! { "a": 1, "b": 1 }] {
            let mut hinted = ids(&f, None, Some(hint.clone()));
            hinted.sort_by_key(|b| b.as_i32());
            assert_eq!(hinted, scan, "round {round}: filter {f} hint {hint}");
        }
        // Sorted results: same order as sorting the scan (ties broken by _id).
        for sort in [doc! { "a": 1, "_id": 1 }, doc! { "b": -1, "_id": 1 }] {
            let by_scan = {
                let mut q = c
                    .find(f.clone())
                    .sort(sort.clone())
                    .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }));
                q = q.batch_size(50);
                q.run().unwrap().map(|d| d.unwrap().get("_id").unwrap().clone()).collect::<Vec<_>>()
            };
            assert_eq!(ids(&f, Some(sort.clone()), None), by_scan, "round {round}: filter {f} sort {sort}");
        }
    }
}

#[test]
fn sort_served_by_an_index_streams_in_order() {
    let env = start();
    let c = env.coll("sortidx");
    c.insert_many((0..500).map(|i| doc! { "_id": i, "k": (i * 7919) % 500 })).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "k": 1 }).build()).run().unwrap();
    let got: Vec<i32> = c
        .find(doc! {})
        .sort(doc! { "k": -1 })
        .limit(5)
        .run()
        .unwrap()
        .map(|d| d.unwrap().get_i32("k").unwrap())
        .collect();
    assert_eq!(got, vec![499, 498, 497, 496, 495]);
    let got: Vec<i32> = c
        .find(doc! { "k": { "$gte": 10, "$lt": 15 } })
        .sort(doc! { "k": 1 })
        .run()
        .unwrap()
        .map(|d| d.unwrap().get_i32("k").unwrap())
        .collect();
    assert_eq!(got, vec![10, 11, 12, 13, 14]);
}

fn explain(db: &mongodb::sync::Database, cmd: Document) -> Document {
    db.run_command(doc! { "explain": cmd, "verbosity": "executionStats" }).run().unwrap()
}

fn stages(plan: &Document) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Some(plan.clone());
    while let Some(s) = cur {
        out.push(s.get_str("stage").unwrap().to_string());
        cur = s.get_document("inputStage").ok().cloned();
    }
    out
}

#[test]
fn explain_shows_index_scans_that_examine_only_what_they_return() {
    let env = start();
    let db = env.db("explain");
    let c = db.collection::<Document>("c");
    c.insert_many((0..2000).map(|i| doc! { "_id": i, "k": i % 100, "s": format!("v{i}") })).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "k": 1 }).build()).run().unwrap();

    let e = explain(&db, doc! { "find": "c", "filter": { "k": 7 } });
    let plan = path(&e, "queryPlanner.winningPlan").as_document().unwrap().clone();
    assert_eq!(stages(&plan), vec!["FETCH", "IXSCAN"]);
    assert_eq!(path(&plan, "inputStage.indexName"), &Bson::String("k_1".into()));
    assert_eq!(path(&plan, "inputStage.indexBounds.k"), &Bson::Array(vec![Bson::String("[7, 7]".into())]));
    let stats = e.get_document("executionStats").unwrap();
    assert_eq!(stats.get_i64("nReturned").unwrap(), 20);
    assert_eq!(stats.get_i64("totalKeysExamined").unwrap(), 20);
    assert_eq!(stats.get_i64("totalDocsExamined").unwrap(), 20);

    let e = explain(&db, doc! { "find": "c", "filter": { "k": { "$gte": 10, "$lt": 13 } } });
    let stats = e.get_document("executionStats").unwrap();
    assert_eq!(stats.get_i64("nReturned").unwrap(), 60);
    assert_eq!(stats.get_i64("totalKeysExamined").unwrap(), 60);
    assert_eq!(
        path(&e, "queryPlanner.winningPlan.inputStage.indexBounds.k"),
        &Bson::Array(vec![Bson::String("[10, 13)".into())])
    );

    let e = explain(&db, doc! { "find": "c", "filter": { "s": "v5" } });
    assert_eq!(stages(path(&e, "queryPlanner.winningPlan").as_document().unwrap()), vec!["COLLSCAN"]);
    assert_eq!(path(&e, "executionStats.totalDocsExamined"), &Bson::Int64(2000));

    // A sort the index delivers needs no SORT stage; one it does not, does.
    let e = explain(&db, doc! { "find": "c", "filter": {}, "sort": { "k": -1 }, "limit": 3 });
    let s = stages(path(&e, "queryPlanner.winningPlan").as_document().unwrap());
    assert_eq!(s, vec!["LIMIT", "FETCH", "IXSCAN"]);
    let e = explain(&db, doc! { "find": "c", "filter": {}, "sort": { "s": 1 } });
    assert_eq!(stages(path(&e, "queryPlanner.winningPlan").as_document().unwrap())[0], "SORT");

    let e = db.run_command(doc! { "explain": { "count": "c", "query": { "k": 3 } } }).run().unwrap();
    assert_eq!(path(&e, "executionStats.nReturned"), &Bson::Int64(20));
    assert_command_error(
        db.run_command(doc! { "explain": { "find": "c" }, "verbosity": "loud" }).run(),
        2,
        "BadValue",
    );
}

/// returnKey hands out the index key a document was found by ({} without an index);
/// showRecordId adds `$recordId`.
#[test]
fn return_key_and_show_record_id() {
    let env = crate::common::start();
    let db = env.db("retkey");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((1..=3).map(|i| mongodb::bson::doc! { "_id": i, "a": i * 10, "b": "x" })).run().unwrap();
    c.create_index(mongodb::IndexModel::builder().keys(mongodb::bson::doc! { "a": 1 }).build())
        .run()
        .unwrap();
    let batch = |cmd: mongodb::bson::Document| first_batch_of(&db, cmd);
    let keys =
        batch(mongodb::bson::doc! { "find": "c", "filter": { "a": { "$gte": 20 } }, "returnKey": true });
    assert_eq!(keys, vec![mongodb::bson::doc! { "a": 20 }, mongodb::bson::doc! { "a": 30 }]);
    let none =
        batch(mongodb::bson::doc! { "find": "c", "filter": { "b": "x" }, "returnKey": true, "limit": 1 });
    assert_eq!(none, vec![mongodb::bson::doc! {}]);
    let with_ids = batch(mongodb::bson::doc! { "find": "c", "filter": { "_id": 2 }, "showRecordId": true });
    assert_eq!(with_ids.len(), 1);
    assert!(matches!(with_ids[0].get("$recordId"), Some(mongodb::bson::Bson::Int64(_))));
    assert_eq!(with_ids[0].get_i32("a").unwrap(), 20);
}

/// min (inclusive) and max (exclusive) bound the hinted index's keys; both need a hint.
#[test]
fn min_and_max_bound_the_hinted_index() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("minmax");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((0..10).map(|i| doc! { "_id": i, "a": i % 5, "b": i })).run().unwrap();
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1, "b": -1 }).build()).run().unwrap();
    let ids = |cmd: mongodb::bson::Document| -> Vec<i32> {
        first_batch_of(&db, cmd).iter().map(|d| d.get_i32("_id").unwrap()).collect()
    };
    // Keys in index order: (a asc, b desc). From (1, 6) inclusive to (3, 8) exclusive.
    let got = ids(
        doc! { "find": "c", "min": { "a": 1, "b": 6 }, "max": { "a": 3, "b": 8 }, "hint": { "a": 1, "b": -1 } },
    );
    assert_eq!(got, vec![6, 1, 7, 2]);
    let got = ids(
        doc! { "find": "c", "filter": { "b": { "$gt": 5 } }, "min": { "a": 4, "b": 100 }, "hint": "a_1_b_-1" },
    );
    assert_eq!(got, vec![9]);
    // The filter still applies inside the bounds, even where the index alone could answer it.
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "b": 1 }).build()).run().unwrap();
    let got =
        ids(doc! { "find": "c", "filter": { "b": { "$gt": 7 } }, "min": { "b": 2 }, "hint": { "b": 1 } });
    assert_eq!(got, vec![8, 9]);
    let err = db.run_command(doc! { "find": "c", "min": { "a": 1, "b": 1 } }).run().unwrap_err();
    assert_eq!(crate::common::command_error(&err).1, "BadValue");
    let err = db
        .run_command(doc! { "find": "c", "min": { "b": 1 }, "hint": { "a": 1, "b": -1 } })
        .run()
        .unwrap_err();
    assert_eq!(crate::common::command_error(&err).1, "BadValue");
}

/// Index scans that skip re-checking the filter return exactly what a collection scan returns,
/// across types, missing fields and after the index becomes multikey.
#[test]
fn index_scans_return_what_a_collection_scan_returns() {
    use mongodb::bson::{doc, Bson};
    let env = crate::common::start();
    let db = env.db("exact");
    let c = db.collection::<mongodb::bson::Document>("c");
    let values: Vec<Bson> = vec![
        Bson::Int32(5),
        Bson::Double(5.5),
        Bson::Int64(7),
        Bson::String("6".into()),
        Bson::Null,
        Bson::Boolean(true),
        Bson::Double(-0.0),
        Bson::DateTime(mongodb::bson::DateTime::from_millis(6)),
    ];
    let mut docs: Vec<_> =
        values.iter().enumerate().map(|(i, v)| doc! { "_id": i as i32, "a": v.clone() }).collect();
    docs.push(doc! { "_id": 100 });
    c.insert_many(docs).run().unwrap();
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let filters = [
        doc! { "a": { "$gt": 4, "$lt": 7 } },
        doc! { "a": { "$gte": 0 } },
        doc! { "a": 0 },
        doc! { "a": { "$in": [5, 7, true] } },
        doc! { "a": { "$lte": mongodb::bson::DateTime::from_millis(10) } },
    ];
    let ids = |f: &mongodb::bson::Document, hint: mongodb::bson::Document| -> Vec<i32> {
        let mut v: Vec<i32> = c
            .find(f.clone())
            .hint(mongodb::options::Hint::Keys(hint))
            .run()
            .unwrap()
            .map(|d| d.unwrap().get_i32("_id").unwrap())
            .collect();
        v.sort();
        v
    };
    for round in 0..2 {
        for f in &filters {
            assert_eq!(ids(f, doc! { "a": 1 }), ids(f, doc! { "$natural": 1 }), "{f} (round {round})");
        }
        // An array makes the index multikey: a range may then match through different elements.
        if round == 0 {
            c.insert_one(doc! { "_id": 200, "a": [0, 9] }).run().unwrap();
        }
    }
    assert_eq!(ids(&doc! { "a": { "$gt": 4, "$lt": 7 } }, doc! { "a": 1 }), vec![0, 1, 200]);
}

/// A `$or` whose clauses each have an index is a union of index scans (each document once),
/// with the results of a collection scan.
#[test]
fn or_of_indexed_clauses_is_a_union_of_index_scans() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("orunion");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((0..1000).map(|i| doc! { "_id": i, "a": i % 100, "b": i % 7, "c": i })).run().unwrap();
    for k in ["a", "b"] {
        c.create_index(mongodb::IndexModel::builder().keys(doc! { k: 1 }).build()).run().unwrap();
    }
    let filter = doc! { "$or": [{ "a": 3 }, { "b": { "$in": [2, 9] }, "c": { "$lt": 100 } }, { "a": 3, "b": 3 }, { "_id": 999 }] };
    let ids = |hint: Option<mongodb::bson::Document>| -> Vec<i32> {
        let mut f = c.find(filter.clone());
        if let Some(h) = hint {
            f = f.hint(mongodb::options::Hint::Keys(h));
        }
        let mut v: Vec<i32> = f.run().unwrap().map(|d| d.unwrap().get_i32("_id").unwrap()).collect();
        v.sort();
        v
    };
    let union = ids(None);
    assert_eq!(union, ids(Some(doc! { "$natural": 1 })));
    assert_eq!(union.len(), 10 + 14 + 1, "a=3: 10; b=2 and c<100: 14; _id 999: 1");
    let e = db
        .run_command(
            doc! { "explain": { "find": "c", "filter": filter.clone() }, "verbosity": "executionStats" },
        )
        .run()
        .unwrap();
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    let or = plan.get_document("inputStage").unwrap();
    assert_eq!(or.get_str("stage").unwrap(), "OR");
    let stages: Vec<&str> = or
        .get_array("inputStages")
        .unwrap()
        .iter()
        .map(|s| s.as_document().unwrap().get_str("stage").unwrap())
        .collect();
    assert_eq!(stages.len(), 4);
    let docs_examined = e.get_document("executionStats").unwrap().get("totalDocsExamined").unwrap().clone();
    let n = match docs_examined {
        mongodb::bson::Bson::Int32(n) => n as i64,
        mongodb::bson::Bson::Int64(n) => n,
        other => panic!("{other:?}"),
    };
    assert!(n < 400, "a union reads only the clauses' documents, not all 1000: {n}");
}

/// The first batch of a cursor command's reply.
fn first_batch_of(
    db: &mongodb::sync::Database,
    cmd: mongodb::bson::Document,
) -> Vec<mongodb::bson::Document> {
    let r = db.run_command(cmd).run().unwrap();
    let batch = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().clone()).collect()
}

/// A partial index serves queries that imply its filter, and only those.
#[test]
fn partial_indexes_serve_queries_that_imply_their_filter() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("partialplan");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((0..50).map(|i| doc! { "_id": i, "x": i % 10, "a": (i % 4) as f64 })).run().unwrap();
    let opts = mongodb::options::IndexOptions::builder()
        .partial_filter_expression(doc! { "a": { "$lte": 1.5 } })
        .build();
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "x": 1 }).options(opts).build()).run().unwrap();
    let stage = |filter: mongodb::bson::Document| -> mongodb::bson::Document {
        let e = explain(&db, doc! { "find": "c", "filter": filter });
        e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap().clone()
    };
    let used = stage(doc! { "x": 6, "a": 1 });
    let ix = used.get_document("inputStage").unwrap();
    assert_eq!(ix.get_str("indexName").unwrap(), "x_1");
    assert!(ix.get_bool("isPartial").unwrap());
    assert_eq!(stage(doc! { "x": 6, "a": 2 }).get_str("stage").unwrap(), "COLLSCAN");
    assert_eq!(stage(doc! { "x": 6 }).get_str("stage").unwrap(), "COLLSCAN");
    for f in [doc! { "x": 6, "a": 1 }, doc! { "x": { "$gt": 2 }, "a": { "$lt": 1 } }] {
        let mut got: Vec<i32> =
            c.find(f.clone()).run().unwrap().map(|d| d.unwrap().get_i32("_id").unwrap()).collect();
        let mut want: Vec<i32> = c
            .find(f.clone())
            .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
            .run()
            .unwrap()
            .map(|d| d.unwrap().get_i32("_id").unwrap())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{f}");
    }
}

/// The index key find's `returnKey` shows: which index answered the query.
fn key_used(c: &mongodb::sync::Collection<Document>, filter: Document) -> Document {
    let keys: Vec<Document> =
        c.find(filter.clone()).return_key(true).run().unwrap().map(|d| d.unwrap()).collect();
    // Whatever the plan, the documents are a collection scan's.
    let ids = |hint: Option<Document>| -> Vec<Bson> {
        let mut q = c.find(filter.clone());
        if let Some(h) = hint {
            q = q.hint(mongodb::options::Hint::Keys(h));
        }
        let mut v: Vec<Bson> = q.run().unwrap().map(|d| d.unwrap().get("_id").unwrap().clone()).collect();
        v.sort_by_key(|b| b.as_i32());
        v
    };
    assert_eq!(ids(None), ids(Some(doc! { "$natural": 1 })), "filter {filter}");
    assert_eq!(keys.len(), 1, "filter {filter}: {keys:?}");
    keys.into_iter().next().unwrap()
}

/// `b` has two values, `a` is nearly unique, except 300 documents sharing `a: -1` and five
/// sharing `a: -2`, each with its own `b`.
fn two_equality_indexes(env: &Env, name: &str) -> mongodb::sync::Collection<Document> {
    let c = env.coll(name);
    let docs = (0..1000)
        .map(|i| doc! { "_id": i, "a": i, "b": i % 2 })
        .chain((1000..1300).map(|i| doc! { "_id": i, "a": -1, "b": 10_000 + i }))
        .chain((1300..1305).map(|i| doc! { "_id": i, "a": -2, "b": 20_000 + i }));
    c.insert_many(docs).run().unwrap();
    // Created first, `b_1` is what the static score alone picks on a tie.
    c.create_index(IndexModel::builder().keys(doc! { "b": 1 }).build()).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    c
}

#[test]
fn trial_run_picks_the_selective_index() {
    let env = start();
    let c = two_equality_indexes(&env, "trial");
    let db = env.client.database(c.namespace().db.as_str());
    assert_eq!(key_used(&c, doc! { "a": 5, "b": 1 }), doc! { "a": 5 });
    let e = db
        .run_command(doc! { "explain": { "find": c.name(), "filter": { "a": 5, "b": 1 } }, "verbosity": "allPlansExecution" })
        .run()
        .unwrap();
    let winning = path(&e, "queryPlanner.winningPlan.inputStage").as_document().unwrap();
    assert_eq!(winning.get_str("indexName").unwrap(), "a_1");
    let rejected = path(&e, "queryPlanner.rejectedPlans").as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(path(rejected[0].as_document().unwrap(), "inputStage.indexName").as_str(), Some("b_1"));
    let all = path(&e, "executionStats.allPlansExecution").as_array().unwrap();
    assert_eq!(all.len(), 2);
    let trial_of = |index: &str| {
        all.iter()
            .map(|t| t.as_document().unwrap())
            .find(|t| path(t, "executionStages.inputStage.indexName").as_str() == Some(index))
            .unwrap()
            .clone()
    };
    let (a, b) = (trial_of("a_1"), trial_of("b_1"));
    assert_eq!(num(&a, "nReturned"), 1);
    assert_eq!(num(&a, "totalKeysExamined"), 1);
    assert_eq!(num(&a, "totalDocsExamined"), 1);
    assert!(num(&b, "totalKeysExamined") > num(&a, "totalKeysExamined"));
    assert_eq!(as_i64(path(&e, "executionStats.totalKeysExamined")), 1);
    // The other way round, `b` wins (once the cached choice for the shape is gone).
    assert_ok(&db.run_command(doc! { "planCacheClear": c.name() }).run().unwrap());
    assert_eq!(key_used(&c, doc! { "a": -1, "b": 11_100 }), doc! { "b": 11_100 });
    // A plan that must sort returns nothing until its scan ends: the index delivering the
    // sort wins the trial although the other one has the better static score.
    let sorted = doc! { "find": c.name(), "filter": { "a": { "$gte": 0 }, "b": 1 }, "sort": { "a": 1 } };
    let e = db.run_command(doc! { "explain": sorted.clone(), "verbosity": "queryPlanner" }).run().unwrap();
    assert_eq!(path(&e, "queryPlanner.winningPlan.stage").as_str(), Some("FETCH"));
    assert_eq!(path(&e, "queryPlanner.winningPlan.inputStage.indexName").as_str(), Some("a_1"));
    let rejected = path(&e, "queryPlanner.rejectedPlans").as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    let rejected = rejected[0].as_document().unwrap();
    assert_eq!(rejected.get_str("stage").unwrap(), "SORT");
    assert_eq!(path(rejected, "inputStage.inputStage.indexName").as_str(), Some("b_1"));
    let run = |hint: Option<Document>| -> Vec<Bson> {
        let mut q = c.find(doc! { "a": { "$gte": 0 }, "b": 1 }).sort(doc! { "a": 1 });
        if let Some(h) = hint {
            q = q.hint(mongodb::options::Hint::Keys(h));
        }
        q.run().unwrap().map(|d| d.unwrap().get("_id").unwrap().clone()).collect()
    };
    let planned = run(None);
    assert_eq!(planned.len(), 500);
    assert_eq!(planned, run(Some(doc! { "$natural": 1 })));
    // executionStats verbosity has no allPlansExecution; a single candidate has no rejects.
    let e = db
        .run_command(
            doc! { "explain": { "find": c.name(), "filter": { "a": 5 } }, "verbosity": "executionStats" },
        )
        .run()
        .unwrap();
    assert!(path(&e, "queryPlanner.rejectedPlans").as_array().unwrap().is_empty());
    assert!(path(&e, "executionStats").as_document().unwrap().get("allPlansExecution").is_none());
}

#[test]
fn plan_cache_is_used_and_cleared() {
    let env = start();
    let c = two_equality_indexes(&env, "plancache");
    let db = env.client.database(c.namespace().db.as_str());
    let clear = |extra: Document| {
        let mut cmd = doc! { "planCacheClear": c.name() };
        cmd.extend(extra);
        assert_ok(&db.run_command(cmd).run().unwrap());
    };
    let (sel_a, sel_b) = (doc! { "a": 5, "b": 1 }, doc! { "a": -1, "b": 11_100 });
    // `a_1` answers sel_c in 10 works, `b_1` in 2: a trial picks `b_1`, a cached `a_1` stays.
    let sel_c = doc! { "a": -2, "b": 21_302 };
    // key_used runs its shape twice: the first trial leaves an inactive entry, the second
    // (no more works) makes it active.
    assert_eq!(key_used(&c, sel_a.clone()), doc! { "a": 5 });
    // The active `a_1` finishes sel_c within ten times its works: it is used as cached
    // although a trial (explain never uses the cache) picks `b_1`.
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "a": -2 });
    let e = db.run_command(doc! { "explain": { "find": c.name(), "filter": sel_c.clone() } }).run().unwrap();
    assert_eq!(path(&e, "queryPlanner.winningPlan.inputStage.indexName").as_str(), Some("b_1"));
    // For sel_b it would examine 600: past its budget the shape is replanned (to `b_1`) ...
    assert_eq!(key_used(&c, sel_b.clone()), doc! { "b": 11_100 });
    // ... and the same for `b_1` on sel_a.
    assert_eq!(key_used(&c, sel_a.clone()), doc! { "a": 5 });
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "a": -2 });
    // Another shape is planned on its own.
    assert_eq!(key_used(&c, doc! { "a": { "$in": [-2] }, "b": 21_302 }), doc! { "b": 21_302 });
    // Clearing another shape keeps this one; clearing this shape (any values) drops it.
    clear(doc! { "query": { "a": { "$gt": 1 } } });
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "a": -2 });
    clear(doc! { "query": { "a": 0, "b": 0 } });
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "b": 21_302 });
    // planCacheClear empties it all.
    assert_eq!(key_used(&c, sel_a.clone()), doc! { "a": 5 });
    clear(doc! {});
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "b": 21_302 });
    // Creating an index invalidates the cache ...
    assert_eq!(key_used(&c, sel_a.clone()), doc! { "a": 5 });
    c.create_index(IndexModel::builder().keys(doc! { "c": 1 }).build()).run().unwrap();
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "b": 21_302 });
    // ... and so does dropping one.
    assert_eq!(key_used(&c, sel_a.clone()), doc! { "a": 5 });
    c.drop_index("c_1").run().unwrap();
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "b": 21_302 });
    // count and distinct choose the same way and agree with a collection scan.
    for f in [sel_a.clone(), sel_b.clone(), doc! { "a": { "$gte": 900 }, "b": 0 }] {
        let n = c.count_documents(f.clone()).run().unwrap();
        let scanned = c
            .find(f.clone())
            .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
            .run()
            .unwrap()
            .count();
        assert_eq!(n as usize, scanned, "filter {f}");
        let d = db.run_command(doc! { "count": c.name(), "query": f.clone() }).run().unwrap();
        assert_eq!(num(&d, "n") as usize, scanned, "filter {f}");
        let mut values = c.distinct("_id", f.clone()).run().unwrap();
        values.sort_by_key(|b| b.as_i32());
        let mut ids: Vec<Bson> = c
            .find(f.clone())
            .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
            .run()
            .unwrap()
            .map(|d| d.unwrap().get("_id").unwrap().clone())
            .collect();
        ids.sort_by_key(|b| b.as_i32());
        assert_eq!(values, ids, "filter {f}");
    }
    // A missing collection has nothing to clear.
    assert_ok(&db.run_command(doc! { "planCacheClear": "nosuch" }).run().unwrap());
    assert_command_error(
        db.run_command(doc! { "planCacheClear": c.name(), "sort": { "a": 1 } }).run(),
        2,
        "BadValue",
    );
}

/// A sorted `$or` whose clauses' indexes each deliver the sort merges the scans in order
/// (SORT_MERGE) instead of sorting: same documents, same order as a collection scan + sort.
#[test]
fn sorted_or_merges_index_scans() {
    let env = crate::common::start();
    let db = env.db("sortmerge");
    let c = db.collection::<Document>("c");
    c.insert_many(
        (0..600).map(|i| doc! { "_id": i, "a": i % 10, "b": i % 13, "s": (i * 37) % 101, "t": i % 3 }),
    )
    .run()
    .unwrap();
    for k in [doc! { "a": 1, "s": -1 }, doc! { "b": 1, "s": -1 }] {
        c.create_index(IndexModel::builder().keys(k).build()).run().unwrap();
    }
    let filter = doc! { "$or": [{ "a": 4 }, { "b": 5, "t": { "$ne": 1 } }, { "a": 4, "b": 2 }] };
    let run = |hint: Option<Document>, limit: Option<i64>| -> Vec<(i32, i32)> {
        let mut f = c.find(filter.clone()).sort(doc! { "s": 1, "_id": 1 });
        if let Some(h) = hint {
            f = f.hint(mongodb::options::Hint::Keys(h));
        }
        if let Some(l) = limit {
            f = f.limit(l);
        }
        f.run()
            .unwrap()
            .map(|d| d.unwrap())
            .map(|d| (d.get_i32("s").unwrap(), d.get_i32("_id").unwrap()))
            .collect()
    };
    let merged = run(None, None);
    assert_eq!(merged, run(Some(doc! { "$natural": 1 }), None));
    assert!(merged.len() > 60, "{}", merged.len());
    assert_eq!(run(None, Some(7)), merged[..7].to_vec());

    // Only {s: 1} alone can come from the indexes (read backwards); `_id` breaks ties then.
    let e = explain(&db, doc! { "find": "c", "filter": filter.clone(), "sort": { "s": 1 } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["FETCH", "SORT_MERGE"], "{plan}");
    let merge = plan.get_document("inputStage").unwrap();
    assert_eq!(merge.get_document("sortPattern").unwrap(), &doc! { "s": 1 });
    let inputs = merge.get_array("inputStages").unwrap();
    assert_eq!(inputs.len(), 3);
    for i in inputs {
        let i = i.as_document().unwrap();
        assert_eq!(i.get_str("stage").unwrap(), "IXSCAN", "{i}");
        assert_eq!(i.get_str("direction").unwrap(), "backward", "{i}");
    }
    let sorted = c.find(filter.clone()).sort(doc! { "s": 1 }).run().unwrap();
    let mut last = i32::MIN;
    let mut n = 0;
    for d in sorted {
        let s = d.unwrap().get_i32("s").unwrap();
        assert!(s >= last, "{s} after {last}");
        last = s;
        n += 1;
    }
    assert_eq!(n, merged.len());
}

/// update, delete, findAndModify and aggregate's leading `$match` choose by trial run too,
/// sharing the plan cache with find; their explain lists the rejected plans.
#[test]
fn writes_and_aggregations_choose_by_trial_and_fill_the_plan_cache() {
    let env = start();
    let c = two_equality_indexes(&env, "trialwrites");
    let db = env.client.database(c.namespace().db.as_str());
    let (sel_a, sel_c) = (doc! { "a": 5, "b": 1 }, doc! { "a": -2, "b": 21_302 });
    let clear = || assert_ok(&db.run_command(doc! { "planCacheClear": c.name() }).run().unwrap());
    // Without a cached entry a find of sel_c's shape picks `b_1`; two statements of the shape
    // whose trials pick `a_1` leave an active `a_1` entry, which the find then uses.
    clear();
    assert_eq!(key_used(&c, sel_c.clone()), doc! { "b": 21_302 });
    let statements: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            let r = c.update_many(sel_a.clone(), doc! { "$inc": { "x": 1 } }).run().unwrap();
            assert_eq!(r.modified_count, 1);
        }),
        Box::new(|| {
            let r = c.delete_many(doc! { "a": 5, "b": 0 }).run().unwrap();
            assert_eq!(r.deleted_count, 0);
        }),
        Box::new(|| {
            let r = c.find_one_and_update(sel_a.clone(), doc! { "$inc": { "y": 1 } }).run().unwrap();
            assert_eq!(r.unwrap().get_i32("a").unwrap(), 5);
        }),
        Box::new(|| {
            let r = c.find_one_and_delete(doc! { "a": 6, "b": 1 }).run().unwrap();
            assert!(r.is_none());
        }),
        Box::new(|| {
            let n = c.aggregate(vec![doc! { "$match": sel_a.clone() }]).run().unwrap().count();
            assert_eq!(n, 1);
        }),
    ];
    for (i, run) in statements.iter().enumerate() {
        clear();
        run();
        run();
        assert_eq!(key_used(&c, sel_c.clone()), doc! { "a": -2 }, "statement {i}");
    }
    assert_eq!(
        c.find_one(doc! { "_id": 5 }).run().unwrap().unwrap(),
        doc! { "_id": 5, "a": 5, "b": 1, "x": 2, "y": 2 }
    );

    for cmd in [
        doc! { "update": c.name(), "updates": [{ "q": sel_a.clone(), "u": { "$set": { "z": 1 } } }] },
        doc! { "delete": c.name(), "deletes": [{ "q": sel_a.clone(), "limit": 0 }] },
        doc! { "findAndModify": c.name(), "query": sel_a.clone(), "remove": true },
    ] {
        let e = db.run_command(doc! { "explain": cmd.clone(), "verbosity": "queryPlanner" }).run().unwrap();
        let winning = path(&e, "queryPlanner.winningPlan").as_document().unwrap();
        assert_eq!(stages(winning).last().map(String::as_str), Some("IXSCAN"), "{cmd}");
        let rejected = path(&e, "queryPlanner.rejectedPlans").as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{cmd}");
    }
    // explain applied nothing.
    assert_eq!(c.count_documents(doc! { "a": 5 }).run().unwrap(), 1);
}

/// A multi-update through an index meets each document once, even when the update moves its
/// key ahead of the scan (the Halloween problem).
#[test]
fn multi_update_through_an_index_updates_each_document_once() {
    let env = start();
    let c = env.coll("halloween");
    c.insert_many((0..2000).map(|i| doc! { "_id": i, "a": i })).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let r = c.update_many(doc! { "a": { "$gte": 0 } }, doc! { "$inc": { "a": 10_000 } }).run().unwrap();
    assert_eq!((r.matched_count, r.modified_count), (2000, 2000));
    for d in c.find(doc! {}).run().unwrap() {
        let d = d.unwrap();
        assert_eq!(d.get_i32("a").unwrap(), d.get_i32("_id").unwrap() + 10_000, "{d:?}");
    }
    // explain carries the shape's hashes, as the plan cache reports them.
    let db = env.client.database(c.namespace().db.as_str());
    let e = explain(&db, doc! { "find": c.name(), "filter": { "a": 5 } });
    let hash = path(&e, "queryPlanner.queryHash").as_str().unwrap().to_string();
    assert_eq!(hash.len(), 8);
    let e = explain(&db, doc! { "find": c.name(), "filter": { "a": 6 } });
    assert_eq!(path(&e, "queryPlanner.queryHash").as_str(), Some(hash.as_str()));
    let e = explain(&db, doc! { "find": c.name(), "filter": { "a": { "$gt": 6 } } });
    assert_ne!(path(&e, "queryPlanner.queryHash").as_str(), Some(hash.as_str()));
}

/// `$meta` in a find projection: `recordId` and `indexKey` filled in by the executor, the
/// metadata this server never has left out, `textScore` and unknown names refused.
#[test]
fn meta_projections_in_find() {
    let env = start();
    let c = env.coll("metaproj");
    c.insert_many((0..5).map(|i| doc! { "_id": i, "a": i * 10, "b": "x" })).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let got: Vec<Document> = c
        .find(doc! { "a": { "$gte": 20 } })
        .projection(doc! { "a": 1, "r": { "$meta": "recordId" }, "k": { "$meta": "indexKey" }, "s": { "$meta": "sortKey" } })
        .sort(doc! { "a": 1 })
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    for d in &got {
        assert!(matches!(d.get("r"), Some(Bson::Int64(_))), "{d}");
        assert_eq!(d.get_document("k").unwrap(), &doc! { "a": d.get_i32("a").unwrap() }, "{d}");
        assert!(!d.contains_key("b") && !d.contains_key("s"), "{d}");
    }
    // Only metadata: the whole document plus the field.
    let d = c
        .find_one(doc! { "_id": 1 })
        .projection(doc! { "r": { "$meta": "recordId" } })
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(d.get_str("b"), Ok("x"), "{d}");
    assert!(d.contains_key("r"), "{d}");
    for (meta, code) in [("textScore", 40218), ("nope", 17308)] {
        let e = c.find_one(doc! {}).projection(doc! { "m": { "$meta": meta } }).run().unwrap_err();
        assert_eq!(command_error(&e).0, code, "{meta}: {e}");
    }
}
