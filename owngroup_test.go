package metricsd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/sink"
)

// TestCollectOwnGroupOnly: a container whose group exists in the memory
// hierarchy only (the cgroupfs discoverer finds it there) has a process
// that sits in the root of the cpu, cpuacct and pids hierarchies and of the
// unified one. Its snapshot carries its own memory figures and leaves CPU,
// pids and pressure Unavailable: never the root group's, which are the whole
// host's.
func TestCollectOwnGroupOnly(t *testing.T) {
	tr := rttest.NewTree(t)
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Mode() == cgroup.Unified {
		t.Skip("a v2 host has one hierarchy: a group can not be missing from some controllers")
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	pid := tr.Spawn("docker/" + id)
	// The premise, read directly: outside the memory hierarchy the process
	// is not in a group of the container's path.
	for _, h := range []string{"cpu", "pids"} {
		if p := rttest.ProcCgroup(t, pid, h); p == tr.Path("docker/"+id) {
			t.Fatalf("the process is in %s in the %s hierarchy too", p, h)
		}
	}
	d, err := cgroupfs.New(ctx, cgroupfs.WithSubtree(tr.Base), cgroupfs.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got *sink.Sample
	for i := range snap.Containers {
		if snap.Containers[i].Container.ID == id {
			got = &snap.Containers[i]
		}
	}
	if got == nil {
		t.Fatalf("container %s not in the snapshot (%d containers)", id, len(snap.Containers))
	}
	s := got.Cgroup
	if u, ok := s.Memory.Usage.Get(); !ok || u != rttest.CgroupFile(t, pid, "memory", "memory.usage_in_bytes") {
		t.Errorf("memory usage %v: want the group's own", s.Memory.Usage)
	}
	if s.CPU.Usage.Available() {
		t.Errorf("cpu usage %v: the container has no cpu group; want Unavailable, not the root's", s.CPU.Usage)
	}
	if s.Pids.Current.Available() {
		t.Errorf("pids %v: the container has no pids group; want Unavailable, not the root's", s.Pids.Current)
	}
	if p := s.Pressure; p.CPU.Some.Available() || p.Memory.Some.Available() || p.IO.Some.Available() {
		t.Errorf("pressure %+v: the container has no unified group; want Unavailable, not the host's", p)
	}
}
