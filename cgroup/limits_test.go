package cgroup_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// TestLiveLimitMaxAge changes the limits of a real v1 group (one the test
// made) under a Group opened WithLimitMaxAge: Stat keeps reporting the
// limits it read, still Known, until they are older than the max age or
// RefreshLimits is called, while the counters it reads stay fresh; a Group
// with the default (0) sees every change at once. Each limit is checked
// against the kernel file read directly.
func TestLiveLimitMaxAge(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, "cpu", "memory", "pids")
	set := func(mem, quota, pids int) {
		g.Write("memory", "memory.limit_in_bytes", strconv.Itoa(mem))
		g.Write("cpu", "cpu.cfs_quota_us", strconv.Itoa(quota))
		g.Write("pids", "pids.max", strconv.Itoa(pids))
	}
	kernel := func(controller, file string) uint64 {
		v, err := strconv.ParseUint(strings.TrimSpace(g.Read(controller, file)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	set(64<<20, 20000, 10)

	fsDefault := newFS(t)
	fsKept, err := cgroup.NewFS(ctx, cgroup.WithLimitMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fsShort, err := cgroup.NewFS(ctx, cgroup.WithLimitMaxAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	open := func(fs *cgroup.FS) *cgroup.Group {
		grp, err := fs.Open(ctx, g.Path, cgroup.CPU|cgroup.Memory|cgroup.Pids)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { grp.Close() })
		return grp
	}
	def, kept, short := open(fsDefault), open(fsKept), open(fsShort)
	type limits struct{ mem, quota, pids, period, shares uint64 }
	stat := func(grp *cgroup.Group, s *cgroup.Stats) limits {
		t.Helper()
		if err := grp.Stat(ctx, s); err != nil {
			t.Fatal(err)
		}
		var l limits
		var ok bool
		for _, f := range []struct {
			v   cgroup.Value
			dst *uint64
		}{{s.Memory.Limit, &l.mem}, {s.CPU.Quota, &l.quota}, {s.Pids.Limit, &l.pids}, {s.CPU.Period, &l.period}, {s.CPU.Shares, &l.shares}} {
			if *f.dst, ok = f.v.Get(); !ok {
				t.Fatalf("a limit is %v, want Known", f.v.State)
			}
		}
		if l.quota%1000 != 0 || l.period%1000 != 0 {
			t.Fatalf("quota %d ns, period %d ns: want whole µs", l.quota, l.period)
		}
		l.quota, l.period = l.quota/1000, l.period/1000 // the kernel's µs
		return l
	}
	want := func(what string, got limits, mem, quota, pids uint64) {
		t.Helper()
		if got.mem != mem || got.quota != quota || got.pids != pids {
			t.Errorf("%s: memory %d, quota %d, pids %d; want %d, %d, %d", what, got.mem, got.quota, got.pids, mem, quota, pids)
		}
		if p := kernel("cpu", "cpu.cfs_period_us"); got.period != p {
			t.Errorf("%s: period %d, kernel %d", what, got.period, p)
		}
		if sh := kernel("cpu", "cpu.shares"); got.shares != sh {
			t.Errorf("%s: shares %d, kernel %d", what, got.shares, sh)
		}
	}

	var s cgroup.Stats
	first := [3]limits{stat(def, &s), stat(kept, &s), stat(short, &s)}
	for i, l := range first {
		want("first Stat "+strconv.Itoa(i), l, kernel("memory", "memory.limit_in_bytes"), 20000, 10)
	}

	set(128<<20, 30000, 20)
	mem := kernel("memory", "memory.limit_in_bytes")
	want("default group after the change", stat(def, &s), mem, 30000, 20)
	// The kept group reports the old limits, and still reads the counters:
	// a process joins the group, and pids.current shows it.
	cgtest.Start(t, g, cgtest.Spec{})
	want("kept group after the change", stat(kept, &s), first[1].mem, 20000, 10)
	if cur, ok := s.Pids.Current.Get(); !ok || cur != kernel("pids", "pids.current") || cur == 0 {
		t.Errorf("kept group: pids.current %v, kernel %d (a process joined)", s.Pids.Current, kernel("pids", "pids.current"))
	}
	// Reusing a Stats that held another group's limits must not leak them.
	var other cgroup.Stats
	other.Memory.Limit = cgroup.Value{State: cgroup.Known, V: 1}
	want("kept group into another Stats", stat(kept, &other), first[1].mem, 20000, 10)

	kept.RefreshLimits()
	want("kept group after RefreshLimits", stat(kept, &s), mem, 30000, 20)
	set(96<<20, 40000, 30)
	want("kept group after a second change", stat(kept, &s), mem, 30000, 20)

	deadline := time.Now().Add(5 * time.Second)
	for {
		l := stat(short, &s)
		if l.quota == 40000 {
			want("short max age after it passed", l, kernel("memory", "memory.limit_in_bytes"), 40000, 30)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a Group with a 50 ms max age still reports quota %d after 5 s", l.quota)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
