//! Indexed queries against a collection scan on 200 000 documents: an equality and a range
//! on an indexed field, each timed with its index and with `hint: {$natural: 1}`, plus the
//! keys and documents each examined (from explain). Run:
//! `cargo run --release --example index_speedup [N]` (an embedded server on a temporary store;
//! prints medians over repeated queries).

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::Hint;
use mongodb::sync::{Client, Collection};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn num(d: &Document, k: &str) -> i64 {
    match d.get(k) {
        Some(Bson::Int32(n)) => *n as i64,
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => -1,
    }
}

/// Median milliseconds of `runs` executions of the query, and the count it returned.
fn time(c: &Collection<Document>, filter: &Document, hint: Option<Document>, runs: usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let mut f = c.find(filter.clone());
        if let Some(h) = &hint {
            f = f.hint(Hint::Keys(h.clone()));
        }
        n = 0;
        for d in f.run().expect("find") {
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
    let c = db.collection::<Document>("speedup");
    let batch: Vec<Document> = (0..n)
        .map(
            |i| doc! { "_id": i, "a": (i * 7919) % n, "name": format!("user_{i:08}"), "pad": "x".repeat(60) },
        )
        .collect();
    for chunk in batch.chunks(10_000) {
        c.insert_many(chunk.to_vec()).run().expect("insert");
    }
    c.create_index(mongodb::IndexModel::builder().keys(doc! { "a": 1 }).build()).run().expect("index");
    let queries = [
        ("equality", doc! { "a": n / 2 }),
        ("range (100 docs)", doc! { "a": { "$gte": n / 3, "$lt": n / 3 + 100 } }),
    ];
    println!("{n} documents, index {{a: 1}}; medians over repeated runs");
    for (name, filter) in queries {
        let (ix_ms, ix_n) = time(&c, &filter, None, 200);
        let (scan_ms, scan_n) = time(&c, &filter, Some(doc! { "$natural": 1 }), 5);
        assert_eq!(ix_n, scan_n, "{name}: the index and the scan disagree");
        let e = db
            .run_command(doc! { "explain": { "find": "speedup", "filter": filter.clone() }, "verbosity": "executionStats" })
            .run()
            .expect("explain");
        let s = e.get_document("executionStats").expect("stats");
        println!(
            "{name:>18}: {ix_n} returned; keys examined {}, docs examined {}; indexed {ix_ms:.3} ms, \
             collection scan {scan_ms:.1} ms: {:.0}x",
            num(s, "totalKeysExamined"),
            num(s, "totalDocsExamined"),
            scan_ms / ix_ms
        );
    }
}
