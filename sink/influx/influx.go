// Package influx is a sink that writes snapshots to InfluxDB, 1.x through
// /write (database, retention policy, user and password) or 2.x through
// /api/v2/write (organisation, bucket, token), as line protocol encoded by
// github.com/influxdata/line-protocol/v2 with tag keys sorted, gzip
// compressed by default.
//
// Measurements, tags and fields are those of sink/points, listed with their
// units and sources in docs/METRICS.md (container_cpu, container_memory,
// container_net, ...).
//
// # Delivery
//
// Write encodes the snapshot at once into a buffer bounded in snapshots
// (default DefaultBufferSnapshots: the points of the latest 10 snapshots,
// however many containers they have) and returns; a background goroutine
// sends the buffer in batches (default 5,000 points, a request each) as
// soon as a batch is full and every flush interval (default 10 s).
// Failures are handled as Telegraf's InfluxDB outputs do:
//
//   - 413 Request Entity Too Large: the batch is split in halves, each sent
//     on its own, down to single points (a point still too large is dropped
//     and counted as Rejected).
//   - 429 and 5xx, and errors reaching the server: the batch goes back to the
//     front of the buffer and is retried with exponential backoff, waiting
//     at least what a Retry-After header asks for.
//   - other 4xx (400 field type conflict, 401, 404 database not found, ...):
//     the batch is dropped and counted as Rejected; the error, which names
//     InfluxDB's reason, is logged and returned by Flush and Close. A
//     "partial write" (InfluxDB stored the batch but for the points it
//     names, such as one whose series key is over 64 KiB) is counted as
//     such: the stored points as Sent, the refused ones as Rejected, the
//     request in Stats.Partial.
//
// When the buffer is full (an outage longer than its snapshots) the oldest
// points are dropped and counted (Stats.Dropped): a batch that is being
// sent does not count against the bound, but when it comes back after a
// failure it does, and then its oldest points are the ones dropped. A
// container writes about 16 points (more with more interfaces and block
// devices), about 340 bytes each: a snapshot of 1,000 containers is 6 MB.
// Close sends what is buffered.
//
// # Hostile values
//
// Tag values are sanitised for line protocol (sink.Sanitizer: invalid
// UTF-8, control characters and a trailing backslash become U+FFFD, values
// and interfaces per namespace are bounded by WithLimits), so that no
// container's name, label or interface can make its points unwritable or a
// batch refused; what was changed is counted (Sanitized).
//
// Delivery is at least once: a point is sent again only when a request
// failed without an answer, after the server may have stored it, and
// InfluxDB then overwrites it with the same value (same series and time).
package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/internal/ratelog"
	"github.com/metricsd/metricsd/internal/sendq"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("influx: sink closed")

// WriteError is InfluxDB's refusal of a batch: the status and the reason it
// gave. A WriteError whose Retry is false means the points were dropped:
// all of them, or those of a partial write (Refused).
type WriteError = sendq.WriteError

// DefaultBufferSnapshots is how many snapshots the buffer holds by default.
const DefaultBufferSnapshots = 10

type config struct {
	v1, v2      bool
	db, rp      string
	user, pass  string
	org, bucket string
	token       string
	precision   lineprotocol.Precision
	gzip        bool
	batch       int
	snapshots   int
	interval    time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	timeout     time.Duration
	client      *http.Client
	tags        sink.Tags
	limits      sink.Limits
	log         *slog.Logger
	userAgent   string
	errs        []error
}

// Option configures New.
type Option func(*config)

// WithV1 writes to InfluxDB 1.x's /write into database db and retention
// policy rp ("" for the database's default).
func WithV1(db, rp string) Option {
	return func(c *config) {
		c.v1, c.db, c.rp = true, db, rp
		if db == "" {
			c.errs = append(c.errs, errors.New("influx: WithV1: empty database"))
		}
	}
}

// WithCredentials sets the InfluxDB 1.x user and password, sent as HTTP
// basic authentication.
func WithCredentials(user, password string) Option {
	return func(c *config) { c.user, c.pass = user, password }
}

// WithV2 writes to InfluxDB 2.x's /api/v2/write into bucket of org, with
// "Authorization: Token <token>".
func WithV2(org, bucket, token string) Option {
	return func(c *config) {
		c.v2, c.org, c.bucket, c.token = true, org, bucket, token
		if org == "" || bucket == "" {
			c.errs = append(c.errs, errors.New("influx: WithV2: empty org or bucket"))
		}
	}
}

// WithPrecision sets the timestamp precision (default lineprotocol.Nanosecond).
func WithPrecision(p lineprotocol.Precision) Option {
	return func(c *config) { c.precision = p }
}

// WithGzip turns gzip compression of request bodies on or off (default on).
func WithGzip(on bool) Option { return func(c *config) { c.gzip = on } }

// WithBatchSize sets the most points sent in one request (default 5,000,
// InfluxDB's recommendation).
func WithBatchSize(n int) Option {
	return func(c *config) { c.batch = n }
}

// WithBufferSnapshots bounds the buffer in snapshots: it holds at most the
// points of the latest n snapshots written (default
// DefaultBufferSnapshots), whatever their size; past that the oldest points
// are dropped and counted.
func WithBufferSnapshots(n int) Option { return func(c *config) { c.snapshots = n } }

// WithFlushInterval sets how often the buffer is sent when no batch has
// filled (default 10 s).
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithBackoff sets the wait before retrying a failed batch: up to min after
// the first failure, doubling up to max (default 1 s and 60 s), less a
// random part of up to a half. A longer Retry-After from the server wins.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each HTTP request (default 10 s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithHTTPClient sets the HTTP client (default: a client of its own).
func WithHTTPClient(h *http.Client) Option { return func(c *config) { c.client = h } }

// WithTags sets the tag allow-list (default sink.DefaultTags()).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithLimits bounds tag values and interfaces per namespace (default
// sink.DefaultLimits()). Without a bound on values a 64 KiB label makes
// InfluxDB refuse its points (a series key is at most 65,535 bytes).
func WithLimits(l sink.Limits) Option { return func(c *config) { c.limits = l } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Stats counts points through the sink since New.
type Stats struct {
	// Written is the number of points Write encoded into the buffer.
	Written uint64
	// Sent is the number of points InfluxDB accepted (stored).
	Sent uint64
	// Dropped is the number of points dropped because the buffer was full.
	Dropped uint64
	// Rejected is the number of points dropped because InfluxDB refused
	// them: their batch (a 4xx other than 413 and 429), or they alone in
	// a partial write.
	Rejected uint64
	// Partial is the number of requests InfluxDB stored in part (a
	// "partial write"): their stored points are in Sent, the others in
	// Rejected.
	Partial uint64
	// Skipped is the number of points that could not be encoded (none,
	// unless a tag value escapes the sanitizer).
	Skipped uint64
	// Failures is the number of requests that failed and were retried.
	Failures uint64
	// Buffered is the number of points waiting now, including a batch being
	// sent.
	Buffered int
}

// Sink writes to InfluxDB. It is safe for concurrent use.
type Sink struct {
	cfg config
	req sendq.Request
	q   *sendq.Sender
	rl  *ratelog.Logger

	mu  sync.Mutex // guards enc
	enc *points.Encoder

	gzMu sync.Mutex // one request at a time in sendq; guards gz, body
	gz   *gzip.Writer
	body bytes.Buffer

	skipped atomic.Uint64
	// unparsed is the number of lines the answer to the request in flight
	// (one at a time) says InfluxDB could not parse.
	unparsed int
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.SinkDropper      = (*Sink)(nil)
	_ sink.DeliveryReporter = (*Sink)(nil)
	_ sink.SanitizeReporter = (*Sink)(nil)
	_ sink.EventWriter      = (*Sink)(nil)
)

// New returns a sink writing to the InfluxDB at baseURL
// ("http://127.0.0.1:8086"). Exactly one of WithV1 and WithV2 is required.
// It starts the background sender; Close stops it. Every problem with the
// options is reported at once.
func New(baseURL string, opts ...Option) (*Sink, error) {
	c := config{
		precision: lineprotocol.Nanosecond, gzip: true, batch: 5000, snapshots: DefaultBufferSnapshots,
		interval: 10 * time.Second, minBackoff: time.Second, maxBackoff: time.Minute,
		timeout: 10 * time.Second, tags: sink.DefaultTags(), log: slog.New(slog.DiscardHandler),
		userAgent: "metricsd",
	}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	errs := c.errs
	if c.v1 == c.v2 {
		errs = append(errs, errors.New("influx: exactly one of WithV1 and WithV2 is required"))
	}
	if c.timeout <= 0 {
		errs = append(errs, errors.New("influx: timeout must be positive"))
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("influx: base URL %q: want http(s)://host:port", baseURL))
	}
	tg, err := sink.NewTagger(c.tags)
	if err != nil {
		errs = append(errs, err)
	}
	qc := sendq.Config{
		Name: "influx", Batch: c.batch, Snapshots: c.snapshots, Interval: c.interval,
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
	q := url.Values{}
	var path string
	if c.v1 {
		path = "/write"
		q.Set("db", c.db)
		if c.rp != "" {
			q.Set("rp", c.rp)
		}
		q.Set("precision", precisionV1(c.precision))
	} else {
		path = "/api/v2/write"
		q.Set("org", c.org)
		q.Set("bucket", c.bucket)
		q.Set("precision", precisionV2(c.precision))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	s := &Sink{
		cfg: c,
		enc: points.NewEncoder(tg, c.precision, sink.NewLineProtocolSanitizer(c.limits)),
		rl:  ratelog.New(c.log, time.Minute),
	}
	var auth string
	switch {
	case c.v2:
		auth = "Token " + c.token
	case c.user != "" || c.pass != "":
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass))
	}
	s.req = sendq.Request{
		Client: c.client, Name: "influx", URL: u.String(), Timeout: c.timeout,
		Header: func(h http.Header) {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("User-Agent", c.userAgent)
			if c.gzip {
				h.Set("Content-Encoding", "gzip")
			}
			if auth != "" {
				h.Set("Authorization", auth)
			}
		},
		Reason: func(body []byte, _ string) string { return reason(body) },
		Body:   s.readErrorBody,
	}
	if c.gzip {
		s.gz = gzip.NewWriter(io.Discard)
	}
	qc.Post = s.post
	s.q = sendq.New(qc)
	return s, nil
}

func precisionV1(p lineprotocol.Precision) string {
	switch p {
	case lineprotocol.Microsecond:
		return "u"
	case lineprotocol.Millisecond:
		return "ms"
	case lineprotocol.Second:
		return "s"
	}
	return "n"
}

func precisionV2(p lineprotocol.Precision) string {
	switch p {
	case lineprotocol.Microsecond:
		return "us"
	case lineprotocol.Millisecond:
		return "ms"
	case lineprotocol.Second:
		return "s"
	}
	return "ns"
}

// Dropped returns how many points were dropped, the buffer full
// (sink.SinkDropper).
func (s *Sink) Dropped() uint64 { return s.q.Dropped() }

// Sanitized returns what the sink changed or left out of what containers
// gave it (sink.SanitizeReporter).
func (s *Sink) Sanitized() sink.Sanitized { return s.enc.Sanitized() }

// DeliveryError returns the error of the background sender's last attempt
// when it failed (a batch refused, or one to be retried: InfluxDB
// unreachable, 429, 5xx), and nil once an attempt delivers everything it
// took (sink.DeliveryReporter).
func (s *Sink) DeliveryError() error { return s.q.DeliveryError() }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	q := s.q.Stats()
	return Stats{
		Written: q.Written, Sent: q.Sent, Dropped: q.Dropped, Rejected: q.Rejected, Partial: q.Partial,
		Skipped: s.skipped.Load(), Failures: q.Failures, Buffered: q.Buffered,
	}
}

// Write encodes snap into the buffer and returns; the background sender
// delivers it. The error is ErrClosed, ctx's, or names points that could not
// be encoded (the others are buffered).
func (s *Sink) Write(ctx context.Context, snap *sink.Snapshot) error {
	return s.queue(ctx, s.q.Append, func(buf []byte, ends []int) ([]byte, []int, int, error) {
		return s.enc.Append(buf, ends, snap)
	})
}

// WriteEvent queues an event's point (sink.EventWriter; see
// points.Walker.WalkEvent: an OOM kill is a container_oom_kill point at the
// time it was seen) to be sent with the next batch, under the same bounds
// and retries as the snapshots' points.
func (s *Sink) WriteEvent(ctx context.Context, e *sink.Event) error {
	return s.queue(ctx, s.q.AppendExtra, func(buf []byte, ends []int) ([]byte, []int, int, error) {
		return s.enc.AppendEvent(buf, ends, e)
	})
}

// queue encodes points into the buffer through add (the queue's Append
// for a snapshot, AppendExtra for an event) under the encoder's lock, and
// counts and reports the points that could not be encoded.
func (s *Sink) queue(ctx context.Context, add func(func(buf []byte, ends, pts []int) ([]byte, []int, []int, error)) (int, error), encode func(buf []byte, ends []int) ([]byte, []int, int, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var skipped int
	var encErr error
	_, err := add(func(buf []byte, ends, pts []int) ([]byte, []int, []int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		buf, ends, skipped, encErr = encode(buf, ends)
		return buf, ends, pts, nil
	})
	if errors.Is(err, sendq.ErrClosed) {
		return ErrClosed
	}
	if skipped > 0 {
		s.skipped.Add(uint64(skipped))
		s.rl.Warn("skipped", "influx: points not encoded", "count", skipped, "err", encErr)
	}
	return errors.Join(err, encErr)
}

// post sends one request of lines, gzipped when set. A partial write
// names the points InfluxDB refused: those it could not parse (each quoted
// in the answer: "unable to parse '...'"; a series key over 64 KiB is one)
// and those it parsed but dropped (" dropped=N" at the end).
func (s *Sink) post(ctx context.Context, lines []byte, n int) (*WriteError, error) {
	body := lines
	if s.gz != nil {
		s.gzMu.Lock()
		defer s.gzMu.Unlock()
		s.body.Reset()
		s.gz.Reset(&s.body)
		if _, err := s.gz.Write(lines); err != nil {
			return nil, err
		}
		if err := s.gz.Close(); err != nil {
			return nil, err
		}
		body = s.body.Bytes()
	}
	s.unparsed = 0
	we, err := s.req.Post(ctx, body, n)
	if we != nil && !we.Retry && strings.HasPrefix(we.Reason, "partial write") {
		if refused := s.unparsed + partialDropped(we.Reason); refused > 0 && refused < n {
			we.Refused = refused
		}
	}
	return we, err
}

// unparsedMark starts each line of a partial write's message that InfluxDB
// could not parse.
const unparsedMark = "unable to parse '"

// readErrorBody reads an error answer as sendq.ReadBody does, counting the
// lines it says could not be parsed in the whole of it into s.unparsed.
func (s *Sink) readErrorBody(r io.Reader) []byte {
	c := &markCounter{r: r}
	b := sendq.ReadBody(c)
	s.unparsed = c.n
	return b
}

// markCounter counts the occurrences of unparsedMark in what is read
// through it, across reads.
type markCounter struct {
	r    io.Reader
	n    int
	prev []byte // the end of the previous read, shorter than the mark
}

func (c *markCounter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if k > 0 {
		joined := append(c.prev, p[:k]...)
		c.n += bytes.Count(joined, []byte(unparsedMark))
		keep := min(len(joined), len(unparsedMark)-1)
		c.prev = append(c.prev[:0], joined[len(joined)-keep:]...)
	}
	return k, err
}

// partialDropped is the number of points a partial write dropped after
// parsing them, from the end of InfluxDB's message ("partial write: field
// type conflict: ... dropped=1"), 0 when it names none.
func partialDropped(reason string) int {
	i := strings.LastIndex(reason, "dropped=")
	if i < 0 {
		return 0
	}
	d := reason[i+len("dropped="):]
	end := 0
	for end < len(d) && d[end] >= '0' && d[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(d[:end])
	if err != nil {
		return 0
	}
	return n
}

// reason extracts InfluxDB's message from an error body: {"error": ...} in
// 1.x, {"code": ..., "message": ...} in 2.x. A long one (a partial write
// quotes every line it refused) is cut to 512 bytes but for its end, the
// count of points it refused (" dropped=N").
func reason(body []byte) string {
	var m struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		Code    string `json:"code"`
	}
	r := ""
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.Error != "":
			r = m.Error
		case m.Message != "" && m.Code != "":
			r = m.Code + ": " + m.Message
		case m.Message != "":
			r = m.Message
		}
	}
	if r == "" {
		// Not JSON, or JSON too long to have been read whole.
		r = strings.TrimSpace(string(body))
		if after, ok := strings.CutPrefix(r, `{"error":"`); ok {
			r = strings.TrimSuffix(after, `"}`)
		}
	}
	short := sendq.Reason([]byte(r))
	if len(r) > 512 {
		if i := strings.LastIndex(r, " dropped="); i >= 0 {
			short += r[i:]
		}
	}
	return short
}

// Flush sends everything buffered now and returns the errors of batches
// InfluxDB refused, or the error that stopped it (the points stay
// buffered).
func (s *Sink) Flush(ctx context.Context) error { return s.q.Flush(ctx) }

// Close stops the background sender (waiting for its request in flight)
// and sends what is buffered, retrying retriable failures with backoff until
// ctx ends. Points still buffered then are counted as Dropped and reported
// in the error, joined with the batches InfluxDB refused, in the
// background or now. A second Close returns ErrClosed.
func (s *Sink) Close(ctx context.Context) error {
	err := s.q.Close(ctx)
	if errors.Is(err, sendq.ErrClosed) {
		return ErrClosed
	}
	return err
}
