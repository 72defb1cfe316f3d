package remotewrite

import (
	"sort"
	"strings"
	"unsafe"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/wire"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
)

// MaxLabelValueLen is the most bytes of a label value: longer values (a
// container's name or label can be anything) are cut on a character
// boundary. Mimir refuses values over 2048 bytes by default, and Cortex
// and VictoriaMetrics have similar limits.
const MaxLabelValueLen = 1024

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
	cgroupID bool
	keep     func(string) bool
	ext      []sink.Tag // external labels, sorted by name

	vals []byte  // the current container's label values, sanitised
	base []label // its labels and the external ones, sorted by name
	cur  []label // the current series' labels
	dev  []byte  // the current device label
	tags []sink.Tag
	ts   int64

	buf  []byte
	ends []int
}

func newEncoder(tg *sink.Tagger, cgroupID bool, keep func(string) bool, ext map[string]string) *encoder {
	e := &encoder{tagger: tg, cgroupID: cgroupID, keep: keep}
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
		e.container(s)
		e.sample(s, snap)
	}
	if snap.Self != nil {
		e.startSelf()
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
		e.vals = wire.AppendValid(e.vals, t.Value, MaxLabelValueLen)
		e.base = append(e.base, label{name: t.Key, lo: lo, hi: len(e.vals)})
	}
}

// container prepares the labels of s's series: its tags (empty ones left
// out, as Prometheus drops a label with an empty value) and the external
// labels, sorted.
func (e *encoder) container(s *sink.Sample) {
	e.vals, e.base = e.vals[:0], e.base[:0]
	e.tags = e.tagger.Append(e.tags[:0], &s.Container)
	i, j := 0, 0
	for i < len(e.tags) || j < len(e.ext) {
		var t sink.Tag
		if j >= len(e.ext) || i < len(e.tags) && e.tags[i].Key < e.ext[j].Key {
			t = e.tags[i]
			if t.Key == "id" && e.cgroupID && s.Container.CgroupPath != "" {
				t.Value = s.Container.CgroupPath
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
		e.vals = wire.AppendValid(e.vals, t.Value, MaxLabelValueLen)
		e.base = append(e.base, label{name: t.Key, lo: lo, hi: len(e.vals)})
	}
}

const nameLabel = "__name__"

// series appends one record: metric name with the base labels, the extra
// labels (names n1 < n2, either may be ""; values sanitised into e.extra)
// and value v at the snapshot's time.
func (e *encoder) series(name string, v float64, n1, v1, n2, v2 string) {
	e.cur = e.cur[:0]
	// The extra labels' values go after the container's in vals, for
	// this series only.
	mark := len(e.vals)
	var x [2]label
	nx := 0
	for _, p := range [2][2]string{{n1, v1}, {n2, v2}} {
		if p[0] == "" || p[1] == "" {
			continue
		}
		lo := len(e.vals)
		e.vals = wire.AppendValid(e.vals, p[1], MaxLabelValueLen)
		x[nx] = label{name: p[0], lo: lo, hi: len(e.vals)}
		nx++
	}
	i, j := 0, 0
	for i < len(e.base) || j < nx {
		if j >= nx || i < len(e.base) && e.base[i].name < x[j].name {
			e.cur = append(e.cur, e.base[i])
			i++
		} else {
			e.cur = append(e.cur, x[j])
			j++
		}
	}
	k := 0
	for k < len(e.cur) && e.cur[k].name < nameLabel {
		k++
	}
	e.cur = append(e.cur, label{})
	copy(e.cur[k+1:], e.cur[k:])
	e.cur[k] = label{name: nameLabel, lo: -1}

	// Sizes: TimeSeries{labels = 1 (Label{name = 1, value = 2}), samples
	// = 2 (Sample{value = 1 double, timestamp = 2 int64})}.
	size := 0
	for _, l := range e.cur {
		vl := l.hi - l.lo
		if l.lo < 0 {
			vl = len(name)
		}
		size += wire.SizeBytes(1, wire.SizeBytes(1, len(l.name))+wire.SizeBytes(2, vl))
	}
	sample := 9 + wire.SizeTag(2) + wire.SizeVarint(uint64(e.ts))
	size += wire.SizeBytes(2, sample)

	b := wire.AppendTag(e.buf, 1, wire.Bytes)
	b = wire.AppendVarint(b, uint64(size))
	for _, l := range e.cur {
		var val []byte
		vs := name
		if l.lo >= 0 {
			val = e.vals[l.lo:l.hi]
			vs = ""
		}
		vl := len(val) + len(vs)
		b = wire.AppendTag(b, 1, wire.Bytes)
		b = wire.AppendVarint(b, uint64(wire.SizeBytes(1, len(l.name))+wire.SizeBytes(2, vl)))
		b = wire.AppendString(b, 1, l.name)
		b = wire.AppendTag(b, 2, wire.Bytes)
		b = wire.AppendVarint(b, uint64(vl))
		b = append(b, val...)
		b = append(b, vs...)
	}
	b = wire.AppendTag(b, 2, wire.Bytes)
	b = wire.AppendVarint(b, uint64(sample))
	b = wire.AppendDouble(b, 1, v)
	b = wire.AppendTag(b, 2, wire.Varint)
	b = wire.AppendVarint(b, uint64(e.ts))
	e.buf = b
	e.ends = append(e.ends, len(b))
	e.vals = e.vals[:mark]
}

func (e *encoder) emit(name string, v float64) { e.series(name, v, "", "", "", "") }

func (e *encoder) emit1(name string, v float64, n, val string) { e.series(name, v, n, val, "", "") }

// counter and gauge emit a cgroup value when Known, divided by div
// (division, not multiplication by 1e-9, gives the closest float: 7.5,
// not 7.500000000000001), as sink/prometheus does.
func (e *encoder) counter(name string, v cgroup.Value, div float64) {
	if x, ok := v.Get(); ok {
		e.emit(name, float64(x)/div)
	}
}

func (e *encoder) gauge(name string, v cgroup.Value) {
	if x, ok := v.Get(); ok {
		e.emit(name, float64(x))
	}
}

// known1 emits a Known value with one label, label=value.
func (e *encoder) known1(name string, v cgroup.Value, label, value string) {
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
func (e *encoder) limit(name string, v cgroup.Value) {
	if v.Available() {
		x, _ := v.Get()
		e.emit(name, float64(x))
	}
}

const (
	nsPerSec = 1e9
	usPerSec = 1e6
)

var psiResources = [3]string{"cpu", "memory", "io"}

// The PSI series' names, by resource.
var psiWaiting, psiStalled = func() (w, s [3]string) {
	for i, r := range psiResources {
		w[i] = "container_pressure_" + r + "_waiting_seconds_total"
		s[i] = "container_pressure_" + r + "_stalled_seconds_total"
	}
	return
}()

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
	e.counter("container_cpu_usage_seconds_total", cpu.Usage, nsPerSec)
	e.counter("container_cpu_user_seconds_total", cpu.User, nsPerSec)
	e.counter("container_cpu_system_seconds_total", cpu.System, nsPerSec)
	e.counter("container_cpu_cfs_periods_total", cpu.Periods, 1)
	e.counter("container_cpu_cfs_throttled_periods_total", cpu.ThrottledPeriods, 1)
	e.counter("container_cpu_cfs_throttled_seconds_total", cpu.ThrottledTime, nsPerSec)
	e.gauge("container_spec_cpu_quota", usec(cpu.Quota)) // left out when unlimited, as cAdvisor
	e.gauge("container_spec_cpu_period", usec(cpu.Period))
	if x, ok := cpu.Shares.Get(); ok {
		e.emit("container_spec_cpu_shares", float64(x))
	} else if w, ok := cpu.Weight.Get(); ok && w >= 1 {
		// cgroup v2: cpu.weight converted back to shares, as cAdvisor and runc do.
		e.emit("container_spec_cpu_shares", float64(2+(w-1)*262142/9999))
	}

	mem := &st.Memory
	e.gauge("container_memory_usage_bytes", mem.Usage)
	e.gauge("container_memory_working_set_bytes", mem.WorkingSet)
	e.gauge("container_memory_rss", mem.Anon)
	e.gauge("container_memory_cache", mem.File)
	e.gauge("container_memory_mapped_file", mem.MappedFile)
	e.gauge("container_memory_swap", mem.SwapUsage)
	e.gauge("container_memory_max_usage_bytes", mem.Peak)
	e.gauge("container_memory_kernel_usage", mem.Kernel)
	if v, ok := mem.Pgfault.Get(); ok {
		e.series("container_memory_failures_total", float64(v), "failure_type", "pgfault", "scope", "hierarchy")
	}
	if v, ok := mem.Pgmajfault.Get(); ok {
		e.series("container_memory_failures_total", float64(v), "failure_type", "pgmajfault", "scope", "hierarchy")
	}
	e.limit("container_spec_memory_limit_bytes", mem.Limit)
	if mem.MemSwapLimit.Available() {
		e.limit("container_spec_memory_swap_limit_bytes", mem.MemSwapLimit) // v1: memory+swap, as cAdvisor
	} else {
		e.limit("container_spec_memory_swap_limit_bytes", mem.SwapLimit) // v2: memory.swap.max
	}
	e.counter("container_oom_events_total", mem.Events.OOMKill, 1)

	e.gauge("container_threads", st.Pids.Current)
	e.limit("container_threads_max", st.Pids.Limit)
	e.emit("container_last_seen", float64(snap.Time.UnixNano())/1e9)
	if t := s.Container.Started; !t.IsZero() {
		e.emit("container_start_time_seconds", float64(t.UnixNano())/1e9)
	}

	for i := range st.IO.Devices {
		d := &st.IO.Devices[i]
		e.dev = deviceLabel(e.dev[:0], d)
		dev := unsafe.String(unsafe.SliceData(e.dev), len(e.dev))
		e.known1("container_fs_reads_bytes_total", d.ReadBytes, "device", dev)
		e.known1("container_fs_writes_bytes_total", d.WriteBytes, "device", dev)
		e.known1("container_fs_reads_total", d.ReadOps, "device", dev)
		e.known1("container_fs_writes_total", d.WriteOps, "device", dev)
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		if v, ok := h.Usage.Get(); ok {
			e.emit1("container_hugetlb_usage_bytes", float64(v), "pagesize", h.PageSize)
		}
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.counter(psiWaiting[i], usec(p.Some.Total), usPerSec)
		e.counter(psiStalled[i], usec(p.Full.Total), usPerSec)
	}

	n := s.Net
	if n == nil {
		return
	}
	if n.Parts.Has(netns.PartDev) {
		for i := range n.Interfaces {
			it := &n.Interfaces[i]
			if e.keep != nil && !e.keep(it.Name) {
				continue
			}
			e.known1("container_network_receive_bytes_total", it.RxBytes, "interface", it.Name)
			e.known1("container_network_receive_packets_total", it.RxPackets, "interface", it.Name)
			e.known1("container_network_receive_packets_dropped_total", it.RxDropped, "interface", it.Name)
			e.known1("container_network_receive_errors_total", it.RxErrors, "interface", it.Name)
			e.known1("container_network_transmit_bytes_total", it.TxBytes, "interface", it.Name)
			e.known1("container_network_transmit_packets_total", it.TxPackets, "interface", it.Name)
			e.known1("container_network_transmit_packets_dropped_total", it.TxDropped, "interface", it.Name)
			e.known1("container_network_transmit_errors_total", it.TxErrors, "interface", it.Name)
		}
	}
	if n.Parts.Has(netns.PartTCPStates) {
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ {
			e.known1("container_network_tcp_connections", n.TCPStates.V4[st], "tcp_state", tcpStates[st])
			e.known1("container_network_tcp6_connections", n.TCPStates.V6[st], "tcp_state", tcpStates[st]) // Unavailable without IPv6
		}
	}
}

// self emits the collector's own series.
func (e *encoder) self(s *sink.Self) {
	e.emit("metricsd_scrape_duration_seconds", s.ScrapeSeconds)
	e.emit("metricsd_containers", float64(s.Containers))
	e.emit("metricsd_network_namespaces", float64(s.Namespaces))
	for _, x := range s.Errors {
		e.emit1("metricsd_errors_total", float64(x.Count), "stage", x.Stage)
	}
	e.emit("metricsd_sink_dropped_points_total", float64(s.SinkDropped))
	e.emit("metricsd_sink_write_duration_seconds", s.SinkWriteSeconds)
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
