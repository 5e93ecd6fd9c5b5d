//! `alloc` suite: the workload under the system allocator.

use std::alloc::System;

#[global_allocator]
static GLOBAL: System = System;

#[path = "../alloc_workload.rs"]
mod workload;

fn main() {
    workload::main("system", || "null".to_owned());
}
