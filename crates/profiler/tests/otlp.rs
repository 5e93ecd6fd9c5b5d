//! OTLP export against a real OTLP/HTTP receiver on loopback: the receiver decodes the
//! protobuf requests and the test checks trace ids, parent links and that only sampled
//! traces arrive.
#![cfg(feature = "otlp")]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use perfkit_profiler::Profiler;
use perfkit_profiler::otlp::OtlpExporter;
use prost::Message;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

/// One received span: (trace id hex, span id hex, parent span id hex or "", name, service).
type Received = (String, String, String, String, String);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Starts a receiver on a free loopback port that answers every POST with 200 and sends
/// the decoded spans down the channel. It stops after `max_requests` or when the test ends.
fn receiver(max_requests: usize) -> (String, mpsc::Receiver<(String, Vec<Received>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(max_requests) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = HashMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("valid protobuf");
            let mut spans = Vec::new();
            for rs in &req.resource_spans {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        Value::StringValue(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        spans.push((
                            hex(&s.trace_id),
                            hex(&s.span_id),
                            hex(&s.parent_span_id),
                            s.name.clone(),
                            service.clone(),
                        ));
                    }
                }
            }
            let summary = format!(
                "{} {} {}",
                request_line.trim(),
                headers.get("content-type").cloned().unwrap_or_default(),
                len
            );
            let _ = tx.send((summary, spans));
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            );
        }
    });
    (format!("http://{addr}/v1/traces"), rx)
}

fn received(rx: &mpsc::Receiver<(String, Vec<Received>)>) -> Vec<Received> {
    let mut all = Vec::new();
    while let Ok((summary, spans)) = rx.recv_timeout(Duration::from_millis(500)) {
        assert!(summary.starts_with("POST /v1/traces "), "{summary}");
        assert!(summary.contains("application/x-protobuf"), "{summary}");
        all.extend(spans);
    }
    all
}

#[test]
fn exports_whole_sampled_traces_with_ids_and_parent_links() {
    let (endpoint, rx) = receiver(50);
    let profiler = Profiler::builder()
        .sample_rate(0.5)
        .sample_first_per_root(false)
        .build()
        .unwrap();
    let exporter = OtlpExporter::new(&endpoint, "otlp-test")
        .unwrap()
        .install(&profiler);
    let subscriber = tracing_subscriber::registry().with(profiler.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..40u64 {
            let _r = info_span!("request", i).entered();
            let _q = info_span!("db.query", table = "orders").entered();
            let _c = info_span!("decode").entered();
        }
        // A trace continuing a caller's W3C traceparent.
        let _r = info_span!(
            "continued",
            traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        )
        .entered();
    });
    exporter.force_flush().unwrap();
    let spans = received(&rx);
    exporter.shutdown().unwrap();

    let profile = profiler.profile();
    // Exactly the sampled traces arrived, each whole (3 spans), none of the unsampled.
    let mut by_trace: HashMap<&str, Vec<&Received>> = HashMap::new();
    for s in &spans {
        by_trace.entry(s.0.as_str()).or_default().push(s);
    }
    assert_eq!(by_trace.len() as u64, profile.traces_sampled);
    assert!(
        profile.traces_sampled > 5 && profile.traces_sampled < 40,
        "{}",
        profile.traces_sampled
    );
    for t in &profile.traces {
        let got = &by_trace[t.trace_id.as_str()];
        assert_eq!(got.len(), t.spans.len(), "trace {} is whole", t.trace_id);
        for (i, s) in t.spans.iter().enumerate() {
            let sid = format!("{:016x}", s.span_id);
            let r = got.iter().find(|r| r.1 == sid).expect("span exported");
            assert_eq!(r.3, s.name);
            assert_eq!(r.4, "otlp-test");
            let parent = match s.parent {
                Some(p) => format!("{:016x}", t.spans[p as usize].span_id),
                None => t
                    .remote_parent_span_id
                    .map(|r| format!("{r:016x}"))
                    .unwrap_or_default(),
            };
            assert_eq!(r.2, parent, "parent link of span {i} ({})", s.name);
        }
    }
    // The continued trace kept the caller's trace id and points at the caller's span, if
    // it was sampled.
    if let Some(c) = spans.iter().find(|s| s.3 == "continued") {
        assert_eq!(c.0, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.2, "00f067aa0ba902b7");
    }
}

#[test]
fn nothing_is_exported_when_nothing_is_sampled() {
    let (endpoint, rx) = receiver(5);
    let profiler = Profiler::builder()
        .sample_rate(0.0)
        .sample_first_per_root(false)
        .build()
        .unwrap();
    let exporter = OtlpExporter::new(&endpoint, "otlp-test")
        .unwrap()
        .install(&profiler);
    let subscriber = tracing_subscriber::registry().with(profiler.layer());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..20 {
            let _r = info_span!("request").entered();
            let _q = info_span!("db.query").entered();
        }
    });
    exporter.force_flush().unwrap();
    assert!(received(&rx).is_empty());
    exporter.shutdown().unwrap();
}

#[test]
fn a_continued_trace_keeps_the_callers_ids() {
    let (endpoint, rx) = receiver(5);
    let profiler = Profiler::builder().sample_rate(1.0).build().unwrap();
    let exporter = OtlpExporter::new(&endpoint, "otlp-test")
        .unwrap()
        .install(&profiler);
    let subscriber = tracing_subscriber::registry().with(profiler.layer());
    let mut outgoing = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let (traceparent, tracestate) = perfkit_profiler::otlp::extract([
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let root = info_span!("continued", traceparent = traceparent.as_deref());
        let _r = root.enter();
        let call = info_span!("call_downstream");
        outgoing = perfkit_profiler::otlp::inject(&call, tracestate.as_deref());
    });
    exporter.force_flush().unwrap();
    let spans = received(&rx);
    exporter.shutdown().unwrap();
    let root = spans.iter().find(|s| s.3 == "continued").expect("exported");
    assert_eq!(root.0, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(root.2, "00f067aa0ba902b7");
    let call = spans.iter().find(|s| s.3 == "call_downstream").unwrap();
    assert_eq!(call.2, root.1);
    // The outgoing headers name the downstream call's span as the parent.
    assert_eq!(outgoing[0].0, "traceparent");
    assert_eq!(
        outgoing[0].1,
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", call.1)
    );
    assert_eq!(outgoing[1], ("tracestate", "congo=t61rcWkgMzE".to_owned()));
}
