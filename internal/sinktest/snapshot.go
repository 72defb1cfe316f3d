// Package sinktest is test support for the sinks: snapshots with every
// statistic filled in, and the real servers the sink tests write to
// (InfluxDB 1.x's influxd, Prometheus, and the remote_write receivers
// Prometheus and VictoriaMetrics), started as child processes on 127.0.0.1
// with their data in a directory the test owns, and stopped by PID.
//
// The servers' binaries come from the environment, which scripts/servers.sh
// sets: METRICSD_TEST_INFLUXD, METRICSD_TEST_PROMETHEUS,
// METRICSD_TEST_PROMTOOL and METRICSD_TEST_VICTORIAMETRICS. A test whose
// binary is not set (or not executable) skips with that reason.
package sinktest

import (
	"fmt"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// K is a Known cgroup value.
func K(v uint64) cgroup.Value { return cgroup.Value{V: v, State: cgroup.Known} }

// N is a Known netns value (the same type as a cgroup value).
func N(v uint64) netns.Value { return netns.Value{V: v, State: netns.Known} }

// Iface is an interface as net/dev gives it: every counter Known, 0 but
// for the four given.
func Iface(name string, rxBytes, rxPackets, txBytes, txPackets uint64) netns.Interface {
	z := N(0)
	return netns.Interface{
		Name:    name,
		RxBytes: N(rxBytes), RxPackets: N(rxPackets), RxErrors: z, RxDropped: z,
		RxFIFO: z, RxFrame: z, RxCompressed: z, RxMulticast: z,
		TxBytes: N(txBytes), TxPackets: N(txPackets), TxErrors: z, TxDropped: z,
		TxFIFO: z, TxCollisions: z, TxCarrier: z, TxCompressed: z,
	}
}

// Counts is TCP state counts as a dump gives them: every state a dump
// reports (TCPEstablished through TCPClosing) Known, 0 unless n says
// otherwise.
func Counts(n map[netns.TCPState]uint64) netns.TCPStateCounts {
	var c netns.TCPStateCounts
	for s := netns.TCPEstablished; s <= netns.TCPClosing; s++ {
		c[s] = N(n[s])
	}
	return c
}

// Unlimited is an Unlimited cgroup value.
var Unlimited = cgroup.Value{State: cgroup.Unlimited}

// Container returns a container named name-<i> with a 64-hex-digit ID, an
// image and two labels (team, env).
func Container(name string, i int) runtime.Container {
	return runtime.Container{
		ID:         fmt.Sprintf("%064x", i+1),
		Name:       fmt.Sprintf("%s-%d", name, i),
		Image:      "registry.example/app:1.2",
		Labels:     map[string]string{"com.example.team": "core", "env": "prod", "noise": fmt.Sprint(i)},
		Runtime:    "docker",
		PID:        1000 + i,
		CgroupPath: fmt.Sprintf("/docker/%064x", i+1),
		State:      runtime.StateRunning,
	}
}

// FullStats fills every cgroup statistic with values derived from seed, as
// cgroup v2 reports them except that the v1-only fields are filled too.
func FullStats(seed uint64) cgroup.Stats {
	b := seed * 1000
	return cgroup.Stats{
		CPU: cgroup.CPUStats{
			Usage: K(b + 3_000_000_000), User: K(b + 2_000_000_000), System: K(b + 1_000_000_000),
			PerCPU:  []uint64{b + 1_500_000_000, 1_500_000_000},
			Periods: K(b + 100), ThrottledPeriods: K(7), ThrottledTime: K(70_000_000),
			Bursts: K(1), BurstTime: K(2000),
			Quota: K(50_000_000), Period: K(100_000_000), Shares: K(1024), Weight: K(100),
		},
		Memory: cgroup.MemoryStats{
			Usage: K(b + 200<<20), Limit: K(512 << 20), WorkingSet: K(b + 150<<20),
			Anon: K(b + 100<<20), File: K(100 << 20), Shmem: K(1 << 20), MappedFile: K(2 << 20),
			InactiveFile: K(50 << 20), ActiveFile: K(50 << 20), Kernel: K(3 << 20),
			SwapUsage: K(0), SwapLimit: Unlimited, MemSwapLimit: Unlimited,
			Pgfault: K(b + 5000), Pgmajfault: K(12), Peak: K(300 << 20), Failcnt: K(3),
			SwapPeak:    K(1 << 20),
			Events:      cgroup.MemoryEvents{Low: K(0), High: K(1), Max: K(2), OOM: K(1), OOMKill: K(1), OOMGroupKill: K(0), UnderOOM: K(0)},
			EventsLocal: cgroup.MemoryEvents{Low: K(0), High: K(1), Max: K(2), OOM: K(1), OOMKill: K(1), OOMGroupKill: K(0)},
			SwapEvents:  cgroup.SwapEvents{High: K(0), Max: K(4), Fail: K(5)},
		},
		IO: cgroup.IOStats{
			ReadBytes: K(b + 4096 + 512), WriteBytes: K(b + 8192), ReadOps: K(11), WriteOps: K(20), DiscardBytes: K(0), DiscardOps: K(0),
			Devices: []cgroup.IODevice{
				{Major: 254, Minor: 0, Name: "vda", ReadBytes: K(b + 4096), WriteBytes: K(b + 8192), ReadOps: K(10), WriteOps: K(20), DiscardBytes: K(0), DiscardOps: K(0)},
				{Major: 7, Minor: 3, ReadBytes: K(512), WriteBytes: K(0), ReadOps: K(1), WriteOps: K(0), DiscardBytes: K(0), DiscardOps: K(0)},
			},
		},
		Pids:    cgroup.PidsStats{Current: K(seed%50 + 5), Limit: K(1000), Peak: K(seed%50 + 9), ForkFailures: K(6)},
		Hugetlb: cgroup.HugetlbStats{Sizes: []cgroup.HugetlbSize{{PageSize: "2MB", Usage: K(0), Limit: Unlimited, Failcnt: K(0)}}},
		Pressure: cgroup.PressureStats{
			// Totals in ns, from the kernel's µs.
			CPU:    cgroup.PSI{Some: cgroup.PSILine{Avg10: 1.5, Avg60: 0.75, Avg300: 0.25, Total: K((b + 123456) * 1000)}, Full: cgroup.PSILine{Avg10: 0.5, Total: K(1000_000)}},
			Memory: cgroup.PSI{Some: cgroup.PSILine{Total: K(42_000)}, Full: cgroup.PSILine{Total: K(21_000)}},
			IO:     cgroup.PSI{Some: cgroup.PSILine{Avg10: 0.1, Total: K(77_000)}, Full: cgroup.PSILine{Total: K(66_000)}},
		},
	}
}

// FullNet fills every netns statistic: ifaces interfaces (lo, eth0, eth1,
// ...) and the snmp, sockstat and TCP state parts.
func FullNet(seed uint64, ifaces int) *netns.Stats {
	n := &netns.Stats{Parts: netns.TierAll}
	for i := 0; i < ifaces; i++ {
		name := "lo"
		if i > 0 {
			name = fmt.Sprintf("eth%d", i-1)
		}
		x := seed*1000 + uint64(i)*100
		n.Interfaces = append(n.Interfaces, netns.Interface{
			Name:    name,
			RxBytes: N(x + 1_000_000), RxPackets: N(x + 1000), RxErrors: N(1), RxDropped: N(2),
			RxFIFO: N(0), RxFrame: N(0), RxCompressed: N(0), RxMulticast: N(3),
			TxBytes: N(x + 2_000_000), TxPackets: N(x + 2000), TxErrors: N(4), TxDropped: N(5),
			TxFIFO: N(0), TxCollisions: N(0), TxCarrier: N(0), TxCompressed: N(0),
		})
	}
	n.Sockets = netns.Sockets{Used: N(200), TCPInUse: N(10), TCPTimeWait: N(3), UDPInUse: N(2), RawInUse: N(0), FragInUse: N(0), FragMemory: N(0), TCP6InUse: N(5), UDP6InUse: N(1),
		Host: netns.HostSockets{TCPOrphan: N(0), TCPAlloc: N(12), TCPMem: N(4), UDPMem: N(1)}}
	n.IP = netns.IP{InReceives: N(seed + 5000), InDelivers: N(seed + 4990), OutRequests: N(4000), InDiscards: N(0), OutDiscards: N(0), InHdrErrors: N(0), InAddrErrors: N(0), OutNoRoutes: N(0), ForwDatagrams: N(0)}
	n.ICMP = netns.ICMP{InMsgs: N(3), OutMsgs: N(3), InErrors: N(0), OutErrors: N(0)}
	n.TCP = netns.TCP{ActiveOpens: N(seed + 40), PassiveOpens: N(30), AttemptFails: N(1), EstabResets: N(2), CurrEstab: N(10), InSegs: N(9000), OutSegs: N(8000), RetransSegs: N(11), InErrs: N(0), OutRsts: N(4), InCsumErrors: N(0)}
	n.TCPExt = netns.TCPExt{ListenOverflows: N(0), ListenDrops: N(0), TCPTimeouts: N(1), TCPSynRetrans: N(1), TCPLostRetransmit: N(0), TCPFastRetrans: N(2), TCPAbortOnData: N(0), TCPAbortOnClose: N(0), TCPAbortOnMemory: N(0), TCPAbortOnTimeout: N(0), TCPBacklogDrop: N(0), SyncookiesSent: N(0)}
	n.UDP = netns.UDP{InDatagrams: N(100), NoPorts: N(1), InErrors: N(3), OutDatagrams: N(99), RcvbufErrors: N(2), SndbufErrors: N(1), InCsumErrors: N(0), MemErrors: N(0)}
	n.TCPStates.V4 = Counts(map[netns.TCPState]uint64{netns.TCPEstablished: 7, netns.TCPListen: 2})
	n.TCPStates.V6 = Counts(map[netns.TCPState]uint64{netns.TCPEstablished: 3, netns.TCPTimeWait: 3})
	return n
}

// FullSnapshot is a snapshot of n containers ("c-0", "c-1", ...) with full
// cgroup stats and ifaces network interfaces each, at time t.
func FullSnapshot(n, ifaces int, t time.Time) *sink.Snapshot {
	s := &sink.Snapshot{Time: t, Containers: make([]sink.Sample, n)}
	for i := range s.Containers {
		s.Containers[i] = sink.Sample{Container: Container("c", i), Cgroup: FullStats(uint64(i)), Net: FullNet(uint64(i), ifaces)}
	}
	return s
}

// MixedSnapshot is a snapshot of three containers that exercises every
// branch of a sink's encoder: c-0 with everything (cgroup v2 style: a
// weight and no shares), started at t minus an hour; c-1 in a pod, with
// no limits, its kernel memory unavailable and only net/dev read; c-2 on
// the host network (no netns stats) and cgroup v1 (shares, no PSI). It
// carries the collector's own figures, and a container that departed with
// 2 OOM kills.
func MixedSnapshot(t time.Time) *sink.Snapshot {
	s := FullSnapshot(3, 2, t)
	c0 := &s.Containers[0]
	c0.Cgroup.CPU.Shares = cgroup.Value{}
	c0.Container.Started = t.Add(-time.Hour).Truncate(time.Millisecond)
	c1 := &s.Containers[1]
	c1.Container.Pod = &runtime.Pod{Name: "web-7d9", Namespace: "shop", UID: "2f1c0f3e-0b7a-4c1e-9d7e-5b1c2a3d4e5f", Container: "nginx"}
	c1.Cgroup.Memory.Kernel = cgroup.Value{}
	c1.Cgroup.Memory.Limit = Unlimited
	c1.Cgroup.CPU.Quota = Unlimited
	c1.Cgroup.Pids.Limit = Unlimited
	c1.Net.Parts = netns.PartDev
	c2 := &s.Containers[2]
	c2.Net = nil
	c2.Container.NetNS.Host = true
	c2.Cgroup.Pressure = cgroup.PressureStats{}
	c2.Cgroup.CPU.Weight = cgroup.Value{}
	gone := Container("gone", 9)
	gone.Started = t.Add(-time.Minute).Truncate(time.Millisecond)
	s.Departed = []sink.Departed{{Container: gone, OOMKills: K(2), Time: t.Add(-time.Second)}}
	s.Self = &sink.Self{ScrapeSeconds: 0.0125, Containers: 3, Namespaces: 2,
		Errors:      []sink.StageErrors{{Stage: "discover", Count: 0}, {Stage: "open", Count: 1}, {Stage: "cgroup", Count: 2}, {Stage: "net", Count: 0}, {Stage: "sink", Count: 3}},
		SinkDropped: 7, SinkWriteSeconds: 0.25}
	return s
}
