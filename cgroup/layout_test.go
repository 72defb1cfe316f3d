package cgroup

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The host layouts below are built for these tests from the real captures
// in testdata (exact copies of ../shared/fixtures): every cgroup file read
// is a captured one, copied unchanged. What is written here is only what
// makes the layout: a mountinfo (the capture's lines, one added or
// removed), a /proc/<pid>/cgroup in the kernel's format, and, for the
// hybrid host, the unified root's cgroup.controllers.

const (
	hybridCapture = "testdata/cgroup1-hybrid-kernel6.18-docker20.10"
	v2Capture     = "testdata/cgroup2-kernel6.18"
	dockerID      = "7ec3cf760992fea9cf4b35bcf24244de1d990536cd65c103877576cb4d8dad62"
)

// writeFile writes a file made for a test, with its directories.
func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCapture returns a capture file's content.
func readCapture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyFiles copies the files of directory src whose names match one of the
// patterns (filepath.Match) into dst, unchanged.
func copyFiles(t *testing.T, src, dst string, patterns ...string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, e.Name()); ok && !e.IsDir() {
				writeFile(t, filepath.Join(dst, e.Name()), readCapture(t, filepath.Join(src, e.Name())))
				n++
				break
			}
		}
	}
	if n == 0 {
		t.Fatalf("no file of %s matches %v", src, patterns)
	}
}

// TestLayoutV2WithNetCls: a cgroup v2 host with one v1 hierarchy mounted
// for net_cls (as VPN split-tunnelling tools mount it) is still Unified, and
// a process's group is read from the unified hierarchy, every figure as the
// capture has it. It was Hybrid, OpenPID failed with ErrNotExist and Open
// returned a Group with CPU, memory and pids Unavailable and no error.
func TestLayoutV2WithNetCls(t *testing.T) {
	ctx := t.Context()
	root := fixtureRoot(t, "cgroup2-kernel6.18", nil)
	mi := readCapture(t, v2Capture+"/proc/mountinfo") +
		"45 23 0:41 / /sys/fs/cgroup/net_cls rw,nosuid,nodev,noexec,relatime - cgroup net_cls rw,net_cls\n"
	os.Remove(filepath.Join(root, "proc/1/mountinfo"))
	writeFile(t, filepath.Join(root, "proc/1/mountinfo"), mi)
	writeFile(t, filepath.Join(root, "proc/4242/cgroup"), "1:net_cls:/\n0::/fixture_load\n")

	fs, err := NewFS(ctx, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if fs.Mode() != Unified {
		t.Errorf("mode = %v, want unified (net_cls is not a controller read here)", fs.Mode())
	}
	if mp, ok := fs.MountPoint("net_cls"); !ok || mp != filepath.Join(root, "sys/fs/cgroup/net_cls") {
		t.Errorf("net_cls mount point %q %v", mp, ok)
	}
	want := fixtureV2Want()
	for name, open := range map[string]func() (*Group, error){
		"OpenPID": func() (*Group, error) { return fs.OpenPID(ctx, 4242, All) },
		"Open":    func() (*Group, error) { return fs.Open(ctx, "/fixture_load", All) },
	} {
		g, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer g.Close()
		if g.Version() != 2 {
			t.Errorf("%s: Version = %d, want 2", name, g.Version())
		}
		var s Stats
		if err := g.Stat(ctx, &s); err != nil {
			t.Fatalf("%s: Stat: %v", name, err)
		}
		want.CPU.PerCPU = s.CPU.PerCPU
		if !reflect.DeepEqual(s, want) {
			t.Errorf("%s: Stat mismatch\n got %+v\nwant %+v", name, s, want)
		}
	}
}

// TestLayoutHybridNoV1Memory: a hybrid host booted with cgroup_no_v1=memory
// has cpu, cpuacct, blkio and pids as v1 hierarchies and memory in the
// unified one. The container's CPU, I/O and pids come from the hybrid
// capture's v1 groups and its memory (and pressure) from the unified group,
// whose files are the v2 capture's fixture_load ones. Memory was Unavailable.
func TestLayoutHybridNoV1Memory(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	src, err := filepath.Abs(hybridCapture)
	if err != nil {
		t.Fatal(err)
	}
	var mi []string
	for _, l := range strings.SplitAfter(readCapture(t, hybridCapture+"/proc/mountinfo"), "\n") {
		if !strings.HasSuffix(l, " rw,memory\n") {
			mi = append(mi, l)
		}
	}
	if len(mi) == 0 || strings.Contains(strings.Join(mi, ""), "memory") {
		t.Fatal("the capture's mountinfo has no memory line to take out")
	}
	writeFile(t, filepath.Join(root, "proc/1/mountinfo"), strings.Join(mi, ""))
	var pc []string
	for _, l := range strings.SplitAfter(readCapture(t, hybridCapture+"/proc/container_pid_cgroup"), "\n") {
		if !strings.Contains(l, ":memory:") {
			pc = append(pc, l) // no memory hierarchy: no line for it
		}
	}
	writeFile(t, filepath.Join(root, "proc/4242/cgroup"), strings.Join(pc, ""))
	cg := filepath.Join(root, "sys/fs/cgroup")
	for _, c := range []string{"cpu", "cpuacct", "blkio", "pids", "cpuset", "devices", "freezer"} {
		if err := os.MkdirAll(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(src, "sys/fs/cgroup", c), filepath.Join(cg, c)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(cg, "unified/cgroup.controllers"), "memory\n")
	group := filepath.Join(cg, "unified/docker", dockerID)
	copyFiles(t, v2Capture+"/sys/fs/cgroup/fixture_load", group, "memory.*", "*.pressure", "cpu.stat")
	if err := os.Symlink(filepath.Join(src, "proc/partitions"), filepath.Join(root, "proc/partitions")); err != nil {
		t.Fatal(err)
	}

	fs, err := NewFS(ctx, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	fs.userHZ = 100 // the capture's (x86-64)
	if fs.Mode() != Hybrid {
		t.Errorf("mode = %v, want hybrid", fs.Mode())
	}
	if _, ok := fs.MountPoint("memory"); ok {
		t.Error("memory has a v1 mount point")
	}
	g, err := fs.OpenPID(ctx, 4242, All)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Version() != 1 {
		t.Errorf("Version = %d, want 1 (CPU, IO and pids are v1)", g.Version())
	}
	var s Stats
	if err := g.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	v1, v2 := fixtureV1DockerWant(), fixtureV2Want()
	want := Stats{CPU: v1.CPU, Memory: v2.Memory, IO: v1.IO, Pids: v1.Pids, Pressure: v2.Pressure, Hugetlb: s.Hugetlb}
	want.IO.Devices = s.IO.Devices
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Stat mismatch\n got %+v\nwant %+v", s, want)
	}
	if len(s.Hugetlb.Sizes) != 0 {
		t.Errorf("hugetlb %+v: neither a v1 hierarchy nor in the unified one", s.Hugetlb)
	}
}

// TestWithRootNoFallback: a host root without proc/1/mountinfo is an error
// naming that file, never the mounts of the machine the test runs on (which
// NewFS read instead, logging only at Debug).
func TestWithRootNoFallback(t *testing.T) {
	root := t.TempDir()
	_, err := NewFS(t.Context(), WithRoot(root))
	if err == nil || !errors.Is(err, iofs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, "proc/1/mountinfo")) {
		t.Errorf("NewFS with an empty root: %v, want an error naming %s/proc/1/mountinfo", err, root)
	}
	if _, err := NewFS(t.Context(), WithRoot("host")); err == nil {
		t.Error("a relative root was accepted")
	}
}

// TestProcCgroupDeleted: the unified line of a process whose group was
// removed ends in " (deleted)". parseProcCgroup reports it and keeps the
// text (a live group's name may end so); see TestLiveDeletedGroup for the
// process side.
func TestProcCgroupDeleted(t *testing.T) {
	p, deleted, err := parseProcCgroup([]byte("0::/system.slice/docker-abc.scope (deleted)\n"))
	if err != nil || !deleted || p[""] != "/system.slice/docker-abc.scope (deleted)" {
		t.Errorf("got %v %v %v", p, deleted, err)
	}
	p, deleted, err = parseProcCgroup([]byte("4:memory:/x (deleted)\n0::/x\n"))
	if err != nil || deleted || p["memory"] != "/x (deleted)" {
		t.Errorf("a v1 line: got %v %v %v", p, deleted, err)
	}
}
