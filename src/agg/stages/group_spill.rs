//! `$group` past its memory limit with `allowDiskUse`: the groups held so far are written to
//! a spill run sorted by group key, as partial accumulator states, and memory starts again.
//! At the end the runs are merged by key and the partial states of one key are combined in
//! run order (earlier runs saw earlier documents, so $first/$last/$push/$firstN/$top keep
//! their input-order meaning).

use super::group::{AccSpec, Kind, State};
use crate::agg::expr::arith::{StdDev, Sum};
use crate::error::{MongoError, Result};
use crate::query::compare::compare_bson;
use crate::query::spill::{Item, Spill};
use bson::{doc, Bson, Document};
use std::cmp::Ordering;
use std::collections::HashSet;

fn bad() -> MongoError {
    MongoError::internal("$group spill file: bad partial state")
}

fn tagged(t: i32, v: impl Into<Bson>) -> Bson {
    Bson::Document(doc! { "t": t, "v": v.into() })
}

fn opt(v: Option<Bson>) -> Bson {
    Bson::Array(v.into_iter().collect())
}

/// A partial state as BSON.
pub(super) fn encode(st: &State) -> Bson {
    match st {
        State::Sum(s) => tagged(0, s.to_bson()),
        State::Min(v) => tagged(1, opt(v.clone())),
        State::Max(v) => tagged(2, opt(v.clone())),
        State::First(v) => tagged(3, opt(v.clone())),
        State::Last(v) => tagged(4, v.clone()),
        State::List(l) => tagged(5, l.clone()),
        State::Set(l, _) => tagged(6, l.clone()),
        State::Merge(d) => tagged(7, d.clone()),
        State::Std(s) => tagged(8, s.to_bson()),
        State::N(n, items) => {
            tagged(9, doc! { "n": *n as i64, "a": items.iter().cloned().collect::<Vec<_>>() })
        }
        State::Ranked(n, items) => {
            let a: Vec<Bson> =
                items.iter().map(|(k, v)| Bson::Array(vec![Bson::Array(k.clone()), v.clone()])).collect();
            tagged(10, doc! { "n": *n as i64, "a": a })
        }
    }
}

fn array(v: &Bson) -> Result<&Vec<Bson>> {
    match v {
        Bson::Array(a) => Ok(a),
        _ => Err(bad()),
    }
}

fn first(v: &Bson) -> Result<Option<Bson>> {
    Ok(array(v)?.first().cloned())
}

/// The state [`encode`] wrote.
pub(super) fn decode(b: &Bson) -> Result<State> {
    let Bson::Document(d) = b else { return Err(bad()) };
    let v = d.get("v").ok_or_else(bad)?;
    let limited = |v: &Bson| -> Result<(usize, Vec<Bson>)> {
        let Bson::Document(x) = v else { return Err(bad()) };
        let n = x.get_i64("n").ok().and_then(|n| usize::try_from(n).ok()).ok_or_else(bad)?;
        Ok((n, array(x.get("a").ok_or_else(bad)?)?.clone()))
    };
    Ok(match d.get_i32("t").map_err(|_| bad())? {
        0 => State::Sum(Sum::from_bson(v).ok_or_else(bad)?),
        1 => State::Min(first(v)?),
        2 => State::Max(first(v)?),
        3 => State::First(first(v)?),
        4 => State::Last(v.clone()),
        5 => State::List(array(v)?.clone()),
        6 => {
            let l = array(v)?.clone();
            let seen: HashSet<Vec<u8>> = l.iter().map(crate::query::collation::group_key).collect();
            State::Set(l, seen)
        }
        7 => match v {
            Bson::Document(m) => State::Merge(m.clone()),
            _ => return Err(bad()),
        },
        8 => State::Std(StdDev::from_bson(v).ok_or_else(bad)?),
        9 => {
            let (n, a) = limited(v)?;
            State::N(n, a.into())
        }
        10 => {
            let (n, a) = limited(v)?;
            let mut items = Vec::with_capacity(a.len());
            for p in a {
                let pair = array(&p)?;
                let (Some(Bson::Array(k)), Some(v)) = (pair.first(), pair.get(1)) else { return Err(bad()) };
                items.push((k.clone(), v.clone()));
            }
            State::Ranked(n, items)
        }
        _ => return Err(bad()),
    })
}

/// Combines `a` (from earlier input) with `b` (later input) for accumulator `acc`.
pub(super) fn merge(acc: &AccSpec, a: &mut State, b: State) -> Result<()> {
    match (a, b) {
        (State::Sum(x), State::Sum(y)) => x.merge(&y),
        (State::Min(x), State::Min(y)) => {
            if let Some(y) = y {
                if x.as_ref().is_none_or(|c| compare_bson(&y, c).is_lt()) {
                    *x = Some(y);
                }
            }
        }
        (State::Max(x), State::Max(y)) => {
            if let Some(y) = y {
                if x.as_ref().is_none_or(|c| compare_bson(&y, c).is_gt()) {
                    *x = Some(y);
                }
            }
        }
        (State::First(x), State::First(y)) => {
            if x.is_none() {
                *x = y;
            }
        }
        // Every partial state saw at least one document, so the later one is the last.
        (State::Last(x), State::Last(y)) => *x = y,
        (State::List(x), State::List(y)) => x.extend(y),
        (State::Set(x, seen), State::Set(y, _)) => {
            for v in y {
                if seen.insert(crate::query::collation::group_key(&v)) {
                    x.push(v);
                }
            }
        }
        (State::Merge(x), State::Merge(y)) => crate::agg::expr::object::merge_into(x, &Bson::Document(y))?,
        (State::Std(x), State::Std(y)) => x.merge(&y),
        (State::N(n, x), State::N(_, y)) => {
            let n = *n;
            match acc.kind {
                Kind::FirstN => x.extend(y.into_iter().take(n.saturating_sub(x.len()))),
                Kind::LastN => {
                    x.extend(y);
                    while x.len() > n {
                        x.pop_front();
                    }
                }
                _ => {
                    x.extend(y);
                    super::group::trim_min_max(x, n, acc.kind == Kind::MinN);
                }
            }
        }
        (State::Ranked(n, x), State::Ranked(_, y)) => {
            x.extend(y);
            if let Some(sort) = &acc.sort {
                super::group::trim_ranked(x, *n, sort, matches!(acc.kind, Kind::Top | Kind::TopN));
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// The spill record of one group: `{k: <sort key bytes>, i: <_id>, s: [<states>]}`.
pub(super) fn record(sort_key: Vec<u8>, id: Bson, states: &[State]) -> Result<Item> {
    let doc = doc! {
        "k": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: sort_key },
        "i": id,
        "s": states.iter().map(encode).collect::<Vec<_>>(),
    };
    let mut raw = Vec::new();
    doc.to_writer(&mut raw).map_err(|e| MongoError::internal(e.to_string()))?;
    Ok(Item { rid: 0, doc, raw })
}

fn key_of(d: &Document) -> &[u8] {
    match d.get("k") {
        Some(Bson::Binary(b)) => &b.bytes,
        _ => &[],
    }
}

pub(super) fn by_key(a: &Document, b: &Document) -> Ordering {
    key_of(a).cmp(key_of(b))
}

/// Reads merged groups back from the runs, one group at a time.
pub(super) struct GroupMerge {
    pub(super) spill: Spill,
    pending: Option<Item>,
}

impl GroupMerge {
    pub(super) fn new(spill: Spill) -> GroupMerge {
        GroupMerge { spill, pending: None }
    }

    /// The next group's `_id` and combined states.
    pub(super) fn next(&mut self, accs: &[AccSpec]) -> Result<Option<(Bson, Vec<State>)>> {
        let cur = match self.pending.take() {
            Some(c) => c,
            None => match self.spill.next_by(by_key)? {
                Some(c) => c,
                None => return Ok(None),
            },
        };
        let mut states = states_of(&cur.doc, accs.len())?;
        loop {
            match self.spill.next_by(by_key)? {
                Some(n) if key_of(&n.doc) == key_of(&cur.doc) => {
                    let more = states_of(&n.doc, accs.len())?;
                    for ((a, st), m) in accs.iter().zip(states.iter_mut()).zip(more) {
                        merge(a, st, m)?;
                    }
                }
                other => {
                    self.pending = other;
                    break;
                }
            }
        }
        Ok(Some((cur.doc.get("i").cloned().unwrap_or(Bson::Null), states)))
    }
}

fn states_of(d: &Document, n: usize) -> Result<Vec<State>> {
    let s = array(d.get("s").ok_or_else(bad)?)?;
    if s.len() != n {
        return Err(bad());
    }
    s.iter().map(decode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn states_round_trip_through_bson() {
        let mut sum = Sum::default();
        sum.add(&Bson::Int32(3)).unwrap();
        let states = vec![
            State::Sum(sum),
            State::Min(None),
            State::Max(Some(Bson::Int32(4))),
            State::Last(Bson::String("x".into())),
            State::N(2, VecDeque::from(vec![Bson::Int32(1)])),
            State::Ranked(1, vec![(vec![Bson::Int32(1)], Bson::Null)]),
        ];
        for st in &states {
            let back = decode(&encode(st)).unwrap();
            assert_eq!(encode(&back), encode(st));
        }
        assert!(decode(&Bson::Int32(1)).is_err());
    }
}
