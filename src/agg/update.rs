//! Pipeline-style updates (`update`/`findAndModify` with an array `u`): the stages mongod
//! allows there ($addFields/$set, $project, $unset, $replaceRoot/$replaceWith), applied to one
//! document without a store.

use super::expr::{err, type_of, Ctx, Expr, Parser};
use super::stages::project::{self, Projector};
use crate::error::{ErrorCode, MongoError, Result};
use crate::query::util::{doc_binary_equal, type_name};
use bson::{Bson, DateTime, Document};

enum Step {
    Project(Projector),
    Replace(Expr),
}

pub struct UpdatePipeline {
    steps: Vec<Step>,
}

impl std::fmt::Debug for UpdatePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpdatePipeline({} stages)", self.steps.len())
    }
}

impl UpdatePipeline {
    pub fn parse(stages: &[Bson]) -> Result<UpdatePipeline> {
        let mut steps = Vec::with_capacity(stages.len());
        let mut p = Parser::default();
        for s in stages {
            let Bson::Document(d) = s else {
                return Err(MongoError::type_mismatch(
                    "Each element of the 'pipeline' array must be an object",
                ));
            };
            let (Some((name, spec)), 1) = (d.iter().next(), d.len()) else {
                return Err(MongoError::new(
                    ErrorCode::Location40323,
                    "A pipeline stage specification object must contain exactly one field.",
                ));
            };
            let step = match (name.as_str(), spec) {
                ("$addFields" | "$set", Bson::Document(sd)) => {
                    Step::Project(project::add_fields_from(name, sd, &mut p)?)
                }
                ("$project", Bson::Document(sd)) => Step::Project(project::project_from(sd, &mut p)?),
                ("$unset", v) => Step::Project(project::parse_unset(v)?),
                ("$replaceRoot", Bson::Document(sd)) => {
                    let root = sd.get("newRoot").ok_or_else(|| {
                        MongoError::new(
                            ErrorCode::Location40414,
                            "BSON field '$replaceRoot.newRoot' is missing but a required field",
                        )
                    })?;
                    Step::Replace(p.parse(root)?)
                }
                ("$replaceWith", v) => Step::Replace(p.parse(v)?),
                ("$addFields" | "$set" | "$project" | "$replaceRoot", other) => {
                    return Err(err(
                        40272,
                        format!("{name} specification stage must be an object, got {}", type_name(other)),
                    ))
                }
                (other, _) => {
                    return Err(MongoError::new(
                        ErrorCode::InvalidOptions,
                        format!("{other} is not allowed to be used within an update"),
                    ))
                }
            };
            steps.push(step);
        }
        Ok(UpdatePipeline { steps })
    }

    /// The updated document (its `_id` kept first) and whether it changed.
    pub fn apply(&self, doc: &Document, now: DateTime) -> Result<(Document, bool)> {
        let mut cur = doc.clone();
        for s in &self.steps {
            cur = match s {
                Step::Project(p) => p.apply(&cur, &[], now)?,
                Step::Replace(e) => {
                    let v = e.eval(&mut Ctx::new(&cur, &[], now))?;
                    match v {
                        Some(Bson::Document(d)) => d,
                        other => {
                            return Err(err(
                                40228,
                                format!(
                                    "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'.",
                                    other.as_ref().map_or("MISSING".to_string(), crate::query::util::value_to_string),
                                    type_of(&other)
                                ),
                            ))
                        }
                    }
                }
            };
        }
        // A pipeline that drops `_id` keeps the document's own.
        if !cur.contains_key("_id") {
            if let Some(id) = doc.get("_id") {
                let mut with_id = Document::new();
                with_id.insert("_id", id.clone());
                with_id.extend(cur);
                cur = with_id;
            }
        }
        let changed = !doc_binary_equal(doc, &cur);
        Ok((cur, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    #[test]
    fn update_pipelines() {
        let p = UpdatePipeline::parse(&[
            bson!({"$set": {"total": {"$add": ["$a", "$b"]}}}),
            bson!({"$unset": "b"}),
        ])
        .unwrap();
        let (d, changed) = p.apply(&doc! {"_id": 1, "a": 1, "b": 2}, DateTime::now()).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 1, "total": 3});
        assert!(changed);
        let p = UpdatePipeline::parse(&[bson!({"$replaceWith": {"x": 1}})]).unwrap();
        assert_eq!(p.apply(&doc! {"_id": 7, "a": 1}, DateTime::now()).unwrap().0, doc! {"_id": 7, "x": 1});
        assert!(UpdatePipeline::parse(&[bson!({"$match": {}})]).is_err());
    }
}
