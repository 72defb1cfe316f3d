// Package remotewrite is a sink that pushes snapshots to a Prometheus
// remote_write receiver (Prometheus with --web.enable-remote-write-receiver,
// Mimir, Cortex, Thanos Receive, VictoriaMetrics, ...) in the remote_write
// 1.0 protocol: a protobuf WriteRequest, snappy compressed, POSTed.
//
// The series are those of sink/prometheus, with the same names, labels and
// values (cAdvisor's: container_cpu_usage_seconds_total{id,name,image,...},
// ...; docs/METRICS.md lists them), each sample stamped with the snapshot's
// time. External labels (WithExternalLabels) are added to every series,
// the collector's own included: set at least one that tells this host
// apart (the daemon sets job and instance) when several hosts write to one
// receiver. A label with an empty value is left out, as Prometheus drops
// it. Label values from containers are sanitised as in every sink
// (sink.Sanitizer: invalid UTF-8 and control characters become U+FFFD,
// values cut to a length and interfaces per namespace bounded by
// WithLimits), so that no container can make a receiver refuse a request;
// what was changed is counted (Sanitized).
//
// # Delivery
//
// Write encodes the snapshot at once into a buffer bounded in snapshots
// (default DefaultBufferSnapshots: the samples of the latest 10 snapshots,
// however many containers they have) and returns. The buffer holds 20
// bytes a sample: a series' number, the time and the value; each series'
// labels are encoded once, when it is new or they change, and kept in a
// table (forgotten when they go unused, at a moment nothing buffered
// refers to them). A background goroutine sends the buffer every flush
// interval (default 5 s, Prometheus's batch_send_deadline), and as soon as
// half the buffer's snapshots are waiting, in requests of at most
// WithBatchSize samples (default DefaultBatchSize). A request carries each
// series once, with all its samples of the batch in time order: a
// remote_write 1.0 TimeSeries repeats every label with every sample (the
// labels are ~93% of a one-sample series here), so at a 1 s interval the
// five snapshots of a flush are about a quarter of the bytes to compress
// and send, and the labels are encoded once instead of five times
// (docs/BENCHMARKS.md has the daemon's cost). A flush interval as short as
// the collection interval sends each snapshot as it comes. Failures follow
// the remote_write specification:
//
//   - 5xx and 429, and requests without an answer: the batch goes back to
//     the front of the buffer and is retried with exponential backoff and
//     jitter (default 100 ms doubling to 10 s), waiting at least what a
//     Retry-After header asks for.
//   - 413: the batch is split in halves, each sent on its own.
//   - other 4xx (400 out of order or bad labels, 401, 403, 404, ...): the
//     batch is dropped and counted by status in Stats.Rejections, with the
//     receiver's reason, which is logged and returned by Flush and Close.
//
// When the buffer is full (an outage longer than its snapshots) the oldest
// samples are dropped and counted
// (Stats.Dropped, and Dropped for the collector's self-metrics); a batch
// being sent does not count against the bound until it comes back after a
// failure. Close sends what is buffered, within its context.
//
// Delivery is at least once: a batch is sent again only when a request
// failed without an answer, and receivers take a repeated sample (same
// series and time) as a duplicate.
//
// Remote_write 2.0 is not sent: neither receiver tested here (Prometheus
// 2.42, VictoriaMetrics 1.79) accepts it, and 1.0 is what every receiver
// reads.
package remotewrite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/metricsd/metricsd/internal/sendq"
	"github.com/metricsd/metricsd/sink"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("remotewrite: sink closed")

// WriteError is the receiver's refusal of a batch: the status and the
// reason it gave. A WriteError whose Retry is false means the samples were
// dropped.
type WriteError = sendq.WriteError

// Stats counts samples through the sink since New.
type Stats = sendq.Stats

// Rejection counts the samples a receiver refused with one status.
type Rejection = sendq.Rejection

type config struct {
	batch, snapshots       int
	interval               time.Duration
	minBackoff, maxBackoff time.Duration
	timeout                time.Duration
	client                 *http.Client
	tags                   sink.Tags
	limits                 sink.Limits
	cgroupID               bool
	keep                   func(string) bool
	external               map[string]string
	user, pass, token      string
	headers                map[string]string
	userAgent              string
	log                    *slog.Logger
	errs                   []error
}

// Option configures New.
type Option func(*config)

// DefaultBatchSize is the most samples a request carries by default. A
// request carries each series once with all its samples of the batch: at
// a 1 s interval and the default 5 s flush, 10,000 samples are ~2,000
// series of five samples, ~700 KB before compression, the size of a
// request of Prometheus's default 2,000 samples of a series each (its
// max_samples_per_send).
const DefaultBatchSize = 10000

// WithBatchSize sets the most samples sent in one request (default
// DefaultBatchSize).
func WithBatchSize(n int) Option { return func(c *config) { c.batch = n } }

// DefaultBufferSnapshots is how many snapshots the buffer holds by default.
const DefaultBufferSnapshots = 10

// WithBufferSnapshots bounds the buffer in snapshots: it holds at most the
// samples of the latest n snapshots written (default
// DefaultBufferSnapshots); past that the oldest are dropped and counted.
// A snapshot of 1,000 containers with two interfaces each is 78,000
// samples, 1.6 MB of buffer (20 bytes a sample; the labels are kept once):
// size it to the memory an outage may take.
func WithBufferSnapshots(n int) Option { return func(c *config) { c.snapshots = n } }

// WithFlushInterval sets how often the buffer is sent (default 5 s): the
// longest a sample waits, but for an outage, unless half the buffer's
// snapshots come sooner.
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithBackoff sets the wait before retrying a failed batch: up to min after
// the first failure, doubling up to max (default 100 ms and 10 s), less a
// random part of up to a half. A longer Retry-After wins.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each HTTP request (default 30 s, Prometheus's
// remote_timeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithHTTPClient sets the HTTP client (default: a client of its own), for
// TLS settings or a proxy.
func WithHTTPClient(h *http.Client) Option { return func(c *config) { c.client = h } }

// WithTags sets the label allow-list (default sink.DefaultTags()).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithLimits bounds label values and interfaces per namespace (default
// sink.DefaultLimits()). Mimir refuses label values over 2,048 bytes by
// default, and Cortex and VictoriaMetrics have similar limits.
func WithLimits(l sink.Limits) Option { return func(c *config) { c.limits = l } }

// WithCgroupID sets what the id label holds: the cgroup path, as cAdvisor
// and sink/prometheus (default true), or the runtime's container ID.
func WithCgroupID(on bool) Option { return func(c *config) { c.cgroupID = on } }

// WithInterfaceFilter keeps only the interfaces for which keep returns true
// in the container_network_* series (default: every interface), as in
// sink/prometheus.
func WithInterfaceFilter(keep func(name string) bool) Option {
	return func(c *config) { c.keep = keep }
}

// WithExternalLabels adds labels to every series (default none), as
// Prometheus's external_labels do. A name must be a valid label name and
// not one of the container labels or the series' own (device, interface,
// ...); an empty value is left out.
func WithExternalLabels(l map[string]string) Option {
	return func(c *config) {
		c.external = make(map[string]string, len(l))
		for k, v := range l {
			c.external[k] = v
		}
	}
}

// WithBasicAuth sends HTTP basic authentication.
func WithBasicAuth(user, password string) Option {
	return func(c *config) { c.user, c.pass = user, password }
}

// WithBearerToken sends "Authorization: Bearer <token>".
func WithBearerToken(token string) Option { return func(c *config) { c.token = token } }

// WithHeaders adds HTTP headers to every request (X-Scope-OrgID for a
// Mimir or Cortex tenant, ...). The protocol's own headers
// (Content-Type, Content-Encoding, X-Prometheus-Remote-Write-Version) and
// Authorization (WithBasicAuth, WithBearerToken) may not be set here.
func WithHeaders(h map[string]string) Option {
	return func(c *config) {
		c.headers = make(map[string]string, len(h))
		for k, v := range h {
			c.headers[k] = v
		}
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// The labels series carry besides the container's: a LabelTag or an
// external label may not take them.
var ownLabels = []string{"cpu", "device", "interface", "pagesize", "failure_type", "scope", "tcp_state", "stage", "change"}

// Sink pushes snapshots to a remote_write receiver. It is safe for
// concurrent use.
type Sink struct {
	cfg     config
	url     string
	auth    string
	headers http.Header

	mu  sync.Mutex // guards enc
	enc *encoder

	snapMu  sync.Mutex // guards snapBuf, asm and reqBuf (one request at a time in sendq)
	snapBuf []byte
	asm     assembler
	reqBuf  []byte

	req sendq.Request
	q   *sendq.Sender
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.SinkDropper      = (*Sink)(nil)
	_ sink.DeliveryReporter = (*Sink)(nil)
	_ sink.SanitizeReporter = (*Sink)(nil)
)

// New returns a sink writing to the receiver at writeURL (the full URL:
// "http://127.0.0.1:9090/api/v1/write" for Prometheus,
// "http://127.0.0.1:8428/api/v1/write" for VictoriaMetrics,
// ".../api/v1/push" for Mimir and Cortex). It starts the background
// sender; Close stops it. Every problem with the options is reported at
// once.
func New(writeURL string, opts ...Option) (*Sink, error) {
	c, tg, errs := configure(opts)
	if c.timeout <= 0 {
		errs = append(errs, errors.New("remotewrite: timeout must be positive"))
	}
	u, err := url.Parse(writeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("remotewrite: URL %q: want http(s)://host:port/path", writeURL))
	}
	if c.token != "" && (c.user != "" || c.pass != "") {
		errs = append(errs, errors.New("remotewrite: basic auth and a bearer token are exclusive"))
	}
	headers := http.Header{}
	for k, v := range c.headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version", "Authorization", "Content-Length":
			errs = append(errs, fmt.Errorf("remotewrite: header %q is set by the sink", k))
		default:
			headers.Set(k, v)
		}
	}
	qc := sendq.Config{
		Name: "remotewrite", Batch: c.batch, Snapshots: c.snapshots, Interval: c.interval,
		MinBackoff: c.minBackoff, MaxBackoff: c.maxBackoff, Log: c.log, Linger: true,
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
	s := &Sink{cfg: c, url: u.String(), headers: headers, enc: newEncoder(tg, sink.NewSanitizer(c.limits), c.cgroupID, c.keep, c.external)}
	s.enc.ids = newSeriesTable()
	switch {
	case c.token != "":
		s.auth = "Bearer " + c.token
	case c.user != "" || c.pass != "":
		s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass))
	}
	s.req = sendq.Request{Client: c.client, Name: "remotewrite", URL: s.url, Timeout: c.timeout, Header: s.header}
	qc.Post = s.post
	s.q = sendq.New(qc)
	return s, nil
}

// configure applies opts to the defaults and checks what the series
// depend on: the tags and the external labels.
func configure(opts []Option) (config, *sink.Tagger, []error) {
	c := config{
		batch: DefaultBatchSize, snapshots: DefaultBufferSnapshots, interval: 5 * time.Second,
		minBackoff: 100 * time.Millisecond, maxBackoff: 10 * time.Second, timeout: 30 * time.Second,
		tags: sink.DefaultTags(), cgroupID: true, log: slog.New(slog.DiscardHandler), userAgent: "metricsd",
	}
	for _, o := range opts {
		o(&c)
	}
	errs := c.errs
	tg, err := sink.NewTagger(c.tags)
	if err != nil {
		errs = append(errs, err)
	}
	if tg != nil {
		for _, k := range tg.Keys() {
			if slices.Contains(ownLabels, k) {
				errs = append(errs, fmt.Errorf("remotewrite: tag name %q is a label of the series' own", k))
			}
		}
	}
	for k := range c.external {
		switch {
		case !validLabelName(k):
			errs = append(errs, fmt.Errorf("remotewrite: external label %q: want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", k))
		case slices.Contains(ownLabels, k) || tg != nil && slices.Contains(tg.Keys(), k):
			errs = append(errs, fmt.Errorf("remotewrite: external label %q is already a label of the series", k))
		}
	}
	return c, tg, errs
}

// Encoder encodes snapshots into remote_write 1.0 WriteRequest messages
// (protobuf, before snappy compression), the series a Sink sends: for a
// transport of your own, or to measure the encoding. It is not safe for
// concurrent use.
type Encoder struct {
	e    *encoder
	ends []int
}

// NewEncoder returns an Encoder of the series the options make (WithTags,
// WithCgroupID, WithInterfaceFilter, WithExternalLabels; the delivery
// options are ignored).
func NewEncoder(opts ...Option) (*Encoder, error) {
	c, tg, errs := configure(opts)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Encoder{e: newEncoder(tg, sink.NewSanitizer(c.limits), c.cgroupID, c.keep, c.external)}, nil
}

// Append appends snap as one WriteRequest to dst and returns it with the
// number of samples (a series each). Once its buffers have grown it
// allocates nothing.
func (x *Encoder) Append(dst []byte, snap *sink.Snapshot) ([]byte, int) {
	dst, x.ends = x.e.appendSnapshot(dst, x.ends[:0], snap)
	return dst, len(x.ends)
}

// Write encodes snap into the buffer and returns; the background sender
// delivers it. In steady state it allocates nothing. The error is ErrClosed
// or ctx's.
func (s *Sink) Write(ctx context.Context, snap *sink.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.q.AppendIdle(func(buf []byte, ends, pts []int, idle bool) ([]byte, []int, []int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if idle { // no record refers to the series table
			s.enc.ids.compact()
		}
		buf, ends = s.enc.appendSnapshot(buf, ends, snap)
		s.enc.ids.endSnapshot()
		return buf, ends, pts, nil
	})
	if errors.Is(err, sendq.ErrClosed) {
		return ErrClosed
	}
	return err
}

// post sends one WriteRequest: body is records of the series table (id,
// time and value), assembled into TimeSeries, each series once with its
// samples of the batch. It is compressed by klauspost/compress/s2's
// Snappy-compatible encoder, whose output is a standard snappy block (any
// snappy decoder reads it: TestSnappyBlock) and which took 20% less CPU
// than github.com/golang/snappy's for 12% fewer bytes on a snapshot's
// request (BenchmarkRemoteWriteSnappy in bench/).
func (s *Sink) post(ctx context.Context, body []byte, n int) (*WriteError, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	// The ids of body's records stay valid while it is being sent (the
	// table is compacted only when no batch is), and a label block never
	// changes: only the slice's header needs the encoder's lock.
	s.mu.Lock()
	labels := s.enc.ids.labels
	s.mu.Unlock()
	var unknown int
	s.reqBuf, unknown = s.asm.assemble(s.reqBuf[:0], body, labels)
	s.snapBuf = snappyEncode(s.snapBuf, s.reqBuf)
	we, err := s.req.Post(ctx, s.snapBuf, n)
	if unknown == 0 || we != nil || err != nil {
		return we, err
	}
	// Delivered but for records whose series the table no longer has: a
	// bug in this package. They are counted and logged as refused (status
	// 0) like samples a receiver refused, never lost unseen.
	return &WriteError{Sink: "remotewrite", Reason: fmt.Sprintf("%d samples left out: their series id is unknown to the series table (a metricsd bug; please report it)", unknown),
		Points: n, Refused: unknown}, nil
}

// snappyEncode returns body as a snappy block, in buf's memory when it is
// large enough.
func snappyEncode(buf, body []byte) []byte {
	if need := s2.MaxEncodedLen(len(body)); cap(buf) < need {
		buf = make([]byte, need)
	}
	return s2.EncodeSnappy(buf[:cap(buf)], body)
}

// header sets a request's headers.
func (s *Sink) header(h http.Header) {
	for k, v := range s.headers {
		h[k] = v
	}
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("Content-Encoding", "snappy")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	h.Set("User-Agent", s.cfg.userAgent)
	if s.auth != "" {
		h.Set("Authorization", s.auth)
	}
}

// Flush sends everything buffered now and returns the errors of batches the
// receiver refused, or the error that stopped it (the samples stay
// buffered).
func (s *Sink) Flush(ctx context.Context) error { return s.q.Flush(ctx) }

// Close stops the background sender (waiting for its request in flight)
// and sends what is buffered, retrying retriable failures with backoff
// until ctx ends. Samples still buffered then are counted as Dropped and
// reported in the error, joined with the batches the receiver refused.
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

// Dropped returns how many samples were dropped, the buffer full
// (sink.SinkDropper).
func (s *Sink) Dropped() uint64 { return s.q.Dropped() }

// Sanitized returns what the sink changed or left out of what containers
// gave it (sink.SanitizeReporter).
func (s *Sink) Sanitized() sink.Sanitized { return s.enc.z.Sanitized() }

// Stats returns the counters, in samples.
func (s *Sink) Stats() Stats { return s.q.Stats() }
