//! splitchunks (in progress).
