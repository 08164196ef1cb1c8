//! Logical sessions: the server-side record of every `lsid` a client has used, its last use,
//! and the history of its latest retryable write (per statement id, the result to give back
//! when the statement is retried).
//!
//! The history is kept here in memory and, durably, in `retry_history` (mongod's
//! `config.transactions`), so a retry reaches the original result across reconnections,
//! connections and server restarts.

use crate::auth::users::Name;
use crate::store::StoreSession;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mongod's default `localLogicalSessionTimeoutMinutes`.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// mongod's `maxSessions` default: more live sessions than this is TooManyLogicalSessions.
pub const MAX_SESSIONS: usize = 1_000_000;

/// The `id` of an lsid: a UUID (BinData subtype 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh random (version 4) UUID, as startSession hands out.
    pub fn random() -> SessionId {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        SessionId(b)
    }

    pub fn from_bson(v: &Bson) -> Option<SessionId> {
        match v {
            Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes }) => {
                bytes.as_slice().try_into().ok().map(SessionId)
            }
            _ => None,
        }
    }

    pub fn to_bson(self) -> Bson {
        Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: self.0.to_vec() })
    }

    /// `{id: UUID}`, the lsid document.
    pub fn to_lsid(self) -> Document {
        bson::doc! { "id": self.to_bson() }
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The multi-document transaction of a session's current txnNumber.
#[derive(Default)]
pub enum Transaction {
    /// The txnNumber is a retryable write (or the session has none).
    #[default]
    None,
    /// Open: its own WiredTiger session holds the open WiredTiger transaction, used by
    /// whichever connection runs the next statement. Dropping it rolls everything back.
    InProgress {
        store: Box<StoreSession>,
        started: Instant,
    },
    Committed,
    Aborted,
}

impl Transaction {
    /// Rolls an open transaction back; true if there was one.
    pub fn abort(&mut self) -> bool {
        if let Transaction::InProgress { store, .. } = self {
            store.abort_multi();
            *self = Transaction::Aborted;
            return true;
        }
        false
    }
}

/// The state of one session: the highest txnNumber it has started, for that txnNumber each
/// executed retryable-write statement's result, and its multi-document transaction.
#[derive(Default)]
pub struct SessionState {
    pub txn_number: Option<i64>,
    pub statements: HashMap<i32, Document>,
    pub txn: Transaction,
}

struct Entry {
    last_use: Instant,
    state: Arc<Mutex<SessionState>>,
    /// The users logged in on the connection that created the session (killAllSessions and
    /// killAllSessionsByPattern select sessions by them).
    owners: Vec<Name>,
}

impl Entry {
    fn new(owners: &[Name]) -> Entry {
        Entry { last_use: Instant::now(), state: Arc::default(), owners: owners.to_vec() }
    }
}

/// Every live session. Commands touch their session on every use; the reaper thread expires
/// sessions idle for longer than the timeout.
pub struct SessionRegistry {
    map: Mutex<HashMap<SessionId, Entry>>,
    timeout: Duration,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        SessionRegistry { map: Mutex::new(HashMap::new()), timeout: SESSION_TIMEOUT }
    }
}

impl SessionRegistry {
    /// Records a use of `id`, creating the session if it is new ("vivify" in mongod). Returns
    /// false when the registry is full and the session is new.
    pub fn touch(&self, id: SessionId, owners: &[Name]) -> bool {
        let mut map = self.map.lock();
        let now = Instant::now();
        if let Some(e) = map.get_mut(&id) {
            e.last_use = now;
            return true;
        }
        if map.len() >= MAX_SESSIONS {
            return false;
        }
        map.insert(id, Entry::new(owners));
        true
    }

    /// A new session with a random id.
    pub fn start(&self, owners: &[Name]) -> Option<SessionId> {
        loop {
            let id = SessionId::random();
            let mut map = self.map.lock();
            if map.len() >= MAX_SESSIONS {
                return None;
            }
            if let std::collections::hash_map::Entry::Vacant(v) = map.entry(id) {
                v.insert(Entry::new(owners));
                return Some(id);
            }
        }
    }

    /// The session's retryable-write state (created if needed). Holding its lock is
    /// mongod's "session checkout": one retryable write at a time per session.
    pub fn state(&self, id: SessionId) -> Arc<Mutex<SessionState>> {
        let mut map = self.map.lock();
        let e = map.entry(id).or_insert_with(|| Entry::new(&[]));
        e.last_use = Instant::now();
        e.state.clone()
    }

    /// Puts back a session's history read from disk at start-up (its idle clock starts now).
    pub fn restore(&self, id: SessionId, txn_number: i64, statements: HashMap<i32, Document>) {
        let state = SessionState { txn_number: Some(txn_number), statements, txn: Transaction::None };
        let entry =
            Entry { last_use: Instant::now(), state: Arc::new(Mutex::new(state)), owners: Vec::new() };
        self.map.lock().insert(id, entry);
    }

    /// Forgets a session and its history; true if it existed.
    pub fn end(&self, id: SessionId) -> bool {
        self.map.lock().remove(&id).is_some()
    }

    pub fn contains(&self, id: SessionId) -> bool {
        self.map.lock().contains_key(&id)
    }

    pub fn ids(&self) -> Vec<SessionId> {
        self.map.lock().keys().copied().collect()
    }

    /// The sessions whose owners `pred` accepts, with their owners.
    pub fn owned(&self, pred: impl Fn(&[Name]) -> bool) -> Vec<SessionId> {
        self.map.lock().iter().filter(|(_, e)| pred(&e.owners)).map(|(id, _)| *id).collect()
    }

    /// Every session with how long ago it was last used (`$listLocalSessions`).
    pub fn list(&self) -> Vec<(SessionId, Duration)> {
        let now = Instant::now();
        self.map.lock().iter().map(|(id, e)| (*id, now.saturating_duration_since(e.last_use))).collect()
    }

    /// Removes the sessions idle for longer than the timeout at `now`; returns their ids (the
    /// caller kills their cursors).
    pub fn reap(&self, now: Instant) -> Vec<SessionId> {
        let mut map = self.map.lock();
        let mut expired = Vec::new();
        map.retain(|id, e| {
            // A session whose state is locked is running a write right now: not idle.
            let idle = now.saturating_duration_since(e.last_use) >= self.timeout && !e.state.is_locked();
            if idle {
                expired.push(*id);
            }
            !idle
        });
        expired
    }

    /// When the next session expires if it stays idle (`now` + the timeout with none); a
    /// session running a statement is looked at again after `busy_retry`.
    pub fn next_expiry(&self, now: Instant, busy_retry: Duration) -> Instant {
        self.map
            .lock()
            .values()
            .map(|e| if e.state.is_locked() { now + busy_retry } else { e.last_use + self.timeout })
            .min()
            .unwrap_or(now + self.timeout)
    }

    /// When the oldest open transaction reaches `limit` (`now` + `limit` with none open: a
    /// transaction started later ends later); a busy session is looked at after `busy_retry`.
    pub fn next_transaction_deadline(&self, now: Instant, limit: Duration, busy_retry: Duration) -> Instant {
        let states: Vec<_> = self.map.lock().values().map(|e| e.state.clone()).collect();
        let mut next = now + limit;
        for st in states {
            let due = match st.try_lock() {
                Some(st) => match &st.txn {
                    Transaction::InProgress { started, .. } => *started + limit,
                    _ => continue,
                },
                None => now + busy_retry,
            };
            next = next.min(due);
        }
        next
    }

    /// Aborts the transactions open for longer than `limit` (mongod's
    /// transactionLifetimeLimitSeconds); a session busy running a statement is left alone
    /// until its next round. Returns how many were aborted.
    pub fn abort_expired_transactions(&self, now: Instant, limit: Duration) -> usize {
        let states: Vec<_> = self.map.lock().values().map(|e| e.state.clone()).collect();
        let mut n = 0;
        for st in states {
            let Some(mut st) = st.try_lock() else { continue };
            if let Transaction::InProgress { started, .. } = &st.txn {
                if now.saturating_duration_since(*started) >= limit && st.txn.abort() {
                    n += 1;
                }
            }
        }
        n
    }

    /// Aborts the open transactions of these sessions (killSessions and friends); waits for
    /// a statement in progress to finish first.
    pub fn abort_transactions(&self, ids: &[SessionId]) {
        let states: Vec<_> = {
            let map = self.map.lock();
            ids.iter().filter_map(|id| map.get(id).map(|e| e.state.clone())).collect()
        };
        for st in states {
            st.lock().txn.abort();
        }
    }

    /// The sessions holding an open transaction that no statement is running right now, with
    /// their txnNumber and when the transaction started (`$currentOp` idle sessions; read
    /// only: it neither touches nor waits for a session).
    pub fn idle_transactions(&self) -> Vec<(SessionId, i64, Instant)> {
        let states: Vec<_> = self.map.lock().iter().map(|(id, e)| (*id, e.state.clone())).collect();
        let mut out = Vec::new();
        for (id, st) in states {
            let Some(st) = st.try_lock() else { continue };
            if let (Transaction::InProgress { started, .. }, Some(n)) = (&st.txn, st.txn_number) {
                out.push((id, n, *started));
            }
        }
        out
    }

    /// Rolls back every open transaction (at shutdown, before the store closes).
    pub fn abort_all_transactions(&self) {
        let states: Vec<_> = self.map.lock().values().map(|e| e.state.clone()).collect();
        for st in states {
            st.lock().txn = Transaction::None;
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_print_as_uuids() {
        let id = SessionId::random();
        assert_eq!(SessionId::from_bson(&id.to_bson()), Some(id));
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(s.as_bytes()[14], b'4');
        assert_eq!(SessionId::from_bson(&Bson::Int32(1)), None);
        let short = Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: vec![1, 2] });
        assert_eq!(SessionId::from_bson(&short), None);
    }

    #[test]
    fn touch_end_and_expiry() {
        let reg = SessionRegistry::default();
        let a = reg.start(&[]).unwrap();
        let b = SessionId::random();
        assert!(reg.touch(b, &[]));
        assert_eq!(reg.len(), 2);
        assert!(reg.reap(Instant::now()).is_empty());
        assert!(reg.end(a));
        assert!(!reg.end(a));
        let later = Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1);
        assert_eq!(reg.reap(later), vec![b]);
        assert!(reg.is_empty());
    }

    #[test]
    fn a_checked_out_session_is_not_reaped() {
        let reg = SessionRegistry::default();
        let a = SessionId::random();
        let st = reg.state(a);
        let _guard = st.lock();
        let later = Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1);
        assert!(reg.reap(later).is_empty());
    }
}
