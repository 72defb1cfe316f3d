package metricsd_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/pidreuse"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestCollectReusedPID: a listing names two containers by PID, start time
// and cgroup. Before the Collector opens them, one's process exits and its
// PID goes to a process in another cgroup and another network namespace
// (ns_last_pid in a private PID namespace, which the Collector reads through
// its host root). The Collector must not attach that process's figures to
// the container: the container is left out (and counted as an open error),
// nothing is held open on the impostor's group, and the other container is
// collected with its own group and namespace.
func TestCollectReusedPID(t *testing.T) {
	tr := rttest.NewTree(t)
	for _, g := range []string{"victim", "impostor", "live"} {
		tr.Group(g)
	}
	procs := func(g string) string { return filepath.Join(tr.Dir(g), "cgroup.procs") }
	ns := pidreuse.New(t)
	ctx := context.Background()
	victim, live := ns.Spawn(true, procs("victim")), ns.Spawn(true, procs("live"))
	container := func(id string, pid int) runtime.Container {
		start, err := runtime.ProcStartTicks(ctx, ns.Root, pid)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.Container{ID: id, Name: id, Runtime: "test", PID: pid, PIDStart: start, CgroupPath: tr.Path(id),
			NetNS: runtime.NetNS{PID: pid}, State: runtime.StateRunning}
	}
	d := &listed{}
	d.set(container("victim", victim), container("live", live))

	ns.Kill(victim)
	ns.SpawnAt(victim, true, procs("impostor"))

	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithHostRoot(ns.Root))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range snap.Containers {
		names = append(names, s.Container.Name)
		if s.Container.Name == "live" && (s.Net == nil || s.Net.Interface("lo") == nil) {
			t.Errorf("live: no network figures of its own namespace: %+v", s.Net)
		}
	}
	if len(names) != 1 || names[0] != "live" {
		t.Errorf("snapshot has %v, want only live: the victim's PID now names another process", names)
	}
	if n := openFDs(t, tr.Path("impostor")+"/"); n != 0 {
		t.Errorf("%d descriptors open on the impostor's group", n)
	}
	if col.Errors(metricsd.StageOpen) == 0 {
		t.Error("the container whose process is gone was not counted as an open error")
	}
}
