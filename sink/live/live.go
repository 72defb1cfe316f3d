// Package live keeps the last few minutes of every container's figures in
// memory and serves them to a person and to tools: [Sink] holds a bounded
// ring of recent points per container, and its [Sink.Handler] serves a live
// page (a sortable table of the containers and per-container charts of CPU,
// memory, network and PSI, drawn on a canvas by the page's own script) and
// the JSON API the page reads (docs/LIVE.md gives its schema).
//
// Everything the page needs is embedded in the package (embed): it loads
// nothing from the network. Every string a container controls (its name,
// image, labels, interface names) is sanitised as in every sink
// (sink.Sanitizer) and set as text by the page, never as markup; the page
// is served with a Content-Security-Policy that allows no inline script.
// The handler answers GET and HEAD only.
//
// Rates (CPU %, network bytes per second, throttled share) are computed as
// snapshots arrive, from the counters of consecutive snapshots: a
// container's first point has none, nor has a point whose counter went
// backwards (a restart, an interface gone).
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/ratelog"
	"github.com/metricsd/metricsd/sink"
)

// Defaults of the ring's bounds.
const (
	// DefaultPoints is the default number of points kept per container:
	// 5 minutes at a 1 s interval, 50 at 10 s.
	DefaultPoints = 300
	// DefaultMaxContainers is the default number of containers kept.
	DefaultMaxContainers = 1024
)

// PointBytes is the size of one stored point (see [Sink]): a time and eight
// float32 figures.
const PointBytes = 36

type options struct {
	points, maxContainers int
	limits                sink.Limits
	log                   *slog.Logger
}

// Option configures a Sink.
type Option func(*options) error

// WithPoints sets how many points are kept per container (default
// DefaultPoints); older points are overwritten. It must be at least 2.
func WithPoints(n int) Option {
	return func(o *options) error {
		if n < 2 {
			return fmt.Errorf("live: WithPoints(%d): want at least 2", n)
		}
		o.points = n
		return nil
	}
}

// WithMaxContainers bounds the containers kept (default
// DefaultMaxContainers). Past it, a departed container still in the ring
// makes room for a new one; when none has departed, the new container is
// not kept: its points are counted (Dropped) and logged at Warn, once a
// minute. It must be positive.
func WithMaxContainers(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("live: WithMaxContainers(%d): want at least 1", n)
		}
		o.maxContainers = n
		return nil
	}
}

// WithLimits bounds the strings containers give (sink.Limits; a zero Limits
// is sink.DefaultLimits).
func WithLimits(l sink.Limits) Option {
	return func(o *options) error { o.limits = l; return nil }
}

// WithLogger sets the logger (default: discard). A nil logger is an error.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("live: WithLogger(nil)")
		}
		o.log = l
		return nil
	}
}

// Sink is a sink.Sink that keeps, per container, a ring of its last points
// (WithPoints, at most WithMaxContainers containers) and the figures of its
// last snapshot, for [Sink.Handler] to serve. It is safe for use by several
// goroutines; Write takes a lock the handler takes too, for the time it
// copies what it answers.
//
// A point is PointBytes bytes: its time (deciseconds since the first
// snapshot, as a uint32: 13 years) and, as float32, CPU % of one core,
// memory working set, network receive and transmit bytes per second, PIDs,
// and the PSI "some" avg10 of CPU, memory and I/O. A container's ring
// grows as points come, up to WithPoints, and is then overwritten in
// place. A container that leaves is shown as departed until its last point
// is as old as a full ring (WithPoints times the interval), then removed.
// BenchmarkRingBytes measures what a full ring costs with its container's
// figures (docs/BENCHMARKS.md).
type Sink struct {
	o   options
	z   *sink.Sanitizer
	log *ratelog.Logger

	mu        sync.Mutex
	epoch     time.Time // the first snapshot's time: points' times count from it
	last      time.Time // the last snapshot's time
	interval  time.Duration
	snapshots uint64
	nextRef   uint64
	series    map[key]*series
	dropped   uint64 // points not kept: their container past WithMaxContainers
	refused   int    // containers not kept at the last snapshot
	self      *sink.Self
	closed    bool
}

type key struct{ runtime, namespace, id string }

// New returns a Sink.
func New(opts ...Option) (*Sink, error) {
	o := options{points: DefaultPoints, maxContainers: DefaultMaxContainers, log: slog.New(slog.DiscardHandler)}
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Sink{o: o, z: sink.NewSanitizer(o.limits), log: ratelog.New(o.log, time.Minute), series: map[key]*series{}}, nil
}

// point is one stored point; figures the kernel did not give, and rates
// that can not be computed, are NaN.
type point struct {
	t                        uint32 // deciseconds since Sink.epoch
	cpu, mem, rx, tx, pids   float32
	psiCPU, psiMemory, psiIO float32
}

// series is one container's ring and its last figures.
type series struct {
	ref  uint64
	info info
	gone time.Time // when it was first missing from a snapshot; zero while present

	pts  []point // the ring: grows to its capacity, then head is the oldest
	head int

	// The previous snapshot's counters, for rates.
	prevT                  time.Time
	prevCPU                cgroup.Value
	prevPeriods, prevThrot cgroup.Value
	prevRx, prevTx         uint64
	prevIfaces             int // interfaces summed into prevRx/prevTx; -1: none
	now                    current
}

// info is what a container is, sanitised.
type info struct {
	id, name, runtime, namespace, image string
	podName, podNamespace               string
	labels                              []sink.Tag
	interfaces                          []string
	rawName, rawImage                   string // as the runtime gave them, to see a change
}

// current is a container's figures at the last snapshot it was in.
type current struct {
	cpuPercent, throttledPercent float64 // NaN when not computed
	cpuLimit                     cgroup.Value
	cpuLimitCores                float64
	memUsage, memWS, memLimit    cgroup.Value
	pids, pidsLimit              cgroup.Value
	oomKills                     cgroup.Value
	throttledPeriods             cgroup.Value
	throttledNS                  cgroup.Value
	rxRate, txRate               float64
	rxBytes, txBytes             uint64
	netState                     sink.NetState
	netCarrier                   string
	psi                          [3]float64 // NaN when unavailable
}

var nan32 = float32(math.NaN())

// Write records a snapshot. It does not keep s.
func (k *Sink) Write(ctx context.Context, s *sink.Snapshot) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("live: Write after Close")
	}
	if k.snapshots == 0 {
		k.epoch = s.Time
	} else if d := s.Time.Sub(k.last); d > 0 {
		k.interval = d
	}
	k.last = s.Time
	k.snapshots++
	if s.Self != nil {
		if k.self == nil {
			k.self = new(sink.Self)
		}
		errs := append(k.self.Errors[:0], s.Self.Errors...)
		*k.self = *s.Self
		k.self.Errors = errs
	}
	t := uint32(min(max(s.Time.Sub(k.epoch)/(100*time.Millisecond), 0), math.MaxUint32))
	refused := 0
	for i := range s.Containers {
		smp := &s.Containers[i]
		c := &smp.Container
		kk := key{c.Runtime, c.Namespace, c.ID}
		se := k.series[kk]
		if se == nil {
			if len(k.series) >= k.o.maxContainers && !k.evictDeparted() {
				refused++
				continue
			}
			k.nextRef++
			se = &series{ref: k.nextRef, prevIfaces: -1}
			se.pts = make([]point, 0, min(k.o.points, 16))
			k.series[kk] = se
			se.info = k.describe(smp)
		} else if c.Name != se.info.rawName || c.Image != se.info.rawImage {
			se.info = k.describe(smp)
		} else if smp.Net != nil && len(smp.Net.Interfaces) != len(se.info.interfaces) {
			se.info.interfaces = k.interfaces(smp)
		}
		if !se.gone.IsZero() { // back: its counters start again
			se.gone = time.Time{}
			se.prevT = time.Time{}
		}
		se.add(k.o.points, t, s.Time, smp)
	}
	if refused > 0 {
		k.dropped += uint64(refused)
		k.log.Warn("full", "live: containers not kept: the ring holds its maximum", "not_kept", refused, "max_containers", k.o.maxContainers)
	}
	k.refused = refused
	// Containers not in this snapshot have departed; one whose last point
	// is as old as a full ring leaves.
	span := time.Duration(k.o.points) * k.interval
	for kk, se := range k.series {
		if se.prevT.Equal(s.Time) {
			continue
		}
		if se.gone.IsZero() {
			se.gone = s.Time
		}
		if k.interval > 0 && s.Time.Sub(se.prevT) >= span {
			delete(k.series, kk)
		}
	}
	return nil
}

// evictDeparted removes the departed container seen longest ago, if any,
// and reports whether it removed one.
func (k *Sink) evictDeparted() bool {
	var oldest key
	var at time.Time
	for kk, se := range k.series {
		if !se.gone.IsZero() && (at.IsZero() || se.prevT.Before(at)) {
			oldest, at = kk, se.prevT
		}
	}
	if at.IsZero() {
		return false
	}
	delete(k.series, oldest)
	return true
}

func (k *Sink) describe(smp *sink.Sample) info {
	c := &smp.Container
	in := info{
		id: k.z.Value(c.ID), name: k.z.Value(c.Name), runtime: k.z.Value(c.Runtime),
		namespace: k.z.Value(c.Namespace), image: k.z.Value(c.Image),
		rawName: c.Name, rawImage: c.Image,
	}
	if c.Pod != nil {
		in.podName, in.podNamespace = k.z.Value(c.Pod.Name), k.z.Value(c.Pod.Namespace)
	}
	for lk, lv := range c.Labels {
		in.labels = append(in.labels, sink.Tag{Key: k.z.Value(lk), Value: k.z.Value(lv)})
	}
	sort.Slice(in.labels, func(i, j int) bool { return in.labels[i].Key < in.labels[j].Key })
	in.interfaces = k.interfaces(smp)
	return in
}

func (k *Sink) interfaces(smp *sink.Sample) []string {
	if smp.Net == nil {
		return nil
	}
	var names []string
	for _, i := range k.z.Interfaces(nil, smp.Net.Interfaces, nil) {
		names = append(names, i.Name)
	}
	return names
}

// add appends the sample's point to the ring and updates the series'
// current figures and counters.
func (se *series) add(capacity int, t uint32, now time.Time, smp *sink.Sample) {
	cg := &smp.Cgroup
	cur := &se.now
	dt := now.Sub(se.prevT).Seconds()
	first := se.prevT.IsZero() || dt <= 0
	rate := func(v, prev cgroup.Value) (float64, bool) {
		if first || v.State != cgroup.Known || prev.State != cgroup.Known || v.V < prev.V {
			return math.NaN(), false
		}
		return float64(v.V-prev.V) / dt, true
	}
	cur.cpuPercent, _ = rate(cg.CPU.Usage, se.prevCPU)
	cur.cpuPercent = cur.cpuPercent / 1e9 * 100
	cur.throttledPercent = math.NaN()
	if p, ok := rate(cg.CPU.Periods, se.prevPeriods); ok && p > 0 {
		if th, ok := rate(cg.CPU.ThrottledPeriods, se.prevThrot); ok {
			cur.throttledPercent = th / p * 100
		}
	}
	lim, st := cg.CPU.LimitCores()
	cur.cpuLimit = cgroup.Value{State: st}
	cur.cpuLimitCores = lim
	cur.memUsage, cur.memWS, cur.memLimit = cg.Memory.Usage, cg.Memory.WorkingSet, cg.Memory.Limit
	cur.pids, cur.pidsLimit = cg.Pids.Current, cg.Pids.Limit
	cur.oomKills = cg.Memory.Events.OOMKill
	cur.throttledPeriods, cur.throttledNS = cg.CPU.ThrottledPeriods, cg.CPU.ThrottledTime
	for i, p := range [3]*cgroup.PSI{&cg.Pressure.CPU, &cg.Pressure.Memory, &cg.Pressure.IO} {
		cur.psi[i] = math.NaN()
		if p.Some.Available() {
			cur.psi[i] = p.Some.Avg10
		}
	}
	cur.netState, cur.netCarrier = smp.Network, smp.NetCarrier
	cur.rxRate, cur.txRate = math.NaN(), math.NaN()
	ifaces := -1
	var rx, tx uint64
	if smp.Network == sink.NetOwn && smp.Net != nil {
		ifaces = 0
		for i := range smp.Net.Interfaces {
			in := &smp.Net.Interfaces[i]
			if r, ok := in.RxBytes.Get(); ok {
				rx += r
			}
			if t, ok := in.TxBytes.Get(); ok {
				tx += t
			}
			ifaces++
		}
		cur.rxBytes, cur.txBytes = rx, tx
		// A rate only over the same interfaces, counters not gone back.
		if !first && ifaces == se.prevIfaces && rx >= se.prevRx && tx >= se.prevTx {
			cur.rxRate, cur.txRate = float64(rx-se.prevRx)/dt, float64(tx-se.prevTx)/dt
		}
	}
	se.prevT = now
	se.prevCPU, se.prevPeriods, se.prevThrot = cg.CPU.Usage, cg.CPU.Periods, cg.CPU.ThrottledPeriods
	se.prevRx, se.prevTx, se.prevIfaces = rx, tx, ifaces

	p := point{t: t, cpu: f32(cur.cpuPercent), mem: f32v(cur.memWS), rx: f32(cur.rxRate), tx: f32(cur.txRate),
		pids: f32v(cur.pids), psiCPU: f32(cur.psi[0]), psiMemory: f32(cur.psi[1]), psiIO: f32(cur.psi[2])}
	if len(se.pts) < capacity {
		if len(se.pts) == cap(se.pts) {
			// Grow in steps, not past the ring's capacity.
			n := make([]point, len(se.pts), min(capacity, 2*cap(se.pts)))
			copy(n, se.pts)
			se.pts = n
		}
		se.pts = append(se.pts, p)
		return
	}
	se.pts[se.head] = p
	se.head = (se.head + 1) % capacity
}

func f32(v float64) float32 { return float32(v) }

func f32v(v cgroup.Value) float32 {
	if x, ok := v.Get(); ok {
		return float32(x)
	}
	return nan32
}

// Dropped returns the number of points not kept so far because their
// container was past WithMaxContainers (sink.SinkDropper: the collector
// reports it in its self-metrics).
func (k *Sink) Dropped() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dropped
}

// Sanitized returns what the sink changed of what containers gave it
// (sink.SanitizeReporter).
func (k *Sink) Sanitized() sink.Sanitized { return k.z.Sanitized() }

// Close ends the sink: Write fails after it; the handler keeps serving
// what was recorded. A second Close is an error.
func (k *Sink) Close(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("live: already closed")
	}
	k.closed = true
	return nil
}
