// Package stdout is a sink that writes snapshots to any io.Writer (os.Stdout,
// a file, a pipe) as InfluxDB line protocol or as JSON lines, one line per
// point, synchronously: Write returns once the snapshot is written.
//
// It imports neither the InfluxDB nor the Prometheus sink: only the point
// schema of sink/points (measurements, tags and fields as docs/METRICS.md
// lists them).
//
// # JSON lines
//
// Each line is one JSON object, its keys in this order:
//
//		{"name":"container_cpu","time":"2026-11-28T07:00:00Z","tags":{"id":"…","name":"web"},"fields":{"usage_ns":3000000000,"limit_cores":0.5}}
//
//	  - name: the measurement (string).
//	  - time: the snapshot's time, RFC 3339 with nanoseconds, UTC (string).
//	  - tags: the container's allow-listed tags and the point's own tag
//	    (device, interface, page_size, resource), sorted by key; tags with an
//	    empty value are left out (object of strings).
//	  - fields: the point's fields in schema order; integers are JSON
//	    integers (signed 64-bit), the few floats (limit_cores, PSI averages)
//	    are JSON numbers; a value the kernel did not provide is absent
//	    (object of numbers).
//
// Tag values are sanitised as in every sink (sink.Sanitizer: invalid UTF-8
// and control characters become U+FFFD, values and interfaces per
// namespace are bounded by WithLimits), and written as valid JSON.
package stdout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
)

// Format is the output format.
type Format int

const (
	// LineProtocol is InfluxDB line protocol, timestamps in nanoseconds.
	LineProtocol Format = iota
	// JSONLines is one JSON object per point (see the package doc).
	JSONLines
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("stdout: sink closed")

type config struct {
	format Format
	tags   sink.Tags
	limits sink.Limits
	log    *slog.Logger
}

// Option configures New.
type Option func(*config)

// WithFormat picks the output format (default LineProtocol).
func WithFormat(f Format) Option { return func(c *config) { c.format = f } }

// WithTags sets the tag allow-list (default sink.DefaultTags()).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithLimits bounds tag values and interfaces per namespace (default
// sink.DefaultLimits()).
func WithLimits(l sink.Limits) Option { return func(c *config) { c.limits = l } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Sink writes snapshots to an io.Writer. It is safe for concurrent use; each
// snapshot is written with one Write call on the io.Writer, so snapshots
// never interleave.
type Sink struct {
	mu     sync.Mutex
	w      io.Writer
	format Format
	lp     *points.Encoder
	js     *jsonEncoder
	z      *sink.Sanitizer
	buf    []byte
	ends   []int
	closed bool
	log    *slog.Logger
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.SanitizeReporter = (*Sink)(nil)
	_ sink.EventWriter      = (*Sink)(nil)
)

// New returns a sink that writes to w. The sink does not close w.
func New(w io.Writer, opts ...Option) (*Sink, error) {
	c := config{tags: sink.DefaultTags(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	if c.format != LineProtocol && c.format != JSONLines {
		return nil, errors.New("stdout: unknown format")
	}
	tg, err := sink.NewTagger(c.tags)
	if err != nil {
		return nil, err
	}
	s := &Sink{w: w, format: c.format, log: c.log}
	if c.format == LineProtocol {
		s.z = sink.NewLineProtocolSanitizer(c.limits)
		s.lp = points.NewEncoder(tg, lineprotocol.Nanosecond, s.z)
	} else {
		s.z = sink.NewSanitizer(c.limits)
		s.js = &jsonEncoder{w: points.NewWalker(tg, s.z)}
	}
	return s, nil
}

// Sanitized returns what the sink changed or left out of what containers
// gave it (sink.SanitizeReporter).
func (s *Sink) Sanitized() sink.Sanitized { return s.z.Sanitized() }

// Write encodes snap and writes it to the io.Writer in one call. Points that
// can not be encoded are left out and reported in the error, after the rest
// is written.
func (s *Sink) Write(ctx context.Context, snap *sink.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var encErr error
	if s.lp != nil {
		var n int
		s.buf, s.ends, n, encErr = s.lp.Append(s.buf[:0], s.ends[:0], snap)
		if n > 0 {
			s.log.Warn("stdout: points left out", "count", n, "err", encErr)
		}
	} else {
		s.buf = s.js.Append(s.buf[:0], snap)
	}
	return s.flush(encErr)
}

// WriteEvent writes an event's point (sink.EventWriter; see
// points.Walker.WalkEvent) at once, between snapshots' points, never
// inside one.
func (s *Sink) WriteEvent(ctx context.Context, e *sink.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var encErr error
	if s.lp != nil {
		var n int
		s.buf, s.ends, n, encErr = s.lp.AppendEvent(s.buf[:0], s.ends[:0], e)
		if n > 0 {
			s.log.Warn("stdout: event point left out", "err", encErr)
		}
	} else {
		s.buf = s.js.AppendEvent(s.buf[:0], e)
	}
	return s.flush(encErr)
}

// flush writes s.buf (s.mu is held).
func (s *Sink) flush(encErr error) error {
	if len(s.buf) == 0 {
		return encErr
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return errors.Join(err, encErr)
	}
	return encErr
}

// Close marks the sink closed; it has nothing buffered. It does not close
// the io.Writer.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// jsonEncoder writes points as JSON lines.
type jsonEncoder struct {
	w   *points.Walker
	buf []byte
	// The current container's tags as JSON members, "k":"v" each, tagEnds
	// the end of each in tagSec and tagKeys its key.
	tagSec  []byte
	tagEnds []int
	tagKeys []string
	// The current point, and the snapshot's time in UTC.
	measurement string
	extra       sink.Tag
	nfields     int
	t           time.Time
}

// Append encodes snap as JSON lines appended to dst.
func (j *jsonEncoder) Append(dst []byte, snap *sink.Snapshot) []byte {
	j.buf, j.t = dst, snap.Time.UTC()
	j.w.Walk(snap, j)
	out := j.buf
	j.buf = nil
	return out
}

// Container implements points.Visitor.
// AppendEvent appends an event's point as a JSON line to dst.
func (j *jsonEncoder) AppendEvent(dst []byte, e *sink.Event) []byte {
	j.buf, j.t = dst, e.Time.UTC()
	j.w.WalkEvent(e, j)
	out := j.buf
	j.buf = nil
	return out
}

func (j *jsonEncoder) Container(tags []sink.Tag) {
	j.tagSec, j.tagEnds, j.tagKeys = j.tagSec[:0], j.tagEnds[:0], j.tagKeys[:0]
	for _, tg := range tags {
		if tg.Value == "" {
			continue
		}
		j.tagSec = appendJSONString(j.tagSec, tg.Key)
		j.tagSec = append(j.tagSec, ':')
		j.tagSec = appendJSONString(j.tagSec, tg.Value)
		j.tagEnds = append(j.tagEnds, len(j.tagSec))
		j.tagKeys = append(j.tagKeys, tg.Key)
	}
}

// Begin implements points.Visitor.
func (j *jsonEncoder) Begin(measurement string, extra sink.Tag) {
	j.measurement, j.extra, j.nfields = measurement, extra, 0
}

// header writes the point's name, time and tags before its first field.
func (j *jsonEncoder) header() {
	b := append(j.buf, `{"name":`...)
	b = appendJSONString(b, j.measurement)
	b = append(b, `,"time":"`...)
	b = j.t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","tags":{`...)
	extra := j.extra
	first := true
	extraTag := func(b []byte) []byte {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, extra.Key)
		b = append(b, ':')
		return appendJSONString(b, extra.Value)
	}
	extraDone := extra.Key == "" || extra.Value == ""
	start := 0
	for i, end := range j.tagEnds {
		if !extraDone && extra.Key < j.tagKeys[i] {
			b = extraTag(b)
			extraDone = true
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, j.tagSec[start:end]...)
		start = end
	}
	if !extraDone {
		b = extraTag(b)
	}
	j.buf = append(b, `},"fields":{`...)
}

func (j *jsonEncoder) field(key string) {
	if j.nfields == 0 {
		j.header()
	} else {
		j.buf = append(j.buf, ',')
	}
	j.nfields++
	j.buf = append(j.buf, '"')
	j.buf = append(j.buf, key...) // the schema's keys need no escaping
	j.buf = append(j.buf, '"', ':')
}

// Int implements points.Visitor.
func (j *jsonEncoder) Int(key string, v int64) {
	j.field(key)
	j.buf = appendInt(j.buf, v)
}

// Float implements points.Visitor.
func (j *jsonEncoder) Float(key string, v float64) {
	j.field(key)
	j.buf = appendJSONFloat(j.buf, v)
}

// End implements points.Visitor.
func (j *jsonEncoder) End(time.Time) {
	if j.nfields > 0 {
		j.buf = append(j.buf, "}}\n"...)
	}
}
