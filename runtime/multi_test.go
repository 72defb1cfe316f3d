package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metricsd/metricsd/runtime"
)

// TestMultiSameIDTwoNamespaces: containerd containers with the same ID in
// two namespaces are two containers; Multi once kept only the first, so a
// container could hide another by taking its ID in a namespace of its own.
// (TestFilterLive shows the same with real containerd containers.)
func TestMultiSameIDTwoNamespaces(t *testing.T) {
	a := staticDiscoverer{{ID: "job", Name: "job", Runtime: "containerd", Namespace: "a"}}
	b := staticDiscoverer{{ID: "job", Name: "job", Runtime: "containerd", Namespace: "b"}, {ID: "job", Name: "job", Runtime: "containerd", Namespace: "a"}}
	cs, err := runtime.NewMulti(a, b).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Namespace != "a" || cs[1].Namespace != "b" {
		t.Fatalf("listed %+v, want job in namespaces a and b once each", cs)
	}
}

// TestMultiSameIDTwoRuntimes: the same ID from two runtimes (neither with a
// namespace) is two containers.
func TestMultiSameIDTwoRuntimes(t *testing.T) {
	a := staticDiscoverer{{ID: "web", Name: "web", Runtime: "cgroupfs"}}
	b := staticDiscoverer{{ID: "web", Name: "web", Runtime: "lxc"}, {ID: "web", Name: "web", Runtime: "cgroupfs"}}
	cs, err := runtime.NewMulti(a, b).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Runtime != "cgroupfs" || cs[1].Runtime != "lxc" {
		t.Fatalf("listed %+v, want web from cgroupfs and from lxc once each", cs)
	}
}

// failing is a discoverer whose List and Watch fail until n calls were
// made; it names itself and its containers "flaky".
type failing struct {
	mu    sync.Mutex
	calls int
	n     int
}

func (f *failing) Name() string { return "flaky" }
func (f *failing) List(context.Context) ([]runtime.Container, error) {
	return nil, errors.New("flaky: down")
}
func (f *failing) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls++; f.calls <= f.n {
		return nil, fmt.Errorf("flaky: watch %d: %w", f.calls, runtime.ErrUnavailable)
	}
	ch := make(chan runtime.Event, 1)
	ch <- runtime.Event{Type: runtime.EventStarted, Container: runtime.Container{ID: "up", Runtime: "flaky", State: runtime.StateRunning}}
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}
func (f *failing) Close() error { return nil }

// TestMultiPartial: when one discoverer of two fails to list, Multi lists
// the other's containers and says which runtime it could not list (a
// *PartialError that does not cover that runtime's containers); a partial
// listing of one of its discoverers is passed on. When all fail, List
// fails.
func TestMultiPartial(t *testing.T) {
	ctx := context.Background()
	ok := staticDiscoverer{{ID: "a", Runtime: "static"}}
	cs, err := runtime.NewMulti(ok, &failing{}).List(ctx)
	var pe *runtime.PartialError
	if !errors.As(err, &pe) || len(cs) != 1 || cs[0].ID != "a" {
		t.Fatalf("List = %+v, %v; want a and a PartialError", cs, err)
	}
	if pe.Covers(runtime.Container{ID: "x", Runtime: "flaky"}) || !pe.Covers(runtime.Container{ID: "b", Runtime: "static"}) {
		t.Errorf("PartialError %+v: want flaky's containers not covered, static's covered", pe)
	}
	inner := partialDiscoverer{cs: []runtime.Container{{ID: "c", Runtime: "static"}}, unknown: runtime.Container{ID: "d", Runtime: "static"}}
	cs, err = runtime.NewMulti(inner).List(ctx)
	if !errors.As(err, &pe) || len(cs) != 1 || pe.Covers(inner.unknown) || !pe.Covers(cs[0]) {
		t.Errorf("a discoverer's partial listing: %+v, %v", cs, err)
	}
	if _, err := runtime.NewMulti(&failing{}, &failing{}).List(ctx); err == nil || errors.As(err, &pe) {
		t.Errorf("all failing: %v, want a plain error", err)
	}
}

type partialDiscoverer struct {
	staticDiscoverer
	cs      []runtime.Container
	unknown runtime.Container
}

func (p partialDiscoverer) List(context.Context) ([]runtime.Container, error) {
	return slices.Clone(p.cs), &runtime.PartialError{Unknown: []runtime.Container{p.unknown}, Err: errors.New("inspect failed")}
}

// TestMultiWatchRetries: a discoverer whose Watch fails while another's
// starts is retried with backoff, each failure an EventError naming it,
// until its events come through. Multi once failed the whole Watch.
func TestMultiWatchRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok := &failing{n: 0}
	flaky := &failing{n: 2}
	ch, err := runtime.NewMulti(ok, flaky).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var errs, started int
	for started < 2 {
		select {
		case ev := <-ch:
			switch ev.Type {
			case runtime.EventError:
				if ev.Container.Runtime != "flaky" || !errors.Is(ev.Err, runtime.ErrUnavailable) {
					t.Errorf("EventError %+v", ev)
				}
				errs++
			case runtime.EventStarted:
				started++
			}
		case <-ctx.Done():
			t.Fatalf("after %d errors, %d started events: the failed Watch was not retried", errs, started)
		}
	}
	if errs != 2 {
		t.Errorf("%d EventErrors, want one per failed attempt (2)", errs)
	}
	cancel()
	for range ch {
	}
	if _, err := runtime.NewMulti(&failing{n: 5}).Watch(context.Background()); err == nil {
		t.Error("Watch with every discoverer failing: no error")
	}
}
