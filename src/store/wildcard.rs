//! Wildcard indexes (`{"$**": 1}`, `{"a.$**": 1}`, with an optional `wildcardProjection`):
//! one entry per leaf value, keyed by (path, value) so that a query on one path scans the
//! entries with that path as an ordinary two-field index. Paths carry no array positions:
//! an array's elements are indexed under the array's own path, as mongod does.

use bson::{Bson, Document};

/// Which paths a wildcard index covers.
#[derive(Debug, Clone)]
pub struct WildcardSpec {
    /// `a` for `{"a.$**": 1}`; none for `{"$**": 1}`.
    root: Option<String>,
    /// `wildcardProjection` paths and whether it includes (true) or excludes them.
    projection: Vec<String>,
    include: bool,
    /// `_id` is left out unless the projection names it.
    id_included: bool,
}

/// Whether `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Int32(n) => *n != 0,
        Bson::Int64(n) => *n != 0,
        Bson::Double(n) => *n != 0.0,
        Bson::Decimal128(d) => d.to_string().trim_start_matches('-') != "0",
        _ => true,
    }
}

impl WildcardSpec {
    /// The wildcard field of a key pattern, when it has one (`$**` or `path.$**`).
    pub fn wildcard_field(key: &Document) -> Option<&str> {
        key.keys().map(String::as_str).find(|k| *k == "$**" || k.ends_with(".$**"))
    }

    /// Builds the spec from a validated key pattern and projection; `Err` says what is wrong.
    pub fn new(field: &str, projection: Option<&Document>) -> Result<WildcardSpec, String> {
        let root = field.strip_suffix(".$**").map(str::to_string);
        let mut spec = WildcardSpec { root, projection: Vec::new(), include: true, id_included: false };
        let Some(p) = projection else {
            return Ok(spec);
        };
        if p.is_empty() {
            return Err("The 'wildcardProjection' field can't be an empty object".into());
        }
        let mut mode: Option<bool> = None;
        for (path, v) in p {
            let flat: Vec<(String, bool)> = match v {
                Bson::Document(sub) => sub.iter().map(|(k, v)| (format!("{path}.{k}"), truthy(v))).collect(),
                v => vec![(path.clone(), truthy(v))],
            };
            for (path, inc) in flat {
                if path == "_id" {
                    spec.id_included = inc;
                    continue;
                }
                match mode {
                    Some(m) if m != inc => {
                        return Err(if m {
                            format!("Cannot do exclusion on field {path} in inclusion projection")
                        } else {
                            format!("Cannot do inclusion on field {path} in exclusion projection")
                        })
                    }
                    _ => mode = Some(inc),
                }
                spec.projection.push(path);
            }
        }
        spec.include = mode.unwrap_or(true);
        if spec.projection.is_empty() && spec.id_included {
            // `{_id: 1}` alone indexes only `_id`.
            spec.include = true;
        }
        Ok(spec)
    }

    /// Whether the index holds the values at `path` (a dotted path without array positions).
    pub fn covers(&self, path: &str) -> bool {
        if under(path, "_id") {
            return self.id_included;
        }
        if let Some(root) = &self.root {
            return under(path, root);
        }
        if self.projection.is_empty() {
            return !self.id_included || !self.include;
        }
        let named = self.projection.iter().any(|p| under(path, p));
        named == self.include
    }

    /// Every (path, value) entry `doc` gives, and the covered paths at which it has arrays.
    pub fn entries(&self, doc: &Document) -> (Vec<(String, Bson)>, Vec<String>) {
        let mut out = Vec::new();
        let mut multikey = Vec::new();
        for (k, v) in doc {
            self.visit(k.clone(), v, &mut out, &mut multikey);
        }
        out.retain(|(p, _)| self.covers(p));
        // An array above the covered part (`a` for `a.b.$**`) still makes its paths multikey.
        multikey.retain(|p| self.covers(p) || out.iter().any(|(o, _)| under(o, p)));
        multikey.sort();
        multikey.dedup();
        (out, multikey)
    }

    fn visit(&self, path: String, v: &Bson, out: &mut Vec<(String, Bson)>, multikey: &mut Vec<String>) {
        match v {
            Bson::Document(d) if !d.is_empty() => {
                for (k, e) in d {
                    self.visit(format!("{path}.{k}"), e, out, multikey);
                }
            }
            Bson::Array(a) => {
                multikey.push(path.clone());
                if a.is_empty() {
                    out.push((path, Bson::Array(Vec::new())));
                    return;
                }
                for e in a {
                    match e {
                        // An array's documents are walked under the array's path; nested
                        // arrays are values in their own right.
                        Bson::Document(d) if !d.is_empty() => self.visit(path.clone(), e, out, multikey),
                        other => out.push((path.clone(), other.clone())),
                    }
                }
            }
            other => out.push((path, other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn paths(spec: &WildcardSpec, d: &Document) -> Vec<String> {
        spec.entries(d).0.into_iter().map(|(p, v)| format!("{p}={v}")).collect()
    }

    #[test]
    fn every_leaf_under_its_path() {
        let all = WildcardSpec::new("$**", None).unwrap();
        let d = doc! { "_id": 1, "a": { "b": 1, "c": [2, { "d": 3 }, [4]] }, "e": {}, "f": [] };
        assert_eq!(
            paths(&all, &d),
            ["a.b=1", "a.c=2", "a.c.d=3", "a.c=[4]", "e={}", "f=[]"].map(String::from).to_vec()
        );
        assert_eq!(all.entries(&d).1, vec!["a.c".to_string(), "f".to_string()]);
        let sub = WildcardSpec::new("a.$**", None).unwrap();
        assert_eq!(paths(&sub, &doc! { "a": { "x": 1 }, "ab": 2 }), vec!["a.x=1".to_string()]);
    }

    #[test]
    fn projections() {
        let inc = WildcardSpec::new("$**", Some(&doc! { "a.b": 1, "_id": 1 })).unwrap();
        assert!(inc.covers("a.b.c") && inc.covers("_id") && !inc.covers("a.c") && !inc.covers("a"));
        let exc = WildcardSpec::new("$**", Some(&doc! { "a": { "b": 0 } })).unwrap();
        assert!(!exc.covers("a.b") && exc.covers("a.c") && !exc.covers("_id"));
        assert!(WildcardSpec::new("$**", Some(&doc! { "a": 1, "b": 0 })).is_err());
        assert!(WildcardSpec::new("$**", Some(&doc! {})).is_err());
    }
}
