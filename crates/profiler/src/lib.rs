//! # perfkit-profiler
//!
//! A production tracing layer: sampled traces, span statistics, flame graphs, regressions, suggestions.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
