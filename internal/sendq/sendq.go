// Package sendq is the delivery half of the push sinks (sink/remotewrite,
// sink/otlp): a bounded buffer of encoded records with an exact drop count,
// and a background sender that posts them in batches and retries as the
// remote_write specification and Telegraf's outputs do (5xx, 429 and
// requests without an answer with backoff and jitter, honouring
// Retry-After; other 4xx dropped and counted by status with the server's
// reason; 413 split in halves).
//
// The buffer is sized in snapshots (Config.Snapshots): it holds the records
// of the latest few Appends, however many containers a snapshot has, so
// that a healthy server gets every point of a host of any size, and an
// outage costs the oldest snapshots first.
//
// A record is a byte string that the sink's encoder appended; a batch is
// records concatenated, which the sink frames, compresses and posts (a
// concatenation of protobuf fields of one repeated field is itself a valid
// message). A record may stand for several points (Config.Weighted): the
// counters count points.
package sendq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/metricsd/metricsd/internal/ratelog"
)

// WriteError is a server's refusal of a batch: the status and the reason it
// gave. A WriteError whose Retry is false means the points were dropped:
// all of them, or, when Refused is set, those the server says it refused
// (InfluxDB's "partial write").
type WriteError struct {
	// Sink names the sink ("remotewrite", "otlp").
	Sink string
	// Status is the receiver's HTTP status; 0 when the sink itself left
	// points out (Reason says why).
	Status int
	// Reason is the server's message: the body of its answer, trimmed and
	// bounded to 512 bytes.
	Reason string
	// Points is the number of points in the refused request.
	Points int
	// Retry is true for 429 and 5xx: the points stay buffered.
	Retry bool
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Refused, when above 0 and below Points, is how many points of a
	// partial write the server refused: it stored the others.
	Refused int
}

// Partial reports whether the server stored part of the batch.
func (e *WriteError) Partial() bool { return !e.Retry && e.Refused > 0 && e.Refused < e.Points }

func (e *WriteError) Error() string {
	what := "dropped"
	switch {
	case e.Retry:
		what = "will retry"
	case e.Partial():
		what = fmt.Sprintf("%d dropped, %d stored", e.Refused, e.Points-e.Refused)
	}
	if e.Status == 0 { // not the receiver's refusal: the sink's own
		return fmt.Sprintf("%s: write of %d points: %s (%s)", e.Sink, e.Points, e.Reason, what)
	}
	return fmt.Sprintf("%s: write of %d points: %d %s: %s (%s)", e.Sink, e.Points, e.Status, http.StatusText(e.Status), e.Reason, what)
}

// Config configures a Sender. Every field is required but Log (default:
// discard) and Weighted.
type Config struct {
	// Name prefixes errors and log messages.
	Name string
	// Batch is the most records in one request.
	Batch int
	// Snapshots bounds the buffer: it holds at most the records of the
	// latest Snapshots Appends (a snapshot each); past that the oldest
	// records are dropped and counted.
	Snapshots int
	// Weighted: records carry a point count each (the encoder fills pts);
	// otherwise a record is one point.
	Weighted bool
	// Interval is how often the buffer is sent when no batch has filled.
	Interval time.Duration
	// Linger: the buffer is sent every Interval, or as soon as half of
	// Snapshots are waiting, not as soon as a batch fills, so that a
	// batch holds several snapshots for Post to merge (remote_write
	// writes a series' samples of several snapshots in one TimeSeries,
	// its labels once).
	Linger bool
	// MinBackoff and MaxBackoff bound the wait before a retry: it doubles
	// from MinBackoff after each failure, up to MaxBackoff, and a random
	// part of up to half of it is taken off (jitter). A longer
	// Retry-After wins.
	MinBackoff, MaxBackoff time.Duration
	// Post sends one request: body is the batch's records concatenated,
	// points its point count. It returns a *WriteError for a non-2xx
	// answer, or err when there was none (retried).
	Post func(ctx context.Context, body []byte, points int) (*WriteError, error)
	Log  *slog.Logger
}

// Check returns what is wrong with c's numbers, or nil.
func (c *Config) Check() error {
	var errs []error
	if c.Batch < 1 || c.Snapshots < 1 {
		errs = append(errs, fmt.Errorf("%s: batch size and buffered snapshots must be positive", c.Name))
	}
	if c.Interval <= 0 || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("%s: flush interval and backoff must be positive, max backoff >= min", c.Name))
	}
	return errors.Join(errs...)
}

// Rejection counts the points a server refused with one status.
type Rejection struct {
	Status int
	Points uint64
	// Reason is the server's reason the last time.
	Reason string
}

// Stats counts points through a Sender since New.
type Stats struct {
	// Written is the number of points encoded into the buffer.
	Written uint64
	// Sent is the number of points the server accepted.
	Sent uint64
	// Dropped is the number of points dropped because the buffer was full
	// (or Close's context ended first).
	Dropped uint64
	// Rejected is the number of points dropped because the server refused
	// their batch (a 4xx other than 413 and 429), or refused them within
	// a batch it stored in part; Rejections has them by status.
	Rejected   uint64
	Rejections []Rejection
	// Partial is the number of requests the server stored in part, the
	// rest of their points counted in Rejected, their stored ones in Sent.
	Partial uint64
	// Failures is the number of requests that failed and were retried.
	Failures uint64
	// Buffered is the number of points waiting now, including a batch
	// being sent.
	Buffered int
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("sink closed")

// Sender is the buffer and its background sender. It is safe for
// concurrent use.
type Sender struct {
	cfg Config
	// rl writes the failures at most once a minute each: an outage fails
	// every request and fills the buffer at every snapshot.
	rl *ratelog.Logger
	// msgs are the log messages, prefixed with the sink's name once.
	msgFull, msgFailed, msgRetry string

	mu       sync.Mutex // guards q, inflight, waiting, closed, bgErrs, rejections
	q        queue
	inflight int
	waiting  int // snapshots appended since the last flush began (Linger)
	closed   bool
	bgErrs   []error
	lastErr  error // the background sender's last flush's failure, nil once one delivers
	rejs     []Rejection

	sendMu sync.Mutex // one request at a time

	written, sent, dropped, rejected, failures, partial atomic.Uint64

	kick     chan struct{}
	stop     chan struct{}
	loopDone chan struct{}
}

// New starts a Sender (its background goroutine: Close stops it). cfg must
// pass Check.
func New(cfg Config) *Sender {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:       cfg,
		rl:        ratelog.New(cfg.Log, time.Minute),
		msgFull:   cfg.Name + ": buffer full, oldest points dropped",
		msgFailed: cfg.Name + ": write failed, points dropped",
		msgRetry:  cfg.Name + ": write failed, will retry",
		q:         queue{weighted: cfg.Weighted, maxFree: 2},
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	if cfg.Linger { // half the snapshots wait, in chunks of their own
		s.q.maxFree = min(cfg.Snapshots/2, 16) + 2
	}
	go s.loop()
	return s
}

// DeliveryError returns the error of the background sender's last attempt
// when it failed (a batch refused, or one to be retried: the server
// unreachable, 429, 5xx), and nil once an attempt delivers everything it
// took (sink.DeliveryReporter).
func (s *Sender) DeliveryError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Dropped returns how many points were dropped (sink.SinkDropper).
func (s *Sender) Dropped() uint64 { return s.dropped.Load() }

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	buffered := s.q.p + s.inflight
	rejs := append([]Rejection(nil), s.rejs...)
	s.mu.Unlock()
	return Stats{
		Written: s.written.Load(), Sent: s.sent.Load(), Dropped: s.dropped.Load(),
		Rejected: s.rejected.Load(), Rejections: rejs, Failures: s.failures.Load(),
		Partial: s.partial.Load(), Buffered: buffered,
	}
}

// Append lets encode append records to a buffer chunk: it appends their
// bytes to buf, each record's end offset to ends and, when Weighted, the
// running point count to pts (starting from 0): one snapshot. Records past
// the bound (the latest Config.Snapshots snapshots) are dropped, oldest
// first, and counted. It returns the points added and
// encode's error (ErrClosed after Close).
func (s *Sender) Append(encode func(buf []byte, ends, pts []int) ([]byte, []int, []int, error)) (int, error) {
	return s.append(func(buf []byte, ends, pts []int, _ bool) ([]byte, []int, []int, error) {
		return encode(buf, ends, pts)
	}, false)
}

// AppendIdle is Append whose encode is told whether the Sender is idle:
// nothing buffered and no batch being sent, so that no record appended
// before is held any more (a sink whose records refer to a table of its
// own may then renumber it).
func (s *Sender) AppendIdle(encode func(buf []byte, ends, pts []int, idle bool) ([]byte, []int, []int, error)) (int, error) {
	return s.append(encode, false)
}

// AppendExtra is Append for records that are not a snapshot (an event's
// point, between snapshots): the bound counts them with the latest
// snapshot, so that they take no snapshot's place in it and go when it
// goes.
func (s *Sender) AppendExtra(encode func(buf []byte, ends, pts []int) ([]byte, []int, []int, error)) (int, error) {
	return s.append(func(buf []byte, ends, pts []int, _ bool) ([]byte, []int, []int, error) {
		return encode(buf, ends, pts)
	}, true)
}

func (s *Sender) append(encode func(buf []byte, ends, pts []int, idle bool) ([]byte, []int, []int, error), extra bool) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	idle := s.q.n == 0 && s.inflight == 0
	c := s.q.get()
	var err error
	c.buf, c.ends, c.pts, err = encode(c.buf[:0], c.ends[:0], c.pts[:0], idle)
	c.head = 0
	n := c.points(0, len(c.ends))
	if extra {
		s.q.bound.addExtra(len(c.ends))
	} else {
		s.q.bound.add(len(c.ends), s.cfg.Snapshots)
	}
	if len(c.ends) == 0 {
		s.q.recycle(c)
	} else {
		s.q.push(c)
	}
	over := s.q.n - s.q.bound.limit
	var lost int
	if over > 0 {
		lost = s.q.dropOldest(over)
	}
	full := s.q.n >= s.cfg.Batch
	if s.cfg.Linger {
		if !extra {
			s.waiting++
		}
		full = s.waiting >= max(1, s.cfg.Snapshots/2)
	}
	s.mu.Unlock()

	s.written.Add(uint64(n))
	if lost > 0 {
		s.dropped.Add(uint64(lost))
		s.rl.Warn("full", s.msgFull, "dropped", lost, "snapshots", s.cfg.Snapshots)
	}
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return n, err
}

// loop sends the buffer when a batch is full (with Linger: half the
// snapshots are waiting) or the interval passes,
// retrying with backoff, until Close stops it. Its requests are not
// cancelled by Close (a request cut off after the server stored its points
// would be sent again by Close's flush): Post bounds each with a timeout
// and Close waits for the one in flight.
func (s *Sender) loop() {
	defer close(s.loopDone)
	t := time.NewTicker(s.cfg.Interval)
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
				s.rl.Error("refused", s.msgFailed, "err", err)
			}
			if retry == nil {
				break
			}
			wait := s.Backoff(attempt, retry)
			s.rl.Warn("retry", s.msgRetry, "err", retry, "in", wait)
			select {
			case <-s.stop:
				return
			case <-time.After(wait):
			}
		}
		if s.cfg.Linger {
			t.Reset(s.cfg.Interval) // a full interval's snapshots for the next batch
		}
	}
}

// Backoff is the wait before retry number attempt+1 after error retry:
// MinBackoff doubled attempt times, capped at MaxBackoff, less a random
// part of up to a half; at least the server's Retry-After.
func (s *Sender) Backoff(attempt int, retry error) time.Duration {
	d := s.cfg.MinBackoff
	for i := 0; i < attempt && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	var we *WriteError
	if errors.As(retry, &we) && we.RetryAfter > d {
		d = we.RetryAfter
	}
	return d
}

// Flush sends everything buffered now and returns the errors of batches the
// server refused, or the error that stopped it (the points stay buffered).
func (s *Sender) Flush(ctx context.Context) error {
	err, retry := s.flush(ctx)
	return errors.Join(err, retry)
}

// flush sends batches until the buffer is empty. err joins the errors of
// refused (dropped) batches; retry is the error that stopped it, the batch
// back in the buffer.
func (s *Sender) flush(ctx context.Context) (err, retry error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	s.waiting = 0
	s.mu.Unlock()
	var errs []error
	for {
		s.mu.Lock()
		b := s.q.take(s.cfg.Batch)
		if b != nil {
			s.inflight = b.points(b.head, len(b.ends))
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
			over := s.q.n - s.q.bound.limit
			var lost int
			if over > 0 {
				lost = s.q.dropOldest(over)
				s.dropped.Add(uint64(lost))
			}
			s.mu.Unlock()
			s.failures.Add(1)
			if lost > 0 {
				s.rl.Warn("full", s.msgFull, "dropped", lost, "snapshots", s.cfg.Snapshots)
			}
			return errors.Join(errs...), retry
		}
		s.q.recycle(b)
		s.mu.Unlock()
	}
}

// send posts records [lo, hi) of b, splitting on 413. done is how many of
// them are finished with (sent or refused), always a prefix; refused joins
// the refusals (those points are dropped); retry, when not nil, is why the
// rest could not be sent now.
func (s *Sender) send(ctx context.Context, b *chunk, lo, hi int) (done int, refused, retry error) {
	pts := b.points(lo, hi)
	we, err := s.cfg.Post(ctx, b.records(lo, hi), pts)
	switch {
	case err != nil:
		return 0, nil, err
	case we == nil:
		s.sent.Add(uint64(pts))
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
		refused := pts
		if we.Partial() {
			refused = we.Refused
			s.sent.Add(uint64(pts - refused))
			s.partial.Add(1)
		}
		s.rejected.Add(uint64(refused))
		s.mu.Lock()
		found := false
		for i := range s.rejs {
			if s.rejs[i].Status == we.Status {
				s.rejs[i].Points += uint64(refused)
				s.rejs[i].Reason = we.Reason
				found = true
			}
		}
		if !found {
			s.rejs = append(s.rejs, Rejection{Status: we.Status, Points: uint64(refused), Reason: we.Reason})
		}
		s.mu.Unlock()
		return hi - lo, we, nil
	}
}

// Close stops the background sender (waiting for its request in flight)
// and sends what is buffered, retrying retriable failures with backoff
// until ctx ends. Points still buffered then are counted as Dropped and
// reported in the error, joined with the batches the server refused, in
// the background or now.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", s.cfg.Name, ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	select {
	case <-s.loopDone:
	case <-ctx.Done():
		// The loop is still inside a request (bounded by Post's timeout):
		// leave it to finish; what is buffered stays unsent.
		n := s.dropAll()
		return fmt.Errorf("%s: close: %d points not sent: %w", s.cfg.Name, n, ctx.Err())
	}
	s.mu.Lock()
	errs := s.bgErrs
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
		t := time.NewTimer(s.Backoff(attempt, retry))
		select {
		case <-ctx.Done():
			t.Stop()
			n := s.dropAll()
			errs = append(errs, fmt.Errorf("%s: close: %d points not delivered: %w", s.cfg.Name, n, errors.Join(retry, ctx.Err())))
			return errors.Join(errs...)
		case <-t.C:
		}
	}
}

func (s *Sender) dropAll() int {
	s.mu.Lock()
	n := s.q.dropOldest(s.q.n)
	s.mu.Unlock()
	s.dropped.Add(uint64(n))
	return n
}

// Request is one HTTP request of a Config.Post.
type Request struct {
	Client  *http.Client
	Name    string // the sink's, for errors
	URL     string
	Timeout time.Duration
	// Header sets the request's headers.
	Header func(http.Header)
	// Retryable says which non-2xx statuses are retried; nil means 429 and
	// every 5xx (remote_write's rule).
	Retryable func(status int) bool
	// Reason turns an error body into the reason; nil means Reason.
	Reason func(body []byte, contentType string) string
	// OK, when set, reads a 2xx answer's body.
	OK func(body []byte)
	// Body, when set, is given a non-2xx answer's body to read instead of
	// ReadBody (which it may call), for a sink that needs more of it.
	Body func(io.Reader) []byte
}

// Post is the HTTP half of a Config.Post: it posts body, bounded by
// r.Timeout, and turns a non-2xx answer into a *WriteError (Retry as
// r.Retryable says, with the Retry-After).
func (r *Request) Post(ctx context.Context, body []byte, points int) (*WriteError, error) {
	name, url, timeout, header := r.Name, r.URL, r.Timeout, r.Header
	client := r.Client
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	header(req.Header)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: write of %d points: %w", name, points, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if r.OK != nil {
			r.OK(ReadBody(resp.Body))
		}
		return nil, nil
	}
	var msg []byte
	if r.Body != nil {
		msg = r.Body(resp.Body)
	} else {
		msg = ReadBody(resp.Body)
	}
	why := Reason(msg)
	if r.Reason != nil {
		why = r.Reason(msg, resp.Header.Get("Content-Type"))
	}
	we := &WriteError{Sink: name, Status: resp.StatusCode, Reason: why, Points: points}
	retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5
	if r.Retryable != nil {
		retry = r.Retryable(resp.StatusCode)
	}
	if retry {
		we.Retry = true
		we.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return we, nil
}

// Body bounds: the head of an answer's body is kept, up to bodyHead bytes,
// and of a longer one its last bodyTail bytes too (InfluxDB ends a partial
// write's message, which quotes every line it refused, with the count),
// reading at most bodyMax in all.
const (
	bodyHead = 64 << 10
	bodyTail = 1 << 10
	bodyMax  = 64 << 20
)

// ReadBody reads an answer's body, to its end or bodyMax: its head and,
// when longer, " ... " and its tail.
func ReadBody(r io.Reader) []byte {
	r = io.LimitReader(r, bodyMax)
	msg, _ := io.ReadAll(io.LimitReader(r, bodyHead))
	if len(msg) < bodyHead {
		return msg
	}
	var tail [2 * bodyTail]byte
	n, more := 0, false
	for {
		k, err := r.Read(tail[n:])
		n += k
		more = more || k > 0
		if n == len(tail) {
			n = copy(tail[:], tail[bodyTail:])
		}
		if err != nil {
			break
		}
	}
	if !more {
		return msg
	}
	keep := tail[max(0, n-bodyTail):n]
	return append(append(msg, " ... "...), keep...)
}

// Reason is an error body as a one-line reason: trimmed, at most 512 bytes
// of valid UTF-8.
func Reason(body []byte) string {
	r := strings.TrimSpace(string(body))
	if r == "" {
		return "(no body)"
	}
	if len(r) > 512 {
		i := 512
		for i > 0 && !utf8.RuneStart(r[i]) {
			i--
		}
		r = r[:i] + "..."
	}
	return strings.ToValidUTF8(strings.ReplaceAll(r, "\n", " "), "\uFFFD")
}

// RetryAfter parses a Retry-After header: seconds or an HTTP date.
func RetryAfter(h string, now time.Time) time.Duration {
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
