//! `alloc` suite: the workload under `perfkit_alloc::TrackingAllocator<System>`.

use perfkit_alloc::TrackingAllocator;
use std::alloc::System;

#[global_allocator]
static GLOBAL: TrackingAllocator<System> = TrackingAllocator::new(System);

#[path = "../alloc_workload.rs"]
mod workload;

fn main() {
    workload::main("tracking", || {
        serde_json::to_string(&perfkit_alloc::stats()).unwrap_or_else(|_| "null".to_owned())
    });
}
