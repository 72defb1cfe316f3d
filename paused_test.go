package metricsd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/docker"
	"github.com/metricsd/metricsd/sink"
)

func sampleOf(snap *sink.Snapshot, id string) *sink.Sample {
	for i := range snap.Containers {
		if snap.Containers[i].Container.ID == id {
			return &snap.Containers[i]
		}
	}
	return nil
}

// TestCollectPaused: a paused Docker container (real dockerd) is still
// collected, reported paused, with its memory as the kernel has it: its
// processes are frozen, its memory is not. It once vanished from every
// snapshot while paused.
func TestCollectPaused(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := docker.New(ctx, docker.WithHost(v[0]))
	if err != nil {
		t.Fatal(err)
	}
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d))
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	defer col.Close()
	id := rttest.DockerRun(t, rttest.Name("paused"), nil)
	pid := rttest.DockerPID(t, id)
	rttest.Docker(t, "pause", id)
	defer rttest.Try("docker", "-H", v[0], "unpause", id)
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := sampleOf(snap, id)
	if s == nil {
		t.Fatalf("the paused container is not in the snapshot (%d containers)", len(snap.Containers))
	}
	if s.Container.State != runtime.StatePaused {
		t.Errorf("state %q, want paused", s.Container.State)
	}
	if m, ok := s.Cgroup.Memory.Usage.Get(); !ok || m != rttest.MemoryUsage(t, pid) {
		t.Errorf("memory usage %v, want the kernel's", s.Cgroup.Memory.Usage)
	}
	rttest.Docker(t, "unpause", id)
	snap, err = col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := sampleOf(snap, id); s == nil || s.Container.State != runtime.StateRunning {
		t.Errorf("after unpause: %+v, want the container running", s)
	}
}

// partialListing lists containers, and when unknown is set, leaves it out
// and says so with a *runtime.PartialError (what the Docker adapter does
// for a container whose inspection failed).
type partialListing struct {
	listed
	unknown *runtime.Container
}

func (p *partialListing) List(ctx context.Context) ([]runtime.Container, error) {
	cs, _ := p.listed.List(ctx)
	if p.unknown == nil {
		return cs, nil
	}
	return cs, &runtime.PartialError{Unknown: []runtime.Container{*p.unknown}, Err: errors.New("inspect failed")}
}

// TestReconcilePartialListing: a listing that could not describe one
// container (a *runtime.PartialError) is counted as a discovery error but
// applied to the others: the container it could not describe keeps its
// handles and stays in snapshots, a new container is added, and one the
// listing no longer has is dropped.
func TestReconcilePartialListing(t *testing.T) {
	cgtest.NeedRoot(t)
	ctx := context.Background()
	mk := func(id string) runtime.Container {
		g := cgtest.New(t, "cpu", "cpuacct", "memory")
		w := cgtest.Start(t, g, cgtest.Spec{})
		return runtime.Container{ID: id, Name: id, Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	}
	a, b, c, n := mk("a"), mk("b"), mk("c"), mk("n")
	d := &partialListing{}
	d.set(a, b, c)
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0), metricsd.WithReconcileEvery(1))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	if _, err := col.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	d.set(a, n) // c is gone, n is new, b could not be described
	d.unknown = &runtime.Container{ID: "b", Runtime: "test"}
	before := col.Errors(metricsd.StageDiscover)
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range snap.Containers {
		names = append(names, s.Container.Name)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "n" {
		t.Errorf("snapshot after a partial listing: %v, want a, b (not described, kept) and n (new)", names)
	}
	if col.Errors(metricsd.StageDiscover) != before+1 {
		t.Errorf("discovery errors %d, want %d: a partial listing is an error", col.Errors(metricsd.StageDiscover), before+1)
	}
}
