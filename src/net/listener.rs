//! The accept loop and the registry of live connections, so shutdown can close them all.

use crate::server::Shared;
use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Binds with SO_REUSEADDR so a restarted daemon can take its port back at once.
pub fn bind(host: &str, port: u16) -> io::Result<(TcpListener, SocketAddr)> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("cannot resolve {host}")))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let listener: TcpListener = socket.into();
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// The bson crate recurses per nesting level when decoding, encoding and dropping documents;
/// a roomy stack keeps the 200-level limit far from overflow. Only touched pages cost memory.
const CONN_STACK: usize = 16 * 1024 * 1024;

type ConnMap = Arc<Mutex<HashMap<i64, (TcpStream, Option<JoinHandle<()>>)>>>;

pub struct Listener {
    addr: SocketAddr,
    accept_thread: Option<JoinHandle<()>>,
    conns: ConnMap,
    shared: Arc<Shared>,
    // Dropped on stop: wakes every thread waiting on `Shared::shutdown_signal`.
    signal: Option<crossbeam_channel::Sender<()>>,
}

impl Listener {
    pub fn start(
        listener: TcpListener,
        addr: SocketAddr,
        shared: Arc<Shared>,
        signal: crossbeam_channel::Sender<()>,
    ) -> io::Result<Listener> {
        let conns: ConnMap = Arc::new(Mutex::new(HashMap::new()));
        let conns2 = conns.clone();
        let shared2 = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, shared2, conns2))?;
        Ok(Listener { addr, accept_thread: Some(accept_thread), conns, shared, signal: Some(signal) })
    }

    /// Stops accepting, closes every client socket and joins the connection threads.
    pub fn stop(mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.signal.take();
        // Wake the blocking accept() with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, std::time::Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let handles: Vec<JoinHandle<()>> = {
            let mut map = self.conns.lock();
            map.values_mut()
                .filter_map(|(s, h)| {
                    let _ = s.shutdown(Shutdown::Both);
                    h.take()
                })
                .collect()
        };
        for h in handles {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, conns: ConnMap) {
    for stream in listener.incoming() {
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                // Out of file descriptors and the like: do not spin.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let current = shared.stats.connections_current.load(Ordering::SeqCst);
        if current as usize >= shared.config.max_connections {
            shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
            log::warn!("connection refused because too many open connections: {current}");
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn_id.fetch_add(1, Ordering::SeqCst);
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        shared.stats.connections_current.fetch_add(1, Ordering::SeqCst);
        shared.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        let conns2 = conns.clone();
        // Register before the thread starts so it can always find (and remove) itself.
        conns.lock().insert(id, (registered, None));
        let spawned =
            std::thread::Builder::new().name(format!("conn{id}")).stack_size(CONN_STACK).spawn(move || {
                super::conn::serve(stream, &shared2, id);
                shared2.stats.connections_current.fetch_sub(1, Ordering::SeqCst);
                conns2.lock().remove(&id);
            });
        match spawned {
            Ok(h) => {
                if let Some(entry) = conns.lock().get_mut(&id) {
                    entry.1 = Some(h);
                }
            }
            Err(e) => {
                log::warn!("cannot start a connection thread: {e}");
                conns.lock().remove(&id);
                shared.stats.connections_current.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
