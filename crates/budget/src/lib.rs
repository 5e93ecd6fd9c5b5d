//! # perfkit-budget
//!
//! Resource budgets with graduated enforcement: memory, storage, bandwidth and CPU.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
