// Package points is the point schema that sink/influx and sink/stdout write:
// it walks a sink.Snapshot as InfluxDB-style points (a measurement, the
// container's tags and at most one tag of the point's own, fields, a time)
// and encodes them as InfluxDB line protocol (Encoder) or hands them to any
// Visitor (sink/stdout's JSON lines).
//
// Every measurement, tag and field, with its unit and source, is listed in
// docs/METRICS.md. In short, per container:
//
//	container_info                        the container's tags, once (sink.Tags.Info, InfoOnly)
//	container_cpu                         CPU time, throttling, quota
//	container_memory                      usage, limit, working set, breakdown, events
//	container_pids                        tasks, their limit and peak, fork failures
//	container_blkio     (tag device)      block I/O per device
//	container_hugetlb   (tag page_size)   hugetlb usage per page size
//	container_pressure  (tag resource)    PSI for cpu, memory, io
//	container_net       (tag interface)   net/dev per interface
//	container_sockets                     net/sockstat
//	container_ip, container_tcp, container_udp   net/snmp (+ net/netstat TcpExt)
//	container_tcp_states                  TCP sockets by state (sock_diag)
//
// and for a container that left with OOM kills counted (sink.Departed), a
// last container_memory point with its events_oom_kill; and for each
// sink.Event, a container_oom_kill point at the event's time (WalkEvent).
//
// A value the kernel did not provide (an Unavailable cgroup.Value or
// netns.Value, such as a block I/O or net/dev counter the kernel did not
// print) is left out, never written as 0, and so is a limit that is not set
// (cgroup.Unlimited). A point with no field left is not written. Integers
// are written as signed 64-bit integers (InfluxDB 1.x has no unsigned type);
// counters past 2^63-1 are clamped to it.
package points

import (
	"math"
	"strconv"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// Visitor receives the points of a snapshot, container by container, as a
// stream of calls:
//
//	Container (Begin (Int | Float)* End)*
//
// A point may get no field at all (every value unavailable): a Visitor
// writes nothing for it. Begin's arguments and the tags stay valid until
// the next Begin and Container call respectively.
type Visitor interface {
	// Container starts the points of one container: tags are its tags,
	// sorted by key, with empty values where the container lacks the
	// attribute (an encoder leaves those out).
	Container(tags []sink.Tag)
	// Begin starts a point of the current container. extra is the point's
	// own tag (device, interface, page_size, resource), Key "" when it has
	// none.
	Begin(measurement string, extra sink.Tag)
	// Int and Float add a field to the point.
	Int(key string, v int64)
	Float(key string, v float64)
	// End ends the point, at time t (the snapshot's).
	End(t time.Time)
}

// Walker walks snapshots. Keep one and reuse it: in steady state a walk
// allocates nothing. It is not safe for concurrent use.
//
// Every tag value it hands a Visitor has gone through its sink.Sanitizer
// (valid UTF-8, no control characters, bounded), and a namespace's
// interfaces are bounded and told apart as the Sanitizer says.
type Walker struct {
	tagger   *sink.Tagger
	z        *sink.Sanitizer
	tags     []sink.Tag
	infoTags []sink.Tag
	global   []sink.Tag
	ifs      []sink.Interface
	name     []byte
	v        Visitor
	t        time.Time
	// devices caches the "major:minor" names of unnamed block devices.
	devices map[[2]uint32]string
}

// NewWalker returns a Walker that tags points as tg says, their values
// sanitised by z (nil: sink.NewSanitizer with the default limits).
func NewWalker(tg *sink.Tagger, z *sink.Sanitizer) *Walker {
	if z == nil {
		z = sink.NewSanitizer(sink.Limits{})
	}
	return &Walker{tagger: tg, z: z}
}

// Sanitizer returns the Walker's sanitizer, which counts what it changed.
func (w *Walker) Sanitizer() *sink.Sanitizer { return w.z }

// sanitize replaces the tag values that need it.
func (w *Walker) sanitize(tags []sink.Tag) {
	for i := range tags {
		if v := tags[i].Value; !w.z.Clean(v) {
			tags[i].Value = w.z.Value(v)
		}
	}
}

// Walk hands every point of s to v, container by container, in a fixed
// order.
func (w *Walker) Walk(s *sink.Snapshot, v Visitor) {
	w.v, w.t = v, s.Time
	for i := range s.Containers {
		w.container(&s.Containers[i])
	}
	for i := range s.Departed {
		w.departed(&s.Departed[i])
	}
	if s.Self != nil {
		w.self(s.Self)
	}
	w.v = nil
}

// WalkEvent hands e's point to v: an OOM kill is a container_oom_kill
// point with the container's series tags, kills (processes killed) and
// kills_total (the container's count after them, events_oom_kill), at the
// event's time.
func (w *Walker) WalkEvent(e *sink.Event, v Visitor) {
	if e.Kind != sink.EventOOMKill {
		return
	}
	w.v, w.t = v, e.Time
	w.tags = w.tagger.Append(w.tags[:0], &e.Container)
	w.sanitize(w.tags)
	w.v.Container(w.tags)
	w.begin("container_oom_kill", noTag)
	w.i("kills", e.Count)
	w.i("kills_total", e.Total)
	w.end()
	w.v = nil
}

// departed writes a container that left: its container_memory point with
// the count of OOM kills it left with, at the snapshot's time.
func (w *Walker) departed(d *sink.Departed) {
	w.tags = w.tagger.Append(w.tags[:0], &d.Container)
	w.sanitize(w.tags)
	w.v.Container(w.tags)
	w.begin("container_memory", noTag)
	w.c("events_oom_kill", d.OOMKills)
	w.end()
}

// info writes the container_info point when the Tags ask for it: every tag
// of the container, and paused (0 or 1) and start_time_s (when the runtime
// knows it) as fields; then leaves the container's series tags in w.tags,
// taken from the same sanitised values (each is sanitised, and counted,
// once).
func (w *Walker) info(c *runtime.Container) {
	if !w.tagger.Info() {
		w.tags = w.tagger.Append(w.tags[:0], c)
		w.sanitize(w.tags)
		return
	}
	w.infoTags = w.tagger.AppendInfo(w.infoTags[:0], c)
	w.sanitize(w.infoTags)
	w.v.Container(w.infoTags)
	w.begin("container_info", noTag)
	paused := uint64(0)
	if c.State == runtime.StatePaused {
		paused = 1
	}
	w.i("paused", paused)
	if !c.Started.IsZero() && c.Started.Unix() > 0 {
		w.i("start_time_s", uint64(c.Started.Unix()))
	}
	w.end()
	w.tags = w.tagger.SeriesFromInfo(w.tags[:0], w.infoTags)
}

// self writes the collector's own point, "metricsd", with the global tags
// only.
func (w *Walker) self(s *sink.Self) {
	w.global = append(w.global[:0], w.tagger.Global()...)
	w.sanitize(w.global)
	w.v.Container(w.global)
	w.begin("metricsd", noTag)
	w.f("scrape_seconds", s.ScrapeSeconds)
	w.i("containers", uint64(s.Containers))
	w.i("namespaces", uint64(s.Namespaces))
	for _, e := range s.Errors {
		if name, ok := errorFields[e.Stage]; ok {
			w.i(name, e.Count)
		}
	}
	w.i("sink_dropped", s.SinkDropped)
	w.f("sink_write_seconds", s.SinkWriteSeconds)
	w.i("sink_values_replaced", s.Sanitized.Replaced)
	w.i("sink_values_truncated", s.Sanitized.Truncated)
	w.i("sink_interfaces_left_out", s.Sanitized.Interfaces)
	w.end()
}

// errorFields are the field names of the stages' error counts: constants,
// so that nothing is built per snapshot.
var errorFields = map[string]string{
	"discover": "errors_discover", "open": "errors_open", "cgroup": "errors_cgroup",
	"net": "errors_net", "sink": "errors_sink",
}

func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// i adds an integer field.
func (w *Walker) i(key string, v uint64) { w.v.Int(key, clamp(v)) }

// f adds a float field (NaN and Inf are left out: line protocol has none).
func (w *Walker) f(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	w.v.Float(key, v)
}

// c adds a cgroup or netns value when Known (Unavailable and Unlimited are
// left out).
func (w *Walker) c(key string, v cgroup.Value) {
	if v.State == cgroup.Known {
		w.i(key, v.V)
	}
}

// us adds a value in nanoseconds as whole microseconds, when Known.
func (w *Walker) us(key string, v cgroup.Value) {
	if v.State == cgroup.Known {
		w.i(key, v.V/1000)
	}
}

func (w *Walker) begin(measurement string, extra sink.Tag) { w.v.Begin(measurement, extra) }

func (w *Walker) end() { w.v.End(w.t) }

var noTag sink.Tag

var psiResources = [3]string{"cpu", "memory", "io"}

func (w *Walker) container(s *sink.Sample) {
	w.info(&s.Container)
	w.v.Container(w.tags)
	st := &s.Cgroup

	cpu := &st.CPU
	w.begin("container_cpu", noTag)
	w.c("usage_ns", cpu.Usage)
	w.c("user_ns", cpu.User)
	w.c("system_ns", cpu.System)
	w.c("periods", cpu.Periods)
	w.c("throttled_periods", cpu.ThrottledPeriods)
	w.c("throttled_ns", cpu.ThrottledTime)
	w.c("bursts", cpu.Bursts)
	w.c("burst_ns", cpu.BurstTime)
	w.us("quota_us", cpu.Quota)
	w.us("period_us", cpu.Period)
	w.c("shares", cpu.Shares)
	w.c("weight", cpu.Weight)
	if cores, state := cpu.LimitCores(); state == cgroup.Known {
		w.f("limit_cores", cores)
	}
	w.end()

	m := &st.Memory
	w.begin("container_memory", noTag)
	w.c("usage_bytes", m.Usage)
	w.c("limit_bytes", m.Limit)
	w.c("working_set_bytes", m.WorkingSet)
	w.c("anon_bytes", m.Anon)
	w.c("file_bytes", m.File)
	w.c("shmem_bytes", m.Shmem)
	w.c("mapped_file_bytes", m.MappedFile)
	w.c("inactive_file_bytes", m.InactiveFile)
	w.c("active_file_bytes", m.ActiveFile)
	w.c("kernel_bytes", m.Kernel)
	w.c("swap_bytes", m.SwapUsage)
	w.c("swap_limit_bytes", m.SwapLimit)
	w.c("memsw_limit_bytes", m.MemSwapLimit)
	w.c("peak_bytes", m.Peak)
	w.c("swap_peak_bytes", m.SwapPeak)
	w.c("pgfault", m.Pgfault)
	w.c("pgmajfault", m.Pgmajfault)
	w.c("failcnt", m.Failcnt)
	w.c("events_low", m.Events.Low)
	w.c("events_high", m.Events.High)
	w.c("events_max", m.Events.Max)
	w.c("events_oom", m.Events.OOM)
	w.c("events_oom_kill", m.Events.OOMKill)
	w.c("events_oom_group_kill", m.Events.OOMGroupKill)
	w.c("under_oom", m.Events.UnderOOM)
	l := &m.EventsLocal
	w.c("events_local_low", l.Low)
	w.c("events_local_high", l.High)
	w.c("events_local_max", l.Max)
	w.c("events_local_oom", l.OOM)
	w.c("events_local_oom_kill", l.OOMKill)
	w.c("events_local_oom_group_kill", l.OOMGroupKill)
	w.c("swap_events_high", m.SwapEvents.High)
	w.c("swap_events_max", m.SwapEvents.Max)
	w.c("swap_events_fail", m.SwapEvents.Fail)
	w.end()

	w.begin("container_pids", noTag)
	w.c("current", st.Pids.Current)
	w.c("limit", st.Pids.Limit)
	w.c("peak", st.Pids.Peak)
	w.c("fork_failures", st.Pids.ForkFailures)
	w.end()

	for i := range st.IO.Devices {
		d := &st.IO.Devices[i]
		w.begin("container_blkio", sink.Tag{Key: "device", Value: w.device(d)})
		w.c("read_bytes", d.ReadBytes)
		w.c("write_bytes", d.WriteBytes)
		w.c("read_ops", d.ReadOps)
		w.c("write_ops", d.WriteOps)
		w.c("discard_bytes", d.DiscardBytes)
		w.c("discard_ops", d.DiscardOps)
		w.end()
	}
	for i := range st.Hugetlb.Sizes {
		h := &st.Hugetlb.Sizes[i]
		w.begin("container_hugetlb", sink.Tag{Key: "page_size", Value: h.PageSize})
		w.c("usage_bytes", h.Usage)
		w.c("limit_bytes", h.Limit)
		w.c("failcnt", h.Failcnt)
		w.end()
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		w.begin("container_pressure", sink.Tag{Key: "resource", Value: psiResources[i]})
		if p.Some.Available() {
			w.f("some_avg10", p.Some.Avg10)
			w.f("some_avg60", p.Some.Avg60)
			w.f("some_avg300", p.Some.Avg300)
			w.us("some_total_us", p.Some.Total)
		}
		if p.Full.Available() {
			w.f("full_avg10", p.Full.Avg10)
			w.f("full_avg60", p.Full.Avg60)
			w.f("full_avg300", p.Full.Avg300)
			w.us("full_total_us", p.Full.Total)
		}
		w.end()
	}

	if s.Net != nil {
		w.net(s.Net)
	}
}

// device names a block device for the device tag: its kernel name, else
// "major:minor".
func (w *Walker) device(d *cgroup.IODevice) string {
	if d.Name != "" {
		return d.Name
	}
	k := [2]uint32{d.Major, d.Minor}
	if n, ok := w.devices[k]; ok {
		return n
	}
	if w.devices == nil || len(w.devices) >= 1024 {
		w.devices = make(map[[2]uint32]string)
	}
	w.name = strconv.AppendUint(w.name[:0], uint64(d.Major), 10)
	w.name = append(w.name, ':')
	w.name = strconv.AppendUint(w.name, uint64(d.Minor), 10)
	n := string(w.name)
	w.devices[k] = n
	return n
}

var tcpStateFields = [...]string{
	netns.TCPEstablished: "established",
	netns.TCPSynSent:     "syn_sent",
	netns.TCPSynRecv:     "syn_recv",
	netns.TCPFinWait1:    "fin_wait1",
	netns.TCPFinWait2:    "fin_wait2",
	netns.TCPTimeWait:    "time_wait",
	netns.TCPClose:       "close",
	netns.TCPCloseWait:   "close_wait",
	netns.TCPLastAck:     "last_ack",
	netns.TCPListen:      "listen",
	netns.TCPClosing:     "closing",
}

func (w *Walker) net(n *netns.Stats) {
	if n.Parts.Has(netns.PartDev) {
		w.ifs = w.z.Interfaces(w.ifs[:0], n.Interfaces, nil)
		for _, k := range w.ifs {
			it := &n.Interfaces[k.Index]
			w.begin("container_net", sink.Tag{Key: "interface", Value: k.Name})
			w.c("rx_bytes", it.RxBytes)
			w.c("rx_packets", it.RxPackets)
			w.c("rx_errors", it.RxErrors)
			w.c("rx_dropped", it.RxDropped)
			w.c("rx_fifo", it.RxFIFO)
			w.c("rx_frame", it.RxFrame)
			w.c("rx_compressed", it.RxCompressed)
			w.c("rx_multicast", it.RxMulticast)
			w.c("tx_bytes", it.TxBytes)
			w.c("tx_packets", it.TxPackets)
			w.c("tx_errors", it.TxErrors)
			w.c("tx_dropped", it.TxDropped)
			w.c("tx_fifo", it.TxFIFO)
			w.c("tx_collisions", it.TxCollisions)
			w.c("tx_carrier", it.TxCarrier)
			w.c("tx_compressed", it.TxCompressed)
			w.end()
		}
	}
	if n.Parts.Has(netns.PartSockstat) {
		// The namespace's own figures; k.Host is the host's, the same in
		// every container, so not a container's series.
		k := &n.Sockets
		w.begin("container_sockets", noTag)
		w.c("used", k.Used)
		w.c("tcp_inuse", k.TCPInUse)
		w.c("tcp_tw", k.TCPTimeWait)
		w.c("udp_inuse", k.UDPInUse)
		w.c("udplite_inuse", k.UDPLiteInUse)
		w.c("raw_inuse", k.RawInUse)
		w.c("frag_inuse", k.FragInUse)
		w.c("frag_memory", k.FragMemory)
		w.c("tcp6_inuse", k.TCP6InUse)
		w.c("udp6_inuse", k.UDP6InUse)
		w.c("udplite6_inuse", k.UDPLite6InUse)
		w.c("raw6_inuse", k.Raw6InUse)
		w.c("frag6_inuse", k.Frag6InUse)
		w.c("frag6_memory", k.Frag6Memory)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) {
		ip := &n.IP
		w.begin("container_ip", noTag)
		w.c("in_receives", ip.InReceives)
		w.c("in_delivers", ip.InDelivers)
		w.c("out_requests", ip.OutRequests)
		w.c("in_discards", ip.InDiscards)
		w.c("out_discards", ip.OutDiscards)
		w.c("in_hdr_errors", ip.InHdrErrors)
		w.c("in_addr_errors", ip.InAddrErrors)
		w.c("out_no_routes", ip.OutNoRoutes)
		w.c("forw_datagrams", ip.ForwDatagrams)
		w.c("icmp_in_msgs", n.ICMP.InMsgs)
		w.c("icmp_out_msgs", n.ICMP.OutMsgs)
		w.c("icmp_in_errors", n.ICMP.InErrors)
		w.c("icmp_out_errors", n.ICMP.OutErrors)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) || n.Parts.Has(netns.PartNetstat) {
		t := &n.TCP
		w.begin("container_tcp", noTag)
		w.c("active_opens", t.ActiveOpens)
		w.c("passive_opens", t.PassiveOpens)
		w.c("attempt_fails", t.AttemptFails)
		w.c("estab_resets", t.EstabResets)
		w.c("curr_estab", t.CurrEstab)
		w.c("in_segs", t.InSegs)
		w.c("out_segs", t.OutSegs)
		w.c("retrans_segs", t.RetransSegs)
		w.c("in_errs", t.InErrs)
		w.c("out_rsts", t.OutRsts)
		w.c("in_csum_errors", t.InCsumErrors)
		x := &n.TCPExt
		w.c("listen_overflows", x.ListenOverflows)
		w.c("listen_drops", x.ListenDrops)
		w.c("timeouts", x.TCPTimeouts)
		w.c("syn_retrans", x.TCPSynRetrans)
		w.c("lost_retransmit", x.TCPLostRetransmit)
		w.c("fast_retrans", x.TCPFastRetrans)
		w.c("abort_on_data", x.TCPAbortOnData)
		w.c("abort_on_close", x.TCPAbortOnClose)
		w.c("abort_on_memory", x.TCPAbortOnMemory)
		w.c("abort_on_timeout", x.TCPAbortOnTimeout)
		w.c("backlog_drop", x.TCPBacklogDrop)
		w.c("syncookies_sent", x.SyncookiesSent)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) {
		u := &n.UDP
		w.begin("container_udp", noTag)
		w.c("in_datagrams", u.InDatagrams)
		w.c("no_ports", u.NoPorts)
		w.c("in_errors", u.InErrors)
		w.c("out_datagrams", u.OutDatagrams)
		w.c("rcvbuf_errors", u.RcvbufErrors)
		w.c("sndbuf_errors", u.SndbufErrors)
		w.c("in_csum_errors", u.InCsumErrors)
		w.c("mem_errors", u.MemErrors)
		w.end()
	}
	if n.Parts.Has(netns.PartTCPStates) {
		ts := &n.TCPStates
		w.begin("container_tcp_states", noTag)
		for st := netns.TCPEstablished; st <= netns.TCPClosing; st++ {
			// IPv4 and IPv6 together: the Known ones (V6 is Unavailable
			// without IPv6).
			var n netns.Value
			for _, v := range [2]netns.Value{ts.V4[st], ts.V6[st]} {
				if x, ok := v.Get(); ok {
					n = netns.Value{V: n.V + x, State: netns.Known}
				}
			}
			w.c(tcpStateFields[st], n)
		}
		w.end()
	}
}
