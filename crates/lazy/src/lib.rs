//! # perfkit-lazy
//!
//! Async lazy resources with preload strategies, and preload hints for web front ends.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
