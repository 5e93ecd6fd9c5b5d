//! Tests of the multi-tier cache.
