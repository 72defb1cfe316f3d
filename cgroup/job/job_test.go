package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/cgroup/job"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// testParent makes a parent for the test's jobs in every hierarchy the
// package reads (on cgroup v2 with cpu, memory, io and pids enabled for its
// children); cgtest removes it at cleanup.
func testParent(t *testing.T) *cgtest.Group {
	t.Helper()
	g := cgtest.New(t, "cpu", "cpuacct", "memory", "blkio", "pids", "")
	if g.Version == 2 {
		g.Write("", "cgroup.subtree_control", "+cpu +memory +io +pids")
	}
	return g
}

// noJobGroups fails the test if a job's group is left under g.
func noJobGroups(t *testing.T, g *cgtest.Group) {
	t.Helper()
	for c, dir := range g.Dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("a group is left in the %q hierarchy: %s", c, filepath.Join(dir, e.Name()))
			}
		}
	}
}

// within fails the test unless got is within frac of want, and logs both
// (the closing note quotes these lines).
func within(t *testing.T, name string, got, want, frac float64) {
	t.Helper()
	t.Logf("%s: measured %.10g, expected %.10g (%+.2f%%)", name, got, want, 100*(got-want)/want)
	if got < want*(1-frac) || got > want*(1+frac) {
		t.Errorf("%s = %.6g, want %.6g within %.0f%%", name, got, want, frac*100)
	}
}

func known(t *testing.T, name string, v cgroup.Value) float64 {
	t.Helper()
	n, ok := v.Get()
	if !ok {
		t.Fatalf("%s is %v, want a figure", name, v)
	}
	return float64(n)
}

// spinEnv is the environment that makes the test binary a spinner (and
// nothing else: a job that is the test binary must never run the tests or
// a run child again).
func spinEnv(out string, cpu time.Duration) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "JOB_TEST_") {
			env = append(env, e)
		}
	}
	return append(env, "JOB_TEST_MODE=spin", "JOB_TEST_CPU="+cpu.String(), "JOB_TEST_OUT="+out)
}

// TestCPUUnderQuota runs a shell that at once forks two spinners, each of
// which burns 600 ms of CPU by its own getrusage, under a limit of half a
// CPU. The job's CPU time must be the kernel's per-process figure for all
// its processes (the shell waited for both spinners: the rusage of the
// waited-for tree) within 5%, and at least the spinners' own figures: had
// they escaped the group (a group joined after the shell started), it
// would be near zero. The quota must be the one asked for.
//
// The machine is shared and loaded: the limit holds the job to at most
// half a CPU, and it may get less, so wall time proves nothing and
// throttling need not happen; the CPU figures do not depend on it.
func TestCPUUnderQuota(t *testing.T) {
	g := testParent(t)
	out := filepath.Join(t.TempDir(), "spin")
	r := runJob(t, runSpec{argv: []string{"sh", "-c", `"$0" & "$0" & wait`, os.Args[0]}, env: spinEnv(out, 600*time.Millisecond), parent: g.Path, cpuLimit: 0.5})
	if r.Err != "" {
		t.Fatal(r.Err)
	}
	tot := r.Totals
	if r.LimitCores != 0.5 {
		t.Errorf("CPU limit %v cores while the job ran, want 0.5", r.LimitCores)
	}
	self, n := readNs(t, out)
	if n != 2 {
		t.Fatalf("%d spinners reported, want 2", n)
	}
	total := time.Duration(known(t, "CPU.Total", tot.CPU.Total))
	within(t, "CPU spinners under a 0.5-CPU quota: CPU seconds vs rusage of the waited-for tree", total.Seconds(), (tot.Tree.User + tot.Tree.System).Seconds(), 0.05)
	ratio(t, "CPU spinners under a 0.5-CPU quota: CPU seconds vs the spinners' own getrusage (before their exit)", total, self)
	within(t, "CPU spinners: user+system seconds vs total", (known(t, "CPU.User", tot.CPU.User)+known(t, "CPU.System", tot.CPU.System))/1e9, total.Seconds(), 0.05)
	t.Logf("throttled for %v; wall %v", time.Duration(known(t, "CPU.Throttled", tot.CPU.Throttled)), tot.Wall)
	if tot.ExitCode != 0 || tot.Signal != "" || !tot.Metered() {
		t.Errorf("exit %d signal %q metered %v", tot.ExitCode, tot.Signal, tot.Metered())
	}
	if p, ok := tot.PidsPeak.Get(); !ok || p < 3 {
		t.Errorf("peak pids %v, want at least 3 (the shell and two spinners)", tot.PidsPeak)
	}
	if psiOn() && !tot.Pressure.CPU.Some.Available() {
		t.Errorf("CPU pressure unavailable on a host with the unified hierarchy")
	}
	noJobGroups(t, g)
}

// TestDirectIO runs dd writing 32 MiB to a file with O_DIRECT in 64 KiB
// blocks (and an fsync), then reading it back the same way: 512 writes and
// 512 reads of 64 KiB, which no layer merges or splits. On v1 this needs
// blk-throttle active on the disk (Linux 6.9+), which Start does.
func TestDirectIO(t *testing.T) {
	g := testParent(t)
	dir := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs: no block device to do direct I/O on", dir)
	}
	const blocks, bs = 512, 64 << 10
	f := filepath.Join(dir, "dd.out")
	cmd := exec.Command("sh", "-c", `dd if=/dev/zero of="$0" bs=64k count=512 oflag=direct conv=fsync status=none && dd if="$0" of=/dev/null bs=64k iflag=direct status=none`, f)
	cmd.Stderr = os.Stderr
	tot, err := job.Run(context.Background(), cmd, job.WithParent(g.Path))
	if err != nil {
		t.Fatal(err)
	}
	if tot.ExitCode != 0 {
		t.Fatalf("dd exit %d", tot.ExitCode)
	}
	within(t, "dd O_DIRECT: bytes written", known(t, "IO.WriteBytes", tot.IO.WriteBytes), blocks*bs, 0.05)
	within(t, "dd O_DIRECT: bytes read", known(t, "IO.ReadBytes", tot.IO.ReadBytes), blocks*bs, 0.05)
	within(t, "dd O_DIRECT: write operations", known(t, "IO.WriteOps", tot.IO.WriteOps), blocks, 0.05)
	within(t, "dd O_DIRECT: read operations", known(t, "IO.ReadOps", tot.IO.ReadOps), blocks, 0.05)
	within(t, "dd O_DIRECT: bytes written vs rusage of the tree", known(t, "IO.WriteBytes", tot.IO.WriteBytes), float64(tot.Tree.WriteBytes), 0.05)
	within(t, "dd O_DIRECT: bytes read vs rusage of the tree", known(t, "IO.ReadBytes", tot.IO.ReadBytes), float64(tot.Tree.ReadBytes), 0.05)
	noJobGroups(t, g)
}

// forkBomb waits for "go" on its standard input (it forks nothing
// otherwise), then forks $ARGV[0] children that block until it has tried
// them all, counts the forks that failed with EAGAIN, and prints successes
// and failures.
const forkBomb = `
my $go = <STDIN>;
defined $go && $go eq "go\n" or exit 3;
pipe(my $r, my $w) or die "pipe: $!";
my ($ok, $fail) = (0, 0);
for (1 .. $ARGV[0]) {
	my $pid = fork;
	if (!defined $pid) { $!{EAGAIN} or die "fork: $!"; $fail++; next }
	if ($pid == 0) { close $w; my $x = <$r>; exit 0 }
	$ok++;
}
close $w;
1 while wait != -1;
print "$ok $fail\n";
`

// TestForkBomb runs a bomb of 40 forks under pids.max 16: the group peaks
// at exactly 16 tasks (perl and 15 children), and pids.events counts each
// of the 25 forks the kernel refused, as perl counted them.
//
// An earlier version of this package's tests once escaped its bound on v1
// and filled the machine with processes. So the bomb is armed only once
// its bound is verified in place (boundInPlace): perl starts, and forks
// nothing until the test, having checked that the job's group has pids.max
// 16 and that perl is in that very group in the pids hierarchy, tells it
// to go. Otherwise the test fails and perl exits without forking. A
// context of two minutes bounds the job's life.
func TestForkBomb(t *testing.T) {
	g := testParent(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl (perl-base, in every Debian)")
	}
	const limit, tries, name = 16, 40, "fork-bomb"
	cmd := exec.Command("perl", "-e", forkBomb, strconv.Itoa(tries))
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	arm, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := job.Start(ctx, cmd, job.WithParent(g.Path), job.WithName(name), job.WithPidsLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	if err := boundInPlace(g, name, cmd.Process.Pid, limit); err != nil {
		arm.Close() // perl reads no "go": it exits, having forked nothing
		cmd.Process.Kill()
		j.Wait()
		t.Fatalf("the fork bomb was not armed: %v", err)
	}
	if _, err := io.WriteString(arm, "go\n"); err != nil {
		t.Fatal(err)
	}
	arm.Close()
	tot, err := j.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var ok, fail int
	if _, err := fmt.Sscan(out.String(), &ok, &fail); err != nil || tot.ExitCode != 0 {
		t.Fatalf("perl said %q, exit %d: %v", out.String(), tot.ExitCode, err)
	}
	if ok != limit-1 || fail != tries-(limit-1) {
		t.Errorf("perl forked %d and failed %d times, want %d and %d", ok, fail, limit-1, tries-(limit-1))
	}
	within(t, "fork bomb under pids.max 16: peak pids", known(t, "PidsPeak", tot.PidsPeak), limit, 0.05)
	within(t, "fork bomb under pids.max 16: fork failures (pids.events max) vs perl's count", known(t, "ForkFailures", tot.ForkFailures), float64(fail), 0.05)
	if tot.PidsPeak.V != limit || tot.ForkFailures.V != uint64(fail) {
		t.Errorf("peak pids %v, fork failures %v: want exactly %d and %d", tot.PidsPeak, tot.ForkFailures, limit, fail)
	}
	noJobGroups(t, g)
}

// boundInPlace checks, from the kernel's files, that the job's group name
// under g has pids.max limit and that process pid is in it in the pids
// hierarchy (on v2, the unified one): a process that is not, or a group
// without the limit, would let a fork bomb run unbounded.
func boundInPlace(g *cgtest.Group, name string, pid int, limit int) error {
	dir := filepath.Join(g.Dir("pids"), name)
	b, err := os.ReadFile(filepath.Join(dir, "pids.max"))
	if err != nil {
		return fmt.Errorf("the job's group has no pids.max: %w", err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(limit) {
		return fmt.Errorf("%s/pids.max is %q, want %d", dir, got, limit)
	}
	b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return err
	}
	want := g.Path + "/" + name
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		pidsLine := g.Version == 2 && f[0] == "0" && f[1] == ""
		if g.Version == 1 {
			for _, c := range strings.Split(f[1], ",") {
				pidsLine = pidsLine || c == "pids"
			}
		}
		if pidsLine {
			if f[2] != want {
				return fmt.Errorf("process %d is in %q in the pids hierarchy, not in the job's group %q", pid, f[2], want)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "pids.current")); err != nil || strings.TrimSpace(string(b)) == "0" {
				return fmt.Errorf("the job's group counts no task (pids.current %q, %v)", b, err)
			}
			return nil
		}
	}
	return fmt.Errorf("process %d has no pids hierarchy in /proc/%d/cgroup:\n%s", pid, pid, b)
}

// TestOOMKill has perl build a 256 MiB string under a 32 MiB memory limit:
// the OOM killer kills it once, the job ends with SIGKILL, and the group's
// peak is its limit.
func TestOOMKill(t *testing.T) {
	g := testParent(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl (perl-base, in every Debian)")
	}
	if b, _ := os.ReadFile("/proc/swaps"); strings.Count(string(b), "\n") > 1 {
		t.Skip("swap is on: the job would swap rather than be killed")
	}
	const limit = 32 << 20
	cmd := exec.Command("perl", "-e", `my $x = "x" x (256 << 20); print length($x), "\n"`)
	tot, err := job.Run(context.Background(), cmd, job.WithParent(g.Path), job.WithMemoryLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	if tot.Signal != "SIGKILL" || tot.ExitCode != -1 {
		t.Errorf("exit %d signal %q, want SIGKILL", tot.ExitCode, tot.Signal)
	}
	within(t, "allocation past memory.max 32 MiB: OOM kills", known(t, "OOMKills", tot.OOMKills), 1, 0.05)
	within(t, "allocation past memory.max 32 MiB: peak memory", known(t, "MemoryPeak", tot.MemoryPeak), limit, 0.05)
	if tot.OOMKills.V != 1 {
		t.Errorf("OOM kills %v, want exactly 1", tot.OOMKills)
	}
	noJobGroups(t, g)
}

// TestDaemonisedDescendant starts a shell that puts a spinner in its own
// session and exits at once: Wait waits for the spinner too, and its CPU is
// in the totals though the shell never waited for it (the rusage of the
// waited-for tree does not have it). The independent figure is the
// rusage of every process the job ran, the spinner reaped by the run
// process, a child subreaper.
func TestDaemonisedDescendant(t *testing.T) {
	g := testParent(t)
	out := filepath.Join(t.TempDir(), "spin")
	r := runJob(t, runSpec{argv: []string{"sh", "-c", `setsid "$0" </dev/null >/dev/null 2>&1 & exit 0`, os.Args[0]}, env: spinEnv(out, 400*time.Millisecond), parent: g.Path})
	if r.Err != "" {
		t.Fatal(r.Err)
	}
	tot := r.Totals
	self, n := readNs(t, out)
	if n != 1 {
		t.Fatalf("%d spinners reported, want 1", n)
	}
	total := time.Duration(known(t, "CPU.Total", tot.CPU.Total))
	within(t, "daemonised spinner: CPU seconds vs rusage of every process of the job", total.Seconds(), r.AllCPU.Seconds(), 0.05)
	ratio(t, "daemonised spinner: CPU seconds vs its own getrusage (before its exit)", total, self)
	if tree := tot.Tree.User + tot.Tree.System; tree+self > r.AllCPU+r.AllCPU/20 {
		t.Errorf("rusage of the waited-for tree %v holds the spinner (%v of %v): the shell did not wait for it", tree, self, r.AllCPU)
	}
	noJobGroups(t, g)
}

// TestKillLeftovers leaves a sleeper behind in its own session: with
// WithKillLeftovers, Wait kills it as soon as the shell exits.
func TestKillLeftovers(t *testing.T) {
	g := testParent(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("sh", "-c", `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >"$0"`, pidFile)
	start := time.Now()
	tot, err := job.Run(context.Background(), cmd, job.WithParent(g.Path), job.WithKillLeftovers())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Wait took %v with a sleeper left behind, want it killed", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The sleeper was reparented to init, which reaps it; it is gone from
	// the group (which Wait removed) at once, from /proc once reaped.
	for i := 0; ; i++ {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if i > 500 {
			t.Fatalf("the sleeper %d still runs: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tot.ExitCode != 0 {
		t.Errorf("exit %d", tot.ExitCode)
	}
	noJobGroups(t, g)
}

// TestContextEndsJob: when the context ends, every process of the job is
// killed, the command first among them, and Wait says why.
func TestContextEndsJob(t *testing.T) {
	g := testParent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cmd := exec.Command("sh", "-c", `sleep 1000 & sleep 1000; wait`)
	tot, err := job.Run(ctx, cmd, job.WithParent(g.Path))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want one matching context.DeadlineExceeded", err)
	}
	if tot == nil || tot.Signal != "SIGKILL" {
		t.Fatalf("totals %+v, want the shell killed", tot)
	}
	noJobGroups(t, g)
}

// TestStartRefuses: what Start must refuse, running nothing and leaving no
// group.
func TestStartRefuses(t *testing.T) {
	g := testParent(t)
	ctx := context.Background()
	for name, c := range map[string]struct {
		cmd  *exec.Cmd
		opts []job.Option
	}{
		"missing command":   {exec.Command("/no/such/command"), nil},
		"traced command":    {&exec.Cmd{Path: "/bin/true", SysProcAttr: &syscall.SysProcAttr{Ptrace: true}}, nil},
		"bad parent":        {exec.Command("true"), []job.Option{job.WithParent("relative")}},
		"bad name":          {exec.Command("true"), []job.Option{job.WithName("a/b")}},
		"bad cpu limit":     {exec.Command("true"), []job.Option{job.WithCPULimit(0)}},
		"bad memory limit":  {exec.Command("true"), []job.Option{job.WithMemoryLimit(1)}},
		"bad pids limit":    {exec.Command("true"), []job.Option{job.WithPidsLimit(0)}},
		"limit, no group":   {exec.Command("true"), []job.Option{job.WithParent(g.Path + "/no-such-parent"), job.WithPidsLimit(5)}},
		"nil logger":        {exec.Command("true"), []job.Option{job.WithLogger(nil)}},
		"group name in use": {exec.Command("true"), []job.Option{job.WithName("taken")}},
	} {
		t.Run(name, func(t *testing.T) {
			opts := append([]job.Option{job.WithParent(g.Path)}, c.opts...)
			if name == "group name in use" {
				for _, d := range g.Dirs {
					if err := os.Mkdir(filepath.Join(d, "taken"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			j, err := job.Start(ctx, c.cmd, opts...)
			if err == nil {
				j.Wait()
				t.Fatal("Start succeeded")
			}
			t.Logf("%v", err)
			if name == "group name in use" {
				if !errors.Is(err, os.ErrExist) {
					t.Errorf("error %v, want one matching os.ErrExist", err)
				}
				for _, d := range g.Dirs {
					if err := os.Remove(filepath.Join(d, "taken")); err != nil {
						t.Errorf("the group in use: %v", err)
					}
				}
			}
			if c.cmd.Process != nil {
				t.Errorf("the command was started")
			}
			noJobGroups(t, g)
		})
	}
}

// psiOn says whether this host has pressure files in the unified hierarchy
// (v2, or hybrid) with PSI on.
func psiOn() bool {
	_, unified, err := cgtest.Mounts()
	if err != nil || unified == "" {
		return false
	}
	_, err = os.ReadFile(filepath.Join(unified, "cpu.pressure"))
	return err == nil
}

// TestLimitNotPlaced: on v1 the command is moved into its group in each
// hierarchy after its exec; a move that fails in the hierarchy of a limit
// asked for would let it run unbounded (a fork bomb past its pids.max).
// Start must then kill it before its first instruction and fail, and leave
// no group. A failing move can not be caused for real: a test hook
// (WithPlaceFault) fails the pids hierarchy's. Without a limit the same
// fault leaves the job running, its figures there said missing.
func TestLimitNotPlaced(t *testing.T) {
	g := testParent(t)
	if g.Version == 2 {
		t.Skip("cgroup v2 creates the command in its group (CLONE_INTO_CGROUP): there is no move to fail")
	}
	pidsProcs := filepath.Join(g.Dir("pids"), "limited", "cgroup.procs")
	fault := job.WithPlaceFault(func(procs string) error {
		if procs == pidsProcs {
			return syscall.EIO
		}
		return nil
	})
	mark := filepath.Join(t.TempDir(), "ran")
	cmd := exec.Command("sh", "-c", `touch "$0"`, mark)
	j, err := job.Start(context.Background(), cmd, job.WithParent(g.Path), job.WithName("limited"), job.WithPidsLimit(16), fault)
	if err == nil {
		j.Wait()
		t.Fatal("Start succeeded with the pids limit's hierarchy not joined")
	}
	t.Logf("%v", err)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "pids limit") {
		t.Errorf("error %v: want one that names the pids limit and matches the cause", err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the command ran")
	}
	if st := cmd.ProcessState; st == nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the command was not killed and reaped: %v", st)
	}
	noJobGroups(t, g)

	// No limit in that hierarchy: it runs, and says what is missing.
	pidsProcs = filepath.Join(g.Dir("pids"), "unlimited", "cgroup.procs")
	cmd = exec.Command("sh", "-c", `touch "$0"`, mark)
	tot, err := job.Run(context.Background(), cmd, job.WithParent(g.Path), job.WithName("unlimited"), job.WithMemoryLimit(64<<20), fault)
	var missing *job.MissingError
	if !errors.As(err, &missing) || !errors.Is(err, syscall.EIO) || tot == nil || tot.ExitCode != 0 {
		t.Errorf("totals %+v, error %v: want the job run, and a *MissingError matching the cause", tot, err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the command did not run: %v", err)
	}
	noJobGroups(t, g)
}
