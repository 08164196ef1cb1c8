//! Issue 4: aggregation operators added after the first release, through the driver:
//! `$median`/`$percentile` (accumulator, window function, expression), `$minN`/`$maxN`
//! expressions, bitwise operators, `$toUUID`, `$toHashedIndexKey`, `$meta` and the
//! `$sampleRate` query operator.

use crate::common::{self, assert_command_error};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::sync::Collection;

fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).run().expect("aggregate").collect::<Result<Vec<_>, _>>().expect("results")
}

/// mongod's testScores example collection.
fn test_scores(coll: &Collection<Document>) {
    coll.insert_many(vec![
        doc! {"studentId": "2345", "test01": 62, "test02": 81, "test03": 80},
        doc! {"studentId": "2356", "test01": 60, "test02": 83, "test03": 79},
        doc! {"studentId": "2358", "test01": 67, "test02": 82, "test03": 78},
        doc! {"studentId": "2367", "test01": 64, "test02": 72, "test03": 77},
        doc! {"studentId": "2369", "test01": 60, "test02": 53, "test03": 72},
    ])
    .run()
    .expect("insert");
}

#[test]
fn median_and_percentile_accumulators() {
    let env = common::start();
    let coll = env.coll("agg_pct_group");
    test_scores(&coll);
    coll.insert_one(doc! {"studentId": "x", "test01": "absent"}).run().expect("insert");
    let out = run(
        &coll,
        vec![doc! {"$group": {
            "_id": null,
            "test01_percentiles": {"$percentile": {"input": "$test01", "p": [0.5, 0.75, 0.9, 0.95], "method": "approximate"}},
            "test01_median": {"$median": {"input": "$test01", "method": "approximate"}},
            "none": {"$median": {"input": "$nope", "method": "approximate"}},
            "nones": {"$percentile": {"input": "$nope", "p": [0.5, 1], "method": "approximate"}},
        }}],
    );
    assert_eq!(
        out,
        vec![doc! {
            "_id": null,
            "test01_percentiles": [62.0, 64.0, 67.0, 67.0],
            "test01_median": 62.0,
            "none": null,
            "nones": [null, null],
        }]
    );
    let e = coll
        .aggregate(vec![doc! {"$group": {"_id": null, "p": {"$percentile": {"input": "$a", "p": [2], "method": "approximate"}}}}])
        .run();
    assert_command_error(e, 7750301, "Location7750301");
    let e = coll
        .aggregate(vec![doc! {"$group": {"_id": null, "p": {"$median": {"input": "$a", "method": "exact"}}}}])
        .run();
    assert_command_error(e, 7766600, "Location7766600");
}

#[test]
fn median_window_function() {
    let env = common::start();
    let coll = env.coll("agg_pct_window");
    test_scores(&coll);
    let out = run(
        &coll,
        vec![
            doc! {"$setWindowFields": {
                "sortBy": {"test01": 1},
                "output": {
                    "range_median": {"$median": {"input": "$test01", "method": "approximate"}, "window": {"range": [-3, 3]}},
                    "doc_pcts": {"$percentile": {"input": "$test01", "p": [0, 1], "method": "approximate"}, "window": {"documents": [-1, 1]}},
                },
            }},
            doc! {"$project": {"_id": 0, "studentId": 1, "test01": 1, "range_median": 1, "doc_pcts": 1}},
        ],
    );
    // Sorted test01: 60, 60, 62, 64, 67.
    let got: Vec<(Bson, Bson, Bson)> = out
        .iter()
        .map(|d| {
            (
                d.get("test01").cloned().unwrap(),
                d.get("range_median").cloned().unwrap(),
                d.get("doc_pcts").cloned().unwrap(),
            )
        })
        .collect();
    let want = vec![
        // Ranges: [57, 63] holds 60, 60, 62; [59, 65] adds 64; [61, 67] holds 62, 64, 67;
        // [64, 70] holds 64, 67. The discrete median is the value of rank ceil(n / 2).
        (Bson::Int32(60), Bson::Double(60.0), Bson::Array(vec![60.0.into(), 60.0.into()])),
        (Bson::Int32(60), Bson::Double(60.0), Bson::Array(vec![60.0.into(), 62.0.into()])),
        (Bson::Int32(62), Bson::Double(60.0), Bson::Array(vec![60.0.into(), 64.0.into()])),
        (Bson::Int32(64), Bson::Double(64.0), Bson::Array(vec![62.0.into(), 67.0.into()])),
        (Bson::Int32(67), Bson::Double(64.0), Bson::Array(vec![64.0.into(), 67.0.into()])),
    ];
    assert_eq!(got, want);
}

#[test]
fn expression_operators() {
    let env = common::start();
    let coll = env.coll("agg_new_exprs");
    coll.insert_one(doc! {"_id": 1, "scores": [62, 81, 80, 75, 68], "a": 3, "b": 5, "l": 63i64, "s": "3b241101-e2bb-4255-8caf-4136c566a962"})
        .run()
        .expect("insert");
    let out = run(
        &coll,
        vec![doc! {"$project": {
            "_id": 0,
            "median": {"$median": {"input": "$scores", "method": "approximate"}},
            "pct": {"$percentile": {"input": "$scores", "p": [0.5, 0.95], "method": "approximate"}},
            "maxN": {"$maxN": {"n": 2, "input": "$scores"}},
            "minN": {"$minN": {"n": 2, "input": "$scores"}},
            "and": {"$bitAnd": ["$a", "$b"]},
            "or": {"$bitOr": ["$a", "$l"]},
            "xor": {"$bitXor": ["$a", "$b"]},
            "not": {"$bitNot": "$a"},
            "uuid": {"$toUUID": "$s"},
            "hashed": {"$toHashedIndexKey": "$a"},
            "score": {"$meta": "searchScore"},
        }}],
    );
    let uuid_bytes =
        vec![0x3b, 0x24, 0x11, 0x01, 0xe2, 0xbb, 0x42, 0x55, 0x8c, 0xaf, 0x41, 0x36, 0xc5, 0x66, 0xa9, 0x62];
    let hashed = out[0].get("hashed").cloned();
    assert!(matches!(hashed, Some(Bson::Int64(_))), "{hashed:?}");
    let mut d = out[0].clone();
    d.remove("hashed");
    assert_eq!(
        d,
        doc! {
            "median": 75.0,
            "pct": [75.0, 81.0],
            "maxN": [81, 80],
            "minN": [62, 68],
            "and": 1,
            "or": 63i64,
            "xor": 6,
            "not": -4,
            "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: uuid_bytes },
        }
    );
    // The same key a hashed index stores: equal numbers of different types hash alike.
    let out = run(&coll, vec![doc! {"$project": {"h": {"$toHashedIndexKey": 3.0}}}]);
    assert_eq!(out[0].get("h").cloned(), hashed);
    // A $meta field neither includes nor excludes; with nothing available it adds nothing.
    let out = run(&coll, vec![doc! {"$project": {"s": 1, "score": {"$meta": "searchScore"}}}]);
    assert_eq!(out[0].keys().collect::<Vec<_>>(), vec!["_id", "s"]);
    let out = run(&coll, vec![doc! {"$project": {"scores": 0, "k": {"$meta": "indexKey"}}}]);
    assert_eq!(out[0].keys().collect::<Vec<_>>(), vec!["_id", "a", "b", "l", "s"]);
    let out = run(&coll, vec![doc! {"$sort": {"x": {"$meta": "searchScore"}}}, doc! {"$project": {"a": 1}}]);
    assert_eq!(out, vec![doc! {"_id": 1, "a": 3}]);
    fails_sort(&coll);
    let fails = |stage: Document, code: i32, name: &str| {
        assert_command_error(coll.aggregate(vec![stage]).run(), code, name);
    };
    fails(doc! {"$project": {"x": {"$bitAnd": ["$a", 1.5]}}}, 14, "TypeMismatch");
    fails(doc! {"$project": {"x": {"$toUUID": "not-a-uuid"}}}, 241, "ConversionFailure");
    fails(doc! {"$project": {"x": {"$meta": "textScore"}}}, 40218, "Location40218");
    fails(doc! {"$project": {"x": {"$meta": "bogus"}}}, 17308, "Location17308");
    fails(doc! {"$project": {"x": {"$maxN": {"n": 0, "input": "$scores"}}}}, 5787908, "Location5787908");
}

fn fails_sort(coll: &Collection<Document>) {
    let e = coll.aggregate(vec![doc! {"$sort": {"x": {"$meta": "textScore"}}}]).run();
    assert_command_error(e, 40218, "Location40218");
    let e = coll.aggregate(vec![doc! {"$sort": {"x": {"$meta": "indexKey"}}}]).run();
    assert_command_error(e, 31138, "Location31138");
}

#[test]
fn sample_rate_match() {
    let env = common::start();
    let coll = env.coll("agg_sample_rate");
    let docs: Vec<Document> = (0..2000).map(|i| doc! {"_id": i}).collect();
    coll.insert_many(docs).run().expect("insert");
    let count = |p: Bson| coll.count_documents(doc! {"$sampleRate": p}).run().expect("count");
    assert_eq!(count(Bson::Double(0.0)), 0);
    assert_eq!(count(Bson::Double(1.0)), 2000);
    let half = count(Bson::Double(0.5));
    assert!((800..=1200).contains(&half), "{half}");
    let matched = run(&coll, vec![doc! {"$match": {"$sampleRate": 0.25}}, doc! {"$count": "n"}]);
    let n = matched.first().and_then(|d| d.get_i32("n").ok()).unwrap_or(0);
    assert!((300..=700).contains(&n), "{n}");
    assert_command_error(coll.find(doc! {"$sampleRate": 2}).run(), 2, "BadValue");
    assert_command_error(coll.find(doc! {"$sampleRate": "x"}).run(), 2, "BadValue");
}
