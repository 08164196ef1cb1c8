//! Inserts, queries, updates, deletes, findAndModify, counts and distinct through the driver.

use crate::common::{self, all, assert_ok, ids, insert_many_errors, write_error_code};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};
use mongodb::options::ReturnDocument;

fn int_ids(v: &[Bson]) -> Vec<i32> {
    v.iter().map(|b| b.as_i32().unwrap_or_else(|| panic!("int _id expected: {b:?}"))).collect()
}

#[test]
fn insert_one_assigns_object_id_first() {
    let env = common::start();
    let coll = env.coll("ins1");
    let res = coll.insert_one(doc! {"x": 1, "y": "two"}).run().expect("insert");
    let id = match res.inserted_id {
        Bson::ObjectId(oid) => oid,
        other => panic!("auto _id should be an ObjectId, got {other:?}"),
    };
    let got = coll.find_one(doc! {"_id": id}).run().expect("find").expect("found");
    assert_eq!(got, doc! {"_id": id, "x": 1, "y": "two"});
    assert_eq!(got.keys().next().map(String::as_str), Some("_id"), "_id comes first");

    let res = coll.insert_one(doc! {"_id": 5, "v": 1.5}).run().expect("insert");
    assert_eq!(res.inserted_id, Bson::Int32(5));
    // An explicit _id given last is still stored first.
    coll.insert_one(doc! {"v": true, "_id": "s"}).run().expect("insert");
    let got = coll.find_one(doc! {"_id": "s"}).run().expect("find").expect("found");
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), vec!["_id", "v"]);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 3);

    let err = coll.insert_one(doc! {"_id": 5}).run().expect_err("duplicate _id");
    assert_eq!(write_error_code(&err), 11000);
}

#[test]
fn insert_many_ordered_stops_at_duplicate() {
    let env = common::start();
    let coll = env.coll("insord");
    let docs = vec![doc! {"_id": 1}, doc! {"_id": 2}, doc! {"_id": 2}, doc! {"_id": 3}];
    let err = coll.insert_many(docs).run().expect_err("duplicate in the middle");
    assert_eq!(insert_many_errors(&err), vec![(2, 11000)]);
    assert_eq!(int_ids(&ids(&coll)), vec![1, 2]);
}

#[test]
fn insert_many_unordered_continues_past_duplicate() {
    let env = common::start();
    let coll = env.coll("insunord");
    let docs = vec![doc! {"_id": 1}, doc! {"_id": 2}, doc! {"_id": 2}, doc! {"_id": 3}];
    let err = coll.insert_many(docs).ordered(false).run().expect_err("duplicate in the middle");
    assert_eq!(insert_many_errors(&err), vec![(2, 11000)]);
    assert_eq!(int_ids(&ids(&coll)), vec![1, 2, 3]);

    // The raw reply: n counts successes, writeErrors carry index/code/errmsg.
    let db = env.db("insraw");
    let r = db
        .run_command(doc! {
            "insert": "c",
            "documents": [{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 1}],
            "ordered": false,
        })
        .run()
        .expect("insert command");
    assert_ok(&r);
    assert_eq!(r.get("n"), Some(&Bson::Int32(2)), "{r}");
    let we = r.get_array("writeErrors").expect("writeErrors");
    let idx: Vec<i32> =
        we.iter().map(|e| e.as_document().expect("doc").get_i32("index").expect("index")).collect();
    assert_eq!(idx, vec![1, 3], "{r}");
    for e in we {
        let e = e.as_document().expect("doc");
        assert_eq!(e.get("code"), Some(&Bson::Int32(11000)), "{e}");
        let msg = e.get_str("errmsg").expect("errmsg");
        assert!(msg.starts_with("E11000 duplicate key error"), "{msg}");
    }
    let all_ok =
        db.run_command(doc! {"insert": "c", "documents": [{"_id": 7}, {"_id": 8}]}).run().expect("insert");
    assert_eq!(all_ok.get("n"), Some(&Bson::Int32(2)), "{all_ok}");
    assert!(all_ok.get("writeErrors").is_none(), "no writeErrors on success: {all_ok}");
}

fn seed_twenty(coll: &mongodb::sync::Collection<Document>) -> Vec<Document> {
    let docs: Vec<Document> = (0..20)
        .map(|i| doc! {"_id": i, "a": i % 5, "b": format!("s{i:02}"), "c": {"d": i * 10, "e": "x"}})
        .collect();
    coll.insert_many(docs.clone()).run().expect("seed");
    docs
}

#[test]
fn find_filter_sort_skip_limit_projection() {
    let env = common::start();
    let coll = env.coll("find");
    let docs = seed_twenty(&coll);

    let got: Vec<Document> = coll
        .find(doc! {"a": {"$gte": 2}})
        .sort(doc! {"a": -1, "_id": 1})
        .skip(3)
        .limit(5)
        .projection(doc! {"b": 1})
        .run()
        .expect("find")
        .map(|d| d.expect("doc"))
        .collect();
    let mut expected: Vec<&Document> = docs.iter().filter(|d| d.get_i32("a").expect("a") >= 2).collect();
    expected.sort_by_key(|d| (-d.get_i32("a").expect("a"), d.get_i32("_id").expect("_id")));
    let expected: Vec<Document> = expected
        .into_iter()
        .skip(3)
        .take(5)
        .map(|d| doc! {"_id": d.get("_id").cloned().expect("_id"), "b": d.get("b").cloned().expect("b")})
        .collect();
    assert_eq!(got, expected);

    // Dotted inclusion without _id; exclusion projection.
    let got = coll
        .find_one(doc! {"_id": 7})
        .projection(doc! {"_id": 0, "c.d": 1})
        .run()
        .expect("find")
        .expect("found");
    assert_eq!(got, doc! {"c": {"d": 70}});
    let got =
        coll.find_one(doc! {"_id": 7}).projection(doc! {"b": 0, "c": 0}).run().expect("find").expect("found");
    assert_eq!(got, doc! {"_id": 7, "a": 2});

    // Filters on embedded fields and with $in / $or.
    let n = coll.count_documents(doc! {"c.d": {"$in": [10, 30, 999]}}).run().expect("count");
    assert_eq!(n, 2);
    let got: Vec<i32> = coll
        .find(doc! {"$or": [{"_id": {"$lt": 2}}, {"b": "s19"}]})
        .sort(doc! {"_id": -1})
        .run()
        .expect("find")
        .map(|d| d.expect("doc").get_i32("_id").expect("_id"))
        .collect();
    assert_eq!(got, vec![19, 1, 0]);
}

#[test]
fn find_one_and_missing_collection() {
    let env = common::start();
    let coll = env.coll("findone");
    seed_twenty(&coll);
    // No sort: natural (insertion) order decides which one.
    let got = coll.find_one(doc! {"a": 3}).run().expect("find").expect("found");
    assert_eq!(got.get_i32("_id").expect("_id"), 3);
    assert!(coll.find_one(doc! {"a": 99}).run().expect("find").is_none());

    let db = env.db("missing");
    let missing = db.collection::<Document>("nope");
    assert!(all(&missing).is_empty());
    assert!(missing.find_one(doc! {}).run().expect("find").is_none());
    assert_eq!(missing.count_documents(doc! {}).run().expect("count"), 0);
    let r = db.run_command(doc! {"find": "nope", "filter": {}}).run().expect("find command");
    assert_ok(&r);
    let cursor = r.get_document("cursor").expect("cursor");
    assert_eq!(cursor.get("id"), Some(&Bson::Int64(0)), "{r}");
    assert_eq!(cursor.get_str("ns").expect("ns"), format!("{}.nope", db.name()));
    assert_eq!(cursor.get_array("firstBatch").expect("firstBatch").len(), 0);
    // Reading does not create the collection.
    let names = db.list_collection_names().run().expect("list");
    assert!(!names.contains(&"nope".to_string()), "{names:?}");
}

#[test]
fn update_operators_and_counts() {
    let env = common::start();
    let coll = env.coll("upd");
    coll.insert_many(vec![
        doc! {"_id": 1, "n": 1, "s": "a", "gone": true},
        doc! {"_id": 2, "n": 2, "s": "b"},
        doc! {"_id": 3, "n": 3, "s": "b"},
    ])
    .run()
    .expect("seed");

    let r = coll
        .update_one(
            doc! {"_id": 1},
            doc! {"$set": {"s": "z", "sub.x": 5}, "$unset": {"gone": ""}, "$inc": {"n": 10}},
        )
        .run()
        .expect("update_one");
    assert_eq!((r.matched_count, r.modified_count, r.upserted_id), (1, 1, None));
    let got = coll.find_one(doc! {"_id": 1}).run().expect("find").expect("doc");
    assert_eq!(got, doc! {"_id": 1, "n": 11, "s": "z", "sub": {"x": 5}});
    // Updates keep the existing field order and append new fields.
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), vec!["_id", "n", "s", "sub"]);

    // $inc keeps integer types: int32 + int32 stays int32; + double becomes double.
    coll.update_one(doc! {"_id": 2}, doc! {"$inc": {"n": 1, "new": 2}}).run().expect("inc");
    let got = coll.find_one(doc! {"_id": 2}).run().expect("find").expect("doc");
    assert_eq!(got.get("n"), Some(&Bson::Int32(3)));
    assert_eq!(got.get("new"), Some(&Bson::Int32(2)));
    coll.update_one(doc! {"_id": 2}, doc! {"$inc": {"n": 0.5}}).run().expect("inc");
    let got = coll.find_one(doc! {"_id": 2}).run().expect("find").expect("doc");
    assert_eq!(got.get("n"), Some(&Bson::Double(3.5)));

    let r = coll.update_many(doc! {"s": "b"}, doc! {"$set": {"t": 1}}).run().expect("many");
    assert_eq!((r.matched_count, r.modified_count), (2, 2));
    // Setting the same value again matches but modifies nothing.
    let r = coll.update_many(doc! {"s": "b"}, doc! {"$set": {"t": 1}}).run().expect("noop");
    assert_eq!((r.matched_count, r.modified_count), (2, 0));
    let r = coll.update_one(doc! {"_id": 99}, doc! {"$set": {"t": 1}}).run().expect("nomatch");
    assert_eq!((r.matched_count, r.modified_count, r.upserted_id), (0, 0, None));
}

#[test]
fn upserts_report_upserted_id() {
    let env = common::start();
    let coll = env.coll("upsert");
    let r = coll
        .update_one(doc! {"_id": 100, "k": "x"}, doc! {"$set": {"v": 1}})
        .upsert(true)
        .run()
        .expect("upsert");
    assert_eq!((r.matched_count, r.modified_count), (0, 0));
    assert_eq!(r.upserted_id, Some(Bson::Int32(100)));
    let got = coll.find_one(doc! {"_id": 100}).run().expect("find").expect("doc");
    assert_eq!(got, doc! {"_id": 100, "k": "x", "v": 1});

    let r = coll.update_one(doc! {"k": "y"}, doc! {"$inc": {"v": 3}}).upsert(true).run().expect("upsert");
    let oid = match r.upserted_id {
        Some(Bson::ObjectId(o)) => o,
        other => panic!("expected an ObjectId upserted_id, got {other:?}"),
    };
    let got = coll.find_one(doc! {"k": "y"}).run().expect("find").expect("doc");
    assert_eq!(got, doc! {"_id": oid, "k": "y", "v": 3});

    // A second upsert with the same filter now matches.
    let r = coll.update_one(doc! {"k": "y"}, doc! {"$inc": {"v": 3}}).upsert(true).run().expect("upsert");
    assert_eq!((r.matched_count, r.modified_count, r.upserted_id), (1, 1, None));

    let r = coll.replace_one(doc! {"_id": 200}, doc! {"r": 1}).upsert(true).run().expect("replace upsert");
    assert_eq!(r.upserted_id, Some(Bson::Int32(200)));
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 3);
}

#[test]
fn replace_one_keeps_id() {
    let env = common::start();
    let coll = env.coll("repl");
    let id = ObjectId::new();
    coll.insert_one(doc! {"_id": id, "a": 1, "b": 2}).run().expect("insert");
    let r = coll.replace_one(doc! {"a": 1}, doc! {"c": 3}).run().expect("replace");
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(all(&coll), vec![doc! {"_id": id, "c": 3}]);
    let r = coll.replace_one(doc! {"_id": id}, doc! {"c": 3}).run().expect("same");
    assert_eq!((r.matched_count, r.modified_count), (1, 0));
    // Replacing with a different _id is an immutable-field error.
    let err = coll.replace_one(doc! {"_id": id}, doc! {"_id": 1, "c": 4}).run().expect_err("_id");
    assert_eq!(write_error_code(&err), 66);
}

#[test]
fn update_errors_type_mismatch_and_immutable_id() {
    let env = common::start();
    let coll = env.coll("upderr");
    coll.insert_one(doc! {"_id": 1, "s": "text", "n": 1}).run().expect("insert");

    let err = coll.update_one(doc! {"_id": 1}, doc! {"$inc": {"s": 1}}).run().expect_err("$inc");
    assert_eq!(write_error_code(&err), 14, "TypeMismatch: {err}");
    let err = coll.update_one(doc! {"_id": 1}, doc! {"$set": {"_id": 2}}).run().expect_err("_id");
    assert_eq!(write_error_code(&err), 66, "ImmutableField: {err}");
    // Nothing changed.
    assert_eq!(all(&coll), vec![doc! {"_id": 1, "s": "text", "n": 1}]);

    // Raw shape: ok 1 with a writeErrors entry, nModified 0.
    let db = env.client.database(coll.namespace().db.as_str());
    let r = db
        .run_command(doc! {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"s": 1}}}]})
        .run()
        .expect("update command");
    assert_ok(&r);
    assert_eq!(r.get("n"), Some(&Bson::Int32(0)), "{r}");
    assert_eq!(r.get("nModified"), Some(&Bson::Int32(0)), "{r}");
    let we = r.get_array("writeErrors").expect("writeErrors");
    let e = we[0].as_document().expect("doc");
    assert_eq!(e.get("index"), Some(&Bson::Int32(0)), "{e}");
    assert_eq!(e.get("code"), Some(&Bson::Int32(14)), "{e}");
}

#[test]
fn delete_one_and_many() {
    let env = common::start();
    let coll = env.coll("del");
    seed_twenty(&coll);
    let r = coll.delete_one(doc! {"a": 0}).run().expect("delete_one");
    assert_eq!(r.deleted_count, 1);
    // delete_one removes the first match in natural order.
    assert!(coll.find_one(doc! {"_id": 0}).run().expect("find").is_none());
    assert!(coll.find_one(doc! {"_id": 5}).run().expect("find").is_some());
    let r = coll.delete_many(doc! {"a": {"$in": [0, 1]}}).run().expect("delete_many");
    assert_eq!(r.deleted_count, 7);
    let r = coll.delete_many(doc! {"a": 42}).run().expect("delete none");
    assert_eq!(r.deleted_count, 0);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 12);
    let r = coll.delete_many(doc! {}).run().expect("delete all");
    assert_eq!(r.deleted_count, 12);
    assert!(all(&coll).is_empty());
}

#[test]
fn find_one_and_modify_family() {
    let env = common::start();
    let coll = env.coll("fam");
    coll.insert_many(vec![
        doc! {"_id": 1, "q": "a", "v": 1},
        doc! {"_id": 2, "q": "a", "v": 2},
        doc! {"_id": 3, "q": "b", "v": 3},
    ])
    .run()
    .expect("seed");

    let before =
        coll.find_one_and_update(doc! {"_id": 1}, doc! {"$inc": {"v": 10}}).run().expect("fau").expect("doc");
    assert_eq!(before, doc! {"_id": 1, "q": "a", "v": 1});
    let after = coll
        .find_one_and_update(doc! {"q": "a"}, doc! {"$set": {"w": true}})
        .sort(doc! {"v": -1})
        .return_document(ReturnDocument::After)
        .run()
        .expect("fau")
        .expect("doc");
    assert_eq!(after, doc! {"_id": 1, "q": "a", "v": 11, "w": true});
    let projected = coll
        .find_one_and_update(doc! {"_id": 2}, doc! {"$set": {"v": 20}})
        .projection(doc! {"v": 1, "_id": 0})
        .return_document(ReturnDocument::After)
        .run()
        .expect("fau")
        .expect("doc");
    assert_eq!(projected, doc! {"v": 20});
    assert!(coll
        .find_one_and_update(doc! {"_id": 42}, doc! {"$set": {"v": 0}})
        .run()
        .expect("fau")
        .is_none());
    let upserted = coll
        .find_one_and_update(doc! {"_id": 42}, doc! {"$set": {"v": 0}})
        .upsert(true)
        .return_document(ReturnDocument::After)
        .run()
        .expect("fau")
        .expect("doc");
    assert_eq!(upserted, doc! {"_id": 42, "v": 0});

    let replaced_before =
        coll.find_one_and_replace(doc! {"_id": 3}, doc! {"r": 1}).run().expect("far").expect("doc");
    assert_eq!(replaced_before, doc! {"_id": 3, "q": "b", "v": 3});
    let replaced_after = coll
        .find_one_and_replace(doc! {"_id": 3}, doc! {"r": 2})
        .return_document(ReturnDocument::After)
        .run()
        .expect("far")
        .expect("doc");
    assert_eq!(replaced_after, doc! {"_id": 3, "r": 2});

    let deleted =
        coll.find_one_and_delete(doc! {"q": "a"}).sort(doc! {"_id": -1}).run().expect("fad").expect("doc");
    assert_eq!(deleted.get_i32("_id").expect("_id"), 2);
    assert!(coll.find_one(doc! {"_id": 2}).run().expect("find").is_none());
    assert!(coll.find_one_and_delete(doc! {"q": "zzz"}).run().expect("fad").is_none());
    assert_eq!(int_ids(&ids(&coll)), vec![1, 3, 42]);

    // A failing update inside findAndModify surfaces the server's code.
    let err = coll
        .find_one_and_update(doc! {"_id": 3}, doc! {"$inc": {"r": "x"}})
        .run()
        .expect_err("$inc with a string operand");
    let (code, name, _) = common::command_error(&err);
    assert_eq!((code, name.as_str()), (14, "TypeMismatch"), "{err}");
}

#[test]
fn counts_and_distinct() {
    let env = common::start();
    let coll = env.coll("count");
    seed_twenty(&coll);
    assert_eq!(coll.count_documents(doc! {}).run().expect("count"), 20);
    assert_eq!(coll.count_documents(doc! {"a": 1}).run().expect("count"), 4);
    assert_eq!(coll.count_documents(doc! {"a": {"$lt": 2}}).skip(3).limit(4).run().expect("count"), 4);
    assert_eq!(coll.count_documents(doc! {"a": {"$lt": 2}}).skip(6).run().expect("count"), 2);
    assert_eq!(coll.estimated_document_count().run().expect("estimate"), 20);

    let mut a = coll.distinct("a", doc! {}).run().expect("distinct");
    a.sort_by_key(|b| b.as_i32().expect("int"));
    assert_eq!(a, vec![Bson::Int32(0), Bson::Int32(1), Bson::Int32(2), Bson::Int32(3), Bson::Int32(4)]);
    let d = coll.distinct("c.d", doc! {"a": 4}).run().expect("distinct");
    let mut d: Vec<i32> = d.iter().map(|b| b.as_i32().expect("int")).collect();
    d.sort();
    assert_eq!(d, vec![40, 90, 140, 190]);

    // Arrays contribute their elements, not themselves.
    let tags = env.coll("tags");
    tags.insert_many(vec![
        doc! {"t": ["a", "b"]},
        doc! {"t": "c"},
        doc! {"t": ["a"]},
        doc! {"x": 1},
        doc! {"t": []},
    ])
    .run()
    .expect("seed");
    let mut t: Vec<String> = tags
        .distinct("t", doc! {})
        .run()
        .expect("distinct")
        .iter()
        .map(|b| b.as_str().expect("string").to_string())
        .collect();
    t.sort();
    assert_eq!(t, vec!["a", "b", "c"]);
    assert!(tags.distinct("nothing", doc! {}).run().expect("distinct").is_empty());
}
