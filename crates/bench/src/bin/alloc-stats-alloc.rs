//! `alloc` suite: the workload under the peer `stats_alloc::StatsAlloc<System>`.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "../alloc_workload.rs"]
mod workload;

fn main() {
    workload::main("stats_alloc", || {
        let s = GLOBAL.stats();
        format!(
            "{{\"allocations\":{},\"deallocations\":{},\"reallocations\":{}}}",
            s.allocations, s.deallocations, s.reallocations
        )
    });
}
