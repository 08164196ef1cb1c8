//! `configureFailPoint` (a test command: registered only with `--enable-test-commands`) and
//! the fail points drivers' test suites set:
//!
//! - `failCommand`: before the named commands run, block (`blockConnection`/`blockTimeMS`),
//!   close the connection (`closeConnection`) or fail with `errorCode` (and `errorLabels`);
//!   after a successful command, attach `writeConcernError`. `appName` restricts it to the
//!   connections whose hello named that application.
//! - `onPrimaryTransactionalWrite`: for each statement a retryable write executes, close the
//!   connection after the command (`closeConnection`, default true: the statement applies but
//!   the reply is lost) and/or fail the statement unapplied (`failBeforeCommitExceptionCode`),
//!   so a test can check a retry gives back the original result and applies nothing twice.
//!
//! Modes as mongod: `"alwaysOn"`, `"off"`, `{times: n}`, `{skip: n}`. A command's
//! predicate is checked before the mode is consumed, so non-matching commands do not use up
//! `times`.

use super::{Ctx, Request};
use crate::error::{is_retryable_write_code, ErrorCode, MongoError, Result};
use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// The fail points this server knows; others are 266 FailPointSetFailed as on mongod.
pub const KNOWN: &[&str] =
    &["failCommand", "failGetMoreAfterCursorCheckout", "maxTimeAlwaysTimeOut", "onPrimaryTransactionalWrite"];
/// A blocked command never waits longer than this, whatever the test asks.
const MAX_BLOCK: Duration = Duration::from_secs(60);
const FAIL_MSG: &str = "Failing command via 'failCommand' failpoint";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Off,
    AlwaysOn,
    Times(i64),
    Skip(i64),
}

struct FailPoint {
    mode: Mode,
    data: Document,
    times_entered: i64,
}

/// Every configured fail point, by name.
#[derive(Default)]
pub struct FailPoints {
    map: Mutex<HashMap<String, FailPoint>>,
}

impl FailPoints {
    /// Sets a fail point; returns how many times it had been entered.
    fn set(&self, name: &str, mode: Mode, data: Document) -> i64 {
        let mut map = self.map.lock();
        let fp = map.entry(name.to_string()).or_insert(FailPoint {
            mode: Mode::Off,
            data: Document::new(),
            times_entered: 0,
        });
        fp.mode = mode;
        fp.data = data;
        fp.times_entered
    }

    /// If the fail point is on and `pred` accepts its data, consumes one activation (per the
    /// mode) and returns the data.
    pub fn fire(&self, name: &str, pred: impl FnOnce(&Document) -> bool) -> Option<Document> {
        let mut map = self.map.lock();
        let fp = map.get_mut(name)?;
        if fp.mode == Mode::Off || !pred(&fp.data) {
            return None;
        }
        let on = match &mut fp.mode {
            Mode::Off => false,
            Mode::AlwaysOn => true,
            Mode::Times(n) => {
                *n -= 1;
                if *n <= 0 {
                    fp.mode = Mode::Off;
                }
                true
            }
            Mode::Skip(n) => {
                if *n > 0 {
                    *n -= 1;
                    false
                } else {
                    true
                }
            }
        };
        if !on {
            return None;
        }
        fp.times_entered += 1;
        Some(fp.data.clone())
    }

    /// Whether any fail point is on (a cheap check before building predicates).
    pub fn any_active(&self) -> bool {
        self.map.lock().values().any(|f| f.mode != Mode::Off)
    }
}

fn parse_mode(body: &Document) -> Result<Mode> {
    let count = |v: &Bson, what: &str| -> Result<i64> {
        let n = match v {
            Bson::Int32(n) => i64::from(*n),
            Bson::Int64(n) => *n,
            Bson::Double(d) if d.fract() == 0.0 && d.is_finite() => *d as i64,
            _ => return Err(MongoError::type_mismatch(format!("'{what}' must be a number"))),
        };
        if n < 0 {
            return Err(MongoError::bad_value(format!("mode.{what} must be positive")));
        }
        Ok(n)
    };
    match body.get("mode") {
        None => Err(MongoError::new(
            ErrorCode::IllegalOperation,
            "When setting a failpoint, you must supply a 'mode'",
        )),
        Some(Bson::String(s)) if s == "off" => Ok(Mode::Off),
        Some(Bson::String(s)) if s == "alwaysOn" => Ok(Mode::AlwaysOn),
        Some(Bson::String(s)) => Err(MongoError::bad_value(format!("unknown mode: {s}"))),
        Some(Bson::Document(m)) => {
            if let Some(t) = m.get("times") {
                let n = count(t, "times")?;
                Ok(if n == 0 { Mode::Off } else { Mode::Times(n) })
            } else if let Some(s) = m.get("skip") {
                Ok(Mode::Skip(count(s, "skip")?))
            } else if m.contains_key("activationProbability") {
                Err(MongoError::new(ErrorCode::NotImplemented, "activationProbability is not supported"))
            } else {
                Err(MongoError::bad_value("mode must be one of 'times', 'skip' or 'activationProbability'"))
            }
        }
        Some(_) => Err(MongoError::type_mismatch("'mode' must be a string or JSON object")),
    }
}

/// `{configureFailPoint: name, mode, data}` → `{count: <times entered so far>}`.
pub fn configure_fail_point(ctx: &mut Ctx, req: &Request) -> Result<Document> {
    if req.db != "admin" {
        return Err(MongoError::new(
            ErrorCode::Unauthorized,
            "configureFailPoint may only be run against the admin database.",
        ));
    }
    let name = match req.body.get("configureFailPoint") {
        Some(Bson::String(s)) => s.clone(),
        _ => return Err(MongoError::type_mismatch("configureFailPoint must be a string")),
    };
    if !KNOWN.contains(&name.as_str()) {
        return Err(MongoError::new(ErrorCode::FailPointSetFailed, format!("{name} not found")));
    }
    let mode = parse_mode(&req.body)?;
    let data = match req.body.get("data") {
        None => Document::new(),
        Some(Bson::Document(d)) => d.clone(),
        Some(_) => return Err(MongoError::type_mismatch("the 'data' field must be a JSON object")),
    };
    if data.get_bool("blockConnection").unwrap_or(false) {
        match data.get("blockTimeMS") {
            Some(Bson::Int32(n)) if *n >= 0 => {}
            Some(Bson::Int64(n)) if *n >= 0 => {}
            Some(Bson::Double(n)) if *n >= 0.0 => {}
            Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => {
                return Err(MongoError::new(ErrorCode::InvalidOptions, "'blockTimeMS' must be non-negative"))
            }
            _ => {
                return Err(MongoError::new(
                    ErrorCode::InvalidOptions,
                    "must specify 'blockTimeMS' when 'blockConnection' is true",
                ))
            }
        }
    }
    log::warn!("failpoint {name} set to {mode:?} with data {data}");
    let count = ctx.shared.failpoints.set(&name, mode, data);
    Ok(doc! { "count": count })
}

/// What dispatch must do before running a command.
pub enum Before {
    Run,
    Close,
    /// An error reply (complete but for the generic fields).
    Fail(Document),
}

fn number(v: Option<&Bson>) -> Option<i64> {
    match v? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(d) if d.is_finite() => Some(*d as i64),
        _ => None,
    }
}

/// Whether `failCommand` (with data `data`) targets this command on this connection.
fn targets(data: &Document, command: &str, aliases: &[&str], app_name: Option<&str>) -> bool {
    if command == "configureFailPoint" {
        return false;
    }
    if let Some(Bson::String(want)) = data.get("appName") {
        if app_name != Some(want.as_str()) {
            return false;
        }
    }
    if data.contains_key("failAllCommands") {
        return true;
    }
    match data.get("failCommands") {
        Some(Bson::Array(a)) => a.iter().any(|c| match c {
            Bson::String(s) => s == command || aliases.contains(&s.as_str()),
            _ => false,
        }),
        _ => false,
    }
}

/// The application name the connection gave in its first hello.
pub fn app_name(conn: &super::ConnState) -> Option<&str> {
    conn.client_metadata.as_ref()?.get_document("application").ok()?.get_str("name").ok()
}

/// The application name a handshake `hello` carries in its own `client` metadata: fail points
/// filtered by appName reach the very first hello of a connection too.
fn handshake_app_name(body: &Document) -> Option<&str> {
    body.get_document("client").ok()?.get_document("application").ok()?.get_str("name").ok()
}

/// The labels of a failing command: the fail point's own `errorLabels` when given (they
/// replace the server's), else `RetryableWriteError` for a retryable code in a retryable write.
pub fn labels_for(code: i32, retryable_write: bool, overrides: Option<&Document>) -> Vec<String> {
    if let Some(Bson::Array(a)) = overrides.and_then(|d| d.get("errorLabels")) {
        return a.iter().filter_map(|l| l.as_str().map(String::from)).collect();
    }
    if retryable_write && is_retryable_write_code(code) {
        vec!["RetryableWriteError".to_string()]
    } else {
        Vec::new()
    }
}

/// `maxTimeAlwaysTimeOut`: every command that carries a `maxTimeMS` fails as if its time
/// ran out (drivers' tests use it to check they pass maxTimeMS through).
pub fn max_time_always_times_out(shared: &crate::server::Shared, body: &Document) -> Option<MongoError> {
    if !body.contains_key("maxTimeMS") {
        return None;
    }
    max_time_expires(shared)
}

/// `maxTimeAlwaysTimeOut` for an operation that carries a time limit (a getMore on a cursor
/// opened with `maxTimeMS`).
pub fn max_time_expires(shared: &crate::server::Shared) -> Option<MongoError> {
    if !shared.failpoints.any_active() {
        return None;
    }
    shared.failpoints.fire("maxTimeAlwaysTimeOut", |_| true)?;
    Some(MongoError::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit"))
}

/// Whether `elapsed` already used up the command's `maxTimeMS` (0 or none: no limit).
pub fn max_time_used(body: &Document, elapsed: Duration) -> bool {
    match number(body.get("maxTimeMS")) {
        Some(ms) if ms > 0 => elapsed >= Duration::from_millis(ms as u64),
        _ => false,
    }
}

/// Codes after which a driver may resume a change stream (the server labels them
/// `ResumableChangeStreamError`).
const RESUMABLE_CHANGE_STREAM_CODES: &[i32] =
    &[6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436];

/// `failGetMoreAfterCursorCheckout`: a getMore fails with `errorCode` once it holds its
/// cursor. Returns the error reply (labelled resumable for change-stream cursors).
pub fn get_more_after_checkout(shared: &crate::server::Shared, change_stream: bool) -> Option<Document> {
    if !shared.failpoints.any_active() {
        return None;
    }
    let data = shared.failpoints.fire("failGetMoreAfterCursorCheckout", |_| true)?;
    let code = number(data.get("errorCode")).unwrap_or(ErrorCode::InternalError.code() as i64);
    let code = code.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let code_name =
        ErrorCode::from_code(code).map(|c| c.name().to_string()).unwrap_or_else(|| format!("Location{code}"));
    let mut reply = doc! {
        "ok": 0.0,
        "errmsg": "Failing getMore via 'failGetMoreAfterCursorCheckout' failpoint",
        "code": code,
        "codeName": code_name,
    };
    if change_stream && RESUMABLE_CHANGE_STREAM_CODES.contains(&code) {
        reply.insert("errorLabels", vec!["ResumableChangeStreamError"]);
    }
    Some(reply)
}

/// The `failCommand` checks made before a command runs: block, then close or fail.
pub fn before_command(
    shared: &crate::server::Shared,
    conn: &super::ConnState,
    command: &str,
    aliases: &[&str],
    retryable_write: bool,
    body: &Document,
) -> Before {
    if !shared.failpoints.any_active() {
        return Before::Run;
    }
    let app = app_name(conn).or_else(|| handshake_app_name(body));
    let Some(data) = shared.failpoints.fire("failCommand", |d| {
        let acts = d.get_bool("closeConnection").unwrap_or(false)
            || d.get_bool("blockConnection").unwrap_or(false)
            || number(d.get("errorCode")).is_some();
        acts && targets(d, command, aliases, app)
    }) else {
        return Before::Run;
    };
    if data.get_bool("blockConnection").unwrap_or(false) {
        let ms = number(data.get("blockTimeMS")).unwrap_or(0).max(0) as u64;
        // killOp ends the wait early, as it interrupts a blocked command in mongod.
        if let Err(e) = crate::ops::interruptible_sleep(Duration::from_millis(ms).min(MAX_BLOCK)) {
            return Before::Fail(e.to_reply());
        }
    }
    if data.get_bool("closeConnection").unwrap_or(false) {
        log::info!("failing {command} via 'failCommand' failpoint: closing connection");
        return Before::Close;
    }
    let Some(code) = number(data.get("errorCode")) else {
        return Before::Run;
    };
    let code = code.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let code_name =
        ErrorCode::from_code(code).map(|c| c.name().to_string()).unwrap_or_else(|| format!("Location{code}"));
    let mut reply = doc! { "ok": 0.0, "errmsg": FAIL_MSG, "code": code, "codeName": code_name };
    if let Some(Bson::Document(extra)) = data.get("errorExtraInfo") {
        for (k, v) in extra {
            reply.insert(k.clone(), v.clone());
        }
    }
    let labels = labels_for(code, retryable_write, Some(&data));
    if !labels.is_empty() {
        reply.insert("errorLabels", labels);
    }
    Before::Fail(reply)
}

/// After a successful command: `failCommand`'s `writeConcernError` (only for commands that
/// take a write concern), with its labels.
pub fn after_command(
    shared: &crate::server::Shared,
    conn: &super::ConnState,
    command: &str,
    aliases: &[&str],
    takes_write_concern: bool,
    reply: &mut Document,
) {
    if !takes_write_concern || !shared.failpoints.any_active() {
        return;
    }
    let app = app_name(conn);
    let Some(data) = shared
        .failpoints
        .fire("failCommand", |d| d.contains_key("writeConcernError") && targets(d, command, aliases, app))
    else {
        return;
    };
    if let Some(wce) = data.get("writeConcernError") {
        reply.insert("writeConcernError", wce.clone());
    }
    if let Some(Bson::Array(labels)) = data.get("errorLabels") {
        if !labels.is_empty() {
            reply.insert("errorLabels", labels.clone());
        }
    }
}

/// What `onPrimaryTransactionalWrite` does to one statement of a retryable write (mongod
/// evaluates it for each write the statement makes): close the connection once the command
/// is done (`closeConnection`, default true), and/or fail the statement without applying it
/// (`failBeforeCommitExceptionCode`).
pub struct StatementFault {
    pub close: bool,
    pub fail_code: Option<i32>,
}

pub fn on_retryable_statement(shared: &crate::server::Shared) -> Option<StatementFault> {
    if !shared.failpoints.any_active() {
        return None;
    }
    let data = shared.failpoints.fire("onPrimaryTransactionalWrite", |_| true)?;
    Some(StatementFault {
        close: data.get_bool("closeConnection").unwrap_or(true),
        fail_code: number(data.get("failBeforeCommitExceptionCode"))
            .map(|c| c.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
    })
}

/// `testVersion2`: mongod's test command that exists only in API version 2, so drivers can
/// check that `apiStrict` refuses commands outside version 1.
pub fn test_version_2(_ctx: &mut super::Ctx, _req: &super::Request) -> crate::error::Result<Document> {
    Ok(Document::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_consume_only_when_the_predicate_matches() {
        let fps = FailPoints::default();
        fps.set("failCommand", Mode::Times(2), doc! { "x": 1 });
        assert!(fps.fire("failCommand", |_| false).is_none());
        assert!(fps.fire("failCommand", |_| true).is_some());
        assert!(fps.fire("failCommand", |_| true).is_some());
        assert!(fps.fire("failCommand", |_| true).is_none());
        assert!(!fps.any_active());
        assert_eq!(fps.set("failCommand", Mode::Skip(1), Document::new()), 2);
        assert!(fps.fire("failCommand", |_| true).is_none());
        assert!(fps.fire("failCommand", |_| true).is_some());
        assert!(fps.fire("failCommand", |_| true).is_some());
    }

    #[test]
    fn mode_parsing() {
        assert_eq!(parse_mode(&doc! { "mode": "alwaysOn" }).unwrap(), Mode::AlwaysOn);
        assert_eq!(parse_mode(&doc! { "mode": { "times": 3 } }).unwrap(), Mode::Times(3));
        assert_eq!(parse_mode(&doc! { "mode": { "skip": 2i64 } }).unwrap(), Mode::Skip(2));
        assert_eq!(parse_mode(&doc! {}).unwrap_err().code, ErrorCode::IllegalOperation);
        assert_eq!(parse_mode(&doc! { "mode": "sometimes" }).unwrap_err().code, ErrorCode::BadValue);
        assert_eq!(parse_mode(&doc! { "mode": { "times": -1 } }).unwrap_err().code, ErrorCode::BadValue);
    }

    #[test]
    fn targeting_and_labels() {
        let d = doc! { "failCommands": ["insert"], "appName": "app" };
        assert!(targets(&d, "insert", &[], Some("app")));
        assert!(!targets(&d, "insert", &[], Some("other")));
        assert!(!targets(&d, "find", &[], Some("app")));
        assert!(!targets(&doc! { "failAllCommands": true }, "configureFailPoint", &[], None));
        assert_eq!(labels_for(91, true, None), vec!["RetryableWriteError".to_string()]);
        assert!(labels_for(91, false, None).is_empty());
        assert!(labels_for(2, true, None).is_empty());
        assert!(labels_for(91, true, Some(&doc! { "errorLabels": [] })).is_empty());
    }
}
