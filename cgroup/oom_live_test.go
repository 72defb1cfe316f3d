package cgroup_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// The OOM tests kill with dd, which allocates its block size: bs=64M in a
// group limited to 32 MiB (no swap on the test machines: with swap the
// limit would swap rather than kill).
const (
	oomLimit = 32 << 20
	oomHog   = "dd if=/dev/zero of=/dev/null bs=64M count=1"
)

// oomGroup makes a group limited to oomLimit of memory (v1 or v2).
func oomGroup(t *testing.T) *cgtest.Group {
	g := cgtest.New(t, "memory")
	if g.Version == 2 {
		g.Write("", "memory.max", strconv.Itoa(oomLimit))
		g.Write("", "memory.swap.max", "0")
	} else {
		g.Write("memory", "memory.limit_in_bytes", strconv.Itoa(oomLimit))
	}
	return g
}

// kernelOOMKills reads the group's OOM kill count from its file directly.
func kernelOOMKills(t *testing.T, g *cgtest.Group) uint64 {
	t.Helper()
	file := "memory.events"
	if g.Version == 1 {
		file = "memory.oom_control"
	}
	v, ok := kernelKey(t, g, "memory", file, "oom_kill")
	if !ok {
		t.Fatalf("no %s", file)
	}
	return v
}

// oomRecorder collects an OOMWatcher's reports.
type oomRecorder struct {
	mu      sync.Mutex
	reports []cgroup.OOMKill
	changed chan struct{}
}

func newOOMRecorder() *oomRecorder { return &oomRecorder{changed: make(chan struct{}, 1)} }

func (r *oomRecorder) handle(k cgroup.OOMKill) {
	r.mu.Lock()
	r.reports = append(r.reports, k)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// kills sums the kills reported for g; errs counts reports with Err.
func (r *oomRecorder) kills(g *cgroup.Group) (kills uint64, reports, errs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.reports {
		if k.Group != g {
			continue
		}
		if k.Err != nil {
			errs++
			continue
		}
		kills += k.Kills
		reports++
	}
	return kills, reports, errs
}

// wait waits until g's reported kills reach want, and fails after timeout.
func (r *oomRecorder) wait(t *testing.T, g *cgroup.Group, want uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if k, _, _ := r.kills(g); k >= want {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			k, n, errs := r.kills(g)
			t.Fatalf("after %v: %d kills reported in %d reports (%d errors), want %d", timeout, k, n, errs, want)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestLiveOOMWatch: a real OOM kill of a process that is not the group's
// first (the group lives on) is reported once, as the kernel counts it,
// and nothing more is reported; Unwatch and Close release every
// descriptor the watcher took. It runs on v1 (eventfd through
// cgroup.event_control) and, in scripts/v2lane.sh, on v2 (inotify on
// memory.events).
func TestLiveOOMWatch(t *testing.T) {
	ctx := context.Background()
	g := oomGroup(t)
	g.Shell("exec sleep 600") // the group's first process, which lives on
	fs := newFS(t)
	fdsBefore := openFDs(t)
	rec := newOOMRecorder()
	w, err := cgroup.NewOOMWatcher(rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	grp, err := fs.Open(ctx, g.Path, cgroup.Memory)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Watch(grp); err != nil {
		t.Fatal(err)
	}
	if err := w.Watch(grp); err != nil || w.Watching() != 1 {
		t.Fatalf("a second Watch: %v, watching %d", err, w.Watching())
	}
	hog := g.Shell(oomHog)
	err = hog.Wait()
	t.Logf("hog: %v", err)
	if kernelOOMKills(t, g) != 1 {
		t.Fatalf("the kernel counts %d OOM kills, want 1 (the hog: %v)", kernelOOMKills(t, g), err)
	}
	rec.wait(t, grp, 1, 10*time.Second)
	time.Sleep(400 * time.Millisecond) // every read again after the notification is done
	if k, n, errs := rec.kills(grp); k != 1 || n != 1 || errs != 0 {
		t.Errorf("%d kills in %d reports (%d errors), want 1 in 1", k, n, errs)
	}
	rec.mu.Lock()
	r := rec.reports[0]
	rec.mu.Unlock()
	if r.Total != 1 || r.Time.IsZero() {
		t.Errorf("report %+v: want Total 1 and a time", r)
	}
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil || s.Memory.Events.OOMKill != (cgroup.Value{V: 1, State: cgroup.Known}) {
		t.Errorf("Stat: %v, OOMKill %v, want 1", err, s.Memory.Events.OOMKill)
	}
	if last, ok := w.Unwatch(grp); ok {
		t.Errorf("Unwatch reported %+v, want nothing left", last)
	}
	if w.Watching() != 0 {
		t.Errorf("watching %d after Unwatch", w.Watching())
	}
	grp.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if n := openFDs(t); n != fdsBefore {
		t.Errorf("%d descriptors open, %d before the test", n, fdsBefore)
	}
}

// TestLiveOOMWatchGroupRemoved: the group's only process is OOM-killed and
// the group removed as soon as it is reaped, as a runtime removes a
// container's group when its init dies. The kill is reported all the same,
// once: read at the notification, before the group went.
func TestLiveOOMWatchGroupRemoved(t *testing.T) {
	ctx := context.Background()
	g := oomGroup(t)
	rec := newOOMRecorder()
	w, err := cgroup.NewOOMWatcher(rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The shell waits until the group is watched, then becomes the hog.
	fifo := t.TempDir() + "/go"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	init := g.Shell("read x <" + fifo + "; exec " + oomHog)
	grp, err := newFS(t).Open(ctx, g.Path, cgroup.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	if err := w.Watch(grp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
	err = init.Wait()
	if ws, ok := init.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the group's process ended with %v, want killed by the OOM killer", err)
	}
	// Removed at once: the group is empty. Its parent stays, as a
	// runtime's does (a container's slice or pod).
	removeLeaf(t, g)
	rec.wait(t, grp, 1, 10*time.Second)
	time.Sleep(400 * time.Millisecond)
	if k, n, errs := rec.kills(grp); k != 1 || n != 1 || errs != 0 {
		t.Errorf("%d kills in %d reports (%d errors), want 1 in 1", k, n, errs)
	}
	if last, ok := w.Unwatch(grp); ok {
		t.Errorf("Unwatch of a removed group reported %+v", last)
	}
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("Stat of the removed group: %v, want ErrNotExist", err)
	}
}

// TestLiveOOMWatchUnwatchReads: a kill between two notifications' reads is
// not lost when the group is unwatched first: Unwatch reads the count a
// last time and returns the kill, which the handler then never sees.
func TestLiveOOMWatchUnwatchReads(t *testing.T) {
	ctx := context.Background()
	g := oomGroup(t)
	g.Shell("exec sleep 600")
	var mu sync.Mutex
	var seen []cgroup.OOMKill
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	w, err := cgroup.NewOOMWatcher(func(k cgroup.OOMKill) {
		mu.Lock()
		seen = append(seen, k)
		mu.Unlock()
		entered <- struct{}{}
		<-block // hold the goroutine: its reads wait behind this one
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer close(block)
	grp, err := newFS(t).Open(ctx, g.Path, cgroup.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	// A first kill, which the goroutine reads and blocks on reporting.
	if err := w.Watch(grp); err != nil {
		t.Fatal(err)
	}
	_ = g.Shell(oomHog).Wait()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first kill was not reported")
	}
	// A second, which only Unwatch can read now.
	_ = g.Shell(oomHog).Wait()
	if n := kernelOOMKills(t, g); n != 2 {
		t.Fatalf("the kernel counts %d OOM kills, want 2", n)
	}
	last, ok := w.Unwatch(grp)
	mu.Lock()
	got := append([]cgroup.OOMKill(nil), seen...)
	mu.Unlock()
	var sum uint64
	for _, k := range got {
		sum += k.Kills
	}
	if ok {
		sum += last.Kills
	}
	if sum != 2 || !ok || last.Total != 2 {
		t.Errorf("handler %+v, Unwatch %+v %v: want the 2 kills once each, the last from Unwatch with Total 2", got, last, ok)
	}
}

// TestLiveV2OOMGroupKill: with memory.oom.group set, one OOM kills every
// process of the group (a sleep, the hog's shell and the hog, at least):
// oom_group_kill counts 1, oom_kill every process, and the watcher reports
// every kill. Stat's Events and EventsLocal are the kernel's memory.events
// and memory.events.local.
func TestLiveV2OOMGroupKill(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV2(t, "memory")
	g.Write("", "memory.max", strconv.Itoa(oomLimit))
	g.Write("", "memory.swap.max", "0")
	g.Write("", "memory.oom.group", "1")
	g.Shell("exec sleep 600")
	rec := newOOMRecorder()
	w, err := cgroup.NewOOMWatcher(rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	grp, err := newFS(t).Open(ctx, g.Path, cgroup.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	if err := w.Watch(grp); err != nil {
		t.Fatal(err)
	}
	_ = g.Shell(oomHog).Wait()
	rec.wait(t, grp, 3, 10*time.Second)
	time.Sleep(400 * time.Millisecond)
	kills := kernelOOMKills(t, g)
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil && !errors.Is(err, cgroup.ErrNotExist) {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		got   cgroup.Value
		file  string
		key   string
		equal uint64
	}{
		{"Events.OOMKill", s.Memory.Events.OOMKill, "memory.events", "oom_kill", kills},
		{"Events.OOMGroupKill", s.Memory.Events.OOMGroupKill, "memory.events", "oom_group_kill", 1},
		{"EventsLocal.OOMKill", s.Memory.EventsLocal.OOMKill, "memory.events.local", "oom_kill", kills},
		{"EventsLocal.OOMGroupKill", s.Memory.EventsLocal.OOMGroupKill, "memory.events.local", "oom_group_kill", 1},
		{"Events.OOM", s.Memory.Events.OOM, "memory.events", "oom", 0},
		{"Events.Max", s.Memory.Events.Max, "memory.events", "max", 0},
	} {
		v, has := kernelKey(t, g, "", c.file, c.key)
		wantKernel(t, c.name, c.got, v, has)
		if has && c.equal > 0 && v != c.equal {
			t.Errorf("%s %s = %d, want %d", c.file, c.key, v, c.equal)
		}
	}
	if k, _, _ := rec.kills(grp); k != kills || k < 3 {
		t.Errorf("%d kills reported, the kernel counts %d: want the same, at least 3", k, kills)
	}
}

// TestLiveOOMWatchGoneNoKill (v2): a notification the watcher could not
// read before its group was removed is a possibly uncounted kill only when
// the parent's memory.events (which counts its descendants' events) says
// a kill happened since the group was last read. The watcher's goroutine
// is held in the handler (a real kill in another group) while group "quiet"
// gets memory events that are no kill (page cache reclaimed at memory.max) and is
// removed, and group "lost" gets a real kill and is removed: once let go,
// the watcher says nothing of quiet (no kill happened there: before, it
// reported an error) and reports lost's kill as possibly uncounted.
func TestLiveOOMWatchGoneNoKill(t *testing.T) {
	ctx := context.Background()
	holder, quiet, lost := oomGroup(t), cgtest.New(t, "memory"), oomGroup(t)
	if holder.Version != 2 {
		t.Skip("cgroup v1 signals an eventfd, read at the removal itself: this is v2's inotify case (the v2 lane runs it)")
	}
	quiet.Write("", "memory.max", strconv.Itoa(4<<20))
	quiet.Write("", "memory.swap.max", "0")
	fifo := func(g *cgtest.Group, then string) (string, *exec.Cmd) {
		p := t.TempDir() + "/go"
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return p, g.Shell("read x <" + p + "; exec " + then)
	}
	holdGo, holdHog := fifo(holder, oomHog)
	// Page cache past memory.max: reclaimed, counted as "max" events, no kill.
	quietGo, quietHog := fifo(quiet, "dd if=/dev/zero of="+t.TempDir()+"/f bs=1M count=16 conv=fsync")
	lostGo, lostHog := fifo(lost, oomHog)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rec := newOOMRecorder()
	w, err := cgroup.NewOOMWatcher(func(k cgroup.OOMKill) {
		once.Do(func() { close(held); <-release })
		rec.handle(k)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	groups := map[string]*cgroup.Group{}
	for name, g := range map[string]*cgtest.Group{"holder": holder, "quiet": quiet, "lost": lost} {
		grp, err := newFS(t).Open(ctx, g.Path, cgroup.Memory)
		if err != nil {
			t.Fatal(err)
		}
		defer grp.Close()
		if err := w.Watch(grp); err != nil {
			t.Fatal(err)
		}
		groups[name] = grp
	}
	run := func(name, p string, c *exec.Cmd, killed bool) {
		t.Helper()
		if err := os.WriteFile(p, []byte("go\n"), 0); err != nil {
			t.Fatal(err)
		}
		err := c.Wait()
		ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
		if killed != (ws.Signal() == syscall.SIGKILL) {
			t.Fatalf("%s's process ended with %v (killed by the OOM killer: want %v)", name, err, killed)
		}
	}
	run("holder", holdGo, holdHog, true)
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("no report of the holder's kill")
	}
	run("quiet", quietGo, quietHog, false)
	if ev := quiet.Read("", "memory.events"); !strings.Contains(ev, "max ") || strings.Contains(ev, "max 0") || !strings.Contains(ev, "oom_kill 0") {
		t.Fatalf("quiet's memory.events: want max events and no kill:\n%s", ev)
	}
	run("lost", lostGo, lostHog, true)
	for _, g := range []*cgtest.Group{quiet, lost} {
		removeLeaf(t, g)
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, _, errs := rec.kills(groups["lost"]); errs > 0 || time.Now().After(deadline) {
			break // lost's report (an error), or a failed test
		}
	}
	time.Sleep(400 * time.Millisecond) // and the settle reads
	if k, n, errs := rec.kills(groups["holder"]); k != 1 || n != 1 || errs != 0 {
		t.Errorf("holder: %d kills in %d reports (%d errors), want 1 in 1", k, n, errs)
	}
	if k, n, errs := rec.kills(groups["quiet"]); n != 0 || errs != 0 {
		t.Errorf("quiet (no kill, removed unread): %d kills in %d reports (%d errors), want no report", k, n, errs)
	}
	if _, _, errs := rec.kills(groups["lost"]); errs != 1 {
		t.Errorf("lost (killed, removed unread): %d error reports, want 1 (a kill that may have gone uncounted)", errs)
	}
}

// removeLeaf removes g's own directories, not its parent, as a runtime
// removes a container's group (cleanup removes the parent).
func removeLeaf(t *testing.T, g *cgtest.Group) {
	t.Helper()
	for _, dir := range g.Dirs {
		var err error
		for i := 0; i < 50; i++ { // a killed task leaves its group asynchronously
			if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("removing %s: %v", dir, err)
		}
	}
}
