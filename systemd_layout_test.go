package metricsd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
)

// TestCollectSystemdLayoutV2 makes real v2 groups shaped as the systemd
// cgroup driver lays containers out on production hosts, with the
// controllers enabled all the way down as systemd does, and a process in
// each container's scope: Docker's /system.slice/docker-<id>.scope and the
// kubelet's /kubepods.slice/kubepods-burstable.slice/
// kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope. (The lane's
// guests have no systemd as init, so no daemon makes them; the groups are
// the test's, beneath its own parent.) The cgroupfs discoverer must name
// each container by its runtime's ID, and the Collector read each group's
// own figures, checked against the kernel's files.
func TestCollectSystemdLayoutV2(t *testing.T) {
	ctrl := []string{"cpu", "memory", "pids", "io"}
	base := cgtest.NewV2(t, ctrl...)
	hexID := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	dockerID, criID := hexID(), hexID()
	uid := "0b1e5e7c-4f8d-4a4e-9b6e-3c2d1f0a9e8b"
	type want struct {
		group *cgtest.Group
		kind  string
		id    string
		mem   int
	}
	sys := base.Child("system.slice", ctrl...)
	docker := sys.Child("docker-"+dockerID+".scope", ctrl...)
	kube := base.Child("kubepods.slice", ctrl...).
		Child("kubepods-burstable.slice", ctrl...).
		Child("kubepods-burstable-pod"+strings.ReplaceAll(uid, "-", "_")+".slice", ctrl...)
	cri := kube.Child("cri-containerd-"+criID+".scope", ctrl...)
	wants := []want{{docker, cgroupfs.KindDocker, dockerID, 12 << 20}, {cri, cgroupfs.KindKubernetes, criID, 20 << 20}}
	for _, w := range wants {
		cgtest.Start(t, w.group, cgtest.Spec{MemBytes: w.mem})
	}

	ctx := context.Background()
	d, err := cgroupfs.New(ctx, cgroupfs.WithSubtree(base.Path))
	if err != nil {
		t.Fatal(err)
	}
	// The discoverer's kind label (a Collector passes on only the labels
	// it is told to).
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, c := range cs {
		kinds[c.ID] = c.Labels[cgroupfs.LabelKind]
	}
	for _, w := range wants {
		if kinds[w.id] != w.kind {
			t.Errorf("%s: listed as kind %q, want %q (all: %v)", w.group.Path, kinds[w.id], w.kind, kinds)
		}
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
	if len(snap.Containers) != len(wants) {
		for _, c := range snap.Containers {
			t.Logf("collected %s at %s", c.Container.ID, c.Container.CgroupPath)
		}
		t.Fatalf("%d containers in the snapshot, want %d", len(snap.Containers), len(wants))
	}
	kernel := func(g *cgtest.Group, file string) uint64 {
		v, err := strconv.ParseUint(strings.TrimSpace(g.Read("", file)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, w := range wants {
		var found bool
		for _, c := range snap.Containers {
			if !strings.HasSuffix(c.Container.ID, w.id) {
				continue
			}
			found = true
			if c.Container.ID != w.id || c.Container.CgroupPath != w.group.Path {
				t.Errorf("%s: ID %s, path %s", w.group.Path, c.Container.ID, c.Container.CgroupPath)
			}
			if w.kind == cgroupfs.KindKubernetes && (c.Container.Pod == nil || c.Container.Pod.UID != uid) {
				t.Errorf("%s: pod %+v, want UID %s", w.group.Path, c.Container.Pod, uid)
			}
			s := c.Cgroup
			if u, cur := s.Memory.Usage.V, kernel(w.group, "memory.current"); !s.Memory.Usage.Available() || u < uint64(w.mem) || u+(1<<20) < cur || u > cur+(1<<20) {
				t.Errorf("%s: memory usage %v, kernel %d, workload %d", w.group.Path, s.Memory.Usage, cur, w.mem)
			}
			if p, ok := s.Pids.Current.Get(); !ok || p != kernel(w.group, "pids.current") {
				t.Errorf("%s: pids %v, kernel %d", w.group.Path, s.Pids.Current, kernel(w.group, "pids.current"))
			}
			if !s.CPU.Usage.Available() || !s.Pressure.Memory.Some.Available() {
				t.Errorf("%s: cpu %v, memory pressure %+v: want both", w.group.Path, s.CPU.Usage, s.Pressure.Memory)
			}
		}
		if !found {
			t.Errorf("%s: not in the snapshot", w.group.Path)
		}
	}
}
