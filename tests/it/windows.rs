//! `$setWindowFields` through the driver: mongod's documented cake-sales examples (running
//! totals per state, ranks, moving averages), the order-based functions, and the validation
//! errors mongod gives for malformed windows.

use crate::common::{self, assert_command_error};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::sync::Collection;

fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).run().expect("aggregate").collect::<Result<Vec<_>, _>>().expect("results")
}

fn cake_sales(coll: &Collection<Document>) {
    let d = |s: &str| DateTime::parse_rfc3339_str(s).expect("date");
    coll.insert_many(vec![
        doc! {"_id": 0, "type": "chocolate", "orderDate": d("2020-05-18T14:10:30Z"), "state": "CA", "price": 13, "quantity": 120},
        doc! {"_id": 1, "type": "chocolate", "orderDate": d("2021-03-20T11:30:05Z"), "state": "WA", "price": 14, "quantity": 140},
        doc! {"_id": 2, "type": "vanilla", "orderDate": d("2021-01-11T06:31:15Z"), "state": "CA", "price": 12, "quantity": 145},
        doc! {"_id": 3, "type": "vanilla", "orderDate": d("2020-02-08T13:13:23Z"), "state": "WA", "price": 13, "quantity": 104},
        doc! {"_id": 4, "type": "strawberry", "orderDate": d("2019-05-18T16:09:01Z"), "state": "CA", "price": 41, "quantity": 162},
        doc! {"_id": 5, "type": "strawberry", "orderDate": d("2019-01-08T06:12:03Z"), "state": "WA", "price": 43, "quantity": 134},
    ])
    .run()
    .expect("insert");
}

fn field(docs: &[Document], f: &str) -> Vec<Bson> {
    docs.iter().map(|d| d.get(f).cloned().unwrap_or(Bson::Null)).collect()
}

#[test]
fn running_totals_per_partition_in_sort_order() {
    let env = common::start();
    let coll = env.coll("win_cum");
    cake_sales(&coll);
    let out = run(
        &coll,
        vec![doc! {"$setWindowFields": {
            "partitionBy": "$state",
            "sortBy": {"orderDate": 1},
            "output": {
                "cumulativeQuantityForState": {"$sum": "$quantity", "window": {"documents": ["unbounded", "current"]}},
                "averageQuantity": {"$avg": "$quantity", "window": {"documents": ["unbounded", "current"]}},
                "stateTotal": {"$sum": "$quantity"},
                "n": {"$documentNumber": {}},
                "types": {"$push": "$type", "window": {"documents": [-1, 0]}},
                "count": {"$count": {}},
                "before": {"$sum": "$quantity", "window": {"documents": ["unbounded", -1]}},
                "firstType": {"$first": "$type", "window": {"documents": ["unbounded", "current"]}},
            }
        }}],
    );
    // Partitions come out by state, each in orderDate order.
    assert_eq!(
        field(&out, "_id"),
        vec![Bson::Int32(4), Bson::Int32(0), Bson::Int32(2), Bson::Int32(5), Bson::Int32(3), Bson::Int32(1)]
    );
    assert_eq!(
        field(&out, "cumulativeQuantityForState"),
        [162, 282, 427, 134, 238, 378].map(Bson::Int32).to_vec()
    );
    assert_eq!(field(&out, "averageQuantity")[1], Bson::Double(141.0));
    assert_eq!(field(&out, "stateTotal"), [427, 427, 427, 378, 378, 378].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "n"), [1, 2, 3, 1, 2, 3].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "count"), [3, 3, 3, 3, 3, 3].map(Bson::Int32).to_vec());
    // An empty window sums to 0.
    assert_eq!(field(&out, "before"), [0, 162, 282, 0, 134, 238].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "firstType")[2], Bson::from("strawberry"));
    assert_eq!(out[1].get_array("types").unwrap(), &vec![Bson::from("strawberry"), Bson::from("chocolate")]);
    assert_eq!(out[3].get_array("types").unwrap(), &vec![Bson::from("strawberry")]);
    // The original fields keep their order, the outputs follow.
    let keys: Vec<&str> = out[0].keys().map(String::as_str).collect();
    assert_eq!(&keys[..6], &["_id", "type", "orderDate", "state", "price", "quantity"]);
}

#[test]
fn rank_dense_rank_and_range_windows() {
    let env = common::start();
    let coll = env.coll("win_rank");
    let scores = [10, 20, 20, 30, 30, 30];
    coll.insert_many((0..6).map(|i| doc! {"_id": i, "score": scores[i as usize]}).collect::<Vec<_>>())
        .run()
        .unwrap();
    let out = run(
        &coll,
        vec![doc! {"$setWindowFields": {
            "sortBy": {"score": 1},
            "output": {
                "rank": {"$rank": {}},
                "dense": {"$denseRank": {}},
                "near": {"$sum": 1, "window": {"range": [-10, 0]}},
                "ahead": {"$max": "$_id", "window": {"range": ["current", 10]}},
            }
        }}],
    );
    assert_eq!(field(&out, "rank"), [1, 2, 2, 4, 4, 4].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "dense"), [1, 2, 2, 3, 3, 3].map(Bson::Int32).to_vec());
    // Values within 10 below the current score (inclusive).
    assert_eq!(field(&out, "near"), [1, 3, 3, 5, 5, 5].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "ahead"), [2, 5, 5, 5, 5, 5].map(Bson::Int32).to_vec());
}

#[test]
fn time_range_windows_with_a_unit() {
    let env = common::start();
    let coll = env.coll("win_time");
    cake_sales(&coll);
    let out = run(
        &coll,
        vec![doc! {"$setWindowFields": {
            "partitionBy": "$state",
            "sortBy": {"orderDate": 1},
            "output": {
                "recentOrders": {"$push": "$orderDate", "window": {"range": ["unbounded", 10], "unit": "month"}},
                "lastYear": {"$sum": "$quantity", "window": {"range": [-1, 0], "unit": "year"}},
            }
        }}],
    );
    // CA: 2019-05-18, 2020-05-18, 2021-01-11. Ten months after 2019-05-18 is 2020-03-18.
    assert_eq!(out[0].get_array("recentOrders").unwrap().len(), 1);
    assert_eq!(out[1].get_array("recentOrders").unwrap().len(), 3);
    // A year back from 2020-05-18T14:10:30 reaches 2019-05-18T14:10:30, after the 16:09 order.
    assert_eq!(field(&out, "lastYear")[..3], [162, 282, 265].map(Bson::Int32));
    // A range over a non-date sortBy with a unit fails at run time.
    let res = coll
        .aggregate(vec![doc! {"$setWindowFields": {
            "sortBy": {"price": 1},
            "output": {"x": {"$sum": 1, "window": {"range": [-1, 0], "unit": "day"}}}
        }}])
        .run();
    assert_command_error(res, 5429513, "Location5429513");
}

#[test]
fn order_based_functions() {
    let env = common::start();
    let coll = env.coll("win_order");
    coll.insert_many(vec![
        doc! {"_id": 1, "t": 0, "y": 0, "v": 4, "f": 1},
        doc! {"_id": 2, "t": 1, "y": 2, "v": 8, "f": Bson::Null},
        doc! {"_id": 3, "t": 2, "y": 6, "v": 2},
        doc! {"_id": 4, "t": 4, "y": 6, "v": "x", "f": 9},
    ])
    .run()
    .unwrap();
    let out = run(
        &coll,
        vec![doc! {"$setWindowFields": {
            "sortBy": {"t": 1},
            "output": {
                "prev": {"$shift": {"output": "$y", "by": -1, "default": "none"}},
                "next": {"$shift": {"output": "$y", "by": 1}},
                "ema": {"$expMovingAvg": {"input": "$v", "alpha": 0.5}},
                "slope": {"$derivative": {"input": "$y"}, "window": {"documents": [-1, 0]}},
                "area": {"$integral": {"input": "$y"}, "window": {"documents": [-1, 0]}},
                "locf": {"$locf": "$f"},
                "lin": {"$linearFill": "$f"},
                "cov": {"$covariancePop": ["$t", "$y"]},
            }
        }}],
    );
    assert_eq!(field(&out, "prev"), vec![Bson::from("none"), Bson::Int32(0), Bson::Int32(2), Bson::Int32(6)]);
    assert_eq!(field(&out, "next"), vec![Bson::Int32(2), Bson::Int32(6), Bson::Int32(6), Bson::Null]);
    assert_eq!(field(&out, "ema")[..3], [4.0, 6.0, 4.0].map(Bson::Double));
    assert_eq!(
        field(&out, "slope"),
        vec![Bson::Null, Bson::Double(2.0), Bson::Double(4.0), Bson::Double(0.0)]
    );
    assert_eq!(field(&out, "area"), [0.0, 1.0, 4.0, 12.0].map(Bson::Double).to_vec());
    assert_eq!(field(&out, "locf"), [1, 1, 1, 9].map(Bson::Int32).to_vec());
    // t = 1 and 2 lie on the line from (0, 1) to (4, 9).
    assert_eq!(
        field(&out, "lin"),
        vec![Bson::Int32(1), Bson::Double(3.0), Bson::Double(5.0), Bson::Int32(9)]
    );
    // Mean t = 7/4, mean y = 14/4; covariance = sum((t-1.75)(y-3.5)) / 4 = 13.5 / 4.
    assert_eq!(field(&out, "cov")[0], Bson::Double(3.375));
}

#[test]
fn validation_errors() {
    let env = common::start();
    let coll = env.coll("win_err");
    coll.insert_one(doc! {"a": 1, "s": "text"}).run().unwrap();
    let agg = |stage: Document| coll.aggregate(vec![doc! {"$setWindowFields": stage}]).run().map(|_| ());
    assert_command_error(agg(doc! {"output": {"x": {"$nope": "$a"}}}), 9, "FailedToParse");
    assert_command_error(
        agg(doc! {"output": {"x": {"$sum": "$a", "window": {"documents": [-1, 0]}}}}),
        5339901,
        "Location5339901",
    );
    assert_command_error(agg(doc! {"output": {"x": {"$rank": {}}}}), 5371602, "Location5371602");
    assert_command_error(
        agg(doc! {"sortBy": {"a": 1}, "output": {"x": {"$sum": "$a", "window": {"documents": [1, -1]}}}}),
        9,
        "FailedToParse",
    );
    assert_command_error(
        agg(doc! {"output": {"x": {"$sum": "$a", "window": {"range": [-1, 1]}}}}),
        5339902,
        "Location5339902",
    );
    assert_command_error(
        agg(doc! {"sortBy": {"a": 1}, "output": {"x": {"$rank": {}, "window": {"documents": [0, 1]}}}}),
        9,
        "FailedToParse",
    );
    assert_command_error(agg(doc! {"sortBy": {"a": 1}}), 40414, "Location40414");
    assert_command_error(agg(doc! {"output": {}, "bogus": 1}), 40415, "Location40415");
    assert_command_error(
        agg(doc! {"sortBy": {"s": 1}, "output": {"x": {"$sum": 1, "window": {"range": [-1, 1]}}}}),
        5429413,
        "Location5429413",
    );
}

fn coffee(coll: &Collection<Document>) {
    coll.insert_many(vec![
        doc! {"altitude": 600, "variety": "Arabica Typica", "score": 68.3},
        doc! {"altitude": 750, "variety": "Arabica Typica", "score": 69.5},
        doc! {"altitude": 950, "variety": "Arabica Typica", "score": 70.5},
        doc! {"altitude": 1250, "variety": "Gesha", "score": 88.15},
        doc! {"altitude": 1700, "variety": "Gesha", "score": 85.5},
        doc! {"altitude": 1600, "variety": "Gesha", "score": 79},
    ])
    .run()
    .unwrap();
}

fn altitudes(docs: &[Document], variety: &str) -> Vec<(i32, bool)> {
    docs.iter()
        .filter(|d| d.get_str("variety").ok() == Some(variety))
        .map(|d| (d.get_i32("altitude").unwrap(), d.contains_key("score")))
        .collect()
}

#[test]
fn densify_full_and_partition_bounds() {
    let env = common::start();
    let coll = env.coll("densify");
    coffee(&coll);
    let out = run(
        &coll,
        vec![
            doc! {"$densify": {"field": "altitude", "partitionByFields": ["variety"], "range": {"bounds": "full", "step": 200}}},
            doc! {"$project": {"_id": 0}},
        ],
    );
    // One grid from the lowest altitude of all (600) up to, not including, the highest (1700).
    assert_eq!(
        altitudes(&out, "Arabica Typica"),
        vec![
            (600, true),
            (750, true),
            (800, false),
            (950, true),
            (1000, false),
            (1200, false),
            (1400, false),
            (1600, false)
        ]
    );
    assert_eq!(
        altitudes(&out, "Gesha"),
        vec![
            (600, false),
            (800, false),
            (1000, false),
            (1200, false),
            (1250, true),
            (1400, false),
            (1600, true),
            (1700, true)
        ]
    );
    // Generated documents hold only the field and the partition fields.
    assert!(out.contains(&doc! {"altitude": 800, "variety": "Arabica Typica"}));
    let out = run(
        &coll,
        vec![
            doc! {"$densify": {"field": "altitude", "partitionByFields": ["variety"], "range": {"bounds": "partition", "step": 200}}},
            doc! {"$project": {"_id": 0}},
        ],
    );
    assert_eq!(altitudes(&out, "Arabica Typica"), vec![(600, true), (750, true), (800, false), (950, true)]);
    assert_eq!(
        altitudes(&out, "Gesha"),
        vec![(1250, true), (1450, false), (1600, true), (1650, false), (1700, true)]
    );
}

#[test]
fn densify_dates_with_explicit_bounds() {
    let env = common::start();
    let coll = env.coll("densify_dates");
    let d = |s: &str| DateTime::parse_rfc3339_str(s).expect("date");
    coll.insert_many(vec![
        doc! {"ts": d("2021-05-18T00:00:00Z"), "v": 1},
        doc! {"ts": d("2021-05-18T04:00:00Z"), "v": 2},
    ])
    .run()
    .unwrap();
    let out = run(
        &coll,
        vec![
            doc! {"$densify": {"field": "ts", "range": {"step": 1, "unit": "hour", "bounds": [d("2021-05-18T01:00:00Z"), d("2021-05-18T06:00:00Z")]}}},
            doc! {"$project": {"_id": 0}},
        ],
    );
    let hours: Vec<i64> =
        out.iter().map(|x| x.get_datetime("ts").unwrap().timestamp_millis() / 3_600_000 % 24).collect();
    assert_eq!(hours, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(out[0].get_i32("v").unwrap(), 1);
    assert!(!out[1].contains_key("v"));
    // A date field with a numeric step and no unit is refused.
    let res = coll
        .aggregate(vec![doc! {"$densify": {"field": "ts", "range": {"step": 1, "bounds": "full"}}}])
        .run();
    assert_command_error(res, 5733501, "Location5733501");
}

#[test]
fn fill_with_value_locf_and_linear() {
    let env = common::start();
    let coll = env.coll("fill");
    coll.insert_many(vec![
        doc! {"_id": 1, "t": 1, "qty": 10, "price": 2},
        doc! {"_id": 2, "t": 2, "qty": Bson::Null, "price": Bson::Null},
        doc! {"_id": 4, "t": 4, "qty": 40},
        doc! {"_id": 3, "t": 3, "price": 8},
    ])
    .run()
    .unwrap();
    let out = run(
        &coll,
        vec![doc! {"$fill": {
            "sortBy": {"t": 1},
            "output": {"qty": {"method": "linear"}, "price": {"method": "locf"}, "note": {"value": "n/a"}}
        }}],
    );
    assert_eq!(field(&out, "_id"), [1, 2, 3, 4].map(Bson::Int32).to_vec());
    assert_eq!(
        field(&out, "qty"),
        vec![Bson::Int32(10), Bson::Double(20.0), Bson::Double(30.0), Bson::Int32(40)]
    );
    assert_eq!(field(&out, "price"), [2, 2, 8, 8].map(Bson::Int32).to_vec());
    assert_eq!(field(&out, "note"), vec![Bson::from("n/a"); 4]);
    // linear needs a single sortBy field.
    let res = coll.aggregate(vec![doc! {"$fill": {"output": {"qty": {"method": "linear"}}}}]).run();
    assert_command_error(res, 6050201, "Location6050201");
}
