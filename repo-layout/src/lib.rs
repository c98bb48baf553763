//! tally-layout: the model of a tally repo (`tally.yaml`, environments, tenants, apps), loading and
//! checking it, rendering an environment to objects, and generating tenant guardrails.
//!
//! It knows nothing of clusters: it turns a directory into the objects the gate checks and the
//! engine applies.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boundary;
pub mod guardrails;
pub mod model;
pub mod overrides;

pub use tally_validator as validator;
