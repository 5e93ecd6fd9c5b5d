//! OTLP export of sampled traces (feature `otlp`), over HTTP/protobuf with
//! opentelemetry-otlp, plus W3C `traceparent` helpers.
//!
//! Only sampled traces reach the OpenTelemetry machinery, and only once they are whole:
//! when a sampled root span closes, the [`OtlpExporter`] (a [`crate::TraceSink`]) turns its
//! spans into OpenTelemetry span data with the trace's ids, parent links, start and end
//! times and fields as attributes, and hands them to the SDK's batch processor, which
//! exports from its own thread. Spans of unsampled traces never become OpenTelemetry
//! objects (unlike tracing-opentelemetry, which builds one for every span).
//!
//! The built-in HTTP client ([`BlockingHttpClient`]) speaks plain HTTP/1.1 over a
//! `std::net::TcpStream` on the exporter's thread: no TLS and no async runtime, which keeps
//! the build lean. For `https://` collectors pass your own
//! [`opentelemetry_http::HttpClient`] to [`OtlpExporter::with_client`].
//!
//! ```no_run
//! use perfkit_profiler::{Profiler, otlp::OtlpExporter};
//!
//! let profiler = Profiler::new();
//! let exporter = OtlpExporter::new("http://127.0.0.1:4318/v1/traces", "checkout-service")?;
//! let exporter = exporter.install(&profiler);
//! // ... install profiler.layer() and serve requests ...
//! exporter.shutdown()?;
//! # Ok::<(), perfkit_profiler::otlp::OtlpError>(())
//! ```

use crate::Profiler;
use crate::collector::TraceSink;
use crate::trace::Trace;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Errors of the OTLP exporter.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not an `http://` URL the built-in client can reach.
    #[error("invalid OTLP endpoint {0:?}: the built-in client supports http:// URLs only")]
    Endpoint(String),
    /// opentelemetry-otlp refused the configuration.
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// Flushing or shutting down failed.
    #[error("OTLP export failed: {0}")]
    Export(String),
}

/// Exports sampled traces to an OTLP/HTTP collector; install it with
/// [`OtlpExporter::install`].
#[derive(Debug)]
pub struct OtlpExporter {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl OtlpExporter {
    /// An exporter posting protobuf to `endpoint` (the full URL, usually ending in
    /// `/v1/traces`) with the built-in plain-HTTP client, for service `service_name`.
    pub fn new(endpoint: &str, service_name: &str) -> Result<Self, OtlpError> {
        if !endpoint.starts_with("http://") {
            return Err(OtlpError::Endpoint(endpoint.to_owned()));
        }
        Self::with_client(endpoint, service_name, BlockingHttpClient::default())
    }

    /// An exporter with your own HTTP client (for TLS, proxies, custom headers).
    pub fn with_client(
        endpoint: &str,
        service_name: &str,
        client: impl HttpClient + 'static,
    ) -> Result<Self, OtlpError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        let resource = Resource::builder_empty()
            .with_service_name(service_name.to_owned())
            .build();
        processor.set_resource(&resource);
        let scope = InstrumentationScope::builder("perfkit-profiler")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(OtlpExporter { processor, scope })
    }

    /// Registers the exporter with `profiler` and returns the shared handle (for
    /// [`OtlpExporter::force_flush`] and [`OtlpExporter::shutdown`]).
    pub fn install(self, profiler: &Profiler) -> Arc<Self> {
        let me = Arc::new(self);
        profiler.add_sink(Arc::clone(&me) as Arc<dyn TraceSink>);
        me
    }

    /// Exports everything queued now, waiting for the collector's answer.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        self.processor
            .force_flush()
            .map_err(|e| OtlpError::Export(e.to_string()))
    }

    /// Flushes and stops the exporter's thread. Later traces are dropped.
    pub fn shutdown(&self) -> Result<(), OtlpError> {
        self.processor
            .shutdown()
            .map_err(|e| OtlpError::Export(e.to_string()))
    }

    fn span_data(&self, trace: &Trace) -> Vec<SpanData> {
        let trace_id = TraceId::from(u128::from_str_radix(&trace.trace_id, 16).unwrap_or(0));
        let span_id = |i: usize| {
            let raw = trace.spans[i].span_id;
            SpanId::from(if raw == 0 { i as u64 + 1 } else { raw })
        };
        let at =
            |ns: u64| UNIX_EPOCH + Duration::from_nanos(trace.start_unix_ns.saturating_add(ns));
        trace
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (parent, remote) = match s.parent {
                    Some(p) => (span_id(p as usize), false),
                    None => match trace.remote_parent_span_id {
                        Some(r) => (SpanId::from(r), true),
                        None => (SpanId::INVALID, false),
                    },
                };
                let mut attributes: Vec<KeyValue> = s
                    .fields
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect();
                attributes.push(KeyValue::new(
                    "busy_ns",
                    s.busy_ns.min(i64::MAX as u64) as i64,
                ));
                attributes.push(KeyValue::new(
                    "idle_ns",
                    s.idle_ns().min(i64::MAX as u64) as i64,
                ));
                SpanData {
                    span_context: SpanContext::new(
                        trace_id,
                        span_id(i),
                        TraceFlags::SAMPLED,
                        false,
                        TraceState::default(),
                    ),
                    parent_span_id: parent,
                    parent_span_is_remote: remote,
                    span_kind: if i == 0 {
                        SpanKind::Server
                    } else {
                        SpanKind::Internal
                    },
                    name: Cow::Owned(s.name.clone()),
                    start_time: at(s.start_ns),
                    end_time: at(s.end_ns()),
                    attributes,
                    dropped_attributes_count: 0,
                    events: SpanEvents::default(),
                    links: SpanLinks::default(),
                    status: Status::Unset,
                    instrumentation_scope: self.scope.clone(),
                }
            })
            .collect()
    }
}

impl TraceSink for OtlpExporter {
    fn on_trace(&self, trace: &Trace) {
        for span in self.span_data(trace) {
            self.processor.on_end(span);
        }
    }
}

/// Extracts the W3C `traceparent` and `tracestate` from HTTP headers (names compared
/// case-insensitively). Record the `traceparent` as the root span's field of that name
/// (`info_span!("request", traceparent = %value)`) and the trace continues the caller's.
pub fn extract<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Option<String>, Option<String>) {
    let (mut parent, mut state) = (None, None);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("traceparent")
            && crate::layer::parse_traceparent(value).is_some()
        {
            parent = Some(value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("tracestate") {
            state = Some(value.trim().to_owned());
        }
    }
    (parent, state)
}

/// The headers to add to an outgoing request made inside `span`: `traceparent` when the
/// span is in a sampled trace, and `tracestate` passed through when given.
pub fn inject(span: &tracing::Span, tracestate: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(tp) = Profiler::traceparent(span) {
        out.push(("traceparent", tp));
        if let Some(ts) = tracestate {
            out.push(("tracestate", ts.to_owned()));
        }
    }
    out
}

/// A minimal blocking HTTP/1.1 client over `std::net` (plain HTTP, `Connection: close`),
/// used by [`OtlpExporter::new`]. It runs on the batch processor's own thread.
#[derive(Debug, Clone)]
pub struct BlockingHttpClient {
    /// Connect, read and write timeout.
    pub timeout: Duration,
}

impl Default for BlockingHttpClient {
    fn default() -> Self {
        BlockingHttpClient {
            timeout: Duration::from_secs(10),
        }
    }
}

/// Response bodies larger than this are cut (the exporter reads only the status).
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

impl BlockingHttpClient {
    fn send(&self, request: &Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let uri = request.uri();
        if uri.scheme_str() != Some("http") {
            return Err(format!("unsupported URL scheme in {uri} (plain http only)").into());
        }
        let host = uri.host().ok_or("the URL has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| format!("cannot resolve {host}"))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let body = request.body();
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
            request.method(),
            body.len()
        );
        for (name, value) in request.headers() {
            if name == http_header::HOST || name == http_header::CONTENT_LENGTH {
                continue;
            }
            if let Ok(v) = value.to_str() {
                head.push_str(&format!("{name}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw)?;
        parse_response(&raw)
    }
}

mod http_header {
    pub(super) const HOST: &str = "host";
    pub(super) const CONTENT_LENGTH: &str = "content-length";
}

fn parse_response(raw: &[u8]) -> Result<Response<Bytes>, HttpError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("incomplete HTTP response")?;
    let head = std::str::from_utf8(&raw[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad HTTP status line {status_line:?}"))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    let mut builder = Response::builder().status(status);
    if let Some(ct) = headers.get("content-type") {
        builder = builder.header("content-type", ct.as_str());
    }
    Ok(builder.body(Bytes::from(body))?)
}

#[async_trait::async_trait]
impl HttpClient for BlockingHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.send(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA").unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.body().as_ref(), b"ok");
        assert!(parse_response(b"HTTP/1.1 200").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn extracts_w3c_headers() {
        let (p, s) = extract([
            (
                "TraceParent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("other", "x"),
        ]);
        assert!(p.is_some());
        assert_eq!(s.as_deref(), Some("congo=t61rcWkgMzE"));
        let (p, _) = extract([("traceparent", "00-0000-bad")]);
        assert!(p.is_none());
    }

    #[test]
    fn refuses_https_with_the_built_in_client() {
        assert!(matches!(
            OtlpExporter::new("https://collector:4318/v1/traces", "svc"),
            Err(OtlpError::Endpoint(_))
        ));
    }
}
