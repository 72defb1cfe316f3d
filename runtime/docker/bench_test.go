package docker

import (
	"context"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
)

// BenchmarkList lists 100 running containers (METRICSD_BENCH_CONTAINERS
// to change) of the test dockerd. "new": none seen before, so one list call
// and one inspect per container, plus each container's /proc/<pid>/cgroup.
// "known": all seen by an earlier listing, so one list call and each
// container's /proc/<pid>/stat (what the Collector's and Watch's periodic
// listings cost).
func BenchmarkList(b *testing.B) {
	rttest.Need(b, rttest.EnvDockerHost, rttest.EnvImage)
	d := connectB(b)
	rttest.Lock(b, false)
	n := rttest.BenchContainers()
	prefix := rttest.Name("bench")
	rttest.Parallel(n, 4, func(i int) { rttest.DockerRun(b, prefix+"-"+itoa(i), []string{"metricsd.bench=1"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs, err := d.List(ctx)
	if err != nil || len(cs) < n {
		b.Fatalf("listed %d of %d: %v", len(cs), n, err)
	}
	for _, known := range []bool{false, true} {
		name := "new"
		if known {
			name = "known"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !known {
					d.knownMu.Lock()
					clear(d.known)
					d.knownMu.Unlock()
				}
				if _, err := d.List(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(cs)), "containers")
		})
	}
}

func connectB(b *testing.B) *Discoverer {
	host := rttest.Need(b, rttest.EnvDockerHost)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, WithHost(host), WithTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
