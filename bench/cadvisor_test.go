package bench

import (
	"testing"

	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	cadvisorcommon "github.com/google/cadvisor/lib/container/common"
	cadvisorlc "github.com/google/cadvisor/lib/container/libcontainer"
)

// cAdvisor's library (github.com/google/cadvisor/lib), read the way the
// kubelet reads it.

type cadvisorMetricSet = cadvisorcontainer.MetricSet

// kubeletMetrics is the metric set the kubelet hands cAdvisor's manager
// (kubernetes pkg/kubelet/cadvisor/cadvisor_linux.go): cpu, memory, cpuLoad,
// diskIO, network, app, process and oom_event, plus pressure (the KubeletPSI
// feature gate, on by default). DiskUsageMetrics is added only with legacy
// stats or local storage isolation, and reads filesystems, not the group.
func kubeletMetrics() cadvisorMetricSet {
	return cadvisorMetricSet{
		cadvisorcontainer.CpuUsageMetrics:     {},
		cadvisorcontainer.MemoryUsageMetrics:  {},
		cadvisorcontainer.CpuLoadMetrics:      {},
		cadvisorcontainer.DiskIOMetrics:       {},
		cadvisorcontainer.NetworkUsageMetrics: {},
		cadvisorcontainer.AppMetrics:          {},
		cadvisorcontainer.ProcessMetrics:      {},
		cadvisorcontainer.OOMMetrics:          {},
		cadvisorcontainer.PressureMetrics:     {},
	}
}

// cgroupOnlyMetrics is the kinds that only read the cgroup's own files
// (the comparison closest to metricsd's Group.Stat, which counts no
// descriptors): cpu, memory, diskIO.
func cgroupOnlyMetrics() cadvisorMetricSet {
	return cadvisorMetricSet{
		cadvisorcontainer.CpuUsageMetrics:    {},
		cadvisorcontainer.MemoryUsageMetrics: {},
		cadvisorcontainer.DiskIOMetrics:      {},
	}
}

// cadvisorGroupHandler builds cAdvisor's libcontainer Handler for the cgroup
// at path as its raw and containerd factories do: the hierarchies its
// metric set needs (GetCgroupSubsystems), the group's directory in each
// (MakeCgroupPaths), an opencontainers/cgroups manager over them
// (NewCgroupManager), and the container's PID (0 for a bare group: no
// network statistics).
func cadvisorGroupHandler(b *testing.B, path string, pid int, metrics cadvisorMetricSet) *cadvisorlc.Handler {
	b.Helper()
	subsys, err := cadvisorlc.GetCgroupSubsystems(metrics)
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := cadvisorlc.NewCgroupManager(path, cadvisorcommon.MakeCgroupPaths(subsys, path))
	if err != nil {
		b.Fatal(err)
	}
	return cadvisorlc.NewHandler(mgr, "/", pid, metrics)
}

// cadvisorNetHandler is cAdvisor's Handler for the process pid with network
// metric kinds only, over a cgroup manager with no hierarchy: its GetStats
// then reads /proc/<pid>/net/* and no cgroup file.
func cadvisorNetHandler(b *testing.B, pid int, metrics cadvisorMetricSet) *cadvisorlc.Handler {
	b.Helper()
	mgr, err := cadvisorlc.NewCgroupManager("/", map[string]string{})
	if err != nil {
		b.Fatal(err)
	}
	return cadvisorlc.NewHandler(mgr, "/", pid, metrics)
}
