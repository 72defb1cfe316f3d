// Package otlp is a sink that pushes snapshots to an OpenTelemetry
// backend over OTLP/HTTP (protobuf, POST /v1/metrics): the OpenTelemetry
// Collector, or any backend that ingests OTLP.
//
// Each container is one resource, with the semantic conventions' resource
// attributes (container.id, container.name, container.image.name and
// container.image.tags, container.runtime, and k8s.pod.name,
// k8s.pod.uid, k8s.namespace.name, k8s.container.name for a pod's
// container; container.label.<key> for each label the sink.Tags
// allow-list names) plus those given with WithResourceAttributes (say
// host.name). Its metrics carry the conventions' names where they exist
// (container.cpu.time, container.memory.usage, container.disk.io,
// container.network.io, ...), the OpenTelemetry Collector docker_stats
// receiver's names where it has one, and names in the same style
// otherwise; docs/METRICS.md lists them with their units. Counters are
// cumulative monotonic sums, starting at the container's start time when
// the runtime knows it; levels are gauges. The collector's own figures are
// one more resource (service.name metricsd) with metricsd.* metrics.
// Attribute values from containers are sanitised as in every sink
// (sink.Sanitizer: invalid UTF-8 and control characters become U+FFFD,
// values and interfaces per namespace bounded by WithLimits), counted.
//
// The encoder writes protobuf directly, not through the generated types of
// go.opentelemetry.io/proto/otlp nor through the OpenTelemetry SDK's
// exporter: those cost allocations per data point, and the SDK's HTTP
// exporter links gRPC (docs/BENCHMARKS.md has the measurements).
//
// # Delivery
//
// Write encodes the snapshot at once into a buffer bounded in snapshots
// (default DefaultBufferSnapshots: the resources of the latest 10
// snapshots, a container's reading each with about 100 data points,
// however many containers they have) and returns; a
// background goroutine sends it in requests of at most WithBatchSize
// resources (default 200), gzip compressed by default, when a batch is
// full and every flush interval (default 5 s). Failures follow the
// OTLP/HTTP specification: 429, 502, 503 and 504 and requests without an
// answer are retried with exponential backoff and jitter, honouring
// Retry-After; other statuses drop the batch and count it by status with
// the backend's reason (Stats.Rejections); a partial success (a 2xx that
// rejects some data points) is logged and counted in
// Stats.PartiallyRejected. When the buffer is full the oldest resources
// are dropped and their data points counted (Stats.Dropped). Close sends
// what is buffered, within its context.
package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/metricsd/metricsd/internal/sendq"
	"github.com/metricsd/metricsd/sink"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("otlp: sink closed")

// WriteError is the backend's refusal of a batch: the status and the
// reason it gave. A WriteError whose Retry is false means the data points
// were dropped.
type WriteError = sendq.WriteError

// Rejection counts the data points a backend refused with one status.
type Rejection = sendq.Rejection

// Stats counts data points through the sink since New.
type Stats struct {
	sendq.Stats
	// PartiallyRejected is the number of data points that backends
	// accepted a request without (OTLP's partial success).
	PartiallyRejected uint64
}

type config struct {
	batch, snapshots       int
	interval               time.Duration
	minBackoff, maxBackoff time.Duration
	timeout                time.Duration
	gzip                   bool
	client                 *http.Client
	tags                   sink.Tags
	limits                 sink.Limits
	keep                   func(string) bool
	resAttrs               map[string]string
	headers                map[string]string
	userAgent              string
	version                string
	log                    *slog.Logger
}

// Option configures New.
type Option func(*config)

// WithBatchSize sets the most resources (container readings) sent in one
// request (default 200).
func WithBatchSize(n int) Option { return func(c *config) { c.batch = n } }

// DefaultBufferSnapshots is how many snapshots the buffer holds by default.
const DefaultBufferSnapshots = 10

// WithBufferSnapshots bounds the buffer in snapshots: it holds at most the
// resources (container readings) of the latest n snapshots written
// (default DefaultBufferSnapshots); past that the oldest are dropped and
// their data points counted.
func WithBufferSnapshots(n int) Option { return func(c *config) { c.snapshots = n } }

// WithLimits bounds attribute values and interfaces per namespace (default
// sink.DefaultLimits()).
func WithLimits(l sink.Limits) Option { return func(c *config) { c.limits = l } }

// WithFlushInterval sets how often the buffer is sent when no batch has
// filled (default 5 s).
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithBackoff sets the wait before retrying a failed batch: up to min after
// the first failure, doubling up to max (default 1 s and 30 s), less a
// random part of up to a half. A longer Retry-After wins.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each HTTP request (default 10 s, the OTLP exporters').
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithGzip turns gzip compression of request bodies on or off (default on).
func WithGzip(on bool) Option { return func(c *config) { c.gzip = on } }

// WithHTTPClient sets the HTTP client (default: a client of its own), for
// TLS settings or a proxy.
func WithHTTPClient(h *http.Client) Option { return func(c *config) { c.client = h } }

// WithTags sets which container attributes become resource attributes
// (default sink.DefaultTags()): ID container.id, Name container.name, Image
// container.image.name and .tags, Runtime container.runtime, Pod the k8s.*
// attributes, RuntimeNamespace metricsd.runtime.namespace, and each
// LabelTag container.label.<Label> (its Tag is not used). Each Global tag
// is an attribute of every resource, the collector's own included, under
// its own key but host, which becomes host.name (unless
// WithResourceAttributes sets that).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithInterfaceFilter keeps only the interfaces for which keep returns true
// (default: every interface), as in sink/prometheus.
func WithInterfaceFilter(keep func(name string) bool) Option {
	return func(c *config) { c.keep = keep }
}

// WithResourceAttributes adds string attributes to every resource
// (default none), host.name for instance. They may not take the
// attributes the sink sets.
func WithResourceAttributes(a map[string]string) Option {
	return func(c *config) {
		c.resAttrs = make(map[string]string, len(a))
		for k, v := range a {
			c.resAttrs[k] = v
		}
	}
}

// WithHeaders adds HTTP headers to every request: an Authorization or an
// API key header for the backend, as OTEL_EXPORTER_OTLP_HEADERS does.
// Content-Type and Content-Encoding are the sink's.
func WithHeaders(h map[string]string) Option {
	return func(c *config) {
		c.headers = make(map[string]string, len(h))
		for k, v := range h {
			c.headers[k] = v
		}
	}
}

// WithScopeVersion sets the instrumentation scope's version (default
// none; the scope's name is metricsd).
func WithScopeVersion(v string) Option { return func(c *config) { c.version = v } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// The resource attributes the sink sets itself.
var ownAttrs = []string{"container.id", "container.name", "container.image.name", "container.image.tags",
	"container.runtime", "k8s.pod.name", "k8s.pod.uid", "k8s.namespace.name", "k8s.container.name",
	"metricsd.runtime.namespace", "service.name"}

// Sink pushes snapshots over OTLP/HTTP. It is safe for concurrent use.
type Sink struct {
	cfg     config
	headers http.Header

	mu  sync.Mutex // guards enc
	enc *encoder

	bodyMu sync.Mutex // guards gz, body, frame (one request at a time)
	gz     *gzip.Writer
	body   bytes.Buffer

	partial atomic.Uint64
	req     sendq.Request
	q       *sendq.Sender
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.SinkDropper      = (*Sink)(nil)
	_ sink.DeliveryReporter = (*Sink)(nil)
	_ sink.SanitizeReporter = (*Sink)(nil)
)

// New returns a sink writing to the OTLP/HTTP metrics endpoint metricsURL
// (the full URL: "http://127.0.0.1:4318/v1/metrics" for a Collector). It
// starts the background sender; Close stops it. Every problem with the
// options is reported at once.
func New(metricsURL string, opts ...Option) (*Sink, error) {
	c, enc, errs := configure(opts)
	if c.timeout <= 0 {
		errs = append(errs, errors.New("otlp: timeout must be positive"))
	}
	u, err := url.Parse(metricsURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("otlp: URL %q: want http(s)://host:port/v1/metrics", metricsURL))
	}
	headers := http.Header{}
	for k, v := range c.headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Encoding", "Content-Length":
			errs = append(errs, fmt.Errorf("otlp: header %q is set by the sink", k))
		default:
			headers.Set(k, v)
		}
	}
	qc := sendq.Config{
		Name: "otlp", Batch: c.batch, Snapshots: c.snapshots, Weighted: true, Interval: c.interval,
		MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, Log: c.log,
	}
	if err := qc.Check(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.client == nil {
		c.client = &http.Client{}
	}
	s := &Sink{cfg: c, headers: headers, enc: enc}
	if c.gzip {
		s.gz = gzip.NewWriter(io.Discard)
	}
	s.req = sendq.Request{
		Client: c.client, Name: "otlp", URL: u.String(), Timeout: c.timeout, Header: s.header,
		Retryable: retryable, Reason: reason, OK: s.partialSuccess,
	}
	qc.Post = s.post
	s.q = sendq.New(qc)
	return s, nil
}

// configure applies opts to the defaults, checks what the metrics depend
// on (the tags, the resource attributes) and makes the encoder.
func configure(opts []Option) (config, *encoder, []error) {
	c := config{
		batch: 200, snapshots: DefaultBufferSnapshots, interval: 5 * time.Second,
		minBackoff: time.Second, maxBackoff: 30 * time.Second, timeout: 10 * time.Second,
		gzip: true, tags: sink.DefaultTags(), log: slog.New(slog.DiscardHandler), userAgent: "metricsd",
	}
	for _, o := range opts {
		o(&c)
	}
	var errs []error
	if _, err := sink.NewTagger(c.tags); err != nil {
		errs = append(errs, err)
	}
	var res []attr
	for k, v := range c.resAttrs {
		if k == "" || slices.Contains(ownAttrs, k) {
			errs = append(errs, fmt.Errorf("otlp: resource attribute %q is the sink's own", k))
			continue
		}
		res = append(res, attr{key: k, value: v})
	}
	// The global tags (the daemon's host tag, -tag) are resource
	// attributes of every resource, the collector's own included; host
	// takes the semantic conventions' name, host.name.
	for _, g := range c.tags.Global {
		k := g.Key
		if k == "host" {
			k = "host.name"
		}
		if _, given := c.resAttrs[k]; !given {
			res = append(res, attr{key: k, value: g.Value})
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].key < res[j].key })
	enc := &encoder{z: sink.NewSanitizer(c.limits), tags: c.tags, keep: c.keep, resAttrs: res, version: c.version, selfFrom: unixNano(time.Now()), info: c.tags.Info || c.tags.InfoOnly}
	return c, enc, errs
}

// Encoder encodes snapshots into OTLP ExportMetricsServiceRequest messages
// (protobuf, before compression), the metrics a Sink sends: for a
// transport of your own, or to measure the encoding. It is not safe for
// concurrent use.
type Encoder struct {
	e         *encoder
	ends, pts []int
}

// NewEncoder returns an Encoder of the metrics the options make (WithTags,
// WithInterfaceFilter, WithResourceAttributes, WithScopeVersion; the
// delivery options are ignored).
func NewEncoder(opts ...Option) (*Encoder, error) {
	_, enc, errs := configure(opts)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Encoder{e: enc}, nil
}

// Append appends snap as one ExportMetricsServiceRequest to dst and returns
// it with the number of data points. Once its buffers have grown it
// allocates nothing.
func (x *Encoder) Append(dst []byte, snap *sink.Snapshot) ([]byte, int) {
	dst, x.ends, x.pts = x.e.appendSnapshot(dst, x.ends[:0], x.pts[:0], snap)
	if len(x.pts) == 0 {
		return dst, 0
	}
	return dst, x.pts[len(x.pts)-1]
}

// retryable is OTLP/HTTP's rule: 429, 502, 503 and 504 are retried, no
// other status.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// reason is the message of an OTLP error body: a google.rpc.Status
// (message = 2) in protobuf, else the text.
func reason(body []byte, contentType string) string {
	if contentType == "application/x-protobuf" {
		b := body
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				break
			}
			b = b[n:]
			if num == 2 && typ == protowire.BytesType {
				msg, n := protowire.ConsumeBytes(b)
				if n >= 0 {
					return sendq.Reason(msg)
				}
				break
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				break
			}
			b = b[n:]
		}
	}
	return sendq.Reason(body)
}

// partialSuccess reads an ExportMetricsServiceResponse: partial_success =
// 1 {rejected_data_points = 1, error_message = 2}.
func (s *Sink) partialSuccess(body []byte) {
	num, typ, n := protowire.ConsumeTag(body)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return
	}
	ps, n := protowire.ConsumeBytes(body[n:])
	if n < 0 {
		return
	}
	var rejected uint64
	var msg []byte
	for len(ps) > 0 {
		num, typ, n := protowire.ConsumeTag(ps)
		if n < 0 {
			return
		}
		ps = ps[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			rejected, n = protowire.ConsumeVarint(ps)
		case num == 2 && typ == protowire.BytesType:
			msg, n = protowire.ConsumeBytes(ps)
		default:
			n = protowire.ConsumeFieldValue(num, typ, ps)
		}
		if n < 0 {
			return
		}
		ps = ps[n:]
	}
	if rejected > 0 || len(msg) > 0 {
		s.partial.Add(rejected)
		s.cfg.log.Warn("otlp: partial success", "rejected_data_points", rejected, "message", sendq.Reason(msg))
	}
}

// Write encodes snap into the buffer and returns; the background sender
// delivers it. In steady state it allocates nothing. The error is ErrClosed
// or ctx's.
func (s *Sink) Write(ctx context.Context, snap *sink.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.q.Append(func(buf []byte, ends, pts []int) ([]byte, []int, []int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		buf, ends, pts = s.enc.appendSnapshot(buf, ends, pts, snap)
		return buf, ends, pts, nil
	})
	if errors.Is(err, sendq.ErrClosed) {
		return ErrClosed
	}
	return err
}

// post sends one ExportMetricsServiceRequest: body is ResourceMetrics
// fields, which concatenated are the request's message.
func (s *Sink) post(ctx context.Context, body []byte, n int) (*WriteError, error) {
	s.bodyMu.Lock()
	defer s.bodyMu.Unlock()
	if s.gz != nil {
		s.body.Reset()
		s.gz.Reset(&s.body)
		if _, err := s.gz.Write(body); err != nil {
			return nil, err
		}
		if err := s.gz.Close(); err != nil {
			return nil, err
		}
		body = s.body.Bytes()
	}
	return s.req.Post(ctx, body, n)
}

// header sets a request's headers.
func (s *Sink) header(h http.Header) {
	for k, v := range s.headers {
		h[k] = v
	}
	h.Set("Content-Type", "application/x-protobuf")
	if s.gz != nil {
		h.Set("Content-Encoding", "gzip")
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", s.cfg.userAgent)
	}
}

// Flush sends everything buffered now and returns the errors of batches the
// backend refused, or the error that stopped it (the data stays buffered).
func (s *Sink) Flush(ctx context.Context) error { return s.q.Flush(ctx) }

// Close stops the background sender (waiting for its request in flight)
// and sends what is buffered, retrying retriable failures with backoff
// until ctx ends. Data points still buffered then are counted as Dropped
// and reported in the error, joined with the batches the backend refused.
// A second Close returns an error wrapping ErrClosed.
func (s *Sink) Close(ctx context.Context) error {
	err := s.q.Close(ctx)
	if errors.Is(err, sendq.ErrClosed) {
		return ErrClosed
	}
	return err
}

// DeliveryError returns the error of the background sender's last attempt
// when it failed (a batch refused, or one to be retried), and nil once an
// attempt delivers everything it took (sink.DeliveryReporter: the daemon's
// /readyz asks it).
func (s *Sink) DeliveryError() error { return s.q.DeliveryError() }

// Sanitized returns what the sink changed or left out of what containers
// gave it (sink.SanitizeReporter).
func (s *Sink) Sanitized() sink.Sanitized { return s.enc.z.Sanitized() }

// Dropped returns how many data points were dropped, the buffer full
// (sink.SinkDropper).
func (s *Sink) Dropped() uint64 { return s.q.Dropped() }

// Stats returns the counters, in data points.
func (s *Sink) Stats() Stats {
	return Stats{Stats: s.q.Stats(), PartiallyRejected: s.partial.Load()}
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
