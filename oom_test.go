package metricsd_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime"
)

// The OOM tests kill with dd, which allocates its block size: bs=64M in a
// group limited to 32 MiB (no swap on the test machines: with swap the
// limit would swap rather than kill).
const (
	oomLimit = 32 << 20
	oomHog   = "dd if=/dev/zero of=/dev/null bs=64M count=1"
)

// oomGroup makes a group with the memory controller limited to oomLimit
// (v1 or v2) and the others a container has.
func oomGroup(t *testing.T) *cgtest.Group {
	g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
	if g.Version == 2 {
		g.Write("", "memory.max", strconv.Itoa(oomLimit))
		g.Write("", "memory.swap.max", "0")
	} else {
		g.Write("memory", "memory.limit_in_bytes", strconv.Itoa(oomLimit))
	}
	return g
}

// anonFDs counts this process's descriptors on anonymous inodes of a kind
// ("[eventfd]", "inotify").
func anonFDs(kind string) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "anon_inode:") && strings.Contains(l, kind) {
			n++
		}
	}
	return n
}

// TestRunOOMKills: real OOM kills in two containers of the test's own
// (real cgroups limited to 32 MiB), under Run, with every sink. In
// "survivor" a process that is not its init is killed: the container lives
// on. In "victim" the init itself is killed, and its group removed at
// once, before any snapshot could read it, as a runtime does; then the
// runtime says it stopped. Each kill is counted exactly once, with the
// container's name, in every sink: as the counter (the victim's after it
// has gone, through Snapshot.Departed, in one snapshot only) and, in the
// sinks that take events, as one container_oom_kill event. The victim's
// watch is released when it leaves (its eventfd on v1), and Close releases
// the rest.
func TestRunOOMKills(t *testing.T) {
	cgtest.NeedRoot(t)
	eventfds := anonFDs("[eventfd]")
	survivor, victim := oomGroup(t), oomGroup(t)
	survivor.Shell("exec sleep 600")
	fifo := t.TempDir() + "/go"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	victimInit := victim.Shell("read x <" + fifo + "; exec " + oomHog)
	pidOf := func(g *cgtest.Group) int {
		var pid int
		until(t, "a process in "+g.Path, func() bool {
			pid, _ = strconv.Atoi(strings.Fields(g.Read("memory", "cgroup.procs") + " 0")[0])
			return pid > 0
		})
		return pid
	}
	sc := runtime.Container{ID: "id-survivor", Name: "survivor", Runtime: "test", PID: pidOf(survivor), CgroupPath: survivor.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	vc := runtime.Container{ID: "id-victim", Name: "victim", Runtime: "test", PID: pidOf(victim), CgroupPath: victim.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	d := &eventing{ch: make(chan runtime.Event)}
	d.set(sc, vc)

	sinks := newOOMSinks(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(100*time.Millisecond),
		metricsd.WithSinks(sinks.sinks...), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	until(t, "both containers in a snapshot", func() bool { return sinks.rec.hasSeen("survivor") && sinks.rec.hasSeen("victim") })
	if n := metricsd.OOMWatching(col); n != 2 {
		t.Fatalf("watching %d groups, want 2", n)
	}

	// A process of the survivor, not its init.
	hog := survivor.Shell(oomHog)
	t.Logf("survivor's hog: %v", hog.Wait())
	// The victim's init, its group removed at once.
	if err := os.WriteFile(fifo, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
	err = victimInit.Wait()
	if ws, ok := victimInit.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the victim's init ended with %v, want killed by the OOM killer", err)
	}
	// The group goes before any snapshot (100 ms apart) could read it,
	// but only once the watcher has read the kill: removed at once, the
	// group can beat a watcher starved of CPU (the full suite on two
	// cores did, twice), which then reports a kill that may have gone
	// uncounted instead (cgroup.OOMKill.Err). A runtime removes the group
	// tens of milliseconds after its init died.
	until(t, "the watcher's count of the victim's kill", func() bool { return metricsd.OOMKillsOf(col, vc.ID) == 1 })
	if err := victim.Remove(); err != nil {
		t.Fatal(err)
	}
	d.set(sc)
	d.ch <- runtime.Event{Type: runtime.EventStopped, Container: vc}
	until(t, "the victim's departure in a snapshot", func() bool { _, n := sinks.rec.departedCount("victim"); return n > 0 })
	if n := metricsd.OOMWatching(col); n != 1 {
		t.Errorf("watching %d groups once the victim left, want 1", n)
	}
	if survivor.Version == 1 {
		if n := anonFDs("[eventfd]") - eventfds; n != 2 {
			t.Errorf("%d eventfds open once the victim left, want 2 (the survivor's and the watcher's own)", n)
		}
	}
	time.Sleep(500 * time.Millisecond) // a few snapshots more
	sinks.scrape(t)                    // the Prometheus page, before Run closes the sink
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if _, n := sinks.rec.departedCount("victim"); n != 1 {
		t.Errorf("the victim was in %d snapshots' Departed, want 1", n)
	}
	if _, n := sinks.rec.departedCount("survivor"); n != 0 {
		t.Errorf("the survivor (alive) was in %d snapshots' Departed", n)
	}
	for _, name := range []string{"survivor", "victim"} {
		for _, c := range sinks.check(t, name, 1) {
			t.Logf("%s: %v", name, c)
		}
	}
	for _, s := range []metricsd.Stage{metricsd.StageOpen, metricsd.StageCgroup, metricsd.StageSink} {
		if n := col.Errors(s); n != 0 {
			t.Errorf("%d %v errors", n, s)
		}
	}
	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	if n := anonFDs("[eventfd]"); n != eventfds {
		t.Errorf("%d eventfds open after Close, %d before", n, eventfds)
	}
	if n := anonFDs("inotify"); n != 0 {
		t.Errorf("%d inotify descriptors open after Close", n)
	}
	if k := openFDs(t, survivor.Path+"/"); k != 0 {
		t.Errorf("%d descriptors left on %s after Close", k, survivor.Path)
	}
}

// TestOOMWatchReleased: containers that come and go (started and removed
// by events, 3 rounds of 8) leave nothing watched and no descriptor behind
// while the Collector runs on: each group's watch (v1: an eventfd; v2: an
// inotify watch) goes with the container, not at Close.
func TestOOMWatchReleased(t *testing.T) {
	cgtest.NeedRoot(t)
	var cs []runtime.Container
	var paths []string
	v1 := false
	for i := range 8 {
		g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
		v1 = g.Version == 1
		w := cgtest.Start(t, g, cgtest.Spec{})
		name := "c" + strconv.Itoa(i)
		cs = append(cs, runtime.Container{ID: name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}})
		paths = append(paths, g.Path)
	}
	d := &eventing{ch: make(chan runtime.Event)}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(20*time.Millisecond),
		metricsd.WithSinks(rec), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	until(t, "the first snapshot", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.snaps) > 0 })
	time.Sleep(100 * time.Millisecond)
	base, baseEvent := countFDs(), anonFDs("[eventfd]")
	for round := range 3 {
		for _, c := range cs {
			d.ch <- runtime.Event{Type: runtime.EventStarted, Container: c}
		}
		until(t, "every container watched", func() bool { return metricsd.OOMWatching(col) == len(cs) })
		if v1 {
			if n := anonFDs("[eventfd]") - baseEvent; n != len(cs) {
				t.Errorf("round %d: %d eventfds for %d containers", round, n, len(cs))
			}
		}
		for _, c := range cs {
			d.ch <- runtime.Event{Type: runtime.EventRemoved, Container: c}
		}
		until(t, "no container tracked", func() bool { return col.Tracked() == 0 })
		if n := metricsd.OOMWatching(col); n != 0 {
			t.Errorf("round %d: %d groups watched with no container", round, n)
		}
		for _, p := range paths {
			if k := openFDs(t, p+"/"); k != 0 {
				t.Errorf("round %d: %d descriptors left on %s", round, k, p)
			}
		}
		if n := anonFDs("[eventfd]"); n != baseEvent {
			t.Errorf("round %d: %d eventfds, %d before", round, n, baseEvent)
		}
		if n := countFDs(); n > base {
			t.Errorf("round %d: %d descriptors open, %d with no container", round, n, base)
		}
	}
	cancel()
	<-done
}
