//! Helpers shared by the validator's integration tests.

pub mod fuzz;
