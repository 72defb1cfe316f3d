package docker

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
)

// TestReuse: a remembered container is reused while its PID names the
// process it did (this test's own, and a child), with the name the listing
// gives (not a legacy link alias) and its state; a process that exited
// makes it forgotten. No daemon is needed: the listing is a Summary.
func TestReuse(t *testing.T) {
	fs, err := cgroup.NewFS(context.Background())
	if err != nil {
		t.Skipf("no cgroup filesystem: %v", err)
	}
	d := &Discoverer{fs: fs}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	start := func(pid int) uint64 {
		t.Helper()
		s, err := runtime.ProcStartTicks(context.Background(), "/", pid)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []runtime.Container{
		{ID: "self", Name: "old", PID: os.Getpid(), PIDStart: start(os.Getpid()), CgroupPath: "/x", State: runtime.StateRunning},
		{ID: "child", Name: "child", PID: cmd.Process.Pid, PIDStart: start(cmd.Process.Pid), CgroupPath: "/y", State: runtime.StateRunning},
		{ID: "stopped", Name: "s", PID: os.Getpid(), PIDStart: start(os.Getpid()), CgroupPath: "/z", State: runtime.StateStopped},
		{ID: "unknown-start", Name: "u", PID: os.Getpid(), CgroupPath: "/z", State: runtime.StateRunning},
	} {
		d.keep(c, true)
	}
	if _, ok := d.known["unknown-start"]; ok {
		t.Error("a container whose process start is unknown was remembered")
	}
	if _, ok := d.known["stopped"]; ok {
		t.Error("a stopped container was remembered")
	}
	c, ok := d.reuse(container.Summary{ID: "self", Names: []string{"/app/db", "/db"}, State: container.StatePaused})
	if !ok || c.Name != "db" || c.State != runtime.StatePaused || c.PID != os.Getpid() || c.CgroupPath != "/x" {
		t.Errorf("reused %+v, %v; want name db, paused, the PID and path kept", c, ok)
	}
	if c, ok := d.reuse(container.Summary{ID: "child", Names: []string{"/child"}, State: container.StateRunning}); !ok || c.State != runtime.StateRunning {
		t.Errorf("child: %+v, %v", c, ok)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, ok := d.reuse(container.Summary{ID: "child", Names: []string{"/child"}, State: container.StateRunning}); ok {
		t.Error("reused a container whose process exited")
	}
	if _, ok := d.known["child"]; ok {
		t.Error("a container whose process exited is still remembered")
	}
	d.forget(map[string]bool{})
	if len(d.known) != 0 {
		t.Errorf("after a listing with nothing running, %d remembered", len(d.known))
	}
}
