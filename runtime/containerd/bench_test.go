package containerd

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
)

// BenchmarkList lists 100 running containers (METRICSD_BENCH_CONTAINERS to
// change) in one namespace of the test containerd: namespaces, tasks and
// containers (with their OCI specs) per call, plus each task's
// /proc/<pid>/cgroup and start time.
func BenchmarkList(b *testing.B) {
	addr := rttest.Need(b, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)[0]
	rttest.Lock(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := New(ctx, WithAddress(addr), WithNamespaces("mdbench"), WithTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	n := rttest.BenchContainers()
	prefix := rttest.Name("bench")
	rttest.Parallel(n, 4, func(i int) { rttest.CtrRun(b, "mdbench", prefix+"-"+strconv.Itoa(i), []string{"metricsd.bench=1"}) })
	cs, err := d.List(ctx)
	if err != nil || len(cs) < n {
		b.Fatalf("listed %d of %d: %v", len(cs), n, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.List(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(cs)), "containers")
}
