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
// Write encodes the snapshot at once into a bounded buffer (default 10,000
// points) and returns; a background goroutine sends the buffer in batches
// (default 5,000 points) when a batch is full and every flush interval
// (default 10 s). Failures are handled as Telegraf's InfluxDB outputs do:
//
//   - 413 Request Entity Too Large: the batch is split in halves, each sent
//     on its own, down to single points (a point still too large is dropped
//     and counted as Rejected).
//   - 429 and 5xx, and errors reaching the server: the batch goes back to the
//     front of the buffer and is retried with exponential backoff, waiting
//     at least what a Retry-After header asks for.
//   - other 4xx (400 field type conflict, 401, 404 database not found, ...):
//     the batch is dropped and counted as Rejected; the error, which names
//     InfluxDB's reason, is logged and returned by Flush and Close.
//
// When the buffer is full the oldest points are dropped and counted
// (Stats.Dropped): a batch that is being sent does not count against the
// bound, but when it comes back after a failure it does, and then its
// oldest points are the ones dropped. Size the buffer to hold at least a
// few snapshots: a container writes about 15 points (more with more
// interfaces and block devices). Close sends what is buffered.
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

	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("influx: sink closed")

// WriteError is InfluxDB's refusal of a batch: the status and the reason it
// gave. A WriteError whose Retry is false means the points were dropped.
type WriteError struct {
	Status int
	// Reason is InfluxDB's message ("error" in 1.x, "message" in 2.x), or
	// the body when it is not JSON.
	Reason string
	// Points is the number of points in the refused request.
	Points int
	// Retry is true for 429 and 5xx: the points stay buffered.
	Retry bool
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
}

func (e *WriteError) Error() string {
	what := "dropped"
	if e.Retry {
		what = "will retry"
	}
	return fmt.Sprintf("influx: write of %d points: %d %s: %s (%s)", e.Points, e.Status, http.StatusText(e.Status), e.Reason, what)
}

type config struct {
	v1, v2       bool
	db, rp       string
	user, pass   string
	org, bucket  string
	token        string
	precision    lineprotocol.Precision
	gzip         bool
	batch, limit int
	interval     time.Duration
	minBackoff   time.Duration
	maxBackoff   time.Duration
	timeout      time.Duration
	client       *http.Client
	tags         sink.Tags
	log          *slog.Logger
	userAgent    string
	errs         []error
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

// WithBatchSize sets the most points sent in one request (default 5,000).
func WithBatchSize(n int) Option {
	return func(c *config) { c.batch = n }
}

// WithBufferLimit sets the most points buffered (default 10,000); past it the
// oldest are dropped and counted.
func WithBufferLimit(n int) Option { return func(c *config) { c.limit = n } }

// WithFlushInterval sets how often the buffer is sent when no batch has
// filled (default 10 s).
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithBackoff sets the wait before retrying a failed batch: min after the
// first failure, doubling up to max (default 1 s and 60 s). A longer
// Retry-After from the server wins.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each HTTP request (default 10 s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithHTTPClient sets the HTTP client (default: a client of its own).
func WithHTTPClient(h *http.Client) Option { return func(c *config) { c.client = h } }

// WithTags sets the tag allow-list (default sink.DefaultTags()).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Stats counts points through the sink since New.
type Stats struct {
	// Written is the number of points Write encoded into the buffer.
	Written uint64
	// Sent is the number of points InfluxDB accepted.
	Sent uint64
	// Dropped is the number of points dropped because the buffer was full.
	Dropped uint64
	// Rejected is the number of points dropped because InfluxDB refused
	// their batch (a 4xx other than 413 and 429).
	Rejected uint64
	// Skipped is the number of points that could not be encoded (a tag
	// value with a control character or invalid UTF-8).
	Skipped uint64
	// Failures is the number of requests that failed and were retried.
	Failures uint64
	// Buffered is the number of points waiting now, including a batch being
	// sent.
	Buffered int
}

// Sink writes to InfluxDB. It is safe for concurrent use.
type Sink struct {
	cfg      config
	writeURL string
	auth     string

	mu       sync.Mutex // guards enc, q, inflight, closed
	enc      *points.Encoder
	q        queue
	inflight int
	closed   bool

	sendMu sync.Mutex // one request at a time; guards gz, body
	gz     *gzip.Writer
	body   bytes.Buffer

	written, sent, dropped, rejected, skipped, failures atomic.Uint64

	kick     chan struct{}
	stop     chan struct{} // closed by Close: the loop ends after its current request
	bgErrs   []error       // refusals met by the loop, reported by Close (guarded by mu)
	lastErr  error         // the last flush's failure, nil once one delivers (guarded by mu)
	loopDone chan struct{}
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.SinkDropper      = (*Sink)(nil)
	_ sink.DeliveryReporter = (*Sink)(nil)
)

// New returns a sink writing to the InfluxDB at baseURL
// ("http://127.0.0.1:8086"). Exactly one of WithV1 and WithV2 is required.
// It starts the background sender; Close stops it.
func New(baseURL string, opts ...Option) (*Sink, error) {
	c := config{
		precision: lineprotocol.Nanosecond, gzip: true, batch: 5000, limit: 10000,
		interval: 10 * time.Second, minBackoff: time.Second, maxBackoff: time.Minute,
		timeout: 10 * time.Second, tags: sink.DefaultTags(), log: slog.New(slog.DiscardHandler),
		userAgent: "metricsd",
	}
	for _, o := range opts {
		o(&c)
	}
	errs := c.errs
	if c.v1 == c.v2 {
		errs = append(errs, errors.New("influx: exactly one of WithV1 and WithV2 is required"))
	}
	if c.batch < 1 || c.limit < 1 {
		errs = append(errs, errors.New("influx: batch size and buffer limit must be positive"))
	} else if c.batch > c.limit {
		errs = append(errs, fmt.Errorf("influx: batch size %d exceeds the buffer limit %d", c.batch, c.limit))
	}
	if c.interval <= 0 || c.minBackoff <= 0 || c.maxBackoff < c.minBackoff || c.timeout <= 0 {
		errs = append(errs, errors.New("influx: flush interval, backoff and timeout must be positive, max backoff >= min"))
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("influx: base URL %q: want http(s)://host:port", baseURL))
	}
	tg, err := sink.NewTagger(c.tags)
	if err != nil {
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
		cfg: c, writeURL: u.String(),
		enc:      points.NewEncoder(tg, c.precision),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	switch {
	case c.v2:
		s.auth = "Token " + c.token
	case c.user != "" || c.pass != "":
		s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.pass))
	}
	if c.gzip {
		s.gz = gzip.NewWriter(io.Discard)
	}
	go s.loop()
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

// Dropped returns how many points were dropped (sink.SinkDropper).
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// DeliveryError returns the error of the background sender's last attempt
// when it failed (a batch refused, or one to be retried: InfluxDB
// unreachable, 429, 5xx), and nil once an attempt delivers everything it
// took (sink.DeliveryReporter).
func (s *Sink) DeliveryError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	buffered := s.q.n + s.inflight
	s.mu.Unlock()
	return Stats{
		Written: s.written.Load(), Sent: s.sent.Load(), Dropped: s.dropped.Load(),
		Rejected: s.rejected.Load(), Skipped: s.skipped.Load(), Failures: s.failures.Load(),
		Buffered: buffered,
	}
}

// Write encodes snap into the buffer and returns; the background sender
// delivers it. The error is ErrClosed, ctx's, or names points that could not
// be encoded (the others are buffered).
func (s *Sink) Write(ctx context.Context, snap *sink.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	c := s.q.get()
	var skipped int
	var encErr error
	c.buf, c.ends, skipped, encErr = s.enc.Append(c.buf[:0], c.ends[:0], snap)
	c.head = 0
	n := len(c.ends)
	if n == 0 {
		s.q.recycle(c)
	} else {
		s.q.push(c)
	}
	over := s.q.n - s.cfg.limit
	if over > 0 {
		s.q.dropOldest(over)
	}
	full := s.q.n >= s.cfg.batch
	s.mu.Unlock()

	s.written.Add(uint64(n))
	if skipped > 0 {
		s.skipped.Add(uint64(skipped))
		s.cfg.log.Warn("influx: points not encoded", "count", skipped, "err", encErr)
	}
	if over > 0 {
		s.dropped.Add(uint64(over))
		s.cfg.log.Warn("influx: buffer full, oldest points dropped", "dropped", over, "limit", s.cfg.limit)
	}
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return encErr
}

// loop sends the buffer when a batch is full or the interval passes,
// retrying with backoff, until Close stops it.
//
// Its requests are not cancelled by Close: a request cut off after InfluxDB
// stored its points would be sent again by Close's flush, and stored twice.
// Each request is bounded by WithTimeout instead, and Close waits for the
// one in flight.
func (s *Sink) loop() {
	defer close(s.loopDone)
	t := time.NewTicker(s.cfg.interval)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		for attempt := 0; ; attempt++ {
			err, retry := s.flush(ctx)
			s.mu.Lock()
			s.lastErr = errors.Join(err, retry)
			if err != nil && len(s.bgErrs) < 16 { // Close reports them; the counters count all
				s.bgErrs = append(s.bgErrs, err)
			}
			s.mu.Unlock()
			if err != nil {
				s.cfg.log.Error("influx: write failed", "err", err)
			}
			if retry == nil {
				break
			}
			wait := s.backoff(attempt, retry)
			s.cfg.log.Warn("influx: write failed, will retry", "err", retry, "in", wait)
			select {
			case <-s.stop:
				return
			case <-time.After(wait):
			}
		}
	}
}

func (s *Sink) backoff(attempt int, retry error) time.Duration {
	d := s.cfg.minBackoff
	for i := 0; i < attempt && d < s.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.maxBackoff)
	var we *WriteError
	if errors.As(retry, &we) && we.RetryAfter > d {
		d = we.RetryAfter
	}
	return d
}

// Flush sends everything buffered now and returns the errors of batches
// InfluxDB refused, or the error that stopped it (the points stay buffered).
func (s *Sink) Flush(ctx context.Context) error {
	err, retry := s.flush(ctx)
	return errors.Join(err, retry)
}

// flush sends batches until the buffer is empty. err joins the errors of
// refused (dropped) batches; retry is the error that stopped it, the batch
// back in the buffer.
func (s *Sink) flush(ctx context.Context) (err, retry error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	var errs []error
	for {
		s.mu.Lock()
		b := s.q.take(s.cfg.batch)
		if b != nil {
			s.inflight = b.n()
		}
		s.mu.Unlock()
		if b == nil {
			return errors.Join(errs...), nil
		}
		done, refused, retry := s.send(ctx, b, b.head, len(b.ends))
		if refused != nil {
			errs = append(errs, refused)
		}
		s.mu.Lock()
		s.inflight = 0
		if retry != nil {
			b.head += done
			s.q.pushFront(b)
			over := s.q.n - s.cfg.limit
			if over > 0 {
				s.q.dropOldest(over)
				s.dropped.Add(uint64(over))
			}
			s.mu.Unlock()
			s.failures.Add(1)
			if over > 0 {
				s.cfg.log.Warn("influx: buffer full, oldest points dropped", "dropped", over, "limit", s.cfg.limit)
			}
			return errors.Join(errs...), retry
		}
		s.q.recycle(b)
		s.mu.Unlock()
	}
}

// send posts lines [lo, hi) of b, splitting on 413. done is how many of
// them are finished with (sent or refused), always a prefix; refused joins
// the refusals (those points are dropped); retry, when not nil, is why the
// rest could not be sent now.
func (s *Sink) send(ctx context.Context, b *chunk, lo, hi int) (done int, refused, retry error) {
	we, err := s.post(ctx, b.lines(lo, hi), hi-lo)
	switch {
	case err != nil:
		return 0, nil, err
	case we == nil:
		s.sent.Add(uint64(hi - lo))
		return hi - lo, nil, nil
	case we.Status == http.StatusRequestEntityTooLarge && hi-lo > 1:
		mid := lo + (hi-lo)/2
		d1, ref1, retry := s.send(ctx, b, lo, mid)
		if retry != nil {
			return d1, ref1, retry
		}
		d2, ref2, retry := s.send(ctx, b, mid, hi)
		return d1 + d2, errors.Join(ref1, ref2), retry
	case we.Retry:
		return 0, nil, we
	default:
		s.rejected.Add(uint64(hi - lo))
		return hi - lo, we, nil
	}
}

// post sends one request. It returns a WriteError for a non-2xx answer, or
// err when there was no answer.
func (s *Sink) post(ctx context.Context, lines []byte, n int) (*WriteError, error) {
	body := lines
	if s.gz != nil {
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
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.writeURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", s.cfg.userAgent)
	if s.gz != nil {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influx: write of %d points: %w", n, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil, nil
	}
	we := &WriteError{Status: resp.StatusCode, Reason: reason(msg), Points: n}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5 {
		we.Retry = true
		we.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return we, nil
}

// reason extracts InfluxDB's message from an error body: {"error": ...} in
// 1.x, {"code": ..., "message": ...} in 2.x.
func reason(body []byte) string {
	var m struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		Code    string `json:"code"`
	}
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.Error != "":
			return m.Error
		case m.Message != "":
			if m.Code != "" {
				return m.Code + ": " + m.Message
			}
			return m.Message
		}
	}
	r := strings.TrimSpace(string(body))
	if r == "" {
		return "(no body)"
	}
	return r
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Close stops the background sender (waiting for its request in flight)
// and sends what is buffered, retrying retriable failures with backoff until
// ctx ends. Points still buffered then are counted as Dropped and reported
// in the error, joined with the batches InfluxDB refused, in the
// background or now.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	select {
	case <-s.loopDone:
	case <-ctx.Done():
		// The loop is still inside a request (at most WithTimeout): leave
		// it to finish; what is buffered stays unsent.
		s.mu.Lock()
		n := s.q.n
		s.q.dropOldest(n)
		s.mu.Unlock()
		s.dropped.Add(uint64(n))
		return fmt.Errorf("influx: close: %d points not sent: %w", n, ctx.Err())
	}

	s.mu.Lock()
	errs := s.bgErrs // refusals the background sender met since New
	s.bgErrs = nil
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err, retry := s.flush(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		if retry == nil {
			return errors.Join(errs...)
		}
		t := time.NewTimer(s.backoff(attempt, retry))
		select {
		case <-ctx.Done():
			t.Stop()
			s.mu.Lock()
			n := s.q.n
			s.q.dropOldest(n)
			s.mu.Unlock()
			s.dropped.Add(uint64(n))
			errs = append(errs, fmt.Errorf("influx: close: %d points not delivered: %w", n, errors.Join(retry, ctx.Err())))
			return errors.Join(errs...)
		case <-t.C:
		}
	}
}
