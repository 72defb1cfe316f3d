package job_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
)

// The test binary is also the tests' workloads, re-executed with
// JOB_TEST_MODE set:
//
//	spin   burn CPU until this process has used JOB_TEST_CPU of it
//	       (getrusage), then append that figure, in ns, to JOB_TEST_OUT
//	run    run a job (see runJob) as a child subreaper, and report its
//	       totals and the rusage of every process it ran
//
// The spinner's own figure is the known load; the rusage of all the job's
// processes, reaped by the run process, is the independent figure the
// job's totals are checked against.
func TestMain(m *testing.M) {
	switch os.Getenv("JOB_TEST_MODE") {
	case "spin":
		os.Exit(spin())
	case "run":
		os.Exit(runChild())
	}
	cleanup := makeExampleParent()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

var sink uint64

func spin() int {
	d, err := time.ParseDuration(os.Getenv("JOB_TEST_CPU"))
	if err != nil {
		return 2
	}
	var ru unix.Rusage
	for {
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= d {
			break
		}
		for i := range 1 << 20 {
			sink += uint64(i)
		}
	}
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	if out := os.Getenv("JOB_TEST_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 3
		}
		fmt.Fprintf(f, "%d\n", ru.Utime.Nano()+ru.Stime.Nano()) // one short write: O_APPEND keeps lines whole
		f.Close()
	}
	return 0
}

// parent is the group the godoc example makes its job under: one made for
// the test run in every hierarchy (on cgroup v2 with the controllers
// enabled for its children), removed at the end. A CI runner names its
// own, or lets Run choose.
var parent = "/metricsd-example-not-made"

// makeExampleParent makes the example's parent when root; otherwise (or
// where it can not) the parent does not exist and the example runs
// unmetered, with the same output.
func makeExampleParent() func() {
	if os.Geteuid() != 0 {
		return func() {}
	}
	fs, err := cgroup.NewFS(context.Background())
	if err != nil {
		return func() {}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	p := "/metricsd-example-" + hex.EncodeToString(rnd[:])
	var dirs []string
	for _, h := range fs.Hierarchies(cgroup.All) {
		dir, err := fs.Dir(h.Keys[0], p)
		if err != nil || os.Mkdir(dir, 0o755) != nil {
			continue
		}
		dirs = append(dirs, dir)
		if h.Version == 2 {
			enableControllers(dir)
		}
	}
	parent = p
	return func() {
		for _, d := range dirs {
			rmdirRetry(d)
		}
	}
}

// enableControllers enables for dir's children the controllers the root
// gives dir (on a v2 host; the lane's root enables them all).
func enableControllers(dir string) {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	var want []string
	for _, c := range strings.Fields(string(b)) {
		switch c {
		case "cpu", "memory", "io", "pids":
			want = append(want, "+"+c)
		}
	}
	if len(want) > 0 {
		os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(want, " ")), 0)
	}
}

func rmdirRetry(d string) error {
	var err error
	for range 100 {
		if err = syscall.Rmdir(d); err == nil || err == syscall.ENOENT {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// readNs sums the lines of a file of nanosecond figures.
func readNs(t *testing.T, name string) (sum time.Duration, n int) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("the workload wrote no figure: %v", err)
	}
	for _, l := range strings.Fields(string(b)) {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += time.Duration(v)
		n++
	}
	return sum, n
}
