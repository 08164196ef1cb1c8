//! External sorting for blocking sorts with `allowDiskUse`: once the records held for a sort
//! pass the memory limit they are sorted and written to an anonymous temporary file (a run);
//! at the end the runs are merged, one record per run in memory at a time.

use super::sort::SortSpec;
use crate::error::{MongoError, Result};
use bson::Document;
use std::cmp::Ordering;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// mongod's default `internalQueryMaxBlockingSortMemoryUsageBytes` (100 MiB); each server
/// keeps its own, settable with `setParameter`.
pub const DEFAULT_MEMORY_LIMIT: usize = 100 * 1024 * 1024;

/// Most runs kept open at once; past it they are merged into one.
const MAX_RUNS: usize = 64;

fn io_err(e: std::io::Error) -> MongoError {
    MongoError::internal(format!("sort spill file: {e}"))
}

/// One sorted record: RecordId, parsed document (for comparing) and its stored bytes.
pub struct Item {
    pub rid: i64,
    pub doc: Document,
    pub raw: Vec<u8>,
}

struct Run {
    file: BufReader<std::fs::File>,
    head: Option<Item>,
}

impl Run {
    fn advance(&mut self) -> Result<()> {
        let mut rid = [0u8; 8];
        match self.file.read_exact(&mut rid) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.head = None;
                return Ok(());
            }
            Err(e) => return Err(io_err(e)),
        }
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len).map_err(io_err)?;
        let n = i32::from_le_bytes(len);
        let n = usize::try_from(n).ok().filter(|n| (5..=64 * 1024 * 1024).contains(n));
        let n = n.ok_or_else(|| MongoError::internal("sort spill file: bad record length"))?;
        let mut raw = vec![0u8; n];
        raw[..4].copy_from_slice(&len);
        self.file.read_exact(&mut raw[4..]).map_err(io_err)?;
        let doc = crate::store::scan::parse_record(&raw)?;
        self.head = Some(Item { rid: i64::from_le_bytes(rid), doc, raw });
        Ok(())
    }
}

/// Sorted runs on disk, merged on the way out.
#[derive(Default)]
pub struct Spill {
    runs: Vec<Run>,
}

impl Spill {
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Sorts `items` and writes them out as one run.
    pub fn write_run(&mut self, items: Vec<Item>, sort: &SortSpec) -> Result<()> {
        self.write_run_by(items, |a, b| sort.compare(a, b))
    }

    /// `write_run` with any document order (the aggregation `$sort` has its own keys).
    pub fn write_run_by(
        &mut self,
        mut items: Vec<Item>,
        cmp: impl Fn(&Document, &Document) -> Ordering,
    ) -> Result<()> {
        items.sort_by(|a, b| cmp(&a.doc, &b.doc));
        let mut items = items.into_iter();
        let run = write_run(|| Ok(items.next()))?;
        self.runs.push(run);
        if self.runs.len() > MAX_RUNS {
            self.compact(&cmp)?;
        }
        Ok(())
    }

    /// Merges every run into one (in order, earlier runs first among equals), so a large
    /// input under a small memory limit never holds more than `MAX_RUNS` files open.
    fn compact(&mut self, cmp: &impl Fn(&Document, &Document) -> Ordering) -> Result<()> {
        let run = write_run(|| self.next_by(cmp))?;
        self.runs = vec![run];
        Ok(())
    }

    /// The smallest record across the runs, or `None` when they are all drained.
    pub fn next(&mut self, sort: &SortSpec) -> Result<Option<Item>> {
        self.next_by(|a, b| sort.compare(a, b))
    }

    /// `next` with any document order (the one the runs were written in).
    pub fn next_by(&mut self, cmp: impl Fn(&Document, &Document) -> Ordering) -> Result<Option<Item>> {
        let mut best: Option<usize> = None;
        for (i, r) in self.runs.iter().enumerate() {
            let Some(h) = &r.head else { continue };
            let better = match best.and_then(|b| self.runs[b].head.as_ref()) {
                None => true,
                // Earlier runs win ties: they hold earlier records, keeping the sort stable.
                Some(cur) => cmp(&h.doc, &cur.doc) == Ordering::Less,
            };
            if better {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(None) };
        let run = &mut self.runs[i];
        let item = run.head.take();
        run.advance()?;
        Ok(item)
    }
}

/// Writes the items `next` yields, in that order, to a new temporary file as a run (RecordId
/// then the stored bytes), positioned at its first item.
fn write_run(mut next: impl FnMut() -> Result<Option<Item>>) -> Result<Run> {
    let file = tempfile::tempfile().map_err(io_err)?;
    let mut w = BufWriter::new(file);
    while let Some(it) = next()? {
        w.write_all(&it.rid.to_le_bytes()).map_err(io_err)?;
        w.write_all(&it.raw).map_err(io_err)?;
    }
    let mut file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut run = Run { file: BufReader::new(file), head: None };
    run.advance()?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn item(rid: i64, v: i32) -> Item {
        let doc = doc! { "_id": rid, "v": v };
        let mut raw = Vec::new();
        doc.to_writer(&mut raw).unwrap();
        Item { rid, doc, raw }
    }

    #[test]
    fn runs_merge_in_sort_order() {
        let sort = SortSpec::parse(&doc! { "v": 1 }).unwrap();
        let mut s = Spill::default();
        s.write_run(vec![item(1, 5), item(2, 1), item(3, 9)], &sort).unwrap();
        s.write_run(vec![item(4, 4), item(5, 1)], &sort).unwrap();
        s.write_run(Vec::new(), &sort).unwrap();
        let mut out = Vec::new();
        while let Some(it) = s.next(&sort).unwrap() {
            assert_eq!(crate::store::scan::parse_record(&it.raw).unwrap(), it.doc);
            out.push((it.doc.get_i32("v").unwrap(), it.rid));
        }
        assert_eq!(out, vec![(1, 2), (1, 5), (4, 4), (5, 1), (9, 3)]);
    }

    #[test]
    fn many_runs_are_compacted_keeping_tie_order() {
        let sort = SortSpec::parse(&doc! { "v": 1 }).unwrap();
        let mut s = Spill::default();
        for r in 0..150i64 {
            s.write_run(vec![item(r * 2, (r % 10) as i32), item(r * 2 + 1, 3)], &sort).unwrap();
            assert!(s.run_count() <= MAX_RUNS);
        }
        let mut out = Vec::new();
        while let Some(it) = s.next(&sort).unwrap() {
            out.push((it.doc.get_i32("v").unwrap(), it.rid));
        }
        assert_eq!(out.len(), 300);
        let mut want = out.clone();
        // Equal values come out in the order they were written (by RecordId here).
        want.sort();
        assert_eq!(out, want);
    }
}
