//! tally-engine: follows a branch of an environments repo and keeps a cluster equal to it
//! (git source, plan, ordered server-side apply, inventory and prune, health, blue/green, drift).
//!
//! Not yet built: see the project's open issue on the engine. The crate exists so the dependency
//! direction `tally` → `engine` → `layout` → `validator` is fixed from the start.
#![forbid(unsafe_code)]

pub use tally_layout as layout;
