//! The query language: BSON comparison, the matcher (one file per operator family),
//! projection, sort, the updater, the planner and the executor.

pub mod collation;
pub mod compare;
pub mod covered;
pub mod exec;
pub mod geometry;
pub mod implies;
pub mod json_schema;
pub mod knobs;
pub mod matcher;
pub mod multiplan;
pub mod ops_array;
pub mod ops_bitwise;
pub mod ops_comparison;
pub mod ops_element;
pub mod ops_eval;
pub mod ops_geo;
pub mod ops_logical;
pub mod path;
pub mod planner;
pub mod projection;
pub mod sort;
pub mod spill;
pub mod update;
pub mod util;
