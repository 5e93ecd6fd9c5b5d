//! # perfkit-bundle
//!
//! Analysis of JavaScript bundler output: sizes, duplicates, splitting advice and budgets.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
