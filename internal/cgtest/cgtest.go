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
// unified one).
type Group struct {
	Path string
	Dirs map[string]string
	t    testing.TB
}

// NeedRoot skips the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups (CI runs as root)")
	}
}

// NewV1 creates parent/g in each named v1 controller hierarchy; the name ""
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
	var rnd [6]byte
	rand.Read(rnd[:])
	parent := "metricsd-test-" + hex.EncodeToString(rnd[:])
	g := &Group{Path: "/" + parent + "/g", Dirs: make(map[string]string), t: t}
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
			t.Skipf("cgroup v1 controller %q is not mounted here (this live test needs a v1 or hybrid host; v2 is covered by the fixture capture)", c)
		}
		hier[c] = p
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Errorf("cgtest: removing %s: %v", g.Path, err)
		}
	})
	for c, mp := range hier {
		dir := filepath.Join(mp, parent, "g")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("cgtest: %v", err)
		}
		g.Dirs[c] = dir
	}
	return g
}

// Write writes value to file in the group's directory of controller.
func (g *Group) Write(controller, file, value string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.Dirs[controller], file), []byte(value), 0); err != nil {
		g.t.Fatalf("cgtest: write %s/%s: %v", controller, file, err)
	}
}

// Read returns the content of file in the group's directory of controller.
func (g *Group) Read(controller, file string) string {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Dirs[controller], file))
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

// Remove removes g and its parent in every hierarchy; a group already
// removed is fine. Processes must have exited first.
func (g *Group) Remove() error {
	var errs []error
	for c, dir := range g.Dirs {
		for _, d := range []string{dir, filepath.Dir(dir)} {
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
	var memBytes, ioBytes int
	fmt.Sscan(os.Getenv("CGTEST_MEM"), &memBytes)
	fmt.Sscan(os.Getenv("CGTEST_IO"), &ioBytes)
	if memBytes > 0 {
		sink = make([]byte, memBytes)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
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
	select {}
}
