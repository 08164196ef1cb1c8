//! A covered range query against the same range fetched: 200 000 documents, index `{a: 1, b: 1}`,
//! a range of 10 000 keys projected to `{a, b}` without `_id` (answered from the index
//! entries, PROJECTION_COVERED) and with `_id` (each document fetched). Run:
//! `cargo run --release --example covered_bench [N]` (an embedded server on a temporary store;
//! prints medians over repeated queries).

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Client, Database};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn num(d: &Document, k: &str) -> i64 {
    match d.get(k) {
        Some(Bson::Int32(n)) => *n as i64,
        Some(Bson::Int64(n)) => *n,
        _ => -1,
    }
}

/// Median milliseconds of `runs` executions of the find (all batches drained), and its count.
fn time(db: &Database, filter: &Document, projection: &Document, runs: usize) -> (f64, usize) {
    let c = db.collection::<Document>("covered");
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        n = 0;
        for d in c.find(filter.clone()).projection(projection.clone()).run().expect("find") {
            d.expect("doc");
            n += 1;
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (median(times), n)
}

fn main() {
    let n: i64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let server = secantusdb::Server::builder().cache_size_mb(512).start().expect("server");
    let client = Client::with_uri_str(server.uri()).expect("client");
    let db = client.database("bench");
    let c = db.collection::<Document>("covered");
    let batch: Vec<Document> = (0..n)
        .map(|i| doc! { "_id": i, "a": (i * 7919) % n, "b": (i % 1000) as f64, "pad": "x".repeat(200) })
        .collect();
    for chunk in batch.chunks(10_000) {
        c.insert_many(chunk.to_vec()).run().expect("insert");
    }
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1, "b": 1 }).build())
        .run()
        .expect("index");
    let filter = doc! { "a": { "$gte": n / 3, "$lt": n / 3 + 10_000 } };
    println!("{n} documents, index {{a: 1, b: 1}}, range of 10 000 keys; medians over 30 runs");
    for (name, projection) in [
        ("covered {a, b}", doc! { "a": 1, "b": 1, "_id": 0 }),
        ("fetched {_id, a, b}", doc! { "a": 1, "b": 1 }),
    ] {
        let (ms, got) = time(&db, &filter, &projection, 30);
        let e = db
            .run_command(doc! { "explain": { "find": "covered", "filter": filter.clone(), "projection": projection.clone() }, "verbosity": "executionStats" })
            .run()
            .expect("explain");
        let s = e.get_document("executionStats").expect("stats");
        let stage = s.get_document("executionStages").and_then(|d| d.get_str("stage")).unwrap_or("?");
        println!(
            "{name:>20}: {got} returned; {stage}, keys examined {}, docs examined {}; {ms:.2} ms",
            num(s, "totalKeysExamined"),
            num(s, "totalDocsExamined"),
        );
    }
}
