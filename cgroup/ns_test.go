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
	MemFile   uint64 // v2: memory.current read directly right after Stat
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
	v2 := os.Getenv("CGNS_CHILD_V2") != ""
	if v2 {
		if err := unix.Mount("cgroup2", mnt, "cgroup2", 0, ""); err != nil {
			fail(fmt.Errorf("mount cgroup2: %w", err))
			return
		}
	}
	for _, c := range []string{"memory", "pids"} {
		if v2 {
			break
		}
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
	if v2 {
		b, err := os.ReadFile(filepath.Join(mnt, "memory.current"))
		if err != nil {
			fail(err)
			return
		}
		r.MemFile, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
}

// TestCgroupNamespaceV2 reads a group from inside a private cgroup
// namespace on a pure v2 host, as an agent in a container does under
// Docker's and Kubernetes' default on v2 (cgroupns=private) with its own
// cgroup2 mount: the namespace is rooted at the group itself, so
// /proc/<pid>/cgroup there says "0::/", and the group read is the mount's
// root. The child (this binary, re-executed by unshare(1) in a new cgroup and
// mount namespace) joins the workload's group first, as a process in the
// container would.
func TestCgroupNamespaceV2(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) from util-linux (scripts/test.sh installs it)")
	}
	g := cgtest.NewV2(t, "memory", "pids")
	g.Write("", "pids.max", "77")
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command("sh", "-c", `read x; exec unshare --cgroup --mount --propagation private "$0" -test.run='^TestCgroupNamespaceChild$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "CGNS_CHILD_PID="+strconv.Itoa(w.Pid), "CGNS_CHILD_OUT="+out, "CGNS_CHILD_MNT="+t.TempDir(), "CGNS_CHILD_V2=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.AddPID(cmd.Process.Pid)
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
	if len(r.Paths) != 1 || r.Paths[""] != "/" {
		t.Errorf("inside the namespace /proc/<pid>/cgroup gave %v, want only \"\": \"/\" (0::/)", r.Paths)
	}
	if r.Mode != cgroup.Unified.String() {
		t.Errorf("mode in the namespace %q", r.Mode)
	}
	if r.MemUsage < 8<<20 || r.MemUsage > r.MemFile+(1<<20) || r.MemUsage+(1<<20) < r.MemFile {
		t.Errorf("memory usage read in the namespace %d, memory.current there %d (want >= 8 MiB)", r.MemUsage, r.MemFile)
	}
	if r.PidsLimit != "77" {
		t.Errorf("pids limit read in the namespace %q, want 77", r.PidsLimit)
	}
}

// TestHugetlbV1 reads the v1 hugetlb files of real groups. This host does
// not mount the hugetlb hierarchy, so the child (this test binary re-executed
// by unshare(1) in a private mount namespace) mounts it, makes a group with a
// 2 MB-page limit and one with no limit set, reads both through the library,
// and removes them. An unset limit is 2^63-1 rounded down to the huge page
// size (not to the base page): it must read as Unlimited for every size.
func TestHugetlbV1(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) from util-linux (scripts/test.sh installs it)")
	}
	if b, err := os.ReadFile("/proc/cgroups"); err != nil || !strings.Contains(string(b), "hugetlb") {
		t.Skip("the kernel has no hugetlb controller")
	}
	if v1, _, _ := cgtest.Mounts(); v1["hugetlb"] != "" {
		t.Skip("hugetlb is mounted on the host already; this test mounts its own")
	}
	if off := v1Forbidden("hugetlb"); off != "" {
		t.Skipf("the kernel forbids v1 hugetlb hierarchies (%s on its command line): a pure v2 host, where TestLiveV2 and TestLiveV2Limits read hugetlb", off)
	}
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestHugetlbV1Child$", "-test.v")
	cmd.Env = append(os.Environ(), "HUGETLB_CHILD_OUT="+out, "HUGETLB_CHILD_MNT="+t.TempDir())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, b)
	}
	var r hugetlbResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Err != "" {
		t.Fatalf("child: %s\n%s", r.Err, b)
	}
	var found bool
	for _, s := range r.Sizes {
		if s.PageSize == "2MB" {
			found = true
			if s.Limit != (cgroup.Value{V: 4 << 20, State: cgroup.Known}) || s.Usage != (cgroup.Value{State: cgroup.Known}) || s.Failcnt != (cgroup.Value{State: cgroup.Known}) {
				t.Errorf("2MB: %+v, want usage 0, limit 4 MiB, failcnt 0", s)
			}
		} else if !s.Limit.IsUnlimited() {
			t.Errorf("%s limit %v, want unlimited", s.PageSize, s.Limit)
		}
	}
	if !found {
		t.Errorf("no 2MB page size in %+v", r.Sizes)
	}
	if len(r.Unset) != len(r.Sizes) {
		t.Errorf("the group with no limit has sizes %+v", r.Unset)
	}
	t.Logf("unset limits: %v", r.UnsetRaw)
	for i, s := range r.Unset {
		if !s.Limit.IsUnlimited() {
			t.Errorf("%s: unset limit read as %v (the file says %s), want unlimited", s.PageSize, s.Limit, r.UnsetRaw[i])
		}
	}
}

// v1Forbidden returns the cgroup_no_v1= parameter of the kernel's command
// line when it forbids the v1 hierarchy of controller ("all" or a list
// naming it), else "".
func v1Forbidden(controller string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "cgroup_no_v1="); ok {
			for _, c := range strings.Split(v, ",") {
				if c == "all" || c == controller {
					return f
				}
			}
		}
	}
	return ""
}

// hugetlbResult is what TestHugetlbV1Child reports: the sizes of the group
// with a 2 MB limit, and of the group with none (with the limit files'
// content).
type hugetlbResult struct {
	Sizes, Unset []cgroup.HugetlbSize
	UnsetRaw     []string
	Err          string
}

// TestHugetlbV1Child is the child half of TestHugetlbV1.
func TestHugetlbV1Child(t *testing.T) {
	mnt := os.Getenv("HUGETLB_CHILD_MNT")
	if mnt == "" {
		t.Skip("runs only as the child of TestHugetlbV1")
	}
	var r hugetlbResult
	defer func() {
		b, _ := json.Marshal(r)
		os.WriteFile(os.Getenv("HUGETLB_CHILD_OUT"), b, 0o600)
	}()
	if err := unix.Mount("cgroup", mnt, "cgroup", 0, "hugetlb"); err != nil {
		r.Err = "mount: " + err.Error()
		return
	}
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx)
	if err != nil {
		r.Err = err.Error()
		return
	}
	read := func(name, limit2MB string) []cgroup.HugetlbSize {
		dir := filepath.Join(mnt, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			r.Err = err.Error()
			return nil
		}
		t.Cleanup(func() { os.Remove(dir) })
		if limit2MB != "" {
			if err := os.WriteFile(filepath.Join(dir, "hugetlb.2MB.limit_in_bytes"), []byte(limit2MB), 0); err != nil {
				r.Err = err.Error()
				return nil
			}
		}
		g, err := fs.Open(ctx, "/"+name, cgroup.Hugetlb)
		if err != nil {
			r.Err = err.Error()
			return nil
		}
		defer g.Close()
		var s cgroup.Stats
		if err := g.Stat(ctx, &s); err != nil {
			r.Err = err.Error()
			return nil
		}
		if len(s.Hugetlb.Sizes) == 0 {
			r.Err = "hugetlb unavailable"
			return nil
		}
		if limit2MB == "" {
			for _, h := range s.Hugetlb.Sizes {
				b, _ := os.ReadFile(filepath.Join(dir, "hugetlb."+h.PageSize+".limit_in_bytes"))
				r.UnsetRaw = append(r.UnsetRaw, strings.TrimSpace(string(b)))
			}
		}
		return s.Hugetlb.Sizes
	}
	if r.Sizes = read("metricsd-test-hugetlb", "4194304"); r.Err != "" {
		return
	}
	r.Unset = read("metricsd-test-hugetlb-unset", "")
}
