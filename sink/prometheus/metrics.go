package prometheus

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
)

// metrics holds the Descs; the names and help follow cAdvisor.
type metrics struct {
	all []*prometheus.Desc
	// fams is each Desc's name and help, in the order of all, for the text
	// exposition (Handler); famIdx finds a Desc's index.
	fams   []family
	famIdx map[*prometheus.Desc]int

	cpuUsage, cpuUser, cpuSystem                      *prometheus.Desc
	cfsPeriods, cfsThrottledPeriods, cfsThrottledSecs *prometheus.Desc
	specCPUQuota, specCPUPeriod, specCPUShares        *prometheus.Desc

	memUsage, memWorkingSet, memRSS, memCache, memMappedFile *prometheus.Desc
	memSwap, memMaxUsage, memKernel, memFailures             *prometheus.Desc
	specMemLimit, specMemSwapLimit, oomEvents                *prometheus.Desc

	threads, threadsMax, lastSeen, startTime *prometheus.Desc
	threadsPeak, forkFailures                *prometheus.Desc

	memSwapPeak, memEvents, memEventsLocal, memSwapEvents *prometheus.Desc

	info *prometheus.Desc

	fsReadsBytes, fsWritesBytes, fsReads, fsWrites *prometheus.Desc

	hugetlbUsage *prometheus.Desc

	psiWaiting, psiStalled           [3]*prometheus.Desc
	psiWaitingRatio, psiStalledRatio [3]*prometheus.Desc

	netRxBytes, netRxPackets, netRxDropped, netRxErrors *prometheus.Desc
	netTxBytes, netTxPackets, netTxDropped, netTxErrors *prometheus.Desc
	tcpConns, tcp6Conns                                 *prometheus.Desc
	tcpInSegs, tcpOutSegs, tcpRetransSegs               *prometheus.Desc
	udpInErrors, udpRcvbufErrors, udpSndbufErrors       *prometheus.Desc

	// The collector's own series, without container labels.
	selfScrape, selfContainers, selfNamespaces, selfErrors *prometheus.Desc
	selfSinkDropped, selfSinkWrite                         *prometheus.Desc
	selfSanitized, selfIfacesLeftOut                       *prometheus.Desc
}

func newMetrics(labels, infoLabels []string, global []sink.Tag) *metrics {
	m := &metrics{famIdx: make(map[*prometheus.Desc]int)}
	add := func(desc *prometheus.Desc, name, help string) *prometheus.Desc {
		m.famIdx[desc] = len(m.all)
		m.all = append(m.all, desc)
		m.fams = append(m.fams, family{name: name, help: help})
		return desc
	}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		ls := append(append([]string(nil), labels...), extra...)
		return add(prometheus.NewDesc(name, help, ls, nil), name, help)
	}
	m.cpuUsage = d("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "cpu")
	m.cpuUser = d("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.")
	m.cpuSystem = d("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.")
	m.cfsPeriods = d("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.")
	m.cfsThrottledPeriods = d("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.")
	m.cfsThrottledSecs = d("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.")
	m.specCPUQuota = d("container_spec_cpu_quota", "CPU quota of the container, in microseconds per period.")
	m.specCPUPeriod = d("container_spec_cpu_period", "CPU period of the container, in microseconds.")
	m.specCPUShares = d("container_spec_cpu_shares", "CPU share of the container.")

	m.memUsage = d("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.")
	m.memWorkingSet = d("container_memory_working_set_bytes", "Current working set in bytes.")
	m.memRSS = d("container_memory_rss", "Size of RSS in bytes.")
	m.memCache = d("container_memory_cache", "Number of bytes of page cache memory.")
	m.memMappedFile = d("container_memory_mapped_file", "Size of memory mapped files in bytes.")
	m.memSwap = d("container_memory_swap", "Container swap usage in bytes.")
	m.memMaxUsage = d("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.")
	m.memKernel = d("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.")
	m.memFailures = d("container_memory_failures_total", "Cumulative count of memory allocation failures.", "failure_type", "scope")
	m.specMemLimit = d("container_spec_memory_limit_bytes", "Memory limit for the container, 0 when unlimited.")
	m.specMemSwapLimit = d("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container, 0 when unlimited.")
	m.oomEvents = d("container_oom_events_total", "Count of out of memory events observed for the container.")
	m.memSwapPeak = d("container_memory_swap_max_usage_bytes", "Maximum swap usage recorded in bytes.")
	m.memEvents = d("container_memory_events_total", "Memory events of the container and its descendants (memory.events).", "event")
	m.memEventsLocal = d("container_memory_events_local_total", "Memory events of the container's own cgroup (memory.events.local).", "event")
	m.memSwapEvents = d("container_memory_swap_events_total", "Swap events of the container (memory.swap.events).", "event")

	m.threads = d("container_threads", "Number of threads running inside the container.")
	m.threadsMax = d("container_threads_max", "Maximum number of threads allowed inside the container, 0 when unlimited.")
	m.threadsPeak = d("container_threads_peak", "Highest number of threads recorded inside the container (pids.peak).")
	m.forkFailures = d("container_fork_failures_total", "Forks refused because a pids limit was reached (pids.events max).")
	m.lastSeen = d("container_last_seen", "Last time a container was seen by the exporter.")
	m.startTime = d("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")

	m.fsReadsBytes = d("container_fs_reads_bytes_total", "Cumulative count of bytes read.", "device")
	m.fsWritesBytes = d("container_fs_writes_bytes_total", "Cumulative count of bytes written.", "device")
	m.fsReads = d("container_fs_reads_total", "Cumulative count of reads completed.", "device")
	m.fsWrites = d("container_fs_writes_total", "Cumulative count of writes completed.", "device")

	m.hugetlbUsage = d("container_hugetlb_usage_bytes", "Current hugepage usage in bytes.", "pagesize")

	for i, r := range psiResources {
		m.psiWaiting[i] = d("container_pressure_"+r+"_waiting_seconds_total", "Total time duration tasks in the container have waited due to "+r+" congestion.")
		m.psiStalled[i] = d("container_pressure_"+r+"_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to "+r+" congestion.")
	}
	for i, r := range psiResources {
		m.psiWaitingRatio[i] = d("container_pressure_"+r+"_waiting_ratio", "Share of wall time in which tasks in the container waited due to "+r+" congestion, averaged over the window (PSI some avg10, avg60, avg300).", "window")
		m.psiStalledRatio[i] = d("container_pressure_"+r+"_stalled_ratio", "Share of wall time in which no task in the container could make progress due to "+r+" congestion, averaged over the window (PSI full avg10, avg60, avg300).", "window")
	}

	m.netRxBytes = d("container_network_receive_bytes_total", "Cumulative count of bytes received.", "interface")
	m.netRxPackets = d("container_network_receive_packets_total", "Cumulative count of packets received.", "interface")
	m.netRxDropped = d("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", "interface")
	m.netRxErrors = d("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", "interface")
	m.netTxBytes = d("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", "interface")
	m.netTxPackets = d("container_network_transmit_packets_total", "Cumulative count of packets transmitted.", "interface")
	m.netTxDropped = d("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", "interface")
	m.netTxErrors = d("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", "interface")
	// cAdvisor calls these container_network_tcp_usage_total and
	// container_network_tcp6_usage_total, gauges with a _total suffix that
	// promtool check metrics rejects; metricsd names them as gauges.
	m.tcpConns = d("container_network_tcp_connections", "TCP (IPv4) sockets of the container by state.", "tcp_state")
	m.tcp6Conns = d("container_network_tcp6_connections", "TCP (IPv6) sockets of the container by state.", "tcp_state")
	m.tcpInSegs = d("container_network_tcp_segments_received_total", "TCP segments received in the container's network namespace (Tcp InSegs).")
	m.tcpOutSegs = d("container_network_tcp_segments_sent_total", "TCP segments sent in the container's network namespace, retransmissions excluded (Tcp OutSegs).")
	m.tcpRetransSegs = d("container_network_tcp_segments_retransmitted_total", "TCP segments retransmitted in the container's network namespace (Tcp RetransSegs).")
	m.udpInErrors = d("container_network_udp_receive_errors_total", "UDP datagrams received in error in the container's network namespace, buffer errors included (Udp InErrors).")
	m.udpRcvbufErrors = d("container_network_udp_receive_buffer_errors_total", "UDP datagrams dropped because a socket's receive buffer was full (Udp RcvbufErrors).")
	m.udpSndbufErrors = d("container_network_udp_send_buffer_errors_total", "UDP datagrams not sent because a socket's send buffer was full (Udp SndbufErrors).")
	// The container's labels once, for the other series to join on id
	// (sink.Tags.Info, InfoOnly).
	m.info = add(prometheus.NewDesc("container_info", containerInfoHelp, infoLabels, nil), "container_info", containerInfoHelp)

	var constLabels prometheus.Labels // the self series carry the global tags only
	for _, g := range global {
		if constLabels == nil {
			constLabels = prometheus.Labels{}
		}
		constLabels[g.Key] = g.Value
	}
	self := func(name, help string, labels ...string) *prometheus.Desc {
		return add(prometheus.NewDesc(name, help, labels, constLabels), name, help)
	}
	m.selfScrape = self("metricsd_scrape_duration_seconds", "How long taking the latest snapshot took.")
	m.selfContainers = self("metricsd_containers", "Containers tracked.")
	m.selfNamespaces = self("metricsd_network_namespaces", "Network namespaces open (shared ones once).")
	m.selfErrors = self("metricsd_errors_total", "Collection errors by stage.", "stage")
	m.selfSinkDropped = self("metricsd_sink_dropped_points_total", "Points the sinks dropped (buffers full).")
	m.selfSinkWrite = self("metricsd_sink_write_duration_seconds", "How long writing the previous snapshot to every sink took.")
	m.selfSanitized = self("metricsd_sink_values_changed_total", "Tag and label values from containers the sinks changed: bytes replaced (invalid UTF-8, control characters) or cut to the length bound.", "change")
	m.selfIfacesLeftOut = self("metricsd_sink_interfaces_left_out_total", "Network interfaces the sinks left out: past the bound per namespace, or named as another once sanitised.")
	return m
}

const containerInfoHelp = "The container's labels, with the value 1: the other series join it on id."

// self sends the collector's own series.
func (m *metrics) self(send func(prometheus.Metric), s *sink.Self) {
	send(prometheus.MustNewConstMetric(m.selfScrape, prometheus.GaugeValue, s.ScrapeSeconds))
	send(prometheus.MustNewConstMetric(m.selfContainers, prometheus.GaugeValue, float64(s.Containers)))
	send(prometheus.MustNewConstMetric(m.selfNamespaces, prometheus.GaugeValue, float64(s.Namespaces)))
	for _, e := range s.Errors {
		send(prometheus.MustNewConstMetric(m.selfErrors, prometheus.CounterValue, float64(e.Count), e.Stage))
	}
	send(prometheus.MustNewConstMetric(m.selfSinkDropped, prometheus.CounterValue, float64(s.SinkDropped)))
	send(prometheus.MustNewConstMetric(m.selfSinkWrite, prometheus.GaugeValue, s.SinkWriteSeconds))
	send(prometheus.MustNewConstMetric(m.selfSanitized, prometheus.CounterValue, float64(s.Sanitized.Replaced), "replaced"))
	send(prometheus.MustNewConstMetric(m.selfSanitized, prometheus.CounterValue, float64(s.Sanitized.Truncated), "truncated"))
	send(prometheus.MustNewConstMetric(m.selfIfacesLeftOut, prometheus.CounterValue, float64(s.Sanitized.Interfaces)))
}

var psiResources = [3]string{"cpu", "memory", "io"}

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

// Label names of the series' own labels, addressable for dto.LabelPair.
var (
	lnDevice      = "device"
	lnInterface   = "interface"
	lnPagesize    = "pagesize"
	lnFailureType = "failure_type"
	lnScope       = "scope"
	lnTCPState    = "tcp_state"
	lnCPU         = "cpu"
	lnEvent       = "event"
	lnWindow      = "window"

	lvPgfault    = "pgfault"
	lvPgmajfault = "pgmajfault"
	lvHierarchy  = "hierarchy"
	lvTotal      = "total"
)

// The event label's values, as the kernel's keys.
var (
	memEventNames  = [...]string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"}
	swapEventNames = [...]string{"high", "max", "fail"}
	psiWindows     = [...]string{"10s", "60s", "300s"}
)

// memEventValues are e's counts in memEventNames order.
func memEventValues(e *cgroup.MemoryEvents) [len(memEventNames)]cgroup.Value {
	return [...]cgroup.Value{e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill}
}

// metric is a prometheus.Metric made for one scrape: what
// prometheus.MustNewConstMetric makes, without its per-label allocations.
// Its label pairs are shared by the container's series (the registry treats
// dto.Metric.Label as immutable), and it holds its dto.Counter or
// dto.Gauge itself, so a series costs no allocation of its own.
type metric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	val    float64
	gauge  bool
	c      dto.Counter
	g      dto.Gauge
}

func (m *metric) Desc() *prometheus.Desc { return m.desc }

func (m *metric) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.gauge {
		m.g.Value = &m.val
		out.Gauge = &m.g
	} else {
		m.c.Value = &m.val
		out.Counter = &m.c
	}
	return nil
}

// emitter sends one container's metrics.
type emitter struct {
	send func(prometheus.Metric)
	// once: send uses each metric before it returns (the text exposition),
	// so one scratch metric serves every series.
	once    bool
	scratch metric
	m       *metrics
	// keys are the container label names, sorted.
	keys []string
	// base is the container's label pairs, sorted by name, fresh for each
	// container and scrape (a scrape's output may outlive the snapshot),
	// but with once, where the buffers below are reused instead.
	base []*dto.LabelPair
	slab []metric

	pairs []dto.LabelPair     // once: base's storage
	wout  [2][]*dto.LabelPair // once: with's results, alternately
	wpair [2]dto.LabelPair    // once: with's extra pairs, alternately
	wi    int                 // once: the slot the next with uses
}

// start prepares the label pairs of a container with label values vals
// (fresh storage, in keys order) and room for n series.
func (e *emitter) start(vals []string, n int) {
	var pairs []dto.LabelPair
	if e.once {
		if cap(e.pairs) < len(vals) {
			e.pairs = make([]dto.LabelPair, len(vals))
			e.base = make([]*dto.LabelPair, len(vals))
		}
		pairs, e.base = e.pairs[:len(vals)], e.base[:len(vals)]
	} else {
		pairs = make([]dto.LabelPair, len(vals))
		e.base = make([]*dto.LabelPair, len(vals))
	}
	for i := range vals {
		pairs[i].Name, pairs[i].Value = &e.keys[i], &vals[i]
		e.base[i] = &pairs[i]
	}
	if !e.once {
		e.slab = make([]metric, 0, n)
	}
}

// with returns the container's label pairs plus name=value, sorted. With
// once, the result lives until the second next call (with2 relies on that).
func (e *emitter) with(name, value *string) []*dto.LabelPair {
	var out []*dto.LabelPair
	var extra *dto.LabelPair
	k := e.wi
	if e.once {
		e.wi ^= 1
		out, extra = e.wout[k][:0], &e.wpair[k]
		extra.Name, extra.Value = name, value
	} else {
		out = make([]*dto.LabelPair, 0, len(e.base)+1)
		extra = &dto.LabelPair{Name: name, Value: value}
	}
	done := false
	for _, p := range e.base {
		if !done && *name < *p.Name {
			out = append(out, extra)
			done = true
		}
		out = append(out, p)
	}
	if !done {
		out = append(out, extra)
	}
	if e.once {
		e.wout[k] = out
	}
	return out
}

// own returns a label value the metrics sent may keep: a copy of the
// snapshot's string, which may change after Collect, unless the metrics are
// used before send returns (once).
func (e *emitter) own(s *string) *string {
	if e.once {
		return s
	}
	c := *s
	return &c
}

// with2 is with for two labels, n1 < n2 (failure_type, scope).
func (e *emitter) with2(n1, v1, n2, v2 *string) []*dto.LabelPair {
	l := e.with(n1, v1)
	saved := e.base
	e.base = l
	l = e.with(n2, v2)
	e.base = saved
	return l
}

func (e *emitter) emit(d *prometheus.Desc, t prometheus.ValueType, v float64) {
	e.emitL(d, t, v, e.base)
}

func (e *emitter) emitL(d *prometheus.Desc, t prometheus.ValueType, v float64, labels []*dto.LabelPair) {
	m := &e.scratch
	if !e.once {
		if len(e.slab) == cap(e.slab) {
			e.slab = make([]metric, 0, 16) // never reallocate: sent metrics point into it
		}
		e.slab = e.slab[:len(e.slab)+1]
		m = &e.slab[len(e.slab)-1]
	}
	m.desc, m.labels, m.val, m.gauge = d, labels, v, t == prometheus.GaugeValue
	e.send(m)
}

// counter and gauge emit a cgroup value when Known.
// The value is divided by div (division, not multiplication by 1e-9,
// gives the closest float: 7.5, not 7.500000000000001).
func (e *emitter) counter(d *prometheus.Desc, v cgroup.Value, div float64) {
	if v.State == cgroup.Known {
		e.emit(d, prometheus.CounterValue, float64(v.V)/div)
	}
}

func (e *emitter) gauge(d *prometheus.Desc, v cgroup.Value) {
	if v.State == cgroup.Known {
		e.emit(d, prometheus.GaugeValue, float64(v.V))
	}
}

// counterL is counter with the labels ls.
func (e *emitter) counterL(d *prometheus.Desc, v cgroup.Value, ls []*dto.LabelPair) {
	if v.State == cgroup.Known {
		e.emitL(d, prometheus.CounterValue, float64(v.V), ls)
	}
}

// usec turns a Known value in nanoseconds into the kernel's whole
// microseconds, the unit cAdvisor's series are computed from: dividing the
// integer first keeps every float exactly what it was when the library
// held microseconds.
func usec(v cgroup.Value) cgroup.Value {
	if v.State == cgroup.Known {
		v.V /= 1000
	}
	return v
}

// limit emits a limit: its value when Known, 0 when Unlimited.
func (e *emitter) limit(d *prometheus.Desc, v cgroup.Value) {
	if v.State != cgroup.Unavailable {
		e.emit(d, prometheus.GaugeValue, float64(v.V))
	}
}

// seriesBound is at least the number of series of sample s with ifaces
// interfaces written.
func seriesBound(s *sink.Sample, ifaces int) int {
	n := 80 + 4*len(s.Cgroup.IO.Devices) + len(s.Cgroup.Hugetlb.Sizes)
	if s.Net != nil {
		n += 8*ifaces + 2*len(tcpStates) + 6
	}
	return n
}

const (
	nsPerSec = 1e9
	usPerSec = 1e6
)

// sample emits s's series; ifs are the interfaces written, with their
// sanitised names.
func (e *emitter) sample(s *sink.Sample, snap *sink.Snapshot, ifs []sink.Interface) {
	m, st := e.m, &s.Cgroup
	cpu := &st.CPU
	if v, ok := cpu.Usage.Get(); ok { // cpu="total", as cAdvisor without per-CPU series
		e.emitL(m.cpuUsage, prometheus.CounterValue, float64(v)/nsPerSec, e.with(&lnCPU, &lvTotal))
	}
	e.counter(m.cpuUser, cpu.User, nsPerSec)
	e.counter(m.cpuSystem, cpu.System, nsPerSec)
	e.counter(m.cfsPeriods, cpu.Periods, 1)
	e.counter(m.cfsThrottledPeriods, cpu.ThrottledPeriods, 1)
	e.counter(m.cfsThrottledSecs, cpu.ThrottledTime, nsPerSec)
	e.gauge(m.specCPUQuota, usec(cpu.Quota)) // left out when unlimited, as cAdvisor
	e.gauge(m.specCPUPeriod, usec(cpu.Period))
	switch {
	case cpu.Shares.State == cgroup.Known:
		e.gauge(m.specCPUShares, cpu.Shares)
	case cpu.Weight.State == cgroup.Known && cpu.Weight.V >= 1:
		// cgroup v2: cpu.weight converted back to shares, as cAdvisor and
		// runc do (the inverse of runc's ConvertCPUSharesToCgroupV2Value).
		e.emit(m.specCPUShares, prometheus.GaugeValue, float64(2+(cpu.Weight.V-1)*262142/9999))
	}

	mem := &st.Memory
	e.gauge(m.memUsage, mem.Usage)
	e.gauge(m.memWorkingSet, mem.WorkingSet)
	e.gauge(m.memRSS, mem.Anon)
	e.gauge(m.memCache, mem.File)
	e.gauge(m.memMappedFile, mem.MappedFile)
	e.gauge(m.memSwap, mem.SwapUsage)
	e.gauge(m.memMaxUsage, mem.Peak)
	e.gauge(m.memKernel, mem.Kernel)
	if v, ok := mem.Pgfault.Get(); ok {
		e.emitL(m.memFailures, prometheus.CounterValue, float64(v), e.with2(&lnFailureType, &lvPgfault, &lnScope, &lvHierarchy))
	}
	if v, ok := mem.Pgmajfault.Get(); ok {
		e.emitL(m.memFailures, prometheus.CounterValue, float64(v), e.with2(&lnFailureType, &lvPgmajfault, &lnScope, &lvHierarchy))
	}
	e.limit(m.specMemLimit, mem.Limit)
	if mem.MemSwapLimit.Available() {
		e.limit(m.specMemSwapLimit, mem.MemSwapLimit) // v1: memory+swap, as cAdvisor
	} else {
		e.limit(m.specMemSwapLimit, mem.SwapLimit) // v2: memory.swap.max
	}
	e.counter(m.oomEvents, mem.Events.OOMKill, 1)
	e.gauge(m.memSwapPeak, mem.SwapPeak)
	for i, v := range memEventValues(&mem.Events) {
		e.counterL(m.memEvents, v, e.with(&lnEvent, &memEventNames[i]))
	}
	for i, v := range memEventValues(&mem.EventsLocal) {
		e.counterL(m.memEventsLocal, v, e.with(&lnEvent, &memEventNames[i]))
	}
	for i, v := range [...]cgroup.Value{mem.SwapEvents.High, mem.SwapEvents.Max, mem.SwapEvents.Fail} {
		e.counterL(m.memSwapEvents, v, e.with(&lnEvent, &swapEventNames[i]))
	}

	e.gauge(m.threads, st.Pids.Current)
	e.limit(m.threadsMax, st.Pids.Limit)
	e.gauge(m.threadsPeak, st.Pids.Peak)
	e.counter(m.forkFailures, st.Pids.ForkFailures, 1)
	e.emit(m.lastSeen, prometheus.GaugeValue, float64(snap.Time.UnixNano())/1e9)
	if t := s.Container.Started; !t.IsZero() {
		e.emit(m.startTime, prometheus.GaugeValue, float64(t.UnixNano())/1e9)
	}

	for i := range st.IO.Devices {
		d := &st.IO.Devices[i]
		dev := deviceLabel(d)
		ls := e.with(&lnDevice, &dev)
		e.counterL(m.fsReadsBytes, d.ReadBytes, ls)
		e.counterL(m.fsWritesBytes, d.WriteBytes, ls)
		e.counterL(m.fsReads, d.ReadOps, ls)
		e.counterL(m.fsWrites, d.WriteOps, ls)
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		if v, ok := h.Usage.Get(); ok {
			e.emitL(m.hugetlbUsage, prometheus.GaugeValue, float64(v), e.with(&lnPagesize, e.own(&h.PageSize)))
		}
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.counter(m.psiWaiting[i], usec(p.Some.Total), usPerSec)
		e.counter(m.psiStalled[i], usec(p.Full.Total), usPerSec)
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		e.psiRatios(m.psiWaitingRatio[i], &p.Some)
		e.psiRatios(m.psiStalledRatio[i], &p.Full)
	}

	n := s.Net
	if n == nil {
		return
	}
	if n.Parts.Has(netns.PartDev) {
		for j := range ifs {
			it := &n.Interfaces[ifs[j].Index]
			ls := e.with(&lnInterface, e.own(&ifs[j].Name))
			e.counterL(m.netRxBytes, it.RxBytes, ls)
			e.counterL(m.netRxPackets, it.RxPackets, ls)
			e.counterL(m.netRxDropped, it.RxDropped, ls)
			e.counterL(m.netRxErrors, it.RxErrors, ls)
			e.counterL(m.netTxBytes, it.TxBytes, ls)
			e.counterL(m.netTxPackets, it.TxPackets, ls)
			e.counterL(m.netTxDropped, it.TxDropped, ls)
			e.counterL(m.netTxErrors, it.TxErrors, ls)
		}
	}
	if n.Parts.Has(netns.PartSNMP) {
		e.counter(m.tcpInSegs, n.TCP.InSegs, 1)
		e.counter(m.tcpOutSegs, n.TCP.OutSegs, 1)
		e.counter(m.tcpRetransSegs, n.TCP.RetransSegs, 1)
		e.counter(m.udpInErrors, n.UDP.InErrors, 1)
		e.counter(m.udpRcvbufErrors, n.UDP.RcvbufErrors, 1)
		e.counter(m.udpSndbufErrors, n.UDP.SndbufErrors, 1)
	}
	if n.Parts.Has(netns.PartTCPStates) {
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ {
			ls := e.with(&lnTCPState, &tcpStates[st])
			if v, ok := n.TCPStates.V4[st].Get(); ok {
				e.emitL(m.tcpConns, prometheus.GaugeValue, float64(v), ls)
			}
			if v, ok := n.TCPStates.V6[st].Get(); ok { // Unavailable without IPv6
				e.emitL(m.tcp6Conns, prometheus.GaugeValue, float64(v), ls)
			}
		}
	}
}

// psiRatios emits a PSI line's averages as ratios (the kernel's percent
// / 100), one series per window, when the line was read.
func (e *emitter) psiRatios(d *prometheus.Desc, l *cgroup.PSILine) {
	if !l.Available() {
		return
	}
	for i, v := range [...]float64{l.Avg10, l.Avg60, l.Avg300} {
		e.emitL(d, prometheus.GaugeValue, v/100, e.with(&lnWindow, &psiWindows[i]))
	}
}

// deviceLabel is cAdvisor's device label: /dev/<name>, else major:minor.
func deviceLabel(d *cgroup.IODevice) string {
	if d.Name != "" {
		return "/dev/" + d.Name
	}
	return itoa(d.Major) + ":" + itoa(d.Minor)
}

func itoa(u uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return string(b[i:])
}
