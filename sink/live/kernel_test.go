package live_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/sink/live"
)

// TestAPIAgainstKernel: a real group (docker/<id> beneath a parent the
// test made, in the memory, cpu, cpuacct and pids hierarchies) runs a
// busy loop under a CPU quota of half a core and a 64 MiB memory limit; a
// Collector (cgroupfs discovery) takes two snapshots a second apart into
// the live sink, and /api/v1/containers reports the group's CPU %
// within the bounds the kernel's cpuacct.usage, read directly before and
// after each snapshot, allows; the limits as written; PIDs, working set
// and throttled periods as the kernel's files give them.
func TestAPIAgainstKernel(t *testing.T) {
	tr := rttest.NewTree(t)
	if tr.Mount != "/sys/fs/cgroup/memory" {
		t.Skip("needs the v1 cpu, cpuacct, memory and pids hierarchies (this host's hybrid layout)")
	}
	id := fmt.Sprintf("%064x", 0x11fe)
	rel := "docker/" + id
	tr.Group(rel)
	for _, h := range []string{"cpu", "cpuacct", "pids"} {
		if !tr.Mirror(h, rel) {
			t.Skipf("no v1 %s hierarchy", h)
		}
	}
	dir := func(h, f string) string { return filepath.Join("/sys/fs/cgroup", h, tr.Base, rel, f) }
	writeFile := func(h, f, v string) {
		if err := os.WriteFile(dir(h, f), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	readNum := func(h, f, key string) uint64 {
		b, err := os.ReadFile(dir(h, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, ok := strings.Cut(l, " ")
			if !ok {
				k, v = "", l
			}
			if k == key {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				return n
			}
		}
		t.Fatalf("%s: no %q in %q", f, key, b)
		return 0
	}
	writeFile("cpu", "cpu.cfs_period_us", "100000")
	writeFile("cpu", "cpu.cfs_quota_us", "50000")
	writeFile("memory", "memory.limit_in_bytes", strconv.Itoa(64<<20))
	pid := tr.SpawnShell(rel, "while :; do :; done")
	// The shell moves itself into the memory group, where discovery
	// looks, before its loop: wait for it there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(dir("memory", "cgroup.procs"))
		if strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shell %d did not enter its group: cgroup.procs %q", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, h := range []string{"cpu", "cpuacct", "pids"} {
		writeFile(h, "cgroup.procs", strconv.Itoa(pid))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	disc, err := cgroupfs.New(ctx, cgroupfs.WithSubtree(tr.Base))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := live.New()
	if err != nil {
		t.Fatal(err)
	}
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(disc), metricsd.WithNetParts(0), metricsd.WithLimitMaxAge(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	var before, after [2]uint64
	var thrBefore uint64
	var at [2]time.Time
	for i := range 2 {
		if i == 1 {
			time.Sleep(time.Second)
		}
		before[i] = readNum("cpuacct", "cpuacct.usage", "")
		thrBefore = readNum("cpu", "cpu.stat", "nr_throttled")
		snap, err := col.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after[i] = readNum("cpuacct", "cpuacct.usage", "")
		at[i] = snap.Time
		if len(snap.Containers) != 1 {
			t.Fatalf("snapshot of %d containers, want the test's one", len(snap.Containers))
		}
		if err := ring.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	throttled := readNum("cpu", "cpu.stat", "nr_throttled")
	pids := readNum("pids", "pids.current", "")
	usage := readNum("memory", "memory.usage_in_bytes", "")
	inactive := readNum("memory", "memory.stat", "total_inactive_file")

	var got struct {
		Containers []struct {
			ID               string   `json:"id"`
			CPU              *float64 `json:"cpu_percent"`
			CPULimit         *float64 `json:"cpu_limit_cores"`
			ThrottledPeriods *uint64  `json:"throttled_periods_total"`
			ThrottledPercent *float64 `json:"throttled_percent"`
			MemLimit         *uint64  `json:"memory_limit_bytes"`
			WorkingSet       *uint64  `json:"memory_working_set_bytes"`
			Pids             *uint64  `json:"pids"`
			OOMKills         *uint64  `json:"oom_kills_total"`
		} `json:"containers"`
	}
	get(t, ring.Handler(), "/api/v1/containers", &got)
	if len(got.Containers) != 1 || got.Containers[0].ID != id {
		t.Fatalf("API lists %+v, want the group %s", got.Containers, id)
	}
	c := got.Containers[0]
	dt := at[1].Sub(at[0]).Seconds()
	lo, hi := float64(before[1]-after[0])/dt/1e7, float64(after[1]-before[0])/dt/1e7
	t.Logf("cpu_percent %v, the kernel's cpuacct.usage allows %.2f..%.2f; throttled %v (%v%%), kernel %d; working set %v, kernel %d",
		deref(c.CPU), lo, hi, deref64u(c.ThrottledPeriods), deref(c.ThrottledPercent), throttled, deref64u(c.WorkingSet), usage-inactive)
	if c.CPU == nil || *c.CPU < lo*0.99 || *c.CPU > hi*1.01 || *c.CPU > 60 {
		t.Errorf("cpu_percent %v, want %.2f..%.2f (the kernel's, under a 50%% quota)", deref(c.CPU), lo, hi)
	}
	if c.CPULimit == nil || *c.CPULimit != 0.5 {
		t.Errorf("cpu_limit_cores %v, want 0.5", deref(c.CPULimit))
	}
	// Throttled as often as the kernel counted around the snapshot (not at
	// all when other work left the loop less than its quota).
	if c.ThrottledPeriods == nil || *c.ThrottledPeriods < thrBefore || *c.ThrottledPeriods > throttled ||
		c.ThrottledPercent == nil || *c.ThrottledPercent < 0 || *c.ThrottledPercent > 100 {
		t.Errorf("throttled periods %v (%v%%), want the kernel's %d..%d, and a share of 0-100%%", deref64u(c.ThrottledPeriods), deref(c.ThrottledPercent), thrBefore, throttled)
	}
	if c.MemLimit == nil || *c.MemLimit != 64<<20 || c.Pids == nil || *c.Pids != pids || c.OOMKills == nil || *c.OOMKills != 0 {
		t.Errorf("memory limit %v, pids %v, oom kills %v; want %d, the kernel's %d, 0", deref64u(c.MemLimit), deref64u(c.Pids), deref64u(c.OOMKills), 64<<20, pids)
	}
	if ws := float64(usage - inactive); c.WorkingSet == nil || math.Abs(float64(*c.WorkingSet)-ws) > 256<<10 {
		t.Errorf("working set %v, the kernel's %0.f (usage less inactive file)", deref64u(c.WorkingSet), ws)
	}
}

func deref64u(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}
