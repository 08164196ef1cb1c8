//! Covered queries (issue 3): a find whose filter, sort and projection read only top-level
//! fields of one single-valued index is answered from the index entries (no FETCH, no
//! documents examined), and returns exactly what a collection scan returns, value types
//! included.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::IndexModel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn dec(s: &str) -> Bson {
    Bson::Decimal128(s.parse().expect("decimal"))
}

/// Numbers of every type (with equal values across types), strings and null.
fn random_scalar(rng: &mut StdRng) -> Bson {
    let n = rng.gen_range(0..6);
    match rng.gen_range(0..7) {
        0 => Bson::Int32(n),
        1 => Bson::Int64(n as i64),
        2 => Bson::Double(n as f64),
        3 => dec(&format!("{n}.0")),
        4 => Bson::String(["a", "b", "B", ""][rng.gen_range(0..4)].to_string()),
        5 => Bson::Null,
        _ => Bson::Double(n as f64 + 0.5),
    }
}

fn random_filter(rng: &mut StdRng) -> Document {
    let v = |rng: &mut StdRng| Bson::Int32(rng.gen_range(0..6));
    match rng.gen_range(0..7) {
        0 => doc! { "a": v(rng) },
        1 => doc! { "a": { "$gte": v(rng), "$lt": v(rng) } },
        2 => doc! { "a": { "$in": [v(rng), "a", null] } },
        3 => doc! { "a": { "$gt": v(rng) }, "b": { "$exists": false } },
        4 => doc! { "a": v(rng), "b": { "$type": "double" } },
        5 => doc! { "a": { "$lte": "b" } },
        _ => doc! { "a": { "$gte": 2 }, "$or": [{ "b": null }, { "b": { "$gt": 1 } }] },
    }
}

/// Documents as the client sees them, field order and value types included.
fn shown(docs: Vec<Document>) -> Vec<String> {
    let mut v: Vec<String> = docs.iter().map(|d| format!("{d:?}")).collect();
    v.sort();
    v
}

fn run_find(db: &mongodb::sync::Database, cmd: Document) -> Vec<Document> {
    let reply = db.run_command(cmd).run().unwrap();
    let cursor = reply.get_document("cursor").unwrap();
    assert_eq!(cursor.get_i64("id").unwrap(), 0, "one batch holds every answer");
    cursor.get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
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
fn covered_finds_return_what_collection_scans_return() {
    let env = start();
    let db = env.db("covered");
    let c = db.collection::<Document>("c");
    let mut rng = StdRng::seed_from_u64(3);
    let docs: Vec<Document> = (0..400)
        .map(|i| {
            let mut d = doc! { "_id": i };
            if rng.gen_bool(0.9) {
                d.insert("a", random_scalar(&mut rng));
            }
            if rng.gen_bool(0.8) {
                d.insert("b", random_scalar(&mut rng));
            }
            d.insert("other", "x");
            d
        })
        .collect();
    c.insert_many(docs).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": 1 }).build()).run().unwrap();

    let projections =
        [doc! { "a": 1, "_id": 0 }, doc! { "a": 1, "b": 1, "_id": 0 }, doc! { "b": true, "_id": 0 }];
    let sorts = [None, Some(doc! { "a": 1, "b": 1 }), Some(doc! { "a": -1, "b": -1 }), Some(doc! { "b": 1 })];
    let mut covered_plans = 0;
    for _ in 0..60 {
        let filter = random_filter(&mut rng);
        let projection = projections[rng.gen_range(0..projections.len())].clone();
        let sort = sorts[rng.gen_range(0..sorts.len())].clone();
        let mut cmd = doc! { "find": "c", "filter": filter.clone(), "projection": projection.clone(), "batchSize": 1000 };
        if let Some(s) = &sort {
            cmd.insert("sort", s.clone());
        }
        // Documents with equal sort keys (1 and 1.0) may come in another order: compare as sets.
        let got = run_find(&db, cmd.clone());
        let mut natural = cmd.clone();
        natural.insert("hint", doc! { "$natural": 1 });
        let want = run_find(&db, natural);
        assert_eq!(shown(got), shown(want), "{cmd:?}");

        let e = explain(&db, cmd.clone());
        let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
        if stages(plan).first().map(String::as_str) == Some("PROJECTION_COVERED") {
            covered_plans += 1;
            assert!(!stages(plan).contains(&"FETCH".to_string()), "{plan:?}");
            let stats = e.get_document("executionStats").unwrap();
            assert_eq!(stats.get_i64("totalDocsExamined").unwrap(), 0, "{cmd:?}");
        }
    }
    assert!(covered_plans > 20, "most of these queries are covered ({covered_plans})");
}

#[test]
fn explain_shows_a_covered_plan_only_when_the_index_holds_every_field() {
    let env = start();
    let db = env.db("covered_explain");
    let c = db.collection::<Document>("c");
    c.insert_many((0..300).map(|i| doc! { "_id": i, "k": i % 50, "s": format!("v{i}") })).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "k": 1 }).build()).run().unwrap();

    let e = explain(
        &db,
        doc! { "find": "c", "filter": { "k": { "$gte": 10, "$lt": 20 } }, "projection": { "k": 1, "_id": 0 } },
    );
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
    let stats = e.get_document("executionStats").unwrap();
    assert_eq!(stats.get_i64("nReturned").unwrap(), 60);
    assert_eq!(stats.get_i64("totalKeysExamined").unwrap(), 60);
    assert_eq!(stats.get_i64("totalDocsExamined").unwrap(), 0);

    // `_id` is returned unless excluded, and it is not in the index; `s` is not either.
    for projection in [doc! { "k": 1 }, doc! { "k": 1, "s": 1, "_id": 0 }, doc! { "s": 0 }] {
        let e = explain(&db, doc! { "find": "c", "filter": { "k": 5 }, "projection": projection.clone() });
        let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
        assert_eq!(stages(plan), vec!["PROJECTION_DEFAULT", "FETCH", "IXSCAN"], "{projection:?}");
    }
    // A filter on a field outside the index needs the documents.
    let e = explain(
        &db,
        doc! { "find": "c", "filter": { "k": 5, "s": "v5" }, "projection": { "k": 1, "_id": 0 } },
    );
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan)[1], "FETCH");
    // The `_id` index covers `_id`-only projections.
    let e = explain(&db, doc! { "find": "c", "filter": { "_id": { "$lt": 5 } }, "projection": { "_id": 1 } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
    assert_eq!(e.get_document("executionStats").unwrap().get_i64("totalDocsExamined").unwrap(), 0);

    // Once a document holds an array in the field, the index is multikey and covers nothing.
    c.insert_one(doc! { "_id": 1000, "k": [5, 6] }).run().unwrap();
    let e = explain(&db, doc! { "find": "c", "filter": { "k": 5 }, "projection": { "k": 1, "_id": 0 } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_DEFAULT", "FETCH", "IXSCAN"]);
    let got = run_find(&db, doc! { "find": "c", "filter": { "k": 5 }, "projection": { "k": 1, "_id": 0 } });
    assert_eq!(got.len(), 7);
}

/// The key bytes of 1, NumberLong(1), 1.0 and Decimal128("1.0") are equal, so an update that
/// only changes the type leaves the key; the entry's stored value must still follow.
#[test]
fn an_update_that_changes_only_the_type_keeps_covered_answers_right() {
    let env = start();
    let db = env.db("covered_types");
    let c = db.collection::<Document>("c");
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    c.create_index(
        IndexModel::builder()
            .keys(doc! { "u": 1 })
            .options(mongodb::options::IndexOptions::builder().unique(true).build())
            .build(),
    )
    .run()
    .unwrap();
    c.insert_one(doc! { "_id": 1, "a": 1, "u": 1 }).run().unwrap();
    let covered = |field: &str| -> Vec<Document> {
        run_find(
            &db,
            doc! { "find": "c", "filter": { field: { "$gte": 0 } }, "projection": { field: 1, "_id": 0 } },
        )
    };
    assert_eq!(covered("a"), vec![doc! { "a": 1 }]);
    for (v, want) in
        [(Bson::Double(1.0), "Double(1.0)"), (Bson::Int64(1), "Int64(1)"), (dec("1.0"), "Decimal128")]
    {
        c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": v.clone(), "u": v.clone() } }).run().unwrap();
        for field in ["a", "u"] {
            let got = covered(field);
            assert_eq!(got.len(), 1);
            let shown = format!("{:?}", got[0].get(field).unwrap());
            assert!(shown.starts_with(want), "{field}: {shown} after setting {v:?}");
        }
    }
    // A missing field and null share a key too: `$exists` tells them apart from the entry.
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": null } }).run().unwrap();
    let exists = |e: bool| {
        run_find(
            &db,
            doc! { "find": "c", "filter": { "a": { "$exists": e } }, "projection": { "a": 1, "_id": 0 }, "sort": { "a": 1 } },
        )
    };
    assert_eq!(exists(true), vec![doc! { "a": null }]);
    c.update_one(doc! { "_id": 1 }, doc! { "$unset": { "a": "" } }).run().unwrap();
    assert_eq!(exists(true), Vec::<Document>::new());
    assert_eq!(exists(false), vec![doc! {}]);
    let e = explain(
        &db,
        doc! { "find": "c", "filter": { "a": { "$exists": false } }, "projection": { "a": 1, "_id": 0 }, "sort": { "a": 1 } },
    );
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
}

/// An index built over existing documents stores their values too, and an aborted
/// transaction's change leaves the entries as they were.
#[test]
fn index_builds_and_aborted_transactions_keep_entries_right() {
    let env = start();
    let db = env.db("covered_build");
    let c = db.collection::<Document>("c");
    c.insert_many(
        (0..50).map(
            |i| doc! { "_id": i, "a": if i % 2 == 0 { Bson::Int64(i) } else { Bson::Double(i as f64) } },
        ),
    )
    .run()
    .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let cmd = doc! { "find": "c", "filter": { "a": { "$gte": 10, "$lt": 14 } }, "projection": { "a": 1, "_id": 0 }, "sort": { "a": 1 } };
    let want = vec![doc! { "a": 10_i64 }, doc! { "a": 11.0 }, doc! { "a": 12_i64 }, doc! { "a": 13.0 }];
    assert_eq!(run_find(&db, cmd.clone()), want);

    let mut session = env.client.start_session().run().unwrap();
    session.start_transaction().run().unwrap();
    c.update_one(doc! { "_id": 10 }, doc! { "$set": { "a": 10.0 } }).session(&mut session).run().unwrap();
    session.abort_transaction().run().unwrap();
    assert_eq!(run_find(&db, cmd.clone()), want);

    c.delete_one(doc! { "_id": 11 }).run().unwrap();
    let got = run_find(&db, cmd);
    assert_eq!(got, vec![doc! { "a": 10_i64 }, doc! { "a": 12_i64 }, doc! { "a": 13.0 }]);
}

/// An aggregation whose stages read only fields of one index (a leading `$match` and a
/// `$group`) is answered from the index too; its explain shows the covered `$cursor` plan.
#[test]
fn aggregations_reading_only_indexed_fields_are_covered() {
    let env = start();
    let db = env.db("covered_agg");
    let c = db.collection::<Document>("c");
    let mut rng = StdRng::seed_from_u64(11);
    c.insert_many((0..300).map(|i| {
        let mut d = doc! { "_id": i, "pad": "x" };
        if i % 10 != 0 {
            d.insert("a", random_scalar(&mut rng));
        }
        d
    }))
    .run()
    .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let pipeline = vec![
        doc! { "$match": { "a": { "$gte": 1 } } },
        doc! { "$group": { "_id": { "$type": "$a" }, "n": { "$sum": 1 }, "total": { "$sum": "$a" } } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let run = |pipeline: &Vec<Document>| -> Vec<Document> {
        let cmd = doc! { "aggregate": "c", "pipeline": pipeline.clone(), "cursor": {} };
        let reply = db.run_command(cmd).run().unwrap();
        let cursor = reply.get_document("cursor").unwrap();
        cursor.get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
    };
    let got = run(&pipeline);
    assert_eq!(got.len(), 4, "int, long, double and decimal groups: {got:?}");
    // The same with a condition on `pad` (true of every document) reads the documents.
    let mut fetched = pipeline.clone();
    fetched[0] = doc! { "$match": { "a": { "$gte": 1 }, "pad": "x" } };
    assert_eq!(shown(got), shown(run(&fetched)));

    let e = db
        .run_command(doc! { "aggregate": "c", "pipeline": pipeline.clone(), "explain": true })
        .run()
        .unwrap();
    let cursor = e.get_array("stages").unwrap()[0].as_document().unwrap().get_document("$cursor").unwrap();
    let plan = cursor.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
    // Reading `pad` too needs the documents.
    let mut wider = pipeline.clone();
    wider[1] = doc! { "$group": { "_id": "$pad", "n": { "$sum": "$a" } } };
    let e = db.run_command(doc! { "aggregate": "c", "pipeline": wider, "explain": true }).run().unwrap();
    let cursor = e.get_array("stages").unwrap()[0].as_document().unwrap().get_document("$cursor").unwrap();
    let plan = cursor.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_DEFAULT", "FETCH", "IXSCAN"]);
}

/// The index remembers (in the catalog) that its entries carry typed values: covering
/// survives a collMod that hides and unhides it, and a restart.
#[test]
fn covering_survives_coll_mod_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_with(builder().dbpath(dir.path()));
    let name = unique_name("covered_restart");
    let db = env.client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_many(
        (0..20).map(
            |i| doc! { "_id": i, "a": if i % 2 == 0 { Bson::Int64(i) } else { Bson::Double(i as f64) } },
        ),
    )
    .run()
    .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let cmd = doc! { "find": "c", "filter": { "a": { "$gte": 3 } }, "projection": { "a": 1, "_id": 0 }, "sort": { "a": 1 } };
    let want = run_find(&db, cmd.clone());
    assert_eq!(want.len(), 17);
    assert_eq!(want[0], doc! { "a": 3.0 });
    let is_covered = |db: &mongodb::sync::Database| {
        let e = explain(db, cmd.clone());
        let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap().clone();
        stages(&plan) == vec!["PROJECTION_COVERED", "IXSCAN"]
    };
    assert!(is_covered(&db));
    for hidden in [true, false] {
        db.run_command(doc! { "collMod": "c", "index": { "keyPattern": { "a": 1 }, "hidden": hidden } })
            .run()
            .unwrap();
    }
    assert!(is_covered(&db));
    let Env { client, server } = env;
    drop(client);
    server.stop();
    let env = start_with(builder().dbpath(dir.path()));
    let db = env.client.database(&name);
    assert!(is_covered(&db));
    assert_eq!(run_find(&db, cmd.clone()), want);
}

/// A dotted index field is covered for documents that have it; those that lack it (whose
/// projection depends on what the parent is) are fetched.
#[test]
fn dotted_fields_are_covered_where_the_document_has_them() {
    let env = start();
    let db = env.db("covered_dotted");
    let c = db.collection::<Document>("c");
    let docs = vec![
        doc! { "_id": 1, "a": { "b": 1, "c": "x" } },
        doc! { "_id": 2, "a": { "b": 2.0 } },
        doc! { "_id": 3, "a": {} },
        doc! { "_id": 4, "a": 5 },
        doc! { "_id": 5 },
        doc! { "_id": 6, "a": { "b": null } },
        doc! { "_id": 7, "a": { "b": { "d": 1 } } },
        doc! { "_id": 8, "a": { "b": 3_i64 }, "x": 1 },
    ];
    c.insert_many(docs).run().unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a.b": 1 }).build()).run().unwrap();
    for filter in [
        doc! { "a.b": { "$gte": 1 } },
        doc! { "a.b": { "$in": [null, 2] } },
        doc! { "a.b": { "$exists": false } },
        doc! { "a.b": { "$type": "object" } },
    ] {
        let mut cmd = doc! { "find": "c", "filter": filter.clone(), "projection": { "a.b": 1, "_id": 0 }, "sort": { "a.b": 1 } };
        let got = run_find(&db, cmd.clone());
        cmd.insert("hint", doc! { "$natural": 1 });
        let want = run_find(&db, cmd);
        assert_eq!(shown(got), shown(want), "{filter:?}");
    }
    let e = explain(
        &db,
        doc! { "find": "c", "filter": { "a.b": { "$gte": 1 } }, "projection": { "a.b": 1, "_id": 0 } },
    );
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
    let stats = e.get_document("executionStats").unwrap();
    assert_eq!((stats.get_i64("nReturned").unwrap(), stats.get_i64("totalDocsExamined").unwrap()), (3, 0));
    // Over the null/missing keys, only the documents lacking `a.b` are fetched.
    let e = explain(
        &db,
        doc! { "find": "c", "filter": { "a.b": null }, "projection": { "a.b": 1, "_id": 0 }, "sort": { "a.b": 1 } },
    );
    let stats = e.get_document("executionStats").unwrap();
    assert_eq!((stats.get_i64("nReturned").unwrap(), stats.get_i64("totalDocsExamined").unwrap()), (4, 3));
}

/// count and distinct read only their filter's fields (and distinct's key): an index holding
/// them answers without fetching.
#[test]
fn count_and_distinct_are_covered() {
    let env = start();
    let db = env.db("covered_count");
    let c = db.collection::<Document>("c");
    let mut rng = StdRng::seed_from_u64(5);
    c.insert_many((0..300).map(|i| {
        let mut d = doc! { "_id": i, "b": i % 3, "pad": "x" };
        if i % 7 != 0 {
            d.insert("a", random_scalar(&mut rng));
        }
        d
    }))
    .run()
    .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": 1 }).build()).run().unwrap();
    for filter in [
        doc! { "a": { "$gte": 2 } },
        doc! { "a": { "$lt": 3 }, "b": 1 },
        doc! { "a": 1, "b": { "$exists": true } },
    ] {
        let n = c.count_documents(filter.clone()).run().unwrap();
        let scanned = c
            .find(filter.clone())
            .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
            .run()
            .unwrap()
            .count();
        assert_eq!(n as usize, scanned, "{filter:?}");
        let reply = db.run_command(doc! { "count": "c", "query": filter.clone() }).run().unwrap();
        assert_eq!(reply.get_i32("n").unwrap() as usize, scanned, "{filter:?}");
        let e = explain(&db, doc! { "count": "c", "query": filter.clone() });
        let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
        assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"], "{filter:?}");
        assert_eq!(e.get_document("executionStats").unwrap().get_i64("totalDocsExamined").unwrap(), 0);

        let mut got = c.distinct("b", filter.clone()).run().unwrap();
        let mut want: Vec<Bson> = c
            .find(filter.clone())
            .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
            .run()
            .unwrap()
            .map(|d| d.unwrap().get("b").unwrap().clone())
            .collect();
        want.sort_by_key(|b| b.as_i32());
        want.dedup();
        got.sort_by_key(|b| b.as_i32());
        assert_eq!(got, want, "{filter:?}");
    }
    // A filter on a field outside the index reads the documents.
    let e = explain(&db, doc! { "count": "c", "query": { "a": 1, "pad": "x" } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["FETCH", "IXSCAN"]);
    let e = explain(&db, doc! { "distinct": "c", "key": "pad", "query": { "a": 1 } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["FETCH", "IXSCAN"]);
    let e = explain(&db, doc! { "distinct": "c", "key": "b", "query": { "a": 1 } });
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), vec!["PROJECTION_COVERED", "IXSCAN"]);
}
