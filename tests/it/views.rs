//! Views: `create` with viewOn/pipeline stores the definition in `system.views`; reads run the
//! view's pipeline first (views on views too); writes fail with 166; drop and collMod work.

use crate::common::{self, assert_command_error, command_error};
use mongodb::bson::{doc, Bson, Document};

#[test]
fn views_read_through_their_pipeline() {
    let env = common::start();
    let db = env.db("views");
    let coll = db.collection::<Document>("orders");
    coll.insert_many(
        (1..=6)
            .map(|i| doc! {"_id": i, "qty": i * 10, "status": if i % 2 == 0 { "A" } else { "B" }})
            .collect::<Vec<_>>(),
    )
    .run()
    .unwrap();
    db.run_command(doc! {"create": "aOrders", "viewOn": "orders", "pipeline": [{"$match": {"status": "A"}}, {"$project": {"status": 0}}]})
        .run()
        .unwrap();
    // A view on the view.
    db.run_command(
        doc! {"create": "bigA", "viewOn": "aOrders", "pipeline": [{"$match": {"qty": {"$gt": 20}}}]},
    )
    .run()
    .unwrap();

    let view = db.collection::<Document>("aOrders");
    let all: Vec<Document> =
        view.find(doc! {}).sort(doc! {"_id": -1}).run().unwrap().map(|d| d.unwrap()).collect();
    assert_eq!(all, vec![doc! {"_id": 6, "qty": 60}, doc! {"_id": 4, "qty": 40}, doc! {"_id": 2, "qty": 20}]);
    let some: Vec<Document> = view
        .find(doc! {"qty": {"$gte": 40}})
        .projection(doc! {"_id": 1})
        .limit(1)
        .sort(doc! {"_id": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(some, vec![doc! {"_id": 4}]);
    assert_eq!(view.count_documents(doc! {}).run().unwrap(), 3);
    let n = db.run_command(doc! {"count": "aOrders", "query": {"qty": {"$lt": 50}}}).run().unwrap();
    assert_eq!(n.get("n"), Some(&Bson::Int32(2)));
    let distinct = view.distinct("qty", doc! {}).run().unwrap();
    assert_eq!(distinct, vec![Bson::Int32(20), Bson::Int32(40), Bson::Int32(60)]);
    let agg: Vec<Document> = db
        .collection::<Document>("bigA")
        .aggregate(vec![doc! {"$group": {"_id": null, "total": {"$sum": "$qty"}}}])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(agg, vec![doc! {"_id": Bson::Null, "total": 100}]);

    // listCollections shows the views with their definitions, and system.views.
    let list: Vec<Document> = db
        .list_collections()
        .run()
        .unwrap()
        .map(|d| mongodb::bson::to_document(&d.unwrap()).unwrap())
        .collect();
    let a = list.iter().find(|d| d.get_str("name") == Ok("aOrders")).expect("view listed");
    assert_eq!(a.get_str("type").unwrap(), "view");
    assert_eq!(a.get_document("options").unwrap().get_str("viewOn").unwrap(), "orders");
    assert!(list.iter().any(|d| d.get_str("name") == Ok("system.views")));
    let defs: Vec<Document> =
        db.collection::<Document>("system.views").find(doc! {}).run().unwrap().map(|d| d.unwrap()).collect();
    let name = format!("{}.aOrders", db.name());
    assert!(defs
        .iter()
        .any(|d| d.get_str("_id") == Ok(name.as_str()) && d.get_str("viewOn") == Ok("orders")));
}

#[test]
fn views_refuse_writes_and_can_be_changed_and_dropped() {
    let env = common::start();
    let db = env.db("views_w");
    db.collection::<Document>("base")
        .insert_many(vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 2}])
        .run()
        .unwrap();
    db.run_command(doc! {"create": "v", "viewOn": "base", "pipeline": [{"$match": {"x": 1}}]}).run().unwrap();
    let v = db.collection::<Document>("v");
    let e = v.insert_one(doc! {"x": 3}).run().unwrap_err();
    assert_eq!(command_error(&e).0, 166);
    assert_eq!(command_error(&v.update_one(doc! {}, doc! {"$set": {"x": 5}}).run().unwrap_err()).0, 166);
    assert_eq!(command_error(&v.delete_many(doc! {}).run().unwrap_err()).0, 166);
    assert_eq!(command_error(&v.find_one_and_delete(doc! {}).run().unwrap_err()).0, 166);
    assert_command_error(
        db.run_command(doc! {"createIndexes": "v", "indexes": [{"key": {"x": 1}, "name": "x_1"}]}).run(),
        166,
        "CommandNotSupportedOnView",
    );
    // Existing names and bad pipelines are refused.
    assert_command_error(db.run_command(doc! {"create": "v", "viewOn": "base"}).run(), 48, "NamespaceExists");
    assert_command_error(db.run_command(doc! {"create": "base", "viewOn": "v"}).run(), 48, "NamespaceExists");
    assert_command_error(
        db.run_command(doc! {"create": "w", "viewOn": "base", "pipeline": [{"$out": "x"}]}).run(),
        167,
        "OptionNotSupportedOnView",
    );
    // collMod gives the view a new pipeline.
    db.run_command(doc! {"collMod": "v", "viewOn": "base", "pipeline": [{"$match": {"x": 2}}]})
        .run()
        .unwrap();
    let docs: Vec<Document> = v.find(doc! {}).run().unwrap().map(|d| d.unwrap()).collect();
    assert_eq!(docs, vec![doc! {"_id": 2, "x": 2}]);
    db.collection::<Document>("v").drop().run().unwrap();
    assert_eq!(v.find(doc! {}).run().unwrap().count(), 0);
    assert!(!db.list_collection_names().run().unwrap().contains(&"v".to_string()));
    // The name is free again.
    db.run_command(doc! {"create": "v"}).run().unwrap();
}

/// A view's default collation comes from `create` (never from its collection); reads use it
/// and may not ask for another one (167).
#[test]
fn views_have_their_own_default_collation() {
    let env = common::start();
    let db = env.db("view_collation");
    let places = db.collection::<Document>("places");
    places
        .insert_many(vec![
            doc! { "_id": 1, "category": "café" },
            doc! { "_id": 2, "category": "cafe" },
            doc! { "_id": 3, "category": "cafE" },
        ])
        .run()
        .unwrap();
    let fr = doc! { "locale": "fr", "strength": 1 };
    db.run_command(doc! { "create": "pv", "viewOn": "places", "pipeline": [{ "$project": { "category": 1 } }], "collation": fr.clone() })
        .run()
        .unwrap();
    let pv = db.collection::<Document>("pv");
    assert_eq!(pv.count_documents(doc! { "category": "cafe" }).run().unwrap(), 3);
    assert_eq!(pv.find(doc! { "category": "cafe" }).run().unwrap().count(), 3);
    let agg = pv.aggregate(vec![doc! { "$match": { "category": "cafe" } }]).run().unwrap().count();
    assert_eq!(agg, 3);
    assert_eq!(pv.distinct("category", doc! { "category": "CAFE" }).run().unwrap().len(), 3);
    // Repeating the view's collation is fine; another one is refused.
    let same = mongodb::options::Collation::builder()
        .locale("fr")
        .strength(mongodb::options::CollationStrength::Primary)
        .build();
    assert_eq!(pv.find(doc! { "category": "cafe" }).collation(same).run().unwrap().count(), 3);
    let en = mongodb::options::Collation::builder().locale("en").build();
    let err = pv.find(doc! {}).collation(en.clone()).run().map(|c| c.count()).unwrap_err();
    assert_eq!(common::command_error(&err).0, 167);
    let err = pv.count_documents(doc! {}).collation(en).run().unwrap_err();
    assert_eq!(common::command_error(&err).0, 167);
    // A view without a collation compares binary even over a collection that has one.
    db.run_command(doc! { "create": "ci", "collation": { "locale": "en", "strength": 2 } }).run().unwrap();
    let ci = db.collection::<Document>("ci");
    ci.insert_many(vec![doc! { "c": "cafe" }, doc! { "c": "CAFE" }]).run().unwrap();
    db.run_command(doc! { "create": "civ", "viewOn": "ci", "pipeline": [] }).run().unwrap();
    assert_eq!(ci.count_documents(doc! { "c": "cafe" }).run().unwrap(), 2);
    assert_eq!(db.collection::<Document>("civ").count_documents(doc! { "c": "cafe" }).run().unwrap(), 1);
    // A view on a view keeps that view's collation.
    let r = db.run_command(doc! { "create": "pv2", "viewOn": "pv", "pipeline": [] }).run();
    assert_eq!(common::command_error(&r.unwrap_err()).0, 167);
    db.run_command(doc! { "create": "pv3", "viewOn": "pv", "pipeline": [], "collation": fr }).run().unwrap();
    let specs = db.list_collections().filter(doc! { "name": "pv" }).run().unwrap().next().unwrap().unwrap();
    assert_eq!(specs.options.collation.map(|c| c.locale), Some("fr".to_string()));
}
