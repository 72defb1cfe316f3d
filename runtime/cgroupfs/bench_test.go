package cgroupfs

import (
	"context"
	"fmt"
	"testing"

	"github.com/metricsd/metricsd/internal/rttest"
)

// BenchmarkList walks a subtree of 100 real docker-shaped groups
// (METRICSD_BENCH_CONTAINERS to change), each holding one process, with as
// many empty sibling groups: per group a classification, a cgroup.procs
// read and the process's start time.
func BenchmarkList(b *testing.B) {
	tr := rttest.NewTree(b)
	n := rttest.BenchContainers()
	for i := 0; i < n; i++ {
		tr.Spawn(fmt.Sprintf("docker/%064x", i))
		tr.Group(fmt.Sprintf("other/g%d", i))
	}
	ctx := context.Background()
	d, err := New(ctx, WithSubtree(tr.Base))
	if err != nil {
		b.Fatal(err)
	}
	cs, err := d.List(ctx)
	if err != nil || len(cs) != n {
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
