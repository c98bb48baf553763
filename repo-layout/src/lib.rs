//! tally-layout: the model of a tally repo (`tally.yaml`, environments, tenants, apps), loading and
//! checking it, rendering an environment to objects, and generating tenant guardrails.
//!
//! It knows nothing of clusters: it turns a directory into the objects the gate checks and the
//! engine applies. The way through: [`load`] reads and schema-checks the layout files, [`check`]
//! resolves their cross-references, [`render`] turns an environment into objects (with
//! [`guardrails`], [`overrides`] and the tenant [`boundary`]), [`emit`] prints them as YAML.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boundary;
pub mod check;
pub mod emit;
pub mod guardrails;
pub mod init;
pub mod load;
pub mod model;
pub mod overrides;
pub mod render;
pub mod validate;

pub use tally_validator as validator;
