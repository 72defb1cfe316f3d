package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// fixtureRoot lays out a host root over a capture in testdata (an exact copy
// of ../shared/fixtures): <root>/sys is the capture's sys, <root>/proc/1/
// mountinfo its proc/mountinfo, <root>/proc/partitions its partitions, and
// extra maps further files under <root>/proc to capture files.
func fixtureRoot(t *testing.T, capture string, extra map[string]string) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("testdata", capture))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	links := map[string]string{
		"sys":              "sys",
		"proc/1/mountinfo": "proc/mountinfo",
		"proc/partitions":  "proc/partitions",
	}
	for k, v := range extra {
		links[k] = v
	}
	for dst, from := range links {
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(src, from), p); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestFixtureV2 reads the fixture_load group of the pure cgroup v2 capture
// (Linux 6.18) and checks every field against the capture's files.
func TestFixtureV2(t *testing.T) {
	ctx := context.Background()
	fs, err := NewFS(ctx, WithRoot(fixtureRoot(t, "cgroup2-kernel6.18", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if fs.Mode() != Unified {
		t.Fatalf("mode = %v, want unified", fs.Mode())
	}
	g, err := fs.Open(ctx, "/fixture_load", All)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Version() != 2 {
		t.Errorf("Version = %d, want 2", g.Version())
	}
	var s Stats
	if err := g.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	want := fixtureV2Want()
	want.CPU.PerCPU = s.CPU.PerCPU // v2 has none: checked empty below
	if len(s.CPU.PerCPU) != 0 {
		t.Errorf("PerCPU = %v, want none on v2", s.CPU.PerCPU)
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Stat mismatch\n got %+v\nwant %+v", s, want)
	}
	if c, st := s.CPU.LimitCores(); st != Known || c != 0.2 {
		t.Errorf("LimitCores = %v %v, want 0.2 known", c, st)
	}
}

// fixtureV2Want is what Stat reads from the v2 capture's fixture_load group
// with every controller: each figure as its file holds it.
func fixtureV2Want() Stats {
	psi := func(a10, a60, a300 float64, totalUsec uint64) PSILine {
		return PSILine{Avg10: a10, Avg60: a60, Avg300: a300, Total: known(totalUsec * 1000)}
	}
	return Stats{
		CPU: CPUStats{
			Usage: known(739322000), User: known(641688000), System: known(97633000),
			Periods: known(36), ThrottledPeriods: known(36), ThrottledTime: known(3916281000),
			Bursts: known(0), BurstTime: known(0),
			Quota: known(20000_000), Period: known(100000_000), Weight: known(100),
		},
		Memory: MemoryStats{
			Usage: known(127635456), Limit: known(268435456),
			WorkingSet: known(127635456 - 73728),
			Anon:       known(331776), File: known(125902848), Shmem: known(125829120), MappedFile: known(0),
			InactiveFile: known(73728), ActiveFile: known(0), Kernel: known(536576),
			SwapUsage: known(0), SwapLimit: unlimited,
			Pgfault: known(1455), Pgmajfault: known(1), Peak: known(129024000),
			SwapPeak:    known(0),
			Events:      MemoryEvents{Low: known(0), High: known(0), Max: known(0), OOM: known(0), OOMKill: known(0), OOMGroupKill: known(0)},
			EventsLocal: MemoryEvents{Low: known(0), High: known(0), Max: known(0), OOM: known(0), OOMKill: known(0), OOMGroupKill: known(0)},
			SwapEvents:  SwapEvents{High: known(0), Max: known(0), Fail: known(0)},
		},
		IO: IOStats{
			ReadBytes: known(67182592), WriteBytes: known(67108864), ReadOps: known(66), WriteOps: known(64),
			DiscardBytes: known(0), DiscardOps: known(0),
			Devices: []IODevice{{
				Major: 254, Minor: 0, Name: "vda",
				ReadBytes: known(67182592), WriteBytes: known(67108864), ReadOps: known(66), WriteOps: known(64),
				DiscardBytes: known(0), DiscardOps: known(0),
			}},
		},
		Pids: PidsStats{Current: known(3), Limit: known(64), Peak: known(5), ForkFailures: known(0)},
		Hugetlb: HugetlbStats{Sizes: []HugetlbSize{
			{PageSize: "2MB", Usage: known(0), Limit: unlimited, Failcnt: known(0)},
			{PageSize: "1GB", Usage: known(0), Limit: unlimited, Failcnt: known(0)},
		}},
		Pressure: PressureStats{
			CPU:    PSI{Some: psi(11.23, 2.02, 0.42, 2483955), Full: psi(11.23, 2.02, 0.42, 2483955)},
			Memory: PSI{Some: psi(0, 0, 0, 0), Full: psi(0, 0, 0, 0)},
			IO:     PSI{Some: psi(0.18, 0.03, 0, 20369), Full: psi(0.18, 0.03, 0, 20369)},
		},
	}
}

// TestFixtureV1Docker reads the Docker container of the hybrid v1 capture
// through its /proc/<pid>/cgroup and checks every field.
func TestFixtureV1Docker(t *testing.T) {
	ctx := context.Background()
	root := fixtureRoot(t, "cgroup1-hybrid-kernel6.18-docker20.10", map[string]string{
		"proc/4242/cgroup": "proc/container_pid_cgroup",
	})
	fs, err := NewFS(ctx, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	fs.userHZ = 100 // the capture's (x86-64), whatever this test runs on
	if fs.Mode() != Hybrid {
		t.Fatalf("mode = %v, want hybrid", fs.Mode())
	}
	paths, err := fs.PIDPaths(ctx, 4242)
	if err != nil {
		t.Fatal(err)
	}
	const id = "/docker/7ec3cf760992fea9cf4b35bcf24244de1d990536cd65c103877576cb4d8dad62"
	for _, c := range []string{"", "cpu", "cpuacct", "memory", "blkio", "pids", "name=systemd"} {
		if paths[c] != id {
			t.Errorf("paths[%q] = %q, want %q", c, paths[c], id)
		}
	}
	g, err := fs.OpenPID(ctx, 4242, All)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Version() != 1 {
		t.Errorf("Version = %d, want 1", g.Version())
	}
	var s Stats
	if err := g.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	want := fixtureV1DockerWant()
	want.IO.Devices, want.Hugetlb.Sizes = s.IO.Devices, s.Hugetlb.Sizes
	if len(s.IO.Devices) != 0 {
		t.Errorf("IO devices = %+v, want none (the capture's blkio files hold only Total 0)", s.IO.Devices)
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Stat mismatch\n got %+v\nwant %+v", s, want)
	}
	if c, st := s.CPU.LimitCores(); st != Known || c != 0.3 {
		t.Errorf("LimitCores = %v %v, want 0.3 known", c, st)
	}
}

// fixtureV1DockerWant is what Stat reads from the hybrid capture's Docker
// container with every controller (USER_HZ 100).
func fixtureV1DockerWant() Stats {
	return Stats{
		CPU: CPUStats{
			// cpuacct.usage_percpu summed; cpuacct.stat: user 125 system
			// 1 (ticks of USER_HZ 100). cpuacct.usage_all's columns, which
			// User and System came from before, add up to 1.04x usage.
			Usage:   known(1139127154 + 143807301),
			User:    known(125 * 10e6),
			System:  known(1 * 10e6),
			PerCPU:  []uint64{1139127154, 143807301},
			Periods: known(41), ThrottledPeriods: known(40), ThrottledTime: known(2782201936),
			Bursts: known(0), BurstTime: known(0),
			Quota: known(30000_000), Period: known(100000_000), Shares: known(1024),
		},
		Memory: MemoryStats{
			Usage: known(43708416), Limit: known(134217728),
			WorkingSet: known(43708416 - 41943040),
			Anon:       known(118784), File: known(41951232), Shmem: known(0), MappedFile: known(0),
			InactiveFile: known(41943040), ActiveFile: known(8192), Kernel: known(1499136),
			SwapUsage: known(0), SwapLimit: known(268435456 - 134217728),
			MemSwapLimit: known(268435456),
			Pgfault:      known(1511), Pgmajfault: known(0), Peak: known(45113344), Failcnt: known(0),
			Events: MemoryEvents{OOMKill: known(0), UnderOOM: known(0)},
		},
		// The blkio files were read and hold no device: totals Known 0.
		IO: IOStats{
			ReadBytes: known(0), WriteBytes: known(0), ReadOps: known(0), WriteOps: known(0),
			DiscardBytes: known(0), DiscardOps: known(0),
		},
		Pids: PidsStats{Current: known(2), Limit: known(50), Peak: known(6), ForkFailures: known(0)},
		// No hugetlb hierarchy is mounted in the capture, and its unified
		// hierarchy was not captured: both stay unavailable.
	}
}

// TestStatAllocs: a Stat into a reused Stats allocates nothing, whether it
// reads the limit files or copies the kept ones (WithLimitMaxAge), and the
// kept limits equal the ones read.
func TestStatAllocs(t *testing.T) {
	ctx := context.Background()
	for _, age := range []time.Duration{0, time.Hour} {
		fs, err := NewFS(ctx, WithRoot(fixtureRoot(t, "cgroup2-kernel6.18", nil)), WithLimitMaxAge(age))
		if err != nil {
			t.Fatal(err)
		}
		g, err := fs.Open(ctx, "/fixture_load", All)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		var s, first Stats
		if err := g.Stat(ctx, &first); err != nil {
			t.Fatal(err)
		}
		if err := g.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s, first) {
			t.Errorf("max age %v: a second Stat differs from the first:\n%+v\n%+v", age, s, first)
		}
		if n := testing.AllocsPerRun(100, func() { g.Stat(ctx, &s) }); n != 0 {
			t.Errorf("max age %v: Stat allocates %v times per call", age, n)
		}
	}
}
