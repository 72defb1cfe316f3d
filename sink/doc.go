// Package sink is the sample model that metricsd hands to its outputs and
// the interface those outputs implement: a Snapshot holds, per container,
// its runtime.Container, its cgroup.Stats and its netns.Stats (typed, as the
// readers produced them), and a Sink receives snapshots.
//
// The sinks are packages of their own, each importing only its own client
// library: sink/influx (InfluxDB 1.x and 2.x), sink/prometheus (a
// prometheus.Collector with cAdvisor's names), sink/stdout (line protocol
// or JSON lines to any io.Writer), sink/remotewrite (Prometheus remote_write
// 1.0, the Prometheus sink's series) and sink/otlp (OTLP/HTTP, the
// OpenTelemetry semantic conventions). sink/points is the measurement and field
// schema the InfluxDB and stdout sinks share. docs/METRICS.md lists every
// series with its type, unit and source.
//
// Which container attributes become tags or labels is an explicit
// allow-list, Tags: container labels are exported only when named, never
// all of them.
//
// # Writing a sink
//
// A Sink has two methods, Write and Close. Write must not keep the
// Snapshot after it returns (the collector reuses it): read what you need,
// or copy it with Snapshot.CopyTo. A value the kernel did not provide is
// Unavailable (cgroup.Value and netns.Value are one type): leave it out
// rather than write 0. What a container controls (its name, labels,
// image, interface names and how many interfaces it has) is hostile
// input: pass values through a Sanitizer (and interfaces through its
// Interfaces), which applies Limits the way every sink of this module
// does, and report its counts (SanitizeReporter). See the example.
package sink
