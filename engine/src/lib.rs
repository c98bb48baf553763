//! tally-engine: follows a branch of an environments repo and keeps a cluster equal to it
//! (plan, ordered server-side apply, inventory and prune, health).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod diff;
pub mod fields;
pub mod health;
pub mod inventory;
pub mod wave;

pub use tally_layout as layout;
