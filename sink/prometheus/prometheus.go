// Package prometheus is a sink that serves the latest snapshot to Prometheus:
// a prometheus.Collector (github.com/prometheus/client_golang) that turns it
// into const metrics (fixed values made at each scrape, as
// prometheus.NewConstMetric makes them but sharing each container's label
// pairs between its series) with cAdvisor's names and labels
// (container_cpu_usage_seconds_total, container_memory_working_set_bytes,
// container_network_receive_bytes_total, ... labelled id, name, image), so
// that dashboards and alerts written for cAdvisor keep working, and an
// http.Handler that serves the same series alone, in the text exposition
// format it writes itself (WriteText).
//
// The library registers nothing anywhere: the host program registers the
// Collector in its own registry, or serves Handler. Every series, its type,
// unit and source is listed in docs/METRICS.md.
//
// Only the latest snapshot is served: a container that is gone from it is
// gone from the next scrape, and Prometheus marks its series stale. Metrics
// carry no timestamp of their own (Prometheus uses the scrape's time), which
// is what lets staleness work. Collect and Write are safe to call
// concurrently, and scrapes may run concurrently with each other: a scrape
// reads one whole snapshot, and a Write waits for the scrapes reading the
// snapshot it replaces.
//
// Labels: the container labels are those the sink.Tags allow-list names
// (default: id, name, image, runtime and, for pods, pod, namespace,
// container). As in cAdvisor, id is the container's cgroup path
// (/docker/<id>, /system.slice/docker-<id>.scope, ...) unless
// WithCgroupID(false) makes it the runtime's ID. Metrics per device,
// interface, ... add device, interface, ... labels as cAdvisor does. The
// labels must tell containers apart: an allow-list without id (or name) can
// give two containers the same series, which a registry refuses; Handler,
// which writes the exposition itself, serves both, and Prometheus keeps the
// first (counting the other as a duplicate sample).
//
// Label values from containers are sanitised as in every sink
// (sink.Sanitizer: invalid UTF-8 and control characters become U+FFFD,
// values and interfaces per namespace bounded by WithLimits, interfaces
// whose names become the same written once), when Write is given the
// snapshot: one interface renamed to invalid UTF-8 inside a container
// would otherwise make the whole page invalid, and a registry's Gather
// fail, for every container of the host. What was changed is counted
// (Sanitized).
//
// Limits: a limit that is not set is written as 0, cAdvisor's convention,
// for container_spec_memory_limit_bytes, container_spec_memory_swap_limit_bytes
// and container_threads_max; container_spec_cpu_quota is left out when no
// quota is set. Values the kernel did not provide are left out.
package prometheus

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("prometheus: sink closed")

type config struct {
	tags      sink.Tags
	limits    sink.Limits
	cgroupID  bool
	ifaceKeep func(string) bool
	log       *slog.Logger
}

// Option configures New.
type Option func(*config)

// WithTags sets the label allow-list (default sink.DefaultTags()).
func WithTags(t sink.Tags) Option { return func(c *config) { c.tags = t } }

// WithCgroupID sets what the id label holds: the cgroup path, as cAdvisor
// (default true), or the runtime's container ID.
func WithCgroupID(on bool) Option { return func(c *config) { c.cgroupID = on } }

// WithInterfaceFilter keeps only the interfaces for which keep returns true
// in the container_network_* series. The default keeps every interface,
// loopback included (traffic inside a container on lo is traffic too);
// netns.DefaultInterfaceFilter drops lo, veth*, docker* and nerdctl* as
// cAdvisor does.
func WithInterfaceFilter(keep func(name string) bool) Option {
	return func(c *config) { c.ifaceKeep = keep }
}

// WithLimits bounds label values and interfaces per namespace (default
// sink.DefaultLimits()).
func WithLimits(l sink.Limits) Option { return func(c *config) { c.limits = l } }

// WithLogger sets the logger (default: discard). Handler logs scrape errors
// to it.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Collector is a sink.Sink and a prometheus.Collector: Write keeps a copy of
// the snapshot, Collect serves it.
type Collector struct {
	cfg    config
	tagger *sink.Tagger
	idIdx  int // index of the id label, -1 if not exported
	nLabel int
	// The container_info labels: every tag (sink.Tags.Info).
	infoIDIdx int
	nInfo     int
	m         *metrics
	z         *sink.Sanitizer

	mu     sync.RWMutex // guards cur, closed
	cur    *served
	closed bool

	wmu   sync.Mutex // serialises Write; guards spare and departed
	spare *served
	// departed are the series of containers that left, kept from the
	// Write that brought them until a scrape has served them.
	departed []*departedSeries

	texts sync.Pool // *textScrape
	gzips sync.Pool // *gzip.Writer
}

var (
	_ sink.Sink             = (*Collector)(nil)
	_ prometheus.Collector  = (*Collector)(nil)
	_ sink.SanitizeReporter = (*Collector)(nil)
)

// served is a snapshot as scrapes serve it: a copy of the one Write was
// given, with each container's label values and interfaces sanitised.
type served struct {
	snap sink.Snapshot
	// vals holds the label values of container i at
	// [i*nLabel, (i+1)*nLabel), in the tagger's key order, the id the
	// cgroup path unless WithCgroupID(false).
	vals []string
	// ifs holds the interfaces written of container i at
	// [ifEnd[i-1], ifEnd[i]) (the filter and Limits applied).
	ifs   []sink.Interface
	ifEnd []int
	// infoVals holds container i's container_info label values at
	// [i*nInfo, (i+1)*nInfo) when container_info is written.
	infoVals []string
	// departed are the departed containers' series this snapshot serves.
	departed []*departedSeries
}

// departedSeries is the container_oom_events_total series of a container
// that left (sink.Departed): its label values, sanitised, and its count.
type departedSeries struct {
	vals   []string
	oom    float64
	added  time.Time
	served atomic.Bool // a scrape has served it
}

// departedMaxAge bounds how long a departed container's series waits for
// a scrape (when nothing scrapes the sink): past Prometheus's default
// lookback, 5 minutes, it would not count anyway.
const departedMaxAge = 10 * time.Minute

// prepare fills v's values and interfaces from v.snap.
func (c *Collector) prepare(v *served) {
	v.vals, v.ifs, v.ifEnd, v.infoVals = v.vals[:0], v.ifs[:0], v.ifEnd[:0], v.infoVals[:0]
	for i := range v.snap.Containers {
		s := &v.snap.Containers[i]
		if c.tagger.Info() {
			// The series' values are a subset of container_info's:
			// sanitised (and counted) once.
			lo := len(v.infoVals)
			v.infoVals = c.labelValues(v.infoVals, &s.Container, true)
			v.vals = c.seriesFromInfo(v.vals, v.infoVals[lo:])
		} else {
			v.vals = c.labelValues(v.vals, &s.Container, false)
		}
		if s.Net != nil && s.Net.Parts.Has(netns.PartDev) {
			v.ifs = c.z.Interfaces(v.ifs, s.Net.Interfaces, c.cfg.ifaceKeep)
		}
		v.ifEnd = append(v.ifEnd, len(v.ifs))
	}
}

// labelValues appends a container's label values (container_info's with
// info), the id the cgroup path unless WithCgroupID(false), sanitised.
func (c *Collector) labelValues(dst []string, ct *runtime.Container, info bool) []string {
	lo := len(dst)
	idIdx := c.idIdx
	if info {
		dst, idIdx = c.tagger.InfoValues(dst, ct), c.infoIDIdx
	} else {
		dst = c.tagger.Values(dst, ct)
	}
	if idIdx >= 0 && c.cfg.cgroupID && ct.CgroupPath != "" {
		dst[lo+idIdx] = ct.CgroupPath
	}
	for j := lo; j < len(dst); j++ {
		if !c.z.Clean(dst[j]) {
			dst[j] = c.z.Value(dst[j])
		}
	}
	return dst
}

// seriesFromInfo appends the series' label values, taken from a
// container's container_info values (InfoKeys order).
func (c *Collector) seriesFromInfo(dst, info []string) []string {
	if !c.tagger.InfoOnly() {
		return append(dst, info...)
	}
	keys, j := c.tagger.Keys(), 0
	for i, k := range c.tagger.InfoKeys() {
		if j < len(keys) && k == keys[j] {
			dst = append(dst, info[i])
			j++
		}
	}
	return dst
}

// keepDeparted updates c.departed for a Write of snap into v (c.wmu is
// held): it drops the series a scrape has served, and those too old, and
// adds snap's departed containers, but for one whose labels are a live
// container's in snap (restarted under the same ID and name: the live
// series wins, or the page would have the series twice).
func (c *Collector) keepDeparted(snap *sink.Snapshot, v *served) {
	now := time.Now()
	kept := c.departed[:0]
	for _, d := range c.departed {
		if !d.served.Load() && now.Sub(d.added) < departedMaxAge {
			kept = append(kept, d)
		}
	}
	clear(c.departed[len(kept):])
	c.departed = kept
	if len(snap.Departed) > 0 {
		live := make(map[string]bool, len(snap.Containers))
		for i := range snap.Containers {
			live[strings.Join(v.vals[i*c.nLabel:(i+1)*c.nLabel], "\xff")] = true
		}
		for i := range snap.Departed {
			d := &snap.Departed[i]
			n, ok := d.OOMKills.Get()
			if !ok {
				continue
			}
			vals := c.labelValues(make([]string, 0, c.nLabel), &d.Container, false)
			if live[strings.Join(vals, "\xff")] {
				continue
			}
			c.departed = append(c.departed, &departedSeries{vals: vals, oom: float64(n), added: now})
		}
	}
	v.departed = append(v.departed[:0], c.departed...)
}

// Sanitized returns what the Collector changed or left out of what
// containers gave it (sink.SanitizeReporter), counted at each Write.
func (c *Collector) Sanitized() sink.Sanitized { return c.z.Sanitized() }

// New returns a Collector serving nothing until the first Write.
func New(opts ...Option) (*Collector, error) {
	c := config{tags: sink.DefaultTags(), cgroupID: true, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	tg, err := sink.NewTagger(c.tags)
	if err != nil {
		return nil, err
	}
	col := &Collector{cfg: c, tagger: tg, idIdx: -1, nLabel: len(tg.Keys()), z: sink.NewSanitizer(c.limits)}
	for i, k := range tg.Keys() {
		if k == "id" {
			col.idIdx = i
		}
	}
	col.nInfo = len(tg.InfoKeys())
	col.infoIDIdx = slices.Index(tg.InfoKeys(), "id")
	col.m = newMetrics(tg.Keys(), tg.InfoKeys(), tg.Global())
	col.texts.New = func() any { return &textScrape{fams: make([]textFamily, len(col.m.fams))} }
	col.gzips.New = func() any { gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return gz }
	return col, nil
}

// Write keeps a copy of snap for the following scrapes, replacing the
// previous one. In steady state it allocates nothing.
func (c *Collector) Write(ctx context.Context, snap *sink.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.spare == nil {
		c.spare = new(served)
	}
	snap.CopyTo(&c.spare.snap)
	c.prepare(c.spare)
	c.keepDeparted(snap, c.spare)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cur, c.spare = c.spare, c.cur
	c.mu.Unlock()
	return nil
}

// Close drops the snapshot: later scrapes find no container series.
func (c *Collector) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.cur = nil
	c.mu.Unlock()
	return nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.m.all {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the const metrics of the latest
// snapshot. What it sends does not change after it returns, whatever Write
// does next.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collect(func(m prometheus.Metric) { ch <- m }, false)
}

// collect sends the latest snapshot's metrics. With once, send must be done
// with each metric when it returns: one scratch metric then serves them all.
func (c *Collector) collect(send func(prometheus.Metric), once bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cur == nil {
		return
	}
	cur := &c.cur.snap
	e := emitter{send: send, once: once, m: c.m, keys: c.tagger.Keys()}
	prevIf := 0
	for i := range cur.Containers {
		s := &cur.Containers[i]
		if c.tagger.Info() {
			e.keys = c.tagger.InfoKeys()
			vals := c.cur.infoVals[i*c.nInfo : (i+1)*c.nInfo]
			if !once {
				vals = append(make([]string, 0, c.nInfo), vals...)
			}
			e.start(vals, 1)
			e.emit(c.m.info, prometheus.GaugeValue, 1)
			e.keys = c.tagger.Keys()
		}
		vals := c.cur.vals[i*c.nLabel : (i+1)*c.nLabel]
		if !once {
			// Fresh storage: the metrics sent point into it and may
			// outlive the snapshot.
			vals = append(make([]string, 0, c.nLabel), vals...)
		}
		ifs := c.cur.ifs[prevIf:c.cur.ifEnd[i]]
		prevIf = c.cur.ifEnd[i]
		e.start(vals, seriesBound(s, len(ifs)))
		e.sample(s, cur, ifs)
	}
	for _, d := range c.cur.departed {
		e.start(d.vals, 1) // never changed after Write: shared by the metrics sent
		e.emit(c.m.oomEvents, prometheus.CounterValue, d.oom)
		d.served.Store(true)
	}
	if cur.Self != nil {
		c.m.self(send, cur.Self)
	}
}

// Handler returns an http.Handler that serves this Collector alone in the
// text exposition format (version 0.0.4, which every Prometheus reads),
// gzipped when the scraper accepts it. It writes the snapshot's series
// itself, family by family, instead of going through a registry: a
// registry's Gather makes a protobuf message per series, checks, hashes and
// sorts them, which cost ~100 ms and 42 MB of garbage per scrape of 1,000
// containers. Registered in a registry of your own, the Collector is served
// by promhttp as usual.
func (c *Collector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", textContentType)
		var out io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			gz := c.gzips.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				if err := gz.Close(); err != nil {
					c.cfg.log.Debug("prometheus: scrape", "err", err)
				}
				gz.Reset(io.Discard)
				c.gzips.Put(gz)
			}()
			out = gz
		}
		if err := c.WriteText(out); err != nil {
			c.cfg.log.Debug("prometheus: scrape", "err", err)
		}
	})
}
