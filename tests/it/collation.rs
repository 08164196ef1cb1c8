//! Collations: matching, sorting, grouping and writing under a statement's collation or the
//! collection's default, per-index collations and the plans that may use them, and mongod's
//! errors for bad collation documents.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;

fn run(db: &Database, cmd: Document) -> Document {
    let r = db.run_command(cmd.clone()).run().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert_ok(&r);
    r
}

fn first_batch(r: &Document) -> Vec<Document> {
    r.get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("firstBatch")
        .iter()
        .map(|d| d.as_document().expect("doc").clone())
        .collect()
}

fn names(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| d.get_str("name").expect("name").to_string()).collect()
}

fn ids(docs: &[Document]) -> Vec<i32> {
    let mut v: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").expect("_id")).collect();
    v.sort();
    v
}

fn seed(db: &Database, coll: &str) {
    let words = ["cafe", "Cafe", "CAFE", "café", "b", "A", "a", "B"];
    let docs: Vec<Document> =
        words.iter().enumerate().map(|(i, w)| doc! { "_id": i as i32, "name": *w }).collect();
    run(db, doc! { "insert": coll, "documents": docs });
}

/// The winning plan's input stage (the scan) of an explained find.
fn scan_stage(db: &Database, find: Document) -> Document {
    let r = run(db, doc! { "explain": find, "verbosity": "queryPlanner" });
    let mut s =
        r.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan").clone();
    while let Ok(inner) = s.get_document("inputStage") {
        s = inner.clone();
    }
    s
}

#[test]
fn find_matches_and_sorts_under_a_collation() {
    let env = start();
    let db = env.db("coll");
    seed(&db, "c");
    let find = |filter: Document, collation: Option<Document>| {
        let mut cmd = doc! { "find": "c", "filter": filter };
        if let Some(c) = collation {
            cmd.insert("collation", c);
        }
        ids(&first_batch(&run(&db, cmd)))
    };
    assert_eq!(find(doc! { "name": "cafe" }, None), vec![0]);
    assert_eq!(find(doc! { "name": "cafe" }, Some(doc! { "locale": "simple" })), vec![0]);
    // Strength 1 ignores case and accents, 2 only case, 3 neither.
    assert_eq!(find(doc! { "name": "cafe" }, Some(doc! { "locale": "en", "strength": 1 })), vec![0, 1, 2, 3]);
    assert_eq!(find(doc! { "name": "cafe" }, Some(doc! { "locale": "en", "strength": 2 })), vec![0, 1, 2]);
    assert_eq!(find(doc! { "name": "cafe" }, Some(doc! { "locale": "en" })), vec![0]);
    assert_eq!(
        find(doc! { "name": { "$in": ["CAFE", "x"] } }, Some(doc! { "locale": "fr", "strength": 2 })),
        vec![0, 1, 2]
    );
    assert_eq!(find(doc! { "name": { "$ne": "b" } }, Some(doc! { "locale": "en", "strength": 2 })).len(), 6);
    assert_eq!(
        find(doc! { "name": { "$gt": "a", "$lt": "c" } }, Some(doc! { "locale": "en" })),
        vec![4, 5, 7]
    );

    let sorted = |collation: Option<Document>| {
        let mut cmd = doc! { "find": "c", "filter": { "name": { "$in": ["a", "A", "b", "B"] } }, "sort": { "name": 1 } };
        if let Some(c) = collation {
            cmd.insert("collation", c);
        }
        names(&first_batch(&run(&db, cmd)))
    };
    assert_eq!(sorted(None), ["A", "B", "a", "b"]);
    assert_eq!(sorted(Some(doc! { "locale": "en" })), ["a", "A", "b", "B"]);
    assert_eq!(sorted(Some(doc! { "locale": "en", "caseFirst": "upper" })), ["A", "a", "B", "b"]);
}

#[test]
fn numeric_ordering_and_getmore_keep_the_collation() {
    let env = start();
    let db = env.db("coll");
    let docs: Vec<Document> = ["10", "9", "2", "100", "1"]
        .iter()
        .enumerate()
        .map(|(i, n)| doc! { "_id": i as i32, "name": *n })
        .collect();
    run(&db, doc! { "insert": "n", "documents": docs });
    let r = run(
        &db,
        doc! {
            "find": "n", "sort": { "name": 1 }, "batchSize": 2,
            "collation": { "locale": "en", "numericOrdering": true },
        },
    );
    let mut got = names(&first_batch(&r));
    let id = r.get_document("cursor").and_then(|c| c.get_i64("id")).expect("cursor id");
    let more = run(&db, doc! { "getMore": id, "collection": "n" });
    got.extend(names(
        &more
            .get_document("cursor")
            .and_then(|c| c.get_array("nextBatch"))
            .expect("nextBatch")
            .iter()
            .map(|d| d.as_document().expect("doc").clone())
            .collect::<Vec<_>>(),
    ));
    assert_eq!(got, ["1", "2", "9", "10", "100"]);

    // A filter evaluated during getMore still uses the cursor's collation.
    let docs: Vec<Document> =
        (0..6).map(|i| doc! { "_id": 100 + i, "name": if i % 2 == 0 { "X" } else { "x" } }).collect();
    run(&db, doc! { "insert": "n", "documents": docs });
    let r = run(
        &db,
        doc! { "find": "n", "filter": { "name": "x" }, "batchSize": 1, "collation": { "locale": "en", "strength": 2 } },
    );
    let id = r.get_document("cursor").and_then(|c| c.get_i64("id")).expect("cursor id");
    let more = run(&db, doc! { "getMore": id, "collection": "n" });
    let next = more.get_document("cursor").and_then(|c| c.get_array("nextBatch")).expect("nextBatch");
    assert_eq!(first_batch(&r).len() + next.len(), 6);
}

#[test]
fn count_distinct_aggregate_and_writes_use_the_collation() {
    let env = start();
    let db = env.db("coll");
    seed(&db, "c");
    let s1 = doc! { "locale": "en", "strength": 1 };
    let s2 = doc! { "locale": "en", "strength": 2 };
    let r = run(&db, doc! { "count": "c", "query": { "name": "CAFÉ" }, "collation": s1.clone() });
    assert_eq!(num(&r, "n"), 4);
    let r = run(&db, doc! { "distinct": "c", "key": "name", "collation": s2.clone() });
    // cafe/Cafe/CAFE are one value at strength 2; café, a/A and b/B are three more.
    assert_eq!(r.get_array("values").expect("values").len(), 4);
    let r = run(&db, doc! { "distinct": "c", "key": "name" });
    assert_eq!(r.get_array("values").expect("values").len(), 8);

    let r = run(
        &db,
        doc! {
            "aggregate": "c",
            "pipeline": [
                { "$match": { "name": { "$in": ["cafe", "a", "b"] } } },
                { "$group": { "_id": "$name", "n": { "$sum": 1 } } },
                { "$sort": { "n": -1 } },
            ],
            "cursor": {},
            "collation": s2.clone(),
        },
    );
    let counts: Vec<i64> = first_batch(&r).iter().map(|d| num(d, "n")).collect();
    assert_eq!(counts, [3, 2, 2]);

    let r = run(
        &db,
        doc! { "update": "c", "updates": [{ "q": { "name": "cafe" }, "u": { "$set": { "hit": true } }, "multi": true, "collation": s1.clone() }] },
    );
    assert_eq!(num(&r, "nModified"), 4);
    let r = run(
        &db,
        doc! { "findAndModify": "c", "query": { "name": "B" }, "remove": true, "collation": s2.clone() },
    );
    assert_eq!(r.get_document("value").and_then(|v| v.get_str("name")).expect("removed").to_lowercase(), "b");
    let r =
        run(&db, doc! { "delete": "c", "deletes": [{ "q": { "name": "a" }, "limit": 0, "collation": s2 }] });
    assert_eq!(num(&r, "n"), 2);
    let r = run(&db, doc! { "count": "c" });
    assert_eq!(num(&r, "n"), 5);
}

#[test]
fn collection_default_collation() {
    let env = start();
    let db = env.db("coll");
    run(&db, doc! { "create": "d", "collation": { "locale": "en", "strength": 2 } });
    let r = run(&db, doc! { "listCollections": 1, "filter": { "name": "d" } });
    let info = first_batch(&r).pop().expect("collection");
    let c = info.get_document("options").and_then(|o| o.get_document("collation")).expect("collation");
    assert_eq!(c.get_str("locale"), Ok("en"));
    assert_eq!(c.get_i32("strength"), Ok(2));
    assert_eq!(c.get_str("caseFirst"), Ok("off"));
    assert_eq!(c.get_bool("numericOrdering"), Ok(false));
    assert_eq!(c.get_str("alternate"), Ok("non-ignorable"));
    assert!(c.contains_key("version"), "{c}");
    seed(&db, "d");
    // Statements without a collation use the collection's; {locale: "simple"} opts out.
    assert_eq!(
        ids(&first_batch(&run(&db, doc! { "find": "d", "filter": { "name": "CAFE" } }))),
        vec![0, 1, 2]
    );
    assert_eq!(
        ids(&first_batch(&run(
            &db,
            doc! { "find": "d", "filter": { "name": "CAFE" }, "collation": { "locale": "simple" } }
        ))),
        vec![2]
    );
    // New indexes inherit it unless they name their own.
    run(
        &db,
        doc! { "createIndexes": "d", "indexes": [
            { "key": { "name": 1 }, "name": "inherits" },
            { "key": { "name": -1 }, "name": "binary", "collation": { "locale": "simple" } },
        ] },
    );
    let r = run(&db, doc! { "listIndexes": "d" });
    let specs = first_batch(&r);
    let get = |n: &str| specs.iter().find(|s| s.get_str("name") == Ok(n)).expect("index").clone();
    assert_eq!(get("inherits").get_document("collation").and_then(|c| c.get_i32("strength")), Ok(2));
    assert!(!get("binary").contains_key("collation"));
    let scan = scan_stage(&db, doc! { "find": "d", "filter": { "name": "cafe" } });
    assert_eq!(scan.get_str("indexName"), Ok("inherits"), "{scan}");

    // The _id index has the collection's collation too: "K" and "k" are one _id.
    assert_eq!(get("_id_").get_document("collation").and_then(|c| c.get_i32("strength")), Ok(2));
    run(&db, doc! { "insert": "d", "documents": [{ "_id": "K" }] });
    let e = db.collection::<Document>("d").insert_one(doc! { "_id": "k" }).run().expect_err("same _id");
    assert_eq!(write_error_code(&e), 11000);
    let r = run(&db, doc! { "find": "d", "filter": { "_id": "k" } });
    assert_eq!(first_batch(&r), vec![doc! { "_id": "K" }]);
    let scan = scan_stage(&db, doc! { "find": "d", "filter": { "_id": "k" } });
    assert_eq!(scan.get_str("stage"), Ok("IDHACK"), "{scan}");
    let r = run(&db, doc! { "find": "d", "filter": { "_id": "k" }, "collation": { "locale": "simple" } });
    assert!(first_batch(&r).is_empty(), "{r}");
    let r = run(
        &db,
        doc! { "find": "d", "filter": { "_id": "k" }, "collation": { "locale": "en", "strength": 1 } },
    );
    assert_eq!(first_batch(&r).len(), 1, "{r}");
}

#[test]
fn index_collation_decides_which_plans_may_use_it() {
    let env = start();
    let db = env.db("coll");
    seed(&db, "c");
    run(&db, doc! { "insert": "c", "documents": [{ "_id": 50, "name": 5 }] });
    run(
        &db,
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "name": 1 }, "name": "ci", "collation": { "locale": "en", "strength": 2 } },
        ] },
    );
    let s2 = doc! { "locale": "en", "strength": 2 };
    let scan = scan_stage(&db, doc! { "find": "c", "filter": { "name": "CAFE" }, "collation": s2.clone() });
    assert_eq!(scan.get_str("stage"), Ok("IXSCAN"), "{scan}");
    let r = run(&db, doc! { "find": "c", "filter": { "name": "CAFE" }, "collation": s2.clone() });
    assert_eq!(ids(&first_batch(&r)), vec![0, 1, 2]);
    let r = run(&db, doc! { "find": "c", "filter": { "name": { "$gte": "b" } }, "collation": s2.clone() });
    // "cafe" sorts after "b" too; the number 5 is outside the string bracket.
    assert_eq!(ids(&first_batch(&r)), vec![0, 1, 2, 3, 4, 7]);
    // Another collation may not use string bounds of this index...
    let scan = scan_stage(&db, doc! { "find": "c", "filter": { "name": "CAFE" } });
    assert_eq!(scan.get_str("stage"), Ok("COLLSCAN"), "{scan}");
    assert_eq!(ids(&first_batch(&run(&db, doc! { "find": "c", "filter": { "name": "CAFE" } }))), vec![2]);
    // ...but numbers compare alike under every collation.
    let scan = scan_stage(&db, doc! { "find": "c", "filter": { "name": 5 } });
    assert_eq!(scan.get_str("stage"), Ok("IXSCAN"), "{scan}");
    // An index sorts by its collation: only a matching query collation may skip the SORT.
    let r = run(&db, doc! { "explain": { "find": "c", "sort": { "name": 1 }, "collation": s2.clone() } });
    assert!(!r.to_string().contains("\"SORT\""), "{r}");
    let r = run(&db, doc! { "explain": { "find": "c", "sort": { "name": 1 } } });
    assert!(r.to_string().contains("\"SORT\""), "{r}");

    // Uniqueness is judged by the collation too.
    run(
        &db,
        doc! { "createIndexes": "u", "indexes": [
            { "key": { "k": 1 }, "name": "k", "unique": true, "collation": { "locale": "en", "strength": 2 } },
        ] },
    );
    run(&db, doc! { "insert": "u", "documents": [{ "k": "Hello" }] });
    let e = db.collection::<Document>("u").insert_one(doc! { "k": "HELLO" }).run().expect_err("duplicate");
    assert_eq!(write_error_code(&e), 11000);
    db.collection::<Document>("u").insert_one(doc! { "k": "hellö" }).run().expect("distinct at strength 2");
}

#[test]
fn bad_collations_are_refused() {
    let env = start();
    let db = env.db("coll");
    seed(&db, "c");
    for (collation, code) in [
        (Bson::Document(doc! { "locale": "xx_nope" }), 2),
        (Bson::Document(doc! { "strength": 2 }), 40414),
        (Bson::Document(doc! { "locale": "en", "strength": 6 }), 2),
        (Bson::Document(doc! { "locale": "en", "strength": 0 }), 2),
        (Bson::Document(doc! { "locale": "en", "caseFirst": "sideways" }), 2),
        (Bson::Document(doc! { "locale": "en", "alternate": "x" }), 2),
        (Bson::Document(doc! { "locale": "en", "maxVariable": "x" }), 2),
        (Bson::Document(doc! { "locale": "en", "bogus": true }), 40415),
        (Bson::Document(doc! { "locale": "en", "caseLevel": "yes" }), 14),
        (Bson::String("en".into()), 14),
    ] {
        let e = db
            .run_command(doc! { "find": "c", "collation": collation.clone() })
            .run()
            .expect_err("bad collation");
        assert_eq!(command_error(&e).0, code, "{collation}: {e}");
    }
    let e =
        db.run_command(doc! { "create": "x", "collation": { "locale": "zz" } }).run().expect_err("create");
    assert_eq!(command_error(&e).0, 2);
    let e = db
        .run_command(doc! { "createIndexes": "c", "indexes": [{ "key": { "a": 1 }, "name": "a", "collation": { "locale": "zz" } }] })
        .run()
        .expect_err("index");
    assert_eq!(command_error(&e).0, 2);
}

#[test]
fn id_stays_immutable_byte_for_byte_under_a_collation() {
    let env = start();
    let db = env.db("coll");
    run(&db, doc! { "insert": "i", "documents": [{ "_id": "a", "v": 1 }] });
    let r = db
        .run_command(doc! {
            "update": "i",
            "updates": [{ "q": { "_id": "a" }, "u": { "_id": "A", "v": 2 }, "collation": { "locale": "en", "strength": 2 } }],
        })
        .run()
        .expect("update");
    let errors = r.get_array("writeErrors").expect("a write error");
    let code = errors.first().and_then(|e| e.as_document()).and_then(|e| e.get_i32("code").ok());
    assert_eq!(code, Some(66), "{r}");
    let r = run(&db, doc! { "find": "i" });
    assert_eq!(first_batch(&r), vec![doc! { "_id": "a", "v": 1 }]);
}
