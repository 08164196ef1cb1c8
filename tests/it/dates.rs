//! Date expressions through the driver: IANA time zones with daylight-saving changes, the
//! calendar arithmetic operators ($dateDiff, $dateTrunc, $dateToParts, $dateFromParts,
//! $dateFromString with a format), and `$bucketAuto` with a `granularity`.

use crate::common::{self, assert_command_error};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::sync::Collection;

fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).run().expect("aggregate").collect::<Result<Vec<_>, _>>().expect("results")
}

fn date(s: &str) -> DateTime {
    DateTime::parse_rfc3339_str(s).expect("date")
}

#[test]
fn iana_time_zones_follow_daylight_saving() {
    let env = common::start();
    let coll = env.coll("dates_tz");
    coll.insert_many(vec![
        doc! {"_id": 1, "d": date("2021-01-15T12:00:00Z")},
        doc! {"_id": 2, "d": date("2021-07-15T12:00:00Z")},
    ])
    .run()
    .unwrap();
    let out = run(
        &coll,
        vec![
            doc! {"$sort": {"_id": 1}},
            doc! {"$project": {
                "hour": {"$hour": {"date": "$d", "timezone": "America/New_York"}},
                "str": {"$dateToString": {"date": "$d", "format": "%H:%M %z", "timezone": "America/New_York"}},
                "parts": {"$dateToParts": {"date": "$d", "timezone": "Europe/Paris"}},
                "day": {"$dateTrunc": {"date": "$d", "unit": "day", "timezone": "America/New_York"}},
                "plusDay": {"$dateAdd": {"startDate": "$d", "unit": "month", "amount": 6, "timezone": "America/New_York"}},
            }},
        ],
    );
    assert_eq!(out[0].get_i32("hour").unwrap(), 7);
    assert_eq!(out[1].get_i32("hour").unwrap(), 8);
    assert_eq!(out[0].get_str("str").unwrap(), "07:00 -0500");
    assert_eq!(out[1].get_str("str").unwrap(), "08:00 -0400");
    assert_eq!(
        out[1].get_document("parts").unwrap(),
        &doc! {"year": 2021, "month": 7, "day": 15, "hour": 14, "minute": 0, "second": 0, "millisecond": 0}
    );
    assert_eq!(out[0].get_datetime("day").unwrap(), &date("2021-01-15T05:00:00Z"));
    assert_eq!(out[1].get_datetime("day").unwrap(), &date("2021-07-15T04:00:00Z"));
    // Six months after 07:00 EST is 07:00 EDT: one hour less in UTC.
    assert_eq!(out[0].get_datetime("plusDay").unwrap(), &date("2021-07-15T11:00:00Z"));
    let res = coll
        .aggregate(vec![doc! {"$project": {"h": {"$hour": {"date": "$d", "timezone": "Mars/Olympus"}}}}])
        .run();
    assert_command_error(res, 40485, "Location40485");
}

#[test]
fn date_diff_from_parts_and_from_string() {
    let env = common::start();
    let coll = env.coll("dates_calc");
    coll.insert_one(doc! {"_id": 1, "a": date("2020-12-31T23:59:00Z"), "b": date("2021-03-01T00:00:00Z")})
        .run()
        .unwrap();
    let out = run(
        &coll,
        vec![doc! {"$project": {
            "_id": 0,
            "months": {"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": "month"}},
            "weeks": {"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": "week", "startOfWeek": "Monday"}},
            "days": {"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": "day"}},
            "nullUnit": {"$dateDiff": {"startDate": "$a", "endDate": "$b", "unit": null}},
            "built": {"$dateFromParts": {"year": 2021, "month": 2, "day": 29, "hour": 25}},
            "parsed": {"$dateFromString": {"dateString": "06/15/2018 10:00", "format": "%m/%d/%Y %H:%M", "timezone": "Asia/Tokyo"}},
            "bad": {"$dateFromString": {"dateString": "x", "format": "%Y", "onError": "fallback"}},
        }}],
    );
    let d = &out[0];
    assert_eq!(d.get("months"), Some(&Bson::Int64(3)));
    // 2020-12-31 is a Thursday: Mondays Jan 4 ... Mar 1 are 9 week starts.
    assert_eq!(d.get("weeks"), Some(&Bson::Int64(9)));
    assert_eq!(d.get("days"), Some(&Bson::Int64(60)));
    assert_eq!(d.get("nullUnit"), Some(&Bson::Null));
    // February 29th 2021 rolls to March 1st, hour 25 to the next day.
    assert_eq!(d.get_datetime("built").unwrap(), &date("2021-03-02T01:00:00Z"));
    assert_eq!(d.get_datetime("parsed").unwrap(), &date("2018-06-15T01:00:00Z"));
    assert_eq!(d.get_str("bad").unwrap(), "fallback");
}

#[test]
fn bucket_auto_granularity() {
    let env = common::start();
    let coll = env.coll("dates_bucket");
    coll.insert_many((1..=10).map(|i| doc! {"v": i}).collect::<Vec<_>>()).run().unwrap();
    let out = run(&coll, vec![doc! {"$bucketAuto": {"groupBy": "$v", "buckets": 3, "granularity": "1-2-5"}}]);
    assert_eq!(
        out,
        vec![
            doc! {"_id": {"min": 0.5, "max": 5.0}, "count": 4},
            doc! {"_id": {"min": 5.0, "max": 10.0}, "count": 5},
            doc! {"_id": {"min": 10.0, "max": 20.0}, "count": 1},
        ]
    );
    let res = coll
        .aggregate(vec![doc! {"$bucketAuto": {"groupBy": "$v", "buckets": 3, "granularity": "R7"}}])
        .run();
    assert_command_error(res, 40257, "Location40257");
    coll.insert_one(doc! {"v": -1}).run().unwrap();
    let res = coll
        .aggregate(vec![doc! {"$bucketAuto": {"groupBy": "$v", "buckets": 3, "granularity": "R5"}}])
        .run();
    assert_command_error(res, 40260, "Location40260");
}
