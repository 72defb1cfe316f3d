package cgroup_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// TestLiveV1LimitFilesClosed: a v1 group with every controller (the scale
// layout's: cpu, cpuacct, memory, blkio, pids; no unified group) opened
// WithLimitMaxAge holds its 6 limit files closed: 6 descriptors fewer than
// with no age, at most 13, and as many after the Stats that open them to
// read the limits as before. A limit changed in the kernel is reported once
// the kept values are older than the age, each equal to the kernel's file;
// before that the kept ones are. A group removed meanwhile makes the Stat
// that would open them fail with ErrNotExist, leaving nothing open.
func TestLiveV1LimitFilesClosed(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, "cpu", "cpuacct", "memory", "blkio", "pids")
	w := cgtest.Start(t, g, cgtest.Spec{})
	g.Write("memory", "memory.limit_in_bytes", "268435456")
	g.Write("cpu", "cpu.cfs_quota_us", "50000")
	g.Write("pids", "pids.max", "100")
	limitFiles := []string{
		filepath.Join(g.Dir("cpu"), "cpu.cfs_quota_us"), filepath.Join(g.Dir("cpu"), "cpu.cfs_period_us"),
		filepath.Join(g.Dir("cpu"), "cpu.shares"), filepath.Join(g.Dir("memory"), "memory.limit_in_bytes"),
		filepath.Join(g.Dir("memory"), "memory.memsw.limit_in_bytes"), filepath.Join(g.Dir("pids"), "pids.max"),
	}
	if before := groupFDs(t, g.Path); before != 0 {
		t.Fatalf("descriptors open on the new group before Open: %d", before)
	}
	open := func(age time.Duration) *cgroup.Group {
		t.Helper()
		fs, err := cgroup.NewFS(ctx, cgroup.WithLimitMaxAge(age))
		if err != nil {
			t.Fatal(err)
		}
		grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { grp.Close() })
		return grp
	}
	stat := func(grp *cgroup.Group) cgroup.Stats {
		t.Helper()
		var s cgroup.Stats
		if err := grp.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// No age: every file kept open, limits included.
	all := open(0)
	stat(all)
	nAll := groupFDs(t, g.Path)
	for _, f := range limitFiles {
		if !heldOpen(t, f) {
			t.Errorf("no age: %s is not held open", f)
		}
	}
	all.Close()
	if n := groupFDs(t, g.Path); n != 0 {
		t.Fatalf("descriptors left after Close: %d", n)
	}

	const age = time.Second
	grp := open(age)
	nOpen := groupFDs(t, g.Path)
	first := stat(grp) // reads the limits: opens and closes their files
	read := time.Now()
	nStat := groupFDs(t, g.Path)
	t.Logf("descriptors per group: %d with no age, %d with an age (after Open %d)", nAll, nStat, nOpen)
	if nOpen != nAll-6 || nStat != nAll-6 || nStat > 13 {
		t.Errorf("descriptors with an age: %d after Open, %d after Stat; want %d - 6 (and at most 13)", nOpen, nStat, nAll)
	}
	for _, f := range limitFiles {
		if heldOpen(t, f) {
			t.Errorf("with an age: %s held open", f)
		}
	}
	// kernel checks the limits against the kernel's files.
	kernel := func(what string, s cgroup.Stats) {
		t.Helper()
		num := func(c, f string) uint64 {
			v, err := strconv.ParseUint(strings.TrimSpace(g.Read(c, f)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for _, c := range []struct {
			name      string
			got, want uint64
		}{
			{"memory.limit_in_bytes", s.Memory.Limit.V, num("memory", "memory.limit_in_bytes")},
			{"cpu.cfs_quota_us (ns)", s.CPU.Quota.V, num("cpu", "cpu.cfs_quota_us") * 1000},
			{"cpu.cfs_period_us (ns)", s.CPU.Period.V, num("cpu", "cpu.cfs_period_us") * 1000},
			{"cpu.shares", s.CPU.Shares.V, num("cpu", "cpu.shares")},
			{"pids.max", s.Pids.Limit.V, num("pids", "pids.max")},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s %d, kernel %d", what, c.name, c.got, c.want)
			}
		}
		if s.Memory.Limit.State != cgroup.Known || s.CPU.Quota.State != cgroup.Known || s.Pids.Limit.State != cgroup.Known {
			t.Errorf("%s: limits not Known: memory %v, quota %v, pids %v", what, s.Memory.Limit, s.CPU.Quota, s.Pids.Limit)
		}
	}
	kernel("first Stat", first)

	g.Write("memory", "memory.limit_in_bytes", "134217728")
	g.Write("cpu", "cpu.cfs_quota_us", "20000")
	g.Write("cpu", "cpu.shares", "512")
	g.Write("pids", "pids.max", "50")
	kept := stat(grp)
	if time.Since(read) < age {
		if kept.Memory.Limit != first.Memory.Limit || kept.CPU.Quota != first.CPU.Quota || kept.CPU.Shares != first.CPU.Shares || kept.Pids.Limit != first.Pids.Limit {
			t.Errorf("within the age: limits %v %v %v %v, want the kept %v %v %v %v", kept.Memory.Limit, kept.CPU.Quota, kept.CPU.Shares, kept.Pids.Limit,
				first.Memory.Limit, first.CPU.Quota, first.CPU.Shares, first.Pids.Limit)
		}
	} else {
		t.Logf("the second Stat came %v after the first: not checking the kept limits", time.Since(read))
	}
	time.Sleep(age - time.Since(read) + 10*time.Millisecond)
	changed := stat(grp)
	kernel("after the age", changed)
	if changed.Memory.Limit.V != 134217728 || changed.Pids.Limit.V != 50 {
		t.Errorf("after the age: memory limit %v, pids.max %v; want 134217728, 50", changed.Memory.Limit, changed.Pids.Limit)
	}
	if n := groupFDs(t, g.Path); n != nStat {
		t.Errorf("descriptors after the Stat that read the limits again: %d, want %d", n, nStat)
	}

	// Removed: the Stat that reads the limits again fails as for any
	// removed group, and nothing stays open after Close.
	grp.RefreshLimits()
	w.Stop()
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("Stat of the removed group: %v, want ErrNotExist", err)
	}
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := groupFDs(t, g.Path); n != 0 {
		t.Errorf("descriptors open on the removed group after Close: %d", n)
	}
}
