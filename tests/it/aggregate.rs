//! The aggregation pipeline through the driver: mongod's documented examples for each stage
//! family, streaming across getMores, and the edge cases (missing fields, null, wrong types,
//! int overflow to long, many documents).

use crate::common::{self, assert_command_error};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::sync::Collection;

fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).run().expect("aggregate").collect::<Result<Vec<_>, _>>().expect("results")
}

fn sales(coll: &Collection<Document>) {
    let d = |s: &str| DateTime::parse_rfc3339_str(s).expect("date");
    coll.insert_many(vec![
        doc! {"_id": 1, "item": "abc", "price": 10, "quantity": 2, "date": d("2014-03-01T08:00:00Z")},
        doc! {"_id": 2, "item": "jkl", "price": 20, "quantity": 1, "date": d("2014-03-01T09:00:00Z")},
        doc! {"_id": 3, "item": "xyz", "price": 5, "quantity": 10, "date": d("2014-03-15T09:00:00Z")},
        doc! {"_id": 4, "item": "xyz", "price": 5, "quantity": 20, "date": d("2014-04-04T11:21:39.736Z")},
        doc! {"_id": 5, "item": "abc", "price": 10, "quantity": 10, "date": d("2014-04-04T21:23:13.331Z")},
        doc! {"_id": 6, "item": "def", "price": 7.5, "quantity": 5, "date": d("2015-06-04T05:08:13Z")},
        doc! {"_id": 7, "item": "def", "price": 7.5, "quantity": 10, "date": d("2015-09-10T08:43:00Z")},
        doc! {"_id": 8, "item": "abc", "price": 10, "quantity": 5, "date": d("2016-02-06T20:20:13Z")},
    ])
    .run()
    .expect("insert");
}

#[test]
fn group_by_expression_with_accumulators() {
    let env = common::start();
    let coll = env.coll("agg_group");
    sales(&coll);
    let out = run(
        &coll,
        vec![
            doc! {"$match": {"date": {"$gte": DateTime::parse_rfc3339_str("2014-01-01T00:00:00Z").unwrap(), "$lt": DateTime::parse_rfc3339_str("2015-01-01T00:00:00Z").unwrap()}}},
            doc! {"$group": {
                "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$date"}},
                "totalSaleAmount": {"$sum": {"$multiply": ["$price", "$quantity"]}},
                "averageQuantity": {"$avg": "$quantity"},
                "count": {"$sum": 1},
                "items": {"$addToSet": "$item"},
                "first": {"$first": "$item"},
                "maxQ": {"$max": "$quantity"},
            }},
            doc! {"$sort": {"totalSaleAmount": -1}},
        ],
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": "2014-04-04", "totalSaleAmount": 200, "averageQuantity": 15.0, "count": 2, "items": ["xyz", "abc"], "first": "xyz", "maxQ": 20},
            doc! {"_id": "2014-03-15", "totalSaleAmount": 50, "averageQuantity": 10.0, "count": 1, "items": ["xyz"], "first": "xyz", "maxQ": 10},
            doc! {"_id": "2014-03-01", "totalSaleAmount": 40, "averageQuantity": 1.5, "count": 2, "items": ["abc", "jkl"], "first": "abc", "maxQ": 2},
        ]
    );
    // _id null groups everything; $count accumulator; mixed int/double sums give a double.
    let out = run(
        &coll,
        vec![
            doc! {"$group": {"_id": null, "n": {"$count": {}}, "total": {"$sum": "$price"}, "none": {"$avg": "$missing"}}},
        ],
    );
    assert_eq!(out, vec![doc! {"_id": null, "n": 8, "total": 75.0, "none": null}]);
    // Group by a missing field: one null group; $push skips missing values.
    let out =
        run(&coll, vec![doc! {"$group": {"_id": "$nope", "p": {"$push": "$nope"}, "l": {"$last": "$item"}}}]);
    assert_eq!(out, vec![doc! {"_id": null, "p": [], "l": "abc"}]);
    assert_command_error(
        coll.aggregate(vec![doc! {"$group": {"x": {"$sum": 1}}}]).run(),
        15955,
        "Location15955",
    );
    assert_command_error(
        coll.aggregate(vec![doc! {"$group": {"_id": 1, "x": {"$bogus": 1}}}]).run(),
        15952,
        "Location15952",
    );
}

#[test]
fn group_over_many_documents_and_overflow() {
    let env = common::start();
    let coll = env.coll("agg_many");
    let docs: Vec<Document> =
        (0..20_000).map(|i| doc! {"_id": i, "k": i % 7, "v": 2_000_000_000i32}).collect();
    coll.insert_many(docs).run().expect("insert");
    let out = run(
        &coll,
        vec![
            doc! {"$group": {"_id": "$k", "n": {"$sum": 1}, "big": {"$sum": "$v"}}},
            doc! {"$sort": {"_id": 1}},
        ],
    );
    assert_eq!(out.len(), 7);
    assert_eq!(out[0], doc! {"_id": 0, "n": 2858, "big": 2858i64 * 2_000_000_000});
    let total: i32 = out.iter().map(|d| d.get_i32("n").unwrap()).sum();
    assert_eq!(total, 20_000);
    // int32 overflow in an expression widens to long.
    let out =
        run(&coll, vec![doc! {"$limit": 1}, doc! {"$project": {"_id": 0, "x": {"$add": ["$v", "$v"]}}}]);
    assert_eq!(out, vec![doc! {"x": 4_000_000_000i64}]);
    // A cursor streams across getMores.
    let mut cursor =
        coll.aggregate(vec![doc! {"$match": {"k": 3}}]).batch_size(100).run().expect("aggregate");
    let mut n = 0;
    for d in cursor.by_ref() {
        d.expect("doc");
        n += 1;
    }
    assert_eq!(n, 2857);
    // $sort + $limit (a top-k) and $skip.
    let out = run(
        &coll,
        vec![
            doc! {"$sort": {"_id": -1}},
            doc! {"$skip": 2},
            doc! {"$limit": 3},
            doc! {"$project": {"_id": 1}},
        ],
    );
    assert_eq!(out, vec![doc! {"_id": 19997}, doc! {"_id": 19996}, doc! {"_id": 19995}]);
    let out = run(&coll, vec![doc! {"$match": {"k": {"$gt": 4}}}, doc! {"$count": "n"}]);
    assert_eq!(out, vec![doc! {"n": 5714}]);
    // maxTimeMS stops a long pipeline.
    let slow = coll
        .aggregate(vec![
            doc! {"$group": {"_id": {"$concat": [{"$toString": "$_id"}, "x"]}, "s": {"$push": "$$ROOT"}}},
            doc! {"$count": "n"},
        ])
        .max_time(std::time::Duration::from_millis(1))
        .run();
    assert_command_error(slow, 50, "MaxTimeMSExpired");
}

#[test]
fn project_add_fields_unset_replace_root() {
    let env = common::start();
    let coll = env.coll("agg_proj");
    coll.insert_many(vec![
        doc! {"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz", "first": "aaa"}, "copies": 5},
        doc! {"_id": 2, "title": "Baked Goods", "author": {"last": "xyz", "first": "abc"}, "copies": null},
    ])
    .run()
    .expect("insert");
    let out = run(
        &coll,
        vec![doc! {"$project": {
            "title": 1,
            "isbn": {"prefix": {"$substr": ["$isbn", 0, 3]}},
            "lastName": "$author.last",
            "copiesSold": {"$ifNull": ["$copies", "none"]},
        }}],
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "title": "abc123", "isbn": {"prefix": "000"}, "lastName": "zzz", "copiesSold": 5},
            doc! {"_id": 2, "title": "Baked Goods", "isbn": {"prefix": ""}, "lastName": "xyz", "copiesSold": "none"},
        ]
    );
    let out =
        run(&coll, vec![doc! {"$project": {"author.first": 0, "_id": 0, "isbn": 0}}, doc! {"$limit": 1}]);
    assert_eq!(out, vec![doc! {"title": "abc123", "author": {"last": "zzz"}, "copies": 5}]);
    let out = run(
        &coll,
        vec![
            doc! {"$set": {"author.full": {"$concat": ["$author.first", " ", "$author.last"]}, "copies": "$$REMOVE"}},
            doc! {"$unset": ["title", "isbn"]},
            doc! {"$replaceWith": {"$mergeObjects": [{"id": "$_id"}, "$author"]}},
        ],
    );
    assert_eq!(
        out,
        vec![
            doc! {"id": 1, "last": "zzz", "first": "aaa", "full": "aaa zzz"},
            doc! {"id": 2, "last": "xyz", "first": "abc", "full": "abc xyz"},
        ]
    );
    assert_command_error(
        coll.aggregate(vec![doc! {"$project": {"a": 1, "b": 0}}]).run(),
        31254,
        "Location31254",
    );
    assert_command_error(
        coll.aggregate(vec![doc! {"$replaceRoot": {"newRoot": "$nope"}}]).run(),
        40228,
        "Location40228",
    );
}

#[test]
fn unwind_with_every_option() {
    let env = common::start();
    let coll = env.coll("agg_unwind");
    coll.insert_many(vec![
        doc! {"_id": 1, "item": "ABC", "sizes": ["S", "M"]},
        doc! {"_id": 2, "item": "EFG", "sizes": []},
        doc! {"_id": 3, "item": "IJK", "sizes": "M"},
        doc! {"_id": 4, "item": "LMN"},
        doc! {"_id": 5, "item": "XYZ", "sizes": null},
    ])
    .run()
    .expect("insert");
    let out = run(&coll, vec![doc! {"$unwind": "$sizes"}]);
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "item": "ABC", "sizes": "S"},
            doc! {"_id": 1, "item": "ABC", "sizes": "M"},
            doc! {"_id": 3, "item": "IJK", "sizes": "M"},
        ]
    );
    let out = run(
        &coll,
        vec![
            doc! {"$unwind": {"path": "$sizes", "includeArrayIndex": "idx", "preserveNullAndEmptyArrays": true}},
        ],
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "item": "ABC", "sizes": "S", "idx": 0i64},
            doc! {"_id": 1, "item": "ABC", "sizes": "M", "idx": 1i64},
            doc! {"_id": 2, "item": "EFG", "idx": null},
            doc! {"_id": 3, "item": "IJK", "sizes": "M", "idx": null},
            doc! {"_id": 4, "item": "LMN", "idx": null},
            doc! {"_id": 5, "item": "XYZ", "sizes": null, "idx": null},
        ]
    );
    assert_command_error(coll.aggregate(vec![doc! {"$unwind": "sizes"}]).run(), 28818, "Location28818");
}

#[test]
fn lookup_by_fields_and_by_pipeline() {
    let env = common::start();
    let db = env.db("agg_lookup");
    let orders = db.collection::<Document>("orders");
    let inventory = db.collection::<Document>("inventory");
    orders
        .insert_many(vec![
            doc! {"_id": 1, "item": "almonds", "price": 12, "quantity": 2},
            doc! {"_id": 2, "item": "pecans", "price": 20, "quantity": 1},
            doc! {"_id": 3},
        ])
        .run()
        .expect("insert");
    inventory
        .insert_many(vec![
            doc! {"_id": 1, "sku": "almonds", "instock": 120},
            doc! {"_id": 2, "sku": "bread", "instock": 80},
            doc! {"_id": 3, "sku": "cashews", "instock": 60},
            doc! {"_id": 4, "sku": "pecans", "instock": 70},
            doc! {"_id": 5, "sku": null},
            doc! {"_id": 6},
        ])
        .run()
        .expect("insert");
    inventory
        .create_index(mongodb::IndexModel::builder().keys(doc! {"sku": 1}).build())
        .run()
        .expect("index");
    let out = run(
        &orders,
        vec![
            doc! {"$lookup": {"from": "inventory", "localField": "item", "foreignField": "sku", "as": "inv"}},
            doc! {"$project": {"n": {"$size": "$inv"}, "ids": "$inv._id"}},
        ],
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "n": 1, "ids": [1]},
            doc! {"_id": 2, "n": 1, "ids": [4]},
            doc! {"_id": 3, "n": 2, "ids": [5, 6]}
        ]
    );
    let out = run(
        &orders,
        vec![
            doc! {"$match": {"item": {"$exists": true}}},
            doc! {"$lookup": {
                "from": "inventory",
                "let": {"want": "$item", "q": "$quantity"},
                "pipeline": [
                    {"$match": {"$expr": {"$and": [{"$eq": ["$sku", "$$want"]}, {"$gte": ["$instock", {"$multiply": ["$$q", 50]}]}]}}},
                    {"$project": {"_id": 0, "instock": 1}},
                ],
                "as": "stock",
            }},
            doc! {"$project": {"stock": 1}},
        ],
    );
    assert_eq!(
        out,
        vec![doc! {"_id": 1, "stock": [{"instock": 120}]}, doc! {"_id": 2, "stock": [{"instock": 70}]}]
    );
    // Both forms combined.
    let out = run(
        &orders,
        vec![
            doc! {"$match": {"_id": 2}},
            doc! {"$lookup": {"from": "inventory", "localField": "item", "foreignField": "sku", "pipeline": [{"$project": {"_id": 0, "sku": 1}}], "as": "x"}},
            doc! {"$project": {"x": 1}},
        ],
    );
    assert_eq!(out, vec![doc! {"_id": 2, "x": [{"sku": "pecans"}]}]);
    // $unionWith appends another collection's documents.
    let out = run(
        &orders,
        vec![
            doc! {"$project": {"_id": 1}},
            doc! {"$unionWith": {"coll": "inventory", "pipeline": [{"$match": {"instock": {"$gt": 100}}}, {"$project": {"sku": 1}}]}},
        ],
    );
    assert_eq!(
        out,
        vec![doc! {"_id": 1}, doc! {"_id": 2}, doc! {"_id": 3}, doc! {"_id": 1, "sku": "almonds"}]
    );
}

#[test]
fn facet_bucket_sort_by_count_sample() {
    let env = common::start();
    let coll = env.coll("agg_facet");
    coll.insert_many(vec![
        doc! {"_id": 1, "year": 1926, "price": 199.99, "tags": ["a", "b"]},
        doc! {"_id": 2, "year": 1902, "price": 280.0, "tags": ["b"]},
        doc! {"_id": 3, "year": 1925, "price": 76.04, "tags": ["a", "b", "c"]},
        doc! {"_id": 4, "year": 1915, "price": 167.3, "tags": ["c"]},
        doc! {"_id": 5, "year": 1913, "price": 483.0, "tags": []},
        doc! {"_id": 6, "price": 385.0},
    ])
    .run()
    .expect("insert");
    let out = run(
        &coll,
        vec![doc! {"$facet": {
            "byTag": [{"$unwind": "$tags"}, {"$sortByCount": "$tags"}, {"$sort": {"count": -1, "_id": 1}}],
            "byPrice": [{"$bucket": {"groupBy": "$price", "boundaries": [0, 150, 200, 300, 400], "default": "Other", "output": {"count": {"$sum": 1}, "ids": {"$push": "$_id"}}}}],
            "total": [{"$count": "n"}],
        }}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "byTag": [{"_id": "b", "count": 3}, {"_id": "a", "count": 2}, {"_id": "c", "count": 2}],
            "byPrice": [
                {"_id": 0, "count": 1, "ids": [3]},
                {"_id": 150, "count": 2, "ids": [1, 4]},
                {"_id": 200, "count": 1, "ids": [2]},
                {"_id": 300, "count": 1, "ids": [6]},
                {"_id": "Other", "count": 1, "ids": [5]},
            ],
            "total": [{"n": 6}],
        }]
    );
    let out = run(
        &coll,
        vec![
            doc! {"$match": {"year": {"$exists": true}}},
            doc! {"$bucketAuto": {"groupBy": "$price", "buckets": 2}},
        ],
    );
    assert_eq!(
        out,
        vec![
            doc! {"_id": {"min": 76.04, "max": 280.0}, "count": 3},
            doc! {"_id": {"min": 280.0, "max": 483.0}, "count": 2},
        ]
    );
    let out = run(&coll, vec![doc! {"$sample": {"size": 3}}]);
    assert_eq!(out.len(), 3);
    assert_command_error(
        coll.aggregate(vec![doc! {"$bucket": {"groupBy": "$price", "boundaries": [5, 1]}}]).run(),
        40194,
        "Location40194",
    );
}

#[test]
fn out_and_merge_write_collections() {
    let env = common::start();
    let db = env.db("agg_out");
    let src = db.collection::<Document>("src");
    src.insert_many(vec![
        doc! {"_id": 1, "k": "a", "v": 1},
        doc! {"_id": 2, "k": "b", "v": 2},
        doc! {"_id": 3, "k": "a", "v": 3},
    ])
    .run()
    .expect("insert");
    let out =
        run(&src, vec![doc! {"$group": {"_id": "$k", "total": {"$sum": "$v"}}}, doc! {"$out": "totals"}]);
    assert!(out.is_empty());
    let totals = db.collection::<Document>("totals");
    let mut got = common::all(&totals);
    got.sort_by_key(|d| d.get_str("_id").unwrap_or("").to_string());
    assert_eq!(got, vec![doc! {"_id": "a", "total": 4}, doc! {"_id": "b", "total": 2}]);
    // $out replaces the target's documents.
    run(&src, vec![doc! {"$match": {"_id": 1}}, doc! {"$out": "totals"}]);
    assert_eq!(common::all(&totals), vec![doc! {"_id": 1, "k": "a", "v": 1}]);
    // $merge: merge matched documents, insert the rest.
    run(&src, vec![doc! {"$project": {"w": {"$multiply": ["$v", 10]}}}, doc! {"$merge": {"into": "totals"}}]);
    assert_eq!(
        common::all(&totals),
        vec![doc! {"_id": 1, "k": "a", "v": 1, "w": 10}, doc! {"_id": 2, "w": 20}, doc! {"_id": 3, "w": 30}]
    );
    run(
        &src,
        vec![
            doc! {"$match": {"_id": {"$in": [1, 9]}}},
            doc! {"$merge": {"into": "totals", "whenMatched": [{"$set": {"w": {"$add": ["$w", "$$new.v"]}}}], "whenNotMatched": "discard"}},
        ],
    );
    assert_eq!(common::all(&totals)[0], doc! {"_id": 1, "k": "a", "v": 1, "w": 11});
    assert_command_error(
        src.aggregate(vec![doc! {"$merge": {"into": "totals", "whenMatched": "fail"}}]).run(),
        11000,
        "DuplicateKey",
    );
    assert_command_error(
        src.aggregate(vec![doc! {"$out": "x"}, doc! {"$match": {}}]).run(),
        40601,
        "Location40601",
    );
}

#[test]
fn collectionless_documents_and_errors() {
    let env = common::start();
    let db = env.db("agg_docs");
    let out: Vec<Document> = db
        .aggregate(vec![
            doc! {"$documents": [{"x": 10, "s": "a-b"}, {"x": 2}, {"s": null}]},
            doc! {"$project": {
                "_id": 0,
                "t": {"$type": "$x"},
                "half": {"$divide": ["$x", 2]},
                "parts": {"$split": ["$s", "-"]},
                "big": {"$cond": [{"$gte": ["$x", 5]}, "yes", "no"]},
                "str": {"$toString": "$x"},
            }},
        ])
        .run()
        .expect("aggregate")
        .collect::<Result<Vec<_>, _>>()
        .expect("results");
    assert_eq!(
        out,
        vec![
            doc! {"t": "int", "half": 5.0, "parts": ["a", "b"], "big": "yes", "str": "10"},
            doc! {"t": "int", "half": 1.0, "parts": null, "big": "no", "str": "2"},
            doc! {"t": "missing", "half": null, "parts": null, "big": "no", "str": null},
        ]
    );
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! {"_id": 1, "a": 0, "s": "x"}).run().expect("insert");
    assert_command_error(coll.aggregate(vec![doc! {"$bogus": {}}]).run(), 40324, "Location40324");
    assert_command_error(
        coll.aggregate(vec![doc! {"$project": {"r": {"$divide": [1, "$a"]}}}]).run(),
        16608,
        "Location16608",
    );
    assert_command_error(
        coll.aggregate(vec![doc! {"$project": {"r": {"$add": [1, "$s"]}}}]).run(),
        16554,
        "Location16554",
    );
    assert_command_error(
        coll.aggregate(vec![doc! {"$project": {"r": {"$nope": 1}}}]).run(),
        168,
        "InvalidPipelineOperator",
    );
    assert_command_error(coll.aggregate(vec![doc! {"$limit": 0}]).run(), 15958, "Location15958");
    assert_command_error(db.aggregate(vec![doc! {"$match": {}}]).run(), 73, "InvalidNamespace");
    // `let` variables of the command.
    let out = run_with_let(&coll, doc! {"k": {"$add": [1, 2]}});
    assert_eq!(out, vec![doc! {"_id": 1, "v": 3}]);
    // Aggregating a missing collection gives nothing.
    let none = db.collection::<Document>("nothing");
    assert!(run(&none, vec![doc! {"$group": {"_id": null, "n": {"$sum": 1}}}]).is_empty());
    let out = run(&none, vec![doc! {"$count": "n"}]);
    assert!(out.is_empty());
    // explain answers with the $cursor stage.
    let reply = db
        .run_command(doc! {"aggregate": "c", "pipeline": [{"$match": {"_id": 1}}, {"$project": {"a": 1}}], "explain": true})
        .run()
        .expect("explain");
    let stages = reply.get_array("stages").expect("stages");
    assert!(matches!(&stages[0], Bson::Document(d) if d.contains_key("$cursor")));
}

fn run_with_let(coll: &Collection<Document>, vars: Document) -> Vec<Document> {
    coll.aggregate(vec![doc! {"$project": {"v": "$$k"}}])
        .let_vars(vars)
        .run()
        .expect("aggregate")
        .collect::<Result<Vec<_>, _>>()
        .expect("results")
}

#[test]
fn pipeline_updates_and_expr_in_find() {
    let env = common::start();
    let coll = env.coll("agg_upd");
    coll.insert_many(vec![doc! {"_id": 1, "a": 1, "b": 2}, doc! {"_id": 2, "a": 5, "b": 5}])
        .run()
        .expect("insert");
    let r = coll
        .update_many(doc! {}, vec![doc! {"$set": {"total": {"$add": ["$a", "$b"]}}}, doc! {"$unset": "b"}])
        .run()
        .expect("update");
    assert_eq!((r.matched_count, r.modified_count), (2, 2));
    assert_eq!(
        common::all(&coll),
        vec![doc! {"_id": 1, "a": 1, "total": 3}, doc! {"_id": 2, "a": 5, "total": 10}]
    );
    // Upsert through a pipeline starts from the query's equality fields.
    coll.update_one(doc! {"_id": 3}, vec![doc! {"$replaceWith": {"x": {"$literal": "new"}}}])
        .upsert(true)
        .run()
        .expect("upsert");
    assert_eq!(coll.find_one(doc! {"_id": 3}).run().expect("find"), Some(doc! {"_id": 3, "x": "new"}));
    let got = coll
        .find_one_and_update(doc! {"_id": 1}, vec![doc! {"$set": {"a": {"$multiply": ["$a", 10]}}}])
        .return_document(mongodb::options::ReturnDocument::After)
        .run()
        .expect("findAndModify");
    assert_eq!(got, Some(doc! {"_id": 1, "a": 10, "total": 3}));
    let err = coll.update_one(doc! {}, vec![doc! {"$match": {}}]).run().expect_err("no $match in updates");
    assert_eq!(common::write_error_code(&err), 72);
    // A stage that does not exist fails the whole command.
    let err =
        coll.update_one(doc! {}, vec![doc! {"$invalidOperator": true}]).run().expect_err("unknown stage");
    assert_eq!(common::command_error(&err).0, 40324, "{err}");
    // $expr in a find filter.
    let found: Vec<Document> = coll
        .find(doc! {"$expr": {"$gt": ["$total", "$a"]}})
        .run()
        .expect("find")
        .collect::<Result<_, _>>()
        .expect("docs");
    assert_eq!(found, vec![doc! {"_id": 2, "a": 5, "total": 10}]);
    // Computed fields in a find projection.
    let found: Vec<Document> = coll
        .find(doc! {"_id": 2})
        .projection(doc! {"_id": 0, "a": 1, "double": {"$multiply": ["$a", 2]}, "tag": {"$literal": "t"}})
        .run()
        .expect("find")
        .collect::<Result<_, _>>()
        .expect("docs");
    assert_eq!(found, vec![doc! {"a": 5, "double": 10, "tag": "t"}]);
}

#[test]
fn let_variables_in_find_update_delete_and_list_local_sessions() {
    let env = common::start();
    let db = env.db("agg_let");
    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 2}]).run().expect("insert");
    let found: Vec<Document> = coll
        .find(doc! {"$expr": {"$eq": ["$_id", "$$id"]}})
        .let_vars(doc! {"id": 2})
        .run()
        .expect("find")
        .collect::<Result<_, _>>()
        .expect("docs");
    assert_eq!(found, vec![doc! {"_id": 2, "x": 2}]);
    coll.update_one(doc! {"$expr": {"$eq": ["$_id", "$$id"]}}, vec![doc! {"$set": {"x": "$$v"}}])
        .let_vars(doc! {"id": 1, "v": "set"})
        .run()
        .expect("update");
    assert_eq!(coll.find_one(doc! {"_id": 1}).run().expect("find"), Some(doc! {"_id": 1, "x": "set"}));
    let r = coll
        .delete_many(doc! {"$expr": {"$eq": ["$x", "$$v"]}})
        .let_vars(doc! {"v": 2})
        .run()
        .expect("delete");
    assert_eq!(r.deleted_count, 1);
    let sessions: Vec<Document> = env
        .admin()
        .aggregate(vec![
            doc! {"$listLocalSessions": {}},
            doc! {"$limit": 1},
            doc! {"$project": {"_id": 0, "d": "x"}},
        ])
        .run()
        .expect("aggregate")
        .collect::<Result<_, _>>()
        .expect("docs");
    assert_eq!(sessions, vec![doc! {"d": "x"}]);
}

#[test]
fn graph_lookup_and_redact() {
    let env = common::start();
    let db = env.db("agg_graph");
    let emp = db.collection::<Document>("employees");
    emp.insert_many(vec![
        doc! {"_id": 1, "name": "Dev"},
        doc! {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
        doc! {"_id": 3, "name": "Ron", "reportsTo": "Eliot"},
        doc! {"_id": 4, "name": "Andrew", "reportsTo": "Eliot"},
        doc! {"_id": 5, "name": "Asya", "reportsTo": "Ron"},
        doc! {"_id": 6, "name": "Dan", "reportsTo": "Andrew"},
    ])
    .run()
    .expect("insert");
    let out = run(
        &emp,
        vec![
            doc! {"$match": {"_id": 5}},
            doc! {"$graphLookup": {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo", "connectToField": "name", "as": "chain", "depthField": "d"}},
            doc! {"$project": {"chain": {"$map": {"input": "$chain", "in": ["$$this.name", "$$this.d"]}}}},
        ],
    );
    assert_eq!(out, vec![doc! {"_id": 5, "chain": [["Ron", 0i64], ["Eliot", 1i64], ["Dev", 2i64]]}]);
    let out = run(
        &emp,
        vec![
            doc! {"$match": {"_id": 5}},
            doc! {"$graphLookup": {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo", "connectToField": "name", "as": "chain", "maxDepth": 1}},
            doc! {"$project": {"n": {"$size": "$chain"}}},
        ],
    );
    assert_eq!(out, vec![doc! {"_id": 5, "n": 2}]);
    let coll = db.collection::<Document>("r");
    coll.insert_one(
        doc! {"_id": 1, "level": 1, "sub": {"level": 5, "x": 1}, "arr": [{"level": 2}, {"level": 9}, 7]},
    )
    .run()
    .expect("insert");
    let out =
        run(&coll, vec![doc! {"$redact": {"$cond": [{"$lte": ["$level", 3]}, "$$DESCEND", "$$PRUNE"]}}]);
    assert_eq!(out, vec![doc! {"_id": 1, "level": 1, "arr": [{"level": 2}, 7]}]);
    assert_command_error(coll.aggregate(vec![doc! {"$redact": "x"}]).run(), 17053, "Location17053");
}

#[test]
fn merge_pipeline_sees_new_with_command_let() {
    let env = common::start();
    let db = env.db("agg_merge_let");
    let src = db.collection::<Document>("src");
    let dst = db.collection::<Document>("dst");
    src.insert_one(doc! {"_id": 1, "v": 5}).run().expect("insert");
    dst.insert_one(doc! {"_id": 1, "w": 1}).run().expect("insert");
    src.aggregate(vec![doc! {"$merge": {"into": "dst", "whenMatched": [{"$set": {"w": {"$add": ["$w", "$$new.v", "$$k"]}}}]}}])
        .let_vars(doc! {"k": 100})
        .run()
        .expect("aggregate")
        .for_each(drop);
    assert_eq!(common::all(&dst), vec![doc! {"_id": 1, "w": 106}]);
}

/// A `$match` + `$group` pipeline reads only the fields it names from each document; results
/// are the same as over whole documents, through dotted paths, `$expr` and `$lookup`.
#[test]
fn group_over_wide_documents_reads_the_fields_it_needs() {
    let env = common::start();
    let db = env.db("aggdeps");
    let c = db.collection::<Document>("c");
    let docs: Vec<Document> = (0..200)
        .map(|i| {
            let city = ["a", "b", "c"][i as usize % 3];
            doc! {
                "_id": i, "pad": "x".repeat(100), "age": i % 50, "city": city,
                "bal": { "v": i as f64 }, "tags": [i, i + 1],
            }
        })
        .collect();
    c.insert_many(docs.clone()).run().unwrap();
    let got: Vec<Document> = c
        .aggregate(vec![
            doc! { "$match": { "age": { "$gte": 30 }, "$expr": { "$lt": ["$_id", 150] } } },
            doc! { "$group": { "_id": "$city", "n": { "$sum": 1 }, "total": { "$sum": "$bal.v" } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    let mut want = std::collections::BTreeMap::<&str, (i32, f64)>::new();
    for i in 0..150i32 {
        if i % 50 >= 30 {
            let e = want.entry(["a", "b", "c"][i as usize % 3]).or_default();
            e.0 += 1;
            e.1 += i as f64;
        }
    }
    let want: Vec<Document> =
        want.into_iter().map(|(k, (n, t))| doc! { "_id": k, "n": n, "total": t }).collect();
    assert_eq!(got, want);
    // A $lookup whose pipeline groups still matches on its join field.
    let joined: Vec<Document> = db
        .collection::<Document>("c")
        .aggregate(vec![
            doc! { "$match": { "_id": 3 } },
            doc! { "$lookup": {
                "from": "c", "localField": "city", "foreignField": "city", "as": "same",
                "pipeline": [{ "$group": { "_id": null, "n": { "$sum": 1 } } }],
            } },
            doc! { "$project": { "same": 1 } },
        ])
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(joined, vec![doc! { "_id": 3, "same": [{ "_id": null, "n": 67 }] }]);
}

#[test]
fn decimal128_arithmetic_and_accumulators() {
    let env = common::start();
    let coll = env.coll("agg_decimal");
    let dec = |s: &str| Bson::Decimal128(s.parse().expect("decimal"));
    coll.insert_many(vec![
        doc! {"_id": 1, "g": 1, "price": dec("0.1"), "qty": 3},
        doc! {"_id": 2, "g": 1, "price": dec("0.2"), "qty": 1},
    ])
    .run()
    .unwrap();
    let out = run(
        &coll,
        vec![
            doc! {"$project": {
                "sum": {"$add": ["$price", dec("0.2")]},
                "diff": {"$subtract": ["$price", 1]},
                "total": {"$multiply": ["$price", "$qty"]},
                "third": {"$divide": [dec("1"), 3]},
            }},
            doc! {"$sort": {"_id": 1}},
        ],
    );
    assert_eq!(out[0].get("sum"), Some(&dec("0.3")));
    assert_eq!(out[0].get("diff"), Some(&dec("-0.9")));
    assert_eq!(out[0].get("total"), Some(&dec("0.3")));
    assert_eq!(out[0].get("third"), Some(&dec("0.3333333333333333333333333333333333")));
    let res = coll.aggregate(vec![doc! {"$project": {"x": {"$divide": ["$price", dec("0")]}}}]).run();
    assert_command_error(res, 16608, "Location16608");
    let out =
        run(&coll, vec![doc! {"$group": {"_id": "$g", "s": {"$sum": "$price"}, "a": {"$avg": "$price"}}}]);
    assert_eq!(out, vec![doc! {"_id": 1, "s": dec("0.3"), "a": dec("0.15")}]);
}

/// $mod, $pow, $round and $trunc compute in decimal when an operand is a Decimal128.
#[test]
fn decimal128_mod_pow_round_trunc() {
    let env = common::start();
    let coll = env.coll("agg_decimal_more");
    let dec = |s: &str| Bson::Decimal128(s.parse().expect("decimal"));
    coll.insert_one(doc! {"_id": 1, "p": dec("1.2345"), "q": dec("7.5")}).run().unwrap();
    let out = run(
        &coll,
        vec![doc! {"$project": {
            "_id": 0,
            "mod": {"$mod": ["$q", 2]},
            "modInt": {"$mod": [7, dec("3")]},
            "pow": {"$pow": ["$q", 2]},
            "powNeg": {"$pow": [dec("2"), -2]},
            "powBig": {"$pow": [dec("1.1"), 100]},
            "round": {"$round": ["$p", 2]},
            "roundEven": {"$round": [dec("2.5")]},
            "roundNeg": {"$round": [dec("1234.5"), -2]},
            "trunc": {"$trunc": ["$p", 3]},
        }}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "mod": dec("1.5"), "modInt": dec("1"), "pow": dec("56.25"), "powNeg": dec("0.25"),
            "powBig": dec("13780.61233982227018411833717208964"),
            "round": dec("1.23"), "roundEven": dec("2"), "roundNeg": dec("1.2E+3"), "trunc": dec("1.234"),
        }]
    );
    let res = coll.aggregate(vec![doc! {"$project": {"x": {"$mod": ["$q", dec("0")]}}}]).run();
    assert_command_error(res, 16610, "Location16610");
    let res = coll.aggregate(vec![doc! {"$project": {"x": {"$pow": [dec("0"), -1]}}}]).run();
    assert_command_error(res, 28764, "Location28764");
}

#[test]
fn coll_stats_and_index_stats_stages() {
    let env = common::start();
    let coll = env.coll("agg_stats");
    coll.insert_many((0..5).map(|i| doc! {"_id": i, "x": i}).collect::<Vec<_>>()).run().unwrap();
    coll.create_index(mongodb::IndexModel::builder().keys(doc! {"x": 1}).build()).run().unwrap();
    let out = run(
        &coll,
        vec![doc! {"$collStats": {"count": {}, "storageStats": {}, "latencyStats": {"histograms": true}}}],
    );
    assert_eq!(out.len(), 1);
    let s = &out[0];
    assert_eq!(s.get_str("ns").unwrap(), coll.namespace().to_string());
    assert_eq!(s.get("count"), Some(&Bson::Int32(5)));
    let storage = s.get_document("storageStats").unwrap();
    assert_eq!(storage.get("count"), Some(&Bson::Int32(5)));
    assert_eq!(storage.get("nindexes"), Some(&Bson::Int32(2)));
    assert!(s.get_document("latencyStats").unwrap().contains_key("reads"));
    let mut names: Vec<String> = run(&coll, vec![doc! {"$indexStats": {}}, doc! {"$project": {"name": 1}}])
        .iter()
        .map(|d| d.get_str("name").unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["_id_".to_string(), "x_1".to_string()]);
    let res = coll.aggregate(vec![doc! {"$match": {}}, doc! {"$collStats": {}}]).run();
    assert_command_error(res, 40602, "Location40602");
}

/// explain of an aggregation: the pushed-down `$match` / `$sort` / `$limit` as the find plan
/// under `$cursor`, then the other stages; a pipeline answered whole by the query layer has
/// the find's shape; `explain: {aggregate}` takes a verbosity.
#[test]
fn aggregate_explain_shows_the_pushed_down_query_plan() {
    let env = common::start();
    let db = env.db("aggexplain");
    let coll = db.collection::<Document>("c");
    coll.insert_many((0..300).map(|i| doc! {"_id": i, "k": i % 30, "v": i})).run().expect("insert");
    coll.create_index(mongodb::IndexModel::builder().keys(doc! {"k": 1, "v": -1}).build())
        .run()
        .expect("index");
    let pipeline = vec![
        Bson::Document(doc! {"$match": {"k": 7}}),
        Bson::Document(doc! {"$sort": {"v": -1}}),
        Bson::Document(doc! {"$limit": 3}),
        Bson::Document(doc! {"$group": {"_id": null, "n": {"$sum": 1}}}),
    ];
    let r = db
        .run_command(doc! {"explain": {"aggregate": "c", "pipeline": pipeline.clone(), "cursor": {}}, "verbosity": "executionStats"})
        .run()
        .expect("explain");
    let stages = r.get_array("stages").expect("stages");
    assert_eq!(stages.len(), 2, "{r}");
    let cursor = stages[0].as_document().and_then(|d| d.get_document("$cursor").ok()).expect("$cursor");
    let winning =
        cursor.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    let text = winning.to_string();
    assert!(text.contains("IXSCAN") && text.contains("k_1_v_-1"), "{winning}");
    assert!(!text.contains("\"SORT\""), "the index gives the order: {winning}");
    let stats = cursor.get_document("executionStats").expect("executionStats");
    assert_eq!(common::num(stats, "nReturned"), 3, "{stats}");
    assert!(common::num(stats, "totalKeysExamined") <= 4, "{stats}");
    assert!(stages[1].as_document().is_some_and(|d| d.contains_key("$group")), "{r}");
    assert!(r.contains_key("serverInfo") && r.contains_key("command"), "{r}");

    // Fully pushed down: the find shape.
    let r = db
        .run_command(doc! {"aggregate": "c", "pipeline": [{"$match": {"k": 3}}], "explain": true})
        .run()
        .expect("explain");
    assert!(!r.contains_key("stages"), "{r}");
    let plan = r.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).expect("plan");
    assert!(plan.to_string().contains("IXSCAN"), "{plan}");
    assert!(!r.contains_key("executionStats"), "explain: true is queryPlanner verbosity: {r}");
}
