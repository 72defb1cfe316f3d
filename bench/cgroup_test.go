package bench

import (
	"context"
	"os"
	"testing"
	"time"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1"
	occgroups "github.com/opencontainers/cgroups"
	ocfs "github.com/opencontainers/cgroups/fs"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

func TestMain(m *testing.M) {
	cgtest.Main()
	os.Exit(m.Run())
}

var controllers = []string{"memory", "cpu", "cpuacct", "blkio", "pids"}

// BenchmarkGroupStat reads one real v1 group with a process in it, made by
// the benchmark in memory, cpu, cpuacct, blkio and pids, with every
// controller, through metricsd, opencontainers/cgroups (fs.Manager.GetStats),
// containerd/cgroups/v3 (cgroup1 Stat) and cAdvisor's library (its
// libcontainer Handler's GetStats, as the kubelet configures it, and with
// only the cgroup metric kinds). Each also reports the process's CPU time
// per read (cpu-ns/op), which a loaded machine inflates far less than the
// wall time.
//
//	cd bench && go test -run '^$' -bench GroupStat -benchmem
func BenchmarkGroupStat(b *testing.B) {
	g := cgtest.NewV1(b, controllers...)
	cgtest.Start(b, g, cgtest.Spec{MemBytes: 16 << 20})
	ctx := context.Background()

	b.Run("metricsd", func(b *testing.B) {
		grp, s := openStatted(b, g.Path)
		loopCPU(b, func() error { return grp.Stat(ctx, s) })
	})

	// With -limit-max-age (the daemon's default): "kept" is a Stat
	// within the age, which reads the 13 other files and copies the kept
	// limits; "due" one that reads the limits too, opening and closing
	// the limit files held closed (and their directories) each time.
	for _, due := range []bool{false, true} {
		name := "metricsd-limits-kept"
		if due {
			name = "metricsd-limits-due"
		}
		b.Run(name, func(b *testing.B) {
			grp, s := openStatted(b, g.Path, cgroup.WithLimitMaxAge(time.Hour))
			loopCPU(b, func() error {
				if due {
					grp.RefreshLimits()
				}
				return grp.Stat(ctx, s)
			})
		})
	}

	b.Run("opencontainers", func(b *testing.B) {
		paths := map[string]string{}
		for _, c := range controllers {
			paths[c] = g.Dirs[c]
		}
		mgr, err := ocfs.NewManager(&occgroups.Cgroup{Resources: &occgroups.Resources{}}, paths)
		if err != nil {
			b.Fatal(err)
		}
		loopCPU(b, func() error { _, err := mgr.GetStats(); return err })
	})

	b.Run("containerd", func(b *testing.B) {
		cg, err := cgroup1.Load(cgroup1.StaticPath(g.Path))
		if err != nil {
			b.Fatal(err)
		}
		loopCPU(b, func() error { _, err := cg.Stat(cgroup1.IgnoreNotExist); return err })
	})
	for _, c := range []struct {
		name    string
		metrics cadvisorMetricSet
	}{
		{"cadvisor", kubeletMetrics()},
		{"cadvisor-cgroup-only", cgroupOnlyMetrics()},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := cadvisorGroupHandler(b, g.Path, 0, c.metrics)
			if st, err := h.GetStats(); err != nil || st.Memory.Usage == 0 || st.Cpu.Usage.Total == 0 {
				b.Fatalf("cAdvisor GetStats: %v (memory %d, cpu %d)", err, st.Memory.Usage, st.Cpu.Usage.Total)
			}
			loopCPU(b, func() error { _, err := h.GetStats(); return err })
		})
	}
}

// openStatted opens the group at path (every controller) on an FS of
// opts, closed when b ends, and takes a first Stat: what a benchmark of
// Stat loops on.
func openStatted(b *testing.B, path string, opts ...cgroup.Option) (*cgroup.Group, *cgroup.Stats) {
	b.Helper()
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx, opts...)
	if err != nil {
		b.Fatal(err)
	}
	grp, err := fs.Open(ctx, path, cgroup.All)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { grp.Close() })
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		b.Fatal(err)
	}
	return grp, &s
}
