package cgroup_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/pidreuse"
)

// TestLiveProcessReusedPID: a process is learnt by PID and start time; it
// exits and its PID is given to a process in another group (ns_last_pid in a
// private PID namespace, which the FS reads through its root). OpenPID trusts
// the number and opens the impostor's group; ProcessPaths and OpenProcess,
// told the start time, refuse with ErrNotExist, as they do for a process
// that exited without its PID being reused.
func TestLiveProcessReusedPID(t *testing.T) {
	own := cgtest.New(t, "memory", "pids")
	other := cgtest.New(t, "memory", "pids")
	// The keys of the groups' paths: controllers on v1, "" on v2.
	mem, pids := "memory", "pids"
	if own.Version == 2 {
		mem, pids = "", ""
	}
	ns := pidreuse.New(t)
	ctx := context.Background()
	f, err := cgroup.NewFS(ctx, cgroup.WithRoot(ns.Root))
	if err != nil {
		t.Fatal(err)
	}
	procs := func(g *cgtest.Group) []string {
		var files []string
		for _, d := range g.Dirs {
			files = append(files, filepath.Join(d, "cgroup.procs"))
		}
		return files
	}
	pid := ns.Spawn(false, procs(own)...)
	paths, start, err := f.ProcessPaths(ctx, pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if paths[mem] != own.Path || start == 0 {
		t.Fatalf("ProcessPaths = %v, start %d; want memory %s and a start time", paths, start, own.Path)
	}
	if p, got, err := f.ProcessPaths(ctx, pid, start); err != nil || got != start || p[pids] != own.Path {
		t.Fatalf("ProcessPaths with the right start = %v, %d, %v", p, got, err)
	}
	g, err := f.OpenProcess(ctx, pid, start, cgroup.Pids)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()

	ns.Kill(pid)
	if _, _, err := f.ProcessPaths(ctx, pid, start); !errors.Is(err, cgroup.ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ProcessPaths of an exited process: %v, want ErrNotExist", err)
	}
	ns.SpawnAt(pid, false, procs(other)...)

	// The hazard: by number alone, the PID is the impostor's.
	if p, err := f.PIDPaths(ctx, pid); err != nil || p[mem] != other.Path {
		t.Fatalf("PIDPaths of the reused PID = %v, %v; want the other group %s (the test's premise)", p, err, other.Path)
	}
	if _, _, err := f.ProcessPaths(ctx, pid, start); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("ProcessPaths of a reused PID: %v, want ErrNotExist", err)
	}
	if g, err := f.OpenProcess(ctx, pid, start, cgroup.All); !errors.Is(err, cgroup.ErrNotExist) {
		if g != nil {
			g.Close()
		}
		t.Errorf("OpenProcess of a reused PID: %v, want ErrNotExist", err)
	}
	// Told nothing, it reports the process that has the PID now.
	if p, got, err := f.ProcessPaths(ctx, pid, 0); err != nil || got == start || p[mem] != other.Path {
		t.Errorf("ProcessPaths(start 0) = %v, %d, %v; want the other group and a later start", p, got, err)
	}
}
