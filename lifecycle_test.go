package metricsd_test

import (
	"context"
	"errors"
	"io"
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
	"github.com/metricsd/metricsd/sink/stdout"
)

// holding is a discoverer whose listing is taken when it starts and, while
// hold is set, returned only when the test releases it: a listing in
// flight. Events come through Watch (eventing).
type holding struct {
	eventing
	lists   atomic.Int64
	hold    atomic.Bool
	listing chan struct{} // a held listing started
	release chan struct{} // lets it return
}

func (h *holding) List(ctx context.Context) ([]runtime.Container, error) {
	h.lists.Add(1)
	cs, _ := h.listed.List(ctx) // the runtime as the listing began
	if h.hold.Load() {
		h.listing <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return cs, nil
}

func newHolding() *holding {
	return &holding{eventing: eventing{ch: make(chan runtime.Event)}, listing: make(chan struct{}), release: make(chan struct{})}
}

// hostContainer is a container of the test's: a workload in a cgroup of its
// own, in the host's network namespace.
func hostContainer(t *testing.T, name string) runtime.Container {
	t.Helper()
	g := cgtest.New(t, "cpu", "cpuacct", "memory")
	w := cgtest.Start(t, g, cgtest.Spec{})
	return runtime.Container{ID: "id-" + name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path,
		State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
}

// until polls cond (an event being applied) until it holds; the deadline
// only ends a test that failed.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); waitTick() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestReconcileRace: a listing is as old as its start. A container whose
// started event is applied while a listing is in flight (the listing lacks
// it) stays tracked, and one whose removed event is applied meanwhile (the
// listing still has it) is not added back. The discoverer holds its listing
// until the events have been applied, so the race happens every time.
func TestReconcileRace(t *testing.T) {
	a, b, c := hostContainer(t, "a"), hostContainer(t, "b"), hostContainer(t, "c")
	d := newHolding()
	d.set(a, c) // what the listing sees
	d.hold.Store(true)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(20*time.Millisecond),
		metricsd.WithReconcileInterval(time.Hour), metricsd.WithSinks(rec), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()

	<-d.listing // the first snapshot's listing is in flight
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: b}
	until(t, "b's started event applied", func() bool { return col.Tracked() == 1 })
	d.ch <- runtime.Event{Type: runtime.EventRemoved, Container: c}
	// Events are applied in order: once a marker started after the
	// removal is tracked, the removal has been applied.
	m := hostContainer(t, "m")
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: m}
	until(t, "the marker's started event applied", func() bool { return col.Tracked() == 2 })
	d.hold.Store(false)
	d.release <- struct{}{}

	until(t, "two snapshots written", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.snaps) >= 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, names := range rec.snaps {
		if !slices.Equal(names, []string{"a", "b", "m"}) {
			t.Errorf("snapshot %d has %v, want [a b m]: b started and c was removed while the listing was in flight", i, names)
		}
	}
	if n := d.lists.Load(); n != 1 {
		t.Errorf("%d listings, want 1 (the reconcile interval is an hour)", n)
	}
}

// TestWatchWithoutRun: an embedder that pulls snapshots with Collect keeps
// the set current with Watch: a started event adds a container and a
// removed event drops it at the next Collect, with no listing after the
// first; Close stops the watcher (the discoverer's Watch context ends).
func TestWatchWithoutRun(t *testing.T) {
	a, b := hostContainer(t, "a"), hostContainer(t, "b")
	d := newHolding()
	d.set(a)
	ctx := context.Background()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	if err := col.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := col.Watch(ctx); err == nil {
		t.Error("a second Watch: no error")
	}
	names := func() []string {
		t.Helper()
		snap, err := col.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, s := range snap.Containers {
			ns = append(ns, s.Container.Name)
		}
		return ns
	}
	if got := names(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first Collect: %v", got)
	}
	d.ch <- runtime.Event{Type: runtime.EventStarted, Container: b}
	until(t, "b's started event applied", func() bool { return col.Tracked() == 2 })
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after b started: %v", got)
	}
	d.ch <- runtime.Event{Type: runtime.EventRemoved, Container: a}
	until(t, "a's removed event applied", func() bool { return col.Tracked() == 1 })
	if got := names(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after a was removed: %v", got)
	}
	if n := d.lists.Load(); n != 1 {
		t.Errorf("%d listings for 3 Collects with events applied, want 1", n)
	}
	if err := col.Close(); err != nil {
		t.Fatal(err)
	}
	select { // the watcher's context ended: nobody receives events
	case d.ch <- runtime.Event{Type: runtime.EventStarted, Container: a}:
		t.Error("an event was received after Close")
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := col.Collect(ctx); !errors.Is(err, metricsd.ErrClosed) {
		t.Errorf("Collect after Close: %v, want ErrClosed", err)
	}
}

// closeCounter is a sink that counts its Close calls.
type closeCounter struct {
	recorder
	closes atomic.Int64
}

func (c *closeCounter) Close(ctx context.Context) error {
	c.closes.Add(1)
	return c.recorder.Close(ctx)
}

// TestCloseClosesWhatRunCloses: Close closes the sinks for an embedder
// that never ran Run; after Run they are closed once; Close during Run ends
// Run, which closes them once.
func TestCloseClosesWhatRunCloses(t *testing.T) {
	a := hostContainer(t, "a")
	ctx := context.Background()
	for _, how := range []string{"collect", "run", "close during run"} {
		d := newHolding()
		d.set(a)
		k := &closeCounter{}
		col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0), metricsd.WithSinks(k),
			metricsd.WithInterval(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		switch how {
		case "collect":
			if _, err := col.Collect(ctx); err != nil {
				t.Fatal(err)
			}
		case "run":
			rctx, cancel := context.WithCancel(ctx)
			go func() {
				until(t, "a snapshot written", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.snaps) > 0 })
				cancel()
			}()
			if err := col.Run(rctx); err != nil {
				t.Fatal(err)
			}
		case "close during run":
			done := make(chan error, 1)
			go func() { done <- col.Run(ctx) }()
			until(t, "a snapshot written", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.snaps) > 0 })
			if err := col.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Errorf("%s: Run returned %v", how, err)
			}
		}
		if err := col.Close(); err != nil {
			t.Fatal(err)
		}
		if n := k.closes.Load(); n != 1 {
			t.Errorf("%s: the sink was closed %d times, want once", how, n)
		}
		if err := col.Run(ctx); !errors.Is(err, metricsd.ErrClosed) {
			t.Errorf("%s: Run after Close: %v, want ErrClosed", how, err)
		}
	}
}

// TestOptions: the order of options does not matter, and an invalid value
// or two options that contradict each other make New fail, naming the
// option.
func TestOptions(t *testing.T) {
	g := cgtest.New(t, "cpu", "cpuacct", "memory")
	w := cgtest.Start(t, g, cgtest.Spec{})
	d := &listed{}
	d.set(runtime.Container{ID: "a", Name: "a", Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning,
		NetNS: runtime.NetNS{Host: true}, Labels: map[string]string{"keep": "1", "other": "2"}})
	ctx := context.Background()
	labels := func(opts ...metricsd.Option) map[string]string {
		t.Helper()
		col, err := metricsd.New(ctx, append(opts, metricsd.WithDiscoverer(d), metricsd.WithNetParts(0))...)
		if err != nil {
			t.Fatal(err)
		}
		defer col.Close()
		snap, err := col.Collect(ctx)
		if err != nil || len(snap.Containers) != 1 {
			t.Fatalf("Collect: %v", err)
		}
		return snap.Containers[0].Container.Labels
	}
	for _, order := range [][]metricsd.Option{
		{metricsd.WithLabels("keep"), metricsd.WithAllLabels()},
		{metricsd.WithAllLabels(), metricsd.WithLabels("keep")},
	} {
		if got := labels(order...); len(got) != 2 {
			t.Errorf("WithLabels and WithAllLabels: kept %v, want every label in either order", got)
		}
	}
	if got := labels(metricsd.WithLabels("keep")); len(got) != 1 || got["keep"] != "1" {
		t.Errorf("WithLabels(keep): kept %v", got)
	}

	for name, opts := range map[string][]metricsd.Option{
		"WithInterval":                {metricsd.WithInterval(0)},
		"WithTimeout":                 {metricsd.WithTimeout(-time.Second)},
		"WithConcurrency":             {metricsd.WithConcurrency(0)},
		"WithReconcileEvery":          {metricsd.WithReconcileEvery(0)},
		"WithReconcileInterval":       {metricsd.WithReconcileInterval(0)},
		"WithLimitMaxAge":             {metricsd.WithLimitMaxAge(-time.Second)},
		"WithHostRoot":                {metricsd.WithHostRoot("host")},
		"WithSinks":                   {metricsd.WithSinks(nil)},
		"WithDiscoverer":              {metricsd.WithDiscoverer(nil)},
		"WithControllers":             {metricsd.WithControllers(0)},
		"WithReconcileEvery given":    {metricsd.WithReconcileEvery(2), metricsd.WithReconcileInterval(time.Second)},
		"WithReconcileInterval given": {metricsd.WithReconcileInterval(time.Second), metricsd.WithReconcileEvery(2)},
	} {
		col, err := metricsd.New(ctx, append(opts, metricsd.WithDiscoverer(d))...)
		if err == nil {
			col.Close()
			t.Errorf("%s: no error", name)
			continue
		}
		if opt, _, _ := strings.Cut(name, " "); !strings.Contains(err.Error(), opt) {
			t.Errorf("%s: error %q does not name the option", name, err)
		}
	}
}

// TestCollectDuringRun: Collect called while Run runs fills a snapshot of
// its own; Run's sinks read theirs meanwhile. Run under -race (test.sh
// does): the shared snapshot was a data race. Both read every field (a
// JSON sink), of containers that share a namespace.
func TestCollectDuringRun(t *testing.T) {
	cgtest.NeedRoot(t)
	ns := netnsAdd(t)
	var cs []runtime.Container
	for _, name := range []string{"a", "b", "c"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
		w := cgtest.Start(t, g, cgtest.Spec{})
		cs = append(cs, runtime.Container{ID: name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path,
			State: runtime.StateRunning, NetNS: runtime.NetNS{Path: "/run/netns/" + ns}})
	}
	d := newHolding()
	d.set(cs...)
	runSink, err := stdout.New(io.Discard, stdout.WithFormat(stdout.JSONLines))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(2*time.Millisecond), metricsd.WithSinks(runSink, rec))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	pullSink, err := stdout.New(io.Discard, stdout.WithFormat(stdout.JSONLines))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var pulls int
	wg.Go(func() {
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			snap, err := col.Collect(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if err := pullSink.Write(ctx, snap); err != nil {
				t.Error(err)
				return
			}
			if len(snap.Containers) != 3 {
				t.Errorf("Collect: %d containers", len(snap.Containers))
			}
			pulls++
		}
	})
	wg.Wait()
	until(t, "Run wrote snapshots", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.snaps) >= 10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, s := range rec.snaps {
		if !slices.Equal(s, []string{"a", "b", "c"}) {
			t.Fatalf("Run's snapshot %d: %v", i, s)
		}
	}
	t.Logf("%d Collects during %d Run snapshots", pulls, len(rec.snaps))
}

var _ sink.Sink = (*closeCounter)(nil)
