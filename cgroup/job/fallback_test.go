package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/cgroup/job"
)

// runResult is what runChild reports.
type runResult struct {
	Setup      string // what failed before the job ran, if anything
	Err        string
	NotMetered bool
	Totals     job.Totals
	// LimitCores is the CPU limit the job's group had while it ran.
	LimitCores float64
	// AllCPU is the rusage of every process the job ran (user + system):
	// the command and what it waited for (Totals.Tree), and the processes
	// it left behind, which the run process, a child subreaper, adopted
	// and reaped once the job was over. Exits included.
	AllCPU time.Duration
}

// runSpec says what runJob runs.
type runSpec struct {
	argv     []string
	env      []string // the job's environment (spinEnv)
	parent   string
	cpuLimit float64
	broken   string // "read-only", "unmounted": the cgroup mounts, in a private mount namespace
}

// runJob runs a job in a child process (the test binary again, as a child
// subreaper: see runChild), in a private mount namespace when the cgroup
// mounts are to be broken.
func runJob(t *testing.T, s runSpec) runResult {
	t.Helper()
	res := filepath.Join(t.TempDir(), "result.json")
	argv, _ := json.Marshal(s.argv)
	jobEnv, _ := json.Marshal(s.env)
	cmd := exec.Command(os.Args[0])
	if s.broken != "" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("needs unshare(1) from util-linux (scripts/test.sh installs it)")
		}
		cmd = exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0])
	}
	cmd.Env = append(os.Environ(), "JOB_TEST_MODE=run", "JOB_TEST_ARGV="+string(argv), "JOB_TEST_ENV="+string(jobEnv),
		"JOB_TEST_PARENT="+s.parent, "JOB_TEST_BROKEN="+s.broken, "JOB_TEST_RESULT="+res,
		"JOB_TEST_CPULIMIT="+strconv.FormatFloat(s.cpuLimit, 'g', -1, 64))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run child: %v\n%s", err, out)
	}
	b, err := os.ReadFile(res)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, out)
	}
	var r runResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Setup != "" {
		t.Fatalf("run child: %s\n%s", r.Setup, out)
	}
	return r
}

// runChild is the re-executed test binary of runJob.
func runChild() int {
	var r runResult
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		r.Setup = "PR_SET_CHILD_SUBREAPER: " + err.Error()
	}
	if how := os.Getenv("JOB_TEST_BROKEN"); how != "" && r.Setup == "" {
		r.Setup = breakCgroupMounts(how)
	}
	var argv, env []string
	json.Unmarshal([]byte(os.Getenv("JOB_TEST_ARGV")), &argv)
	json.Unmarshal([]byte(os.Getenv("JOB_TEST_ENV")), &env)
	if !strings.Contains(os.Getenv("JOB_TEST_ENV"), "JOB_TEST_MODE=spin") {
		r.Setup = "the job's environment does not make the test binary a spinner"
	}
	if r.Setup == "" && len(argv) > 0 {
		opts := []job.Option{job.WithParent(os.Getenv("JOB_TEST_PARENT"))}
		if c, _ := strconv.ParseFloat(os.Getenv("JOB_TEST_CPULIMIT"), 64); c > 0 {
			opts = append(opts, job.WithCPULimit(c))
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Stderr = env, os.Stderr
		j, err := job.Start(context.Background(), cmd, opts...)
		if err != nil {
			r.Setup = "Start: " + err.Error()
		} else {
			if g := j.Group(); g != nil {
				var s cgroup.Stats
				if err := g.Stat(context.Background(), &s); err == nil {
					r.LimitCores, _ = s.CPU.LimitCores()
				}
			}
			tot, err := j.Wait()
			if tot != nil {
				r.Totals = *tot
			}
			if err != nil {
				r.Err = err.Error()
			}
			r.NotMetered = errors.Is(err, job.ErrNotMetered)
		}
		// Reap what the job left behind (its group is empty: they have
		// exited), then take the rusage of everything reaped.
		for {
			if _, err := unix.Wait4(-1, nil, 0, nil); err == unix.ECHILD {
				break
			}
		}
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
		r.AllCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(os.Getenv("JOB_TEST_RESULT"), b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestNotWritable runs a job where the cgroup tree can not be written, as in
// an ordinary CI container: in a private mount namespace every cgroup mount
// is remounted read-only (or, in the second case, unmounted), and the job,
// a spinner of 300 ms of CPU, is to run under the test's parent. It must
// run; its totals must hold the rusage of its tree (the same as the kernel
// gives its parent, and at least the spinner's own figure), no cgroup figure
// (Unavailable, not 0), and an error matching ErrNotMetered that says what
// is missing; and no group may appear.
func TestNotWritable(t *testing.T) {
	g := testParent(t)
	for _, how := range []string{"read-only", "unmounted"} {
		t.Run(how, func(t *testing.T) {
			spin := filepath.Join(t.TempDir(), "spin")
			r := runJob(t, runSpec{argv: []string{os.Args[0]}, env: spinEnv(spin, 300*time.Millisecond), parent: g.Path, broken: how})
			t.Logf("error: %s", r.Err)
			want := map[string]string{"read-only": "read-only file system", "unmounted": "no cgroup filesystem mounted"}[how]
			if !r.NotMetered || !strings.Contains(r.Err, want) {
				t.Errorf("error %q: want one matching ErrNotMetered that says %q", r.Err, want)
			}
			tot := r.Totals
			self, n := readNs(t, spin)
			if n != 1 || tot.ExitCode != 0 {
				t.Fatalf("%d spinners reported, exit %d", n, tot.ExitCode)
			}
			tree := tot.Tree.User + tot.Tree.System
			within(t, "not writable ("+how+"): rusage CPU seconds vs the kernel's rusage of the run process's children", tree.Seconds(), r.AllCPU.Seconds(), 0.05)
			ratio(t, "not writable ("+how+"): rusage CPU seconds vs the spinner's own getrusage (before its exit)", tree, self)
			for name, v := range map[string]cgroup.Value{"CPU.Total": tot.CPU.Total, "CPU.User": tot.CPU.User, "MemoryPeak": tot.MemoryPeak,
				"IO.ReadBytes": tot.IO.ReadBytes, "PidsPeak": tot.PidsPeak, "ForkFailures": tot.ForkFailures, "OOMKills": tot.OOMKills} {
				if v.State != cgroup.Unavailable {
					t.Errorf("%s = %v, want Unavailable (no group of the job's own)", name, v)
				}
			}
			if tot.Metered() || tot.Path != "" || tot.Tree.MaxRSS == 0 || tot.Wall <= 0 {
				t.Errorf("metered %v path %q max RSS %d wall %v", tot.Metered(), tot.Path, tot.Tree.MaxRSS, tot.Wall)
			}
			noJobGroups(t, g)
		})
	}
}

// ratio logs a measured CPU time beside the known load it must include,
// and fails the test if it is below it: a job figure that misses part of
// the load (a process that escaped the group) is too low; one above it
// also holds the cost of starting and ending the processes, which the
// load's own figure, taken before it exits, can not.
func ratio(t *testing.T, name string, got, load time.Duration) {
	t.Helper()
	t.Logf("%s: measured %.6g, expected at least %.6g (%+.2f%%)", name, got.Seconds(), load.Seconds(), 100*(got.Seconds()-load.Seconds())/load.Seconds())
	if got < load {
		t.Errorf("%s: %v below the load's own %v", name, got, load)
	}
}

// breakCgroupMounts remounts every cgroup and cgroup2 mount of this mount
// namespace read-only, or unmounts them; "" when done.
func breakCgroupMounts(how string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err.Error()
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, p := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(p) >= 1 && (p[0] == "cgroup" || p[0] == "cgroup2") {
			points = append(points, f[4])
		}
	}
	if len(points) == 0 {
		return "no cgroup mount to break"
	}
	for i := len(points) - 1; i >= 0; i-- {
		var err error
		if how == "unmounted" {
			err = unix.Unmount(points[i], unix.MNT_DETACH)
		} else {
			err = unix.Mount("", points[i], "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}
		if err != nil {
			return fmt.Sprintf("%s %s: %v", how, points[i], err)
		}
	}
	return ""
}
