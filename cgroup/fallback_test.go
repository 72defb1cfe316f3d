package cgroup

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	occgroups "github.com/opencontainers/cgroups"

	"github.com/metricsd/metricsd/internal/cgtest"
)

// TestOpenatFallback forces the path taken on kernels without openat2: the
// group is opened with openat and checked to be on a cgroup filesystem, and
// reads the same as through openat2; a directory on another filesystem is
// refused.
func TestOpenatFallback(t *testing.T) {
	g := cgtest.New(t, "memory", "pids")
	ctx := context.Background()
	fs, err := NewFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs.noOpenat2 = true
	grp, err := fs.Open(ctx, g.Path, Memory|Pids)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Memory.Usage.Available() || s.Pids.Limit != unlimited {
		t.Errorf("usage %v pids limit %v", s.Memory.Usage, s.Pids.Limit)
	}
	_, err = fs.openDir(t.TempDir(), ".")
	if err == nil || !strings.Contains(err.Error(), "not on a cgroup filesystem") {
		t.Errorf("openDir on a plain directory: %v, want a refusal", err)
	}
	fs.noOpenat2 = false
	if _, err := fs.openDir(t.TempDir(), "."); err != nil {
		t.Errorf("openat2 path: %v", err)
	}
}

// TestPIDPathsMatchOpencontainers parses real /proc/<pid>/cgroup files
// (v1 and hybrid lines, or v2's single "0::" line) and compares with
// opencontainers/cgroups' ParseCgroupFile.
func TestPIDPathsMatchOpencontainers(t *testing.T) {
	g := cgtest.New(t, "memory", "cpu", "cpuacct", "")
	w := cgtest.Start(t, g, cgtest.Spec{})
	ctx := context.Background()
	fs, err := NewFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{1, w.Pid} {
		ours, err := fs.PIDPaths(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := occgroups.ParseCgroupFile("/proc/" + utoa(uint64(pid)) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(map[string]string(ours), theirs) {
			t.Errorf("pid %d: ours %v, opencontainers %v", pid, ours, theirs)
		}
		if pid == w.Pid && g.Version == 1 && (ours["memory"] != g.Path || ours["cpu"] != g.Path) {
			t.Errorf("workload paths %v, want %s", ours, g.Path)
		}
		if pid == w.Pid && g.Version == 2 && (len(ours) != 1 || ours[""] != g.Path) {
			t.Errorf("workload paths %v, want only the unified %s", ours, g.Path)
		}
	}
	if _, err := fs.PIDPaths(ctx, 1<<30); !errors.Is(err, ErrNotExist) {
		t.Errorf("PIDPaths of no process: %v, want ErrNotExist", err)
	}
}

// TestRawOnlyOnCgroupFS: the raw read path (which keeps the P) is for
// kernel pseudo-files only, on the openat2 path too: a group directory on
// another filesystem under WithRoot (here a copy of the v2 capture on the
// test's disk; a FUSE tree such as lxcfs is the same case) is marked so,
// read the ordinary way, and announced once at Info; a live group on
// cgroupfs is read raw, and announced not at all.
func TestRawOnlyOnCgroupFS(t *testing.T) {
	ctx := t.Context()
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	fs, err := NewFS(ctx, WithRoot(copyV2Capture(t)), WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		g, err := fs.Open(ctx, "/fixture_load", All)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range g.dirs {
			if d.pseudo {
				t.Errorf("%s/%s read raw: not a cgroup filesystem", d.point, d.rel)
			}
		}
		var s Stats
		if err := g.Stat(ctx, &s); err != nil || !s.Memory.Anon.Available() {
			t.Errorf("Stat: %v, anon %v", err, s.Memory.Anon)
		}
		g.Close()
	}
	if n := strings.Count(logged.String(), "not a cgroup filesystem"); n != 1 || !strings.Contains(logged.String(), "level=INFO") {
		t.Errorf("announced %d times, want once at Info:\n%s", n, logged.String())
	}

	cg := cgtest.New(t, "memory", "pids")
	logged.Reset()
	live, err := NewFS(ctx, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	g, err := live.Open(ctx, cg.Path, Memory|Pids)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, d := range g.dirs {
		if !d.pseudo {
			t.Errorf("%s/%s on cgroupfs not read raw", d.point, d.rel)
		}
	}
	if logged.Len() != 0 {
		t.Errorf("logged for a cgroupfs group: %s", logged.String())
	}
}
