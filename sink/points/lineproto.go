package points

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/sink"
)

// Encoder encodes snapshots as InfluxDB line protocol, one line per point,
// tag keys in lexical order (how InfluxDB stores them, so it need not sort
// them). Empty tag values are left out (line protocol has none).
//
// Tags, the only text that comes from outside (container names, images,
// labels, interface names), are sanitised first (a sink.Sanitizer for line
// protocol: valid UTF-8, no control characters, no trailing backslash,
// bounded length; what it changed is counted), then checked and escaped by
// github.com/influxdata/line-protocol/v2's Encoder, once per container for
// the container's tags; field values are formatted by its Value type. The
// measurement names and field keys are this package's constants, valid
// line protocol that needs no escaping, and are copied as they are.
//
// It is not safe for concurrent use; reuse one to encode without
// allocating.
type Encoder struct {
	w   *Walker
	buf []byte
	// ends is the offset past each line, appended by Append.
	ends []int
	mul  int64 // nanoseconds per precision unit

	// scratch checks and escapes tags.
	scratch lineprotocol.Encoder
	// The current container's tags: "m" then the escaped ",key=value"
	// pieces in tagSec, piece i ending at tagEnds[i], with key tagKeys[i];
	// tagErr when one can not be encoded (its points are then left out).
	tagSec  []byte
	tagEnds []int
	tagKeys []string
	tagErr  error
	// extra holds "m" and the escaped ",key=value" of a point's own tag;
	// extraCache the escaped ",key=value" of those seen before.
	extra      []byte
	extraCache map[sink.Tag]string

	// The current point: nfields is the number of fields written, -1
	// when the point is being left out.
	measurement string
	extraTag    sink.Tag
	nfields     int

	// tsSuffix is " <timestamp>\n" for tsTime.
	tsTime   time.Time
	tsSuffix []byte

	errs     int
	firstErr error
}

// NewEncoder returns an Encoder that tags points as tg says and writes
// timestamps with precision p (lineprotocol.Nanosecond, Microsecond,
// Millisecond or Second), its tag values sanitised by z, which should come
// from sink.NewLineProtocolSanitizer (nil: one with the default limits).
func NewEncoder(tg *sink.Tagger, p lineprotocol.Precision, z *sink.Sanitizer) *Encoder {
	if z == nil {
		z = sink.NewLineProtocolSanitizer(sink.Limits{})
	}
	return &Encoder{w: NewWalker(tg, z), mul: int64(p.Duration())}
}

// Sanitized returns what the Encoder's sanitizer changed so far.
func (e *Encoder) Sanitized() sink.Sanitized { return e.w.z.Sanitized() }

// Append encodes s and appends the lines to dst. It returns the extended
// buffer and, appended to ends, the offset just past each new line's
// newline (so line k is out[ends[k-1]:ends[k]]). A point that can not be
// encoded (a tag value with a control character, invalid UTF-8 or a
// trailing backslash) is left out and counted in skipped; err describes the
// first one.
func (e *Encoder) Append(dst []byte, ends []int, s *sink.Snapshot) (out []byte, outEnds []int, skipped int, err error) {
	e.buf, e.ends = dst, ends
	e.errs, e.firstErr = 0, nil
	e.w.Walk(s, e)
	out, outEnds = e.buf, e.ends
	e.buf, e.ends = nil, nil
	return out, outEnds, e.errs, e.firstErr
}

// AppendEvent is Append for one event's point (Walker.WalkEvent).
func (e *Encoder) AppendEvent(dst []byte, ends []int, ev *sink.Event) (out []byte, outEnds []int, skipped int, err error) {
	e.buf, e.ends = dst, ends
	e.errs, e.firstErr = 0, nil
	e.w.WalkEvent(ev, e)
	out, outEnds = e.buf, e.ends
	e.buf, e.ends = nil, nil
	return out, outEnds, e.errs, e.firstErr
}

// escapeTags runs tags through the line-protocol encoder and returns, in
// sec's storage, "m" and the escaped tag section (",k=v,k=v"), and appended
// to tagEnds and keys the end of each tag in it and its key.
func (e *Encoder) escapeTags(sec []byte, tagEnds []int, keys []string, tags []sink.Tag) ([]byte, []int, []string, error) {
	if allPlain(tags) {
		// Nothing to check or escape: what the line-protocol encoder
		// would produce, without its per-byte escaping machinery.
		b := append(sec[:0], 'm')
		for _, tg := range tags {
			if tg.Value == "" {
				continue
			}
			b = append(b, ',')
			b = append(b, tg.Key...)
			b = append(b, '=')
			b = append(b, tg.Value...)
			tagEnds = append(tagEnds, len(b))
			keys = append(keys, tg.Key)
		}
		return b, tagEnds, keys, nil
	}
	sc := &e.scratch
	sc.SetBuffer(sec[:0])
	sc.StartLine("m")
	for _, tg := range tags {
		if tg.Value == "" {
			continue
		}
		sc.AddTag(tg.Key, tg.Value)
		tagEnds = append(tagEnds, len(sc.Bytes()))
		keys = append(keys, tg.Key)
	}
	b, err := sc.Bytes(), sc.Err()
	sc.SetBuffer(nil)
	if err != nil {
		return b[:0], tagEnds[:0], keys[:0], err
	}
	return b, tagEnds, keys, nil
}

// allPlain reports whether every tag key and value is printable ASCII
// without a character line protocol escapes (',', '=', ' ') or refuses
// ('\\' at the end): valid as it is. Anything else goes through the
// line-protocol encoder.
func allPlain(tags []sink.Tag) bool {
	for _, tg := range tags {
		if !plain(tg.Key) || !plain(tg.Value) {
			return false
		}
	}
	return true
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == '=' || c == '\\' {
			return false
		}
	}
	return true
}

// Container implements Visitor.
func (e *Encoder) Container(tags []sink.Tag) {
	e.tagSec, e.tagEnds, e.tagKeys, e.tagErr = e.escapeTags(e.tagSec, e.tagEnds[:0], e.tagKeys[:0], tags)
}

// Begin implements Visitor.
func (e *Encoder) Begin(measurement string, extra sink.Tag) {
	e.measurement, e.extraTag, e.nfields = measurement, extra, 0
}

// header writes the measurement and tags of the current point, before its
// first field; false when they can not be encoded.
func (e *Encoder) header() bool {
	if e.tagErr != nil {
		e.fail(e.measurement, e.tagErr)
		return false
	}
	var extraPiece string
	if x := e.extraTag; x.Key != "" && x.Value != "" {
		// Interface and device names repeat from container to container:
		// escape each once.
		piece, ok := e.extraCache[x]
		if !ok {
			sc := &e.scratch
			sc.SetBuffer(e.extra[:0])
			sc.StartLine("m")
			sc.AddTag(x.Key, x.Value)
			var err error
			e.extra, err = sc.Bytes(), sc.Err()
			sc.SetBuffer(nil)
			if err != nil {
				e.fail(e.measurement, err)
				return false
			}
			piece = string(e.extra[1:])
			if e.extraCache == nil || len(e.extraCache) >= 4096 {
				e.extraCache = make(map[sink.Tag]string)
			}
			e.extraCache[x] = piece
		}
		extraPiece = piece
	}
	b := append(e.buf, e.measurement...)
	start := 1 // past the "m" of tagSec
	for i, end := range e.tagEnds {
		if extraPiece != "" && e.extraTag.Key < e.tagKeys[i] {
			b = append(b, extraPiece...)
			extraPiece = ""
		}
		b = append(b, e.tagSec[start:end]...)
		start = end
	}
	e.buf = append(b, extraPiece...)
	return true
}

// field starts a field: the separator and key. False when the point is
// not written.
func (e *Encoder) field(key string) bool {
	switch {
	case e.nfields > 0:
		e.buf = append(e.buf, ',')
	case e.nfields < 0:
		return false
	case !e.header():
		e.nfields = -1
		return false
	default:
		e.buf = append(e.buf, ' ')
	}
	e.nfields++
	e.buf = append(e.buf, key...)
	e.buf = append(e.buf, '=')
	return true
}

// Int implements Visitor.
func (e *Encoder) Int(key string, v int64) {
	if e.nfields > 0 { // the common case, kept short
		b := append(e.buf, ',')
		b = append(b, key...)
		b = append(b, '=')
		b = appendInt(b, v)
		e.buf = append(b, 'i')
		e.nfields++
		return
	}
	if e.field(key) {
		// What lineprotocol.IntValue(v).AppendBytes does, without its kind
		// checks: this is the hot loop.
		e.buf = appendInt(e.buf, v)
		e.buf = append(e.buf, 'i')
	}
}

// Float implements Visitor.
func (e *Encoder) Float(key string, v float64) {
	fv, ok := lineprotocol.FloatValue(v)
	if !ok || !e.field(key) {
		return
	}
	if v == 0 && !math.Signbit(v) {
		// Most PSI averages are 0: what AppendBytes writes for 0, without
		// the shortest-float search.
		e.buf = append(e.buf, '0')
		return
	}
	e.buf = fv.AppendBytes(e.buf)
}

// End implements Visitor.
func (e *Encoder) End(t time.Time) {
	if e.nfields <= 0 {
		return
	}
	if !t.Equal(e.tsTime) || e.tsSuffix == nil {
		// Every point of a snapshot has the same time: format it once.
		e.tsTime = t
		e.tsSuffix = e.tsSuffix[:0]
		if !t.IsZero() {
			ts := t.UnixNano()
			if e.mul > 1 {
				ts /= e.mul
			}
			e.tsSuffix = append(e.tsSuffix, ' ')
			e.tsSuffix = strconv.AppendInt(e.tsSuffix, ts, 10)
		}
		e.tsSuffix = append(e.tsSuffix, '\n')
	}
	e.buf = append(e.buf, e.tsSuffix...)
	e.ends = append(e.ends, len(e.buf))
}

func (e *Encoder) fail(measurement string, err error) {
	e.errs++
	if e.firstErr == nil {
		e.firstErr = fmt.Errorf("points: %s: %w", measurement, err)
	}
}
