//! Document validation (`validator`, `validationLevel`, `validationAction`), collMod, and
//! write concerns a single node cannot satisfy.

use crate::common::*;
use mongodb::bson::{doc, Bson};
use mongodb::options::WriteConcern;

#[test]
fn validator_rejects_and_bypass_allows() {
    let env = start();
    let db = env.db("val");
    db.run_command(doc! { "create": "c", "validator": { "a": { "$exists": true } } }).run().unwrap();
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_one(doc! { "_id": 1, "a": 1 }).run().unwrap();
    let err = c.insert_one(doc! { "_id": 2, "b": 1 }).run().unwrap_err();
    assert_eq!(write_error_code(&err), 121);
    // The raw reply carries errInfo with the failing _id.
    let raw = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 3 }] }).run().unwrap();
    let we = raw.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(we.get_i32("code").unwrap(), 121);
    assert_eq!(path(&we, "errInfo.failingDocumentId"), &Bson::Int32(3));
    let raw = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 4 }], "bypassDocumentValidation": true })
        .run()
        .unwrap();
    assert_eq!(raw.get_i32("n").unwrap(), 1);
    // Updates that break the rule fail too.
    let err = c.update_one(doc! { "_id": 1 }, doc! { "$unset": { "a": "" } }).run().unwrap_err();
    assert_eq!(write_error_code(&err), 121);
    assert_eq!(c.count_documents(doc! {}).run().unwrap(), 2);
}

#[test]
fn coll_mod_changes_level_and_action() {
    let env = start();
    let db = env.db("collmod");
    db.run_command(doc! { "create": "c", "validator": { "n": { "$gte": 0 } } }).run().unwrap();
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_one(doc! { "_id": 1, "n": 5 }).run().unwrap();
    assert_eq!(write_error_code(&c.insert_one(doc! { "n": -1 }).run().unwrap_err()), 121);
    db.run_command(doc! { "collMod": "c", "validationAction": "warn" }).run().unwrap();
    c.insert_one(doc! { "_id": 2, "n": -1 }).run().unwrap();
    db.run_command(doc! { "collMod": "c", "validationAction": "error", "validationLevel": "moderate" })
        .run()
        .unwrap();
    // Moderate: a document that already failed may still be updated.
    c.update_one(doc! { "_id": 2 }, doc! { "$set": { "n": -2 } }).run().unwrap();
    // But a valid one may not be made invalid.
    let err = c.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": -3 } }).run().unwrap_err();
    assert_eq!(write_error_code(&err), 121);
    let info = db.run_command(doc! { "listCollections": 1, "filter": { "name": "c" } }).run().unwrap();
    let first = path(&info, "cursor.firstBatch").as_array().unwrap()[0].as_document().unwrap().clone();
    assert_eq!(path(&first, "options.validationLevel"), &Bson::String("moderate".into()));
    assert_command_error(
        db.run_command(doc! { "collMod": "c", "validationLevel": "sometimes" }).run(),
        2,
        "BadValue",
    );
    assert_command_error(
        db.run_command(doc! { "collMod": "nope", "validationLevel": "off" }).run(),
        26,
        "NamespaceNotFound",
    );
}

#[test]
fn coll_mod_hides_an_index() {
    let env = start();
    let db = env.db("hide");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1 }).build()).run().unwrap();
    let r =
        db.run_command(doc! { "collMod": "c", "index": { "name": "a_1", "hidden": true } }).run().unwrap();
    assert!(!r.get_bool("hidden_old").unwrap());
    assert!(r.get_bool("hidden_new").unwrap());
    let specs: Vec<_> = c.list_indexes().run().unwrap().map(|i| i.unwrap()).collect();
    let a =
        specs.iter().find(|i| i.options.as_ref().and_then(|o| o.name.clone()) == Some("a_1".into())).unwrap();
    assert_eq!(a.options.as_ref().and_then(|o| o.hidden), Some(true));
}

#[test]
fn unsatisfiable_write_concern_is_reported_after_the_write() {
    let env = start();
    let db = env.db("wc");
    let raw = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }], "writeConcern": { "w": 2 } })
        .run()
        .unwrap();
    assert_eq!(raw.get_i32("n").unwrap(), 1);
    let wce = raw.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").unwrap(), 100);
    assert_eq!(wce.get_str("codeName").unwrap(), "UnsatisfiableWriteConcern");
    // The document is there all the same.
    let c = db.collection::<mongodb::bson::Document>("c");
    assert_eq!(c.count_documents(doc! {}).run().unwrap(), 1);
    // Through the driver it surfaces as a write-concern error.
    let wc = WriteConcern::builder().w(mongodb::options::Acknowledgment::Nodes(2)).build();
    let err = c.insert_one(doc! { "_id": 2 }).write_concern(wc).run().unwrap_err();
    assert!(
        matches!(
            *err.kind,
            mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(_))
        ),
        "{err}"
    );
    let raw = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 3 }], "writeConcern": { "w": "majority", "j": true } })
        .run()
        .unwrap();
    assert!(raw.get("writeConcernError").is_none());
}

#[test]
fn id_subdocuments_may_not_hold_dollar_fields() {
    let env = start();
    let c = env.coll("iddollar");
    let err = c.insert_one(doc! { "_id": { "$a": 1 } }).run().unwrap_err();
    assert_eq!(write_error_code(&err), 52);
    c.insert_one(doc! { "_id": { "a": { "b": 1 } } }).run().unwrap();
}

#[test]
fn regex_supports_lookaround_as_pcre_does() {
    let env = start();
    let c = env.coll("regex");
    c.insert_many(vec![doc! { "n": "system.x" }, doc! { "n": "users" }, doc! { "n": "abcabc" }])
        .run()
        .unwrap();
    let names = |f| -> Vec<String> {
        c.find(f).run().unwrap().map(|d| d.unwrap().get_str("n").unwrap().to_string()).collect()
    };
    assert_eq!(names(doc! { "n": { "$regex": "^(?!system\\.)" } }), vec!["users", "abcabc"]);
    assert_eq!(names(doc! { "n": { "$regex": "^(abc)\\1$" } }), vec!["abcabc"]);
    assert_eq!(names(doc! { "n": { "$regex": "^USERS$", "$options": "i" } }), vec!["users"]);
}

#[test]
fn positional_projection_uses_the_matched_element() {
    let env = start();
    let c = env.coll("posproj");
    c.insert_one(doc! { "_id": 1, "grades": [70, 87, 90] }).run().unwrap();
    let d = c
        .find_one(doc! { "grades": { "$gte": 85 } })
        .projection(doc! { "grades.$": 1 })
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(d, doc! { "_id": 1, "grades": [87] });
}

/// `$jsonSchema` as a collection validator and as a query operator.
#[test]
fn json_schema_validates_and_queries() {
    let env = start();
    let db = env.db("jsonschema");
    let schema = doc! {
        "bsonType": "object",
        "required": ["name", "year"],
        "properties": {
            "name": { "bsonType": "string", "description": "must be a string" },
            "year": { "bsonType": "int", "minimum": 2017, "maximum": 3017 },
            "gpa": { "bsonType": ["double"] },
            "address": {
                "bsonType": "object",
                "required": ["city"],
                "properties": { "city": { "bsonType": "string" } },
            },
        },
    };
    db.run_command(doc! { "create": "students", "validator": { "$jsonSchema": schema.clone() } })
        .run()
        .unwrap();
    let c = db.collection::<mongodb::bson::Document>("students");
    c.insert_one(doc! { "name": "Alice", "year": 2019, "gpa": 3.5, "address": { "city": "NYC" } })
        .run()
        .unwrap();
    for bad in [
        doc! { "name": "Bob" },
        doc! { "name": "Bob", "year": 2000 },
        doc! { "name": "Bob", "year": 2019, "gpa": 3 },
        doc! { "name": "Bob", "year": 2019, "address": { "street": "x" } },
        doc! { "name": 5, "year": 2019 },
    ] {
        let e = c.insert_one(bad.clone()).run().unwrap_err();
        assert_eq!(write_error_code(&e), 121, "{bad}");
    }
    assert_eq!(c.count_documents(doc! {}).run().unwrap(), 1);

    let q = db.collection::<mongodb::bson::Document>("q");
    q.insert_many(vec![
        doc! { "_id": 1, "x": 1, "tags": ["a", "b"] },
        doc! { "_id": 2, "x": "one" },
        doc! { "_id": 3, "tags": ["a", "a"] },
        doc! { "_id": 4, "x": 2.5, "extra": true },
    ])
    .run()
    .unwrap();
    let ids = |filter: mongodb::bson::Document| -> Vec<i32> {
        let mut v: Vec<i32> =
            q.find(filter).run().unwrap().map(|d| d.unwrap().get_i32("_id").unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(doc! { "$jsonSchema": { "required": ["x"], "properties": { "x": { "bsonType": "number" } } } }),
        vec![1, 4]
    );
    assert_eq!(
        ids(doc! { "$jsonSchema": { "properties": { "tags": { "uniqueItems": true } } } }),
        vec![1, 2, 4]
    );
    assert_eq!(
        ids(
            doc! { "$jsonSchema": { "properties": { "_id": {}, "x": {}, "tags": {} }, "additionalProperties": false } }
        ),
        vec![1, 2, 3]
    );
    assert_eq!(ids(doc! { "$jsonSchema": { "not": { "required": ["x"] } }, "_id": { "$gt": 1 } }), vec![3]);
    let e = q.find(doc! { "$jsonSchema": { "type": "integer" } }).run().map(|_| ()).unwrap_err();
    assert_eq!(command_error(&e).0, 9, "{e}");
}
