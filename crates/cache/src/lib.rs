//! # perfkit-cache
//!
//! Cache eviction policies, a trace simulator and tuner, and a concurrent and multi-tier cache.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
