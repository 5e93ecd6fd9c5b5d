//! OTLP export (HTTP/protobuf) of sampled traces.
