//! The layer against a manual clock: whole sampled traces, self time, busy and idle time,
//! and the per-trace sampling decision.

use perfkit_core::ManualClock;
use perfkit_profiler::Profiler;
use std::time::Duration;
use tracing::{Instrument, info_span};
use tracing_subscriber::layer::SubscriberExt;

fn with_profiler(p: &Profiler, f: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry().with(p.layer());
    tracing::subscriber::with_default(subscriber, f);
}

#[test]
fn times_spans_with_the_clock() {
    let clock = ManualClock::new();
    let p = Profiler::builder()
        .sample_rate(1.0)
        .clock(clock.shared())
        .build()
        .unwrap();
    with_profiler(&p, || {
        let root = info_span!("request", id = 1u64).entered();
        clock.advance(Duration::from_millis(2));
        {
            let _q = info_span!("db.query", table = "t").entered();
            clock.advance(Duration::from_millis(5));
        }
        // A span alive but not entered: idle time.
        let waiting = info_span!("fetch");
        clock.advance(Duration::from_millis(10));
        waiting.in_scope(|| clock.advance(Duration::from_millis(1)));
        drop(waiting);
        clock.advance(Duration::from_millis(3));
        drop(root);
    });
    let s = p.summary();
    assert_eq!(s.traces_sampled, 1);
    let get = |name: &str| s.spans.iter().find(|x| x.name == name).unwrap().clone();
    let root = get("request");
    assert_eq!(root.total_ns, 21_000_000);
    // self: 21 - 5 (query) - 11 (fetch lifetime) = 5 ms
    assert_eq!(root.self_ns, 5_000_000);
    let fetch = get("fetch");
    assert_eq!(fetch.total_ns, 11_000_000);
    assert_eq!(fetch.busy_ns, 1_000_000);
    assert_eq!(fetch.idle_ns, 10_000_000);
    assert_eq!(get("db.query").p50_ns / 100_000, 50); // 5 ms within the 1 % bucket
    let profile = p.profile();
    assert_eq!(profile.traces.len(), 1);
    let t = &profile.traces[0];
    assert_eq!(t.spans[0].fields, vec![("id".to_owned(), "1".to_owned())]);
    assert_eq!(
        t.spans[1].fields,
        vec![("table".to_owned(), "t".to_owned())]
    );
    assert!(
        profile
            .path("request;db.query")
            .is_some_and(|x| x.count == 1)
    );
    let folded = p.folded();
    assert!(folded.contains("request 5000\n"), "{folded}");
    assert!(folded.contains("request;db.query 5000\n"), "{folded}");
}

#[test]
fn sampled_traces_are_whole_and_decisions_are_per_trace() {
    let p = Profiler::builder()
        .sample_rate(0.3)
        .sample_first_per_root(false)
        .build()
        .unwrap();
    with_profiler(&p, || {
        for i in 0..2000u64 {
            let _r = info_span!("root", i).entered();
            for _ in 0..3 {
                let _c = info_span!("child").entered();
                let _g = info_span!("grandchild").entered();
            }
        }
    });
    let s = p.summary();
    let n = s.traces_sampled;
    assert!((450..=750).contains(&n), "sampled {n} of 2000 at 0.3");
    assert_eq!(s.roots_seen, 2000);
    let child = s.spans.iter().find(|x| x.name == "child").unwrap();
    let grandchild = s.spans.iter().find(|x| x.name == "grandchild").unwrap();
    // Whole traces: every sampled root has all 3 children and 3 grandchildren.
    assert_eq!(child.count, 3 * n);
    assert_eq!(grandchild.count, 3 * n);
    for t in &p.profile().traces {
        assert_eq!(t.spans.len(), 7);
    }
}

#[test]
fn rate_zero_samples_nothing_but_the_first_root() {
    let p = Profiler::builder().sample_rate(0.0).build().unwrap();
    with_profiler(&p, || {
        for _ in 0..100 {
            let _r = info_span!("root").entered();
            let _c = info_span!("child").entered();
        }
    });
    assert_eq!(
        p.summary().traces_sampled,
        1,
        "only the first root is forced"
    );
    assert_eq!(p.metrics().roots_seen, 100);
}

#[test]
fn async_spans_across_awaits_keep_their_trace() {
    let clock = ManualClock::new();
    let p = Profiler::builder()
        .sample_rate(1.0)
        .clock(clock.shared())
        .build()
        .unwrap();
    with_profiler(&p, || {
        let fut = async {
            let inner = async {
                clock.advance(Duration::from_millis(4));
            }
            .instrument(info_span!("inner"));
            inner.await;
        }
        .instrument(info_span!("outer"));
        block_on(fut);
    });
    let prof = p.profile();
    assert_eq!(prof.traces.len(), 1);
    assert_eq!(prof.traces[0].spans.len(), 2);
    assert_eq!(prof.path("outer;inner").unwrap().total_ns, 4_000_000);
}

#[test]
fn rejects_bad_rates() {
    assert!(Profiler::builder().sample_rate(1.5).build().is_err());
    assert!(Profiler::builder().sample_rate(f64::NAN).build().is_err());
}

#[test]
fn traceparent_continues_and_is_injected() {
    let p = Profiler::builder().sample_rate(1.0).build().unwrap();
    let mut injected = None;
    with_profiler(&p, || {
        let root = info_span!(
            "request",
            traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let _g = root.enter();
        let child = info_span!("call");
        injected = Profiler::traceparent(&child);
    });
    let tp = injected.expect("a sampled span has a traceparent");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    let t = &p.profile().traces[0];
    assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(t.remote_parent_span_id, Some(0x00f0_67aa_0ba9_02b7));
}

/// A minimal executor: the futures above complete without waking.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn explicit_parents_and_many_live_spans_across_threads() {
    let p = Profiler::builder()
        .sample_rate(0.5)
        .sample_first_per_root(false)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(p.layer());
    let dispatch = tracing::Dispatch::new(subscriber);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    // Hold many spans open at once so that id hash slots collide.
                    let mut roots = Vec::new();
                    for i in 0..300u64 {
                        let root = info_span!("root", i);
                        let kids: Vec<_> = (0..5)
                            .map(|_| info_span!(parent: &root, "explicit_child"))
                            .collect();
                        let orphan = info_span!(parent: None, "detached_root");
                        drop(orphan);
                        roots.push((root, kids));
                    }
                    for (root, kids) in roots {
                        for k in &kids {
                            k.in_scope(|| {
                                let _g = info_span!("grandchild").entered();
                            });
                        }
                        drop(kids);
                        drop(root);
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = p.summary();
    let count = |name: &str| {
        s.spans
            .iter()
            .find(|x| x.name == name)
            .map_or(0, |x| x.count)
    };
    let roots = s
        .paths
        .iter()
        .find(|x| x.path.as_deref() == Some("root"))
        .unwrap()
        .count;
    assert!(roots > 400 && roots < 800, "{roots} of 1200 at 0.5");
    assert_eq!(count("explicit_child"), 5 * roots);
    assert_eq!(count("grandchild"), 5 * roots);
    // `parent: None` spans are roots of their own traces, sampled on their own.
    assert!(count("detached_root") > 400);
    for t in &p.profile().traces {
        if t.root_name() == "root" {
            assert_eq!(t.spans.len(), 11);
        } else {
            assert_eq!(t.spans.len(), 1);
        }
    }
}

#[test]
fn a_root_that_never_closes_stays_bounded() {
    let p = Profiler::builder().sample_rate(1.0).build().unwrap();
    with_profiler(&p, || {
        let _server = info_span!("server").entered();
        for _ in 0..12_000 {
            let _r = info_span!("request").entered();
            let _c = info_span!("child").entered();
        }
    });
    let t = &p.profile().traces[0];
    assert_eq!(t.root_name(), "server");
    assert!(t.spans.len() <= 10_000, "{}", t.spans.len());
    // Whole subtrees only: every recorded request has its child.
    let requests = t.spans.iter().filter(|s| s.name == "request").count();
    let children = t.spans.iter().filter(|s| s.name == "child").count();
    assert!(requests.abs_diff(children) <= 1, "{requests} vs {children}");
}
