package remotewrite

import (
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/wire"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// label is one label of a series: value is a range of encoder.vals.
type label struct {
	name   string
	lo, hi int
}

// encoder turns snapshots into remote_write 1.0 records: each record is one
// WriteRequest.timeseries field (a TimeSeries with its labels, sorted by
// name, and one sample), so that records concatenated are a WriteRequest.
// In steady state it allocates nothing.
type encoder struct {
	tagger   *sink.Tagger
	z        *sink.Sanitizer
	cgroupID bool
	keep     func(string) bool
	ext      []sink.Tag // external labels, sorted by name

	vals    []byte  // the current container's label values, sanitised
	base    []label // its labels and the external ones, sorted by name
	baseRec []byte  // base encoded, as TimeSeries.labels fields
	baseEnd []int   // where each base label's record ends in baseRec
	namePos int     // base labels sorting before __name__
	cache   [2]posCache
	xbuf    []byte // the current series' name and own labels, encoded
	tmp     []byte
	dev     []byte // the current device label
	tags    []sink.Tag
	tags2   []sink.Tag
	ifs     []sink.Interface
	ts      int64

	buf  []byte
	ends []int
}

func newEncoder(tg *sink.Tagger, z *sink.Sanitizer, cgroupID bool, keep func(string) bool, ext map[string]string) *encoder {
	if z == nil {
		z = sink.NewSanitizer(sink.Limits{})
	}
	e := &encoder{tagger: tg, z: z, cgroupID: cgroupID, keep: keep}
	for k, v := range ext {
		if v == "" {
			continue // as Prometheus, which drops a label with an empty value
		}
		e.ext = append(e.ext, sink.Tag{Key: k, Value: v})
	}
	sort.Slice(e.ext, func(i, j int) bool { return e.ext[i].Key < e.ext[j].Key })
	return e
}

// appendSnapshot appends snap's records to buf and their ends to ends.
func (e *encoder) appendSnapshot(buf []byte, ends []int, snap *sink.Snapshot) ([]byte, []int) {
	e.buf, e.ends = buf, ends
	e.ts = snap.Time.UnixMilli()
	for i := range snap.Containers {
		s := &snap.Containers[i]
		if e.tagger.Info() {
			// container_info's labels, then the series' taken from them:
			// each value is sanitised, and counted, once.
			e.labels(&s.Container, true)
			e.encodeBase()
			e.emit(nContainerInfo, 1)
			e.narrow()
		} else {
			e.labels(&s.Container, false)
		}
		e.encodeBase()
		e.sample(s, snap)
	}
	e.departed(snap)
	if snap.Self != nil {
		e.startSelf()
		e.encodeBase()
		e.self(snap.Self)
	}
	return e.buf, e.ends
}

// startSelf prepares the labels of the collector's own series: the
// global tags (sink.Tags.Global) and the external labels, sorted.
func (e *encoder) startSelf() {
	e.vals, e.base = e.vals[:0], e.base[:0]
	g := e.tagger.Global()
	i, j := 0, 0
	for i < len(g) || j < len(e.ext) {
		var t sink.Tag
		if j >= len(e.ext) || i < len(g) && g[i].Key < e.ext[j].Key {
			t, i = g[i], i+1
		} else {
			t, j = e.ext[j], j+1
		}
		lo := len(e.vals)
		e.vals = e.z.AppendValue(e.vals, t.Value)
		e.base = append(e.base, label{name: t.Key, lo: lo, hi: len(e.vals)})
	}
}

// departed emits the container_oom_events_total series of the containers
// that left (sink.Departed), but for one whose labels are a live
// container's in snap (restarted under the same ID and name: the live
// series wins, or the request would carry the series twice).
func (e *encoder) departed(snap *sink.Snapshot) {
	for i := range snap.Departed {
		d := &snap.Departed[i]
		if !d.OOMKills.Available() || e.isLive(&d.Container, snap) {
			continue
		}
		e.labels(&d.Container, false)
		e.encodeBase()
		e.counter(nContainerOomEventsTotal, d.OOMKills, 1)
	}
}

// isLive reports whether a live container of snap has c's series labels.
func (e *encoder) isLive(c *runtime.Container, snap *sink.Snapshot) bool {
	e.tags = e.tagger.Append(e.tags[:0], c)
	for i := range snap.Containers {
		l := &snap.Containers[i].Container
		e.tags2 = e.tagger.Append(e.tags2[:0], l)
		same := true
		for j := range e.tags {
			a, b := e.tags[j].Value, e.tags2[j].Value
			if e.tags[j].Key == "id" && e.cgroupID {
				if c.CgroupPath != "" {
					a = c.CgroupPath
				}
				if l.CgroupPath != "" {
					b = l.CgroupPath
				}
			}
			if a != b {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// narrow keeps, of container_info's labels (e.base), the series' ones: all
// of them, or with InfoOnly id, the global tags and the external labels.
func (e *encoder) narrow() {
	if !e.tagger.InfoOnly() {
		return
	}
	keys := e.tagger.Keys()
	kept := e.base[:0]
	for _, l := range e.base {
		if slices.Contains(keys, l.name) || slices.ContainsFunc(e.ext, func(t sink.Tag) bool { return t.Key == l.name }) {
			kept = append(kept, l)
		}
	}
	e.base = kept
}

// labels prepares the labels of c's series (with info, of its
// container_info): its tags (empty ones left out, as Prometheus drops a
// label with an empty value) and the external labels, sorted.
func (e *encoder) labels(c *runtime.Container, info bool) {
	e.vals, e.base = e.vals[:0], e.base[:0]
	if info {
		e.tags = e.tagger.AppendInfo(e.tags[:0], c)
	} else {
		e.tags = e.tagger.Append(e.tags[:0], c)
	}
	i, j := 0, 0
	for i < len(e.tags) || j < len(e.ext) {
		var t sink.Tag
		if j >= len(e.ext) || i < len(e.tags) && e.tags[i].Key < e.ext[j].Key {
			t = e.tags[i]
			if t.Key == "id" && e.cgroupID && c.CgroupPath != "" {
				t.Value = c.CgroupPath
			}
			i++
		} else {
			t = e.ext[j]
			j++
		}
		if t.Value == "" {
			continue
		}
		lo := len(e.vals)
		e.vals = e.z.AppendValue(e.vals, t.Value)
		e.base = append(e.base, label{name: t.Key, lo: lo, hi: len(e.vals)})
	}
}

const nameLabel = "__name__"

// encodeBase encodes the current base labels (e.base, sorted) as
// TimeSeries.labels records into e.baseRec, once per container: a series
// copies them, with its name and own labels spliced in.
func (e *encoder) encodeBase() {
	e.baseRec, e.baseEnd = e.baseRec[:0], e.baseEnd[:0]
	for _, l := range e.base {
		e.baseRec = appendLabel(e.baseRec, l.name, e.vals[l.lo:l.hi])
		e.baseEnd = append(e.baseEnd, len(e.baseRec))
	}
	e.namePos = e.pos(nameLabel)
	for i := range e.cache {
		e.cache[i].name = "" // positions change with the base
	}
}

// posCache remembers a series' own label: its record and where it goes
// among the base labels.
type posCache struct {
	name  string
	value []byte // a copy: the value may be a view of a reused buffer (the device label)
	at    int
	rec   []byte
}

// pos is the number of base labels whose name sorts before name.
func (e *encoder) pos(name string) int {
	n := 0
	for n < len(e.base) && e.base[n].name < name {
		n++
	}
	return n
}

// appendLabel appends a TimeSeries.labels field (1): Label{name = 1, value
// = 2}.
func appendLabel[V string | []byte](b []byte, name string, value V) []byte {
	inner := wire.SizeBytes(1, len(name)) + wire.SizeBytes(2, len(value))
	b = wire.AppendTag(b, 1, wire.Bytes)
	b = wire.AppendVarint(b, uint64(inner))
	b = wire.AppendString(b, 1, name)
	b = wire.AppendTag(b, 2, wire.Bytes)
	b = wire.AppendVarint(b, uint64(len(value)))
	return append(b, value...)
}

// insert is a label record (e.xbuf[lo:hi]) that goes after the first at
// base labels.
type insert struct{ at, lo, hi int }

// series appends one record: metric name with the base labels, the extra
// labels (names n1 < n2, each sorting after __name__; either may be "")
// and value v at the snapshot's time. An extra label with an empty value
// is left out.
func (e *encoder) series(name *metricName, v float64, n1, v1, n2, v2 string) {
	var ins [3]insert
	e.xbuf = append(e.xbuf[:0], name.rec...)
	ins[0] = insert{at: e.namePos, hi: len(e.xbuf)}
	n := 1
	for slot, p := range [2][2]string{{n1, v1}, {n2, v2}} {
		if p[0] == "" || p[1] == "" {
			continue
		}
		c := &e.cache[slot]
		if c.name != p[0] || string(c.value) != p[1] {
			// A new own label: its position and record, remembered for
			// the next series (an interface's eight, a device's four).
			c.name, c.value, c.at = p[0], append(c.value[:0], p[1]...), e.pos(p[0])
			if e.z.Clean(p[1]) { // the interface names are sanitised already
				c.rec = appendLabel(c.rec[:0], p[0], p[1])
			} else {
				e.tmp = e.z.AppendValue(e.tmp[:0], p[1])
				c.rec = appendLabel(c.rec[:0], p[0], e.tmp)
			}
		}
		lo := len(e.xbuf)
		e.xbuf = append(e.xbuf, c.rec...)
		ins[n] = insert{at: c.at, lo: lo, hi: len(e.xbuf)}
		n++
	}

	// TimeSeries{labels = 1, samples = 2 (Sample{value = 1 double,
	// timestamp = 2 int64})}.
	sample := 9 + wire.SizeTag(2) + wire.SizeVarint(uint64(e.ts))
	size := len(e.baseRec) + len(e.xbuf) + wire.SizeBytes(2, sample)
	b := wire.AppendTag(e.buf, 1, wire.Bytes)
	b = wire.AppendVarint(b, uint64(size))
	prev := 0
	for _, x := range ins[:n] {
		off := 0
		if x.at > 0 {
			off = e.baseEnd[x.at-1]
		}
		b = append(b, e.baseRec[prev:off]...)
		b = append(b, e.xbuf[x.lo:x.hi]...)
		prev = off
	}
	b = append(b, e.baseRec[prev:]...)
	b = wire.AppendTag(b, 2, wire.Bytes)
	b = wire.AppendVarint(b, uint64(sample))
	b = wire.AppendDouble(b, 1, v)
	b = wire.AppendTag(b, 2, wire.Varint)
	b = wire.AppendVarint(b, uint64(e.ts))
	e.buf = b
	e.ends = append(e.ends, len(b))
}

func (e *encoder) emit(name *metricName, v float64) { e.series(name, v, "", "", "", "") }

func (e *encoder) emit1(name *metricName, v float64, n, val string) {
	e.series(name, v, n, val, "", "")
}

// counter and gauge emit a cgroup value when Known, divided by div
// (division, not multiplication by 1e-9, gives the closest float: 7.5,
// not 7.500000000000001), as sink/prometheus does.
func (e *encoder) counter(name *metricName, v cgroup.Value, div float64) {
	if x, ok := v.Get(); ok {
		e.emit(name, float64(x)/div)
	}
}

func (e *encoder) gauge(name *metricName, v cgroup.Value) {
	if x, ok := v.Get(); ok {
		e.emit(name, float64(x))
	}
}

// known1 emits a Known value with one label, label=value.
func (e *encoder) known1(name *metricName, v cgroup.Value, label, value string) {
	if x, ok := v.Get(); ok {
		e.emit1(name, float64(x), label, value)
	}
}

// usec turns a Known value in nanoseconds into the kernel's whole
// microseconds, as sink/prometheus does, so the floats are the same.
func usec(v cgroup.Value) cgroup.Value {
	if v.State == cgroup.Known {
		v.V /= 1000
	}
	return v
}

// limit emits a limit: its value when Known, 0 when Unlimited.
func (e *encoder) limit(name *metricName, v cgroup.Value) {
	if v.Available() {
		x, _ := v.Get()
		e.emit(name, float64(x))
	}
}

// metricName is a series name and its __name__ label, encoded once.
type metricName struct {
	name string
	rec  []byte // the TimeSeries.labels field of __name__
}

func newName(name string) *metricName {
	return &metricName{name: name, rec: appendLabel(nil, nameLabel, name)}
}

// The series names, cAdvisor's (and sink/prometheus's).
var (
	nContainerCpuUsageSecondsTotal               = newName("container_cpu_usage_seconds_total")
	nContainerCpuUserSecondsTotal                = newName("container_cpu_user_seconds_total")
	nContainerCpuSystemSecondsTotal              = newName("container_cpu_system_seconds_total")
	nContainerCpuCfsPeriodsTotal                 = newName("container_cpu_cfs_periods_total")
	nContainerCpuCfsThrottledPeriodsTotal        = newName("container_cpu_cfs_throttled_periods_total")
	nContainerCpuCfsThrottledSecondsTotal        = newName("container_cpu_cfs_throttled_seconds_total")
	nContainerSpecCpuQuota                       = newName("container_spec_cpu_quota")
	nContainerSpecCpuPeriod                      = newName("container_spec_cpu_period")
	nContainerSpecCpuShares                      = newName("container_spec_cpu_shares")
	nContainerMemoryUsageBytes                   = newName("container_memory_usage_bytes")
	nContainerMemoryWorkingSetBytes              = newName("container_memory_working_set_bytes")
	nContainerMemoryRss                          = newName("container_memory_rss")
	nContainerMemoryCache                        = newName("container_memory_cache")
	nContainerMemoryMappedFile                   = newName("container_memory_mapped_file")
	nContainerMemorySwap                         = newName("container_memory_swap")
	nContainerMemoryMaxUsageBytes                = newName("container_memory_max_usage_bytes")
	nContainerMemoryKernelUsage                  = newName("container_memory_kernel_usage")
	nContainerMemoryFailuresTotal                = newName("container_memory_failures_total")
	nContainerSpecMemoryLimitBytes               = newName("container_spec_memory_limit_bytes")
	nContainerSpecMemorySwapLimitBytes           = newName("container_spec_memory_swap_limit_bytes")
	nContainerOomEventsTotal                     = newName("container_oom_events_total")
	nContainerMemorySwapMaxUsageBytes            = newName("container_memory_swap_max_usage_bytes")
	nContainerMemoryEventsTotal                  = newName("container_memory_events_total")
	nContainerMemoryEventsLocalTotal             = newName("container_memory_events_local_total")
	nContainerMemorySwapEventsTotal              = newName("container_memory_swap_events_total")
	nContainerThreadsPeak                        = newName("container_threads_peak")
	nContainerForkFailuresTotal                  = newName("container_fork_failures_total")
	nContainerInfo                               = newName("container_info")
	nContainerNetworkTcpSegmentsReceivedTotal    = newName("container_network_tcp_segments_received_total")
	nContainerNetworkTcpSegmentsSentTotal        = newName("container_network_tcp_segments_sent_total")
	nContainerNetworkTcpSegmentsRetransmitted    = newName("container_network_tcp_segments_retransmitted_total")
	nContainerNetworkUdpReceiveErrorsTotal       = newName("container_network_udp_receive_errors_total")
	nContainerNetworkUdpReceiveBufferErrorsTotal = newName("container_network_udp_receive_buffer_errors_total")
	nContainerNetworkUdpSendBufferErrorsTotal    = newName("container_network_udp_send_buffer_errors_total")
	nContainerThreads                            = newName("container_threads")
	nContainerThreadsMax                         = newName("container_threads_max")
	nContainerLastSeen                           = newName("container_last_seen")
	nContainerStartTimeSeconds                   = newName("container_start_time_seconds")
	nContainerFsReadsBytesTotal                  = newName("container_fs_reads_bytes_total")
	nContainerFsWritesBytesTotal                 = newName("container_fs_writes_bytes_total")
	nContainerFsReadsTotal                       = newName("container_fs_reads_total")
	nContainerFsWritesTotal                      = newName("container_fs_writes_total")
	nContainerHugetlbUsageBytes                  = newName("container_hugetlb_usage_bytes")
	nContainerNetworkReceiveBytesTotal           = newName("container_network_receive_bytes_total")
	nContainerNetworkReceivePacketsTotal         = newName("container_network_receive_packets_total")
	nContainerNetworkReceivePacketsDroppedTotal  = newName("container_network_receive_packets_dropped_total")
	nContainerNetworkReceiveErrorsTotal          = newName("container_network_receive_errors_total")
	nContainerNetworkTransmitBytesTotal          = newName("container_network_transmit_bytes_total")
	nContainerNetworkTransmitPacketsTotal        = newName("container_network_transmit_packets_total")
	nContainerNetworkTransmitPacketsDroppedTotal = newName("container_network_transmit_packets_dropped_total")
	nContainerNetworkTransmitErrorsTotal         = newName("container_network_transmit_errors_total")
	nContainerNetworkTcpConnections              = newName("container_network_tcp_connections")
	nContainerNetworkTcp6Connections             = newName("container_network_tcp6_connections")
	nMetricsdScrapeDurationSeconds               = newName("metricsd_scrape_duration_seconds")
	nMetricsdContainers                          = newName("metricsd_containers")
	nMetricsdNetworkNamespaces                   = newName("metricsd_network_namespaces")
	nMetricsdErrorsTotal                         = newName("metricsd_errors_total")
	nMetricsdSinkDroppedPointsTotal              = newName("metricsd_sink_dropped_points_total")
	nMetricsdSinkWriteDurationSeconds            = newName("metricsd_sink_write_duration_seconds")
	nMetricsdSinkValuesChangedTotal              = newName("metricsd_sink_values_changed_total")
	nMetricsdSinkInterfacesLeftOutTotal          = newName("metricsd_sink_interfaces_left_out_total")
)

const (
	nsPerSec = 1e9
	usPerSec = 1e6
)

var psiResources = [3]string{"cpu", "memory", "io"}

// The PSI series' names, by resource.
var psiWaiting, psiStalled = func() (w, s [3]*metricName) {
	for i, r := range psiResources {
		w[i] = newName("container_pressure_" + r + "_waiting_seconds_total")
		s[i] = newName("container_pressure_" + r + "_stalled_seconds_total")
	}
	return
}()

// The PSI averages' names, by resource.
var psiWaitingRatio, psiStalledRatio = func() (w, s [3]*metricName) {
	for i, r := range psiResources {
		w[i] = newName("container_pressure_" + r + "_waiting_ratio")
		s[i] = newName("container_pressure_" + r + "_stalled_ratio")
	}
	return
}()

// The event and window labels' values, as sink/prometheus's.
var (
	memEventNames  = [...]string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"}
	swapEventNames = [...]string{"high", "max", "fail"}
	psiWindows     = [...]string{"10s", "60s", "300s"}
)

func memEventValues(e *cgroup.MemoryEvents) [len(memEventNames)]cgroup.Value {
	return [...]cgroup.Value{e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill}
}

// psiRatios emits a PSI line's averages as ratios, one series per window,
// when the line was read.
func (e *encoder) psiRatios(name *metricName, l *cgroup.PSILine) {
	if !l.Available() {
		return
	}
	for i, v := range [...]float64{l.Avg10, l.Avg60, l.Avg300} {
		e.emit1(name, v/100, "window", psiWindows[i])
	}
}

// cAdvisor's tcp_state values, by kernel state.
var tcpStates = [...]string{
	netns.TCPEstablished: "established",
	netns.TCPSynSent:     "synsent",
	netns.TCPSynRecv:     "synrecv",
	netns.TCPFinWait1:    "finwait1",
	netns.TCPFinWait2:    "finwait2",
	netns.TCPTimeWait:    "timewait",
	netns.TCPClose:       "close",
	netns.TCPCloseWait:   "closewait",
	netns.TCPLastAck:     "lastack",
	netns.TCPListen:      "listen",
	netns.TCPClosing:     "closing",
}

// sample emits s's series: the names, labels and values of sink/prometheus
// (TestSameSeriesAsPrometheusSink holds them equal).
func (e *encoder) sample(s *sink.Sample, snap *sink.Snapshot) {
	st := &s.Cgroup
	cpu := &st.CPU
	if x, ok := cpu.Usage.Get(); ok { // cpu="total", as cAdvisor without per-CPU series
		e.emit1(nContainerCpuUsageSecondsTotal, float64(x)/nsPerSec, "cpu", "total")
	}
	e.counter(nContainerCpuUserSecondsTotal, cpu.User, nsPerSec)
	e.counter(nContainerCpuSystemSecondsTotal, cpu.System, nsPerSec)
	e.counter(nContainerCpuCfsPeriodsTotal, cpu.Periods, 1)
	e.counter(nContainerCpuCfsThrottledPeriodsTotal, cpu.ThrottledPeriods, 1)
	e.counter(nContainerCpuCfsThrottledSecondsTotal, cpu.ThrottledTime, nsPerSec)
	e.gauge(nContainerSpecCpuQuota, usec(cpu.Quota)) // left out when unlimited, as cAdvisor
	e.gauge(nContainerSpecCpuPeriod, usec(cpu.Period))
	if x, ok := cpu.Shares.Get(); ok {
		e.emit(nContainerSpecCpuShares, float64(x))
	} else if w, ok := cpu.Weight.Get(); ok && w >= 1 {
		// cgroup v2: cpu.weight converted back to shares, as cAdvisor and runc do.
		e.emit(nContainerSpecCpuShares, float64(2+(w-1)*262142/9999))
	}

	mem := &st.Memory
	e.gauge(nContainerMemoryUsageBytes, mem.Usage)
	e.gauge(nContainerMemoryWorkingSetBytes, mem.WorkingSet)
	e.gauge(nContainerMemoryRss, mem.Anon)
	e.gauge(nContainerMemoryCache, mem.File)
	e.gauge(nContainerMemoryMappedFile, mem.MappedFile)
	e.gauge(nContainerMemorySwap, mem.SwapUsage)
	e.gauge(nContainerMemoryMaxUsageBytes, mem.Peak)
	e.gauge(nContainerMemoryKernelUsage, mem.Kernel)
	if v, ok := mem.Pgfault.Get(); ok {
		e.series(nContainerMemoryFailuresTotal, float64(v), "failure_type", "pgfault", "scope", "hierarchy")
	}
	if v, ok := mem.Pgmajfault.Get(); ok {
		e.series(nContainerMemoryFailuresTotal, float64(v), "failure_type", "pgmajfault", "scope", "hierarchy")
	}
	e.limit(nContainerSpecMemoryLimitBytes, mem.Limit)
	if mem.MemSwapLimit.Available() {
		e.limit(nContainerSpecMemorySwapLimitBytes, mem.MemSwapLimit) // v1: memory+swap, as cAdvisor
	} else {
		e.limit(nContainerSpecMemorySwapLimitBytes, mem.SwapLimit) // v2: memory.swap.max
	}
	e.counter(nContainerOomEventsTotal, mem.Events.OOMKill, 1)
	e.gauge(nContainerMemorySwapMaxUsageBytes, mem.SwapPeak)
	for i, v := range memEventValues(&mem.Events) {
		e.known1(nContainerMemoryEventsTotal, v, "event", memEventNames[i])
	}
	for i, v := range memEventValues(&mem.EventsLocal) {
		e.known1(nContainerMemoryEventsLocalTotal, v, "event", memEventNames[i])
	}
	for i, v := range [...]cgroup.Value{mem.SwapEvents.High, mem.SwapEvents.Max, mem.SwapEvents.Fail} {
		e.known1(nContainerMemorySwapEventsTotal, v, "event", swapEventNames[i])
	}

	e.gauge(nContainerThreads, st.Pids.Current)
	e.limit(nContainerThreadsMax, st.Pids.Limit)
	e.gauge(nContainerThreadsPeak, st.Pids.Peak)
	e.counter(nContainerForkFailuresTotal, st.Pids.ForkFailures, 1)
	e.emit(nContainerLastSeen, float64(snap.Time.UnixNano())/1e9)
	if t := s.Container.Started; !t.IsZero() {
		e.emit(nContainerStartTimeSeconds, float64(t.UnixNano())/1e9)
	}

	for i := range st.IO.Devices {
		d := &st.IO.Devices[i]
		e.dev = deviceLabel(e.dev[:0], d)
		dev := unsafe.String(unsafe.SliceData(e.dev), len(e.dev))
		e.known1(nContainerFsReadsBytesTotal, d.ReadBytes, "device", dev)
		e.known1(nContainerFsWritesBytesTotal, d.WriteBytes, "device", dev)
		e.known1(nContainerFsReadsTotal, d.ReadOps, "device", dev)
		e.known1(nContainerFsWritesTotal, d.WriteOps, "device", dev)
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		if v, ok := h.Usage.Get(); ok {
			e.emit1(nContainerHugetlbUsageBytes, float64(v), "pagesize", h.PageSize)
		}
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.counter(psiWaiting[i], usec(p.Some.Total), usPerSec)
		e.counter(psiStalled[i], usec(p.Full.Total), usPerSec)
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.psiRatios(psiWaitingRatio[i], &p.Some)
		e.psiRatios(psiStalledRatio[i], &p.Full)
	}

	n := s.Net
	if n == nil {
		return
	}
	if n.Parts.Has(netns.PartDev) {
		e.ifs = e.z.Interfaces(e.ifs[:0], n.Interfaces, e.keep)
		for _, k := range e.ifs {
			it, name := &n.Interfaces[k.Index], k.Name
			e.known1(nContainerNetworkReceiveBytesTotal, it.RxBytes, "interface", name)
			e.known1(nContainerNetworkReceivePacketsTotal, it.RxPackets, "interface", name)
			e.known1(nContainerNetworkReceivePacketsDroppedTotal, it.RxDropped, "interface", name)
			e.known1(nContainerNetworkReceiveErrorsTotal, it.RxErrors, "interface", name)
			e.known1(nContainerNetworkTransmitBytesTotal, it.TxBytes, "interface", name)
			e.known1(nContainerNetworkTransmitPacketsTotal, it.TxPackets, "interface", name)
			e.known1(nContainerNetworkTransmitPacketsDroppedTotal, it.TxDropped, "interface", name)
			e.known1(nContainerNetworkTransmitErrorsTotal, it.TxErrors, "interface", name)
		}
	}
	if n.Parts.Has(netns.PartSNMP) {
		e.counter(nContainerNetworkTcpSegmentsReceivedTotal, n.TCP.InSegs, 1)
		e.counter(nContainerNetworkTcpSegmentsSentTotal, n.TCP.OutSegs, 1)
		e.counter(nContainerNetworkTcpSegmentsRetransmitted, n.TCP.RetransSegs, 1)
		e.counter(nContainerNetworkUdpReceiveErrorsTotal, n.UDP.InErrors, 1)
		e.counter(nContainerNetworkUdpReceiveBufferErrorsTotal, n.UDP.RcvbufErrors, 1)
		e.counter(nContainerNetworkUdpSendBufferErrorsTotal, n.UDP.SndbufErrors, 1)
	}
	if n.Parts.Has(netns.PartTCPStates) {
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ {
			e.known1(nContainerNetworkTcpConnections, n.TCPStates.V4[st], "tcp_state", tcpStates[st])
			e.known1(nContainerNetworkTcp6Connections, n.TCPStates.V6[st], "tcp_state", tcpStates[st]) // Unavailable without IPv6
		}
	}
}

// self emits the collector's own series.
func (e *encoder) self(s *sink.Self) {
	e.emit(nMetricsdScrapeDurationSeconds, s.ScrapeSeconds)
	e.emit(nMetricsdContainers, float64(s.Containers))
	e.emit(nMetricsdNetworkNamespaces, float64(s.Namespaces))
	for _, x := range s.Errors {
		e.emit1(nMetricsdErrorsTotal, float64(x.Count), "stage", x.Stage)
	}
	e.emit(nMetricsdSinkDroppedPointsTotal, float64(s.SinkDropped))
	e.emit(nMetricsdSinkWriteDurationSeconds, s.SinkWriteSeconds)
	e.emit1(nMetricsdSinkValuesChangedTotal, float64(s.Sanitized.Replaced), "change", "replaced")
	e.emit1(nMetricsdSinkValuesChangedTotal, float64(s.Sanitized.Truncated), "change", "truncated")
	e.emit(nMetricsdSinkInterfacesLeftOutTotal, float64(s.Sanitized.Interfaces))
}

// deviceLabel appends cAdvisor's device label to b: /dev/<name>, else
// major:minor.
func deviceLabel(b []byte, d *cgroup.IODevice) []byte {
	if d.Name != "" {
		b = append(b, "/dev/"...)
		b = append(b, d.Name...)
	} else {
		b = appendUint(b, uint64(d.Major))
		b = append(b, ':')
		b = appendUint(b, uint64(d.Minor))
	}
	return b
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

// validLabelName reports whether s is a Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*) not reserved ("__" prefix).
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
