//! TTL indexes: the reaper deletes documents whose date is older than expireAfterSeconds,
//! through the normal write path.

use crate::common::*;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::{Duration, Instant};

#[test]
fn expired_documents_are_deleted_and_others_kept() {
    let env = start_with(builder().ttl_monitor_secs(1));
    let c = env.coll("ttl");
    let now = DateTime::now().timestamp_millis();
    let old = DateTime::from_millis(now - 3_600_000);
    let fresh = DateTime::from_millis(now + 3_600_000);
    c.insert_many(vec![
        doc! { "_id": 1, "at": old },
        doc! { "_id": 2, "at": fresh },
        doc! { "_id": 3, "at": "not a date" },
        doc! { "_id": 4 },
        doc! { "_id": 5, "at": [fresh, old] },
    ])
    .run()
    .unwrap();
    let opts = IndexOptions::builder().expire_after(Duration::from_secs(60)).build();
    c.create_index(IndexModel::builder().keys(doc! { "at": 1 }).options(opts).build()).run().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids: Vec<i32> = c
            .find(doc! {})
            .run()
            .unwrap()
            .map(|d: mongodb::error::Result<Document>| d.unwrap().get_i32("_id").unwrap())
            .collect();
        if ids == vec![2, 3, 4] {
            break;
        }
        assert!(Instant::now() < deadline, "TTL did not expire documents: {ids:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let spec =
        c.list_indexes().run().unwrap().map(|i| i.unwrap()).find(|i| i.keys == doc! { "at": 1 }).unwrap();
    assert_eq!(spec.options.and_then(|o| o.expire_after), Some(Duration::from_secs(60)));
}
