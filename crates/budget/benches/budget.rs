//! Per-call costs of the budget paths: `check` (the request path), `record_usage`,
//! `set_usage` and `try_acquire` (which take the budget's lock and recompute its decision).

use criterion::{Criterion, criterion_group, criterion_main};
use perfkit_budget::{Budget, Budgets, Resource};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let budgets = Budgets::new();
    let mem = budgets.set_budget(Budget::memory(1 << 30)).unwrap();
    let up = budgets
        .set_budget(Budget::bandwidth("up", 1e12).burst(1 << 40))
        .unwrap();
    budgets.set_usage(mem, 1 << 20);

    c.bench_function("check", |b| {
        b.iter(|| black_box(budgets.check(black_box(mem))))
    });
    c.bench_function("check_all (3 resources)", |b| {
        b.iter(|| black_box(budgets.check_all(black_box(&[mem, Resource::CPU, up]))))
    });
    c.bench_function("set_usage (memory gauge)", |b| {
        b.iter(|| budgets.set_usage(mem, black_box(1 << 20)))
    });
    c.bench_function("record_usage (bandwidth)", |b| {
        b.iter(|| budgets.record_usage(up, black_box(1500)))
    });
    c.bench_function("try_acquire (bandwidth)", |b| {
        b.iter(|| black_box(budgets.try_acquire(up, black_box(1500))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
