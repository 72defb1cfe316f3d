package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	"github.com/prometheus/procfs"

	"github.com/metricsd/metricsd/netns"
)

// netnsForBench makes a network namespace that looks like a small
// container's (loopback plus a veth pair, both ends inside), and a process
// living in it so that prometheus/procfs can read it through
// /proc/<pid>/net. Both are removed when b ends.
func netnsForBench(b *testing.B) (path string, pid int) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates a network namespace with ip netns add")
	}
	r := make([]byte, 5)
	rand.Read(r)
	name := "mdtest-" + hex.EncodeToString(r)
	ip := func(args ...string) {
		b.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("netns", "add", name)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "set", "lo", "up")
	ip("-n", name, "link", "add", "mdb0", "type", "veth", "peer", "name", "mdb1")

	cmd := exec.Command("ip", "netns", "exec", name, "sleep", "3600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	path = "/run/netns/" + name
	want, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, err := os.Stat("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); err == nil && os.SameFile(got, want) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("helper process never entered the namespace")
		}
	}
	return path, cmd.Process.Pid
}

// BenchmarkNetStat reads the same test namespace with metricsd (a Handle
// opened once by a hop, re-read with pread, parsed into a reused Stats),
// with prometheus/procfs (open, read and parse /proc/<pid>/net/* per call)
// and with cAdvisor's library (its Handler's GetStats for a container with
// that PID, network metric kinds only), per file and together, with the
// process's CPU time per read (cpu-ns/op).
func BenchmarkNetStat(b *testing.B) {
	path, pid := netnsForBench(b)
	ctx := context.Background()
	pool, err := netns.NewPool()
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	proc, err := fs.Proc(pid)
	if err != nil {
		b.Fatal(err)
	}
	pidFS, err := procfs.NewFS("/proc/" + strconv.Itoa(pid)) // for net/sockstat
	if err != nil {
		b.Fatal(err)
	}

	procfsRead := map[string]func() error{
		"dev":     func() error { _, err := proc.NetDev(); return err },
		"snmp":    func() error { _, err := proc.Snmp(); return err },
		"netstat": func() error { _, err := proc.Netstat(); return err },
		"sockstat": func() error {
			if _, err := pidFS.NetSockstat(); err != nil {
				return err
			}
			_, err := pidFS.NetSockstat6()
			return err
		},
	}
	procfsRead["snmp+netstat"] = func() error {
		if err := procfsRead["snmp"](); err != nil {
			return err
		}
		return procfsRead["netstat"]()
	}
	procfsRead["tcpstates"] = func() error { _, err := procfsTCPStates(pidFS); return err }
	procfsRead["all"] = func() error {
		for _, k := range []string{"dev", "snmp", "netstat", "sockstat"} {
			if err := procfsRead[k](); err != nil {
				return err
			}
		}
		return nil
	}

	// cAdvisor's Handler reads a container's network statistics from
	// /proc/<pid>/net when its metric set asks: network (net/dev), advtcp
	// (net/netstat and net/snmp), tcp (net/tcp and net/tcp6, counted by
	// state), udp (net/udp and net/udp6).
	cadv := func(kinds ...cadvisorcontainer.MetricKind) cadvisorMetricSet {
		m := cadvisorMetricSet{}
		for _, k := range kinds {
			m[k] = struct{}{}
		}
		return m
	}

	for _, c := range []struct {
		name     string
		parts    netns.Parts
		cadvisor cadvisorMetricSet // nil: no cAdvisor equivalent
	}{
		{"dev", netns.PartDev, cadv(cadvisorcontainer.NetworkUsageMetrics)},
		{"snmp", netns.PartSNMP, nil},
		{"netstat", netns.PartNetstat, nil},
		{"snmp+netstat", netns.PartSNMP | netns.PartNetstat, cadv(cadvisorcontainer.NetworkAdvancedTcpUsageMetrics)},
		{"sockstat", netns.PartSockstat, nil},
		// The default tier, and the default tier with net/snmp (TCP
		// retransmits, UDP errors): what adding snmp to it would cost.
		{"cheap", netns.TierCheap, nil},
		{"cheap+snmp", netns.TierCheap | netns.PartSNMP, nil},
		{"tcpstates", netns.PartTCPStates, cadv(cadvisorcontainer.NetworkTcpUsageMetrics)},
		{"all", netns.PartDev | netns.PartSNMP | netns.PartNetstat | netns.PartSockstat, nil},
		// Everything each reads about a namespace: metricsd's every part
		// (dev, sockstat, snmp, snmp6, netstat, TCP states) against cAdvisor's
		// every network kind (network, tcp, advtcp, udp).
		{"everything", netns.TierAll, cadvisorMetricSet(cadvisorcontainer.AllNetworkMetrics)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Run("metricsd", func(b *testing.B) {
				h, err := pool.Open(ctx, netns.TargetPath(path), c.parts)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				var s netns.Stats
				if err := h.Stat(ctx, &s); err != nil || s.Parts != c.parts {
					b.Fatalf("Stat: %v, parts %v", err, s.Parts)
				}
				loopCPU(b, func() error { return h.Stat(ctx, &s) })
			})
			if read := procfsRead[c.name]; read != nil {
				b.Run("procfs", func(b *testing.B) {
					if err := read(); err != nil {
						b.Fatal(err)
					}
					loopCPU(b, read)
				})
			}
			if c.cadvisor != nil {
				b.Run("cadvisor", func(b *testing.B) {
					h := cadvisorNetHandler(b, pid, c.cadvisor)
					st, err := h.GetStats()
					if err != nil || st.Network == nil {
						b.Fatalf("cAdvisor GetStats: %v", err)
					}
					if c.cadvisor.Has(cadvisorcontainer.NetworkUsageMetrics) && len(st.Network.Interfaces) == 0 {
						b.Fatal("cAdvisor read no interface") // it leaves out lo and veth*: mdb0 and mdb1 remain
					}
					loopCPU(b, func() error { _, err := h.GetStats(); return err })
				})
			}
		})
	}
}

// procfsTCPStates counts TCP sockets by state through prometheus/procfs's
// NetTCP and NetTCP6 (every socket parsed from /proc/<pid>/net/tcp{,6}).
func procfsTCPStates(fs procfs.FS) (netns.TCPStates, error) {
	var st netns.TCPStates
	// procfs deprecates both for sock_diag over netlink, which is what
	// metricsd uses; they are still what procfs users call.
	//lint:ignore SA1019 the peer measured
	v4, err := fs.NetTCP()
	if err != nil {
		return st, err
	}
	//lint:ignore SA1019 the peer measured
	v6, err := fs.NetTCP6()
	if err != nil {
		return st, err
	}
	for _, l := range v4 {
		if l.St < uint64(len(st.V4)) {
			st.V4[l.St] = netns.Value{V: st.V4[l.St].V + 1, State: netns.Known}
		}
	}
	for _, l := range v6 {
		if l.St < uint64(len(st.V6)) {
			st.V6[l.St] = netns.Value{V: st.V6[l.St].V + 1, State: netns.Known}
		}
	}
	return st, nil
}
