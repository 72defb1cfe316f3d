package cgroup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// nsResult is what the child in the cgroup namespace reports.
type nsResult struct {
	Paths     cgroup.Paths
	Mode      string
	MemUsage  uint64
	PidsLimit string
	Err       string
}

// TestCgroupNamespace reads a group from inside a cgroup namespace, as an
// agent in a container with a private cgroup namespace and its own cgroupfs
// mount does: /proc/<pid>/cgroup there shows "/g", not the host path, and the
// group must still be found and read. The child is this test binary,
// re-executed by unshare(1) in a new cgroup and mount namespace rooted at the
// test's parent group, where it mounts the memory and pids hierarchies.
func TestCgroupNamespace(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) from util-linux (scripts/test.sh installs it)")
	}
	g := cgtest.NewV1(t, "memory", "pids")
	g.Write("pids", "pids.max", "77")
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	out := filepath.Join(t.TempDir(), "result.json")

	// sh waits on stdin until it has been moved into the parent group, then
	// execs unshare, whose new cgroup namespace is rooted at that group.
	cmd := exec.Command("sh", "-c", `read x; exec unshare --cgroup --mount --propagation private "$0" -test.run='^TestCgroupNamespaceChild$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "CGNS_CHILD_PID="+strconv.Itoa(w.Pid), "CGNS_CHILD_OUT="+out, "CGNS_CHILD_MNT="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for c, dir := range g.Dirs {
		if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatalf("moving the child into %s: %v", c, err)
		}
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, log.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no result from the child: %v\n%s", err, log.String())
	}
	var r nsResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Err != "" {
		t.Fatalf("child: %s\n%s", r.Err, log.String())
	}
	if r.Paths["memory"] != "/g" || r.Paths["pids"] != "/g" {
		t.Errorf("inside the namespace /proc/<pid>/cgroup gave %v, want /g (relative to the namespace)", r.Paths)
	}
	usage, err := strconv.ParseUint(strings.TrimSpace(g.Read("memory", "memory.usage_in_bytes")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.MemUsage < 8<<20 || r.MemUsage > usage+(1<<20) || r.MemUsage+(1<<20) < usage {
		t.Errorf("memory usage read in the namespace %d, on the host %d", r.MemUsage, usage)
	}
	if r.PidsLimit != "77" {
		t.Errorf("pids limit read in the namespace %q, want 77", r.PidsLimit)
	}
}

// TestCgroupNamespaceChild is the child half of TestCgroupNamespace; it
// does nothing unless run by it.
func TestCgroupNamespaceChild(t *testing.T) {
	pid, _ := strconv.Atoi(os.Getenv("CGNS_CHILD_PID"))
	if pid == 0 {
		t.Skip("runs only as the child of TestCgroupNamespace")
	}
	var r nsResult
	defer func() {
		b, _ := json.Marshal(r)
		os.WriteFile(os.Getenv("CGNS_CHILD_OUT"), b, 0o600)
	}()
	fail := func(err error) { r.Err = err.Error() }
	mnt := os.Getenv("CGNS_CHILD_MNT")
	for _, c := range []string{"memory", "pids"} {
		dir := filepath.Join(mnt, c)
		if err := os.Mkdir(dir, 0o755); err != nil {
			fail(err)
			return
		}
		if err := unix.Mount("cgroup", dir, "cgroup", 0, c); err != nil {
			fail(fmt.Errorf("mount %s: %w", c, err))
			return
		}
	}
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx)
	if err != nil {
		fail(err)
		return
	}
	r.Mode = fs.Mode().String()
	if r.Paths, err = fs.PIDPaths(ctx, pid); err != nil {
		fail(err)
		return
	}
	g, err := fs.OpenPID(ctx, pid, cgroup.Memory|cgroup.Pids)
	if err != nil {
		fail(err)
		return
	}
	defer g.Close()
	var s cgroup.Stats
	if err := g.Stat(ctx, &s); err != nil {
		fail(err)
		return
	}
	r.MemUsage = s.Memory.Usage.V
	r.PidsLimit = s.Pids.Limit.String()
}
