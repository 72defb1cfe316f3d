package cgroup_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	occgroups "github.com/opencontainers/cgroups"
	ocfs2 "github.com/opencontainers/cgroups/fs2"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// The live cgroup v2 tests run on a pure v2 host only (cgtest.NewV2 skips
// elsewhere); scripts/v2lane.sh runs them in QEMU guests booted with
// cgroup_no_v1=all on Debian's 6.1 and 6.12 kernels, with an ext4 virtio disk
// at /tmp (so t.TempDir() is on a real block device) and 16 huge pages of
// 2 MiB reserved.

// v2Controllers are the controllers the v2 tests enable for their groups.
var v2Controllers = []string{"cpu", "cpuset", "memory", "io", "pids", "hugetlb"}

const hugeBytes = 4 << 20 // two 2 MiB pages

// startLoadV2 makes a v2 group with limits and a workload in it that has
// allocated workMem and two huge pages, written and read workIO bytes with
// O_DIRECT on the block device under t.TempDir(), and spins.
func startLoadV2(t *testing.T) (*cgtest.Group, *cgtest.Workload) {
	g := cgtest.NewV2(t, v2Controllers...)
	g.Write("", "memory.max", strconv.Itoa(memLimit))
	g.Write("", "cpu.max", strconv.Itoa(quotaUsec)+" 100000")
	g.Write("", "pids.max", "100")
	needHugePages(t, hugeBytes)
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: workMem, HugeBytes: hugeBytes, IOBytes: workIO, IODir: blockDir(t), SpinCPU: true})
	return g, w
}

// blockDir is a new directory on a block device: t.TempDir(), which the
// lane puts on a virtio disk. Direct I/O on tmpfs fails, and io.stat counts
// block devices only.
func blockDir(t *testing.T) string {
	dir := t.TempDir()
	if dev := cgtest.DevOf(t, dir); strings.HasPrefix(dev, "0:") {
		t.Fatalf("t.TempDir() %s is not on a block device (%s): set TMPDIR to a directory on a disk", dir, dev)
	}
	return dir
}

// needHugePages fails unless n bytes of free 2 MiB huge pages are reserved
// (the lane reserves 16 at boot; the test never changes the system's pool).
func needHugePages(t *testing.T, n int) {
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
	if err != nil {
		t.Fatalf("no 2 MiB huge pages: %v", err)
	}
	free, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if free*(2<<20) < n {
		t.Fatalf("%d free 2 MiB huge pages, want %d: reserve them (echo 16 >/proc/sys/vm/nr_hugepages; scripts/v2lane-guest.sh does)", free, n/(2<<20))
	}
}

// kernelUint reads a one-number file of g directly.
func kernelUint(t *testing.T, g *cgtest.Group, file string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimSpace(g.Read("", file)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLiveV2 puts a process that burns CPU, allocates memory and huge pages
// and does direct I/O into a real v2 group with limits, and checks that
// every controller's figures show it.
func TestLiveV2(t *testing.T) {
	ctx := context.Background()
	_, w := startLoadV2(t)
	fs := newFS(t)
	if fs.Mode() != cgroup.Unified {
		t.Fatalf("mode %v on a pure v2 host", fs.Mode())
	}
	grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	if grp.Version() != 2 {
		t.Errorf("Version %d, want 2", grp.Version())
	}

	var a, b cgroup.Stats
	if err := grp.Stat(ctx, &a); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // wait until the spinner has been throttled a few times
		if err := grp.Stat(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if u, _ := b.CPU.Usage.Get(); (u > a.CPU.Usage.V+200e6 && b.CPU.ThrottledPeriods.V > 2) || i > 3000 {
			break
		}
		waitTick()
	}
	c := b.CPU
	if !(c.Usage.V > a.CPU.Usage.V) || c.Usage.State != cgroup.Known {
		t.Errorf("CPU usage did not move: %v -> %v", a.CPU.Usage, c.Usage)
	}
	if c.User.State != cgroup.Known || c.System.State != cgroup.Known || c.User.V == 0 {
		t.Errorf("user %v system %v: want Known, user > 0", c.User, c.System)
	}
	// cpu.stat's usage_usec is user_usec + system_usec, computed from the
	// same sample: at most a microsecond apart per rounding.
	if d := int64(c.Usage.V) - int64(c.User.V+c.System.V); d < -2000 || d > 2000 {
		t.Errorf("usage %v, user+system %d", c.Usage, c.User.V+c.System.V)
	}
	if len(c.PerCPU) != 0 {
		t.Errorf("per-CPU usage on v2: %v", c.PerCPU)
	}
	if c.Quota != (cgroup.Value{V: quotaUsec * 1000, State: cgroup.Known}) || c.Period != (cgroup.Value{V: 100000 * 1000, State: cgroup.Known}) {
		t.Errorf("quota %v period %v ns, want %d µs and 100000 µs", c.Quota, c.Period, quotaUsec)
	}
	if cores, st := c.LimitCores(); st != cgroup.Known || cores != 0.5 {
		t.Errorf("LimitCores = %v %v, want 0.5", cores, st)
	}
	if c.Periods.V == 0 || c.ThrottledPeriods.V == 0 || c.ThrottledTime.V == 0 {
		t.Errorf("periods %v throttled %v for %v: want > 0 with a 50%% quota and a spinner", c.Periods, c.ThrottledPeriods, c.ThrottledTime)
	}
	if c.Weight != (cgroup.Value{V: 100, State: cgroup.Known}) || c.Shares.Available() {
		t.Errorf("weight %v (want 100), shares %v (want unavailable on v2)", c.Weight, c.Shares)
	}

	m := b.Memory
	if m.Limit != (cgroup.Value{V: memLimit, State: cgroup.Known}) {
		t.Errorf("memory limit = %v, want %d", m.Limit, memLimit)
	}
	if m.Usage.V < workMem || m.Anon.V < workMem || m.WorkingSet.V < workMem || m.Peak.V < m.Usage.V || m.Usage.V > memLimit {
		t.Errorf("memory usage %v anon %v working set %v peak %v: want all >= %d, usage <= peak and the limit", m.Usage, m.Anon, m.WorkingSet, m.Peak, workMem)
	}
	if m.Pgfault.V < workMem/4096 {
		t.Errorf("pgfault = %v, want >= %d (one per touched page)", m.Pgfault, workMem/4096)
	}
	if !m.Kernel.Available() || !m.File.Available() || !m.InactiveFile.Available() {
		t.Errorf("kernel %v file %v inactive file %v: want available", m.Kernel, m.File, m.InactiveFile)
	}
	if m.Events.Max.State != cgroup.Known || m.Events.OOMKill != (cgroup.Value{State: cgroup.Known}) || m.Events.UnderOOM.Available() {
		t.Errorf("memory events %+v: want max and oom_kill known (0 kills), under_oom unavailable on v2", m.Events)
	}
	if m.Failcnt.Available() || m.MemSwapLimit.Available() {
		t.Errorf("failcnt %v memsw limit %v: v1 only", m.Failcnt, m.MemSwapLimit)
	}
	if m.SwapLimit.State != cgroup.Unlimited || m.SwapUsage != (cgroup.Value{State: cgroup.Known}) {
		t.Errorf("swap usage %v limit %v, want 0 and unlimited (no swap in the guest)", m.SwapUsage, m.SwapLimit)
	}

	var wrote, read uint64
	for _, d := range b.IO.Devices {
		wrote += d.WriteBytes.V
		read += d.ReadBytes.V
		if d.Name == "" {
			t.Errorf("device %d:%d has no name", d.Major, d.Minor)
		}
		if !d.ReadBytes.Available() || !d.WriteOps.Available() || !d.DiscardBytes.Available() {
			t.Errorf("device %d:%d: %+v, want every io.stat key", d.Major, d.Minor, d)
		}
	}
	io := b.IO
	if wrote < workIO || read < workIO || io.WriteBytes != (cgroup.Value{V: wrote, State: cgroup.Known}) || io.ReadBytes.V != read || io.WriteOps.V == 0 || io.ReadOps.V == 0 {
		t.Errorf("block I/O written %v read %v (%v/%v ops), want >= %d each and the devices' sums: %+v", io.WriteBytes, io.ReadBytes, io.WriteOps, io.ReadOps, workIO, io.Devices)
	}

	if b.Pids.Current.V < 1 || b.Pids.Current.State != cgroup.Known || b.Pids.Limit != (cgroup.Value{V: 100, State: cgroup.Known}) {
		t.Errorf("pids %v limit %v, want >= 1 and 100", b.Pids.Current, b.Pids.Limit)
	}

	if len(b.Hugetlb.Sizes) == 0 {
		t.Fatalf("hugetlb unavailable: %+v", b.Hugetlb)
	}
	var found bool
	for _, h := range b.Hugetlb.Sizes {
		if h.Limit.State != cgroup.Unlimited || h.Failcnt != (cgroup.Value{State: cgroup.Known}) {
			t.Errorf("hugetlb %s: limit %v failcnt %v, want unlimited and 0", h.PageSize, h.Limit, h.Failcnt)
		}
		want := uint64(0)
		if h.PageSize == "2MB" {
			found, want = true, hugeBytes
		}
		if h.Usage != (cgroup.Value{V: want, State: cgroup.Known}) {
			t.Errorf("hugetlb %s usage %v, want %d", h.PageSize, h.Usage, want)
		}
	}
	if !found {
		t.Errorf("no 2MB size in %+v", b.Hugetlb.Sizes)
	}

	// PSI: every v2 group has its three pressure files, each with a some
	// and a full line (TestLiveV2Pressure makes CPU contention).
	p := b.Pressure
	for name, psi := range map[string]cgroup.PSI{"cpu": p.CPU, "memory": p.Memory, "io": p.IO} {
		if !psi.Some.Available() || !psi.Full.Available() {
			t.Errorf("%s pressure: %+v, want some and full", name, psi)
		}
	}
	// The group's own I/O waited for the disk: io pressure is not zero.
	if p.IO.Some.Total.V == 0 {
		t.Errorf("io pressure some total 0 after %d bytes of direct I/O", workIO)
	}
}

// TestLiveV2Pressure makes CPU contention the kernel must count as
// pressure: two spinners in a group confined to one CPU, each runnable
// while the other runs. The pressure figures move, and agree with the
// kernel's file read directly between two of ours.
func TestLiveV2Pressure(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "cpu", "cpuset", "memory", "io")
	g.Write("", "cpuset.cpus", "0")
	cgtest.Start(t, g, cgtest.Spec{SpinCPU: true})
	cgtest.Start(t, g, cgtest.Spec{SpinCPU: true})
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.Pressure|cgroup.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var a, b cgroup.Stats
	if err := grp.Stat(ctx, &a); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := grp.Stat(ctx, &b); err != nil {
			t.Fatal(err)
		}
		// avg10 is updated every 2 s: wait for it too.
		if b.Pressure.CPU.Some.Total.V > a.Pressure.CPU.Some.Total.V+100e6 && b.Pressure.CPU.Some.Avg10 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU pressure after 30 s of two spinners on one CPU: %+v -> %+v", a.Pressure.CPU, b.Pressure.CPU)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var before, after cgroup.Stats
	if err := grp.Stat(ctx, &before); err != nil {
		t.Fatal(err)
	}
	raw := g.Read("", "cpu.pressure")
	if err := grp.Stat(ctx, &after); err != nil {
		t.Fatal(err)
	}
	var total uint64 // µs
	for _, f := range strings.Fields(strings.SplitN(raw, "\n", 2)[0]) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			total, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if total*1000 < before.Pressure.CPU.Some.Total.V || total*1000 > after.Pressure.CPU.Some.Total.V {
		t.Errorf("cpu.pressure some total: kernel %d µs, ours %v..%v ns (%q)", total, before.Pressure.CPU.Some.Total, after.Pressure.CPU.Some.Total, raw)
	}
	if s := after.Pressure.CPU.Some; s.Avg10 <= 0 || s.Avg10 > 100 || s.Avg60 > 100 || s.Avg300 > 100 {
		t.Errorf("cpu some averages %+v: want 0 < avg10 <= 100", s)
	}
}

// TestLiveV2AgainstOpencontainers reads the same v2 group with
// opencontainers/cgroups' fs2 manager between two of our reads, and checks
// every overlapping field: equal where nothing moves, between our two
// readings for counters that move while the spinner runs.
func TestLiveV2AgainstOpencontainers(t *testing.T) {
	ctx := context.Background()
	g, _ := startLoadV2(t)
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	mgr, err := ocfs2.NewManager(&occgroups.Cgroup{Resources: &occgroups.Resources{}}, g.Dirs[""])
	if err != nil {
		t.Fatal(err)
	}
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
	near := func(name string, a cgroup.Value, v uint64, b cgroup.Value) {
		t.Helper()
		lo, hi := min(a.V, b.V), max(a.V, b.V)
		const slack = 256 << 10
		if a.State != cgroup.Known || v+slack < lo || v > hi+slack {
			t.Errorf("%s: opencontainers %d, ours %v..%v", name, v, a, b)
		}
	}
	cs, bc, ac := oc.CpuStats, before.CPU, after.CPU
	between("cpu usage", bc.Usage.V, cs.CpuUsage.TotalUsage, ac.Usage.V)
	between("cpu user", bc.User.V, cs.CpuUsage.UsageInUsermode, ac.User.V)
	between("cpu system", bc.System.V, cs.CpuUsage.UsageInKernelmode, ac.System.V)
	between("nr_periods", bc.Periods.V, cs.ThrottlingData.Periods, ac.Periods.V)
	between("nr_throttled", bc.ThrottledPeriods.V, cs.ThrottlingData.ThrottledPeriods, ac.ThrottledPeriods.V)
	between("throttled time", bc.ThrottledTime.V, cs.ThrottlingData.ThrottledTime, ac.ThrottledTime.V)
	between("nr_bursts", bc.Bursts.V, cs.BurstData.BurstsPeriods, ac.Bursts.V)
	between("burst time", bc.BurstTime.V, cs.BurstData.BurstTime, ac.BurstTime.V)
	if len(cs.CpuUsage.PercpuUsage) != 0 {
		t.Errorf("opencontainers has per-CPU usage on v2: %v", cs.CpuUsage.PercpuUsage)
	}

	ms, bm, am := oc.MemoryStats, before.Memory, after.Memory
	near("memory usage", bm.Usage, ms.Usage.Usage, am.Usage)
	equal("memory limit", am.Limit, ms.Usage.Limit)
	near("memory peak", bm.Peak, ms.Usage.MaxUsage, am.Peak)
	near("swap usage", bm.SwapUsage, ms.SwapOnlyUsage.Usage, am.SwapUsage)
	if ms.SwapOnlyUsage.Limit != math.MaxUint64 || !am.SwapLimit.IsUnlimited() {
		t.Errorf("swap limit: ours %v, opencontainers %d (max is MaxUint64)", am.SwapLimit, ms.SwapOnlyUsage.Limit)
	}
	for key, v := range map[string][2]cgroup.Value{
		"anon": {bm.Anon, am.Anon}, "file": {bm.File, am.File}, "shmem": {bm.Shmem, am.Shmem},
		"file_mapped": {bm.MappedFile, am.MappedFile}, "inactive_file": {bm.InactiveFile, am.InactiveFile},
		"active_file": {bm.ActiveFile, am.ActiveFile}, "kernel": {bm.Kernel, am.Kernel},
	} {
		theirs, ok := ms.Stats[key]
		if !ok {
			t.Errorf("memory.stat %s: not in opencontainers' stats", key)
			continue
		}
		near("memory.stat "+key, v[0], theirs, v[1])
	}
	between("memory.stat pgfault", bm.Pgfault.V, ms.Stats["pgfault"], am.Pgfault.V)
	between("memory.stat pgmajfault", bm.Pgmajfault.V, ms.Stats["pgmajfault"], am.Pgmajfault.V)

	equal("pids current", after.Pids.Current, oc.PidsStats.Current)
	equal("pids limit", after.Pids.Limit, oc.PidsStats.Limit)

	// io.stat: the same devices and values (only the workload's own I/O,
	// done before the first read, is charged to the group).
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
		for op, v := range map[string]cgroup.Value{"Read bytes": d.ReadBytes, "Write bytes": d.WriteBytes, "Read ops": d.ReadOps, "Write ops": d.WriteOps} {
			if tv, ok := theirs[key{uint64(d.Major), uint64(d.Minor), op}]; !ok || v != (cgroup.Value{V: tv, State: cgroup.Known}) {
				t.Errorf("io %d:%d %s: ours %d, opencontainers %d (present %v)", d.Major, d.Minor, op, v, tv, ok)
			}
		}
	}
	if n := len(oc.BlkioStats.IoServiceBytesRecursive); n != 2*len(after.IO.Devices) {
		t.Errorf("opencontainers has %d byte rows for our %d devices", n, len(after.IO.Devices))
	}

	if len(oc.HugetlbStats) != len(after.Hugetlb.Sizes) {
		t.Errorf("hugetlb sizes: opencontainers %d, ours %d", len(oc.HugetlbStats), len(after.Hugetlb.Sizes))
	}
	for _, h := range after.Hugetlb.Sizes {
		th, ok := oc.HugetlbStats[h.PageSize]
		if !ok {
			t.Errorf("hugetlb %s: not in opencontainers' stats", h.PageSize)
			continue
		}
		equal("hugetlb "+h.PageSize+" usage", h.Usage, th.Usage)
		equal("hugetlb "+h.PageSize+" failcnt", h.Failcnt, th.Failcnt)
	}

	for name, v := range map[string]struct {
		b, a   cgroup.PSI
		theirs *occgroups.PSIStats
	}{
		"cpu":    {before.Pressure.CPU, after.Pressure.CPU, cs.PSI},
		"memory": {before.Pressure.Memory, after.Pressure.Memory, ms.PSI},
		"io":     {before.Pressure.IO, after.Pressure.IO, oc.BlkioStats.PSI},
	} {
		if v.theirs == nil {
			t.Errorf("%s pressure: opencontainers has none", name)
			continue
		}
		for line, l := range map[string][3]any{
			"some": {v.b.Some, v.a.Some, v.theirs.Some},
			"full": {v.b.Full, v.a.Full, v.theirs.Full},
		} {
			b, a, th := l[0].(cgroup.PSILine), l[1].(cgroup.PSILine), l[2].(occgroups.PSIData)
			// Ours in ns, the kernel's and opencontainers' in µs.
			between(name+" pressure "+line+" total", b.Total.V, th.Total*1000, a.Total.V)
			for _, avg := range [][3]float64{{b.Avg10, th.Avg10, a.Avg10}, {b.Avg60, th.Avg60, a.Avg60}, {b.Avg300, th.Avg300, a.Avg300}} {
				if lo, hi := min(avg[0], avg[2]), max(avg[0], avg[2]); avg[1] < lo || avg[1] > hi {
					t.Errorf("%s pressure %s average: opencontainers %v, ours %v..%v", name, line, avg[1], avg[0], avg[2])
				}
			}
		}
	}
}

// TestLiveV2Limits changes every limit of a real v2 group to a number and
// back to "max": each Stat reports what the kernel file says (read
// directly), a number as Known and "max" as Unlimited. A Group opened
// WithLimitMaxAge keeps reporting what it read until RefreshLimits.
func TestLiveV2Limits(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "cpu", "memory", "pids", "hugetlb")
	hugeFile := "hugetlb.2MB.max"
	type limits struct {
		cpu, mem, swap, pids, huge string // as written
	}
	set := func(l limits) {
		g.Write("", "cpu.max", l.cpu)
		g.Write("", "memory.max", l.mem)
		g.Write("", "memory.swap.max", l.swap)
		g.Write("", "pids.max", l.pids)
		g.Write("", hugeFile, l.huge)
	}
	fsDefault := newFS(t)
	fsKept, err := cgroup.NewFS(ctx, cgroup.WithLimitMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	open := func(fs *cgroup.FS) *cgroup.Group {
		grp, err := fs.Open(ctx, g.Path, cgroup.CPU|cgroup.Memory|cgroup.Pids|cgroup.Hugetlb)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { grp.Close() })
		return grp
	}
	def, kept := open(fsDefault), open(fsKept)
	// want is what a Value must be for a file's content: "max" is
	// Unlimited, a number Known.
	want := func(content string) cgroup.Value {
		if content == "max" {
			return cgroup.Value{State: cgroup.Unlimited}
		}
		v, err := strconv.ParseUint(content, 10, 64)
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		return cgroup.Value{V: v, State: cgroup.Known}
	}
	// micro turns cpu.max's µs into the ns of Quota and Period.
	micro := func(us string) string {
		if us == "max" {
			return us
		}
		v, err := strconv.ParseUint(us, 10, 64)
		if err != nil {
			t.Fatalf("%q: %v", us, err)
		}
		return strconv.FormatUint(v*1000, 10)
	}
	check := func(what string, grp *cgroup.Group, kernel limits) {
		t.Helper()
		var s cgroup.Stats
		if err := grp.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
		quota, period, _ := strings.Cut(kernel.cpu, " ")
		var huge cgroup.Value
		for _, h := range s.Hugetlb.Sizes {
			if h.PageSize == "2MB" {
				huge = h.Limit
			}
		}
		for _, f := range []struct {
			name string
			got  cgroup.Value
			want string
		}{
			{"cpu quota (ns)", s.CPU.Quota, micro(quota)}, {"cpu period (ns)", s.CPU.Period, micro(period)},
			{"memory.max", s.Memory.Limit, kernel.mem}, {"memory.swap.max", s.Memory.SwapLimit, kernel.swap},
			{"pids.max", s.Pids.Limit, kernel.pids}, {hugeFile, huge, kernel.huge},
		} {
			if w := want(f.want); f.got != w {
				t.Errorf("%s: %s %v, kernel %q", what, f.name, f.got, f.want)
			}
		}
		cores, st := s.CPU.LimitCores()
		if quota == "max" && st != cgroup.Unlimited || quota != "max" && (st != cgroup.Known || cores <= 0) {
			t.Errorf("%s: LimitCores %v %v for cpu.max %q", what, cores, st, kernel.cpu)
		}
	}
	// kernel reads the files back: what the kernel made of what was written
	// (memory.max rounds down to a page).
	kernel := func() limits {
		r := func(f string) string { return strings.TrimSpace(g.Read("", f)) }
		return limits{r("cpu.max"), r("memory.max"), r("memory.swap.max"), r("pids.max"), r(hugeFile)}
	}

	unlimited := kernel()
	if unlimited != (limits{"max 100000", "max", "max", "max", "max"}) {
		t.Fatalf("a new group's limits: %+v", unlimited)
	}
	check("new group", def, unlimited)
	check("new group, kept", kept, unlimited)

	set(limits{"25000 50000", "100003", "0", "7", "4194304"})
	numbers := kernel()
	if numbers.mem != "98304" { // rounded down to 4 KiB pages
		t.Errorf("memory.max 100003 reads back as %s", numbers.mem)
	}
	check("numbers", def, numbers)
	check("numbers, kept from before", kept, unlimited)
	kept.RefreshLimits()
	check("numbers, kept, refreshed", kept, numbers)

	set(limits{"max 100000", "max", "max", "max", "max"})
	check("back to max", def, unlimited)
	check("back to max, kept from before", kept, numbers)
	kept.RefreshLimits()
	check("back to max, kept, refreshed", kept, unlimited)
}

// TestLiveV2RemovedMidScrape removes a v2 group while a Group holds it
// open: Stat fails with ErrNotExist, Close gives back every descriptor, and
// opening it again fails with ErrNotExist.
func TestLiveV2RemovedMidScrape(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, v2Controllers...)
	w := cgtest.Start(t, g, cgtest.Spec{})
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	// Every file a Group reads that the kernel has (memory.swap.peak and
	// pids.peak are newer than 6.1), and hugetlb 3 per size;
	// memory.events.local once memory.events counts an event (a new idle
	// group counts none).
	want := 0
	events := memoryEventsFile(t, filepath.Join(g.Dirs[""], "memory.events"))
	for _, v := range events {
		if v > 0 {
			want++ // memory.events.local
			break
		}
	}
	for _, f := range []string{
		"cpu.stat", "cpu.max", "cpu.weight",
		"memory.current", "memory.max", "memory.peak", "memory.stat", "memory.events",
		"memory.swap.current", "memory.swap.max", "memory.swap.peak", "memory.swap.events",
		"io.stat", "pids.current", "pids.max", "pids.peak", "pids.events",
		"cpu.pressure", "memory.pressure", "io.pressure",
	} {
		if _, err := os.Stat(filepath.Join(g.Dirs[""], f)); err == nil {
			want++
		}
	}
	sizes, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	if n, want := groupFDs(t, g.Path), want+3*len(sizes); n != want {
		t.Errorf("descriptors open on the group: %d, want %d", n, want)
	}
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := grp.Stat(ctx, &s); !errors.Is(err, cgroup.ErrNotExist) {
		t.Fatalf("Stat after removal: %v, want ErrNotExist", err)
	}
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := groupFDs(t, g.Path); n != 0 {
		t.Errorf("descriptors still open on the group after Close: %d", n)
	}
	if _, err := fs.Open(ctx, g.Path, cgroup.All); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("Open of a removed group: %v, want ErrNotExist", err)
	}
	if _, err := fs.OpenPID(ctx, w.Pid, cgroup.All); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("OpenPID of an exited process: %v, want ErrNotExist", err)
	}
}

// TestLiveV2Nested reads a group and two groups nested in it, each child
// with its own workload: v2 counts a group's descendants in its own
// figures, so the parent's pids are the children's sum, and its CPU and
// memory at least their sum.
func TestLiveV2Nested(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "cpu", "memory", "pids")
	var kids [2]string
	for i, name := range []string{"a", "b"} {
		c := g.Child(name, "cpu", "memory", "pids")
		kids[i] = c.Path
		cgtest.Start(t, c, cgtest.Spec{MemBytes: (i + 1) * 16 << 20, SpinCPU: i == 0})
	}
	fs := newFS(t)
	var grps [3]*cgroup.Group
	for i, p := range []string{kids[0], kids[1], g.Path} {
		grp, err := fs.Open(ctx, p, cgroup.CPU|cgroup.Memory|cgroup.Pids)
		if err != nil {
			t.Fatal(err)
		}
		defer grp.Close()
		grps[i] = grp
	}
	time.Sleep(200 * time.Millisecond) // let the spinner run
	var s [3]cgroup.Stats
	for i, grp := range grps { // children first: the parent's counters only grow
		if err := grp.Stat(ctx, &s[i]); err != nil {
			t.Fatal(err)
		}
	}
	a, b, parent := &s[0], &s[1], &s[2]
	if parent.Pids.Current.V != a.Pids.Current.V+b.Pids.Current.V || a.Pids.Current.V == 0 {
		t.Errorf("pids: parent %v, children %v + %v", parent.Pids.Current, a.Pids.Current, b.Pids.Current)
	}
	if parent.CPU.Usage.V < a.CPU.Usage.V+b.CPU.Usage.V || a.CPU.Usage.V == 0 {
		t.Errorf("cpu usage: parent %v, children %v + %v", parent.CPU.Usage, a.CPU.Usage, b.CPU.Usage)
	}
	if a.Memory.Anon.V < 16<<20 || b.Memory.Anon.V < 32<<20 {
		t.Errorf("anon: a %v (>= 16 MiB) b %v (>= 32 MiB)", a.Memory.Anon, b.Memory.Anon)
	}
	// Memory may move by a few pages between the reads: a 1 MiB slack.
	if parent.Memory.Usage.V+(1<<20) < a.Memory.Usage.V+b.Memory.Usage.V {
		t.Errorf("memory usage: parent %v, children %v + %v", parent.Memory.Usage, a.Memory.Usage, b.Memory.Usage)
	}
	for i, want := range []string{kids[0], kids[1]} {
		if u := kernelUint(t, g, filepath.Base(want)+"/pids.current"); u != s[i].Pids.Current.V {
			t.Errorf("%s pids.current: kernel %d, ours %v", want, u, s[i].Pids.Current)
		}
	}
}

// TestLiveV2PressureOff switches a live group's pressure accounting off
// (cgroup.pressure 0) while a Group holds its pressure files open: the
// kernel hides those files (a kept descriptor reads ENODEV, as it does for
// a removed group), yet the group is alive. Stat must go on reading it, with
// pressure Unavailable, and must not report the group removed. A Group
// opened while pressure is off reads the rest; one opened after it is
// switched on again has pressure.
func TestLiveV2PressureOff(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "cpu", "memory", "io", "pids")
	if _, err := os.Stat(filepath.Join(g.Dirs[""], "cgroup.pressure")); err != nil {
		t.Skipf("this kernel has no cgroup.pressure (Linux 6.1+ with PSI): %v", err)
	}
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	fs := newFS(t)
	grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Pressure.CPU.Some.Available() {
		t.Fatalf("pressure unavailable before switching it off: %+v", s.Pressure)
	}
	g.Write("", "cgroup.pressure", "0")
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatalf("Stat of a live group with cgroup.pressure 0: %v", err)
	}
	if s.Pressure.CPU.Some.Available() || s.Pressure.Memory.Some.Available() || s.Pressure.IO.Some.Available() {
		t.Errorf("pressure available with cgroup.pressure 0: %+v", s.Pressure)
	}
	if u := kernelUint(t, g, "memory.current"); !s.Memory.Usage.Available() || s.Memory.Usage.V+(1<<20) < u || s.Memory.Usage.V > u+(1<<20) {
		t.Errorf("memory usage %v, kernel %d", s.Memory.Usage, u)
	}
	if s.Pids.Current.V != kernelUint(t, g, "pids.current") || !s.CPU.Usage.Available() {
		t.Errorf("pids %v cpu %v", s.Pids.Current, s.CPU.Usage)
	}
	// Opened while off, the group has no pressure files, and reads the rest.
	grp2, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatalf("OpenPID with cgroup.pressure 0: %v", err)
	}
	defer grp2.Close()
	if err := grp2.Stat(ctx, &s); err != nil || s.Pressure.CPU.Some.Available() || !s.Memory.Usage.Available() {
		t.Errorf("group opened with pressure off: %v, pressure %+v, memory %v", err, s.Pressure.CPU, s.Memory.Usage)
	}
	g.Write("", "cgroup.pressure", "1")
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatalf("Stat of the first Group after cgroup.pressure 1: %v", err)
	}
	grp3, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp3.Close()
	if err := grp3.Stat(ctx, &s); err != nil || !s.Pressure.CPU.Some.Available() || !s.Pressure.IO.Some.Available() {
		t.Errorf("group opened after cgroup.pressure 1: %v, pressure %+v", err, s.Pressure)
	}
}

// memoryEventsFile reads a v2 memory.events-shaped file directly: key to
// count.
func memoryEventsFile(t *testing.T, file string) map[string]uint64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("%s: %q", file, l)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", file, l, err)
		}
		m[f[0]] = v
	}
	return m
}

// TestLiveV2EventsLocalIdle: while a v2 group's memory.events counts no
// event, neither does its memory.events.local, so the Group neither reads
// nor holds that file open, and its EventsLocal are the kernel's zeros.
// Once memory.max makes the group count "max" events (page cache reclaimed),
// the file is opened and EventsLocal is the kernel's.
func TestLiveV2EventsLocalIdle(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, v2Controllers...)
	idle := cgtest.Start(t, g, cgtest.Spec{})
	grp, err := newFS(t).OpenPID(ctx, idle.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	local := filepath.Join(g.Dir(""), "memory.events.local")
	var s cgroup.Stats
	for i := 0; i < 3; i++ {
		if err := grp.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]cgroup.Value{"low": s.Memory.EventsLocal.Low, "high": s.Memory.EventsLocal.High, "max": s.Memory.EventsLocal.Max,
		"oom": s.Memory.EventsLocal.OOM, "oom_kill": s.Memory.EventsLocal.OOMKill, "oom_group_kill": s.Memory.EventsLocal.OOMGroupKill}
	kernel := memoryEventsFile(t, local)
	for k, v := range got {
		want, ok := kernel[k]
		if ok && v != (cgroup.Value{V: want, State: cgroup.Known}) || !ok && v.Available() {
			t.Errorf("idle group: EventsLocal %s = %v; the kernel's memory.events.local: %d (present %v)", k, v, want, ok)
		}
	}
	if s.Memory.EventsLocal.High.State != cgroup.Known {
		t.Errorf("idle group: EventsLocal.High %v, want Known 0", s.Memory.EventsLocal.High)
	}
	if heldOpen(t, local) {
		t.Errorf("the idle group's %s is held open", local)
	}

	// Page cache written past memory.max: the kernel reclaims it and
	// counts "max" events in both files, and kills nothing. (Anonymous
	// memory past memory.high would do too, but the kernel throttles
	// each fault over it: 4 minutes in the emulated lane.)
	g.Write("", "memory.max", strconv.Itoa(24<<20)) // well above the idle process's own
	if err := g.Shell("exec dd if=/dev/zero of=" + t.TempDir() + "/f bs=1M count=64 conv=fsync").Wait(); err != nil {
		t.Fatalf("writing 64 MiB past memory.max 24 MiB: %v", err)
	}
	before := memoryEventsFile(t, local)["max"]
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	after := memoryEventsFile(t, local)["max"]
	if m := s.Memory.EventsLocal.Max; before == 0 || m.State != cgroup.Known || m.V < before || m.V > after {
		t.Errorf("EventsLocal.Max %v, the kernel's memory.events.local max %d before the Stat and %d after (want > 0 and between)", m, before, after)
	}
	if !heldOpen(t, local) {
		t.Errorf("%s is not held open once the group counts events", local)
	}
}
