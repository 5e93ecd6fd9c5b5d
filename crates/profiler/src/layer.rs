//! The `tracing` layer: per-trace head sampling and span timing.
//!
//! The sampling decision is made once, when a root span (one without a parent) is created,
//! and inherited by every descendant through the parent's span extensions, so a sampled
//! trace is whole.
//!
//! Sampled spans are also counted in [`LiveSet`], a fixed table of atomic counters indexed
//! by a hash of the span id. A span whose slot counts zero is certainly not sampled, so
//! for a span of an unsampled trace every hook (new span, enter, exit, record, close) is one
//! atomic load: no allocation, no lock, not even a look-up in the registry. A non-zero slot
//! (another sampled span hashing there) only means the extensions are checked.

use crate::collector::Shared;
use crate::trace::{SpanRecord, Trace};
use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, field::Field};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Live sampled spans, counted per slot of a hash of their id (see the module docs).
pub(crate) struct LiveSet {
    slots: Box<[AtomicU32]>,
}

const LIVE_SLOT_BITS: u32 = 12;

impl LiveSet {
    pub(crate) fn new() -> Self {
        LiveSet {
            slots: (0..1usize << LIVE_SLOT_BITS)
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }

    fn slot(&self, id: &Id) -> &AtomicU32 {
        let h = id.into_u64().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - LIVE_SLOT_BITS);
        &self.slots[h as usize]
    }

    /// False when the span is certainly not sampled.
    #[inline]
    pub(crate) fn maybe(&self, id: &Id) -> bool {
        self.slot(id).load(Ordering::Acquire) != 0
    }

    fn add(&self, id: &Id) {
        self.slot(id).fetch_add(1, Ordering::Release);
    }

    fn remove(&self, id: &Id) {
        self.slot(id).fetch_sub(1, Ordering::Release);
    }
}

/// The profiler's [`Layer`]; obtain it with [`crate::Profiler::layer`].
#[derive(Clone)]
pub struct ProfilerLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ProfilerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilerLayer")
            .field("sample_rate", &self.shared.sample_rate)
            .finish()
    }
}

/// Spans recorded per trace at most; later spans of the trace (and their descendants) are
/// not recorded. Keeps memory bounded when a root span lives as long as the process.
pub(crate) const MAX_SPANS_PER_TRACE: u32 = 10_000;

/// What one sampled trace collects while it runs.
pub(crate) struct TraceBuf {
    pub(crate) start: Instant,
    pub(crate) start_unix_ns: u64,
    pub(crate) trace_id: u128,
    pub(crate) remote_parent: Option<u64>,
    next_index: AtomicU32,
    closed: Mutex<Vec<(u32, SpanRecord)>>,
}

/// Per-span data, in the extensions of sampled spans only.
pub(crate) struct SpanData {
    pub(crate) trace: Arc<TraceBuf>,
    pub(crate) index: u32,
    parent: Option<u32>,
    pub(crate) span_id: u64,
    start: Instant,
    busy_ns: u64,
    entered_at: Option<Instant>,
    depth: u32,
    fields: Vec<(String, String)>,
}

struct FieldVisitor<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl FieldVisitor<'_> {
    fn set(&mut self, field: &Field, value: String) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == field.name()) {
            slot.1 = value;
        } else {
            self.0.push((field.name().to_owned(), value));
        }
    }
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`) into trace id and parent span id.
pub(crate) fn parse_traceparent(s: &str) -> Option<(u128, u64)> {
    let mut it = s.trim().split('-');
    let version = it.next()?;
    let trace = it.next()?;
    let span = it.next()?;
    let flags = it.next()?;
    if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if version == "ff" || u8::from_str_radix(flags, 16).is_err() {
        return None;
    }
    let t = u128::from_str_radix(trace, 16).ok()?;
    let p = u64::from_str_radix(span, 16).ok()?;
    (t != 0 && p != 0).then_some((t, p))
}

impl<S> Layer<S> for ProfilerLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let shared = &self.shared;
        // The parent the registry gives this span, found without looking it up.
        let parent_id = if attrs.is_root() {
            None
        } else if let Some(p) = attrs.parent() {
            Some(p.clone())
        } else {
            ctx.current_span().id().cloned()
        };
        let (trace, parent) = match parent_id {
            Some(pid) => {
                if !shared.live.maybe(&pid) {
                    return; // the parent is not sampled: neither is this span
                }
                let Some(parent) = ctx.span(&pid) else { return };
                let ext = parent.extensions();
                match ext.get::<SpanData>() {
                    Some(p) => (Arc::clone(&p.trace), Some(p.index)),
                    None => return,
                }
            }
            None => {
                if !shared.decide_root(attrs.metadata()) {
                    return;
                }
                let Some(span) = ctx.span(id) else { return };
                let mut fields = Vec::new();
                attrs.record(&mut FieldVisitor(&mut fields));
                let remote = fields
                    .iter()
                    .find(|(k, _)| k == "traceparent")
                    .and_then(|(_, v)| parse_traceparent(v.trim_matches('"')));
                let now = shared.clock.now();
                let buf = TraceBuf {
                    start: now,
                    start_unix_ns: shared.wall_unix_ns(),
                    trace_id: remote.map_or_else(|| fastrand::u128(1..), |(t, _)| t),
                    remote_parent: remote.map(|(_, p)| p),
                    next_index: AtomicU32::new(1),
                    closed: Mutex::new(Vec::new()),
                };
                span.extensions_mut().insert(SpanData {
                    trace: Arc::new(buf),
                    index: 0,
                    parent: None,
                    span_id: nonzero_u64(),
                    start: now,
                    busy_ns: 0,
                    entered_at: None,
                    depth: 0,
                    fields,
                });
                shared.live.add(id);
                return;
            }
        };
        let index = trace.next_index.fetch_add(1, Ordering::Relaxed);
        if index >= MAX_SPANS_PER_TRACE {
            // A root that never closes (a span around a whole server) would otherwise
            // collect every span of the process: stop recording this trace's new spans.
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Vec::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        span.extensions_mut().insert(SpanData {
            trace,
            index,
            parent,
            span_id: nonzero_u64(),
            start: shared.clock.now(),
            busy_ns: 0,
            entered_at: None,
            depth: 0,
            fields,
        });
        shared.live.add(id);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.shared.live.maybe(id) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(d) = ext.get_mut::<SpanData>() {
            values.record(&mut FieldVisitor(&mut d.fields));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.shared.live.maybe(id) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(d) = ext.get_mut::<SpanData>() {
            if d.depth == 0 {
                d.entered_at = Some(self.shared.clock.now());
            }
            d.depth += 1;
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.shared.live.maybe(id) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(d) = ext.get_mut::<SpanData>() {
            d.depth = d.depth.saturating_sub(1);
            if d.depth == 0
                && let Some(at) = d.entered_at.take()
            {
                d.busy_ns += nanos(self.shared.clock.now().saturating_duration_since(at));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.shared.live.maybe(&id) {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut d) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        self.shared.live.remove(&id);
        let now = self.shared.clock.now();
        if let Some(at) = d.entered_at.take() {
            d.busy_ns += nanos(now.saturating_duration_since(at));
        }
        let duration_ns = nanos(now.saturating_duration_since(d.start));
        let record = SpanRecord {
            name: span.name().to_owned(),
            parent: d.parent,
            span_id: d.span_id,
            start_ns: nanos(d.start.saturating_duration_since(d.trace.start)),
            duration_ns,
            busy_ns: d.busy_ns.min(duration_ns),
            fields: std::mem::take(&mut d.fields),
        };
        let mut closed = d.trace.closed.lock();
        closed.push((d.index, record));
        if d.index == 0 {
            let spans = std::mem::take(&mut *closed);
            drop(closed);
            let trace = assemble(&d.trace, spans);
            self.shared.complete(trace);
        }
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Orders the closed spans parents first and drops spans whose parent did not close before
/// the root (they cannot be placed in a whole trace).
fn assemble(buf: &TraceBuf, mut spans: Vec<(u32, SpanRecord)>) -> Trace {
    spans.sort_by_key(|(i, _)| *i);
    let max = spans.last().map_or(0, |(i, _)| *i as usize);
    let mut position: Vec<Option<u32>> = vec![None; max + 1];
    let mut out: Vec<SpanRecord> = Vec::with_capacity(spans.len());
    for (index, mut rec) in spans {
        let parent = match rec.parent {
            None if index == 0 => None,
            None => continue,
            Some(p) => match position.get(p as usize).copied().flatten() {
                Some(pos) => Some(pos),
                None => continue,
            },
        };
        rec.parent = parent;
        position[index as usize] = Some(out.len() as u32);
        out.push(rec);
    }
    Trace {
        trace_id: format!("{:032x}", buf.trace_id),
        remote_parent_span_id: buf.remote_parent,
        start_unix_ns: buf.start_unix_ns,
        spans: out,
    }
}

/// The W3C `traceparent` of `span` when it belongs to a sampled trace and is managed by a
/// [`ProfilerLayer`] in the current dispatcher's registry.
pub(crate) fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let id = span.id()?;
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(&id)?;
        let ext = span.extensions();
        let d = ext.get::<SpanData>()?;
        Some(format!(
            "00-{:032x}-{:016x}-01",
            d.trace.trace_id, d.span_id
        ))
    })
}
