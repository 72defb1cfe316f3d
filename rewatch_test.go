package metricsd_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// flakyWatch is a Discoverer whose Watch fails its first fails calls, then
// hands out streams the test feeds (ch) or ends (end). It is a fake, for
// a fault that cannot be caused on demand for real: a runtime that refuses
// the event stream at the moment the Collector asks and answers later. The
// container it reports is real (a cgroup and process the test made).
type flakyWatch struct {
	listed // List: nothing, so that only an event can bring the container
	fails  int
	ch     chan runtime.Event
	end    chan struct{} // closing it ends the first stream handed out

	mu    sync.Mutex
	calls int
}

func (f *flakyWatch) watchCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *flakyWatch) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	if n <= f.fails {
		f.mu.Unlock()
		return nil, errors.New("injected: the event stream is refused")
	}
	end := f.end
	f.end = nil // the later streams never end by themselves
	f.mu.Unlock()
	out := make(chan runtime.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-end:
				return
			case ev := <-f.ch:
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

// TestRunRewatches: Run's Watch of the runtime fails twice, then works:
// Run watches again with backoff (each failure counted in StageDiscover
// and logged at the default level), and an event sent on the stream that
// finally opens brings its container into the snapshots. Then that stream
// ends by itself: Run watches once more, and an event on the new stream is
// applied too. Run once watched only at its start: a failed or ended Watch
// left it listing at every snapshot for good, and an event never came.
func TestRunRewatches(t *testing.T) {
	cgtest.NeedRoot(t)
	var cs []runtime.Container
	for _, name := range []string{"rewatch-a", "rewatch-b"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory", "pids")
		w := cgtest.Start(t, g, cgtest.Spec{})
		cs = append(cs, runtime.Container{ID: name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning})
	}
	end := make(chan struct{})
	d := &flakyWatch{fails: 2, ch: make(chan runtime.Event), end: end}
	var logs rttest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(20*time.Millisecond),
		metricsd.WithSinks(rec), metricsd.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()

	// The backoff is 1 s then 2 s: the third Watch comes about 3 s in.
	rttest.Eventually(t, 60*time.Second, func() error {
		if n := d.watchCalls(); n < 3 {
			return rttest.Errorf("Watch called %d times, want a third after two failures", n)
		}
		return nil
	})
	if n := col.Errors(metricsd.StageDiscover); n < 2 {
		t.Errorf("StageDiscover errors = %d, want the 2 failed watches counted", n)
	}
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "injected: the event stream is refused") {
		t.Errorf("the failed watch is not logged at the default level:\n%s", s)
	}
	seen := func(name string) func() error {
		return func() error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !anySnapshotHas(rec.snaps, name) {
				return rttest.Errorf("%s not in any of %d snapshots", name, len(rec.snaps))
			}
			return nil
		}
	}
	select {
	case d.ch <- runtime.Event{Type: runtime.EventStarted, Container: cs[0], Time: time.Now()}:
	case <-time.After(30 * time.Second):
		t.Fatal("nobody reads the third stream")
	}
	rttest.Eventually(t, 30*time.Second, seen(cs[0].Name))

	// The stream ends by itself: watched again (after 1 s).
	before := col.Errors(metricsd.StageDiscover)
	close(end)
	rttest.Eventually(t, 60*time.Second, func() error {
		if n := d.watchCalls(); n < 4 {
			return rttest.Errorf("Watch called %d times, want a fourth after the stream ended", n)
		}
		return nil
	})
	select {
	case d.ch <- runtime.Event{Type: runtime.EventStarted, Container: cs[1], Time: time.Now()}:
	case <-time.After(60 * time.Second):
		t.Fatal("the ended stream was not watched again")
	}
	rttest.Eventually(t, 30*time.Second, seen(cs[1].Name))
	if n := d.watchCalls(); n != 4 {
		t.Errorf("Watch called %d times, want 4", n)
	}
	if n := col.Errors(metricsd.StageDiscover); n != before+1 {
		t.Errorf("StageDiscover errors %d after the stream ended, want %d (the end counted)", n, before+1)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
