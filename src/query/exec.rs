//! The executor: pulls documents from a scan in batches, filters, sorts, skips, limits and
//! projects. Between batches it keeps only a position (a RecordId or an index key), never a
//! WiredTiger cursor or snapshot, so a client cursor costs no engine resources while idle and
//! a getMore may arrive on any connection. Only a blocking sort holds its results in memory.

use super::matcher::Matcher;
use super::projection::{Meta, Projection};
use super::sort::SortSpec;
use crate::error::{ErrorCode, MongoError, Result};
use crate::store::catalog::{Collection, IndexMeta};
use crate::store::scan::KeyRange;
use crate::store::wt::Key;
use crate::store::{scan, StoreResult, StoreSession};
use bson::{Bson, Document};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mongod's limit for an in-memory sort without allowDiskUse.
/// Documents pulled from the engine per read transaction.
const PULL_CHUNK: usize = 512;

/// How documents are found.
#[derive(Debug, Clone)]
pub enum Access {
    CollScan {
        forward: bool,
    },
    /// One `_id` value looked up through the `_id` index.
    IdLookup(Bson),
    /// Index entries in `ranges` (sorted, disjoint), in key order or reverse.
    IndexScan {
        index: Arc<IndexMeta>,
        ranges: Vec<KeyRange>,
        forward: bool,
        /// explain's `indexBounds`: per key field, its intervals in index order.
        bounds: Document,
        /// Answered from the entries' typed values, without fetching documents (`covered`).
        covered: bool,
    },
    /// A rooted `$or` answered by one indexed access per clause, each document once.
    Or(Vec<Access>),
    /// A rooted `$or` whose clauses' index scans each deliver the sort: merged by sort key.
    SortMerge(Vec<Access>, SortSpec),
}

impl Access {
    pub fn describe(&self) -> String {
        match self {
            Access::CollScan { .. } => "COLLSCAN".into(),
            Access::IdLookup(_) => "IDHACK".into(),
            Access::IndexScan { index, .. } => format!("IXSCAN {}", index.name),
            Access::Or(branches) => {
                format!("OR [{}]", branches.iter().map(Access::describe).collect::<Vec<_>>().join(", "))
            }
            Access::SortMerge(branches, _) => format!(
                "SORT_MERGE [{}]",
                branches.iter().map(Access::describe).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

pub struct ExecOptions {
    pub filter: Option<Matcher>,
    pub sort: Option<SortSpec>,
    pub projection: Option<Projection>,
    pub skip: u64,
    pub limit: Option<u64>,
    pub allow_disk_use: bool,
}

/// What the executor has done so far (explain's executionStats).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecStats {
    pub keys_examined: u64,
    pub docs_examined: u64,
    pub returned: u64,
}

pub struct Exec {
    pub coll: Arc<Collection>,
    pub stats: ExecStats,
    access: Access,
    opts: ExecOptions,
    pos_rid: Option<i64>,
    pos_key: Option<Vec<u8>>,
    prefix_at: usize,
    seen: HashSet<i64>,
    /// Matched records not yet handed out.
    pending: VecDeque<Rec>,
    sorted: bool,
    source_done: bool,
    /// `maxTimeMS` left for this cursor (time between getMores does not count).
    pub time_left: Option<Duration>,
    /// When the current batch's work must stop, from `time_left`.
    deadline: Option<Instant>,
    /// find's `returnKey`: hand out the index key instead of the document.
    pub return_key: bool,
    /// find's `showRecordId`: add `$recordId` to each document.
    pub show_record_id: bool,
    /// Batches go to a client (`next_batch`), so unchanged documents may stay as stored bytes;
    /// otherwise (`next_match`) documents are parsed once and handed over.
    pub raw_output: bool,
    /// Parse only these top-level fields (an aggregation that reads no others).
    pub fields: Option<Vec<String>>,
    /// An `$or` union's scans, one per clause, and the one being read.
    branches: Vec<Exec>,
    branch_at: usize,
    /// A sort-merge's next record from each branch with its sort keys (None: branch ended).
    heads: Vec<Option<(Vec<Bson>, Rec)>>,
    /// A trial run stops reading once keys + documents examined reach this.
    work_limit: Option<u64>,
    /// A blocking sort that outgrew memory: its sorted runs on disk, merged as read.
    spill: Option<super::spill::Spill>,
}

/// How many documents or keys a scan examines between looks at the clock.
const CLOCK_EVERY: u64 = 128;

/// A matched record: its stored bytes (kept when the client gets them unchanged, so they are
/// never parsed and re-serialised) and/or the parsed document (when a filter, sort or
/// projection needed it). At least one of the two is present.
struct Rec {
    rid: i64,
    raw: Option<Vec<u8>>,
    doc: Option<Document>,
    size: usize,
}

impl Rec {
    fn into_doc(self) -> Result<Document> {
        match (self.doc, self.raw) {
            (Some(d), _) => Ok(d),
            (None, Some(raw)) => Ok(scan::parse_record(&raw)?),
            (None, None) => Ok(Document::new()),
        }
    }

    fn into_raw(self) -> Vec<u8> {
        match (self.raw, self.doc) {
            (Some(raw), _) => raw,
            (None, Some(d)) => {
                let mut v = Vec::with_capacity(self.size);
                let _ = d.to_writer(&mut v);
                v
            }
            (None, None) => vec![5, 0, 0, 0, 0],
        }
    }
}

/// A batch for the client: parsed documents, or stored documents passed through as bytes.
pub enum Batch {
    Docs(Vec<Document>),
    Raw(Vec<Vec<u8>>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Docs(d) => d.len(),
            Batch::Raw(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As parsed documents (for callers that need to look inside).
    pub fn into_docs(self) -> Result<Vec<Document>> {
        match self {
            Batch::Docs(d) => Ok(d),
            Batch::Raw(r) => r.iter().map(|b| Ok(scan::parse_record(b)?)).collect(),
        }
    }
}

fn time_limit_exceeded() -> MongoError {
    MongoError::new(ErrorCode::MaxTimeMSExpired, "operation exceeded time limit")
}

impl Exec {
    pub fn new(coll: Arc<Collection>, access: Access, opts: ExecOptions) -> Exec {
        Exec {
            coll,
            stats: ExecStats::default(),
            access,
            opts,
            pos_rid: None,
            pos_key: None,
            prefix_at: 0,
            seen: HashSet::new(),
            pending: VecDeque::new(),
            sorted: false,
            source_done: false,
            time_left: None,
            deadline: None,
            return_key: false,
            show_record_id: false,
            raw_output: false,
            fields: None,
            branches: Vec::new(),
            branch_at: 0,
            heads: Vec::new(),
            work_limit: None,
            spill: None,
        }
    }

    /// The multi-planner's trial step: reads matches into the buffer until `works` more keys
    /// and documents have been examined or the scan ends. Returns (matches buffered, ended).
    pub fn trial(&mut self, ss: &mut StoreSession, works: u64) -> Result<(usize, bool)> {
        if !self.source_done {
            self.work_limit = Some(self.works() + works);
            let r = self.pull(ss, usize::MAX, usize::MAX);
            self.work_limit = None;
            r?;
        }
        Ok((self.pending.len(), self.source_done))
    }

    /// Keys and documents examined so far.
    pub fn works(&self) -> u64 {
        self.stats.keys_examined + self.stats.docs_examined
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// A tailable cursor reached the end: look again from the saved position next time.
    pub fn rearm(&mut self) {
        if matches!(self.access, Access::CollScan { forward: true }) && self.pending.is_empty() {
            self.source_done = false;
        }
    }

    /// True when no more documents will come.
    pub fn is_exhausted(&self) -> bool {
        (self.source_done && self.pending.is_empty()) || self.opts.limit == Some(0)
    }

    /// True when the limit has been handed out in full.
    pub fn limit_reached(&self) -> bool {
        self.opts.limit == Some(0)
    }

    /// Next matching document with its RecordId, before projection (for write commands).
    pub fn next_match(&mut self, ss: &mut StoreSession) -> Result<Option<(i64, Document)>> {
        match self.next_rec(ss)? {
            Some(r) => Ok(Some((r.rid, r.into_doc()?))),
            None => Ok(None),
        }
    }

    /// Whether documents go to the client exactly as stored.
    fn passes_raw(&self) -> bool {
        self.raw_output && self.opts.projection.is_none() && !self.return_key && !self.show_record_id
    }

    fn next_rec(&mut self, ss: &mut StoreSession) -> Result<Option<Rec>> {
        loop {
            if self.opts.limit == Some(0) {
                return Ok(None);
            }
            if self.opts.sort.is_some() && !self.sorted {
                self.sort_all(ss)?;
            }
            if self.pending.is_empty() && !self.source_done {
                // A limit bounds the read-ahead, so `limit: n` examines about n entries.
                let want = match self.opts.limit {
                    Some(l) => (l.saturating_add(self.opts.skip)).clamp(1, PULL_CHUNK as u64) as usize,
                    None => PULL_CHUNK,
                };
                self.pull(ss, want, 16 * 1024 * 1024)?;
            }
            if self.pending.is_empty() {
                self.refill_from_spill()?;
            }
            let Some(item) = self.pending.pop_front() else {
                return Ok(None);
            };
            if self.opts.skip > 0 {
                self.opts.skip -= 1;
                continue;
            }
            if let Some(l) = self.opts.limit.as_mut() {
                *l -= 1;
            }
            self.stats.returned += 1;
            return Ok(Some(item));
        }
    }

    /// A batch of projected documents: at most `max_docs`, and no more than `max_bytes` unless
    /// a single document is larger.
    pub fn next_batch(&mut self, ss: &mut StoreSession, max_docs: usize, max_bytes: usize) -> Result<Batch> {
        let started = Instant::now();
        self.deadline = self.time_left.map(|t| started + t);
        let out = self.fill_batch(ss, max_docs, max_bytes);
        if let Some(t) = self.time_left.as_mut() {
            *t = t.saturating_sub(started.elapsed());
        }
        out
    }

    fn fill_batch(&mut self, ss: &mut StoreSession, max_docs: usize, max_bytes: usize) -> Result<Batch> {
        let mut bytes = 0usize;
        if self.passes_raw() {
            let mut out = Vec::new();
            while out.len() < max_docs {
                if let Some(r) = self.pending.front() {
                    if !out.is_empty() && bytes + r.size > max_bytes && self.opts.skip == 0 {
                        break;
                    }
                }
                let Some(rec) = self.next_rec(ss)? else { break };
                bytes += rec.size;
                out.push(rec.into_raw());
            }
            return Ok(Batch::Raw(out));
        }
        let mut out = Vec::new();
        while out.len() < max_docs {
            if let Some(r) = self.pending.front() {
                if !out.is_empty() && bytes + r.size > max_bytes && self.opts.skip == 0 {
                    break;
                }
            }
            let Some(rec) = self.next_rec(ss)? else {
                break;
            };
            let (rid, size) = (rec.rid, rec.size);
            let doc = rec.into_doc()?;
            // `{$meta: "indexKey"}` shows the key the document was found by.
            let wants_key = self
                .opts
                .projection
                .as_ref()
                .is_some_and(|p| p.metas.iter().any(|(_, m)| *m == Meta::IndexKey));
            let mut key_doc = wants_key.then(|| self.key_of(&doc));
            let mut doc = match &self.opts.projection {
                _ if self.return_key => self.key_of(&doc),
                Some(p) if p.needs_position() => {
                    let pos = self.opts.filter.as_ref().and_then(|f| f.matches_with_details(&doc).1);
                    p.apply_with_position(&doc, pos)?
                }
                Some(p) => p.apply(&doc)?,
                None => doc,
            };
            // With returnKey only the key goes out (mongod's drivers' tests show no $recordId).
            if self.show_record_id && !self.return_key {
                doc.insert("$recordId", rid);
            }
            if let Some(p) = self.opts.projection.as_ref().filter(|p| !p.metas.is_empty() && !self.return_key)
            {
                for (field, meta) in &p.metas {
                    match meta {
                        Meta::RecordId => {
                            doc.insert(field.clone(), rid);
                        }
                        Meta::IndexKey => {
                            if let Some(key) = key_doc.take() {
                                doc.insert(field.clone(), key);
                            }
                        }
                        Meta::Absent => {}
                    }
                }
            }
            bytes += size;
            out.push(doc);
        }
        Ok(Batch::Docs(out))
    }

    /// Reads the `$or` branches in turn, each document once (by RecordId), applying the whole
    /// filter. `parse` is (need_doc, keep_doc, keep_raw) as in `pull`.
    fn pull_union(
        &mut self,
        ss: &mut StoreSession,
        max_docs: usize,
        max_bytes: usize,
        parse: (bool, bool, bool),
    ) -> Result<()> {
        if self.branches.is_empty() {
            let Access::Or(accesses) = &self.access else { return Ok(()) };
            self.branches = branch_execs(&self.coll, accesses);
        }
        let (mut n, mut bytes) = (0usize, 0usize);
        while self.branch_at < self.branches.len() {
            crate::ops::check_interrupt()?;
            if self.deadline.is_some_and(|d| Instant::now() > d) {
                return Err(time_limit_exceeded());
            }
            let branch = &mut self.branches[self.branch_at];
            let before = branch.stats;
            let rec = branch.next_rec(ss)?;
            self.stats.keys_examined += branch.stats.keys_examined - before.keys_examined;
            self.stats.docs_examined += branch.stats.docs_examined - before.docs_examined;
            let Some(rec) = rec else {
                self.branch_at += 1;
                continue;
            };
            if let Some(size) = self.accept_branch_rec(rec, parse)? {
                n += 1;
                bytes += size;
            }
            if n >= max_docs || bytes >= max_bytes {
                return Ok(());
            }
        }
        self.source_done = true;
        Ok(())
    }

    /// Merges the `$or` branches by sort key, each document once (by RecordId), applying the
    /// whole filter. `parse` is (need_doc, keep_doc, keep_raw) as in `pull`.
    fn pull_merge(
        &mut self,
        ss: &mut StoreSession,
        max_docs: usize,
        max_bytes: usize,
        parse: (bool, bool, bool),
    ) -> Result<()> {
        let Access::SortMerge(accesses, sort) = &self.access else { return Ok(()) };
        let sort = sort.clone();
        if self.branches.is_empty() {
            self.branches = branch_execs(&self.coll, accesses);
            self.heads = Vec::new();
            for i in 0..self.branches.len() {
                let head = self.merge_head(ss, i, &sort)?;
                self.heads.push(head);
            }
        }
        let (mut n, mut bytes) = (0usize, 0usize);
        loop {
            if self.deadline.is_some_and(|d| Instant::now() > d) {
                return Err(time_limit_exceeded());
            }
            // The branch whose next record sorts first (ties: the earlier clause).
            let mut best: Option<usize> = None;
            for (i, h) in self.heads.iter().enumerate() {
                let Some((keys, _)) = h else { continue };
                let better = match best.and_then(|b| self.heads.get(b)).and_then(Option::as_ref) {
                    Some((bk, _)) => sort.compare_keys(keys, bk) == std::cmp::Ordering::Less,
                    None => true,
                };
                if better {
                    best = Some(i);
                }
            }
            let Some(i) = best else {
                self.source_done = true;
                return Ok(());
            };
            let next = self.merge_head(ss, i, &sort)?;
            let Some(slot) = self.heads.get_mut(i) else { return Ok(()) };
            let Some((_, rec)) = std::mem::replace(slot, next) else { continue };
            if let Some(size) = self.accept_branch_rec(rec, parse)? {
                n += 1;
                bytes += size;
            }
            if n >= max_docs || bytes >= max_bytes {
                return Ok(());
            }
        }
    }

    /// A record an `$or` branch found: queued if it is new (by RecordId) and passes the
    /// whole filter; returns its size when queued. `parse` is as in `pull`.
    fn accept_branch_rec(&mut self, rec: Rec, parse: (bool, bool, bool)) -> Result<Option<usize>> {
        let (need_doc, keep_doc, keep_raw) = parse;
        if !self.seen.insert(rec.rid) {
            return Ok(None);
        }
        let rid = rec.rid;
        let raw = rec.into_raw();
        let filter = self.opts.filter.as_ref();
        // The branch's bytes move into the record rather than being copied again.
        let Some(mut r) = make_rec(rid, &raw, filter, self.fields.as_deref(), need_doc, keep_doc, false)?
        else {
            return Ok(None);
        };
        if keep_raw {
            r.raw = Some(raw);
        }
        let size = r.size;
        self.pending.push_back(r);
        Ok(Some(size))
    }

    /// Branch `i`'s next record with its sort keys, counting the work into this scan's stats.
    fn merge_head(
        &mut self,
        ss: &mut StoreSession,
        i: usize,
        sort: &SortSpec,
    ) -> Result<Option<(Vec<Bson>, Rec)>> {
        let Some(branch) = self.branches.get_mut(i) else { return Ok(None) };
        let before = branch.stats;
        let rec = branch.next_rec(ss)?;
        self.stats.keys_examined += branch.stats.keys_examined - before.keys_examined;
        self.stats.docs_examined += branch.stats.docs_examined - before.docs_examined;
        let Some(rec) = rec else { return Ok(None) };
        let doc = match &rec.doc {
            Some(d) => sort.keys(d),
            None => sort.keys(&scan::parse_record(rec.raw.as_deref().unwrap_or(&[5, 0, 0, 0, 0]))?),
        };
        Ok(Some((doc, rec)))
    }

    /// The index key a document was found by, as `returnKey` shows it: `{field: value, ...}`
    /// of the index scanned (the first of a multikey document's keys), `{}` without an index.
    fn key_of(&self, doc: &Document) -> Document {
        match &self.access {
            Access::IndexScan { index, .. } => crate::store::index::keys_for(index, doc)
                .ok()
                .and_then(|keys| keys.into_iter().next())
                .map(|k| crate::store::index::key_value_doc(index, &k.values))
                .unwrap_or_default(),
            Access::IdLookup(_) => {
                doc.get("_id").map(|id| bson::doc! { "_id": id.clone() }).unwrap_or_default()
            }
            Access::CollScan { .. } | Access::Or(_) | Access::SortMerge(..) => Document::new(),
        }
    }

    fn sort_all(&mut self, ss: &mut StoreSession) -> Result<()> {
        let limit = ss.store.sort_memory_limit.load(std::sync::atomic::Ordering::Relaxed);
        let mut used = 0usize;
        while !self.source_done {
            let before = self.pending.len();
            self.pull(ss, PULL_CHUNK, usize::MAX)?;
            crate::ops::check_interrupt()?;
            if self.deadline.is_some_and(|d| Instant::now() > d) {
                return Err(time_limit_exceeded());
            }
            used += self.pending.iter().skip(before).map(|r| r.size).sum::<usize>();
            if used > limit {
                if !self.opts.allow_disk_use {
                    return Err(MongoError::new(
                        ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                        format!(
                            "Executor error during find command :: caused by :: Sort exceeded memory limit of {limit} bytes, but did not opt in to external sorting."
                        ),
                    ));
                }
                self.spill_pending()?;
                used = 0;
            }
        }
        if self.spill.is_some() {
            // The rest becomes the last run; the merge reads every run from here on.
            self.spill_pending()?;
        } else if let Some(sort) = &self.opts.sort {
            let mut v: Vec<_> = self.pending.drain(..).collect();
            // Records are parsed when a sort is set (see `pull`).
            let empty = Document::new();
            v.sort_by(|a, b| {
                sort.compare(a.doc.as_ref().unwrap_or(&empty), b.doc.as_ref().unwrap_or(&empty))
            });
            self.pending = v.into();
        }
        self.sorted = true;
        Ok(())
    }

    /// Writes the records held for the sort to disk as one sorted run.
    fn spill_pending(&mut self) -> Result<()> {
        let Some(sort) = &self.opts.sort else { return Ok(()) };
        let mut items = Vec::with_capacity(self.pending.len());
        for rec in self.pending.drain(..) {
            let (rid, doc) = (rec.rid, rec.doc.clone());
            let raw = rec.into_raw();
            let doc = match doc {
                Some(d) => d,
                None => scan::parse_record(&raw)?,
            };
            items.push(super::spill::Item { rid, doc, raw });
        }
        self.spill.get_or_insert_with(Default::default).write_run(items, sort)
    }

    /// Moves the next few records of a spilled sort's merge into `pending`.
    fn refill_from_spill(&mut self) -> Result<()> {
        let (Some(spill), Some(sort)) = (self.spill.as_mut(), self.opts.sort.as_ref()) else {
            return Ok(());
        };
        let keep_raw =
            self.raw_output && self.opts.projection.is_none() && !self.return_key && !self.show_record_id;
        for _ in 0..256 {
            let Some(it) = spill.next(sort)? else { break };
            let size = it.raw.len();
            let raw = keep_raw.then_some(it.raw);
            self.pending.push_back(Rec { rid: it.rid, raw, doc: Some(it.doc), size });
        }
        Ok(())
    }

    /// Reads up to `max_docs` matching documents into `pending`, in one snapshot.
    fn pull(&mut self, ss: &mut StoreSession, max_docs: usize, max_bytes: usize) -> Result<()> {
        let coll = self.coll.clone();
        let access = self.access.clone();
        let mut lost = None;
        let deadline = self.deadline;
        let work_limit = self.work_limit;
        let mut timed_out = false;
        // Parse only what a filter, sort or projection needs; keep bytes the client gets as is.
        let keep_raw = self.passes_raw();
        let keep_doc = self.opts.sort.is_some() || !keep_raw;
        let need_doc = keep_doc || self.opts.filter.is_some();
        let fields = self.fields.as_deref();
        if matches!(self.access, Access::Or(_)) {
            return self.pull_union(ss, max_docs, max_bytes, (need_doc, keep_doc, keep_raw));
        }
        if matches!(self.access, Access::SortMerge(..)) {
            return self.pull_merge(ss, max_docs, max_bytes, (need_doc, keep_doc, keep_raw));
        }
        let r: StoreResult<()> = ss.read(|t| {
            let mut n = 0usize;
            let mut bytes = 0usize;
            let filter = self.opts.filter.as_ref();
            let pending = &mut self.pending;
            match &access {
                Access::CollScan { forward } => {
                    // A capped collection's eviction (or the oplog's pruning) may have removed
                    // the last record this scan saw: its place in the collection is gone.
                    if let (true, Some(rid)) = (*forward && coll.is_capped(), self.pos_rid) {
                        let mut cur = t.s.open_cursor(&coll.uri(), None)?;
                        if !cur.search(crate::store::wt::Key::Int(rid))? {
                            lost = Some(rid);
                            return Ok(());
                        }
                    }
                    let mut stopped = false;
                    let pos = &mut self.pos_rid;
                    let stats = &mut self.stats;
                    // The oplog is read only up to what is certainly committed (see OplogClock).
                    let horizon =
                        if coll.ns == crate::store::OPLOG_NS { t.store.clock.visible() } else { i64::MAX };
                    scan::scan_records(t.s, &coll, *pos, *forward, |rid, raw| {
                        if rid > horizon {
                            return Ok(false);
                        }
                        stats.docs_examined += 1;
                        if stats.docs_examined.is_multiple_of(CLOCK_EVERY)
                            && (deadline.is_some_and(|d| Instant::now() > d) || crate::ops::interrupted())
                        {
                            timed_out = true;
                            stopped = true;
                            return Ok(false);
                        }
                        *pos = Some(rid);
                        if let Some(rec) = make_rec(rid, raw, filter, fields, need_doc, keep_doc, keep_raw)? {
                            n += 1;
                            bytes += raw.len();
                            pending.push_back(rec);
                        }
                        let go_on = n < max_docs
                            && bytes < max_bytes
                            && work_limit.is_none_or(|l| stats.keys_examined + stats.docs_examined < l);
                        stopped = !go_on;
                        Ok(go_on)
                    })?;
                    if !stopped {
                        self.source_done = true;
                    }
                }
                Access::IdLookup(id) => {
                    self.stats.keys_examined += 1;
                    if let Some(rid) = t.rid_by_id(&coll, id)? {
                        let mut records = t.s.open_cursor(&coll.uri(), None)?;
                        if records.search(Key::Int(rid))? {
                            self.stats.docs_examined += 1;
                            let raw = records.value()?;
                            if let Some(rec) =
                                make_rec(rid, raw, filter, fields, need_doc, keep_doc, keep_raw)?
                            {
                                pending.push_back(rec);
                            }
                        }
                    }
                    self.source_done = true;
                }
                Access::Or(_) | Access::SortMerge(..) => self.source_done = true,
                Access::IndexScan { index, ranges, forward, covered, .. } => {
                    let multikey = index.is_multikey();
                    let covered = *covered;
                    while self.prefix_at < ranges.len() {
                        // A reverse scan visits the ranges last to first.
                        let at = if *forward { self.prefix_at } else { ranges.len() - 1 - self.prefix_at };
                        let range = &ranges[at];
                        let mut stopped = false;
                        let pos = &mut self.pos_key;
                        let seen = &mut self.seen;
                        let stats = &mut self.stats;
                        let after = pos.clone();
                        // One record cursor for every fetch of this scan.
                        let mut records = t.s.open_cursor(&coll.uri(), None)?;
                        let visit = |key: &[u8], rid: i64, value: &[u8]| -> StoreResult<bool> {
                            stats.keys_examined += 1;
                            if stats.keys_examined.is_multiple_of(CLOCK_EVERY)
                                && (deadline.is_some_and(|d| Instant::now() > d) || crate::ops::interrupted())
                            {
                                timed_out = true;
                                stopped = true;
                                return Ok(false);
                            }
                            *pos = Some(key.to_vec());
                            // A covered scan reads the entry's typed values. An entry without
                            // them (a document that gained an array after planning) is fetched.
                            let from_entry = if covered {
                                crate::store::index::stored_values(index, value).and_then(|v| {
                                    Some((crate::store::index::covered_doc(index, v)?, v.len()))
                                })
                            } else {
                                None
                            };
                            if let Some((doc, size)) = from_entry {
                                if filter.is_none_or(|f| f.matches(&doc)) {
                                    n += 1;
                                    bytes += size;
                                    pending.push_back(Rec { rid, raw: None, doc: Some(doc), size });
                                }
                            } else if !(multikey || covered) || seen.insert(rid) {
                                // Only a multikey index lists a document more than once.
                                stats.docs_examined += 1;
                                if records.search(Key::Int(rid))? {
                                    let raw = records.value()?;
                                    if let Some(rec) =
                                        make_rec(rid, raw, filter, fields, need_doc, keep_doc, keep_raw)?
                                    {
                                        n += 1;
                                        bytes += raw.len();
                                        pending.push_back(rec);
                                    }
                                }
                            }
                            let go_on = n < max_docs
                                && bytes < max_bytes
                                && work_limit.is_none_or(|l| stats.keys_examined + stats.docs_examined < l);
                            stopped = !go_on;
                            Ok(go_on)
                        };
                        scan::scan_index_entries(t.s, index, range, after.as_deref(), *forward, visit)?;
                        if stopped {
                            return Ok(());
                        }
                        self.prefix_at += 1;
                        self.pos_key = None;
                    }
                    self.source_done = true;
                }
            }
            Ok(())
        });
        if timed_out {
            crate::ops::check_interrupt()?;
            return Err(time_limit_exceeded());
        }
        if let Some(rid) = lost {
            return Err(MongoError::new(
                ErrorCode::CappedPositionLost,
                format!(
                    "CollectionScan died due to position in capped collection being deleted. Last seen record id: RecordId({rid})"
                ),
            ));
        }
        r.map_err(|e| match e {
            crate::store::StoreError::Engine(ref w) if w.is_not_found() => {
                MongoError::new(ErrorCode::QueryPlanKilled, format!("query plan killed: {e}"))
            }
            other => other.into(),
        })
    }
}

/// One plain scan per `$or` clause: the whole filter is applied to what they find.
fn branch_execs(coll: &Arc<Collection>, accesses: &[Access]) -> Vec<Exec> {
    accesses
        .iter()
        .map(|a| {
            let opts = ExecOptions {
                filter: None,
                sort: None,
                projection: None,
                skip: 0,
                limit: None,
                allow_disk_use: false,
            };
            let mut e = Exec::new(coll.clone(), a.clone(), opts);
            e.raw_output = true;
            e
        })
        .collect()
}

/// The record `raw` as a `Rec` if it passes `filter`, parsed when `need_doc`, keeping the
/// parsed document and/or the bytes as asked.
#[allow(clippy::too_many_arguments)]
fn make_rec(
    rid: i64,
    raw: &[u8],
    filter: Option<&Matcher>,
    fields: Option<&[String]>,
    need_doc: bool,
    keep_doc: bool,
    keep_raw: bool,
) -> StoreResult<Option<Rec>> {
    let doc = match (need_doc, fields) {
        (false, _) => None,
        (true, None) => Some(scan::parse_record(raw)?),
        (true, Some(f)) => Some(scan::parse_fields(raw, f)?),
    };
    if let (Some(f), Some(d)) = (filter, &doc) {
        if !f.matches(d) {
            return Ok(None);
        }
    }
    Ok(Some(Rec {
        rid,
        raw: keep_raw.then(|| raw.to_vec()),
        doc: if keep_doc { doc } else { None },
        size: raw.len(),
    }))
}

/// Size of a document as stored (for batch-size accounting).
pub fn bson_size(doc: &Document) -> usize {
    let mut v = Vec::new();
    doc.to_writer(&mut v).map(|_| v.len()).unwrap_or(0)
}
