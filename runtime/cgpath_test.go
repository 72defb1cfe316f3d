package runtime_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/pidreuse"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestCheckProcessReusedPID: a container listed with its process's PID,
// start time and cgroup passes CheckProcess; named with another group it
// fails with ErrNotContainerProcess. When the process exits and its PID is
// given to a process in another group (ns_last_pid in a private PID
// namespace, read through the FS's root), the listing no longer passes: by
// the start time (cgroup.ErrNotExist) or, without one, by the group.
func TestCheckProcessReusedPID(t *testing.T) {
	tr := rttest.NewTree(t)
	tr.Group("own")
	tr.Group("other")
	ns := pidreuse.New(t)
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx, cgroup.WithRoot(ns.Root))
	if err != nil {
		t.Fatal(err)
	}
	own, other := filepath.Join(tr.Dir("own"), "cgroup.procs"), filepath.Join(tr.Dir("other"), "cgroup.procs")
	pid := ns.Spawn(false, own)
	path, start, err := runtime.ResolveProcess(ctx, fs, pid)
	if err != nil || path != tr.Path("own") || start == 0 {
		t.Fatalf("ResolveProcess = %q, %d, %v; want %s and a start time", path, start, err, tr.Path("own"))
	}
	c := runtime.Container{ID: "c", PID: pid, PIDStart: start, CgroupPath: path}
	if err := runtime.CheckProcess(ctx, fs, c); err != nil {
		t.Fatalf("the listed process: %v", err)
	}
	parent := c
	parent.CgroupPath = tr.Base
	if err := runtime.CheckProcess(ctx, fs, parent); err != nil {
		t.Errorf("a process beneath the container's group: %v", err)
	}
	elsewhere := c
	elsewhere.CgroupPath = tr.Path("other")
	if err := runtime.CheckProcess(ctx, fs, elsewhere); !errors.Is(err, runtime.ErrNotContainerProcess) {
		t.Errorf("a process outside the container's group: %v, want ErrNotContainerProcess", err)
	}
	ns.Kill(pid)
	if err := runtime.CheckProcess(ctx, fs, c); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("an exited process: %v, want cgroup.ErrNotExist", err)
	}
	ns.SpawnAt(pid, false, other)
	if err := runtime.CheckProcess(ctx, fs, c); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("a reused PID: %v, want cgroup.ErrNotExist", err)
	}
	noStart := c
	noStart.PIDStart = 0
	if err := runtime.CheckProcess(ctx, fs, noStart); !errors.Is(err, runtime.ErrNotContainerProcess) {
		t.Errorf("a reused PID, start unknown: %v, want ErrNotContainerProcess", err)
	}
}
