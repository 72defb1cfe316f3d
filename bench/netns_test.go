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

	"github.com/metricsd/metricsd/netns"
	"github.com/prometheus/procfs"
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
// opened once by a hop, re-read with pread, parsed into a reused Stats) and
// with prometheus/procfs (open, read and parse /proc/<pid>/net/* per call),
// per file and for the four together.
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
	procfsRead["all"] = func() error {
		for _, k := range []string{"dev", "snmp", "netstat", "sockstat"} {
			if err := procfsRead[k](); err != nil {
				return err
			}
		}
		return nil
	}

	for _, c := range []struct {
		name  string
		parts netns.Parts
	}{
		{"dev", netns.PartDev},
		{"snmp", netns.PartSNMP},
		{"netstat", netns.PartNetstat},
		{"sockstat", netns.PartSockstat},
		{"all", netns.PartDev | netns.PartSNMP | netns.PartNetstat | netns.PartSockstat},
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
				b.ReportAllocs()
				for b.Loop() {
					if err := h.Stat(ctx, &s); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("procfs", func(b *testing.B) {
				read := procfsRead[c.name]
				if err := read(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := read(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
