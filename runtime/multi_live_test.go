package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
)

// TestMultiSameIDLive: real containerd containers with one ID, redis-<hex>,
// in the namespaces default and team-b-<hex>, listed through a Multi of
// Docker and containerd (as detect.New combines them): both are listed,
// each with its own PID. Multi once kept the first of each ID.
func TestMultiSameIDLive(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dk, err := docker.New(ctx, docker.WithHost(v[0]))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := containerd.New(ctx, containerd.WithAddress(v[2]))
	if err != nil {
		dk.Close()
		t.Fatal(err)
	}
	m := runtime.NewMulti(dk, ct)
	defer m.Close()
	id, teamB := rttest.Name("redis"), rttest.Name("team-b")
	pids := map[string]int{
		"default": rttest.CtrRun(t, "default", id, nil),
		teamB:     rttest.CtrRun(t, teamB, id, nil),
	}
	cs, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range cs {
		if c.ID == id {
			got[c.Namespace] = c.PID
		}
	}
	if len(got) != 2 || got["default"] != pids["default"] || got[teamB] != pids[teamB] {
		t.Errorf("listed %s as %v (namespace: PID), want %v", id, got, pids)
	}
}
