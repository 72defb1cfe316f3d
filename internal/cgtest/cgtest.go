// Package cgtest makes real cgroups and real workloads for tests: groups under
// a uniquely named parent that the test owns and removes, and a child process
// (the test binary itself, re-executed) that burns CPU, allocates memory and
// does direct I/O on request. It never writes to a group it did not create.
package cgtest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Mounts returns the v1 controller mount points (by controller) and the
// cgroup2 mount point ("" if none) from /proc/self/mountinfo.
func Mounts() (v1 map[string]string, unified string, err error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, "", err
	}
	v1 = make(map[string]string)
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, p := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(p) < 3 {
			continue
		}
		switch p[0] {
		case "cgroup2":
			if unified == "" {
				unified = f[4]
			}
		case "cgroup":
			if f[3] != "/" {
				continue
			}
			for _, o := range strings.Split(p[2], ",") {
				if _, dup := v1[o]; !dup {
					v1[o] = f[4]
				}
			}
		}
	}
	return v1, unified, nil
}

// Group is a cgroup made by a test: Path is its cgroup path
// ("/metricsd-test-<hex>/g"), Dirs its directory per hierarchy ("" for the
// unified one; on a pure v2 host the only one). Version is 1 for groups made
// by NewV1 (v1 controllers, plus the unified directory of a hybrid host), 2
// for NewV2.
type Group struct {
	Path    string
	Dirs    map[string]string
	Version int
	t       testing.TB
	child   bool // made by Child: Remove leaves the parent
}

// Dir is the group's directory for a controller: its v1 hierarchy's, or on
// v2 the one directory whatever the controller.
func (g *Group) Dir(controller string) string {
	if g.Version == 2 {
		return g.Dirs[""]
	}
	return g.Dirs[controller]
}

// NeedRoot skips the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups (CI runs as root)")
	}
}

// OuterEnv names an environment variable: a cgroup path ("/safety") under
// which NewV1 makes its parents instead of at the root of each hierarchy.
// It must exist in every hierarchy the tests use. Running a test binary in
// that group, with a pids.max set there, bounds every process the tests
// start, also those they move into their own groups (pids.max holds for a
// whole subtree): a safety net for tests that fork on purpose.
const OuterEnv = "METRICSD_CGTEST_OUTER"

// NewV1 creates parent/g in each named v1 controller hierarchy (under the
// group OuterEnv names, if set); the name ""
// stands for the unified hierarchy of a hybrid host (where PSI is read), and
// is skipped when the host has none. It skips the test when not root or when a controller is not mounted
// as v1. The groups are removed at cleanup (after the test's own cleanups
// stopped its processes).
func NewV1(t testing.TB, controllers ...string) *Group {
	t.Helper()
	NeedRoot(t)
	v1, unified, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	outer := os.Getenv(OuterEnv)
	if outer != "" && (!strings.HasPrefix(outer, "/") || filepath.Clean(outer) != outer || outer == "/") {
		t.Fatalf("cgtest: %s=%q: want a clean absolute cgroup path below the root", OuterEnv, outer)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	parent := outer + "/metricsd-test-" + hex.EncodeToString(rnd[:])
	g := &Group{Path: parent + "/g", Dirs: make(map[string]string), Version: 1, t: t}
	hier := map[string]string{}
	for _, c := range controllers {
		if c == "" {
			if unified != "" {
				hier[""] = unified
			}
			continue
		}
		p, ok := v1[c]
		if !ok {
			t.Skipf("cgroup v1 controller %q is not mounted here (this live test needs a v1 or hybrid host; its cgroup v2 counterpart runs on v2 hosts and in scripts/v2lane.sh)", c)
		}
		hier[c] = p
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Errorf("cgtest: removing %s: %v", g.Path, err)
		}
	})
	for c, mp := range hier {
		if outer != "" {
			if _, err := os.Stat(filepath.Join(mp, outer)); err != nil {
				t.Fatalf("cgtest: %s=%s: %v", OuterEnv, outer, err)
			}
		}
		dir := filepath.Join(mp, parent, "g")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("cgtest: %v", err)
		}
		g.Dirs[c] = dir
	}
	return g
}

// PureV2 reports whether the host is pure cgroup v2: a cgroup2 mount and no
// v1 controller hierarchy (named v1 hierarchies such as name=systemd do not
// count). It returns the cgroup2 mount point.
func PureV2() (unified string, ok bool) {
	v1, unified, err := Mounts()
	if err != nil || unified == "" {
		return "", false
	}
	for c := range v1 {
		if !strings.HasPrefix(c, "name=") {
			return unified, false
		}
	}
	return unified, true
}

// v1ToV2 maps v1 controller names to the v2 controller that holds their
// files; "" (the unified hierarchy of a hybrid host, for PSI) maps to none:
// every v2 group has its pressure files.
var v1ToV2 = map[string]string{"cpu": "cpu", "cpuacct": "cpu", "memory": "memory", "blkio": "io", "pids": "pids", "hugetlb": "hugetlb", "cpuset": "cpuset", "": ""}

// New makes a group for tests that run on every kind of host: NewV2 with
// the matching v2 controllers on a pure cgroup v2 host, else NewV1. The
// controllers are named as on v1 ("cpuacct" and "blkio" become v2's "cpu"
// and "io"). Read and Write take v1 controller names on either; the file
// names differ between versions, pids.max aside.
func New(t testing.TB, controllers ...string) *Group {
	t.Helper()
	if _, ok := PureV2(); !ok {
		return NewV1(t, controllers...)
	}
	var v2 []string
	for _, c := range controllers {
		m, ok := v1ToV2[c]
		if !ok {
			t.Fatalf("cgtest: no v2 controller for v1 %q", c)
		}
		if m != "" && !slices.Contains(v2, m) {
			v2 = append(v2, m)
		}
	}
	return NewV2(t, v2...)
}

// NewV2 creates parent/g in the unified hierarchy of a pure cgroup v2 host,
// with the named controllers ("cpu", "memory", "io", "pids", "hugetlb",
// "cpuset") enabled in the parent's cgroup.subtree_control, so that g has
// their files. It skips the test when not root, when the host is not pure
// v2 (scripts/v2lane.sh runs these tests in v2 guests), or when a controller
// is not enabled at the root (it never writes to a group it did not make).
// The groups are removed at cleanup.
func NewV2(t testing.TB, controllers ...string) *Group {
	t.Helper()
	NeedRoot(t)
	unified, ok := PureV2()
	if !ok {
		t.Skip("needs a pure cgroup v2 host (scripts/v2lane.sh runs the v2 tests in QEMU guests booted with cgroup_no_v1=all)")
	}
	b, err := os.ReadFile(filepath.Join(unified, "cgroup.subtree_control"))
	if err != nil {
		t.Fatalf("cgtest: %v", err)
	}
	enabled := strings.Fields(string(b))
	for _, c := range controllers {
		if !slices.Contains(enabled, c) {
			t.Skipf("the cgroup v2 controller %q is not enabled in the root's cgroup.subtree_control (%q)", c, strings.TrimSpace(string(b)))
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	parent := "metricsd-test-" + hex.EncodeToString(rnd[:])
	g := &Group{Path: "/" + parent + "/g", Dirs: map[string]string{"": filepath.Join(unified, parent, "g")}, Version: 2, t: t}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Errorf("cgtest: removing %s: %v", g.Path, err)
		}
	})
	if err := os.Mkdir(filepath.Dir(g.Dirs[""]), 0o755); err != nil {
		t.Fatalf("cgtest: %v", err)
	}
	if len(controllers) > 0 {
		var sb strings.Builder
		for _, c := range controllers {
			sb.WriteString(" +" + c)
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(g.Dirs[""]), "cgroup.subtree_control"), []byte(sb.String()[1:]), 0); err != nil {
			t.Fatalf("cgtest: enabling%s: %v", sb.String(), err)
		}
	}
	if err := os.Mkdir(g.Dirs[""], 0o755); err != nil {
		t.Fatalf("cgtest: %v", err)
	}
	return g
}

// Write writes value to file in the group's directory of controller.
func (g *Group) Write(controller, file, value string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.Dir(controller), file), []byte(value), 0); err != nil {
		g.t.Fatalf("cgtest: write %s/%s: %v", controller, file, err)
	}
}

// Read returns the content of file in the group's directory of controller.
func (g *Group) Read(controller, file string) string {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Dir(controller), file))
	if err != nil {
		g.t.Fatalf("cgtest: %v", err)
	}
	return string(b)
}

// AddPID moves a process (one the test started) into every hierarchy of g.
func (g *Group) AddPID(pid int) {
	g.t.Helper()
	for c := range g.Dirs {
		g.Write(c, "cgroup.procs", fmt.Sprint(pid))
	}
}

// Remove removes g and its parent in every hierarchy (a Child: only
// itself); a group already removed is fine. Processes must have exited
// first.
func (g *Group) Remove() error {
	var errs []error
	for c, dir := range g.Dirs {
		dirs := []string{dir, filepath.Dir(dir)}
		if g.child {
			dirs = dirs[:1]
		}
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ { // a killed task leaves its group asynchronously
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", c, d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Shell starts `sh -c script` with the shell already in g, in every
// hierarchy (it writes its own PID to each cgroup.procs before running the
// script, so that everything it starts is in g), and returns the command
// (started; Wait reaps it). At cleanup, before g is removed, the shell and
// every process left in g (its children, which the test made) are killed by
// PID.
func (g *Group) Shell(script string) *exec.Cmd {
	g.t.Helper()
	args := []string{"-c", `for d in "$@"; do echo $$ >"$d/cgroup.procs" || exit 97; done; ` + script, "sh"}
	for _, d := range g.Dirs {
		args = append(args, d)
	}
	cmd := exec.Command("/bin/sh", args...)
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("cgtest: start sh: %v", err)
	}
	g.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		g.KillAll()
	})
	return cmd
}

// KillAll kills, by PID, every process in g (processes the test started:
// g is the test's own group).
func (g *Group) KillAll() {
	for _, d := range g.Dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// Child makes a group nested in a v2 group, with the named controllers
// enabled in g's cgroup.subtree_control (g must then hold no process: v2's
// "no internal processes" rule). It is removed at cleanup, before g.
func (g *Group) Child(name string, controllers ...string) *Group {
	g.t.Helper()
	if g.Version != 2 {
		g.t.Fatal("cgtest: Child needs a v2 group")
	}
	if len(controllers) > 0 {
		g.Write("", "cgroup.subtree_control", "+"+strings.Join(controllers, " +"))
	}
	c := &Group{Path: g.Path + "/" + name, Dirs: map[string]string{"": filepath.Join(g.Dirs[""], name)}, Version: 2, t: g.t, child: true}
	if err := os.Mkdir(c.Dirs[""], 0o755); err != nil {
		g.t.Fatalf("cgtest: %v", err)
	}
	g.t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			g.t.Errorf("cgtest: removing %s: %v", c.Path, err)
		}
	})
	return c
}

// Workload is a child process started by Start.
type Workload struct {
	Cmd   *exec.Cmd
	Pid   int
	out   *bufio.Reader
	t     testing.TB
	ended bool
}

// Spec says what a workload does when told to go.
type Spec struct {
	MemBytes  int    // anonymous memory to allocate and touch
	HugeBytes int    // memory to allocate in 2 MiB huge pages (hugetlbfs pages must be reserved)
	IOBytes   int    // bytes to write, then read, with O_DIRECT in IODir
	IODir     string // a directory on a block device (not tmpfs)
	SpinCPU   bool   // burn one CPU until killed, after the rest
	ExitAfter bool   // exit 0 after the rest instead of waiting to be killed
}

const envKey = "METRICSD_CGTEST_WORKLOAD"

// Main must be called first from TestMain of a package that uses Start: in
// the re-executed child it runs the workload and exits.
func Main() {
	if os.Getenv(envKey) == "" {
		return
	}
	os.Exit(runWorkload())
}

// Start starts the test binary as a workload, moves it into g (when g is not
// nil) before it does anything, tells it to go and waits until it has
// allocated and done its I/O. The process is killed and reaped at cleanup.
func Start(t testing.TB, g *Group, s Spec) *Workload {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envKey+"=1",
		fmt.Sprintf("CGTEST_MEM=%d", s.MemBytes),
		fmt.Sprintf("CGTEST_HUGE=%d", s.HugeBytes),
		fmt.Sprintf("CGTEST_IO=%d", s.IOBytes),
		"CGTEST_IODIR="+s.IODir,
		fmt.Sprintf("CGTEST_SPIN=%t", s.SpinCPU),
		fmt.Sprintf("CGTEST_EXIT=%t", s.ExitAfter),
	)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	w := &Workload{Cmd: cmd, Pid: cmd.Process.Pid, out: bufio.NewReader(outR), t: t}
	t.Cleanup(w.Stop)
	if g != nil {
		g.AddPID(w.Pid)
	}
	if _, err := inW.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	line, err := w.out.ReadString('\n')
	// The child reads and writes nothing more: close our pipe ends now, so
	// that tests counting descriptors see none of them.
	inW.Close()
	outR.Close()
	if err != nil || strings.TrimSpace(line) != "done" {
		t.Fatalf("cgtest: workload said %q, %v", line, err)
	}
	return w
}

// Stop kills the workload (only this process, which the test started) and
// reaps it.
func (w *Workload) Stop() {
	if w.ended {
		return
	}
	w.ended = true
	w.Cmd.Process.Kill()
	w.Cmd.Wait()
}

// Wait waits for a workload started with ExitAfter to exit.
func (w *Workload) Wait() error {
	w.ended = true
	return w.Cmd.Wait()
}

var (
	sink []byte
	spun atomic.Int64
)

func runWorkload() int {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		return 3
	}
	var memBytes, hugeBytes, ioBytes int
	fmt.Sscan(os.Getenv("CGTEST_MEM"), &memBytes)
	fmt.Sscan(os.Getenv("CGTEST_HUGE"), &hugeBytes)
	fmt.Sscan(os.Getenv("CGTEST_IO"), &ioBytes)
	if memBytes > 0 {
		sink = make([]byte, memBytes)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
		}
	}
	if hugeBytes > 0 {
		if err := hugeAlloc(hugeBytes); err != nil {
			fmt.Fprintln(os.Stderr, "cgtest workload:", err)
			return 5
		}
	}
	if ioBytes > 0 {
		if err := directIO(os.Getenv("CGTEST_IODIR"), ioBytes); err != nil {
			fmt.Fprintln(os.Stderr, "cgtest workload:", err)
			return 4
		}
	}
	os.Stdout.WriteString("done\n")
	if os.Getenv("CGTEST_EXIT") == "true" {
		return 0
	}
	if os.Getenv("CGTEST_SPIN") == "true" {
		for {
			spun.Add(1)
		}
	}
	// Idle until killed. Not select{}: with nothing else to run, a binary
	// built with CGO_ENABLED=0 dies of "all goroutines are asleep"; a
	// sleeping goroutine has a timer, so the runtime never declares that.
	for {
		time.Sleep(time.Hour)
	}
}
