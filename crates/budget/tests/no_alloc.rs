//! `check` allocates nothing: counted by perfkit-alloc's tracking allocator, installed as
//! this test binary's global allocator (one test, so no other test thread allocates).

use perfkit_alloc::TrackingAllocator;
use perfkit_budget::{Budget, Budgets, Decision, Resource};
use std::alloc::System;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: TrackingAllocator<System> = TrackingAllocator::new(System);

#[test]
fn check_allocates_nothing() {
    let budgets = Budgets::new();
    let mem = budgets.set_budget(Budget::memory(1000)).unwrap();
    let up = budgets.set_budget(Budget::bandwidth("up", 1e6)).unwrap();
    budgets.set_usage(mem, 950);
    let before = perfkit_alloc::stats().expect("installed");
    let mut throttled = 0;
    for _ in 0..100_000 {
        if let Decision::Throttle { .. } = black_box(budgets.check(black_box(mem))) {
            throttled += 1;
        }
        black_box(budgets.check(up));
        black_box(budgets.check_all(&[Resource::MEMORY, Resource::CPU, up]));
    }
    let after = perfkit_alloc::stats().unwrap();
    assert_eq!(throttled, 100_000);
    assert_eq!(after.allocations, before.allocations, "check allocated");
    assert_eq!(after.reallocations, before.reallocations);
}
