package cgroup_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	occgroups "github.com/opencontainers/cgroups"
	ocfs "github.com/opencontainers/cgroups/fs"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

func TestMain(m *testing.M) {
	cgtest.Main()
	os.Exit(m.Run())
}

// v1Controllers are the hierarchies the live tests make groups in; "" is the
// unified hierarchy of a hybrid host, for PSI.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "blkio", "pids", ""}

const (
	memLimit  = 256 << 20
	workMem   = 64 << 20
	workIO    = 8 << 20
	quotaUsec = 50000
)

// startLoad makes a v1 group with limits and a workload in it that has
// allocated workMem, written and read workIO bytes with O_DIRECT, and spins.
func startLoad(t *testing.T) (*cgtest.Group, *cgtest.Workload) {
	g := cgtest.NewV1(t, v1Controllers...)
	g.Write("memory", "memory.limit_in_bytes", "268435456")
	g.Write("cpu", "cpu.cfs_quota_us", "50000")
	g.Write("pids", "pids.max", "100")
	dir := t.TempDir()
	// Since Linux 6.9 blk-throttle counts I/O (blkio.throttle.io_service_*,
	// the only v1 block I/O files left besides BFQ's) only on a device queue
	// where some throttle limit has been set. Set a limit far above anything
	// this test does, on our own group, for the device the I/O goes to.
	g.Write("blkio", "blkio.throttle.write_bps_device", cgtest.DevOf(t, dir)+" 1099511627776")
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: workMem, IOBytes: workIO, IODir: dir, SpinCPU: true})
	return g, w
}

func newFS(t *testing.T) *cgroup.FS {
	fs, err := cgroup.NewFS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestLiveV1 puts a process that burns CPU, allocates memory and does direct
// I/O into real v1 groups, and checks that the counters show it.
func TestLiveV1(t *testing.T) {
	ctx := context.Background()
	g, w := startLoad(t)
	fs := newFS(t)
	grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()

	var a, b cgroup.Stats
	if err := grp.Stat(ctx, &a); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // wait until the spinner has run for a while
		if err := grp.Stat(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if u, _ := b.CPU.Usage.Get(); u > a.CPU.Usage.V+50e6 || i > 1000 {
			break
		}
		waitTick()
	}
	if !(b.CPU.Usage.V > a.CPU.Usage.V) || b.CPU.Usage.State != cgroup.Known {
		t.Errorf("CPU usage did not move: %v -> %v", a.CPU.Usage, b.CPU.Usage)
	}
	if b.CPU.User.V+b.CPU.System.V == 0 || b.CPU.User.State != cgroup.Known {
		t.Errorf("user %v + system %v: want > 0", b.CPU.User, b.CPU.System)
	}
	var sum uint64
	for _, v := range b.CPU.PerCPU {
		sum += v
	}
	if sum < a.CPU.Usage.V || len(b.CPU.PerCPU) == 0 {
		t.Errorf("per-CPU sum %d below an earlier usage %v", sum, a.CPU.Usage)
	}
	if b.CPU.Quota != (cgroup.Value{V: quotaUsec * 1000, State: cgroup.Known}) {
		t.Errorf("quota = %v ns, want %d µs in ns", b.CPU.Quota, quotaUsec)
	}
	if c, st := b.CPU.LimitCores(); st != cgroup.Known || c != 0.5 {
		t.Errorf("LimitCores = %v %v, want 0.5", c, st)
	}
	if b.CPU.Periods.V == 0 {
		t.Errorf("nr_periods = %v, want > 0 with a quota and a spinner", b.CPU.Periods)
	}
	m := b.Memory
	if m.Limit != (cgroup.Value{V: memLimit, State: cgroup.Known}) {
		t.Errorf("memory limit = %v, want %d", m.Limit, memLimit)
	}
	if m.Usage.V < workMem || m.Anon.V < workMem || m.WorkingSet.V < workMem || m.Peak.V < m.Usage.V {
		t.Errorf("memory usage %v anon %v working set %v peak %v: want all >= %d", m.Usage, m.Anon, m.WorkingSet, m.Peak, workMem)
	}
	if m.Usage.V > memLimit {
		t.Errorf("memory usage %v above the limit %d", m.Usage, memLimit)
	}
	if m.Pgfault.V < workMem/4096 {
		t.Errorf("pgfault = %v, want >= %d (one per touched page)", m.Pgfault, workMem/4096)
	}
	var wrote, read, wops uint64
	for _, d := range b.IO.Devices {
		wrote += d.WriteBytes.V
		read += d.ReadBytes.V
		wops += d.WriteOps.V
		if d.Name == "" {
			t.Errorf("device %d:%d has no name", d.Major, d.Minor)
		}
	}
	if wrote < workIO || read < workIO || wops == 0 {
		t.Errorf("block I/O written %d read %d (%d write ops), want >= %d each: %+v", wrote, read, wops, workIO, b.IO.Devices)
	}
	kv := func(v uint64) cgroup.Value { return cgroup.Value{V: v, State: cgroup.Known} }
	if io := b.IO; io.WriteBytes != kv(wrote) || io.ReadBytes != kv(read) || io.WriteOps != kv(wops) {
		t.Errorf("I/O totals written %v read %v write ops %v, want the devices' sums %d %d %d", io.WriteBytes, io.ReadBytes, io.WriteOps, wrote, read, wops)
	}
	if b.Pids.Current.V < 1 || b.Pids.Limit != (cgroup.Value{V: 100, State: cgroup.Known}) {
		t.Errorf("pids %v limit %v, want >= 1 and 100", b.Pids.Current, b.Pids.Limit)
	}
	if _, ok := g.Dirs[""]; ok {
		// Hybrid: PSI comes from the group's directory in the unified
		// hierarchy, which cgtest made too.
		if !b.Pressure.CPU.Some.Available() || !b.Pressure.Memory.Some.Available() || !b.Pressure.IO.Some.Available() {
			t.Errorf("pressure unavailable on a hybrid host: %+v", b.Pressure)
		}
	}
	if fs.Mode() == cgroup.Hybrid && len(b.Hugetlb.Sizes) > 0 {
		t.Errorf("hugetlb available but not mounted here")
	}
}

// TestLiveAgainstOpencontainers reads the same group with
// opencontainers/cgroups (fs.Manager.GetStats) between two of our reads, and
// checks every overlapping field: equal where nothing moves, between our two
// readings for counters that move while the spinner runs.
func TestLiveAgainstOpencontainers(t *testing.T) {
	ctx := context.Background()
	g, w := startLoad(t)
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	paths := map[string]string{}
	for _, c := range v1Controllers {
		if c != "" {
			paths[c] = g.Dirs[c]
		}
	}
	mgr, err := ocfs.NewManager(&occgroups.Cgroup{Resources: &occgroups.Resources{}}, paths)
	if err != nil {
		t.Fatal(err)
	}
	_ = w
	var before, after cgroup.Stats
	if err := grp.Stat(ctx, &before); err != nil {
		t.Fatal(err)
	}
	oc, err := mgr.GetStats()
	if err != nil {
		t.Fatal(err)
	}
	if err := grp.Stat(ctx, &after); err != nil {
		t.Fatal(err)
	}
	between := func(name string, lo, v, hi uint64) {
		t.Helper()
		if v < lo || v > hi {
			t.Errorf("%s: opencontainers %d not within ours %d..%d", name, v, lo, hi)
		}
	}
	equal := func(name string, ours cgroup.Value, theirs uint64) {
		t.Helper()
		if v, ok := ours.Get(); !ok || v != theirs {
			t.Errorf("%s: ours %v, opencontainers %d", name, ours, theirs)
		}
	}
	// near is for gauges that may move either way between reads: the
	// kernel's own allocations for the spinning workload (and the Go
	// runtime's in it) change usage, kernel memory and the LRU lists by a
	// few pages.
	near := func(name string, a cgroup.Value, v uint64, b cgroup.Value) {
		t.Helper()
		lo, hi := min(a.V, b.V), max(a.V, b.V)
		const slack = 256 << 10
		if a.State != cgroup.Known || v+slack < lo || v > hi+slack {
			t.Errorf("%s: opencontainers %d, ours %v..%v", name, v, a, b)
		}
	}
	cu := oc.CpuStats.CpuUsage
	between("cpu total", before.CPU.Usage.V, cu.TotalUsage, after.CPU.Usage.V)
	if len(cu.PercpuUsage) != len(after.CPU.PerCPU) {
		t.Fatalf("per-CPU: %d CPUs vs ours %d", len(cu.PercpuUsage), len(after.CPU.PerCPU))
	}
	for i := range cu.PercpuUsage {
		between("per-CPU usage", before.CPU.PerCPU[i], cu.PercpuUsage[i], after.CPU.PerCPU[i])
	}
	// opencontainers reads these from cpuacct.stat too (with USER_HZ the
	// constant 100; ours comes from the auxiliary vector).
	between("cpu user", before.CPU.User.V, cu.UsageInUsermode, after.CPU.User.V)
	between("cpu system", before.CPU.System.V, cu.UsageInKernelmode, after.CPU.System.V)
	td := oc.CpuStats.ThrottlingData
	between("nr_periods", before.CPU.Periods.V, td.Periods, after.CPU.Periods.V)
	between("nr_throttled", before.CPU.ThrottledPeriods.V, td.ThrottledPeriods, after.CPU.ThrottledPeriods.V)
	between("throttled_time", before.CPU.ThrottledTime.V, td.ThrottledTime, after.CPU.ThrottledTime.V)
	between("nr_bursts", before.CPU.Bursts.V, oc.CpuStats.BurstData.BurstsPeriods, after.CPU.Bursts.V)
	between("burst_time", before.CPU.BurstTime.V, oc.CpuStats.BurstData.BurstTime, after.CPU.BurstTime.V)

	// Memory does not move while the workload only spins.
	ms, m := oc.MemoryStats, after.Memory
	near("memory usage", before.Memory.Usage, ms.Usage.Usage, after.Memory.Usage)
	near("memory max usage", before.Memory.Peak, ms.Usage.MaxUsage, after.Memory.Peak)
	equal("memory failcnt", m.Failcnt, ms.Usage.Failcnt)
	equal("memory limit", m.Limit, ms.Usage.Limit)
	near("kernel usage", before.Memory.Kernel, ms.KernelUsage.Usage, after.Memory.Kernel)
	if ms.SwapUsage.Limit != 0 { // memsw present: swap accounting is on
		if m.MemSwapLimit.IsUnlimited() {
			// opencontainers passes on the kernel's page-rounded 2^63-1.
			if want := uint64(1<<63-1) / uint64(os.Getpagesize()) * uint64(os.Getpagesize()); ms.SwapUsage.Limit != want {
				t.Errorf("memsw limit: ours unlimited, opencontainers %d", ms.SwapUsage.Limit)
			}
		} else {
			equal("memsw limit", m.MemSwapLimit, ms.SwapUsage.Limit)
		}
	}
	near("memory.stat total_swap", before.Memory.SwapUsage, ms.Stats["total_swap"], after.Memory.SwapUsage)
	for key, v := range map[string][2]cgroup.Value{
		"total_rss": {before.Memory.Anon, m.Anon}, "total_cache": {before.Memory.File, m.File},
		"total_shmem": {before.Memory.Shmem, m.Shmem}, "total_mapped_file": {before.Memory.MappedFile, m.MappedFile},
		"total_inactive_file": {before.Memory.InactiveFile, m.InactiveFile},
		"total_active_file":   {before.Memory.ActiveFile, m.ActiveFile},
	} {
		near("memory.stat "+key, v[0], ms.Stats[key], v[1])
	}
	between("memory.stat total_pgmajfault", before.Memory.Pgmajfault.V, ms.Stats["total_pgmajfault"], after.Memory.Pgmajfault.V)
	between("memory.stat total_pgfault", before.Memory.Pgfault.V, ms.Stats["total_pgfault"], after.Memory.Pgfault.V)

	equal("pids current", after.Pids.Current, oc.PidsStats.Current)
	equal("pids limit", after.Pids.Limit, oc.PidsStats.Limit)

	// Block I/O: the same devices and values.
	type key struct {
		maj, min uint64
		op       string
	}
	theirs := map[key]uint64{}
	for _, e := range oc.BlkioStats.IoServiceBytesRecursive {
		theirs[key{e.Major, e.Minor, e.Op + " bytes"}] = e.Value
	}
	for _, e := range oc.BlkioStats.IoServicedRecursive {
		theirs[key{e.Major, e.Minor, e.Op + " ops"}] = e.Value
	}
	if len(after.IO.Devices) == 0 {
		t.Fatal("no block I/O devices")
	}
	for _, d := range after.IO.Devices {
		for op, v := range map[string]cgroup.Value{
			"Read bytes": d.ReadBytes, "Write bytes": d.WriteBytes, "Discard bytes": d.DiscardBytes,
			"Read ops": d.ReadOps, "Write ops": d.WriteOps, "Discard ops": d.DiscardOps,
		} {
			// Both read the same rows: a row opencontainers has is Known
			// here with the same number, and one it lacks is Unavailable.
			tv, ok := theirs[key{uint64(d.Major), uint64(d.Minor), op}]
			if got, known := v.Get(); ok != known || tv != got {
				t.Errorf("blkio %d:%d %s: ours %v, opencontainers %d (present %v)", d.Major, d.Minor, op, v, tv, ok)
			}
		}
	}
}

// TestLiveRemovedMidScrape removes a group while a Group holds it open:
// Stat fails with ErrNotExist (which is also fs.ErrNotExist), and Close
// gives back every descriptor; Stat after Close fails with ErrClosed (which
// is also os.ErrClosed).
func TestLiveRemovedMidScrape(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, v1Controllers...)
	w := cgtest.Start(t, g, cgtest.Spec{})
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	// 4 cpu + 2 cpuacct + 8 memory + 2 blkio + 2 pids files, and 3
	// pressure files on a hybrid host.
	if n := groupFDs(t, g.Path); n < 18 {
		t.Fatalf("descriptors open on the group: %d, want >= 18", n)
	}
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	err = grp.Stat(ctx, &s)
	if !errors.Is(err, cgroup.ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat after removal: %v, want ErrNotExist and fs.ErrNotExist", err)
	}
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := groupFDs(t, g.Path); n != 0 {
		t.Errorf("descriptors still open on the group after Close: %d", n)
	}
	if err := grp.Stat(ctx, &s); !errors.Is(err, cgroup.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Stat after Close: %v, want ErrClosed and os.ErrClosed", err)
	}
	// Opening the removed group fails with ErrNotExist too.
	if _, err := fs.Open(ctx, g.Path, cgroup.All); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("Open of a removed group: %v, want ErrNotExist", err)
	}
	if _, err := fs.OpenPID(ctx, w.Pid, cgroup.All); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("OpenPID of an exited process: %v, want ErrNotExist", err)
	}
}

// groupFDs counts this process's descriptors open on files of the cgroup
// at path, from the /proc/self/fd links (which keep the path, marked
// "(deleted)", after the group is removed).
func groupFDs(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, path+"/") {
			n++
		}
	}
	return n
}

// TestLiveNoSystemPSI: on a hybrid host a task whose unified-hierarchy
// group is the root (the runtime made no group there) must not report the
// whole system's pressure as its own.
func TestLiveNoSystemPSI(t *testing.T) {
	g := cgtest.NewV1(t, "memory", "cpu") // no unified group
	w := cgtest.Start(t, g, cgtest.Spec{})
	ctx := context.Background()
	fs := newFS(t)
	if fs.Mode() != cgroup.Hybrid {
		t.Skip("needs a hybrid host")
	}
	grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if s.Pressure.CPU.Some.Available() || s.Pressure.Memory.Some.Available() {
		t.Errorf("pressure available for a group that exists only in v1: %+v", s.Pressure)
	}
	if !s.Memory.Usage.Available() {
		t.Error("memory usage unavailable")
	}
}
