package prometheus

import (
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// textContentType is the text exposition format's media type.
const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// family is a metric family's name and help, as the text exposition
// writes them.
type family struct{ name, help string }

// textFamily is one family's series lines in one scrape.
type textFamily struct {
	lines []byte
	gauge bool
}

// textScrape is the buffers of one text scrape, pooled: in steady state a
// scrape reuses them and allocates only what the emitter does per
// container (its label pairs).
type textScrape struct {
	fams []textFamily // by metrics.fams index
	head []byte       // a family's HELP and TYPE lines
	dm   dto.Metric   // for the const metrics of the self series
}

// WriteText writes the latest snapshot's series to w in the text
// exposition format (version 0.0.4): every family that has series, with
// its HELP and TYPE lines, in a fixed order (the containers' in the
// snapshot's). It is what Handler serves.
func (c *Collector) WriteText(w io.Writer) error {
	ts := c.texts.Get().(*textScrape)
	defer c.texts.Put(ts)
	for i := range ts.fams {
		ts.fams[i].lines = ts.fams[i].lines[:0]
	}
	c.collect(func(m prometheus.Metric) { ts.add(c.m, m) }, true)
	for i := range ts.fams {
		f := &ts.fams[i]
		if len(f.lines) == 0 {
			continue
		}
		name := c.m.fams[i].name
		h := append(ts.head[:0], "# HELP "...)
		h = append(h, name...)
		h = append(h, ' ')
		h = appendEscaped(h, c.m.fams[i].help, false)
		h = append(h, "\n# TYPE "...)
		h = append(h, name...)
		if f.gauge {
			h = append(h, " gauge\n"...)
		} else {
			h = append(h, " counter\n"...)
		}
		ts.head = h
		if _, err := w.Write(h); err != nil {
			return err
		}
		if _, err := w.Write(f.lines); err != nil {
			return err
		}
	}
	return nil
}

// add appends one series line to its family.
func (ts *textScrape) add(m *metrics, pm prometheus.Metric) {
	var labels []*dto.LabelPair
	var v float64
	var gauge bool
	if x, ok := pm.(*metric); ok {
		labels, v, gauge = x.labels, x.val, x.gauge
	} else { // the self series: client_golang's const metrics
		ts.dm.Reset()
		if err := pm.Write(&ts.dm); err != nil {
			return
		}
		labels = ts.dm.Label
		switch {
		case ts.dm.Gauge != nil:
			v, gauge = ts.dm.Gauge.GetValue(), true
		case ts.dm.Counter != nil:
			v = ts.dm.Counter.GetValue()
		default:
			return
		}
	}
	i, ok := m.famIdx[pm.Desc()]
	if !ok {
		return
	}
	f := &ts.fams[i]
	f.gauge = gauge
	b := append(f.lines, m.fams[i].name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for j, l := range labels {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, l.GetName()...)
			b = append(b, '=', '"')
			b = appendEscaped(b, l.GetValue(), true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	f.lines = append(b, '\n')
}

// appendEscaped escapes a label value (backslash, double quote, newline)
// or a help text (backslash, newline) as the text format requires.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !strings.ContainsAny(s, "\\\"\n") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\':
			b = append(b, '\\', '\\')
		case ch == '\n':
			b = append(b, '\\', 'n')
		case ch == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, ch)
		}
	}
	return b
}

// appendFloat writes a sample value as client_golang's text encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, '-', '1')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (and
// does not refuse it with q=0).
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
