package cgroupfs

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

func byKey(cs []runtime.Container) map[string]runtime.Container {
	m := make(map[string]runtime.Container, len(cs))
	for _, c := range cs {
		m[runtime.Key(c)] = c
	}
	return m
}

// TestListRealGroups makes real cgroups shaped like every runtime's, puts a
// process in most, and checks List against what the test made and against
// /proc/<pid>/cgroup read directly.
func TestListRealGroups(t *testing.T) {
	tr := rttest.NewTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	hex2 := strings.Repeat("ab", 32)
	type want struct {
		rel, kind, id, ns, uid string
		pid                    int
	}
	wants := []want{
		{rel: "docker/" + hexID, kind: KindDocker, id: hexID},
		{rel: "system.slice/docker-" + hex2 + ".scope", kind: KindDocker, id: hex2},
		{rel: "k8s.io/web-1", kind: KindContainerd, id: "web-1", ns: "k8s.io"},
		{rel: "kubepods/burstable/podaa-bb/" + hexID[:12], kind: KindKubernetes, id: hexID[:12], uid: "aa-bb"},
		{rel: "machine.slice/libpod-" + strings.Repeat("cd", 32) + ".scope", kind: KindPodman, id: strings.Repeat("cd", 32)},
		{rel: "system.slice/metricsd-test.service", kind: KindSystemd, id: "metricsd-test.service"},
	}
	for i := range wants {
		tr.Mirror("cpu", wants[i].rel) // as runc makes them, in every hierarchy
		wants[i].pid = tr.Spawn(wants[i].rel)
	}
	// A service whose process lives in a sub-group only.
	subPID := tr.Spawn("system.slice/nested.service/worker")
	// Not reported: an empty container group, and a process in a group that
	// does not look like a container.
	tr.Group("docker/" + strings.Repeat("ef", 32))
	tr.Spawn("user.slice/user-1000.slice/session-9.scope")
	// Nor a user's systemd manager or its services; but rootless Podman's
	// and Docker's containers beneath it are (found: they were not, the
	// manager being taken for a service whose sub-groups are its own).
	rootless := []want{
		{rel: "user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + strings.Repeat("12", 32) + ".scope", kind: KindPodman, id: strings.Repeat("12", 32)},
		{rel: "user.slice/user-1001.slice/user@1001.service/user.slice/docker-" + strings.Repeat("34", 32) + ".scope", kind: KindDocker, id: strings.Repeat("34", 32)},
	}
	for _, w := range rootless {
		tr.Mirror("cpu", w.rel)
		w.pid = tr.Spawn(w.rel)
		wants = append(wants, w)
	}
	tr.Spawn("user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service")
	tr.Spawn("user.slice/user-1000.slice/user@1000.service/init.scope")
	// Nor, on a v1 or hybrid host, a group of a <namespace>/<id> shape the
	// memory hierarchy has alone (this host's process_api/<hex>): runc
	// makes a container's group in every hierarchy. It was listed as a
	// containerd container.
	memOnly := "process_api/" + strings.Repeat("5a", 16)
	tr.Spawn(memOnly)
	if !tr.Mirror("cpu", "") {
		t.Log("no v1 cpu hierarchy: the memory-only group is a v1 matter")
		memOnly = ""
	}

	d, err := New(ctx, WithSubtree(tr.Base))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(cs)
	for _, w := range wants {
		k := w.id
		if w.ns != "" {
			k = w.ns + "/" + w.id
		}
		c, ok := got[k]
		if !ok {
			t.Errorf("%s: not listed (got %d containers)", w.rel, len(cs))
			continue
		}
		delete(got, k)
		if c.PID != w.pid || c.NetNS.PID != w.pid {
			t.Errorf("%s: PID %d netns PID %d, want %d", w.rel, c.PID, c.NetNS.PID, w.pid)
		}
		if direct := rttest.HostCgroupPath(t, w.pid); c.CgroupPath != direct || c.CgroupPath != tr.Path(w.rel) {
			t.Errorf("%s: CgroupPath %q; /proc/%d/cgroup says %q; made %q", w.rel, c.CgroupPath, w.pid, direct, tr.Path(w.rel))
		}
		if c.Labels[LabelKind] != w.kind || c.Runtime != Name || c.State != runtime.StateRunning {
			t.Errorf("%s: kind %q runtime %q state %q", w.rel, c.Labels[LabelKind], c.Runtime, c.State)
		}
		if w.uid != "" && (c.Pod == nil || c.Pod.UID != w.uid) {
			t.Errorf("%s: pod %+v, want UID %s", w.rel, c.Pod, w.uid)
		}
		if ps := rttest.PsStart(t, w.pid); c.Started.Sub(ps).Abs() > 1500*time.Millisecond || c.Started.Before(t0.Add(-time.Second)) || c.Started.After(time.Now()) {
			t.Errorf("%s: Started %v, ps says %v, test began %v", w.rel, c.Started, ps, t0)
		}
	}
	if c, ok := got["nested.service"]; !ok || c.PID != subPID || c.CgroupPath != tr.Path("system.slice/nested.service") {
		t.Errorf("nested.service: %+v ok=%v, want PID %d at the service's group", c, ok, subPID)
	}
	delete(got, "nested.service")
	if memOnly == "" {
		delete(got, "process_api/"+strings.Repeat("5a", 16))
	}
	for k, c := range got {
		t.Errorf("unexpected container %s at %s", k, c.CgroupPath)
	}
}

// TestInitPID checks that the init of a group with several processes is
// the one whose parent is outside it: a shell that forks a child.
func TestInitPID(t *testing.T) {
	tr := rttest.NewTree(t)
	ctx := context.Background()
	rel := "docker/" + hexID
	tr.Group(rel)
	// The shell moves itself into the group, then starts a child there.
	sh := tr.SpawnShell(rel, "sleep 600 & wait")
	d, err := New(ctx, WithSubtree(tr.Base))
	if err != nil {
		t.Fatal(err)
	}
	var c runtime.Container
	rttest.Eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(tr.Dir(rel) + "/cgroup.procs")
		if err != nil {
			return err
		}
		if n := len(strings.Fields(string(b))); n < 2 {
			return rttest.Errorf("%d processes in the group, want 2", n)
		}
		cs, err := d.List(ctx)
		if err != nil || len(cs) != 1 {
			return rttest.Errorf("list: %v %d", err, len(cs))
		}
		c = cs[0]
		return nil
	})
	if c.PID != sh {
		t.Errorf("PID %d, want the shell %d", c.PID, sh)
	}
}

// TestWatchRescan checks started, stopped and removed events from real
// groups with a short rescan interval.
func TestWatchRescan(t *testing.T) {
	tr := rttest.NewTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr.Mirror("cpu", "default/before")
	pre := tr.Spawn("default/before")
	d, err := New(ctx, WithSubtree(tr.Base), WithInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want runtime.EventType, id string) runtime.Event {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("channel closed")
			}
			if ev.Type != want || ev.Container.ID != id {
				t.Fatalf("event %s %s, want %s %s", ev.Type, ev.Container.ID, want, id)
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event for %s within 5 s", want, id)
		}
		return runtime.Event{}
	}
	tr.Mirror("cpu", "default/after")
	pid := tr.Spawn("default/after")
	ev := next(runtime.EventStarted, "after")
	if ev.Container.PID != pid || ev.Container.Namespace != "default" {
		t.Errorf("started: PID %d ns %q, want %d default", ev.Container.PID, ev.Container.Namespace, pid)
	}
	tr.Kill(pid)
	next(runtime.EventStopped, "after")
	tr.Remove("default/after")
	next(runtime.EventRemoved, "after")
	tr.Kill(pre)
	tr.Remove("default/before")
	next(runtime.EventStopped, "before")
	next(runtime.EventRemoved, "before")
	// Nothing else (no duplicates) over a few rescans.
	select {
	case ev := <-ch:
		t.Errorf("unexpected event %s %s", ev.Type, ev.Container.ID)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	for range ch {
	}
}

// TestNewErrors: a subtree with ".." is refused; one that does not exist
// fails List with an error, not an empty list.
func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, WithSubtree("/a/../../b")); err == nil {
		t.Error("subtree with .. accepted")
	}
	d, err := New(ctx, WithSubtree("/metricsd-no-such-group"))
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := d.List(ctx); err == nil {
		t.Errorf("List of a missing subtree: %d containers, no error", len(cs))
	}
}

// TestDaemonContainersByCgroup starts containers through the real dockerd
// and containerd and checks that the cgroupfs discoverer finds them by
// their cgroups, with the PIDs the CLIs report.
func TestDaemonContainersByCgroup(t *testing.T) {
	parent := rttest.Need(t, rttest.EnvContainerd, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvRootfs, rttest.EnvCgroupParent)[4]
	rttest.Lock(t, false)
	id := rttest.DockerRun(t, rttest.Name("cgfs"), nil)
	dpid := rttest.DockerPID(t, id)
	cid := rttest.Name("cgfs")
	cpid := rttest.CtrRun(t, "mdtest", cid, nil)
	// Bounded from here: starting the containers may take a minute in
	// scripts/v2lane.sh's emulated guest.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The test daemons keep their containers' groups beneath a parent of
	// their own (dockerd --cgroup-parent <parent>/docker, ctr run --cgroup
	// <parent>/<ns>/<id>): beneath it the paths have the usual shapes.
	d, err := New(ctx, WithSubtree(parent))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(cs)
	if c, ok := got[id]; !ok || c.PID != dpid || c.Labels[LabelKind] != KindDocker || c.CgroupPath != rttest.HostCgroupPath(t, dpid) {
		t.Errorf("docker container %s: %+v (found %v), want PID %d", id, c, ok, dpid)
	}
	if c, ok := got["mdtest/"+cid]; !ok || c.PID != cpid || c.Labels[LabelKind] != KindContainerd || c.CgroupPath != rttest.HostCgroupPath(t, cpid) {
		t.Errorf("containerd container %s: %+v (found %v), want PID %d", cid, c, ok, cpid)
	}
	if t.Failed() {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Logf("listed: %v", keys)
	}
}
