package otlp

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/wire"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// kind is a metric's OTLP data type.
type kind uint8

const (
	gauge kind = iota
	sum        // cumulative, monotonic
)

// metricDef is one metric: its name, unit and type, and its Metric name
// and unit fields encoded once.
type metricDef struct {
	name, unit string
	kind       kind
	head       []byte
}

func def(name, unit string, k kind) metricDef {
	return metricDef{name: name, unit: unit, kind: k, head: wire.AppendString(wire.AppendString(nil, 1, name), 3, unit)}
}

// attr is a data point attribute; enc, when set, is its KeyValue field
// (NumberDataPoint.attributes = 7) encoded once.
type attr struct {
	key, value string
	enc        []byte
}

// constAttr is an attribute of fixed value, encoded once.
func constAttr(key, value string) attr {
	return attr{key: key, value: value, enc: appendKeyValue(nil, 7, key, value)}
}

// appendKeyValue appends KeyValue{key = 1, value = 2 AnyValue{string_value
// = 1}} as field num; value must be valid UTF-8.
func appendKeyValue(b []byte, num int, key, value string) []byte {
	av := wire.SizeBytes(1, len(value))
	kv := wire.SizeBytes(1, len(key)) + wire.SizeBytes(2, av)
	b = wire.AppendTag(b, num, wire.Bytes)
	b = wire.AppendVarint(b, uint64(kv))
	b = wire.AppendString(b, 1, key)
	b = wire.AppendTag(b, 2, wire.Bytes)
	b = wire.AppendVarint(b, uint64(av))
	return wire.AppendString(b, 1, value)
}

// dynAttr is an attribute whose value a container gives (an interface or
// device name), encoded once for the container's data points, sanitised
// (the interface names are already).
func (e *encoder) dynAttr(key, value string) attr {
	if !e.z.Clean(value) {
		value = e.z.Value(value) // hostile input only
	}
	lo := len(e.attrBuf)
	e.attrBuf = appendKeyValue(e.attrBuf, 7, key, value)
	return attr{key: key, value: value, enc: e.attrBuf[lo:len(e.attrBuf):len(e.attrBuf)]}
}

// point is one data point of the container being encoded.
type point struct {
	m      *metricDef
	attrs  [3][]byte // the attributes' KeyValue fields (attr.enc); nil ends the list
	bits   uint64    // the value: an int64's or a float64's bits
	double bool
}

// encoder turns snapshots into OTLP records: each record is one
// ExportMetricsServiceRequest.resource_metrics field (a container's
// resource, with one scope and its metrics), so that records concatenated
// are an ExportMetricsServiceRequest. In steady state it allocates nothing.
type encoder struct {
	z        *sink.Sanitizer
	tags     sink.Tags
	keep     func(string) bool
	resAttrs []attr // the user's resource attributes, on every resource
	version  string
	selfFrom uint64 // start time of the self sums: when the sink was made
	info     bool   // container.info is written (sink.Tags.Info, InfoOnly)

	w       wire.Rev
	points  []point
	start   uint64 // start time of the current container's sums
	now     uint64
	dev     [][]byte // device names of the current container
	devAttr []attr
	ifs     []sink.Interface
	ifAttr  []attr
	tmp     []byte
	val     []byte // a sanitised value being written
	// The current container's: its dynamic attributes encoded, and the
	// start and time fields of its sums and gauges.
	attrBuf              []byte
	sumTimes, gaugeTimes []byte
	departed             []*sink.Departed
}

// appendSnapshot appends snap's records (a container each, and one for the
// collector's own figures) to buf, their ends to ends and their data point
// counts, running, to pts.
func (e *encoder) appendSnapshot(buf []byte, ends, pts []int, snap *sink.Snapshot) ([]byte, []int, []int) {
	e.now = unixNano(snap.Time)
	total := 0
	if len(pts) > 0 {
		total = pts[len(pts)-1]
	}
	for i := range snap.Containers {
		s := &snap.Containers[i]
		e.points = e.points[:0]
		e.start = 0
		if !s.Container.Started.IsZero() {
			e.start = unixNano(s.Container.Started)
		}
		e.attrBuf = e.attrBuf[:0]
		e.times()
		e.sample(s, snap)
		if len(e.points) == 0 {
			continue
		}
		e.w.Reset()
		e.resourceMetrics(func() { e.containerResource(&s.Container) })
		buf = append(buf, e.w.Bytes()...)
		ends = append(ends, len(buf))
		total += len(e.points)
		pts = append(pts, total)
	}
	for _, d := range e.departedOf(snap) {
		// A container that left: its resource with its count of OOM kills.
		e.points = e.points[:0]
		e.start = 0
		if !d.Container.Started.IsZero() {
			e.start = unixNano(d.Container.Started)
		}
		e.attrBuf = e.attrBuf[:0]
		e.times()
		e.intV(&mOOMKills, d.OOMKills)
		if len(e.points) == 0 {
			continue
		}
		e.w.Reset()
		c := &d.Container
		e.resourceMetrics(func() { e.containerResource(c) })
		buf = append(buf, e.w.Bytes()...)
		ends = append(ends, len(buf))
		total += len(e.points)
		pts = append(pts, total)
	}
	if snap.Self != nil {
		e.points = e.points[:0]
		e.start = e.selfFrom
		e.attrBuf = e.attrBuf[:0]
		e.times()
		e.self(snap.Self)
		e.w.Reset()
		e.resourceMetrics(e.selfResource)
		buf = append(buf, e.w.Bytes()...)
		ends = append(ends, len(buf))
		total += len(e.points)
		pts = append(pts, total)
	}
	return buf, ends, pts
}

// times encodes the start_time (2, sums only, when known) and time (3)
// fields of the current container's data points.
func (e *encoder) times() {
	t := wire.AppendTag(e.gaugeTimes[:0], 3, wire.Fixed64)
	e.gaugeTimes = binary.LittleEndian.AppendUint64(t, e.now)
	e.sumTimes = e.sumTimes[:0]
	if e.start != 0 {
		e.sumTimes = binary.LittleEndian.AppendUint64(wire.AppendTag(e.sumTimes, 2, wire.Fixed64), e.start)
	}
	e.sumTimes = append(e.sumTimes, e.gaugeTimes...)
}

func unixNano(t time.Time) uint64 {
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

// resourceMetrics writes, backwards, one ResourceMetrics of e.points with
// the resource attributes that resource writes (backwards too).
func (e *encoder) resourceMetrics(resource func()) {
	w := &e.w
	rm := w.Len()
	// ScopeMetrics = 2 {scope = 1, metrics = 2}.
	sm := w.Len()
	end := len(e.points)
	for end > 0 {
		// The points of one metric are consecutive: [begin, end).
		m := e.points[end-1].m
		begin := end - 1
		for begin > 0 && e.points[begin-1].m == m {
			begin--
		}
		e.metric(m, e.points[begin:end])
		end = begin
	}
	sc := w.Len()
	if e.version != "" {
		w.String(2, e.version)
	}
	w.String(1, "metricsd")
	w.Message(1, sc)
	w.Message(2, sm)
	// Resource = 1 {attributes = 1}.
	r := w.Len()
	resource()
	w.Message(1, r)
	w.Message(1, rm)
}

// metric writes one Metric (ScopeMetrics.metrics = 2) of points ps.
func (e *encoder) metric(m *metricDef, ps []point) {
	w := &e.w
	start := w.Len()
	data := w.Len()
	if m.kind == sum {
		w.Raw(sumTail)
	}
	for i := len(ps) - 1; i >= 0; i-- {
		e.dataPoint(m, &ps[i])
	}
	if m.kind == sum {
		w.Message(7, data) // sum
	} else {
		w.Message(5, data) // gauge
	}
	w.Raw(m.head)
	w.Message(2, start)
}

// dataPoint writes one NumberDataPoint (data_points = 1): start_time = 2,
// time = 3, as_double = 4 or as_int = 6, attributes = 7; its size known,
// in one piece.
func (e *encoder) dataPoint(m *metricDef, p *point) {
	times := e.gaugeTimes
	if m.kind == sum {
		times = e.sumTimes
	}
	size := len(times) + 9
	for _, a := range p.attrs {
		size += len(a)
	}
	b := e.w.Front(1 + wire.SizeVarint(uint64(size)) + size)[:0]
	b = append(b, 1<<3|wire.Bytes)
	b = wire.AppendVarint(b, uint64(size))
	b = append(b, times...)
	if p.double {
		b = append(b, 4<<3|wire.Fixed64)
	} else {
		b = append(b, 6<<3|wire.Fixed64)
	}
	b = binary.LittleEndian.AppendUint64(b, p.bits)
	for _, a := range p.attrs {
		b = append(b, a...)
	}
}

// keyValue writes a KeyValue{key = 1, value = 2 AnyValue{string_value =
// 1}} as field num, its value sanitised.
func (e *encoder) keyValue(num int, key, value string) {
	w := &e.w
	kv := w.Len()
	av := w.Len()
	e.validString(1, value)
	w.Message(2, av)
	w.String(1, key)
	w.Message(num, kv)
}

// validString writes string field num holding value, sanitised.
func (e *encoder) validString(num int, value string) {
	if e.z.Clean(value) {
		e.w.String(num, value)
		return
	}
	e.val = e.z.AppendValue(e.val[:0], value)
	e.w.String(num, unsafeString(e.val))
}

// keyStrings writes a KeyValue whose value is an array of strings
// (array_value = 5, ArrayValue{values = 1}).
func (e *encoder) keyStrings(num int, key string, values ...string) {
	w := &e.w
	kv := w.Len()
	av := w.Len()
	arr := w.Len()
	for i := len(values) - 1; i >= 0; i-- {
		v := w.Len()
		e.validString(1, values[i])
		w.Message(1, v)
	}
	w.Message(5, arr)
	w.Message(2, av)
	w.String(1, key)
	w.Message(num, kv)
}

// departedOf returns snap's departed containers to write: those with a
// count, but for one that is also live in snap under the same ID (restarted
// under it: the live resource wins).
func (e *encoder) departedOf(snap *sink.Snapshot) []*sink.Departed {
	e.departed = e.departed[:0]
	for i := range snap.Departed {
		d := &snap.Departed[i]
		if !d.OOMKills.Available() || slices.ContainsFunc(snap.Containers, func(s sink.Sample) bool {
			return s.Container.ID == d.Container.ID && s.Container.Runtime == d.Container.Runtime
		}) {
			continue
		}
		e.departed = append(e.departed, d)
	}
	return e.departed
}

// containerResource writes the container's resource attributes, per the
// semantic conventions, backwards: the Tags allow-list says which.
func (e *encoder) containerResource(c *runtime.Container) {
	e.common()
	for i := len(e.tags.Labels) - 1; i >= 0; i-- {
		l := e.tags.Labels[i].Label
		if v, ok := c.Labels[l]; ok {
			e.tmp = append(append(e.tmp[:0], "container.label."...), l...)
			e.keyValue(1, unsafeString(e.tmp), v)
		}
	}
	if e.tags.RuntimeNamespace && c.Namespace != "" {
		e.keyValue(1, "metricsd.runtime.namespace", c.Namespace)
	}
	if e.tags.Pod && c.Pod != nil {
		for _, kv := range [...]attr{
			{key: "k8s.container.name", value: c.Pod.Container},
			{key: "k8s.pod.uid", value: c.Pod.UID},
			{key: "k8s.namespace.name", value: c.Pod.Namespace},
			{key: "k8s.pod.name", value: c.Pod.Name},
		} {
			if kv.value != "" {
				e.keyValue(1, kv.key, kv.value)
			}
		}
	}
	if e.tags.Runtime && c.Runtime != "" {
		e.keyValue(1, "container.runtime", c.Runtime)
	}
	if e.tags.Image && c.Image != "" {
		name, tag := splitImage(c.Image)
		if tag != "" {
			e.keyStrings(1, "container.image.tags", tag)
		}
		e.keyValue(1, "container.image.name", name)
	}
	if e.tags.Name && c.Name != "" {
		e.keyValue(1, "container.name", c.Name)
	}
	if e.tags.ID && c.ID != "" {
		e.keyValue(1, "container.id", c.ID)
	}
}

// selfResource writes the collector's resource: service.name metricsd and
// the user's attributes.
func (e *encoder) selfResource() {
	e.common()
	e.keyValue(1, "service.name", "metricsd")
}

// common writes the attributes of every resource, backwards: the user's
// resource attributes and the global tags (configure merged them).
func (e *encoder) common() {
	for i := len(e.resAttrs) - 1; i >= 0; i-- {
		e.keyValue(1, e.resAttrs[i].key, e.resAttrs[i].value)
	}
}

// splitImage splits an image reference into the name and the tag
// ("registry:5000/app:1.2" is "registry:5000/app" and "1.2"); a digest
// reference ("app@sha256:...") keeps its digest in the name and has no tag.
func splitImage(ref string) (name, tag string) {
	if strings.Contains(ref, "@") {
		return ref, ""
	}
	slash := strings.LastIndexByte(ref, '/')
	if colon := strings.LastIndexByte(ref, ':'); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, ""
}

// The metrics: the semantic conventions' names where they define one
// (container.cpu.time, container.memory.usage, container.disk.io,
// container.network.io, ...), else the OpenTelemetry Collector's
// docker_stats receiver's (container.cpu.throttling_data.*, ...), else a
// name of the same style. docs/METRICS.md lists them.
var (
	mCPUTime           = def("container.cpu.time", "s", sum)
	mCPUUser           = def("container.cpu.usage.usermode", "s", sum)
	mCPUKernel         = def("container.cpu.usage.kernelmode", "s", sum)
	mCPUPeriods        = def("container.cpu.throttling_data.periods", "{periods}", sum)
	mCPUThrottled      = def("container.cpu.throttling_data.throttled_periods", "{periods}", sum)
	mCPUThrottledTime  = def("container.cpu.throttling_data.throttled_time", "s", sum)
	mCPULimit          = def("container.cpu.limit", "{cpu}", gauge)
	mCPUShares         = def("container.cpu.shares", "1", gauge)
	mMemUsage          = def("container.memory.usage", "By", gauge)
	mMemWorkingSet     = def("container.memory.working_set", "By", gauge)
	mMemRSS            = def("container.memory.rss", "By", gauge)
	mMemCache          = def("container.memory.cache", "By", gauge)
	mMemMapped         = def("container.memory.mapped_file", "By", gauge)
	mMemSwap           = def("container.memory.swap", "By", gauge)
	mMemMax            = def("container.memory.usage.max", "By", gauge)
	mMemKernel         = def("container.memory.kernel", "By", gauge)
	mMemLimit          = def("container.memory.usage.limit", "By", gauge)
	mPagingFaults      = def("container.paging.faults", "{fault}", sum)
	mOOMKills          = def("container.memory.oom_kills", "{kill}", sum)
	mMemSwapMax        = def("container.memory.swap.usage.max", "By", gauge)
	mMemEvents         = def("container.memory.events", "{event}", sum)
	mMemEventsLocal    = def("container.memory.events.local", "{event}", sum)
	mMemSwapEvents     = def("container.memory.swap.events", "{event}", sum)
	mPidsPeak          = def("container.pids.peak", "{pid}", gauge)
	mForkFailures      = def("container.pids.fork_failures", "{fork}", sum)
	mInfo              = def("container.info", "1", gauge)
	mTCPSegments       = def("container.network.tcp.segments", "{segment}", sum)
	mTCPRetrans        = def("container.network.tcp.retransmits", "{segment}", sum)
	mUDPErrors         = def("container.network.udp.errors", "{datagram}", sum)
	mPids              = def("container.pids.count", "{pid}", gauge)
	mPidsLimit         = def("container.pids.limit", "{pid}", gauge)
	mUptime            = def("container.uptime", "s", gauge)
	mDiskIO            = def("container.disk.io", "By", sum)
	mDiskOps           = def("container.disk.operations", "{operation}", sum)
	mHugetlb           = def("container.hugetlb.usage", "By", gauge)
	mNetIO             = def("container.network.io", "By", sum)
	mNetPackets        = def("container.network.packet.count", "{packet}", sum)
	mNetDropped        = def("container.network.packet.dropped", "{packet}", sum)
	mNetErrors         = def("container.network.errors", "{error}", sum)
	mNetConns          = def("container.network.connection.count", "{connection}", gauge)
	mPSIWaiting        = [3]metricDef{def("container.pressure.cpu.waiting", "s", sum), def("container.pressure.memory.waiting", "s", sum), def("container.pressure.io.waiting", "s", sum)}
	mPSIStalled        = [3]metricDef{def("container.pressure.cpu.stalled", "s", sum), def("container.pressure.memory.stalled", "s", sum), def("container.pressure.io.stalled", "s", sum)}
	mPSIWaitingRatio   = [3]metricDef{def("container.pressure.cpu.waiting.ratio", "1", gauge), def("container.pressure.memory.waiting.ratio", "1", gauge), def("container.pressure.io.waiting.ratio", "1", gauge)}
	mPSIStalledRatio   = [3]metricDef{def("container.pressure.cpu.stalled.ratio", "1", gauge), def("container.pressure.memory.stalled.ratio", "1", gauge), def("container.pressure.io.stalled.ratio", "1", gauge)}
	mSelfScrape        = def("metricsd.scrape.duration", "s", gauge)
	mSelfContainers    = def("metricsd.containers", "{container}", gauge)
	mSelfNamespaces    = def("metricsd.network_namespaces", "{namespace}", gauge)
	mSelfErrors        = def("metricsd.errors", "{error}", sum)
	mSelfDropped       = def("metricsd.sink.dropped", "{point}", sum)
	mSelfWriteDuration = def("metricsd.sink.write.duration", "s", gauge)
	mSelfChanged       = def("metricsd.sink.values_changed", "{value}", sum)
	mSelfIfacesLeftOut = def("metricsd.sink.interfaces_left_out", "{interface}", sum)
)

// The data point attributes of fixed value, encoded once.
var (
	aFaultMinor  = constAttr("system.paging.fault.type", "minor")
	aFaultMajor  = constAttr("system.paging.fault.type", "major")
	aDiskRead    = constAttr("disk.io.direction", "read")
	aDiskWrite   = constAttr("disk.io.direction", "write")
	aNetReceive  = constAttr("network.io.direction", "receive")
	aNetTransmit = constAttr("network.io.direction", "transmit")
	aTCP         = constAttr("network.transport", "tcp")
	aIPv4        = constAttr("network.type", "ipv4")
	aIPv6        = constAttr("network.type", "ipv6")
	// What a sink changed in a value (metricsd.sink.values_changed).
	aMemEvents = func() (a [len(memEventNames)]attr) {
		for i, n := range memEventNames {
			a[i] = constAttr("container.memory.event", n)
		}
		return
	}()
	aSwapEvents = func() (a [len(swapEventNames)]attr) {
		for i, n := range swapEventNames {
			a[i] = constAttr("container.memory.swap.event", n)
		}
		return
	}()
	aPSIWindows      = [3]attr{constAttr("pressure.window", "10s"), constAttr("pressure.window", "60s"), constAttr("pressure.window", "300s")}
	aUDPErrors       = [3]attr{constAttr("network.udp.error", "receive"), constAttr("network.udp.error", "receive_buffer"), constAttr("network.udp.error", "send_buffer")}
	aChangeReplaced  = constAttr("change", "replaced")
	aChangeTruncated = constAttr("change", "truncated")
	aTCPStates       = func() (a [len(tcpStates)]attr) {
		for st, name := range tcpStates {
			if name != "" {
				a[st] = constAttr("network.connection.state", name)
			}
		}
		return
	}()
	// sumTail is Sum's aggregation_temporality (2) CUMULATIVE and
	// is_monotonic (3) true.
	sumTail = []byte{2<<3 | wire.Varint, 2, 3<<3 | wire.Varint, 1}
)

// The container.memory.event and container.memory.swap.event values, the
// kernel's keys.
var (
	memEventNames  = [...]string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"}
	swapEventNames = [...]string{"high", "max", "fail"}
)

// The semantic conventions' network.connection.state values, by kernel
// TCP state.
var tcpStates = [...]string{
	netns.TCPEstablished: "established",
	netns.TCPSynSent:     "syn_sent",
	netns.TCPSynRecv:     "syn_recv",
	netns.TCPFinWait1:    "fin_wait_1",
	netns.TCPFinWait2:    "fin_wait_2",
	netns.TCPTimeWait:    "time_wait",
	netns.TCPClose:       "close",
	netns.TCPCloseWait:   "close_wait",
	netns.TCPLastAck:     "last_ack",
	netns.TCPListen:      "listen",
	netns.TCPClosing:     "closing",
}

func (e *encoder) addInt(m *metricDef, v uint64, attrs ...attr) {
	p := point{m: m, bits: min(v, math.MaxInt64)}
	for i := range attrs {
		p.attrs[i] = attrs[i].enc
	}
	e.points = append(e.points, p)
}

func (e *encoder) addDouble(m *metricDef, v float64, attrs ...attr) {
	p := point{m: m, bits: math.Float64bits(v), double: true}
	for i := range attrs {
		p.attrs[i] = attrs[i].enc
	}
	e.points = append(e.points, p)
}

// intV and secondsV add a cgroup value when Known.
func (e *encoder) intV(m *metricDef, v cgroup.Value) {
	if x, ok := v.Get(); ok {
		e.addInt(m, x)
	}
}

// knownInt adds a cgroup or netns value with attributes when Known.
func (e *encoder) knownInt(m *metricDef, v cgroup.Value, attrs ...attr) {
	if x, ok := v.Get(); ok {
		e.addInt(m, x, attrs...)
	}
}

// usec turns a Known value in nanoseconds into the kernel's whole
// microseconds, so the seconds are the floats they were when the library
// held microseconds (as sink/prometheus).
func usec(v cgroup.Value) cgroup.Value {
	if v.State == cgroup.Known {
		v.V /= 1000
	}
	return v
}

func (e *encoder) secondsV(m *metricDef, v cgroup.Value, div float64) {
	if x, ok := v.Get(); ok {
		e.addDouble(m, float64(x)/div)
	}
}

const (
	nsPerSec = 1e9
	usPerSec = 1e6
)

// sample collects s's data points, grouped by metric.
func (e *encoder) sample(s *sink.Sample, snap *sink.Snapshot) {
	st := &s.Cgroup
	cpu := &st.CPU
	e.secondsV(&mCPUTime, cpu.Usage, nsPerSec)
	e.secondsV(&mCPUUser, cpu.User, nsPerSec)
	e.secondsV(&mCPUKernel, cpu.System, nsPerSec)
	e.intV(&mCPUPeriods, cpu.Periods)
	e.intV(&mCPUThrottled, cpu.ThrottledPeriods)
	e.secondsV(&mCPUThrottledTime, cpu.ThrottledTime, nsPerSec)
	if q, ok := cpu.Quota.Get(); ok {
		if p, ok := cpu.Period.Get(); ok && p > 0 {
			e.addDouble(&mCPULimit, float64(q)/float64(p))
		}
	}
	if x, ok := cpu.Shares.Get(); ok {
		e.addInt(&mCPUShares, x)
	} else if w, ok := cpu.Weight.Get(); ok && w >= 1 {
		e.addInt(&mCPUShares, 2+(w-1)*262142/9999) // as sink/prometheus
	}

	mem := &st.Memory
	e.intV(&mMemUsage, mem.Usage)
	e.intV(&mMemWorkingSet, mem.WorkingSet)
	e.intV(&mMemRSS, mem.Anon)
	e.intV(&mMemCache, mem.File)
	e.intV(&mMemMapped, mem.MappedFile)
	e.intV(&mMemSwap, mem.SwapUsage)
	e.intV(&mMemMax, mem.Peak)
	e.intV(&mMemKernel, mem.Kernel)
	e.intV(&mMemLimit, mem.Limit) // left out when unlimited
	if all, ok := mem.Pgfault.Get(); ok {
		if major, ok := mem.Pgmajfault.Get(); ok && major <= all {
			// pgfault counts every fault, major ones too.
			e.addInt(&mPagingFaults, all-major, aFaultMinor)
			e.addInt(&mPagingFaults, major, aFaultMajor)
		}
	}
	e.intV(&mOOMKills, mem.Events.OOMKill)
	e.intV(&mMemSwapMax, mem.SwapPeak)
	for _, ev := range [...]struct {
		m *metricDef
		e *cgroup.MemoryEvents
	}{{&mMemEvents, &mem.Events}, {&mMemEventsLocal, &mem.EventsLocal}} {
		for i, v := range [...]cgroup.Value{ev.e.Low, ev.e.High, ev.e.Max, ev.e.OOM, ev.e.OOMKill, ev.e.OOMGroupKill} {
			e.knownInt(ev.m, v, aMemEvents[i])
		}
	}
	for i, v := range [...]cgroup.Value{mem.SwapEvents.High, mem.SwapEvents.Max, mem.SwapEvents.Fail} {
		e.knownInt(&mMemSwapEvents, v, aSwapEvents[i])
	}

	e.intV(&mPids, st.Pids.Current)
	e.intV(&mPidsLimit, st.Pids.Limit)
	e.intV(&mPidsPeak, st.Pids.Peak)
	e.intV(&mForkFailures, st.Pids.ForkFailures)
	if e.info {
		e.addInt(&mInfo, 1)
	}
	if t := s.Container.Started; !t.IsZero() && snap.Time.After(t) {
		e.addDouble(&mUptime, snap.Time.Sub(t).Seconds())
	}

	if len(st.IO.Devices) > 0 {
		for len(e.dev) < len(st.IO.Devices) {
			e.dev = append(e.dev, nil)
		}
		e.devAttr = e.devAttr[:0]
		for i := range st.IO.Devices {
			e.dev[i] = deviceName(e.dev[i][:0], &st.IO.Devices[i])
			e.devAttr = append(e.devAttr, e.dynAttr("system.device", unsafeString(e.dev[i])))
		}
		devs := st.IO.Devices
		for i := range devs {
			dev := e.devAttr[i]
			e.knownInt(&mDiskIO, devs[i].ReadBytes, aDiskRead, dev)
			e.knownInt(&mDiskIO, devs[i].WriteBytes, aDiskWrite, dev)
		}
		for i := range devs {
			dev := e.devAttr[i]
			e.knownInt(&mDiskOps, devs[i].ReadOps, aDiskRead, dev)
			e.knownInt(&mDiskOps, devs[i].WriteOps, aDiskWrite, dev)
		}
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		if v, ok := h.Usage.Get(); ok {
			e.addInt(&mHugetlb, v, e.dynAttr("hugetlb.page_size", h.PageSize))
		}
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.secondsV(&mPSIWaiting[i], usec(p.Some.Total), usPerSec)
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.secondsV(&mPSIStalled[i], usec(p.Full.Total), usPerSec)
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.psiRatios(&mPSIWaitingRatio[i], &p.Some)
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.psiRatios(&mPSIStalledRatio[i], &p.Full)
	}

	n := s.Net
	if n == nil {
		return
	}
	if n.Parts.Has(netns.PartDev) {
		e.ifs = e.z.Interfaces(e.ifs[:0], n.Interfaces, e.keep)
		e.ifAttr = e.ifAttr[:0]
		for _, k := range e.ifs {
			e.ifAttr = append(e.ifAttr, e.dynAttr("network.interface.name", k.Name))
		}
		rx, tx := aNetReceive, aNetTransmit
		for _, m := range [...]*metricDef{&mNetIO, &mNetPackets, &mNetDropped, &mNetErrors} {
			for i, k := range e.ifs {
				it := &n.Interfaces[k.Index]
				name := e.ifAttr[i]
				var r, t netns.Value
				switch m {
				case &mNetIO:
					r, t = it.RxBytes, it.TxBytes
				case &mNetPackets:
					r, t = it.RxPackets, it.TxPackets
				case &mNetDropped:
					r, t = it.RxDropped, it.TxDropped
				default:
					r, t = it.RxErrors, it.TxErrors
				}
				e.knownInt(m, r, rx, name)
				e.knownInt(m, t, tx, name)
			}
		}
	}
	if n.Parts.Has(netns.PartSNMP) {
		e.knownInt(&mTCPSegments, n.TCP.InSegs, aNetReceive)
		e.knownInt(&mTCPSegments, n.TCP.OutSegs, aNetTransmit)
		e.intV(&mTCPRetrans, n.TCP.RetransSegs)
		for i, v := range [...]netns.Value{n.UDP.InErrors, n.UDP.RcvbufErrors, n.UDP.SndbufErrors} {
			e.knownInt(&mUDPErrors, v, aUDPErrors[i])
		}
	}
	if n.Parts.Has(netns.PartTCPStates) {
		tcp := aTCP
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ {
			e.knownInt(&mNetConns, n.TCPStates.V4[st], aTCPStates[st], tcp, aIPv4)
		}
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ { // V6 is Unavailable without IPv6
			e.knownInt(&mNetConns, n.TCPStates.V6[st], aTCPStates[st], tcp, aIPv6)
		}
	}
}

// psiRatios adds a PSI line's averages as ratios (the kernel's percent /
// 100), one data point per window, when the line was read.
func (e *encoder) psiRatios(m *metricDef, l *cgroup.PSILine) {
	if !l.Available() {
		return
	}
	for i, v := range [...]float64{l.Avg10, l.Avg60, l.Avg300} {
		e.addDouble(m, v/100, aPSIWindows[i])
	}
}

// self collects the collector's own data points.
func (e *encoder) self(s *sink.Self) {
	e.addDouble(&mSelfScrape, s.ScrapeSeconds)
	e.addInt(&mSelfContainers, uint64(s.Containers))
	e.addInt(&mSelfNamespaces, uint64(s.Namespaces))
	for _, x := range s.Errors {
		e.addInt(&mSelfErrors, x.Count, e.dynAttr("stage", x.Stage))
	}
	e.addInt(&mSelfDropped, s.SinkDropped)
	e.addDouble(&mSelfWriteDuration, s.SinkWriteSeconds)
	e.addInt(&mSelfChanged, s.Sanitized.Replaced, aChangeReplaced)
	e.addInt(&mSelfChanged, s.Sanitized.Truncated, aChangeTruncated)
	e.addInt(&mSelfIfacesLeftOut, s.Sanitized.Interfaces)
}

// deviceName appends a block device's name to b: /dev/<name>, else
// major:minor (as sink/prometheus's device label).
func deviceName(b []byte, d *cgroup.IODevice) []byte {
	if d.Name != "" {
		return append(append(b, "/dev/"...), d.Name...)
	}
	b = appendUint(b, uint64(d.Major))
	b = append(b, ':')
	return appendUint(b, uint64(d.Minor))
}

func appendUint(b []byte, u uint64) []byte {
	var t [20]byte
	i := len(t)
	for {
		i--
		t[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return append(b, t[i:]...)
}
