//! tally-layout: the model of a tally repo (`tally.yaml`, environments, tenants, apps), loading and
//! checking it, rendering an environment to objects, and generating tenant guardrails.
//!
//! It knows nothing of clusters: it turns a directory into the objects the gate checks and the
//! engine applies. Not yet built: see the project's open issue on environment definitions. Today
//! `tally validate` treats every path as plain manifests.
#![forbid(unsafe_code)]

pub use tally_validator as validator;
