package cgroup_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// needUnified skips a test whose group must also be in the unified
// hierarchy (a hybrid host's, here) when cgtest made none.
func needUnified(t *testing.T, g *cgtest.Group) {
	t.Helper()
	if _, ok := g.Dirs[""]; !ok {
		t.Skip("needs a unified hierarchy (hybrid or v2 host)")
	}
}

// TestLivePressureOff switches a live group's pressure accounting off
// (cgroup.pressure 0) while a Group holds its pressure files open. The
// kernel then answers ENODEV on those descriptors, as it does for a removed
// group; Stat must tell the group is alive, leave pressure Unavailable and
// read the rest with no error (it failed with ErrNotExist, and a Collector
// dropped the container). A Group opened while pressure is off reads the
// rest; once pressure is on again, RefreshLimits has either Group pick the
// files up.
func TestLivePressureOff(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, v1Controllers...)
	needUnified(t, g)
	if _, err := os.Stat(filepath.Join(g.Dirs[""], "cgroup.pressure")); err != nil {
		t.Skipf("no cgroup.pressure on this kernel (Linux 6.1+ with PSI): %v", err)
	}
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	fs := newFS(t)
	open := func() *cgroup.Group {
		t.Helper()
		grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { grp.Close() })
		return grp
	}
	// The rest is read: memory usage and pids as the kernel has them.
	rest := func(name string, s *cgroup.Stats) {
		t.Helper()
		u, err := strconv.ParseUint(strings.TrimSpace(g.Read("memory", "memory.usage_in_bytes")), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := s.Memory.Usage.Get(); !ok || v+1<<20 < u || v > u+1<<20 {
			t.Errorf("%s: memory usage %v, kernel %d", name, s.Memory.Usage, u)
		}
		if p := strings.TrimSpace(g.Read("pids", "pids.current")); s.Pids.Current.String() != p || !s.CPU.Usage.Available() {
			t.Errorf("%s: pids %v (kernel %s), cpu usage %v", name, s.Pids.Current, p, s.CPU.Usage)
		}
	}
	pressure := func(s *cgroup.Stats) bool {
		return s.Pressure.CPU.Some.Available() && s.Pressure.Memory.Some.Available() && s.Pressure.IO.Some.Available()
	}
	none := func(s *cgroup.Stats) bool {
		return !s.Pressure.CPU.Some.Available() && !s.Pressure.Memory.Some.Available() && !s.Pressure.IO.Some.Available()
	}

	first := open()
	var s cgroup.Stats
	if err := first.Stat(ctx, &s); err != nil || !pressure(&s) {
		t.Fatalf("before: %v, pressure %+v", err, s.Pressure)
	}
	g.Write("", "cgroup.pressure", "0")
	t.Cleanup(func() { os.WriteFile(filepath.Join(g.Dirs[""], "cgroup.pressure"), []byte("1"), 0) })
	for i := 0; i < 2; i++ { // the second Stat does not look at the dropped files
		if err := first.Stat(ctx, &s); err != nil {
			t.Fatalf("Stat %d of a live group with cgroup.pressure 0: %v", i, err)
		}
		if !none(&s) {
			t.Errorf("pressure with cgroup.pressure 0: %+v", s.Pressure)
		}
		rest("pressure off", &s)
	}
	second := open()
	if err := second.Stat(ctx, &s); err != nil || !none(&s) {
		t.Errorf("opened with pressure off: %v, pressure %+v", err, s.Pressure)
	}
	rest("opened with pressure off", &s)

	g.Write("", "cgroup.pressure", "1")
	for _, grp := range []*cgroup.Group{first, second} {
		if err := grp.Stat(ctx, &s); err != nil || !none(&s) {
			t.Errorf("pressure on, before RefreshLimits: %v, pressure %+v (want still none)", err, s.Pressure)
		}
		grp.RefreshLimits()
		if err := grp.Stat(ctx, &s); err != nil || !pressure(&s) {
			t.Errorf("pressure on, after RefreshLimits: %v, pressure %+v", err, s.Pressure)
		}
		rest("pressure on again", &s)
	}
}

// TestLiveRecreatedGroup: a Group's ID is its first directory's inode, the
// same for two Groups of one group and another for a group removed and
// made again at the same path. A Group of the removed group reports it
// removed (ErrNotExist) even though a directory exists at its path again:
// it never reads the new group's files.
func TestLiveRecreatedGroup(t *testing.T) {
	ctx := context.Background()
	g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
	fs := newFS(t)
	open := func() *cgroup.Group {
		t.Helper()
		grp, err := fs.Open(ctx, g.Path, cgroup.All)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { grp.Close() })
		return grp
	}
	a, b := open(), open()
	var st syscall.Stat_t
	if err := syscall.Stat(g.Dir("cpu"), &st); err != nil {
		t.Fatal(err)
	}
	if a.ID() != st.Ino || b.ID() != a.ID() {
		t.Errorf("IDs %d %d, want both the (cpu) directory's inode %d", a.ID(), b.ID(), st.Ino)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range g.Dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if g.Version == 2 { // the new parent enables pids for it again
			if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"), []byte("+pids"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	g.Write("pids", "pids.max", "7")
	c := open()
	if c.ID() == a.ID() || c.ID() == 0 {
		t.Errorf("ID of the group made again: %d, before %d", c.ID(), a.ID())
	}
	var s cgroup.Stats
	if err := a.Stat(ctx, &s); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("Stat of the removed group: %v, want ErrNotExist", err)
	}
	if err := c.Stat(ctx, &s); err != nil || s.Pids.Limit.String() != "7" {
		t.Errorf("Stat of the new group: %v, pids limit %v", err, s.Pids.Limit)
	}
}

// TestLiveDeletedGroup: a process that exited after its unified group was
// removed (a zombie there) has a /proc/<pid>/cgroup line ending in
// " (deleted)": PIDPaths reports it gone (it returned the path with the
// suffix). A live process in a group whose name ends so keeps that name.
func TestLiveDeletedGroup(t *testing.T) {
	ctx := context.Background()
	g := cgtest.New(t, "")
	needUnified(t, g)
	fs := newFS(t)

	// A live process in ".../c (deleted)".
	named := filepath.Join(g.Dirs[""], "c (deleted)")
	if err := os.Mkdir(named, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmdirRetry(t, named) })
	live := cgtest.Start(t, nil, cgtest.Spec{})
	if err := os.WriteFile(filepath.Join(named, "cgroup.procs"), []byte(strconv.Itoa(live.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	p, err := fs.PIDPaths(ctx, live.Pid)
	if err != nil || p[""] != g.Path+"/c (deleted)" {
		t.Errorf("live process in %q: %v, %v", named, p, err)
	}
	live.Stop()
	rmdirRetry(t, named)

	// A zombie whose group was removed.
	w := cgtest.Start(t, g, cgtest.Spec{ExitAfter: true})
	waitZombie(t, w.Pid)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", w.Pid))
	if err != nil || !strings.Contains(string(b), "0::"+g.Path+" (deleted)\n") {
		t.Fatalf("/proc/%d/cgroup = %q, %v; want the unified line marked (deleted)", w.Pid, b, err)
	}
	if p, err := fs.PIDPaths(ctx, w.Pid); !errors.Is(err, cgroup.ErrNotExist) || !strings.Contains(fmt.Sprint(err), g.Path+" was removed") {
		t.Errorf("PIDPaths of a process whose group was removed: %v, %v; want ErrNotExist", p, err)
	}
	w.Wait()
}

// waitZombie waits until process pid has exited and not been reaped.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		waitTick()
	}
	t.Fatalf("process %d did not become a zombie", pid)
}

// rmdirRetry removes a group directory the test made, once its killed
// processes have left it.
func rmdirRetry(t *testing.T, dir string) {
	var err error
	for i := 0; i < 100; i++ {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		waitTick()
	}
	t.Errorf("rmdir %s: %v", dir, err)
}

// TestLiveV1UserSystem: on v1, User+System is within 1% of Usage for a busy,
// throttled group (three spinners under a 1.5-CPU quota), as cpuacct.stat
// scaled by USER_HZ gives them; cpuacct.usage_all's tick samples, where
// they came from before, strayed by 2% to 10% on such a group, depending on
// load. Each is also
// checked against the kernel's cpuacct.stat read directly.
func TestLiveV1UserSystem(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, "cpu", "cpuacct")
	g.Write("cpu", "cpu.cfs_quota_us", "150000")
	for range 3 {
		cgtest.Start(t, g, cgtest.Spec{SpinCPU: true})
	}
	fs := newFS(t)
	grp, err := fs.Open(ctx, g.Path, cgroup.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s cgroup.Stats
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := grp.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
		// 3 s of CPU: each of user and system is cut to a whole tick
		// (10 ms), at most 20 ms together, under 1%.
		if s.CPU.Usage.V >= 3e9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spinners used only %v ns of CPU in 2 minutes", s.CPU.Usage)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !s.CPU.User.Available() || !s.CPU.System.Available() {
		t.Fatalf("user %v system %v", s.CPU.User, s.CPU.System)
	}
	sum, usage := float64(s.CPU.User.V+s.CPU.System.V), float64(s.CPU.Usage.V)
	if math.Abs(sum-usage) > 0.01*usage {
		t.Errorf("user %v + system %v = %.0f ns, %.2f%% off usage %v", s.CPU.User, s.CPU.System, sum, 100*(sum-usage)/usage, s.CPU.Usage)
	}
	// The kernel's own file, read after the Stat: at least as much.
	var user, system uint64
	if _, err := fmt.Sscanf(g.Read("cpuacct", "cpuacct.stat"), "user %d\nsystem %d\n", &user, &system); err != nil {
		t.Fatal(err)
	}
	if user*10e6 < s.CPU.User.V || system*10e6 < s.CPU.System.V || user*10e6 > s.CPU.User.V+1e9 {
		t.Errorf("cpuacct.stat user %d system %d ticks, ours %v %v ns", user, system, s.CPU.User, s.CPU.System)
	}
	var sampled uint64
	for _, l := range strings.Split(g.Read("cpuacct", "cpuacct.usage_all"), "\n")[1:] {
		var cpu, u, sy uint64
		if n, _ := fmt.Sscan(l, &cpu, &u, &sy); n == 3 {
			sampled += u + sy
		}
	}
	t.Logf("usage %v: user+system %.4fx (cpuacct.stat), %.4fx (cpuacct.usage_all, read later)", s.CPU.Usage, sum/usage, float64(sampled)/usage)
}

// TestLiveV2ControllerOff takes the memory controller out of a live v2
// group's parent's cgroup.subtree_control while a Group holds its memory
// files open: the kernel removes those files from the group (its kept
// descriptors read ENODEV, as a removed group's do), yet the group lives.
// Stat must read the rest with no error and leave memory Unavailable (it
// failed with ErrNotExist); once the controller is back, RefreshLimits has
// the Group open the new files. Pure v2 only (scripts/v2lane.sh's guests).
func TestLiveV2ControllerOff(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "cpu", "memory", "pids")
	parent := filepath.Join(filepath.Dir(g.Dirs[""]), "cgroup.subtree_control")
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	fs := newFS(t)
	grp, err := fs.OpenPID(ctx, w.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil || !s.Memory.Usage.Available() || !s.Memory.Anon.Available() {
		t.Fatalf("before: %v, memory %v anon %v", err, s.Memory.Usage, s.Memory.Anon)
	}
	if err := os.WriteFile(parent, []byte("-memory"), 0); err != nil {
		t.Fatal(err)
	}
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatalf("Stat of a live group whose memory controller was taken away: %v", err)
	}
	if s.Memory.Usage.Available() || s.Memory.Anon.Available() || s.Memory.Limit.Available() {
		t.Errorf("memory without the controller: usage %v anon %v limit %v", s.Memory.Usage, s.Memory.Anon, s.Memory.Limit)
	}
	if p := strings.TrimSpace(g.Read("", "pids.current")); s.Pids.Current.String() != p || !s.CPU.Usage.Available() {
		t.Errorf("pids %v (kernel %s), cpu usage %v", s.Pids.Current, p, s.CPU.Usage)
	}
	if err := os.WriteFile(parent, []byte("+memory"), 0); err != nil {
		t.Fatal(err)
	}
	grp.RefreshLimits()
	if err := grp.Stat(ctx, &s); err != nil || !s.Memory.Usage.Available() || !s.Memory.Anon.Available() || s.Memory.Limit != (cgroup.Value{State: cgroup.Unlimited}) {
		t.Errorf("controller back, after RefreshLimits: %v, usage %v anon %v limit %v", err, s.Memory.Usage, s.Memory.Anon, s.Memory.Limit)
	}
}
