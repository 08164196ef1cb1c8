//! Change-stream event latency: the time from a write's acknowledgement to the moment a
//! waiting `watch()` on another thread hands the event to the application, plus events/s
//! drained. Run: `cargo run --release --example cs_latency [N]` (an embedded server on a
//! temporary store; prints medians and p99).

use mongodb::bson::{doc, Document};
use mongodb::sync::Client;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let server = secantusdb::Server::builder().start().expect("server");
    let client = Client::with_uri_str(server.uri()).expect("client");
    let coll = client.database("bench").collection::<Document>("cs");
    coll.insert_one(doc! { "warm": true }).run().expect("warm up");

    // Latency: one write at a time, the watcher thread timestamps each arrival.
    let (tx, rx) = mpsc::channel::<Instant>();
    let watcher = {
        let coll = coll.clone();
        let mut stream = coll.watch().max_await_time(Duration::from_secs(5)).run().expect("watch");
        std::thread::spawn(move || {
            let mut got = 0;
            while got < n {
                if stream.next_if_any().expect("next").is_some() {
                    let _ = tx.send(Instant::now());
                    got += 1;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut from_start = Vec::with_capacity(n);
    let mut write_rtt = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        coll.insert_one(doc! { "i": i as i64 }).run().expect("insert");
        let acked = Instant::now();
        let arrived = rx.recv_timeout(Duration::from_secs(10)).expect("event");
        // The commit happens between `start` and `acked`, so `arrived - start` bounds the
        // commit-to-event latency from above (it includes the write's own round trip).
        from_start.push(arrived.saturating_duration_since(start).as_secs_f64() * 1000.0);
        write_rtt.push(acked.saturating_duration_since(start).as_secs_f64() * 1000.0);
    }
    watcher.join().expect("watcher");
    let (e50, e99) = (percentile(&mut from_start, 0.5), percentile(&mut from_start, 0.99));
    let (w50, w99) = (percentile(&mut write_rtt, 0.5), percentile(&mut write_rtt, 0.99));
    println!("over {n} writes: write start -> event delivered: median {e50:.3} ms, p99 {e99:.3} ms");
    println!("                  write start -> write acknowledged: median {w50:.3} ms, p99 {w99:.3} ms");

    // Throughput: write N documents with insert_many, then drain the stream.
    let mut stream =
        coll.watch().batch_size(1000).max_await_time(Duration::from_millis(500)).run().expect("watch");
    let docs: Vec<Document> = (0..n * 10).map(|i| doc! { "j": i as i64 }).collect();
    for chunk in docs.chunks(1000) {
        coll.insert_many(chunk.to_vec()).run().expect("insert_many");
    }
    let started = Instant::now();
    let mut got = 0;
    while got < n * 10 {
        if stream.next_if_any().expect("next").is_some() {
            got += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("drained {got} events in {secs:.2} s: {:.0} events/s", got as f64 / secs);
}
