//! Secondary indexes: creation, listing, uniqueness, dropping, and query equivalence.

use crate::common::{self, assert_command_error, assert_ok, command_error};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::sync::{Collection, Database};
use mongodb::IndexModel;

fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

fn index_opts(keys: Document, opts: IndexOptions) -> IndexModel {
    IndexModel::builder().keys(keys).options(opts).build()
}

/// The raw `listIndexes` batch, by name.
fn list_indexes(db: &Database, coll: &str) -> Vec<Document> {
    let r = db.run_command(doc! {"listIndexes": coll}).run().expect("listIndexes");
    assert_ok(&r);
    let c = r.get_document("cursor").expect("cursor");
    assert_eq!(c.get("id"), Some(&Bson::Int64(0)), "{r}");
    assert_eq!(c.get_str("ns").expect("ns"), format!("{}.{coll}", db.name()));
    c.get_array("firstBatch")
        .expect("firstBatch")
        .iter()
        .map(|b| b.as_document().expect("index spec").clone())
        .collect()
}

fn names(specs: &[Document]) -> Vec<String> {
    let mut v: Vec<String> = specs.iter().map(|s| s.get_str("name").expect("name").to_string()).collect();
    v.sort();
    v
}

fn spec<'a>(specs: &'a [Document], name: &str) -> &'a Document {
    specs
        .iter()
        .find(|s| s.get_str("name") == Ok(name))
        .unwrap_or_else(|| panic!("no index {name} in {specs:?}"))
}

#[test]
fn create_and_list_index_kinds() {
    let env = common::start();
    let db = env.db("idx");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"a": 1, "b": 2}).run().expect("insert");

    let r = coll.create_index(index(doc! {"a": 1})).run().expect("single");
    assert_eq!(r.index_name, "a_1");
    let r = coll.create_index(index(doc! {"a": 1, "b": -1})).run().expect("compound");
    assert_eq!(r.index_name, "a_1_b_-1");
    let r = coll.create_index(index(doc! {"d": -1})).run().expect("descending");
    assert_eq!(r.index_name, "d_-1");
    let unique = IndexOptions::builder().unique(true).name("uniq_u".to_string()).build();
    let r = coll.create_index(index_opts(doc! {"u": 1}, unique)).run().expect("unique");
    assert_eq!(r.index_name, "uniq_u");
    let sparse = IndexOptions::builder().sparse(true).build();
    let r = coll.create_index(index_opts(doc! {"s": 1}, sparse)).run().expect("sparse");
    assert_eq!(r.index_name, "s_1");

    let specs = list_indexes(&db, "c");
    assert_eq!(names(&specs), vec!["_id_", "a_1", "a_1_b_-1", "d_-1", "s_1", "uniq_u"]);
    // The _id index comes first and has no unique flag in its spec.
    assert_eq!(specs[0], doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"});
    assert_eq!(spec(&specs, "a_1"), &doc! {"v": 2, "key": {"a": 1}, "name": "a_1"});
    let compound = spec(&specs, "a_1_b_-1");
    assert_eq!(compound.get("key"), Some(&Bson::Document(doc! {"a": 1, "b": -1})));
    let keys: Vec<&String> = compound.get_document("key").expect("key").keys().collect();
    assert_eq!(keys, vec!["a", "b"], "compound key order is kept");
    assert_eq!(spec(&specs, "d_-1").get("key"), Some(&Bson::Document(doc! {"d": -1})));
    assert_eq!(spec(&specs, "uniq_u"), &doc! {"v": 2, "key": {"u": 1}, "name": "uniq_u", "unique": true});
    assert_eq!(spec(&specs, "s_1"), &doc! {"v": 2, "key": {"s": 1}, "name": "s_1", "sparse": true});
    for s in &specs {
        assert_eq!(s.get("v"), Some(&Bson::Int32(2)), "v is int32 2: {s}");
    }

    // createIndexes reply shape; re-creating an identical index is a no-op.
    let r = db
        .run_command(doc! {"createIndexes": "c", "indexes": [{"key": {"z": 1}, "name": "z_1"}]})
        .run()
        .expect("createIndexes");
    assert_ok(&r);
    assert_eq!(common::num(&r, "numIndexesBefore"), 6, "{r}");
    assert_eq!(common::num(&r, "numIndexesAfter"), 7, "{r}");
    assert_eq!(r.get("createdCollectionAutomatically"), Some(&Bson::Boolean(false)), "{r}");
    let r = db
        .run_command(doc! {"createIndexes": "c", "indexes": [{"key": {"z": 1}, "name": "z_1"}]})
        .run()
        .expect("createIndexes again");
    assert_ok(&r);
    assert_eq!(common::num(&r, "numIndexesBefore"), 7, "{r}");
    assert_eq!(common::num(&r, "numIndexesAfter"), 7, "{r}");

    // Same name, different key: IndexKeySpecsConflict (86).
    assert_command_error(
        db.run_command(doc! {"createIndexes": "c", "indexes": [{"key": {"y": 1}, "name": "z_1"}]}).run(),
        86,
        "IndexKeySpecsConflict",
    );
    // Creating an index on a new collection creates the collection.
    let r = db
        .run_command(doc! {"createIndexes": "fresh", "indexes": [{"key": {"q": 1}, "name": "q_1"}]})
        .run()
        .expect("createIndexes on a new collection");
    assert_eq!(r.get("createdCollectionAutomatically"), Some(&Bson::Boolean(true)), "{r}");
    assert_eq!(names(&list_indexes(&db, "fresh")), vec!["_id_", "q_1"]);
}

#[test]
fn unique_index_over_duplicates_fails_and_leaves_no_index() {
    let env = common::start();
    let db = env.db("uniqdup");
    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![doc! {"k": 1}, doc! {"k": 2}, doc! {"k": 1}]).run().expect("seed");
    let unique = IndexOptions::builder().unique(true).build();
    let err = coll.create_index(index_opts(doc! {"k": 1}, unique)).run().expect_err("dups");
    let (code, name, _) = command_error(&err);
    assert_eq!((code, name.as_str()), (11000, "DuplicateKey"), "{err}");
    assert_eq!(names(&list_indexes(&db, "c")), vec!["_id_"]);
    // The collection is untouched and still writable.
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 3);
    coll.insert_one(doc! {"k": 1}).run().expect("no unique index: duplicates allowed");
}

#[test]
fn duplicate_insert_reports_key_pattern_and_value() {
    let env = common::start();
    let db = env.db("dupkey");
    let coll = db.collection::<Document>("c");
    let unique = IndexOptions::builder().unique(true).build();
    coll.create_index(index_opts(doc! {"email": 1, "org": 1}, unique)).run().expect("unique");
    coll.insert_one(doc! {"email": "a@x", "org": 1}).run().expect("first");
    coll.insert_one(doc! {"email": "a@x", "org": 2}).run().expect("different org");
    let err = coll.insert_one(doc! {"email": "a@x", "org": 1}).run().expect_err("duplicate");
    assert_eq!(common::write_error_code(&err), 11000);

    let r = db
        .run_command(doc! {"insert": "c", "documents": [{"email": "a@x", "org": 2, "n": 1}]})
        .run()
        .expect("insert command");
    assert_ok(&r);
    assert_eq!(r.get("n"), Some(&Bson::Int32(0)), "{r}");
    let e = r.get_array("writeErrors").expect("writeErrors")[0].as_document().expect("doc").clone();
    assert_eq!(e.get("index"), Some(&Bson::Int32(0)), "{e}");
    assert_eq!(e.get("code"), Some(&Bson::Int32(11000)), "{e}");
    assert_eq!(e.get_document("keyPattern").expect("keyPattern"), &doc! {"email": 1, "org": 1});
    assert_eq!(e.get_document("keyValue").expect("keyValue"), &doc! {"email": "a@x", "org": 2});
    let msg = e.get_str("errmsg").expect("errmsg");
    assert!(msg.contains("E11000") && msg.contains("email_1_org_1"), "{msg}");

    // Updates into a duplicate fail the same way; the _id index is unique too.
    let err = coll
        .update_one(doc! {"org": 2}, doc! {"$set": {"org": 1}})
        .run()
        .expect_err("update into a duplicate");
    assert_eq!(common::write_error_code(&err), 11000);
    assert_eq!(coll.count_documents(doc! {"org": 2}).run().expect("count"), 1);

    // A unique index treats a missing field as null: only one document may lack it.
    let solo = db.collection::<Document>("solo");
    let unique = IndexOptions::builder().unique(true).build();
    solo.create_index(index_opts(doc! {"m": 1}, unique)).run().expect("unique");
    solo.insert_one(doc! {"x": 1}).run().expect("first missing");
    let err = solo.insert_one(doc! {"x": 2}).run().expect_err("second missing");
    assert_eq!(common::write_error_code(&err), 11000);
    // Sparse unique indexes skip documents without the field.
    let sp = db.collection::<Document>("sparse");
    let opts = IndexOptions::builder().unique(true).sparse(true).build();
    sp.create_index(index_opts(doc! {"m": 1}, opts)).run().expect("sparse unique");
    sp.insert_many(vec![doc! {"x": 1}, doc! {"x": 2}, doc! {"m": 1}]).run().expect("sparse");
    let err = sp.insert_one(doc! {"m": 1}).run().expect_err("dup m");
    assert_eq!(common::write_error_code(&err), 11000);
}

#[test]
fn drop_index_by_name_by_key_and_all() {
    let env = common::start();
    let db = env.db("dropidx");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"a": 1}).run().expect("insert");
    for keys in [doc! {"a": 1}, doc! {"b": -1}, doc! {"c": 1, "d": 1}, doc! {"e": 1}] {
        coll.create_index(index(keys)).run().expect("create");
    }
    coll.drop_index("a_1").run().expect("drop by name");
    assert_eq!(names(&list_indexes(&db, "c")), vec!["_id_", "b_-1", "c_1_d_1", "e_1"]);

    let r = db.run_command(doc! {"dropIndexes": "c", "index": {"b": -1}}).run().expect("drop by key");
    assert_ok(&r);
    assert_eq!(common::num(&r, "nIndexesWas"), 4, "{r}");
    assert_eq!(names(&list_indexes(&db, "c")), vec!["_id_", "c_1_d_1", "e_1"]);

    assert_command_error(coll.drop_index("nope_1").run(), 27, "IndexNotFound");
    assert_command_error(
        db.run_command(doc! {"dropIndexes": "c", "index": {"zz": 1}}).run(),
        27,
        "IndexNotFound",
    );
    assert_command_error(coll.drop_index("_id_").run(), 72, "InvalidOptions");

    coll.drop_indexes().run().expect("drop all");
    assert_eq!(names(&list_indexes(&db, "c")), vec!["_id_"]);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 1);
    // Names are free again.
    coll.create_index(index(doc! {"a": 1})).run().expect("recreate");
    assert_eq!(names(&list_indexes(&db, "c")), vec!["_id_", "a_1"]);
}

/// Runs each filter (sorted by `_id` so order is comparable) and returns the results.
fn run_queries(coll: &Collection<Document>, filters: &[Document]) -> Vec<Vec<Document>> {
    filters
        .iter()
        .map(|f| {
            coll.find(f.clone()).sort(doc! {"_id": 1}).run().expect("find").map(|d| d.expect("doc")).collect()
        })
        .collect()
}

#[test]
fn queries_agree_with_and_without_indexes() {
    let env = common::start();
    let coll = env.coll("equiv");
    let mut docs = Vec::new();
    for i in 0..400i32 {
        let mut d = doc! {"_id": i, "b": i % 7, "tags": [format!("t{}", i % 5), format!("t{}", i % 3)]};
        // Mixed types and missing values in `a` exercise type bracketing and null matching.
        match i % 10 {
            0 => {}
            1 => {
                d.insert("a", Bson::Null);
            }
            2 => {
                d.insert("a", format!("{}", i % 13));
            }
            3 => {
                d.insert("a", f64::from(i % 13) + 0.5);
            }
            4 => {
                d.insert("a", vec![Bson::Int32(i % 13), Bson::Int32(100)]);
            }
            5 => {
                d.insert("a", i64::from(i % 13));
            }
            _ => {
                d.insert("a", i % 13);
            }
        }
        docs.push(d);
    }
    coll.insert_many(docs).run().expect("seed");

    let filters = vec![
        doc! {"a": 5},
        doc! {"a": {"$gt": 3, "$lte": 7}},
        doc! {"a": {"$gte": 12}},
        doc! {"a": {"$lt": 2}},
        doc! {"a": {"$in": [1, 4, "4", 9]}},
        doc! {"a": null},
        doc! {"a": {"$exists": false}},
        doc! {"a": {"$ne": 5}},
        doc! {"a": {"$gt": "1"}},
        doc! {"a": 100},
        doc! {"tags": "t2"},
        doc! {"tags": {"$all": ["t1", "t2"]}},
        doc! {"tags": {"$in": ["t4", "t0"]}, "b": 3},
        doc! {"a": 5, "b": {"$gt": 2}},
        doc! {"a": {"$gte": 3, "$lt": 6}, "b": 1},
        doc! {"b": 4},
        doc! {"a": 7, "tags": "t1"},
    ];
    let without = run_queries(&coll, &filters);
    // Sanity: the data really exercise the filters.
    assert!(without[0].len() > 10, "a: 5 matches several");
    assert!(!without[5].is_empty() && !without[9].is_empty() && !without[11].is_empty());

    for keys in [doc! {"a": 1}, doc! {"tags": 1}, doc! {"a": 1, "b": 1}, doc! {"b": -1, "a": 1}] {
        coll.create_index(index(keys)).run().expect("create index");
    }
    let with = run_queries(&coll, &filters);
    for (i, f) in filters.iter().enumerate() {
        assert_eq!(with[i], without[i], "filter {f} differs with indexes");
    }
    // Hinted index scans agree too.
    for (f, hint) in [
        (doc! {"a": {"$gt": 3, "$lte": 7}}, doc! {"a": 1}),
        (doc! {"tags": "t2"}, doc! {"tags": 1}),
        (doc! {"a": 5, "b": {"$gt": 2}}, doc! {"a": 1, "b": 1}),
    ] {
        let idx = filters.iter().position(|x| x == &f).expect("known filter");
        let got: Vec<Document> = coll
            .find(f.clone())
            .hint(mongodb::options::Hint::Keys(hint.clone()))
            .sort(doc! {"_id": 1})
            .run()
            .unwrap_or_else(|e| panic!("filter {f} with hint {hint}: {e}"))
            .map(|d| d.expect("doc"))
            .collect();
        assert_eq!(got, without[idx], "filter {f} with hint {hint}");
    }
    // Index maintenance: after updates and deletes, indexed reads still match a scan.
    coll.update_many(doc! {"b": 2}, doc! {"$set": {"a": 5, "tags": ["t9"]}}).run().expect("update");
    coll.delete_many(doc! {"b": 6}).run().expect("delete");
    let after_with = run_queries(&coll, &filters);
    coll.drop_indexes().run().expect("drop indexes");
    let after_without = run_queries(&coll, &filters);
    for (i, f) in filters.iter().enumerate() {
        assert_eq!(after_with[i], after_without[i], "filter {f} after writes");
    }
}
