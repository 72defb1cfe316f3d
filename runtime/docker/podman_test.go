package docker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// podmanRun starts a container through the podman CLI (the wrapper
// scripts/daemons.sh writes, with the service's storage flags); it returns
// the ID and removes the container at cleanup.
func podmanRun(t *testing.T, name string, labels ...string) string {
	t.Helper()
	v := rttest.Need(t, rttest.EnvPodman, rttest.EnvPodmanImage, rttest.EnvCgroupParent)
	args := []string{"run", "-d", "--name", name, "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--cgroup-parent", v[2] + "/libpod_parent"}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	id := rttest.Run(t, v[0], append(args, v[1], "/bin/sleep", "600")...)
	t.Cleanup(func() { _, _ = rttest.Try(v[0], "rm", "-f", "-t", "0", id) })
	return id
}

func podmanPID(t *testing.T, id string) int {
	t.Helper()
	pid, err := strconv.Atoi(rttest.Run(t, rttest.Need(t, rttest.EnvPodman)[0], "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestPodman uses the adapter, unchanged, on Podman's Docker-compatible
// API (podman system service): list with PIDs and cgroups, and events.
func TestPodman(t *testing.T) {
	host := rttest.Need(t, rttest.EnvPodmanHost, rttest.EnvPodman)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := New(ctx, WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("podman compat API %s", d.APIVersion())
	name := rttest.Name("pm")
	id := podmanRun(t, name, "app=pm")
	pid := podmanPID(t, id)
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := find(cs, id)
	if !ok {
		t.Fatalf("podman container %s not listed (%d listed)", name, len(cs))
	}
	if c.PID != pid || c.Name != name || c.Labels["app"] != "pm" || c.CgroupPath != rttest.HostCgroupPath(t, pid) || c.State != runtime.StateRunning {
		t.Errorf("listed %+v; podman says PID %d", c, pid)
	}

	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	name2 := rttest.Name("pm")
	id2 := podmanRun(t, name2)
	done := time.Now()
	ev := rec.Wait(t, runtime.EventStarted, id2, 10*time.Second)
	t.Logf("started %v after podman run returned", ev.At.Sub(done))
	if pid2 := podmanPID(t, id2); ev.Container.PID != pid2 {
		t.Errorf("started PID %d, podman says %d", ev.Container.PID, pid2)
	}
	pm := rttest.Need(t, rttest.EnvPodman)[0]
	rttest.Run(t, pm, "kill", id2)
	done = time.Now()
	ev = rec.Wait(t, runtime.EventStopped, id2, 10*time.Second)
	t.Logf("stopped %v after podman kill returned", ev.At.Sub(done))
	rttest.Run(t, pm, "rm", id2)
	done = time.Now()
	ev = rec.Wait(t, runtime.EventRemoved, id2, 10*time.Second)
	t.Logf("removed %v after podman rm returned", ev.At.Sub(done))
	if err := rec.CheckSequence(); err != nil {
		t.Errorf("%v\n%s", err, rec)
	}
	cancel()
	<-rec.Done()
}
