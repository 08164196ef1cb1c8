//! Durability under SIGKILL: every insert acknowledged with `j: true` survives a crash of the
//! daemon process.

use crate::common::raw;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::WriteConcern;
use mongodb::sync::Client;
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A daemon child process, SIGKILLed if the test panics before killing it itself.
pub(crate) struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Answers a raw OP_MSG ping with ok 1?
fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    if s.write_all(&raw::op_msg(1, &doc! {"ping": 1, "$db": "admin"})).is_err() {
        return false;
    }
    match raw::read_frame(&mut s) {
        Ok(r) => raw::try_op_msg_doc(&r).is_some_and(|d| raw::is_ok(&d)),
        Err(_) => false,
    }
}

/// Starts the daemon on `dbpath` and waits until it answers ping, retrying on a port clash.
pub(crate) fn spawn(dbpath: &Path, logdir: &Path, attempt_tag: &str) -> Daemon {
    for attempt in 0..5 {
        let port = free_port();
        let log = logdir.join(format!("daemon-{attempt_tag}-{attempt}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_secantusdb"))
            .arg("--dbpath")
            .arg(dbpath)
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind_ip")
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn the daemon");
        let mut d = Daemon { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if answers_ping(d.addr()) {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                let text = d.log_text();
                // Someone else took the port between our probe and the daemon's bind: retry.
                let lower = text.to_lowercase();
                if lower.contains("address already in use") || lower.contains("os error 98") {
                    break;
                }
                panic!("daemon exited with {status} before answering:\n{text}");
            }
            if Instant::now() > deadline {
                panic!("daemon did not answer ping within 30 s:\n{}", d.log_text());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("could not start the daemon on a free port after 5 attempts");
}

pub(crate) fn client_for(d: &Daemon) -> Client {
    // Direct connection and short timeouts: once the process is killed, writers must give up
    // quickly; no retries, so an acknowledged write is one the server really acknowledged.
    let uri = format!(
        "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&retryWrites=false",
        d.port
    );
    Client::with_uri_str(uri).expect("client")
}

fn present_ids(client: &Client) -> HashSet<i64> {
    client
        .database("crashdb")
        .collection::<Document>("c")
        .find(doc! {})
        .projection(doc! {"_id": 1})
        .run()
        .expect("find after restart")
        .map(|d| match d.expect("doc").get("_id") {
            Some(Bson::Int64(v)) => *v,
            other => panic!("unexpected _id {other:?}"),
        })
        .collect()
}

#[test]
fn acknowledged_journaled_writes_survive_sigkill() {
    let dbdir = tempfile::tempdir().expect("tempdir");
    let logdir = tempfile::tempdir().expect("tempdir");
    let acked: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let next_id = Arc::new(AtomicI64::new(1));
    const CYCLES: u32 = 3;

    for cycle in 0..CYCLES {
        let mut daemon = spawn(dbdir.path(), logdir.path(), &format!("c{cycle}"));
        let client = client_for(&daemon);
        let present = present_ids(&client);
        let lost: Vec<i64> =
            acked.lock().expect("lock").iter().copied().filter(|id| !present.contains(id)).collect();
        assert!(lost.is_empty(), "cycle {cycle}: {} acknowledged ids lost: {lost:?}", lost.len());

        let killing = Arc::new(AtomicBool::new(false));
        let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
        let before = acked.lock().expect("lock").len();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let coll = client.database("crashdb").collection::<Document>("c");
                let (acked, next_id, killing, unexpected) =
                    (acked.clone(), next_id.clone(), killing.clone(), unexpected.clone());
                thread::spawn(move || {
                    let wc = WriteConcern::builder().journal(true).build();
                    loop {
                        let id = next_id.fetch_add(1, Ordering::SeqCst);
                        let d = doc! {"_id": id, "t": t, "cycle": cycle, "pad": "x".repeat(200)};
                        match coll.insert_one(d).write_concern(wc.clone()).run() {
                            Ok(_) => acked.lock().expect("lock").push(id),
                            Err(e) => {
                                if !killing.load(Ordering::SeqCst) {
                                    unexpected.lock().expect("lock").push(e.to_string());
                                }
                                break;
                            }
                        }
                    }
                })
            })
            .collect();

        thread::sleep(Duration::from_millis(1000 + 300 * u64::from(cycle)));
        // Flag first so errors caused by the kill are not reported as unexpected.
        killing.store(true, Ordering::SeqCst);
        daemon.kill();
        for w in writers {
            w.join().expect("writer thread");
        }
        drop(client);
        let errs = unexpected.lock().expect("lock").clone();
        assert!(errs.is_empty(), "cycle {cycle}: writes failed before the kill: {errs:?}");
        let written = acked.lock().expect("lock").len() - before;
        assert!(written > 0, "cycle {cycle}: no write was acknowledged in the window");
        eprintln!("crash cycle {cycle}: {written} journaled inserts acknowledged before SIGKILL");
    }

    let daemon = spawn(dbdir.path(), logdir.path(), "final");
    let client = client_for(&daemon);
    let present = present_ids(&client);
    let acked = acked.lock().expect("lock").clone();
    let lost: Vec<i64> = acked.iter().copied().filter(|id| !present.contains(id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged ids lost: {lost:?}", lost.len(), acked.len());
    // The store still accepts writes after the crashes.
    client
        .database("crashdb")
        .collection::<Document>("c")
        .insert_one(doc! {"_id": 0_i64})
        .run()
        .expect("insert after recovery");
    drop(client);
    drop(daemon);
}

/// SIGTERM is a clean shutdown: the daemon exits 0 after checkpointing, and a restart finds
/// every write, acknowledged with the default (non-journaled for w:1) write concern too.
#[test]
fn sigterm_shuts_down_cleanly_and_keeps_everything() {
    let dbdir = tempfile::tempdir().expect("tempdir");
    let logdir = tempfile::tempdir().expect("tempdir");
    let mut d = spawn(dbdir.path(), logdir.path(), "term");
    {
        let client = client_for(&d);
        let c = client.database("crashdb").collection::<Document>("c");
        let w1 = WriteConcern::builder().w(mongodb::options::Acknowledgment::Nodes(1)).build();
        for i in 0..500i64 {
            c.insert_one(doc! { "_id": i }).write_concern(w1.clone()).run().expect("insert");
        }
    }
    // SAFETY: sending a signal to our own child process by its pid.
    let rc = unsafe { libc::kill(d.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = d.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not exit on SIGTERM:\n{}", d.log_text());
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}:\n{}", d.log_text());
    let d2 = spawn(dbdir.path(), logdir.path(), "term-restart");
    let ids = present_ids(&client_for(&d2));
    assert_eq!(ids.len(), 500);
}

/// Past `--maxConns` a new connection is closed at once and the server carries on.
#[test]
fn connections_past_the_limit_are_refused_cleanly() {
    use std::io::Read;
    let server = crate::common::builder().max_connections(2).start().expect("server");
    let addr = server.addr();
    let a = TcpStream::connect(addr).unwrap();
    let b = TcpStream::connect(addr).unwrap();
    // Let the accept loop register both before the third arrives.
    thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(&raw::op_msg(1, &doc! {"ping": 1, "$db": "admin"}));
    let mut buf = [0u8; 16];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the third connection must be closed without a reply");
    drop(a);
    drop(b);
    // Once the others are gone, new connections are served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers_ping(addr) {
        assert!(Instant::now() < deadline, "server did not accept connections again");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Retryable writes acknowledged before a SIGKILL keep their history: after the restart a
/// retry returns the original reply and applies nothing again.
#[test]
fn retryable_write_history_survives_sigkill() {
    let dbdir = tempfile::tempdir().expect("tempdir");
    let logdir = tempfile::tempdir().expect("tempdir");
    let lsid = || doc! { "id": mongodb::bson::Binary::from_uuid(mongodb::bson::Uuid::new()) };
    let cmds = [
        doc! { "insert": "r", "documents": [{ "_id": 1, "n": 0 }], "lsid": lsid(), "txnNumber": 1i64, "$db": "crashdb" },
        doc! { "update": "r", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } }],
        "lsid": lsid(), "txnNumber": 1i64, "$db": "crashdb" },
        doc! { "findAndModify": "r", "query": { "_id": 1 }, "update": { "$inc": { "n": 10 } }, "new": true,
        "lsid": lsid(), "txnNumber": 1i64, "$db": "crashdb" },
    ];
    let mut d = spawn(dbdir.path(), logdir.path(), "retry");
    let firsts: Vec<Document> = cmds.iter().map(|c| raw::command(d.addr(), c)).collect();
    for r in &firsts {
        assert!(raw::is_ok(r), "{r}");
    }
    d.kill();
    let d2 = spawn(dbdir.path(), logdir.path(), "retry-restart");
    for (c, first) in cmds.iter().zip(&firsts) {
        let again = raw::command(d2.addr(), c);
        assert!(raw::is_ok(&again), "{again}");
        for k in ["n", "nModified", "value", "lastErrorObject"] {
            assert_eq!(again.get(k), first.get(k), "{k} of {c}");
        }
        assert!(again.contains_key("retriedStmtIds") || again.contains_key("retriedStmtId"), "{again}");
    }
    let r = raw::command(d2.addr(), &doc! { "find": "r", "$db": "crashdb" });
    let batch = r.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch, &vec![Bson::Document(doc! { "_id": 1, "n": 11 })], "each write applied once");
}
