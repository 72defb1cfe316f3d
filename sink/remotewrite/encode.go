package remotewrite

import (
	"encoding/binary"
	"math"
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
	nameAt  int     // where __name__ goes in baseRec (a byte offset)
	at      [numOwn]int
	dyn     []byte // the current container's own labels of its values (devices, interfaces, ...), encoded
	tmp     []byte
	dev     []byte // the current device label
	// sanitiseFixed: the limits cut some fixed own label values; refix
	// holds those of the current series.
	sanitiseFixed bool
	refix         [2]ownLabel
	tags          []sink.Tag
	tags2         []sink.Tag
	ifs           []sink.Interface
	sampleRec     []byte // a series' Sample field at the snapshot's time, its value to fill in at sampleAt
	ts            int64

	buf  []byte
	ends []int

	// ids, when set, makes the records series ids and samples (see
	// seriesTable): the Sink's encoder.
	ids *seriesTable
}

func newEncoder(tg *sink.Tagger, z *sink.Sanitizer, cgroupID bool, keep func(string) bool, ext map[string]string) *encoder {
	if z == nil {
		z = sink.NewSanitizer(sink.Limits{})
	}
	e := &encoder{tagger: tg, z: z, cgroupID: cgroupID, keep: keep}
	for _, v := range fixedValues {
		e.sanitiseFixed = e.sanitiseFixed || !z.Clean(v)
	}
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
	e.setTime(snap.Time.UnixMilli())
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
// TimeSeries.labels records into e.baseRec, once per container, and where
// __name__ and each own label go among them: a series copies the block,
// with its name and own labels spliced in.
func (e *encoder) encodeBase() {
	e.baseRec = e.baseRec[:0]
	e.dyn = e.dyn[:0]
	e.nameAt = -1
	for i := range e.at {
		e.at[i] = -1
	}
	for _, l := range e.base {
		e.placeBefore(l.name)
		e.baseRec = appendLabel(e.baseRec, l.name, e.vals[l.lo:l.hi])
	}
	e.placeBefore("\xff") // after every label name
	if e.ids != nil {
		e.ids.startBlock(e.baseRec)
	}
}

// placeBefore sets the offset of __name__ and of each own label whose
// name sorts before name and has none yet: the end of e.baseRec.
func (e *encoder) placeBefore(name string) {
	if e.nameAt < 0 && nameLabel < name {
		e.nameAt = len(e.baseRec)
	}
	for i, n := range ownNames {
		if e.at[i] < 0 && n < name {
			e.at[i] = len(e.baseRec)
		}
	}
}

// ownName is the name of a series' own label (cpu, event, interface, ...),
// an index of ownNames.
type ownName uint8

const (
	oCPU ownName = iota
	oFailureType
	oScope
	oEvent
	oWindow
	oTCPState
	oDevice
	oPagesize
	oInterface
	oStage
	oChange
	numOwn
)

var ownNames = [numOwn]string{"cpu", "failure_type", "scope", "event", "window", "tcp_state", "device", "pagesize", "interface", "stage", "change"}

// ownLabel is a series' own label encoded as a TimeSeries.labels field;
// an empty rec is no label (an empty value is left out).
type ownLabel struct {
	name  ownName
	rec   []byte
	value string // of a fixed label
}

// fixed is an own label of fixed value, encoded once.
func fixed(name ownName, value string) ownLabel {
	return ownLabel{name: name, rec: appendLabel(nil, ownNames[name], value), value: value}
}

// fixedValues are the values of the fixed own labels, which a sanitiser
// with a low Limits.MaxValueLen cuts (sanitiseFixed).
var fixedValues = []string{"total", "pgfault", "pgmajfault", "hierarchy", "replaced", "truncated", "oom_group_kill", "established", "300s"}

// refixed is l, or when the sanitiser would change a fixed value (a limit
// below its length), l encoded again through it into slot: as every value
// of a series is, counted.
func (e *encoder) refixed(l *ownLabel, slot int) *ownLabel {
	if l == nil || l.value == "" || e.z.Clean(l.value) {
		return l
	}
	e.refix[slot] = e.dynLabel(l.name, l.value)
	return &e.refix[slot]
}

// dynLabel encodes an own label whose value comes from the container (a
// device, an interface, a page size) or the collector (a stage), into
// e.dyn, sanitised (the interface names are already), for the series of
// the current container. The result is valid until the next container.
func (e *encoder) dynLabel(name ownName, value string) ownLabel {
	if value == "" {
		return ownLabel{name: name}
	}
	lo := len(e.dyn)
	if e.z.Clean(value) {
		e.dyn = appendLabel(e.dyn, ownNames[name], value)
	} else {
		e.tmp = e.z.AppendValue(e.tmp[:0], value)
		e.dyn = appendLabel(e.dyn, ownNames[name], e.tmp)
	}
	return ownLabel{name: name, rec: e.dyn[lo:len(e.dyn):len(e.dyn)]}
}

// setTime prepares the Sample field of every series of the snapshot:
// Sample{value = 1 double, timestamp = 2 int64} as TimeSeries.samples (2).
func (e *encoder) setTime(ms int64) {
	e.ts = ms
	size := 9 + wire.SizeTag(2) + wire.SizeVarint(uint64(ms))
	b := wire.AppendTag(e.sampleRec[:0], 2, wire.Bytes)
	b = wire.AppendVarint(b, uint64(size))
	b = wire.AppendTag(b, 1, wire.Fixed64)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = wire.AppendTag(b, 2, wire.Varint)
	e.sampleRec = wire.AppendVarint(b, uint64(ms))
}

// sampleAt is where the value goes in e.sampleRec.
const sampleAt = 3

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

// series appends one record: metric name with the base labels, own
// labels l1 and l2 (either may be empty; l1's name sorts before l2's)
// and value v at the snapshot's time. It writes the record in one pass:
// the container's label block copied around the name and own labels,
// each at the place encodeBase found for it. With a series table (the
// Sink's encoder) the record is the series' id and the sample instead.
func (e *encoder) series(name *metricName, v float64, l1, l2 *ownLabel) {
	if e.sanitiseFixed {
		l1, l2 = e.refixed(l1, 0), e.refixed(l2, 1)
	}
	if e.ids != nil {
		e.seriesID(name, v, l1, l2)
		return
	}
	size := len(e.baseRec) + len(name.rec) + len(e.sampleRec)
	if l1 != nil {
		size += len(l1.rec)
	}
	if l2 != nil {
		size += len(l2.rec)
	}
	b := e.buf
	switch { // WriteRequest.timeseries (1) and its length
	case size < 1<<7:
		b = append(b, 1<<3|wire.Bytes, byte(size))
	case size < 1<<14:
		b = append(b, 1<<3|wire.Bytes, byte(size)|0x80, byte(size>>7))
	default:
		b = wire.AppendTag(b, 1, wire.Bytes)
		b = wire.AppendVarint(b, uint64(size))
	}
	b = e.appendLabels(b, name, l1, l2)
	n := len(b)
	b = append(b, e.sampleRec...)
	binary.LittleEndian.PutUint64(b[n+sampleAt:], math.Float64bits(v))
	e.buf = b
	e.ends = append(e.ends, len(b))
}

// appendLabels appends a series' labels, TimeSeries.labels fields sorted
// by name: the container's block (e.baseRec) with the name and the own
// labels spliced in.
func (e *encoder) appendLabels(b []byte, name *metricName, l1, l2 *ownLabel) []byte {
	base := e.baseRec
	prev := e.nameAt
	b = append(b, base[:prev]...)
	b = append(b, name.rec...)
	if l1 != nil && len(l1.rec) > 0 {
		at := e.at[l1.name]
		b = append(b, base[prev:at]...)
		b = append(b, l1.rec...)
		prev = at
	}
	if l2 != nil && len(l2.rec) > 0 {
		at := e.at[l2.name]
		b = append(b, base[prev:at]...)
		b = append(b, l2.rec...)
		prev = at
	}
	return append(b, base[prev:]...)
}

func (e *encoder) emit(name *metricName, v float64) { e.series(name, v, nil, nil) }

func (e *encoder) emit1(name *metricName, v float64, l *ownLabel) { e.series(name, v, l, nil) }

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

// known1 emits a Known value with one own label.
func (e *encoder) known1(name *metricName, v cgroup.Value, l *ownLabel) {
	if x, ok := v.Get(); ok {
		e.emit1(name, float64(x), l)
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

// The own labels of fixed value, encoded once.
var (
	lCPUTotal   = fixed(oCPU, "total")
	lPgfault    = fixed(oFailureType, "pgfault")
	lPgmajfault = fixed(oFailureType, "pgmajfault")
	lHierarchy  = fixed(oScope, "hierarchy")
	lReplaced   = fixed(oChange, "replaced")
	lTruncated  = fixed(oChange, "truncated")
	lMemEvents  = fixedAll(oEvent, memEventNames[:])
	lSwapEvents = fixedAll(oEvent, swapEventNames[:])
	lWindows    = fixedAll(oWindow, psiWindows[:])
	lTCPStates  = fixedAll(oTCPState, tcpStates[:])
)

func fixedAll(name ownName, values []string) []ownLabel {
	out := make([]ownLabel, len(values))
	for i, v := range values {
		out[i] = fixed(name, v)
	}
	return out
}

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
		e.emit1(name, v/100, &lWindows[i])
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
		e.emit1(nContainerCpuUsageSecondsTotal, float64(x)/nsPerSec, &lCPUTotal)
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
		e.series(nContainerMemoryFailuresTotal, float64(v), &lPgfault, &lHierarchy)
	}
	if v, ok := mem.Pgmajfault.Get(); ok {
		e.series(nContainerMemoryFailuresTotal, float64(v), &lPgmajfault, &lHierarchy)
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
		e.known1(nContainerMemoryEventsTotal, v, &lMemEvents[i])
	}
	for i, v := range memEventValues(&mem.EventsLocal) {
		e.known1(nContainerMemoryEventsLocalTotal, v, &lMemEvents[i])
	}
	for i, v := range [...]cgroup.Value{mem.SwapEvents.High, mem.SwapEvents.Max, mem.SwapEvents.Fail} {
		e.known1(nContainerMemorySwapEventsTotal, v, &lSwapEvents[i])
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
		dev := e.dynLabel(oDevice, unsafe.String(unsafe.SliceData(e.dev), len(e.dev)))
		e.known1(nContainerFsReadsBytesTotal, d.ReadBytes, &dev)
		e.known1(nContainerFsWritesBytesTotal, d.WriteBytes, &dev)
		e.known1(nContainerFsReadsTotal, d.ReadOps, &dev)
		e.known1(nContainerFsWritesTotal, d.WriteOps, &dev)
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		if v, ok := h.Usage.Get(); ok {
			l := e.dynLabel(oPagesize, h.PageSize)
			e.emit1(nContainerHugetlbUsageBytes, float64(v), &l)
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
			it, name := &n.Interfaces[k.Index], e.dynLabel(oInterface, k.Name)
			e.known1(nContainerNetworkReceiveBytesTotal, it.RxBytes, &name)
			e.known1(nContainerNetworkReceivePacketsTotal, it.RxPackets, &name)
			e.known1(nContainerNetworkReceivePacketsDroppedTotal, it.RxDropped, &name)
			e.known1(nContainerNetworkReceiveErrorsTotal, it.RxErrors, &name)
			e.known1(nContainerNetworkTransmitBytesTotal, it.TxBytes, &name)
			e.known1(nContainerNetworkTransmitPacketsTotal, it.TxPackets, &name)
			e.known1(nContainerNetworkTransmitPacketsDroppedTotal, it.TxDropped, &name)
			e.known1(nContainerNetworkTransmitErrorsTotal, it.TxErrors, &name)
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
			e.known1(nContainerNetworkTcpConnections, n.TCPStates.V4[st], &lTCPStates[st])
			e.known1(nContainerNetworkTcp6Connections, n.TCPStates.V6[st], &lTCPStates[st]) // Unavailable without IPv6
		}
	}
}

// self emits the collector's own series.
func (e *encoder) self(s *sink.Self) {
	e.emit(nMetricsdScrapeDurationSeconds, s.ScrapeSeconds)
	e.emit(nMetricsdContainers, float64(s.Containers))
	e.emit(nMetricsdNetworkNamespaces, float64(s.Namespaces))
	for _, x := range s.Errors {
		l := e.dynLabel(oStage, x.Stage)
		e.emit1(nMetricsdErrorsTotal, float64(x.Count), &l)
	}
	e.emit(nMetricsdSinkDroppedPointsTotal, float64(s.SinkDropped))
	e.emit(nMetricsdSinkWriteDurationSeconds, s.SinkWriteSeconds)
	e.emit1(nMetricsdSinkValuesChangedTotal, float64(s.Sanitized.Replaced), &lReplaced)
	e.emit1(nMetricsdSinkValuesChangedTotal, float64(s.Sanitized.Truncated), &lTruncated)
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
