//! Which top-level fields a pipeline reads from its input documents, so a collection scan
//! parses only those (a `$match` + `$group` over wide documents touches a few fields of each).
//! The answer may be a superset (any `$`-string counts, even inside `$literal`); when the
//! pipeline could see the whole document (`$$ROOT`, a stage not understood here, no `$group`
//! to end the dependence) the answer is `None`: parse everything.

use bson::{Bson, Document};
use std::collections::BTreeSet;

/// The top-level fields the stages up to the first `$group` read, or `None` for all.
pub fn input_fields(stages: &[Bson]) -> Option<Vec<String>> {
    let mut fields = BTreeSet::new();
    for st in stages {
        let Bson::Document(st) = st else { return None };
        let (name, spec) = st.iter().next()?;
        match (name.as_str(), spec) {
            ("$match", Bson::Document(f)) => filter_fields(f, &mut fields)?,
            ("$sort", Bson::Document(s)) => {
                for k in s.keys() {
                    fields.insert(head(k)?);
                }
            }
            ("$limit" | "$skip", _) => {}
            ("$group", g) => {
                expr_fields(g, &mut fields)?;
                return Some(fields.into_iter().collect());
            }
            _ => return None,
        }
    }
    None
}

fn head(path: &str) -> Option<String> {
    let h = path.split('.').next().unwrap_or(path);
    (!h.is_empty() && !h.starts_with('$')).then(|| h.to_string())
}

fn filter_fields(f: &Document, out: &mut BTreeSet<String>) -> Option<()> {
    for (k, v) in f {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Bson::Array(items) = v else { return None };
                for it in items {
                    let Bson::Document(d) = it else { return None };
                    filter_fields(d, out)?;
                }
            }
            "$expr" => expr_fields(v, out)?,
            "$comment" => {}
            k if k.starts_with('$') => return None,
            k => {
                out.insert(head(k)?);
            }
        }
    }
    Some(())
}

/// Field paths (`"$a.b"`) anywhere in an expression; `$$ROOT`/`$$CURRENT` mean everything.
fn expr_fields(v: &Bson, out: &mut BTreeSet<String>) -> Option<()> {
    match v {
        Bson::String(s) if s.starts_with("$$") => {
            let var = s[2..].split('.').next().unwrap_or("");
            if var == "ROOT" || var == "CURRENT" {
                return None;
            }
        }
        Bson::String(s) if s.starts_with('$') => {
            out.insert(head(&s[1..])?);
        }
        Bson::Document(d) => {
            for (_, x) in d {
                expr_fields(x, out)?;
            }
        }
        Bson::Array(a) => {
            for x in a {
                expr_fields(x, out)?;
            }
        }
        _ => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn fields(p: Vec<Document>) -> Option<Vec<String>> {
        input_fields(&p.into_iter().map(Bson::Document).collect::<Vec<_>>())
    }

    #[test]
    fn match_then_group_reads_only_their_fields() {
        let p = vec![
            doc! { "$match": { "age": { "$gte": 30 }, "$or": [{ "x.y": 1 }, { "$expr": { "$gt": ["$z", 1] } }] } },
            doc! { "$group": { "_id": "$city", "n": { "$sum": 1 }, "b": { "$avg": "$balance.v" } } },
            doc! { "$project": { "everything": "$$ROOT" } },
        ];
        assert_eq!(
            fields(p),
            Some(vec!["age", "balance", "city", "x", "z"].into_iter().map(String::from).collect())
        );
    }

    #[test]
    fn whole_documents_are_needed_otherwise() {
        assert_eq!(fields(vec![doc! { "$match": { "a": 1 } }]), None, "no $group: the output is the input");
        assert_eq!(fields(vec![doc! { "$group": { "_id": null, "d": { "$push": "$$ROOT" } } }]), None);
        assert_eq!(fields(vec![doc! { "$project": { "a": 1 } }, doc! { "$group": { "_id": "$a" } }]), None);
        assert_eq!(fields(vec![doc! { "$match": { "$where": "1" } }, doc! { "$group": { "_id": 1 } }]), None);
        assert_eq!(fields(vec![doc! { "$group": { "_id": "$$CURRENT.a" } }]), None);
    }
}
