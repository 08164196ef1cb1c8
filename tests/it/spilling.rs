//! Blocking aggregation stages past their memory limits: 292 with `allowDiskUse: false`,
//! spilling to disk (same results as an in-memory run) with it, and `allowDiskUseByDefault`.

use crate::common::{command_error, num, start, Env};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Collection;

fn set(env: &Env, name: &str, v: impl Into<Bson>) -> Document {
    let mut cmd = doc! { "setParameter": 1 };
    cmd.insert(name, v.into());
    env.admin_cmd(cmd).unwrap()
}

fn run(
    c: &Collection<Document>,
    pipeline: &[Document],
    disk: Option<bool>,
) -> mongodb::error::Result<Vec<Document>> {
    let mut a = c.aggregate(pipeline.to_vec());
    if let Some(d) = disk {
        a = a.allow_disk_use(d);
    }
    a.batch_size(1000).run()?.collect()
}

/// 4000 documents in 1000 groups, padded so the groups pass a 64 KB limit many times over.
fn seed(c: &Collection<Document>) {
    c.insert_many((0..4000).map(|i| {
        doc! { "_id": i, "g": (i * 37) % 1000, "v": i, "s": format!("s{}", i % 7), "pad": "x".repeat(200) }
    }))
    .run()
    .unwrap();
}

#[test]
fn group_spills_with_allow_disk_use_and_fails_without() {
    let env = start();
    let c = env.coll("gspill");
    seed(&c);
    let pipeline = [
        doc! { "$group": {
            "_id": "$g",
            "n": { "$sum": 1 }, "total": { "$sum": "$v" }, "avg": { "$avg": "$v" },
            "lo": { "$min": "$v" }, "hi": { "$max": "$v" },
            "first": { "$first": "$v" }, "last": { "$last": "$v" },
            "all": { "$push": "$v" }, "set": { "$addToSet": "$s" },
            "f2": { "$firstN": { "input": "$v", "n": 2 } }, "l2": { "$lastN": { "input": "$v", "n": 2 } },
            "top": { "$topN": { "output": "$v", "sortBy": { "v": -1 }, "n": 2 } },
            "bottom": { "$bottom": { "output": "$v", "sortBy": { "s": 1 } } },
            "m2": { "$maxN": { "input": "$v", "n": 2 } },
            "sd": { "$stdDevPop": "$v" },
            "pad": { "$first": "$pad" },
        } },
        doc! { "$set": { "set": { "$sortArray": { "input": "$set", "sortBy": 1 } } } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let in_memory = run(&c, &pipeline, Some(false)).unwrap();
    assert_eq!(in_memory.len(), 1000);
    let was = set(&env, "internalDocumentSourceGroupMaxMemoryBytes", 64 * 1024);
    assert_eq!(num(&was, "was"), 100 * 1024 * 1024);
    let err = run(&c, &pipeline, Some(false)).unwrap_err();
    let (code, name, msg) = command_error(&err);
    assert_eq!((code, name.as_str()), (292, "QueryExceededMemoryLimitNoDiskUseAllowed"));
    assert!(msg.contains("Exceeded memory limit for $group"), "{msg}");
    let spilled = run(&c, &pipeline, Some(true)).unwrap();
    assert_eq!(spilled.len(), in_memory.len());
    for (a, b) in in_memory.iter().zip(&spilled) {
        // The standard deviation is combined from partial states: equal up to rounding.
        let (sa, sb) = (a.get_f64("sd").unwrap(), b.get_f64("sd").unwrap());
        assert!((sa - sb).abs() < 1e-6, "{sa} vs {sb}");
        let strip = |d: &Document| {
            let mut d = d.clone();
            d.remove("sd");
            d
        };
        assert_eq!(strip(a), strip(b));
    }
    // $bucket and $sortByCount are groups too.
    let buckets =
        [doc! { "$bucket": { "groupBy": "$v", "boundaries": (0..=40).map(|i| i * 100).collect::<Vec<i32>>(),
        "output": { "vs": { "$push": "$v" }, "pad": { "$push": "$pad" } } } }];
    assert_eq!(command_error(&run(&c, &buckets, Some(false)).unwrap_err()).0, 292);
    let b = run(&c, &buckets, Some(true)).unwrap();
    assert_eq!(b.len(), 40);
    assert_eq!(b[3].get_i32("_id").unwrap(), 300);
    assert_eq!(b[3].get_array("vs").unwrap(), &(300..400).map(Bson::Int32).collect::<Vec<_>>());
    let counts = [doc! { "$sortByCount": "$v" }];
    assert_eq!(command_error(&run(&c, &counts, Some(false)).unwrap_err()).0, 292);
    let sc = run(&c, &counts, Some(true)).unwrap();
    assert_eq!(sc.len(), 4000);
    assert!(sc.iter().all(|d| num(d, "count") == 1));
}

#[test]
fn allow_disk_use_by_default_decides_when_the_command_does_not() {
    let env = start();
    let c = env.coll("gdefault");
    seed(&c);
    set(&env, "internalDocumentSourceGroupMaxMemoryBytes", 64 * 1024);
    let pipeline = [doc! { "$group": { "_id": "$g", "all": { "$push": "$pad" } } }];
    // mongod's default is true: a command without allowDiskUse may spill.
    assert_eq!(run(&c, &pipeline, None).unwrap().len(), 1000);
    let was = set(&env, "allowDiskUseByDefault", false);
    assert_eq!(was.get_bool("was"), Ok(true));
    assert_eq!(command_error(&run(&c, &pipeline, None).unwrap_err()).0, 292);
    assert_eq!(run(&c, &pipeline, Some(true)).unwrap().len(), 1000);
    let got = env
        .admin_cmd(doc! { "getParameter": 1, "allowDiskUseByDefault": 1, "internalDocumentSourceGroupMaxMemoryBytes": 1 })
        .unwrap();
    assert_eq!(got.get_bool("allowDiskUseByDefault"), Ok(false));
    assert_eq!(num(&got, "internalDocumentSourceGroupMaxMemoryBytes"), 64 * 1024);
    let err = env.admin_cmd(doc! { "setParameter": 1, "allowDiskUseByDefault": 1 }).unwrap_err();
    assert_eq!(command_error(&err).0, 2);
}

#[test]
fn set_window_fields_spills_partitions_with_allow_disk_use() {
    let env = start();
    let c = env.coll("wspill");
    seed(&c);
    let pipeline = [
        doc! { "$setWindowFields": {
            "partitionBy": "$g", "sortBy": { "v": 1 },
            "output": {
                "rank": { "$rank": {} },
                "running": { "$sum": "$v", "window": { "documents": ["unbounded", "current"] } },
                "prev": { "$shift": { "output": "$v", "by": -1, "default": -1 } },
            },
        } },
        doc! { "$project": { "pad": 0 } },
        doc! { "$sort": { "g": 1, "v": 1 } },
    ];
    let in_memory = run(&c, &pipeline, Some(false)).unwrap();
    assert_eq!(in_memory.len(), 4000);
    set(&env, "internalDocumentSourceSetWindowFieldsMaxMemoryBytes", 64 * 1024);
    let err = run(&c, &pipeline, Some(false)).unwrap_err();
    assert_eq!(command_error(&err).0, 292);
    let spilled = run(&c, &pipeline, Some(true)).unwrap();
    assert_eq!(spilled, in_memory);
    // Output order is partition then sortBy, as in memory.
    let unsorted: Vec<Document> = run(&c, &pipeline[..2], Some(true)).unwrap();
    let keys: Vec<(i64, i64)> = unsorted.iter().map(|d| (num(d, "g"), num(d, "v"))).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn bucket_auto_spills_with_allow_disk_use() {
    let env = start();
    let c = env.coll("bspill");
    seed(&c);
    let pipelines = [
        vec![doc! { "$bucketAuto": { "groupBy": "$g", "buckets": 7,
        "output": { "n": { "$sum": 1 }, "first": { "$first": "$v" }, "vs": { "$push": "$v" } } } }],
        vec![doc! { "$bucketAuto": { "groupBy": "$v", "buckets": 5, "granularity": "R10",
        "output": { "n": { "$sum": 1 }, "hi": { "$max": "$v" } } } }],
    ];
    for pipeline in pipelines {
        set(&env, "internalDocumentSourceBucketAutoMaxMemoryBytes", 100 * 1024 * 1024);
        let in_memory = run(&c, &pipeline, Some(false)).unwrap();
        assert!(in_memory.len() > 1);
        assert_eq!(in_memory.iter().map(|d| num(d, "n")).sum::<i64>(), 4000);
        set(&env, "internalDocumentSourceBucketAutoMaxMemoryBytes", 64 * 1024);
        assert_eq!(command_error(&run(&c, &pipeline, Some(false)).unwrap_err()).0, 292);
        assert_eq!(run(&c, &pipeline, Some(true)).unwrap(), in_memory);
    }
}
