package bench

import (
	"context"
	"io"
	goruntime "runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cadvisormemory "github.com/google/cadvisor/lib/cache/memory"
	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	cadvisormanager "github.com/google/cadvisor/lib/manager"
	cadvisormodel "github.com/google/cadvisor/lib/model"
	cadvisorsysfs "github.com/google/cadvisor/lib/utils/sysfs"
	"k8s.io/klog/v2"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// hostGroups is how many groups BenchmarkHostCollect makes.
const hostGroups = 100

// BenchmarkHostCollect is the whole-host comparison: 100 real v1 groups
// (cpu, cpuacct, memory, blkio, pids) with a sleep process each, collected
// in full by metricsd's Collector.Collect and by cAdvisor's manager as the
// kubelet configures it (its metric set, a 2-minute in-memory stats cache,
// the groups' parent as the raw-cgroup prefix it accepts). A cAdvisor
// collection is an on-demand housekeeping of every container:
// GetContainerInfoV2 of the parent, recursive, with MaxAge 0 (what the
// kubelet's stats provider asks when it needs fresh figures); its own
// periodic housekeeping is set to an hour so that none runs meanwhile.
//
// Per collection it reports wall time (ns/op), the process's CPU time
// (cpu-ns/op, user + system from getrusage: both libraries read in
// parallel goroutines), everything allocated (B/op, allocs/op, the
// manager's goroutines included) and, once, the heap each kept per group
// after the first collection (heapB/group).
//
//	cd bench && sudo go test -run '^$' -bench HostCollect -benchmem -count 5
func BenchmarkHostCollect(b *testing.B) {
	cgtest.NeedRoot(b)
	base, cs := benchGroups(b, hostGroups, 0, "h")
	ctx := context.Background()

	b.Run("metricsd", func(b *testing.B) {
		heap := heapBefore()
		col, err := metricsd.New(ctx, metricsd.WithDiscoverer(cs), metricsd.WithReconcileEvery(1<<30))
		if err != nil {
			b.Fatal(err)
		}
		defer col.Close()
		snap, err := col.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Containers) != hostGroups {
			b.Fatalf("metricsd collected %d groups, want %d", len(snap.Containers), hostGroups)
		}
		heapPer := heap.perGroup()
		loopCPU(b, func() error { _, err := col.Collect(ctx); return err })
		b.ReportMetric(heapPer, "heapB/group")
	})

	b.Run("cadvisor", func(b *testing.B) {
		klog.LogToStderr(false) // cAdvisor logs its start and stop through klog
		klog.SetOutput(io.Discard)
		heap := heapBefore()
		// cAdvisor's manager registers its handler factories in package
		// state: clear those of an earlier run (-count), whose prefix
		// accepted other groups.
		cadvisorcontainer.ClearContainerHandlerFactories()
		saved := *cadvisormanager.HousekeepingInterval
		*cadvisormanager.HousekeepingInterval = time.Hour
		defer func() { *cadvisormanager.HousekeepingInterval = saved }()
		interval, dynamic := time.Hour, false
		m, err := cadvisormanager.New(cadvisormemory.New(2*time.Minute, nil), cadvisorsysfs.NewRealSysFs(),
			cadvisormanager.HousekeepingConfig{Interval: &interval, AllowDynamic: &dynamic},
			kubeletMetrics(), []string{base + "/h"}, nil, "", 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(); err != nil {
			b.Fatal(err)
		}
		defer m.Stop()
		maxAge := time.Duration(0)
		opts := cadvisormodel.RequestOptions{IdType: cadvisormodel.TypeName, Count: 1, Recursive: true, MaxAge: &maxAge}
		infos, err := m.GetContainerInfoV2(base, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(infos) != hostGroups {
			b.Fatalf("cAdvisor collected %d groups, want %d", len(infos), hostGroups)
		}
		for name, in := range infos {
			// The sleep was moved in after it started: its memory stays
			// charged to its first group, so check what cAdvisor read of
			// the group's own processes.
			if len(in.Stats) != 1 || in.Stats[0].Processes == nil || in.Stats[0].Processes.ProcessCount != 1 {
				b.Fatalf("cAdvisor did not read %s's process: %+v", name, in.Stats)
			}
		}
		heapPer := heap.perGroup()
		loopCPU(b, func() error { _, err := m.GetContainerInfoV2(base, opts); return err })
		b.ReportMetric(heapPer, "heapB/group")
	})
}

type heapMark uint64

func heapBefore() heapMark {
	var ms goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&ms)
	return heapMark(ms.HeapAlloc)
}

// perGroup is the live heap grown since the mark, per group.
func (h heapMark) perGroup() float64 {
	var ms goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&ms)
	return (float64(ms.HeapAlloc) - float64(h)) / hostGroups
}

// loopCPU runs collect b.N times, reporting allocations and the process's
// CPU time (user + system) per call.
func loopCPU(b *testing.B, collect func() error) {
	b.Helper()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if err := collect(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user + system CPU time in ns.
func cpuTime() int64 {
	u, s := rusage()
	return u + s
}

// rusage is the process's user and system CPU time in ns.
func rusage() (user, sys int64) {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano(), ru.Stime.Nano()
}
