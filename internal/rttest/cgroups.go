package rttest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tree is a cgroup subtree a test made: Base ("/metricsd-rt-<hex>") in the
// hierarchy the runtime adapters read (memory on v1 and hybrid hosts,
// unified on v2), with groups made beneath it and sleep processes moved
// into them. Cleanup kills the processes and removes the groups, deepest
// first; it never touches a group it did not create.
type Tree struct {
	Base  string // cgroup path of the parent
	Mount string // the hierarchy's mount point
	t     testing.TB
	dirs  []string
	procs []*exec.Cmd
}

// NewTree makes the parent group; it skips the test unless root.
func NewTree(t testing.TB) *Tree {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups (CI runs as root)")
	}
	mount := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(mount); err != nil {
		mount = "/sys/fs/cgroup"
		if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
			t.Skip("no memory v1 or cgroup2 hierarchy at /sys/fs/cgroup")
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tr := &Tree{Base: "/metricsd-rt-" + hex.EncodeToString(b), Mount: mount, t: t}
	tr.mkdir(tr.Base)
	t.Cleanup(tr.cleanup)
	return tr
}

func (tr *Tree) mkdir(cg string) { tr.t.Helper(); tr.mkdirIn(tr.Mount, cg) }

func (tr *Tree) mkdirIn(mount, cg string) {
	tr.t.Helper()
	dir := filepath.Join(mount, cg)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return
		}
		tr.t.Fatalf("mkdir %s: %v", dir, err)
	}
	tr.dirs = append(tr.dirs, dir)
}

// Dir is the directory of a group given relative to Base.
func (tr *Tree) Dir(rel string) string { return filepath.Join(tr.Mount, tr.Base, rel) }

// Path is the cgroup path of a group given relative to Base.
func (tr *Tree) Path(rel string) string { return filepath.Join(tr.Base, rel) }

// Group makes Base/rel (and the groups above it).
func (tr *Tree) Group(rel string) {
	tr.t.Helper()
	cur := tr.Base
	for _, e := range strings.Split(strings.Trim(rel, "/"), "/") {
		cur = cur + "/" + e
		tr.mkdir(cur)
	}
}

// Mirror makes Base/rel (and the groups above it) in another v1
// hierarchy too, such as "cpu", the way runc makes a container's group in
// every controller's hierarchy; no process is moved there. It returns false,
// making nothing, where that hierarchy is not mounted at
// /sys/fs/cgroup/<hierarchy> (a v2 host has one hierarchy).
func (tr *Tree) Mirror(hierarchy, rel string) bool {
	tr.t.Helper()
	mount := filepath.Join("/sys/fs/cgroup", hierarchy)
	if mount == tr.Mount {
		return true
	}
	if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
		return false
	}
	cur := tr.Base
	tr.mkdirIn(mount, cur)
	for _, e := range strings.Split(strings.Trim(rel, "/"), "/") {
		cur = cur + "/" + e
		tr.mkdirIn(mount, cur)
	}
	return true
}

// Spawn makes Base/rel and starts a sleep process in it; it returns the PID.
func (tr *Tree) Spawn(rel string) int {
	tr.t.Helper()
	tr.Group(rel)
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		tr.t.Fatalf("start sleep: %v", err)
	}
	tr.procs = append(tr.procs, cmd)
	if err := os.WriteFile(filepath.Join(tr.Dir(rel), "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		tr.t.Fatalf("move %d into %s: %v", cmd.Process.Pid, rel, err)
	}
	return cmd.Process.Pid
}

// Kill kills one process Spawn started and waits for it.
func (tr *Tree) Kill(pid int) {
	tr.t.Helper()
	for _, c := range tr.procs {
		if c.Process.Pid == pid && c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
			return
		}
	}
	tr.t.Fatalf("kill: %d is not a process of this tree", pid)
}

// Remove removes one group (it must be empty).
func (tr *Tree) Remove(rel string) {
	tr.t.Helper()
	if err := rmdirRetry(tr.Dir(rel)); err != nil {
		tr.t.Fatalf("rmdir %s: %v", rel, err)
	}
}

func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func (tr *Tree) cleanup() {
	for _, c := range tr.procs {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	dirs := append([]string(nil), tr.dirs...)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	// Children of the spawned processes (a shell's) are the test's too:
	// kill, by PID, whatever is left in the groups it made.
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, d := range dirs {
		if err := rmdirRetry(d); err != nil {
			tr.t.Errorf("cleanup: rmdir %s: %v", d, err)
		}
	}
}

// SpawnShell starts `sh -c script` with the shell already in Base/rel (it
// moves itself there before running the script, so its children start in
// the group); it returns the shell's PID.
func (tr *Tree) SpawnShell(rel, script string) int {
	tr.t.Helper()
	tr.Group(rel)
	cmd := exec.Command("sh", "-c", `echo $$ > "$0" || exit 1; `+script, filepath.Join(tr.Dir(rel), "cgroup.procs"))
	if err := cmd.Start(); err != nil {
		tr.t.Fatalf("start sh: %v", err)
	}
	tr.procs = append(tr.procs, cmd)
	return cmd.Process.Pid
}
