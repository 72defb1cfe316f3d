// Package points is the point schema that sink/influx and sink/stdout write:
// it walks a sink.Snapshot as InfluxDB-style points (a measurement, the
// container's tags and at most one tag of the point's own, fields, a time)
// and encodes them as InfluxDB line protocol (Encoder) or hands them to any
// Visitor (sink/stdout's JSON lines).
//
// Every measurement, tag and field, with its unit and source, is listed in
// docs/METRICS.md. In short, per container:
//
//	container_cpu                         CPU time, throttling, quota
//	container_memory                      usage, limit, working set, breakdown, events
//	container_pids                        tasks and their limit
//	container_blkio     (tag device)      block I/O per device
//	container_hugetlb   (tag page_size)   hugetlb usage per page size
//	container_pressure  (tag resource)    PSI for cpu, memory, io
//	container_net       (tag interface)   net/dev per interface
//	container_sockets                     net/sockstat
//	container_ip, container_tcp, container_udp   net/snmp (+ net/netstat TcpExt)
//	container_tcp_states                  TCP sockets by state (sock_diag)
//
// A value the kernel did not provide (cgroup.Unavailable, netns.Value not
// Known) is left out, never written as 0, and so is a limit that is not set
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
type Walker struct {
	tagger *sink.Tagger
	tags   []sink.Tag
	name   []byte
	v      Visitor
	t      time.Time
	// devices caches the "major:minor" names of unnamed block devices.
	devices map[[2]uint32]string
}

// NewWalker returns a Walker that tags points as tg says.
func NewWalker(tg *sink.Tagger) *Walker {
	return &Walker{tagger: tg}
}

// Walk hands every point of s to v, container by container, in a fixed
// order.
func (w *Walker) Walk(s *sink.Snapshot, v Visitor) {
	w.v, w.t = v, s.Time
	for i := range s.Containers {
		w.container(&s.Containers[i])
	}
	if s.Self != nil {
		w.self(s.Self)
	}
	w.v = nil
}

// self writes the collector's own point, "metricsd", with the global tags
// only.
func (w *Walker) self(s *sink.Self) {
	w.v.Container(w.tagger.Global())
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

// c adds a cgroup value when Known (Unavailable and Unlimited are left out).
func (w *Walker) c(key string, v cgroup.Value) {
	if v.State == cgroup.Known {
		w.i(key, v.V)
	}
}

// n adds a netns value when Known.
func (w *Walker) n(key string, v netns.Value) {
	if v.Known {
		w.i(key, v.V)
	}
}

func (w *Walker) begin(measurement string, extra sink.Tag) { w.v.Begin(measurement, extra) }

func (w *Walker) end() { w.v.End(w.t) }

var noTag sink.Tag

var psiResources = [3]string{"cpu", "memory", "io"}

func (w *Walker) container(s *sink.Sample) {
	w.tags = w.tagger.Append(w.tags[:0], &s.Container)
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
	w.c("quota_us", cpu.QuotaUsec)
	w.c("period_us", cpu.PeriodUsec)
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
	w.c("pgfault", m.Pgfault)
	w.c("pgmajfault", m.Pgmajfault)
	w.c("failcnt", m.Failcnt)
	w.c("events_low", m.Events.Low)
	w.c("events_high", m.Events.High)
	w.c("events_max", m.Events.Max)
	w.c("events_oom", m.Events.OOM)
	w.c("events_oom_kill", m.Events.OOMKill)
	w.c("under_oom", m.Events.UnderOOM)
	w.end()

	w.begin("container_pids", noTag)
	w.c("current", st.Pids.Current)
	w.c("limit", st.Pids.Limit)
	w.end()

	if st.IO.Available {
		for i := range st.IO.Devices {
			d := &st.IO.Devices[i]
			w.begin("container_blkio", sink.Tag{Key: "device", Value: w.device(d)})
			w.i("read_bytes", d.ReadBytes)
			w.i("write_bytes", d.WriteBytes)
			w.i("read_ops", d.ReadOps)
			w.i("write_ops", d.WriteOps)
			w.i("discard_bytes", d.DiscardBytes)
			w.i("discard_ops", d.DiscardOps)
			w.end()
		}
	}
	if st.Hugetlb.Available {
		for i := range st.Hugetlb.Sizes {
			h := &st.Hugetlb.Sizes[i]
			w.begin("container_hugetlb", sink.Tag{Key: "page_size", Value: h.PageSize})
			w.c("usage_bytes", h.Usage)
			w.c("limit_bytes", h.Limit)
			w.c("failcnt", h.Failcnt)
			w.end()
		}
	}
	for i, p := range [3]*cgroup.PSI{&st.Pressure.CPU, &st.Pressure.Memory, &st.Pressure.IO} {
		w.begin("container_pressure", sink.Tag{Key: "resource", Value: psiResources[i]})
		if p.Some.Available {
			w.f("some_avg10", p.Some.Avg10)
			w.f("some_avg60", p.Some.Avg60)
			w.f("some_avg300", p.Some.Avg300)
			w.i("some_total_us", p.Some.Total)
		}
		if p.Full.Available {
			w.f("full_avg10", p.Full.Avg10)
			w.f("full_avg60", p.Full.Avg60)
			w.f("full_avg300", p.Full.Avg300)
			w.i("full_total_us", p.Full.Total)
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
	netns.TCPNewSynRecv:  "new_syn_recv",
}

func (w *Walker) net(n *netns.Stats) {
	if n.Parts.Has(netns.PartDev) {
		for i := range n.Interfaces {
			it := &n.Interfaces[i]
			w.begin("container_net", sink.Tag{Key: "interface", Value: it.Name})
			w.i("rx_bytes", it.RxBytes)
			w.i("rx_packets", it.RxPackets)
			w.i("rx_errors", it.RxErrors)
			w.i("rx_dropped", it.RxDropped)
			w.i("rx_fifo", it.RxFIFO)
			w.i("rx_frame", it.RxFrame)
			w.i("rx_compressed", it.RxCompressed)
			w.i("rx_multicast", it.RxMulticast)
			w.i("tx_bytes", it.TxBytes)
			w.i("tx_packets", it.TxPackets)
			w.i("tx_errors", it.TxErrors)
			w.i("tx_dropped", it.TxDropped)
			w.i("tx_fifo", it.TxFIFO)
			w.i("tx_collisions", it.TxCollisions)
			w.i("tx_carrier", it.TxCarrier)
			w.i("tx_compressed", it.TxCompressed)
			w.end()
		}
	}
	if n.Parts.Has(netns.PartSockstat) {
		k := &n.Sockets
		w.begin("container_sockets", noTag)
		w.n("used", k.Used)
		w.n("tcp_inuse", k.TCPInUse)
		w.n("tcp_orphan", k.TCPOrphan)
		w.n("tcp_tw", k.TCPTimeWait)
		w.n("tcp_alloc", k.TCPAlloc)
		w.n("tcp_mem_pages", k.TCPMem)
		w.n("udp_inuse", k.UDPInUse)
		w.n("udp_mem_pages", k.UDPMem)
		w.n("udplite_inuse", k.UDPLiteInUse)
		w.n("raw_inuse", k.RawInUse)
		w.n("frag_inuse", k.FragInUse)
		w.n("frag_memory", k.FragMemory)
		w.n("tcp6_inuse", k.TCP6InUse)
		w.n("udp6_inuse", k.UDP6InUse)
		w.n("udplite6_inuse", k.UDPLite6InUse)
		w.n("raw6_inuse", k.Raw6InUse)
		w.n("frag6_inuse", k.Frag6InUse)
		w.n("frag6_memory", k.Frag6Memory)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) {
		ip := &n.IP
		w.begin("container_ip", noTag)
		w.n("in_receives", ip.InReceives)
		w.n("in_delivers", ip.InDelivers)
		w.n("out_requests", ip.OutRequests)
		w.n("in_discards", ip.InDiscards)
		w.n("out_discards", ip.OutDiscards)
		w.n("in_hdr_errors", ip.InHdrErrors)
		w.n("in_addr_errors", ip.InAddrErrors)
		w.n("out_no_routes", ip.OutNoRoutes)
		w.n("forw_datagrams", ip.ForwDatagrams)
		w.n("icmp_in_msgs", n.ICMP.InMsgs)
		w.n("icmp_out_msgs", n.ICMP.OutMsgs)
		w.n("icmp_in_errors", n.ICMP.InErrors)
		w.n("icmp_out_errors", n.ICMP.OutErrors)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) || n.Parts.Has(netns.PartNetstat) {
		t := &n.TCP
		w.begin("container_tcp", noTag)
		w.n("active_opens", t.ActiveOpens)
		w.n("passive_opens", t.PassiveOpens)
		w.n("attempt_fails", t.AttemptFails)
		w.n("estab_resets", t.EstabResets)
		w.n("curr_estab", t.CurrEstab)
		w.n("in_segs", t.InSegs)
		w.n("out_segs", t.OutSegs)
		w.n("retrans_segs", t.RetransSegs)
		w.n("in_errs", t.InErrs)
		w.n("out_rsts", t.OutRsts)
		w.n("in_csum_errors", t.InCsumErrors)
		x := &n.TCPExt
		w.n("listen_overflows", x.ListenOverflows)
		w.n("listen_drops", x.ListenDrops)
		w.n("timeouts", x.TCPTimeouts)
		w.n("syn_retrans", x.TCPSynRetrans)
		w.n("lost_retransmit", x.TCPLostRetransmit)
		w.n("fast_retrans", x.TCPFastRetrans)
		w.n("abort_on_data", x.TCPAbortOnData)
		w.n("abort_on_close", x.TCPAbortOnClose)
		w.n("abort_on_memory", x.TCPAbortOnMemory)
		w.n("abort_on_timeout", x.TCPAbortOnTimeout)
		w.n("backlog_drop", x.TCPBacklogDrop)
		w.n("syncookies_sent", x.SyncookiesSent)
		w.end()
	}
	if n.Parts.Has(netns.PartSNMP) {
		u := &n.UDP
		w.begin("container_udp", noTag)
		w.n("in_datagrams", u.InDatagrams)
		w.n("no_ports", u.NoPorts)
		w.n("in_errors", u.InErrors)
		w.n("out_datagrams", u.OutDatagrams)
		w.n("rcvbuf_errors", u.RcvbufErrors)
		w.n("sndbuf_errors", u.SndbufErrors)
		w.n("in_csum_errors", u.InCsumErrors)
		w.n("mem_errors", u.MemErrors)
		w.end()
	}
	if n.Parts.Has(netns.PartTCPStates) {
		ts := &n.TCPStates
		w.begin("container_tcp_states", noTag)
		for st := netns.TCPEstablished; st <= netns.TCPNewSynRecv; st++ {
			w.i(tcpStateFields[st], ts.V4[st]+ts.V6[st])
		}
		w.end()
	}
}
