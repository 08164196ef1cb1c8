//! Databases and collections: listing, creating, dropping, renaming, and stats.

use crate::common::{self, assert_command_error, assert_ok, num};
use mongodb::bson::{doc, Bson, Document};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn list_database_and_collection_names() {
    let env = common::start();
    let db1 = env.db("cat_a");
    let db2 = env.db("cat_b");
    let names = env.client.list_database_names().run().expect("list dbs");
    assert!(!names.contains(&db1.name().to_string()), "not created yet: {names:?}");

    db1.collection::<Document>("x").insert_one(doc! {"a": 1}).run().expect("insert");
    db1.collection::<Document>("y").insert_one(doc! {"a": 1}).run().expect("insert");
    db2.collection::<Document>("z").insert_one(doc! {"a": 1}).run().expect("insert");
    let names = env.client.list_database_names().run().expect("list dbs");
    assert!(names.contains(&db1.name().to_string()), "{names:?}");
    assert!(names.contains(&db2.name().to_string()), "{names:?}");
    assert_eq!(sorted(db1.list_collection_names().run().expect("list")), vec!["x", "y"]);
    assert_eq!(db2.list_collection_names().run().expect("list"), vec!["z"]);

    // Raw listDatabases shape.
    let r = env.admin_cmd(doc! {"listDatabases": 1}).expect("listDatabases");
    assert_ok(&r);
    let dbs = r.get_array("databases").expect("databases");
    let entry = dbs
        .iter()
        .filter_map(Bson::as_document)
        .find(|d| d.get_str("name") == Ok(db1.name()))
        .expect("db1 listed");
    assert!(num(entry, "sizeOnDisk") >= 0, "{entry}");
    assert_eq!(entry.get("empty"), Some(&Bson::Boolean(false)), "{entry}");
    assert!(r.contains_key("totalSize"), "{r}");
    let r = env.admin_cmd(doc! {"listDatabases": 1, "nameOnly": true}).expect("listDatabases nameOnly");
    let first = r.get_array("databases").expect("databases")[0].as_document().expect("doc").clone();
    assert_eq!(first.keys().collect::<Vec<_>>(), vec!["name"], "nameOnly: {first}");

    // Raw listCollections shape.
    let r = db1.run_command(doc! {"listCollections": 1}).run().expect("listCollections");
    assert_ok(&r);
    let c = r.get_document("cursor").expect("cursor");
    assert_eq!(c.get("id"), Some(&Bson::Int64(0)));
    assert_eq!(c.get_str("ns").expect("ns"), format!("{}.$cmd.listCollections", db1.name()));
    let batch = c.get_array("firstBatch").expect("firstBatch");
    assert_eq!(batch.len(), 2);
    for e in batch {
        let e = e.as_document().expect("doc");
        assert_eq!(e.get_str("type").expect("type"), "collection", "{e}");
        assert!(e.get_document("options").is_ok(), "{e}");
        let info = e.get_document("info").expect("info");
        assert_eq!(info.get("readOnly"), Some(&Bson::Boolean(false)), "{e}");
        assert!(matches!(info.get("uuid"), Some(Bson::Binary(b)) if b.bytes.len() == 16), "{e}");
        assert_eq!(
            e.get_document("idIndex").expect("idIndex"),
            &doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}
        );
    }
    // A filter on the name.
    let r = db1.run_command(doc! {"listCollections": 1, "filter": {"name": "y"}}).run().expect("filtered");
    let batch = r.get_document("cursor").expect("cursor").get_array("firstBatch").expect("batch");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].as_document().expect("doc").get_str("name"), Ok("y"));
}

#[test]
fn create_collection_and_namespace_exists() {
    let env = common::start();
    let db = env.db("create");
    db.create_collection("c").run().expect("create");
    assert_eq!(db.list_collection_names().run().expect("list"), vec!["c"]);
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).run().expect("count"), 0);
    assert_command_error(db.create_collection("c").run(), 48, "NamespaceExists");
    // Creating a collection makes the database visible.
    let names = env.client.list_database_names().run().expect("dbs");
    assert!(names.contains(&db.name().to_string()), "{names:?}");
    // Invalid names are rejected.
    let err = db.run_command(doc! {"create": ""}).run().expect_err("empty name");
    assert_eq!(common::command_error(&err).0, 73, "InvalidNamespace: {err}");
}

#[test]
fn drop_collection_and_database() {
    let env = common::start();
    let db = env.db("drop");
    let a = db.collection::<Document>("a");
    let b = db.collection::<Document>("b");
    a.insert_many(vec![doc! {"x": 1}, doc! {"x": 2}]).run().expect("insert");
    b.insert_one(doc! {"y": 1}).run().expect("insert");
    a.create_index(mongodb::IndexModel::builder().keys(doc! {"x": 1}).build()).run().expect("idx");

    a.drop().run().expect("drop a");
    assert_eq!(db.list_collection_names().run().expect("list"), vec!["b"]);
    assert_eq!(a.count_documents(doc! {}).run().expect("count"), 0);
    // Recreated collections start empty, with only the _id index.
    a.insert_one(doc! {"x": 3}).run().expect("insert");
    let idx = a.list_index_names().run().expect("indexes");
    assert_eq!(idx, vec!["_id_"]);
    assert_eq!(a.count_documents(doc! {}).run().expect("count"), 1);

    let r = db.run_command(doc! {"drop": "b"}).run().expect("drop command");
    assert_ok(&r);
    assert_eq!(num(&r, "nIndexesWas"), 1, "{r}");
    assert_eq!(r.get_str("ns").expect("ns"), format!("{}.b", db.name()));

    db.drop().run().expect("drop db");
    assert!(db.list_collection_names().run().expect("list").is_empty());
    let names = env.client.list_database_names().run().expect("dbs");
    assert!(!names.contains(&db.name().to_string()), "{names:?}");
    assert_eq!(a.count_documents(doc! {}).run().expect("count"), 0);
}

#[test]
fn rename_collection() {
    let env = common::start();
    let db = env.db("rename");
    let dbn = db.name().to_string();
    let src = db.collection::<Document>("src");
    src.insert_many((0..50).map(|i| doc! {"_id": i, "k": i * 2})).run().expect("seed");
    src.create_index(mongodb::IndexModel::builder().keys(doc! {"k": 1}).build()).run().expect("idx");

    let r = env
        .admin_cmd(doc! {"renameCollection": format!("{dbn}.src"), "to": format!("{dbn}.dst")})
        .expect("rename");
    assert_ok(&r);
    assert_eq!(sorted(db.list_collection_names().run().expect("list")), vec!["dst"]);
    let dst = db.collection::<Document>("dst");
    assert_eq!(dst.count_documents(doc! {}).run().expect("count"), 50);
    assert_eq!(sorted(dst.list_index_names().run().expect("idx")), vec!["_id_", "k_1"]);
    assert_eq!(
        dst.find_one(doc! {"k": 42}).run().expect("find"),
        Some(doc! {"_id": 21, "k": 42}),
        "the moved index serves queries"
    );

    // Source missing: NamespaceNotFound.
    assert_command_error(
        env.admin_cmd(doc! {"renameCollection": format!("{dbn}.src"), "to": format!("{dbn}.x")}),
        26,
        "NamespaceNotFound",
    );
    // Target exists: NamespaceExists unless dropTarget.
    let other = db.collection::<Document>("other");
    other.insert_one(doc! {"o": 1}).run().expect("insert");
    assert_command_error(
        env.admin_cmd(doc! {"renameCollection": format!("{dbn}.other"), "to": format!("{dbn}.dst")}),
        48,
        "NamespaceExists",
    );
    assert_eq!(dst.count_documents(doc! {}).run().expect("count"), 50);
    env.admin_cmd(doc! {
        "renameCollection": format!("{dbn}.other"),
        "to": format!("{dbn}.dst"),
        "dropTarget": true,
    })
    .expect("rename with dropTarget");
    assert_eq!(sorted(db.list_collection_names().run().expect("list")), vec!["dst"]);
    let left: Vec<Document> =
        dst.find(doc! {}).projection(doc! {"_id": 0}).run().expect("find").map(|d| d.expect("d")).collect();
    assert_eq!(left, vec![doc! {"o": 1}]);

    // renameCollection must run against admin.
    let err = db
        .run_command(doc! {"renameCollection": format!("{dbn}.dst"), "to": format!("{dbn}.z")})
        .run()
        .expect_err("not on admin");
    assert_eq!(common::command_error(&err).0, 13, "Unauthorized outside admin: {err}");
}

#[test]
fn coll_stats_and_db_stats() {
    let env = common::start();
    let db = env.db("stats");
    let a = db.collection::<Document>("a");
    let b = db.collection::<Document>("b");
    a.insert_many((0..30).map(|i| doc! {"i": i, "s": "x".repeat(100)})).run().expect("seed");
    b.insert_many((0..5).map(|i| doc! {"i": i})).run().expect("seed");
    a.create_index(mongodb::IndexModel::builder().keys(doc! {"i": 1}).build()).run().expect("idx");

    let cs = db.run_command(doc! {"collStats": "a"}).run().expect("collStats");
    assert_ok(&cs);
    assert_eq!(cs.get_str("ns").expect("ns"), format!("{}.a", db.name()));
    assert_eq!(num(&cs, "count"), 30, "{cs}");
    assert_eq!(num(&cs, "nindexes"), 2, "{cs}");
    assert!(num(&cs, "size") >= 30 * 100, "size counts document bytes: {cs}");
    assert_eq!(num(&cs, "avgObjSize"), num(&cs, "size") / 30, "{cs}");
    let sizes = cs.get_document("indexSizes").expect("indexSizes");
    let mut idx: Vec<&String> = sizes.keys().collect();
    idx.sort();
    assert_eq!(idx, vec!["_id_", "i_1"], "{cs}");

    let ds = db.run_command(doc! {"dbStats": 1}).run().expect("dbStats");
    assert_ok(&ds);
    assert_eq!(ds.get_str("db").expect("db"), db.name());
    assert_eq!(num(&ds, "collections"), 2, "{ds}");
    assert_eq!(num(&ds, "objects"), 35, "{ds}");
    assert_eq!(num(&ds, "indexes"), 3, "{ds}");
    assert!(num(&ds, "dataSize") >= 30 * 100, "{ds}");

    a.delete_many(doc! {"i": {"$lt": 10}}).run().expect("delete");
    let cs = db.run_command(doc! {"collStats": "a"}).run().expect("collStats");
    assert_eq!(num(&cs, "count"), 20, "{cs}");
    let ds = db.run_command(doc! {"dbStats": 1}).run().expect("dbStats");
    assert_eq!(num(&ds, "objects"), 25, "{ds}");

    // Stats of a database that does not exist are zeros, not an error.
    let empty = env.db("nostats").run_command(doc! {"dbStats": 1}).run().expect("dbStats");
    assert_eq!(num(&empty, "collections"), 0, "{empty}");
    assert_eq!(num(&empty, "objects"), 0, "{empty}");
}

/// A failed write still reports a write concern one node cannot satisfy, as mongod does.
#[test]
fn failed_writes_still_report_unsatisfiable_write_concerns() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("wcefail");
    db.create_collection("a").run().unwrap();
    db.create_collection("b").run().unwrap();
    let ns = |c: &str| format!("{}.{c}", db.name());
    let reply = crate::common::raw::command(
        env.server.addr(),
        &doc! { "renameCollection": ns("a"), "to": ns("b"), "writeConcern": { "w": 2 }, "$db": "admin" },
    );
    assert_eq!(reply.get_i32("code").unwrap(), 48, "{reply}");
    assert_eq!(reply.get_document("writeConcernError").unwrap().get_i32("code").unwrap(), 100, "{reply}");
}

/// `clusteredIndex` is kept as mongod stores it and listed as the collection's `_id` index.
#[test]
fn clustered_index_option_is_listed() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("clustered");
    db.run_command(
        doc! { "create": "c", "clusteredIndex": { "key": { "_id": 1 }, "unique": true, "name": "ix" } },
    )
    .run()
    .unwrap();
    let idx = db.run_command(doc! { "listIndexes": "c" }).run().unwrap();
    let first = idx.get_document("cursor").unwrap().get_array("firstBatch").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(first.get_str("name").unwrap(), "ix");
    assert_eq!(first.get_bool("clustered"), Ok(true));
    let cols = db.run_command(doc! { "listCollections": 1, "filter": { "name": "c" } }).run().unwrap();
    let info = cols.get_document("cursor").unwrap().get_array("firstBatch").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    let ci = info.get_document("options").unwrap().get_document("clusteredIndex").unwrap();
    assert_eq!(ci.get_i32("v"), Ok(2));
    let err = db
        .run_command(doc! { "create": "d", "clusteredIndex": { "key": { "a": 1 }, "unique": true } })
        .run()
        .unwrap_err();
    assert_eq!(crate::common::command_error(&err).0, 197);
}

#[test]
fn time_series_collections_keep_measurements_without_an_id_index() {
    let env = common::start();
    let db = env.db("ts");
    db.run_command(doc! {"create": "m", "timeseries": {"timeField": "t", "metaField": "sensor"}})
        .run()
        .expect("create time-series");
    let listed = db.run_command(doc! {"listCollections": 1, "filter": {"name": "m"}}).run().expect("list");
    let entry = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch")[0]
        .as_document()
        .expect("entry")
        .clone();
    assert_eq!(entry.get_str("type"), Ok("timeseries"), "{entry}");
    let ts = entry.get_document("options").and_then(|o| o.get_document("timeseries")).expect("options");
    assert_eq!(ts.get_str("timeField"), Ok("t"), "{ts}");
    assert_eq!(ts.get_str("metaField"), Ok("sensor"), "{ts}");
    assert_eq!(ts.get_str("granularity"), Ok("seconds"), "{ts}");
    assert_eq!(ts.get("bucketMaxSpanSeconds"), Some(&Bson::Int32(3600)), "{ts}");

    // The automatic index on {metaField, timeField}, and no `_id` index.
    let coll = db.collection::<Document>("m");
    let names = coll.list_index_names().run().expect("indexes");
    assert_eq!(names, vec!["sensor_1_t_1"]);

    // `_id` is not unique in a time-series collection.
    let when = mongodb::bson::DateTime::from_millis(1_552_949_630_483);
    coll.insert_many(vec![doc! {"_id": 1, "t": when, "sensor": 1}, doc! {"_id": 1, "t": when, "sensor": 2}])
        .run()
        .expect("duplicate _id accepted");
    assert_eq!(coll.count_documents(doc! {"_id": 1}).run().expect("count"), 2);
    assert_eq!(coll.find_one(doc! {"sensor": 2}).run().expect("find").expect("found").get_i32("_id"), Ok(1));

    // Each measurement needs its time as a date.
    let e = coll.insert_one(doc! {"sensor": 3, "t": "yesterday"}).run().expect_err("string time");
    assert_eq!(common::write_error_code(&e), 2);
    let e = coll.insert_one(doc! {"sensor": 3}).run().expect_err("missing time");
    assert_eq!(common::write_error_code(&e), 2);

    for (bad, code) in [
        (doc! {"timeField": "t", "metaField": "t"}, 72),
        (doc! {"metaField": "m"}, 40414),
        (doc! {"timeField": "t", "granularity": "days"}, 2),
        (doc! {"timeField": "t", "bucketMaxSpanSeconds": 60}, 72),
    ] {
        let e = db.run_command(doc! {"create": "bad", "timeseries": bad.clone()}).run().expect_err("bad");
        assert_eq!(common::command_error(&e).0, code, "{bad}: {e}");
    }
    let e = db
        .run_command(doc! {"create": "bad", "timeseries": {"timeField": "t"}, "capped": true, "size": 1000})
        .run()
        .expect_err("capped time-series");
    assert_eq!(common::command_error(&e).0, 72, "{e}");
}
