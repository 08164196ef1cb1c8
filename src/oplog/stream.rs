//! Change streams: read the oplog from a position, turn entries into change events in
//! mongod's shape, and never move past a timestamp that may still commit
//! (`OplogClock::visible`). Resume tokens are `{_data: "82" + 16 hex digits of the timestamp +
//! 2 hex digits of the event kind}` (0 = the entry's event, 1 = the invalidate after it),
//! plus 4 hex digits of the fragment number for the pieces of an event split by
//! `$changeStreamSplitLargeEvent`.

use super::{pack, unpack};
use crate::agg::pipeline::{Buffer, Rt};
use crate::agg::Prepared;
use crate::error::{ErrorCode, MongoError, Result};
use crate::store::wt::Key;
use crate::store::{scan, StoreSession, OPLOG_TABLE};
use bson::{doc, Bson, Document, Timestamp};

/// Which namespaces a stream watches.
#[derive(Debug, Clone)]
pub enum Scope {
    Collection { db: String, coll: String },
    Database(String),
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullDocument {
    Default,
    UpdateLookup,
    WhenAvailable,
    Required,
}

/// `fullDocumentBeforeChange`: whether update, replace and delete events carry the pre-image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeChange {
    Off,
    WhenAvailable,
    Required,
}

pub struct ChangeStream {
    pub scope: Scope,
    /// Last oplog timestamp read (exclusive start of the next read).
    pos: i64,
    pub full_document: FullDocument,
    pub before_change: BeforeChange,
    pub show_expanded: bool,
    /// The stages after `$changeStream`, applied to each event.
    stages: Option<Prepared>,
    pub invalidated: bool,
    last_token: Document,
    /// `$changeStreamSplitLargeEvent`: events over 16 MiB go out in fragments.
    split_large: bool,
    /// Resuming from a fragment: the fragments of the event at this timestamp up to this
    /// number were delivered already.
    skip_fragments: Option<(i64, u32)>,
    /// Events (or fragments) made but not yet handed out: the batch was full.
    pending: std::collections::VecDeque<(Document, usize)>,
}

/// mongod's largest user document: the most a fragment of a split event holds.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// A larger event fails without `$changeStreamSplitLargeEvent` (mongod's internal limit, which
/// leaves room for the reply around it).
const MAX_UNSPLIT_EVENT_BYTES: usize = MAX_EVENT_BYTES + 16 * 1024;
/// Bytes of events in one reply batch (a single larger event still goes alone).
const BATCH_BYTES: usize = 16 * 1024 * 1024;

pub fn token(ts: i64, kind: u8) -> Document {
    doc! { "_data": format!("82{:016X}{:02X}", ts as u64, kind) }
}

fn fragment_token(ts: i64, fragment: u32) -> Document {
    doc! { "_data": format!("82{:016X}00{:04X}", ts as u64, fragment) }
}

/// The (timestamp, kind) inside a resume token of ours.
pub fn parse_token(t: &Document) -> Result<(i64, u8)> {
    parse_token_full(t).map(|(ts, kind, _)| (ts, kind))
}

/// The (timestamp, kind, fragment number) inside a resume token of ours.
pub fn parse_token_full(t: &Document) -> Result<(i64, u8, Option<u32>)> {
    let bad = || MongoError::new(ErrorCode::InvalidResumeToken, "invalid resume token");
    let data = t.get_str("_data").map_err(|_| bad())?;
    if !(data.len() == 20 || data.len() == 24) || !data.starts_with("82") || !data.is_ascii() {
        return Err(bad());
    }
    let ts = u64::from_str_radix(&data[2..18], 16).map_err(|_| bad())? as i64;
    let kind = u8::from_str_radix(&data[18..20], 16).map_err(|_| bad())?;
    let fragment = match data.get(20..24) {
        Some(f) => Some(u32::from_str_radix(f, 16).map_err(|_| bad())?),
        None => None,
    };
    Ok((ts, kind, fragment))
}

fn bson_len(d: &Document) -> usize {
    let mut v = Vec::new();
    d.to_writer(&mut v).map(|_| v.len()).unwrap_or(usize::MAX)
}

fn too_large(size: usize) -> MongoError {
    MongoError::new(
        ErrorCode::BSONObjectTooLarge,
        format!(
            "PlanExecutor error during aggregation :: caused by :: BSONObj size: {size} (0x{size:X}) is \
             invalid. Size must be between 0 and 16793600(16MB)"
        ),
    )
}

/// Splits an event into fragments of at most `MAX_EVENT_BYTES`, filling each with as many
/// top-level fields as fit, in order; every fragment carries its own resume token and
/// `splitEvent`. A single field too large for a fragment fails.
fn split_event(ts: i64, ev: Document) -> Result<Vec<Document>> {
    // Room for `_id` and `splitEvent` in every fragment.
    const OVERHEAD: usize = 128;
    let mut groups: Vec<(Document, usize)> = vec![(Document::new(), 5 + OVERHEAD)];
    for (k, v) in ev {
        if k == "_id" {
            continue;
        }
        let size = bson_len(&doc! { k.clone(): v.clone() }) - 5;
        if 5 + OVERHEAD + size > MAX_EVENT_BYTES {
            return Err(too_large(size + 5));
        }
        let fits = groups.last().is_some_and(|(_, used)| used + size <= MAX_EVENT_BYTES);
        if !fits {
            groups.push((Document::new(), 5 + OVERHEAD));
        }
        if let Some((d, used)) = groups.last_mut() {
            d.insert(k, v);
            *used += size;
        }
    }
    let of = groups.len() as i32;
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, (fields, _))| {
            let mut f = doc! { "_id": fragment_token(ts, i as u32 + 1) };
            f.extend(fields);
            f.insert("splitEvent", doc! { "fragment": i as i32 + 1, "of": of });
            f
        })
        .collect())
}

fn split_ns(ns: &str) -> (&str, &str) {
    ns.split_once('.').unwrap_or((ns, ""))
}

impl ChangeStream {
    /// A stream reading events after `pos`; `invalidate_at` when resuming right after a drop.
    pub fn new(
        scope: Scope,
        pos: i64,
        full_document: FullDocument,
        show_expanded: bool,
        stages: Option<Prepared>,
    ) -> ChangeStream {
        ChangeStream {
            scope,
            pos,
            full_document,
            before_change: BeforeChange::Off,
            show_expanded,
            stages,
            invalidated: false,
            last_token: token(pos, 0),
            split_large: false,
            skip_fragments: None,
            pending: Default::default(),
        }
    }

    /// Split events over 16 MiB (`$changeStreamSplitLargeEvent`); `resume_fragment` when the
    /// resume token named a fragment of the event at `ts`.
    pub fn with_split(mut self, split: bool, resume_fragment: Option<(i64, u32)>) -> Self {
        self.split_large = split;
        self.skip_fragments = resume_fragment;
        self
    }

    /// The stream has ended: invalidated, and every event before that handed out.
    pub fn is_finished(&self) -> bool {
        self.invalidated && self.pending.is_empty()
    }

    /// Queues one event (or its fragments) for handing out.
    fn queue(&mut self, ts: i64, ev: Document) -> Result<()> {
        let size = bson_len(&ev);
        if size <= MAX_EVENT_BYTES || (!self.split_large && size <= MAX_UNSPLIT_EVENT_BYTES) {
            self.pending.push_back((ev, size));
            return Ok(());
        }
        if !self.split_large {
            return Err(too_large(size));
        }
        for (i, f) in split_event(ts, ev)?.into_iter().enumerate() {
            if self.skip_fragments.is_some_and(|(t, n)| t == ts && (i as u32) < n) {
                continue;
            }
            let size = bson_len(&f);
            self.pending.push_back((f, size));
        }
        Ok(())
    }

    /// Moves queued events into `out` while the batch has room; false when it is full.
    fn drain(&mut self, out: &mut Vec<Document>, bytes: &mut usize, max: usize) -> bool {
        while let Some((ev, size)) = self.pending.pop_front() {
            if out.len() >= max || (!out.is_empty() && *bytes + size > BATCH_BYTES) {
                self.pending.push_front((ev, size));
                return false;
            }
            if let Ok(id) = ev.get_document("_id") {
                self.last_token = id.clone();
            }
            *bytes += size;
            out.push(ev);
        }
        true
    }

    pub fn with_before_change(mut self, mode: BeforeChange) -> Self {
        self.before_change = mode;
        self
    }

    /// The resume token for everything read so far (postBatchResumeToken).
    pub fn resume_token(&self) -> Document {
        self.last_token.clone()
    }

    fn watches_db(&self, db: &str) -> bool {
        match &self.scope {
            Scope::Collection { db: d, .. } | Scope::Database(d) => d == db,
            Scope::Cluster => !matches!(db, "admin" | "config" | "local"),
        }
    }

    fn watches(&self, db: &str, coll: &str) -> bool {
        if coll.starts_with("system.") {
            return false;
        }
        match &self.scope {
            Scope::Collection { db: d, coll: c } => d == db && c == coll,
            _ => self.watches_db(db),
        }
    }

    /// Events after the current position, up to `max` of them.
    pub fn next_batch(&mut self, ss: &mut StoreSession, max: usize) -> Result<Vec<Document>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        if !self.drain(&mut out, &mut bytes, max) || self.invalidated {
            return Ok(out);
        }
        let visible = ss.store.clock.visible();
        let mut entries: Vec<(i64, Document)> = Vec::new();
        ss.read(|t| {
            let mut cur = t.s.open_cursor(OPLOG_TABLE, None)?;
            let mut ok = match cur.search_near(Key::Int(self.pos))? {
                None => false,
                Some(std::cmp::Ordering::Greater) => true,
                Some(_) => cur.next()?,
            };
            // Read a bounded number of entries per batch; filtering happens below.
            while ok && entries.len() < 4096 {
                let k = cur.key_int()?;
                if k > visible {
                    break;
                }
                entries.push((k, scan::parse_record(cur.value()?)?));
                ok = cur.next()?;
            }
            Ok(())
        })?;
        let reached_end = entries.len() < 4096;
        for (k, entry) in entries {
            if out.len() >= max {
                return Ok(out);
            }
            self.pos = k;
            let events = self.events_for(ss, k, &entry)?;
            for ev in events {
                let invalidate = ev.get_str("operationType") == Ok("invalidate");
                if let Some(ev) = self.apply_stages(ss, ev)? {
                    self.queue(k, ev)?;
                }
                if invalidate {
                    // The stream ends with this event; its token resumes (startAfter) past it.
                    self.invalidated = true;
                }
            }
            let room = self.drain(&mut out, &mut bytes, max);
            if self.pending.is_empty() {
                // All this entry produced went out (or was filtered): the token moves past it.
                // Otherwise it stays at the last event handed out, so a resume loses nothing.
                self.last_token = token(k, u8::from(self.invalidated));
            }
            if !room || self.invalidated {
                return Ok(out);
            }
        }
        if reached_end && visible > self.pos {
            // Nothing more is visible: the token may move to the watermark.
            self.pos = visible;
            self.last_token = token(visible, 0);
        }
        Ok(out)
    }

    /// Runs the stages after `$changeStream` over one event: the event, changed, or `None`
    /// when a stage filtered it out. Every stage allowed there maps one document to at most one.
    fn apply_stages(&self, ss: &mut StoreSession, ev: Document) -> Result<Option<Document>> {
        let Some(p) = &self.stages else { return Ok(Some(ev)) };
        let id = ev.get("_id").cloned();
        let mut rt = Rt { ss, vars: &p.vars, now: p.now, allow_disk_use: false, deadline: None };
        let mut running = p.pipeline.start(Box::new(Buffer(std::collections::VecDeque::from([ev]))));
        let Some(ev) = running.next(&mut rt)? else { return Ok(None) };
        if ev.get("_id").cloned() != id {
            return Err(MongoError::new(
                ErrorCode::ChangeStreamFatalError,
                "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
            )
            .with_label("NonResumableChangeStreamError"));
        }
        Ok(Some(ev))
    }

    fn invalidate_event(&self, ts: i64, wall: bson::DateTime) -> Document {
        doc! {
            "_id": token(ts, 1),
            "operationType": "invalidate",
            "clusterTime": unpack(ts),
            "wallTime": wall,
        }
    }

    fn base(&self, ts: i64, entry: &Document, op: &str) -> Document {
        let wall = entry.get_datetime("wall").cloned().unwrap_or_else(|_| bson::DateTime::now());
        let mut d =
            doc! { "_id": token(ts, 0), "operationType": op, "clusterTime": unpack(ts), "wallTime": wall };
        // Writes made in a multi-document transaction name it, as mongod's events do.
        if let (Some(txn), Some(lsid)) = (entry.get("txnNumber"), entry.get("lsid")) {
            d.insert("txnNumber", txn.clone());
            d.insert("lsid", lsid.clone());
        }
        d
    }

    fn with_uuid(&self, d: &mut Document, entry: &Document) {
        if self.show_expanded {
            if let Some(ui) = entry.get("ui") {
                d.insert("collectionUUID", ui.clone());
            }
        }
    }

    /// The events one oplog entry produces for this stream (zero, one, or an event followed
    /// by an invalidate).
    fn events_for(&mut self, ss: &mut StoreSession, ts: i64, entry: &Document) -> Result<Vec<Document>> {
        let ns = entry.get_str("ns").unwrap_or_default().to_string();
        let (db, coll) = split_ns(&ns);
        let op = entry.get_str("op").unwrap_or_default();
        let o = entry.get_document("o").cloned().unwrap_or_default();
        let key = entry.get_document("o2").cloned().unwrap_or_default();
        let wall = entry.get_datetime("wall").cloned().unwrap_or_else(|_| bson::DateTime::now());
        let nsdoc = doc! { "db": db, "coll": coll };
        if coll == "system.views" {
            return Ok(self.view_events(ts, entry, db, op, &o, &key));
        }
        match op {
            "i" | "u" | "d" if !self.watches(db, coll) => Ok(vec![]),
            "i" => {
                let mut e = self.base(ts, entry, "insert");
                self.with_uuid(&mut e, entry);
                e.insert("fullDocument", o);
                e.insert("ns", nsdoc);
                e.insert("documentKey", key);
                Ok(vec![e])
            }
            "u" if o.contains_key("$v") => {
                let mut e = self.base(ts, entry, "update");
                self.with_uuid(&mut e, entry);
                e.insert("ns", nsdoc);
                e.insert("documentKey", key.clone());
                let diff = o.get_document("diff").cloned().unwrap_or_default();
                let mut desc = Description::default();
                describe(&diff, "", &[], false, &mut desc);
                let mut ud = doc! {
                    "updatedFields": desc.updated,
                    "removedFields": desc.removed,
                    "truncatedArrays": desc.truncated,
                };
                if self.show_expanded {
                    ud.insert("disambiguatedPaths", desc.disambiguated);
                }
                e.insert("updateDescription", ud);
                let wants_post =
                    matches!(self.full_document, FullDocument::WhenAvailable | FullDocument::Required);
                let pre = if wants_post || self.before_change != BeforeChange::Off {
                    ss.read(|t| super::pre_image(t.s, ts))?
                } else {
                    None
                };
                match self.full_document {
                    FullDocument::Default => {}
                    FullDocument::UpdateLookup => {
                        let full = self.lookup(ss, db, coll, &key)?;
                        e.insert("fullDocument", full.map(Bson::Document).unwrap_or(Bson::Null));
                    }
                    FullDocument::WhenAvailable | FullDocument::Required => {
                        // The post-image is the pre-image with this entry's diff applied.
                        let post = pre.as_ref().and_then(|p| super::apply_diff(p, &diff));
                        if post.is_none() && self.full_document == FullDocument::Required {
                            return Err(image_missing(&e, entry, "post-image for all update events"));
                        }
                        e.insert("fullDocument", post.map(Bson::Document).unwrap_or(Bson::Null));
                    }
                }
                self.add_pre_image(&mut e, entry, pre)?;
                Ok(vec![e])
            }
            "u" => {
                let mut e = self.base(ts, entry, "replace");
                self.with_uuid(&mut e, entry);
                e.insert("fullDocument", o);
                e.insert("ns", nsdoc);
                e.insert("documentKey", key);
                self.lookup_pre_image(ss, &mut e, entry, ts)?;
                Ok(vec![e])
            }
            "d" => {
                let mut e = self.base(ts, entry, "delete");
                self.with_uuid(&mut e, entry);
                e.insert("ns", nsdoc);
                e.insert("documentKey", o);
                self.lookup_pre_image(ss, &mut e, entry, ts)?;
                Ok(vec![e])
            }
            "c" => Ok(self.command_events(ts, entry, db, &o, wall)),
            _ => Ok(vec![]),
        }
    }

    /// View definitions live in `<db>.system.views` (`_id` = "db.view"): with
    /// `showExpandedEvents`, creating one is a `create` event and removing one a `drop` event
    /// on the view's namespace, as mongod reports them.
    fn view_events(
        &self,
        ts: i64,
        entry: &Document,
        db: &str,
        op: &str,
        o: &Document,
        key: &Document,
    ) -> Vec<Document> {
        let id = if op == "d" { o.get_str("_id") } else { key.get_str("_id").or_else(|_| o.get_str("_id")) };
        let Some(view) = id.ok().and_then(|id| id.strip_prefix(db)).and_then(|v| v.strip_prefix('.')) else {
            return vec![];
        };
        if !self.show_expanded || !self.watches(db, view) {
            return vec![];
        }
        let mut e = match op {
            "i" => {
                let mut e = self.base(ts, entry, "create");
                e.insert("ns", doc! { "db": db, "coll": view });
                let mut desc = Document::new();
                for k in ["viewOn", "pipeline"] {
                    if let Some(v) = o.get(k) {
                        desc.insert(k, v.clone());
                    }
                }
                e.insert("operationDescription", desc);
                e
            }
            "d" => {
                let mut e = self.base(ts, entry, "drop");
                e.insert("ns", doc! { "db": db, "coll": view });
                e
            }
            _ => return vec![],
        };
        e.remove("collectionUUID");
        vec![e]
    }

    fn command_events(
        &mut self,
        ts: i64,
        entry: &Document,
        db: &str,
        o: &Document,
        wall: bson::DateTime,
    ) -> Vec<Document> {
        let Some((cmd, arg)) = o.iter().next() else { return vec![] };
        let target = arg.as_str().unwrap_or_default().to_string();
        let is_this_coll =
            |s: &Self, c: &str| matches!(&s.scope, Scope::Collection { db: d, coll } if d == db && coll == c);
        match cmd.as_str() {
            "drop" if self.watches(db, &target) => {
                let mut e = self.base(ts, entry, "drop");
                self.with_uuid(&mut e, entry);
                e.insert("ns", doc! { "db": db, "coll": target.clone() });
                let mut out = vec![e];
                if is_this_coll(self, &target) {
                    out.push(self.invalidate_event(ts, wall));
                }
                out
            }
            "renameCollection" => {
                let (fdb, fcoll) = split_ns(&target);
                let to = o.get_str("to").unwrap_or_default();
                let (tdb, tcoll) = split_ns(to);
                if !self.watches(fdb, fcoll) {
                    return vec![];
                }
                let mut e = self.base(ts, entry, "rename");
                self.with_uuid(&mut e, entry);
                e.insert("ns", doc! { "db": fdb, "coll": fcoll });
                e.insert("to", doc! { "db": tdb, "coll": tcoll });
                if self.show_expanded {
                    let mut desc = doc! { "to": { "db": tdb, "coll": tcoll } };
                    if let Some(uuid) = o.get("dropTarget").filter(|u| matches!(u, Bson::Binary(_))) {
                        desc.insert("dropTarget", uuid.clone());
                    }
                    e.insert("operationDescription", desc);
                }
                let mut out = vec![e];
                if matches!(&self.scope, Scope::Collection { db: d, coll } if d == fdb && coll == fcoll) {
                    out.push(self.invalidate_event(ts, wall));
                }
                out
            }
            "dropDatabase" if self.watches_db(db) && !matches!(self.scope, Scope::Collection { .. }) => {
                let mut e = self.base(ts, entry, "dropDatabase");
                e.insert("ns", doc! { "db": db });
                let mut out = vec![e];
                if matches!(&self.scope, Scope::Database(d) if d == db) {
                    out.push(self.invalidate_event(ts, wall));
                }
                out
            }
            "create" | "createIndexes" | "dropIndexes" | "collMod"
                if self.show_expanded && self.watches(db, &target) =>
            {
                let op = match cmd.as_str() {
                    "create" => "create",
                    "createIndexes" => "createIndexes",
                    "dropIndexes" => "dropIndexes",
                    _ => "modify",
                };
                let mut e = self.base(ts, entry, op);
                self.with_uuid(&mut e, entry);
                e.insert("ns", doc! { "db": db, "coll": target.clone() });
                let mut desc = o.clone();
                desc.remove(cmd.as_str());
                e.insert("operationDescription", desc);
                vec![e]
            }
            _ => vec![],
        }
    }

    fn lookup_pre_image(
        &self,
        ss: &mut StoreSession,
        e: &mut Document,
        entry: &Document,
        ts: i64,
    ) -> Result<()> {
        if self.before_change == BeforeChange::Off {
            return Ok(());
        }
        let pre = ss.read(|t| super::pre_image(t.s, ts))?;
        self.add_pre_image(e, entry, pre)
    }

    /// `fullDocumentBeforeChange`: the stored pre-image, null when there is none (an error
    /// when it is required).
    fn add_pre_image(&self, e: &mut Document, entry: &Document, pre: Option<Document>) -> Result<()> {
        match (self.before_change, pre) {
            (BeforeChange::Off, _) => {}
            (BeforeChange::Required, None) => {
                return Err(image_missing(e, entry, "pre-image for all update, delete and replace events"))
            }
            (_, pre) => {
                e.insert("fullDocumentBeforeChange", pre.map(Bson::Document).unwrap_or(Bson::Null));
            }
        }
        Ok(())
    }

    fn lookup(
        &self,
        ss: &mut StoreSession,
        db: &str,
        coll: &str,
        key: &Document,
    ) -> Result<Option<Document>> {
        let Some(c) = ss.store.catalog.get(&format!("{db}.{coll}")) else { return Ok(None) };
        let Some(id) = key.get("_id").cloned() else { return Ok(None) };
        Ok(ss.read(|t| t.find_by_id(&c, &id))?.map(|(_, d)| d))
    }
}

/// mongod's NoMatchingDocument when a required image is missing; the message names the event.
fn image_missing(event: &Document, entry: &Document, what: &str) -> MongoError {
    let mut about = doc! {
        "operationType": event.get("operationType").cloned().unwrap_or(Bson::Null),
        "ns": event.get("ns").cloned().unwrap_or(Bson::Null),
        "clusterTime": event.get("clusterTime").cloned().unwrap_or(Bson::Null),
    };
    if let Some(n) = entry.get("txnNumber") {
        about.insert("txnNumber", n.clone());
    }
    MongoError::new(
        ErrorCode::NoMatchingDocument,
        format!(
            "Change stream was configured to require a {what}, but the {} was not found for event: {}",
            what.split(' ').next().unwrap_or("image"),
            crate::cmd::format::shell(&about)
        ),
    )
}

#[derive(Default)]
struct Description {
    updated: Document,
    removed: Vec<Bson>,
    truncated: Vec<Bson>,
    /// Paths whose dotted form is ambiguous (a field name that is numeric or has a dot), with
    /// their components: field names as strings, array indexes as integers.
    disambiguated: Document,
}

impl Description {
    fn note(&mut self, path: &str, components: &[Bson], ambiguous: bool) {
        if ambiguous {
            self.disambiguated.insert(path, components.to_vec());
        }
    }
}

/// A field name that reads as an array index (or contains a dot) makes a dotted path ambiguous.
fn ambiguous_field(f: &str) -> bool {
    f.contains('.') || (!f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Flattens a `$v: 2` diff into an update description with dotted paths; `path` holds the
/// components of `prefix` and `ambiguous` whether any of them is (for `disambiguatedPaths`).
fn describe(diff: &Document, prefix: &str, path: &[Bson], ambiguous: bool, out: &mut Description) {
    let is_array = matches!(diff.get("a"), Some(Bson::Boolean(true)));
    let field = |f: &str| {
        let mut p = path.to_vec();
        p.push(Bson::String(f.to_string()));
        (format!("{prefix}{f}"), p, ambiguous || ambiguous_field(f))
    };
    let index = |i: &str| {
        let mut p = path.to_vec();
        p.push(i.parse::<i32>().map(Bson::Int32).unwrap_or_else(|_| Bson::String(i.to_string())));
        (format!("{prefix}{i}"), p, ambiguous)
    };
    for (k, v) in diff {
        match (k.as_str(), v) {
            ("a", _) if is_array => {}
            ("l", n) if is_array => {
                let size = match n {
                    Bson::Int32(n) => *n,
                    Bson::Int64(n) => *n as i32,
                    _ => 0,
                };
                let name = prefix.strip_suffix('.').unwrap_or(prefix);
                out.truncated.push(Bson::Document(doc! { "field": name, "newSize": size }));
                out.note(name, path, ambiguous);
            }
            ("u" | "i", Bson::Document(fields)) if !is_array => {
                for (f, fv) in fields {
                    let (name, p, amb) = field(f);
                    out.updated.insert(name.clone(), fv.clone());
                    out.note(&name, &p, amb);
                }
            }
            ("d", Bson::Document(fields)) if !is_array => {
                for f in fields.keys() {
                    let (name, p, amb) = field(f);
                    out.removed.push(Bson::String(name.clone()));
                    out.note(&name, &p, amb);
                }
            }
            (k, v) if is_array && k.starts_with('u') => {
                let (name, p, amb) = index(&k[1..]);
                out.updated.insert(name.clone(), v.clone());
                out.note(&name, &p, amb);
            }
            (k, Bson::Document(sub)) if k.starts_with('s') => {
                let (name, p, amb) = if is_array { index(&k[1..]) } else { field(&k[1..]) };
                describe(sub, &format!("{name}."), &p, amb, out);
            }
            _ => {}
        }
    }
}

/// The start position for a stream: after a resume token, at an operation time, or now.
/// Fails with 286 when the oplog no longer reaches back to the resume point.
pub fn start_position(ss: &mut StoreSession, after: Option<i64>, at: Option<Timestamp>) -> Result<i64> {
    let pos = match (after, at) {
        (Some(t), _) => t,
        (None, Some(ts)) => pack(ts) - 1,
        (None, None) => return Ok(ss.store.clock.visible()),
    };
    {
        let pruned = ss.read(|t| super::pruned_through(t.s))?;
        if pos < pruned {
            return Err(MongoError::new(
                ErrorCode::ChangeStreamHistoryLost,
                "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
            ));
        }
    }
    Ok(pos)
}
