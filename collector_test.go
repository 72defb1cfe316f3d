package metricsd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

func TestMain(m *testing.M) {
	cgtest.Main()
	os.Exit(m.Run())
}

// listed is a Discoverer over containers the test made itself (real cgroups,
// real processes, a real network namespace): the input, not a stand-in for
// the code under test.
type listed struct {
	mu sync.Mutex
	cs []runtime.Container
}

func (l *listed) Name() string { return "test" }
func (l *listed) List(ctx context.Context) ([]runtime.Container, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]runtime.Container(nil), l.cs...), nil
}
func (l *listed) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	ch := make(chan runtime.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}
func (l *listed) Close() error { return nil }
func (l *listed) set(cs ...runtime.Container) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cs = cs
}

func randName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// netnsAdd makes a network namespace and returns its name.
func netnsAdd(t *testing.T) string {
	t.Helper()
	name := randName("mdtest-")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	return name
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// peerExists reports whether link is still in namespace ns.
func peerExists(ns, link string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", link).Run() == nil
}

// openFDs counts this process's descriptors whose link contains s.
func openFDs(t *testing.T, s string) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestCollector tracks three containers made by the test: two share one
// network namespace (one handle, read once), one is in the host's. It checks
// the snapshot against what the test made, drops a container whose cgroup
// vanished mid-scrape without failing the snapshot, and closes every handle
// when containers go.
func TestCollector(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	ctx := context.Background()
	// a and b live in namespace A. A veth pair joins A to B, so that B's
	// end shows whether A still exists after "ip netns del A": a namespace
	// lives while a descriptor pins it.
	nsA, nsB := netnsAdd(t), netnsAdd(t)
	vA, vB := randName("mdv"), randName("mdv")
	ip(t, "-n", nsA, "link", "add", vA, "type", "veth", "peer", "name", vB, "netns", nsB)
	var cs []runtime.Container
	var groups []*cgtest.Group
	var loads []*cgtest.Workload
	for i, name := range []string{"a", "b", "c"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
		w := cgtest.Start(t, g, cgtest.Spec{MemBytes: (i + 1) * 8 << 20})
		c := runtime.Container{ID: "id-" + name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path,
			State: runtime.StateRunning, Labels: map[string]string{"keep": "yes", "drop": "no"}}
		if name == "c" {
			c.NetNS.Host = true
		} else {
			c.NetNS.Path = "/run/netns/" + nsA
		}
		cs = append(cs, c)
		groups = append(groups, g)
		loads = append(loads, w)
	}
	d := &listed{}
	d.set(cs...)
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithLabels("keep"), metricsd.WithReconcileEvery(1))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Containers) != 3 {
		t.Fatalf("%d containers in the snapshot, want 3", len(snap.Containers))
	}
	for i, s := range snap.Containers {
		if s.Container.Name != cs[i].Name {
			t.Fatalf("container %d is %q, want %q (sorted by name)", i, s.Container.Name, cs[i].Name)
		}
		if u, ok := s.Cgroup.CPU.Usage.Get(); !ok || u == 0 {
			t.Errorf("%s: cpu usage %v", s.Container.Name, s.Cgroup.CPU.Usage)
		}
		if m, _ := s.Cgroup.Memory.Usage.Get(); m < uint64(i+1)*8<<20 {
			t.Errorf("%s: memory usage %d, want >= %d", s.Container.Name, m, (i+1)*8<<20)
		}
		if len(s.Container.Labels) != 1 || s.Container.Labels["keep"] != "yes" {
			t.Errorf("%s: labels %v, want only the allowed one", s.Container.Name, s.Container.Labels)
		}
	}
	// a and b share a namespace: its figures are on one of them (a: the
	// namespace is read once, counted once).
	a, b, c := snap.Containers[0], snap.Containers[1], snap.Containers[2]
	carrier, other := a, b
	if carrier.Network != sink.NetOwn {
		carrier, other = b, a
	}
	if carrier.Network != sink.NetOwn || carrier.Net == nil || other.Net != nil || other.Network != sink.NetShared || other.NetCarrier != carrier.Container.ID {
		t.Errorf("a and b share a namespace: want it on one, shared by the other; got %v %p, %v %p (carrier %q)", a.Network, a.Net, b.Network, b.Net, other.NetCarrier)
	} else if lo := carrier.Net.Interface("lo"); lo == nil {
		t.Errorf("no lo in the test namespace: %+v", carrier.Net.Interfaces)
	}
	if c.Net != nil || c.Network != sink.NetHost {
		t.Errorf("c is in the host's namespace: want no network stats and NetHost, got %v %+v", c.Network, c.Net)
	}
	if col.Tracked() != 3 {
		t.Errorf("tracked %d", col.Tracked())
	}
	if s := snap.Self; s == nil || s.Containers != 3 || s.Namespaces != 1 || s.ScrapeSeconds <= 0 || len(s.Errors) != 5 {
		t.Errorf("self-metrics %+v: want 3 containers, 1 namespace, a duration, 5 stages", s)
	}

	// The namespace is deleted by name; the Collector's handle keeps it.
	ip(t, "netns", "del", nsA)
	if !peerExists(nsB, vB) {
		t.Fatal("namespace A vanished while the Collector had a handle open on it")
	}

	// b's cgroup vanishes between scrapes: the snapshot goes on without it.
	loads[1].Stop()
	if err := groups[1].Remove(); err != nil {
		t.Fatal(err)
	}
	snap, err = col.Collect(ctx)
	if err != nil {
		t.Fatalf("a container gone mid-scrape failed the snapshot: %v", err)
	}
	if len(snap.Containers) != 2 || snap.Containers[0].Container.Name != "a" || snap.Containers[1].Container.Name != "c" {
		t.Errorf("after b's cgroup went: %d containers", len(snap.Containers))
	}

	// a and b leave the listing: the namespace handle closes with the last
	// of them, which lets the namespace go.
	d.set(cs[2])
	if _, err := col.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	gone := false
	for i := 0; i < 200 && !gone; i++ { // the kernel tears the namespace down asynchronously
		if gone = !peerExists(nsB, vB); !gone {
			waitTick()
		}
	}
	if !gone {
		t.Error("namespace A still pinned after its last container left")
	}
	if n := openFDs(t, groups[0].Path+"/"); n != 0 {
		t.Errorf("%d descriptors still open on a's cgroup after it left", n)
	}
	if col.Tracked() != 1 {
		t.Errorf("tracked %d after two left, want 1", col.Tracked())
	}
	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t, groups[2].Path+"/"); n != 0 {
		t.Errorf("%d descriptors still open on c's cgroup after Close", n)
	}
}

func waitTick() { time.Sleep(10 * time.Millisecond) }

// recorder is a sink that keeps the container names of every snapshot.
type recorder struct {
	mu     sync.Mutex
	snaps  [][]string
	closed bool
}

func (r *recorder) Write(ctx context.Context, s *sink.Snapshot) error {
	var names []string
	for _, c := range s.Containers {
		names = append(names, c.Container.Name)
	}
	r.mu.Lock()
	r.snaps = append(r.snaps, names)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// countingList counts List calls.
type countingList struct {
	listed
	lists atomic.Int64
}

func (l *countingList) List(ctx context.Context) ([]runtime.Container, error) {
	l.lists.Add(1)
	return l.listed.List(ctx)
}

// TestRunReconcilesByTime: under Run a full listing comes at the first
// snapshot and then once per reconcile interval, not at every scrape (a
// listing costs Docker an inspect per container); a container that only a
// listing can reveal appears within that interval; Run writes every
// snapshot and closes the sinks when it ends.
func TestRunReconcilesByTime(t *testing.T) {
	cgtest.NeedRoot(t)
	g := cgtest.New(t, "cpu", "cpuacct", "memory")
	w := cgtest.Start(t, g, cgtest.Spec{})
	a := runtime.Container{ID: "a", Name: "a", Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	b := a
	b.ID, b.Name = "b", "b"
	d := &countingList{}
	d.set(a)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(50*time.Millisecond),
		metricsd.WithReconcileInterval(400*time.Millisecond), metricsd.WithSinks(rec), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- col.Run(ctx) }()
	seen := func(name string) bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return anySnapshotHas(rec.snaps, name)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !seen("a") && time.Now().Before(deadline) {
		waitTick()
	}
	d.set(a, b) // no event: only a listing reveals b
	for !seen("b") && time.Now().Before(deadline) {
		waitTick()
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(t0)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !anySnapshotHas(rec.snaps, "b") {
		t.Fatalf("b never appeared in %d snapshots", len(rec.snaps))
	}
	if !rec.closed {
		t.Error("Run did not close the sink")
	}
	// At most one listing per 400 ms however slow the machine (the bound
	// is the run's own duration, not a count of scrapes, which a busy
	// machine makes fewer), and fewer listings than scrapes.
	lists, scrapes := d.lists.Load(), int64(len(rec.snaps))
	if most := 1 + int64(elapsed/(400*time.Millisecond)); lists > most || lists >= scrapes {
		t.Errorf("%d listings for %d scrapes in %v: want at most %d, one per 400 ms, not one per scrape", lists, scrapes, elapsed, most)
	}
	t.Logf("%d scrapes, %d listings in %v", scrapes, lists, elapsed)
}

// anySnapshotHas reports whether a recorded snapshot names the container.
func anySnapshotHas(snaps [][]string, name string) bool {
	for _, s := range snaps {
		if slices.Contains(s, name) {
			return true
		}
	}
	return false
}

// eventing is a Discoverer whose Watch sends the events the test pushes.
type eventing struct {
	listed
	ch chan runtime.Event
}

func (e *eventing) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	out := make(chan runtime.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-e.ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// TestRunEventsDuringScrapes: Run applies events while snapshots are being
// taken. Containers removed and started again by events between and during
// scrapes (closing their cgroup and namespace handles under a running
// Collect) must neither race (run with -race) nor count as errors, and
// every handle is released at the end.
func TestRunEventsDuringScrapes(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	ns := netnsAdd(t)
	var cs []runtime.Container
	var paths []string
	for _, name := range []string{"a", "b", "c"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
		w := cgtest.Start(t, g, cgtest.Spec{})
		cs = append(cs, runtime.Container{ID: name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path,
			State: runtime.StateRunning, NetNS: runtime.NetNS{Path: "/run/netns/" + ns}})
		paths = append(paths, g.Path)
	}
	d := &eventing{ch: make(chan runtime.Event)}
	d.set(cs...)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(5*time.Millisecond), metricsd.WithSinks(rec))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		c := cs[i%len(cs)]
		d.ch <- runtime.Event{Type: runtime.EventRemoved, Container: c}
		d.ch <- runtime.Event{Type: runtime.EventStarted, Container: c}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, s := range []metricsd.Stage{metricsd.StageOpen, metricsd.StageCgroup, metricsd.StageNet} {
		if n := col.Errors(s); n != 0 {
			t.Errorf("%d %v errors while events released handles under running scrapes", n, s)
		}
	}
	rec.mu.Lock()
	n := len(rec.snaps)
	rec.mu.Unlock()
	if n < 10 {
		t.Errorf("only %d snapshots written", n)
	}
	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if k := openFDs(t, p+"/"); k != 0 {
			t.Errorf("%d descriptors left on %s after Close", k, p)
		}
	}
}

// fdsOn lists the descriptor numbers of this process that point under s.
func fdsOn(s string) []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, s) {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// TestRunStartedAgain: a started event for a container already tracked with
// the same PID (what a watcher's first listing sends for every running
// container) keeps its open handles, the very same descriptors; one with a
// new PID (the container restarted) opens them afresh and releases the old.
func TestRunStartedAgain(t *testing.T) {
	cgtest.NeedRoot(t)
	g := cgtest.New(t, "cpu", "cpuacct", "memory")
	w := cgtest.Start(t, g, cgtest.Spec{})
	a := runtime.Container{ID: "a", Name: "a", Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	g2 := cgtest.New(t, "cpu", "cpuacct", "memory")
	w2 := cgtest.Start(t, g2, cgtest.Spec{})
	marker := func(name string) runtime.Container {
		return runtime.Container{ID: name, Name: name, Runtime: "test", PID: w2.Pid, CgroupPath: g2.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	}
	d := &eventing{ch: make(chan runtime.Event)}
	d.set(a)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(20*time.Millisecond),
		metricsd.WithSinks(rec), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Events are applied in order: once a marker container sent after an
	// event shows up in a snapshot, the event before it has been applied.
	wait := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; waitTick() {
			rec.mu.Lock()
			ok := len(rec.snaps) > 0 && slices.Contains(rec.snaps[len(rec.snaps)-1], name)
			rec.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared in a snapshot", name)
			}
		}
	}
	wait("a")
	before := fdsOn(g.Path + "/")
	if len(before) == 0 {
		t.Fatal("no descriptors open on a's cgroup")
	}
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: a}
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: marker("m1")}
	wait("m1")
	if after := fdsOn(g.Path + "/"); !slices.Equal(after, before) {
		t.Errorf("a started again with the same PID: descriptors %v, were %v (reopened)", after, before)
	}

	restarted := a
	restarted.PID = w2.Pid // another process: a new task of the same container
	restarted.CgroupPath = g2.Path
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: restarted}
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: marker("m2")}
	wait("m2")
	if n := len(fdsOn(g.Path + "/")); n != 0 {
		t.Errorf("a restarted (new PID, another cgroup): %d descriptors still open on the old cgroup", n)
	}
}

// TestCollectLimitMaxAge: with limits kept for an hour, a snapshot that
// comes without a listing reports the limit read before, and one that
// starts with a listing reports the limit the kernel has now (checked
// against the file).
func TestCollectLimitMaxAge(t *testing.T) {
	cgtest.NeedRoot(t)
	g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
	w := cgtest.Start(t, g, cgtest.Spec{})
	d := &listed{}
	d.set(runtime.Container{ID: "a", Name: "a", Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}})
	ctx := context.Background()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0),
		metricsd.WithLimitMaxAge(time.Hour), metricsd.WithReconcileEvery(3))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	limit := func() uint64 {
		t.Helper()
		snap, err := col.Collect(ctx)
		if err != nil || len(snap.Containers) != 1 {
			t.Fatalf("Collect: %v, %d containers", err, len(snap.Containers))
		}
		v, ok := snap.Containers[0].Cgroup.Pids.Limit.Get()
		if !ok {
			t.Fatalf("pids limit %v", snap.Containers[0].Cgroup.Pids.Limit)
		}
		return v
	}
	g.Write("pids", "pids.max", "50")
	if got := limit(); got != 50 { // snapshot 0: a listing
		t.Fatalf("pids limit %d, want 50", got)
	}
	g.Write("pids", "pids.max", "60")
	if got := limit(); got != 50 { // snapshot 1: no listing, limits kept
		t.Errorf("pids limit %d without a listing, want the kept 50", got)
	}
	limit()                                                                                               // snapshot 2
	if got, kernel := limit(), strings.TrimSpace(g.Read("pids", "pids.max")); fmt.Sprint(got) != kernel { // snapshot 3: a listing
		t.Errorf("pids limit %d after a listing, kernel %s", got, kernel)
	}
}
