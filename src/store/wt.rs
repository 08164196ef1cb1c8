//! Safe wrapper over WiredTiger (through the C shim of `wiredtiger_sys`).
//!
//! One Rust type owns each raw handle:
//! - [`Connection`] owns the `WT_CONNECTION`. WiredTiger connections are
//!   thread-safe; the wrapper only serialises opening sessions against closing.
//! - [`Session`] owns a `WT_SESSION`. A session (and its cursors) may be used
//!   by one thread at a time but may move between threads: `Send`, `!Sync`.
//! - [`Cursor`] owns a `WT_CURSOR`. It borrows its session, so it is closed
//!   before the session and stays on the session's thread.
//!
//! Keys and values are borrowed only for the duration of one call: every
//! mutating cursor method sets the key (and value) and performs the operation
//! before returning. Key/value reads are copied into cursor-owned buffers,
//! because session-level calls (`rollback_transaction`, `reset`) may release
//! the WiredTiger memory a cursor points at while a `&Session` is shared.

use std::cell::{Cell, UnsafeCell};
use std::cmp::Ordering;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard};

use wiredtiger_sys as sys;

/// A failed WiredTiger call: the error code (WiredTiger's own negative codes
/// or an errno value) and WiredTiger's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WtError {
    pub code: i32,
    pub message: String,
}

impl WtError {
    /// Conflict with a concurrent transaction: roll back and retry.
    pub fn is_rollback(&self) -> bool {
        self.code == sys::WT_ROLLBACK
    }
    /// Insert of an existing key through an `overwrite=false` cursor.
    pub fn is_duplicate_key(&self) -> bool {
        self.code == sys::WT_DUPLICATE_KEY
    }
    /// Key not found (e.g. `remove`/`update` on an `overwrite=false` cursor).
    pub fn is_not_found(&self) -> bool {
        self.code == sys::WT_NOTFOUND
    }
    /// The object is in use (e.g. `drop` of a table with open cursors).
    pub fn is_busy(&self) -> bool {
        self.code == sys::EBUSY
    }

    /// An error detected by this wrapper before reaching WiredTiger.
    fn invalid(message: impl Into<String>) -> WtError {
        WtError { code: sys::EINVAL, message: message.into() }
    }

    /// Builds the error for `code`, using the message WiredTiger reported on
    /// this thread during the failed shim call when there is one. Must be
    /// called right after that call, before any other shim call.
    fn from_code(code: c_int) -> WtError {
        let mut msg: *const c_char = ptr::null();
        // SAFETY: the shim writes a pointer to its thread-local buffer.
        let len = unsafe { sys::wts_last_error_message(&mut msg) };
        let message = if len > 0 && !msg.is_null() {
            // SAFETY: the shim's buffer is NUL-terminated and lives for the thread.
            tidy_message(&unsafe { CStr::from_ptr(msg) }.to_string_lossy())
        } else {
            strerror(code)
        };
        WtError { code, message }
    }
}

/// Shortens WiredTiger's "[time][pid:tid], API: [category][level]: func, line: text"
/// to "API: func, line: text"; other shapes are kept whole.
fn tidy_message(raw: &str) -> String {
    let shortened = (|| {
        let rest = raw.strip_prefix('[')?;
        let rest = &rest[rest.find("], ")? + 3..];
        let (api, tail) = rest.split_once(": [")?;
        let detail = &tail[tail.find("]: ")? + 3..];
        Some(format!("{api}: {detail}"))
    })();
    shortened.unwrap_or_else(|| raw.to_string())
}

impl fmt::Display for WtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WiredTiger error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for WtError {}

pub type WtResult<T> = Result<T, WtError>;

/// WiredTiger's description of an error code.
pub fn strerror(code: i32) -> String {
    // SAFETY: the shim returns null or a constant NUL-terminated string.
    let s = unsafe { sys::wts_strerror(code) };
    if s.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

fn check(ret: c_int) -> WtResult<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(WtError::from_code(ret))
    }
}

fn cstring(what: &str, s: &str) -> WtResult<CString> {
    CString::new(s).map_err(|_| WtError::invalid(format!("{what} contains a NUL byte")))
}

struct ConnState {
    /// Null once closed.
    raw: *mut sys::WT_CONNECTION,
    /// Sessions opened and not yet dropped; `close` refuses unless zero.
    sessions: usize,
}

/// An open WiredTiger database.
///
/// Safety invariants: `WT_CONNECTION` methods are thread-safe, so the handle
/// is shared freely (`Send + Sync`). The mutex orders `open_session` against
/// `close`, and `close` refuses while sessions are alive, so no session ever
/// outlives the connection handle. `Drop` closes a connection not closed yet;
/// it only runs once every `Session` (each holds an `Arc`) is gone.
pub struct Connection {
    state: Mutex<ConnState>,
    home: PathBuf,
}

// SAFETY: see the type's invariants; the raw pointer is only used under the
// mutex (open_session/close) and WiredTiger allows any thread to use it.
unsafe impl Send for Connection {}
// SAFETY: as above.
unsafe impl Sync for Connection {}

impl Connection {
    /// Opens (with `create` in `config`: creates) the database in `home`,
    /// which must be an existing directory.
    pub fn open(home: &Path, config: &str) -> WtResult<Arc<Connection>> {
        use std::os::unix::ffi::OsStrExt;
        let home_c = CString::new(home.as_os_str().as_bytes())
            .map_err(|_| WtError::invalid("home path contains a NUL byte"))?;
        let config_c = cstring("config", config)?;
        let mut raw: *mut sys::WT_CONNECTION = ptr::null_mut();
        // SAFETY: valid C strings and out-pointer for the duration of the call.
        check(unsafe { sys::wts_open(home_c.as_ptr(), config_c.as_ptr(), &mut raw) })?;
        if raw.is_null() {
            return Err(WtError::invalid("wiredtiger_open returned no connection"));
        }
        Ok(Arc::new(Connection {
            state: Mutex::new(ConnState { raw, sessions: 0 }),
            home: home.to_path_buf(),
        }))
    }

    /// The database directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A panic while holding the lock leaves the state consistent (every
        // update is a single assignment), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; the session keeps this connection alive.
    pub fn open_session(self: &Arc<Self>) -> WtResult<Session> {
        let mut st = self.lock();
        if st.raw.is_null() {
            return Err(WtError::invalid("connection is closed"));
        }
        let mut raw: *mut sys::WT_SESSION = ptr::null_mut();
        // SAFETY: the connection is open (checked under the lock, and close
        // takes the same lock); the config is a valid C string.
        check(unsafe { sys::wts_open_session(st.raw, c"".as_ptr(), &mut raw) })?;
        let raw = NonNull::new(raw).ok_or_else(|| WtError::invalid("open_session returned no session"))?;
        st.sessions += 1;
        drop(st);
        Ok(Session { raw, conn: Arc::clone(self) })
    }

    /// `WT_CONNECTION::set_timestamp` (e.g. `oldest_timestamp=..,stable_timestamp=..`, hex).
    pub fn set_timestamp(&self, config: &str) -> WtResult<()> {
        let config_c = cstring("config", config)?;
        let st = self.lock();
        if st.raw.is_null() {
            return Err(WtError::invalid("connection is closed"));
        }
        // SAFETY: open connection (checked under the lock close takes); valid C string.
        check(unsafe { sys::wts_conn_set_timestamp(st.raw, config_c.as_ptr()) })
    }

    /// `WT_CONNECTION::query_timestamp` (`get=all_durable`, `get=recovery`, ...); 0 when
    /// WiredTiger has none.
    pub fn query_timestamp(&self, config: &str) -> WtResult<u64> {
        let config_c = cstring("config", config)?;
        let st = self.lock();
        if st.raw.is_null() {
            return Err(WtError::invalid("connection is closed"));
        }
        let mut ts = 0u64;
        // SAFETY: as in set_timestamp; `ts` is a valid out-pointer.
        check(unsafe { sys::wts_conn_query_timestamp(st.raw, config_c.as_ptr(), &mut ts) })?;
        Ok(ts)
    }

    /// Closes the connection (a checkpoint is taken unless `config` says
    /// otherwise). Idempotent. Fails with EBUSY while sessions are alive.
    pub fn close(&self, config: &str) -> WtResult<()> {
        let config_c = cstring("config", config)?;
        let mut st = self.lock();
        if st.raw.is_null() {
            return Ok(());
        }
        if st.sessions > 0 {
            return Err(WtError {
                code: sys::EBUSY,
                message: format!("cannot close the connection: {} session(s) still open", st.sessions),
            });
        }
        let raw = std::mem::replace(&mut st.raw, ptr::null_mut());
        // SAFETY: open handle with no sessions; it is never used again
        // (raw is now null), even if close fails.
        check(unsafe { sys::wts_conn_close(raw, config_c.as_ptr()) })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Err(e) = self.close("") {
            eprintln!("closing WiredTiger connection: {e}");
        }
    }
}

/// A WiredTiger session: the unit of transactions and the factory of cursors.
///
/// Safety invariants: a `WT_SESSION` and its cursors are used by one thread
/// at a time; they may move to another thread (`Send`, not `Sync`). The
/// session holds an `Arc<Connection>` and is counted in the connection's
/// state, so the connection stays open while it lives. Cursors borrow the
/// session, so all are closed before `Drop` closes it.
pub struct Session {
    raw: NonNull<sys::WT_SESSION>,
    conn: Arc<Connection>,
}

// SAFETY: see the type's invariants. NonNull keeps it !Sync.
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: we own the handle; no cursor borrows us any more.
        let ret = unsafe { sys::wts_session_close(self.raw.as_ptr(), ptr::null()) };
        if ret != 0 {
            eprintln!("closing WiredTiger session: {}", WtError::from_code(ret));
        }
        let mut st = self.conn.lock();
        st.sessions = st.sessions.saturating_sub(1);
    }
}

impl Session {
    fn raw(&self) -> *mut sys::WT_SESSION {
        self.raw.as_ptr()
    }

    /// The connection this session belongs to.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Runs a session method taking one config string.
    fn call_cfg(
        &self,
        config: &str,
        f: unsafe extern "C" fn(*mut sys::WT_SESSION, *const c_char) -> c_int,
    ) -> WtResult<()> {
        let config_c = cstring("config", config)?;
        // SAFETY: open session used from its owning thread; valid C string.
        check(unsafe { f(self.raw(), config_c.as_ptr()) })
    }

    fn call_uri_cfg(
        &self,
        uri: &str,
        config: &str,
        f: unsafe extern "C" fn(*mut sys::WT_SESSION, *const c_char, *const c_char) -> c_int,
    ) -> WtResult<()> {
        let uri_c = cstring("uri", uri)?;
        let config_c = cstring("config", config)?;
        // SAFETY: as in call_cfg.
        check(unsafe { f(self.raw(), uri_c.as_ptr(), config_c.as_ptr()) })
    }

    pub fn create(&self, uri: &str, config: &str) -> WtResult<()> {
        self.call_uri_cfg(uri, config, sys::wts_create)
    }

    /// Drops `uri`; fails with EBUSY (`is_busy`) while cursors on it are open.
    pub fn drop_uri(&self, uri: &str, config: &str) -> WtResult<()> {
        self.call_uri_cfg(uri, config, sys::wts_drop)
    }

    pub fn begin_transaction(&self, config: &str) -> WtResult<()> {
        self.call_cfg(config, sys::wts_begin_transaction)
    }

    pub fn commit_transaction(&self, config: &str) -> WtResult<()> {
        self.call_cfg(config, sys::wts_commit_transaction)
    }

    /// Rolls back; WiredTiger resets this session's cursors.
    pub fn rollback_transaction(&self, config: &str) -> WtResult<()> {
        self.call_cfg(config, sys::wts_rollback_transaction)
    }

    /// Sets the commit timestamp of the running transaction: updates made from now on (and
    /// those made before any was set) become visible to readers at this timestamp.
    pub fn set_commit_timestamp(&self, ts: u64) -> WtResult<()> {
        // SAFETY: open session used from its owning thread.
        check(unsafe { sys::wts_set_commit_timestamp(self.raw(), ts) })
    }

    /// Makes the running transaction read as of `ts` (before its first read).
    pub fn set_read_timestamp(&self, ts: u64) -> WtResult<()> {
        // SAFETY: open session used from its owning thread.
        check(unsafe { sys::wts_set_read_timestamp(self.raw(), ts) })
    }

    pub fn checkpoint(&self, config: &str) -> WtResult<()> {
        self.call_cfg(config, sys::wts_checkpoint)
    }

    pub fn log_flush(&self, config: &str) -> WtResult<()> {
        self.call_cfg(config, sys::wts_log_flush)
    }

    /// Resets all of this session's cursors and releases cached resources.
    pub fn reset(&self) -> WtResult<()> {
        // SAFETY: open session used from its owning thread.
        check(unsafe { sys::wts_session_reset(self.raw()) })
    }

    /// Opens a cursor. Keys are typed by the object's key_format: `q`
    /// ([`Key::Int`]), `u` or `S` ([`Key::Bytes`]); values must be `u` or `S`.
    /// Raw-mode cursors are refused (their key/value ABI differs).
    pub fn open_cursor(&self, uri: &str, config: Option<&str>) -> WtResult<Cursor<'_>> {
        let uri_c = cstring("uri", uri)?;
        let config_c = config.map(|c| cstring("config", c)).transpose()?;
        let config_p = config_c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        let mut raw: *mut sys::WT_CURSOR = ptr::null_mut();
        // SAFETY: open session, valid C strings and out-pointer.
        check(unsafe { sys::wts_open_cursor(self.raw(), uri_c.as_ptr(), config_p, &mut raw) })?;
        let raw = NonNull::new(raw).ok_or_else(|| WtError::invalid("open_cursor returned no cursor"))?;
        // SAFETY: freshly opened cursor; the format strings belong to it.
        let (key_fmt, value_fmt, is_raw) = unsafe {
            (
                Format::of(sys::wts_cursor_key_format(raw.as_ptr())),
                Format::of(sys::wts_cursor_value_format(raw.as_ptr())),
                sys::wts_cursor_is_raw(raw.as_ptr()) != 0,
            )
        };
        let cursor = Cursor {
            raw,
            key_fmt,
            value_fmt,
            positioned: false,
            key_buf: UnsafeCell::new(Vec::new()),
            key_cached: Cell::new(false),
            value_buf: UnsafeCell::new(Vec::new()),
            value_cached: Cell::new(false),
            key_c: Vec::new(),
            value_c: Vec::new(),
            _session: PhantomData,
        };
        if is_raw {
            // Dropping the cursor closes it.
            return Err(WtError::invalid("raw-mode cursors are not supported"));
        }
        Ok(cursor)
    }

    /// Size in bytes of the file backing `table:name` (found through the
    /// metadata) or `file:name`: what is on disk now, so data not yet
    /// checkpointed is not counted. Needs no statistics configuration.
    pub fn table_size(&self, uri: &str) -> WtResult<u64> {
        let file = if let Some(f) = uri.strip_prefix("file:") {
            f.to_string()
        } else if let Some(name) = uri.strip_prefix("table:") {
            let mut meta = self.open_cursor("metadata:", None)?;
            let key = format!("colgroup:{name}");
            if !meta.search(Key::Bytes(key.as_bytes()))? {
                return Err(WtError { code: sys::ENOENT, message: format!("{uri}: no such table") });
            }
            let config = String::from_utf8_lossy(meta.value()?).into_owned();
            let source = config
                .split_once("source=\"file:")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(file, _)| file.to_string());
            source.ok_or_else(|| WtError::invalid(format!("{uri} is not backed by one file")))?
        } else {
            return Err(WtError::invalid(format!("table_size: unsupported URI {uri}")));
        };
        // The name comes from the caller or the metadata; keep it inside home.
        let rel = Path::new(&file);
        if file.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(WtError::invalid(format!("{uri}: unexpected file name {file}")));
        }
        std::fs::metadata(self.conn.home.join(rel)).map(|m| m.len()).map_err(|e| WtError {
            code: e.raw_os_error().unwrap_or(sys::EINVAL),
            message: format!("{file}: {e}"),
        })
    }

    /// All entries of a statistics cursor (`statistics:` for the connection,
    /// `statistics:table:name` for a table) as (description, value) pairs.
    /// WiredTiger only allows this when the connection was opened with
    /// statistics enabled (e.g. `statistics=(fast)`); `config` is the cursor
    /// config and must not ask for more than the connection collects.
    pub fn statistics(&self, uri: &str, config: Option<&str>) -> WtResult<Vec<(String, i64)>> {
        if !uri.starts_with("statistics:") {
            return Err(WtError::invalid("not a statistics: URI"));
        }
        let cur = self.open_cursor(uri, config)?;
        let mut out = Vec::new();
        loop {
            // SAFETY: open statistics cursor (key "i", value "SSq"), used on
            // this thread; desc belongs to the cursor and is copied at once.
            let ret = unsafe { sys::wts_next(cur.raw.as_ptr()) };
            if ret == sys::WT_NOTFOUND {
                break;
            }
            check(ret)?;
            let (mut key, mut desc, mut value) = (0i32, ptr::null(), 0i64);
            // SAFETY: as above.
            check(unsafe { sys::wts_stat_get(cur.raw.as_ptr(), &mut key, &mut desc, &mut value) })?;
            let desc = if desc.is_null() {
                format!("stat {key}")
            } else {
                // SAFETY: NUL-terminated string owned by the cursor.
                unsafe { CStr::from_ptr(desc) }.to_string_lossy().into_owned()
            };
            out.push((desc, value));
        }
        Ok(out)
    }
}

/// A key, typed by the cursor's key_format (`q`: Int; `u`/`S`: Bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `q`: int64.
    Int,
    /// `u`: raw bytes (WT_ITEM).
    Bytes,
    /// `S`: NUL-terminated string (metadata: cursors).
    Str,
    /// Anything else: only usable through dedicated helpers.
    Other,
}

impl Format {
    /// # Safety
    /// `f` is null or a NUL-terminated string.
    unsafe fn of(f: *const c_char) -> Format {
        if f.is_null() {
            return Format::Other;
        }
        // SAFETY: per the contract.
        match unsafe { CStr::from_ptr(f) }.to_bytes() {
            b"q" => Format::Int,
            b"u" => Format::Bytes,
            b"S" => Format::Str,
            _ => Format::Other,
        }
    }
}

/// Fills `buf` with `bytes` plus a terminating NUL, for `S` formats.
fn nul_terminated(buf: &mut Vec<u8>, bytes: &[u8]) -> WtResult<()> {
    if bytes.contains(&0) {
        return Err(WtError::invalid("string key/value contains a NUL byte"));
    }
    buf.clear();
    buf.extend_from_slice(bytes);
    buf.push(0);
    Ok(())
}

/// An open cursor on a session.
///
/// Safety invariants: borrows its `Session` (so it is closed first and stays
/// on the session's thread: `!Send`, `!Sync`). WiredTiger's key/value memory
/// is read only while the cursor is positioned by our last successful
/// search/search_near/next/prev and copied into `key_buf`/`value_buf`; those
/// buffers are written only while not `*_cached`, and the flags are cleared
/// only by `&mut self` methods, so no slice handed out is ever overwritten.
pub struct Cursor<'s> {
    raw: NonNull<sys::WT_CURSOR>,
    key_fmt: Format,
    value_fmt: Format,
    positioned: bool,
    key_buf: UnsafeCell<Vec<u8>>,
    key_cached: Cell<bool>,
    value_buf: UnsafeCell<Vec<u8>>,
    value_cached: Cell<bool>,
    /// NUL-terminated copies for `S` formats; must outlive the operation.
    key_c: Vec<u8>,
    value_c: Vec<u8>,
    _session: PhantomData<&'s Session>,
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the handle and the session is still open (borrowed).
        let ret = unsafe { sys::wts_cursor_close(self.raw.as_ptr()) };
        if ret != 0 {
            eprintln!("closing WiredTiger cursor: {}", WtError::from_code(ret));
        }
    }
}

impl Cursor<'_> {
    fn raw(&self) -> *mut sys::WT_CURSOR {
        self.raw.as_ptr()
    }

    /// Forgets the position (and cached copies); called before every operation.
    fn unposition(&mut self) {
        self.positioned = false;
        self.key_cached.set(false);
        self.value_cached.set(false);
    }

    /// Sets the key. The memory it points to (caller's slice or `key_c`)
    /// must stay untouched until the operation that follows has returned.
    fn set_key(&mut self, key: Key<'_>) -> WtResult<()> {
        // WiredTiger panics the whole connection when set_key fails, so its
        // checks (non-empty, < 4GB) are made here first.
        if let Key::Bytes(b) = key {
            if b.is_empty() && self.key_fmt == Format::Bytes {
                return Err(WtError::invalid("empty keys are not permitted"));
            }
            if b.len() >= u32::MAX as usize {
                return Err(WtError::invalid("key too large"));
            }
        }
        match (self.key_fmt, key) {
            // SAFETY (all arms): open cursor; WiredTiger reads the key memory
            // during the next operation, which the caller performs while the
            // borrow is still live.
            (Format::Int, Key::Int(k)) => unsafe { sys::wts_set_key_q(self.raw(), k) },
            (Format::Bytes, Key::Bytes(b)) => unsafe {
                sys::wts_set_key_u(self.raw(), b.as_ptr().cast::<c_void>(), b.len())
            },
            (Format::Str, Key::Bytes(b)) => {
                nul_terminated(&mut self.key_c, b)?;
                unsafe { sys::wts_set_key_s(self.raw(), self.key_c.as_ptr().cast::<c_char>()) }
            }
            (fmt, key) => {
                // Only the kind: the key itself may be large client data.
                let kind = match key {
                    Key::Int(_) => "integer",
                    Key::Bytes(_) => "byte",
                };
                return Err(WtError::invalid(format!(
                    "{kind} key does not match the cursor's key format {fmt:?}"
                )));
            }
        }
        Ok(())
    }

    fn set_value(&mut self, value: &[u8]) -> WtResult<()> {
        if value.len() >= u32::MAX as usize {
            return Err(WtError::invalid("value too large"));
        }
        match self.value_fmt {
            // SAFETY: as in set_key.
            Format::Bytes => unsafe {
                sys::wts_set_value_u(self.raw(), value.as_ptr().cast::<c_void>(), value.len())
            },
            Format::Str => {
                nul_terminated(&mut self.value_c, value)?;
                // SAFETY: as in set_key.
                unsafe { sys::wts_set_value_s(self.raw(), self.value_c.as_ptr().cast::<c_char>()) }
            }
            fmt => {
                return Err(WtError::invalid(format!(
                    "cannot set a value on a cursor with value format {fmt:?}"
                )))
            }
        }
        Ok(())
    }

    /// Inserts; with the default `overwrite=true` an existing key is
    /// replaced, with `overwrite=false` it fails with `is_duplicate_key`.
    pub fn insert(&mut self, key: Key, value: &[u8]) -> WtResult<()> {
        self.unposition();
        self.set_key(key)?;
        self.set_value(value)?;
        // SAFETY: key/value memory is borrowed for this whole call.
        check(unsafe { sys::wts_insert(self.raw()) })
    }

    /// Updates; with `overwrite=false` a missing key fails with `is_not_found`.
    pub fn update(&mut self, key: Key, value: &[u8]) -> WtResult<()> {
        self.unposition();
        self.set_key(key)?;
        self.set_value(value)?;
        // SAFETY: as in insert.
        check(unsafe { sys::wts_update(self.raw()) })
    }

    /// Removes; a missing key is an error (`is_not_found`) only with `overwrite=false`.
    pub fn remove(&mut self, key: Key) -> WtResult<()> {
        self.unposition();
        self.set_key(key)?;
        // SAFETY: as in insert.
        check(unsafe { sys::wts_remove(self.raw()) })
    }

    /// Positions on `key`; `false` if it does not exist.
    pub fn search(&mut self, key: Key) -> WtResult<bool> {
        self.unposition();
        self.set_key(key)?;
        // SAFETY: as in insert.
        let ret = unsafe { sys::wts_search(self.raw()) };
        self.found(ret)
    }

    /// Positions on `key` or a neighbour: `None` if the object is empty (or
    /// everything is out of bounds), else how the found key compares with `key`.
    pub fn search_near(&mut self, key: Key) -> WtResult<Option<Ordering>> {
        self.unposition();
        self.set_key(key)?;
        let mut exact: c_int = 0;
        // SAFETY: as in insert.
        let ret = unsafe { sys::wts_search_near(self.raw(), &mut exact) };
        Ok(self.found(ret)?.then(|| exact.cmp(&0)))
    }

    /// Moves forward (from the start when unpositioned); `false` at the end.
    // Not an Iterator: each step borrows the cursor mutably and can fail.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> WtResult<bool> {
        self.unposition();
        // SAFETY: open cursor on its session's thread.
        let ret = unsafe { sys::wts_next(self.raw()) };
        self.found(ret)
    }

    /// Moves backward (from the end when unpositioned); `false` at the start.
    pub fn prev(&mut self) -> WtResult<bool> {
        self.unposition();
        // SAFETY: open cursor on its session's thread.
        let ret = unsafe { sys::wts_prev(self.raw()) };
        self.found(ret)
    }

    fn found(&mut self, ret: c_int) -> WtResult<bool> {
        match ret {
            0 => {
                self.positioned = true;
                Ok(true)
            }
            sys::WT_NOTFOUND => Ok(false),
            e => Err(WtError::from_code(e)),
        }
    }

    /// Releases the position (and any pinned page).
    pub fn reset(&mut self) -> WtResult<()> {
        self.unposition();
        // SAFETY: open cursor on its session's thread.
        check(unsafe { sys::wts_reset(self.raw()) })
    }

    /// Replaces the cursor's bounds: later next/prev/search_near only see
    /// keys within them (each bound is `(key, inclusive)`). The cursor is
    /// reset first, which also clears any earlier bounds; WiredTiger copies
    /// the bound keys.
    pub fn set_bounds(&mut self, lower: Option<(Key, bool)>, upper: Option<(Key, bool)>) -> WtResult<()> {
        self.reset()?;
        for (bound, is_upper) in [(lower, false), (upper, true)] {
            let Some((key, inclusive)) = bound else {
                continue;
            };
            self.set_key(key)?;
            let config = match (is_upper, inclusive) {
                (false, true) => c"action=set,bound=lower,inclusive=true",
                (false, false) => c"action=set,bound=lower,inclusive=false",
                (true, true) => c"action=set,bound=upper,inclusive=true",
                (true, false) => c"action=set,bound=upper,inclusive=false",
            };
            // SAFETY: key borrowed for this whole call; static config string.
            check(unsafe { sys::wts_bound(self.raw(), config.as_ptr()) })?;
        }
        Ok(())
    }

    /// Removes the bounds (by resetting the cursor).
    pub fn clear_bounds(&mut self) -> WtResult<()> {
        self.reset()
    }

    fn require_position(&self) -> WtResult<()> {
        if self.positioned {
            Ok(())
        } else {
            Err(WtError::invalid("cursor is not positioned"))
        }
    }

    /// The current key of a `q` cursor.
    pub fn key_int(&self) -> WtResult<i64> {
        self.require_position()?;
        if self.key_fmt != Format::Int {
            return Err(WtError::invalid("key_int on a cursor whose key format is not q"));
        }
        let mut k: i64 = 0;
        // SAFETY: positioned cursor with key format q.
        check(unsafe { sys::wts_get_key_q(self.raw(), &mut k) })?;
        Ok(k)
    }

    /// The current key of a `u` (or `S`) cursor, valid until the next operation.
    pub fn key_bytes(&self) -> WtResult<&[u8]> {
        self.require_position()?;
        let fmt = self.key_fmt;
        // SAFETY: `key_buf`/`key_cached` follow the type's invariants.
        unsafe {
            read_cached(&self.key_buf, &self.key_cached, || match fmt {
                Format::Bytes => get_item(self.raw(), sys::wts_get_key_u),
                Format::Str => get_str(self.raw(), sys::wts_get_key_s),
                _ => Err(WtError::invalid("key_bytes on a cursor whose key format is not u or S")),
            })
        }
    }

    /// The current value, valid until the next operation.
    pub fn value(&self) -> WtResult<&[u8]> {
        self.require_position()?;
        let fmt = self.value_fmt;
        // SAFETY: `value_buf`/`value_cached` follow the type's invariants.
        unsafe {
            read_cached(&self.value_buf, &self.value_cached, || match fmt {
                Format::Bytes => get_item(self.raw(), sys::wts_get_value_u),
                Format::Str => get_str(self.raw(), sys::wts_get_value_s),
                _ => Err(WtError::invalid("value on a cursor whose value format is not u or S")),
            })
        }
    }
}

/// Returns the cached copy, filling it from `fetch` (WiredTiger memory) on
/// first use after a positioning operation.
///
/// # Safety
/// No reference into `buf` may be live while `cached` is false (guaranteed by
/// clearing `cached` only in `&mut self` methods).
unsafe fn read_cached<'a>(
    buf: &'a UnsafeCell<Vec<u8>>,
    cached: &Cell<bool>,
    fetch: impl FnOnce() -> WtResult<&'a [u8]>,
) -> WtResult<&'a [u8]> {
    if !cached.get() {
        let src = fetch()?;
        // SAFETY: per the contract, nobody else references the buffer now.
        let v = unsafe { &mut *buf.get() };
        v.clear();
        v.extend_from_slice(src);
        cached.set(true);
    }
    // SAFETY: only shared references exist from here until `cached` is cleared.
    Ok(unsafe { &*buf.get() }.as_slice())
}

/// Reads a `u` key or value; the slice points into WiredTiger memory that
/// stays valid until the cursor's next operation.
///
/// # Safety
/// `c` is a positioned cursor whose format matches `f`.
unsafe fn get_item<'a>(
    c: *mut sys::WT_CURSOR,
    f: unsafe extern "C" fn(*mut sys::WT_CURSOR, *mut *const c_void, *mut usize) -> c_int,
) -> WtResult<&'a [u8]> {
    let (mut data, mut size) = (ptr::null(), 0usize);
    // SAFETY: per the contract.
    check(unsafe { f(c, &mut data, &mut size) })?;
    if data.is_null() || size == 0 {
        return Ok(&[]);
    }
    // SAFETY: WiredTiger returned `size` readable bytes at `data`.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
}

/// Reads an `S` key or value (without its NUL).
///
/// # Safety
/// As for [`get_item`].
unsafe fn get_str<'a>(
    c: *mut sys::WT_CURSOR,
    f: unsafe extern "C" fn(*mut sys::WT_CURSOR, *mut *const c_char) -> c_int,
) -> WtResult<&'a [u8]> {
    let mut s: *const c_char = ptr::null();
    // SAFETY: per the contract.
    check(unsafe { f(c, &mut s) })?;
    if s.is_null() {
        return Ok(&[]);
    }
    // SAFETY: WiredTiger returned a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(s) }.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q_TABLE: &str = "key_format=q,value_format=u,block_compressor=zstd";
    const U_TABLE: &str = "key_format=u,value_format=u";

    fn open(dir: &Path) -> Arc<Connection> {
        Connection::open(dir, "create,cache_size=64MB,log=(enabled=true)").expect("open")
    }

    #[test]
    fn messages_are_tidied() {
        let raw = "[1795634521:764569][15769:0x7fa1], WT_SESSION.create: [WT_VERB_DEFAULT][ERROR]: \
                   __wt_config_check, 12: unknown configuration key 'bogus': Invalid argument";
        assert_eq!(
            tidy_message(raw),
            "WT_SESSION.create: __wt_config_check, 12: unknown configuration key 'bogus': Invalid argument"
        );
        assert_eq!(tidy_message("[x"), "[x");
        assert_eq!(tidy_message("plain"), "plain");
    }

    #[test]
    fn open_close_is_idempotent_and_waits_for_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        let err = conn.close("").unwrap_err();
        assert!(err.is_busy(), "{err}");
        drop(s);
        conn.close("").unwrap();
        conn.close("").unwrap();
        assert!(conn.open_session().is_err());
    }

    #[test]
    fn int_keys_crud_and_navigation() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        s.create("table:q", Q_TABLE).unwrap();
        let mut c = s.open_cursor("table:q", None).unwrap();
        for k in [10i64, 20, 30, -5] {
            c.insert(Key::Int(k), format!("v{k}").as_bytes()).unwrap();
        }
        assert!(c.key_int().is_err(), "insert leaves no position");
        assert!(c.search(Key::Int(20)).unwrap());
        assert_eq!(c.key_int().unwrap(), 20);
        assert_eq!(c.value().unwrap(), b"v20");
        assert!(!c.search(Key::Int(21)).unwrap());
        assert!(c.value().is_err());

        assert_eq!(c.search_near(Key::Int(25)).unwrap().map(|o| o.is_ne()), Some(true));
        let k = c.key_int().unwrap();
        assert!(k == 20 || k == 30);
        assert_eq!(c.search_near(Key::Int(30)).unwrap(), Some(Ordering::Equal));
        assert_eq!(c.search_near(Key::Int(100)).unwrap(), Some(Ordering::Less));
        assert_eq!(c.key_int().unwrap(), 30);
        assert_eq!(c.search_near(Key::Int(-100)).unwrap(), Some(Ordering::Greater));
        assert_eq!(c.key_int().unwrap(), -5);

        c.reset().unwrap();
        let mut fwd = Vec::new();
        while c.next().unwrap() {
            fwd.push(c.key_int().unwrap());
        }
        assert_eq!(fwd, [-5, 10, 20, 30]);
        let mut back = Vec::new();
        while c.prev().unwrap() {
            back.push(c.key_int().unwrap());
        }
        assert_eq!(back, [30, 20, 10, -5]);

        c.update(Key::Int(10), b"ten").unwrap();
        c.remove(Key::Int(20)).unwrap();
        assert!(c.search(Key::Int(10)).unwrap());
        assert_eq!(c.value().unwrap(), b"ten");
        assert!(!c.search(Key::Int(20)).unwrap());
        // Wrong key type is an error, not a crash.
        assert_eq!(c.search(Key::Bytes(b"x")).unwrap_err().code, sys::EINVAL);
        drop(c);

        // Empty table: search_near reports None.
        s.create("table:empty", Q_TABLE).unwrap();
        let mut e = s.open_cursor("table:empty", None).unwrap();
        assert_eq!(e.search_near(Key::Int(1)).unwrap(), None);
        assert!(!e.next().unwrap());
    }

    #[test]
    fn byte_keys_values_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        s.create("table:u", U_TABLE).unwrap();
        let mut c = s.open_cursor("table:u", None).unwrap();
        for k in ["a", "b", "c", "d"] {
            c.insert(Key::Bytes(k.as_bytes()), &[0, 1, 2]).unwrap();
        }
        // WiredTiger would panic on an empty key; the wrapper refuses it.
        assert_eq!(c.insert(Key::Bytes(b""), b"x").unwrap_err().code, sys::EINVAL);
        assert!(c.search(Key::Bytes(b"")).is_err());
        c.insert(Key::Bytes(b"e"), b"").unwrap();
        assert!(c.search(Key::Bytes(b"c")).unwrap());
        let (k, v) = (c.key_bytes().unwrap(), c.value().unwrap());
        assert_eq!((k, v), (&b"c"[..], &[0u8, 1, 2][..]));
        assert!(c.search(Key::Bytes(b"e")).unwrap());
        assert_eq!(c.value().unwrap(), b"");
        assert_eq!(c.search_near(Key::Bytes(b"bb")).unwrap().map(|o| o.is_ne()), Some(true));

        c.set_bounds(Some((Key::Bytes(b"b"), true)), Some((Key::Bytes(b"d"), false))).unwrap();
        let mut seen = Vec::new();
        while c.next().unwrap() {
            seen.push(c.key_bytes().unwrap().to_vec());
        }
        assert_eq!(seen, [b"b".to_vec(), b"c".to_vec()]);
        c.clear_bounds().unwrap();
        c.remove(Key::Bytes(b"a")).unwrap();
        let mut n = 0;
        while c.next().unwrap() {
            n += 1;
        }
        assert_eq!(n, 4);
        assert_eq!(c.key_int().unwrap_err().code, sys::EINVAL);
        drop(c);

        // metadata: cursors have string keys and values.
        let mut m = s.open_cursor("metadata:", None).unwrap();
        let mut found = false;
        while m.next().unwrap() {
            if m.key_bytes().unwrap() == b"table:u" {
                found = String::from_utf8_lossy(m.value().unwrap()).contains("key_format=u");
            }
        }
        assert!(found);
    }

    #[test]
    fn rolled_back_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        s.create("table:t", Q_TABLE).unwrap();
        s.begin_transaction("").unwrap();
        {
            let mut c = s.open_cursor("table:t", None).unwrap();
            c.insert(Key::Int(1), b"one").unwrap();
            assert!(c.search(Key::Int(1)).unwrap());
            let v = c.value().unwrap();
            // Rollback resets the cursor; the copied value stays readable.
            s.rollback_transaction("").unwrap();
            assert_eq!(v, b"one");
        }
        let mut c = s.open_cursor("table:t", None).unwrap();
        assert!(!c.search(Key::Int(1)).unwrap());
        assert!(!c.next().unwrap());
    }

    #[test]
    fn conflicting_transactions_get_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let (s1, s2) = (conn.open_session().unwrap(), conn.open_session().unwrap());
        s1.create("table:t", Q_TABLE).unwrap();
        s1.begin_transaction("").unwrap();
        s2.begin_transaction("").unwrap();
        let mut c1 = s1.open_cursor("table:t", None).unwrap();
        let mut c2 = s2.open_cursor("table:t", None).unwrap();
        c1.insert(Key::Int(7), b"s1").unwrap();
        let err = c2.insert(Key::Int(7), b"s2").unwrap_err();
        assert!(err.is_rollback(), "{err}");
        drop(c2);
        s2.rollback_transaction("").unwrap();
        drop(c1);
        s1.commit_transaction("").unwrap();
    }

    #[test]
    fn overwrite_false_reports_duplicates_and_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        s.create("table:u", U_TABLE).unwrap();
        let mut c = s.open_cursor("table:u", Some("overwrite=false")).unwrap();
        c.insert(Key::Bytes(b"k"), b"1").unwrap();
        let err = c.insert(Key::Bytes(b"k"), b"2").unwrap_err();
        assert!(err.is_duplicate_key(), "{err}");
        assert!(c.remove(Key::Bytes(b"zz")).unwrap_err().is_not_found());
        assert!(c.update(Key::Bytes(b"zz"), b"").unwrap_err().is_not_found());
        // With the default overwrite=true, insert replaces.
        let mut o = s.open_cursor("table:u", None).unwrap();
        o.insert(Key::Bytes(b"k"), b"3").unwrap();
        assert!(o.search(Key::Bytes(b"k")).unwrap());
        assert_eq!(o.value().unwrap(), b"3");
    }

    #[test]
    fn errors_carry_messages_and_drop_reports_busy() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        let err = s.create("table:bad", "key_format=q,value_format=u,bogus=1").unwrap_err();
        assert_eq!(err.code, sys::EINVAL);
        assert!(err.message.contains("bogus"), "{}", err.message);
        assert!(err.message.starts_with("WT_SESSION.create: "), "{}", err.message);
        assert!(s.open_cursor("table:missing", None).is_err());
        assert!(s.create("table:x\0y", U_TABLE).is_err());
        assert!(s.open_cursor("table:x", Some("raw")).is_err());

        s.create("table:d", U_TABLE).unwrap();
        let c = s.open_cursor("table:d", None).unwrap();
        let s2 = conn.open_session().unwrap();
        assert!(s2.drop_uri("table:d", "").unwrap_err().is_busy());
        drop(c);
        s.reset().unwrap();
        s2.drop_uri("table:d", "").unwrap();
    }

    #[test]
    fn reopen_finds_logged_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = open(dir.path());
            let s = conn.open_session().unwrap();
            s.create("table:t", Q_TABLE).unwrap();
            s.begin_transaction("").unwrap();
            let mut c = s.open_cursor("table:t", None).unwrap();
            c.insert(Key::Int(42), b"durable").unwrap();
            drop(c);
            s.commit_transaction("sync=on").unwrap();
            s.log_flush("sync=on").unwrap();
            drop(s);
            conn.close("").unwrap();
        }
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        let mut c = s.open_cursor("table:t", None).unwrap();
        assert!(c.search(Key::Int(42)).unwrap());
        assert_eq!(c.value().unwrap(), b"durable");
        assert!(s.checkpoint("").is_ok());
    }

    #[test]
    fn reads_at_a_timestamp_see_the_past() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        // WiredTiger ignores commit timestamps on logged tables.
        s.create("table:t", &format!("{Q_TABLE},log=(enabled=false)")).unwrap();
        for (ts, v) in [(10u64, &b"ten"[..]), (20, b"twenty")] {
            s.begin_transaction("").unwrap();
            s.set_commit_timestamp(ts).unwrap();
            let mut c = s.open_cursor("table:t", None).unwrap();
            c.insert(Key::Int(1), v).unwrap();
            drop(c);
            s.commit_transaction("").unwrap();
        }
        let read_at = |ts: u64| {
            s.begin_transaction("").unwrap();
            s.set_read_timestamp(ts).unwrap();
            let mut c = s.open_cursor("table:t", None).unwrap();
            let v = if c.search(Key::Int(1)).unwrap() { Some(c.value().unwrap().to_vec()) } else { None };
            drop(c);
            s.rollback_transaction("").unwrap();
            v
        };
        assert_eq!(read_at(5), None);
        assert_eq!(read_at(15).as_deref(), Some(&b"ten"[..]));
        assert_eq!(read_at(25).as_deref(), Some(&b"twenty"[..]));
        conn.set_timestamp(&format!("oldest_timestamp={:x},stable_timestamp={:x}", 15, 20)).unwrap();
        assert_eq!(conn.query_timestamp("get=oldest_timestamp").unwrap(), 15);
        assert_eq!(conn.query_timestamp("get=all_durable").unwrap(), 20);
        // Below the oldest timestamp history is gone: the read timestamp is refused.
        s.begin_transaction("").unwrap();
        assert!(s.set_read_timestamp(12).is_err());
        s.rollback_transaction("").unwrap();
        // A commit at or before the stable timestamp is refused.
        s.begin_transaction("").unwrap();
        assert!(s.set_commit_timestamp(20).is_err());
        s.rollback_transaction("").unwrap();
    }

    #[test]
    fn sessions_move_between_threads() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path());
        let s = conn.open_session().unwrap();
        s.create("table:t", Q_TABLE).unwrap();
        let handles: Vec<_> = (0..4i64)
            .map(|t| {
                let conn = Arc::clone(&conn);
                std::thread::spawn(move || {
                    let s = conn.open_session().unwrap();
                    let mut c = s.open_cursor("table:t", None).unwrap();
                    for i in 0..100 {
                        c.insert(Key::Int(t * 1000 + i), b"x").unwrap();
                    }
                    drop(c);
                    s
                })
            })
            .collect();
        let sessions: Vec<Session> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let mut c = s.open_cursor("table:t", None).unwrap();
        let mut n = 0;
        while c.next().unwrap() {
            n += 1;
        }
        assert_eq!(n, 400);
        drop(c);
        drop(sessions);
        drop(s);
        conn.close("").unwrap();
    }

    #[test]
    fn zstd_compresses_and_sizes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        // Statistics cursors need statistics enabled on the connection.
        let conn = Connection::open(dir.path(), "create,statistics=(fast)").unwrap();
        let s = conn.open_session().unwrap();
        s.create("table:plain", "key_format=q,value_format=u").unwrap();
        s.create("table:zstd", Q_TABLE).unwrap();
        let doc: Vec<u8> = b"{\"name\":\"secantus\",\"tags\":[\"a\",\"b\"],\"n\":12345} "
            .iter()
            .copied()
            .cycle()
            .take(1000)
            .collect();
        for uri in ["table:plain", "table:zstd"] {
            let mut c = s.open_cursor(uri, None).unwrap();
            for i in 0..5000 {
                c.insert(Key::Int(i), &doc).unwrap();
            }
        }
        s.checkpoint("").unwrap();
        let plain = s.table_size("table:plain").unwrap();
        let zstd = s.table_size("table:zstd").unwrap();
        let file = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap().len();
        eprintln!(
            "5000 x 1000-byte values: plain {plain} B (file {}), zstd {zstd} B (file {})",
            file("plain.wt"),
            file("zstd.wt")
        );
        assert!(zstd * 5 < plain, "zstd {zstd} vs plain {plain}");
        assert_eq!(plain, file("plain.wt"));
        assert_eq!(s.table_size("file:zstd.wt").unwrap(), zstd);
        assert_eq!(s.table_size("table:nope").unwrap_err().code, sys::ENOENT);
        assert!(s.table_size("file:../x.wt").is_err());
        assert!(s.table_size("lsm:x").is_err());

        let stats = s.statistics("statistics:table:zstd", None).unwrap();
        let size = stats.iter().find(|(d, _)| d == "block-manager: file size in bytes").map(|e| e.1);
        assert_eq!(size, i64::try_from(zstd).ok());
        let conn_stats = s.statistics("statistics:", None).unwrap();
        assert!(conn_stats.len() > 100, "{}", conn_stats.len());
    }
}
