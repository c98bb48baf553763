//! tally-validator: the gate. Reads manifests with the position of every node, validates them
//! against Kubernetes schemas (and, later, policies), and reports findings at the line a person
//! must change, in the formats CI systems read.
//!
//! It knows nothing of git, repo layouts or clusters: give it paths (or objects) and options; get
//! back findings.
//!
//! The way through the code follows the data: [`source`] finds and reads files, [`yaml`] parses
//! them with positions, [`manifest`] turns documents into [`object::Object`]s, [`schema`] validates
//! them, [`gate`] runs the whole, [`report`] prints it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod finding;
pub mod gate;
pub mod manifest;
pub mod object;
pub mod policy;
pub mod position;
pub mod report;
pub mod schema;
pub mod size;
pub mod source;
pub mod text;
pub mod unit;
pub mod yaml;

pub use finding::{Finding, Pos, RuleDoc, Severity};
pub use gate::{GateOptions, GateReport};
pub use object::{Object, ObjectRef};
