//! Geospatial support: 2d/2dsphere indexes (creation, listing, documents they refuse),
//! `$geoWithin`/`$geoIntersects`, `$near`/`$nearSphere` in find and the `$geoNear` stage.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Collection, Database};

/// One degree of longitude on the equator, in meters, on mongod's earth radius (6378100 m).
const DEGREE_M: f64 = 6_378_100.0 * std::f64::consts::PI / 180.0;

fn create(db: &Database, coll: &str, spec: Document) -> mongodb::error::Result<Document> {
    db.run_command(doc! { "createIndexes": coll, "indexes": [spec] }).run()
}

fn point(lng: f64, lat: f64) -> Document {
    doc! {"type": "Point", "coordinates": [lng, lat]}
}

fn find_ids(coll: &Collection<Document>, filter: Document) -> Vec<i32> {
    coll.find(filter).run().expect("find").map(|d| d.expect("doc").get_i32("_id").expect("_id")).collect()
}

/// Documents `_id: k` at longitude `k` on the equator, k = 0..5, plus one without a location.
fn equator(env: &Env, prefix: &str) -> (Database, Collection<Document>) {
    let db = env.db(prefix);
    let coll = db.collection::<Document>("places");
    let mut docs: Vec<Document> =
        (0..5).rev().map(|k| doc! {"_id": k, "loc": point(k as f64, 0.0), "even": k % 2 == 0}).collect();
    docs.push(doc! {"_id": 99, "even": true});
    coll.insert_many(docs).run().expect("insert");
    (db, coll)
}

#[test]
fn geo_indexes_are_created_and_listed_as_mongod_lists_them() {
    let env = start();
    let db = env.db("geoidx");
    assert_ok(&create(&db, "c", doc! {"key": {"loc": "2dsphere"}}).expect("2dsphere"));
    assert_ok(
        &create(&db, "c", doc! {"key": {"pos": "2d"}, "bits": 20, "min": -500, "max": 500}).expect("2d"),
    );
    assert_ok(&create(&db, "c", doc! {"key": {"cat": 1, "area": "2dsphere"}}).expect("compound"));
    let raw = db.run_command(doc! {"listIndexes": "c"}).run().expect("listIndexes");
    let batch = raw.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch").clone();
    let by_name = |n: &str| -> Document {
        batch
            .iter()
            .filter_map(Bson::as_document)
            .find(|d| d.get_str("name") == Ok(n))
            .cloned()
            .unwrap_or_else(|| panic!("no index {n} in {batch:?}"))
    };
    let sphere = by_name("loc_2dsphere");
    assert_eq!(sphere.get_document("key").expect("key"), &doc! {"loc": "2dsphere"});
    assert_eq!(sphere.get_i32("2dsphereIndexVersion"), Ok(3));
    let flat = by_name("pos_2d");
    assert_eq!(flat.get_i32("bits"), Ok(20));
    assert_eq!(flat.get_i32("min"), Ok(-500));
    assert!(!flat.contains_key("2dsphereIndexVersion"));
    by_name("cat_1_area_2dsphere");

    // What mongod refuses: two plugins, a 2d field that is not first, two 2d fields, bad bits.
    for bad in [
        doc! {"key": {"a": "2d", "b": "2dsphere"}},
        doc! {"key": {"a": 1, "b": "2d"}},
        doc! {"key": {"a": "2d", "b": "2d"}},
        doc! {"key": {"a": "2dsphere", "b": "hashed"}},
        doc! {"key": {"a": "2d"}, "bits": 40},
        doc! {"key": {"a": "2d"}, "min": 10, "max": 0},
        doc! {"key": {"a": "2dsphere"}, "2dsphereIndexVersion": 9},
    ] {
        assert_command_error(create(&db, "c", bad.clone()), 67, "CannotCreateIndex");
    }
}

#[test]
fn documents_without_valid_geometry_are_refused() {
    let env = start();
    let db = env.db("geobad");
    let coll = db.collection::<Document>("s");
    assert_ok(&create(&db, "s", doc! {"key": {"loc": "2dsphere"}}).expect("index"));
    coll.insert_one(doc! {"_id": 1, "loc": point(10.0, 20.0)}).run().expect("GeoJSON point");
    coll.insert_one(doc! {"_id": 2, "loc": [10, 20]}).run().expect("legacy pair");
    coll.insert_one(doc! {"_id": 3}).run().expect("no location");
    for (id, bad) in [
        (4, Bson::String("here".into())),
        (5, Bson::Document(point(200.0, 0.0))),
        (6, Bson::Document(doc! {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]})),
    ] {
        let e = coll.insert_one(doc! {"_id": id, "loc": bad}).run().expect_err("refused");
        assert_eq!(write_error_code(&e), 16755, "{e}");
    }
    let e = coll.update_one(doc! {"_id": 1}, doc! {"$set": {"loc": "nowhere"}}).run().expect_err("refused");
    assert_eq!(write_error_code(&e), 16755);
    assert_eq!(find_ids(&coll, doc! {}), vec![1, 2, 3]);

    let flat = db.collection::<Document>("f");
    assert_ok(&create(&db, "f", doc! {"key": {"pos": "2d"}}).expect("index"));
    flat.insert_one(doc! {"_id": 1, "pos": [179.5, -180]}).run().expect("in bounds");
    let e = flat.insert_one(doc! {"_id": 2, "pos": [180, 0]}).run().expect_err("max is excluded");
    assert_eq!(write_error_code(&e), 13027);
    let e = flat.insert_one(doc! {"_id": 3, "pos": ["a", "b"]}).run().expect_err("not a pair");
    assert_eq!(write_error_code(&e), 13026);

    // Building an index over a document it cannot index fails.
    let other = db.collection::<Document>("o");
    other.insert_one(doc! {"_id": 1, "loc": "x"}).run().expect("no index yet");
    let e = create(&db, "o", doc! {"key": {"loc": "2dsphere"}}).expect_err("bad document");
    assert_eq!(command_error(&e).0, 16755);
}

#[test]
fn ordinary_queries_never_use_a_geo_index() {
    let env = start();
    let (db, coll) = equator(&env, "geoplan");
    assert_ok(&create(&db, "places", doc! {"key": {"even": 1, "loc": "2dsphere"}}).expect("index"));
    assert_eq!(find_ids(&coll, doc! {"even": true}).len(), 4);
    let hinted: Vec<i32> = coll
        .find(doc! {"even": false})
        .hint(mongodb::options::Hint::Name("even_1_loc_2dsphere".into()))
        .run()
        .expect("find")
        .map(|d| d.expect("doc").get_i32("_id").expect("_id"))
        .collect();
    assert_eq!(hinted.len(), 2);
}

#[test]
fn geo_within_and_intersects_need_no_index() {
    let env = start();
    let (_db, coll) = equator(&env, "geowithin");
    coll.insert_one(doc! {"_id": 10, "loc": [2.5, 0.5]}).run().expect("legacy");
    let square =
        doc! {"type": "Polygon", "coordinates": [[[1.5, -1], [3.5, -1], [3.5, 1], [1.5, 1], [1.5, -1]]]};
    let mut ids = find_ids(&coll, doc! {"loc": {"$geoWithin": {"$geometry": square.clone()}}});
    ids.sort();
    assert_eq!(ids, vec![2, 3, 10]);
    // 1.5 degrees around the origin, as radians.
    let r = 1.5f64.to_radians();
    let mut ids = find_ids(&coll, doc! {"loc": {"$geoWithin": {"$centerSphere": [[0, 0], r]}}});
    ids.sort();
    assert_eq!(ids, vec![0, 1]);
    let mut ids = find_ids(&coll, doc! {"loc": {"$geoWithin": {"$box": [[0.5, -1], [2, 1]]}}});
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    let line = doc! {"type": "LineString", "coordinates": [[3, -1], [3, 1]]};
    assert_eq!(find_ids(&coll, doc! {"loc": {"$geoIntersects": {"$geometry": line}}}), vec![3]);
    let e = coll.find(doc! {"loc": {"$geoWithin": {"$bogus": 1}}}).run().expect_err("bad shape");
    assert_eq!(command_error(&e).0, 2);
}

#[test]
fn near_sorts_by_distance_and_needs_an_index() {
    let env = start();
    let (db, coll) = equator(&env, "geonear");
    let near = |max: f64| doc! {"loc": {"$near": {"$geometry": point(0.2, 0.0), "$maxDistance": max}}};
    let e = coll.find(near(1e7)).run().expect_err("no index");
    assert_eq!(command_error(&e).0, 291);
    assert_ok(&create(&db, "places", doc! {"key": {"loc": "2dsphere"}}).expect("index"));
    assert_eq!(find_ids(&coll, near(1e7)), vec![0, 1, 2, 3, 4]);
    // 2.5 degrees of longitude: ids 0..=2 are within from 0.2.
    assert_eq!(find_ids(&coll, near(2.5 * DEGREE_M)), vec![0, 1, 2]);
    let min = doc! {"loc": {"$nearSphere": {"$geometry": point(4.0, 0.0), "$minDistance": 1.5 * DEGREE_M}}, "even": true};
    assert_eq!(find_ids(&coll, min), vec![2, 0]);
    let page: Vec<Document> = coll
        .find(near(1e7))
        .skip(1)
        .limit(2)
        .projection(doc! {"loc": 0})
        .run()
        .expect("find")
        .map(|d| d.expect("doc"))
        .collect();
    assert_eq!(page, vec![doc! {"_id": 1, "even": false}, doc! {"_id": 2, "even": true}]);
    let by_id: Vec<i32> = coll
        .find(near(2.5 * DEGREE_M))
        .sort(doc! {"even": -1})
        .run()
        .expect("find")
        .map(|d| d.expect("doc").get_i32("_id").expect("_id"))
        .collect();
    assert_eq!(by_id, vec![0, 2, 1], "an explicit sort first, then distance");
    // The count command counts what is in range; countDocuments' $match refuses $near.
    let n = db.run_command(doc! {"count": "places", "query": near(2.5 * DEGREE_M)}).run().expect("count");
    assert_eq!(num(&n, "n"), 3);
    let e = coll.count_documents(near(1e7)).run().expect_err("countDocuments");
    assert_eq!(command_error(&e).0, 5626500);
    // Sorting by distance is not a filter: elsewhere than a find it is refused.
    let e = coll.aggregate(vec![doc! {"$match": near(1e7)}]).run().expect_err("in $match");
    assert_eq!(command_error(&e).0, 5626500);

    // Legacy pairs with a 2d index: flat distances.
    let flat = db.collection::<Document>("flat");
    flat.insert_many((0..4).map(|k| doc! {"_id": k, "pos": [k * 3, 4]})).run().expect("insert");
    assert_ok(&create(&db, "flat", doc! {"key": {"pos": "2d"}}).expect("index"));
    assert_eq!(find_ids(&flat, doc! {"pos": {"$near": [9, 0], "$maxDistance": 5}}), vec![3, 2]);
}

#[test]
fn geo_near_stage_reports_distances() {
    let env = start();
    let (db, coll) = equator(&env, "geostage");
    let stage = doc! {"$geoNear": {"near": point(0.0, 0.0), "distanceField": "dist", "key": "loc"}};
    let e = coll.aggregate(vec![stage.clone()]).run().expect_err("no index");
    assert_eq!(command_error(&e).0, 291);
    let mut keyless = stage.clone();
    if let Ok(s) = keyless.get_document_mut("$geoNear") {
        s.remove("key");
    }
    let e = coll.aggregate(vec![keyless]).run().expect_err("no index");
    assert_eq!(command_error(&e).0, 27);
    assert_ok(&create(&db, "places", doc! {"key": {"loc": "2dsphere"}}).expect("index"));
    let out: Vec<Document> = coll
        .aggregate(vec![
            doc! {"$geoNear": {
                "near": point(0.0, 0.0), "distanceField": "d.m", "maxDistance": 3.5 * DEGREE_M,
                "query": {"even": false}, "includeLocs": "where", "spherical": true,
            }},
            doc! {"$project": {"d": 1, "where": 1}},
        ])
        .run()
        .expect("aggregate")
        .map(|d| d.expect("doc"))
        .collect();
    assert_eq!(out.iter().map(|d| d.get_i32("_id").expect("_id")).collect::<Vec<_>>(), vec![1, 3]);
    for (d, k) in out.iter().zip([1.0, 3.0]) {
        let m = d.get_document("d").and_then(|x| x.get_f64("m")).expect("distance");
        assert!((m - k * DEGREE_M).abs() < 1.0, "{m} vs {}", k * DEGREE_M);
        assert_eq!(d.get_document("where").expect("loc"), &point(k, 0.0));
    }
    // Legacy point with spherical: radians, scaled by distanceMultiplier.
    let out: Vec<Document> = coll
        .aggregate(vec![doc! {"$geoNear": {"near": [0, 0], "distanceField": "r", "spherical": true, "distanceMultiplier": 2}}, doc! {"$limit": 2}])
        .run()
        .expect("aggregate")
        .map(|d| d.expect("doc"))
        .collect();
    let r = out.get(1).and_then(|d| d.get_f64("r").ok()).expect("second");
    assert!((r - 2.0 * 1f64.to_radians()).abs() < 1e-9, "{r}");
    let e = coll.aggregate(vec![doc! {"$match": {}}, stage]).run().expect_err("not first");
    assert_eq!(command_error(&e).0, 40603);
}
