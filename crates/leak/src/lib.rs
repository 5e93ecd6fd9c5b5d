//! # perfkit-leak
//!
//! Memory leak detection: snapshots, trends, leak patterns and OOM prediction.
//!
//! Status: planned. This crate is being built; see the project README for the capability table.
