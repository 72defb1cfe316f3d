package containerd

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestWatchReconnect kills containerd during a Watch and starts it again
// (same command line, through scripts/daemons.sh's daemonctl):
//   - A runs throughout: never reported again;
//   - B's process is killed while containerd is down: reported stopped once;
//   - C starts after containerd is back but before the Watch reconnected
//     (the backoff is 2 s): reported started once, by the resync;
//   - D starts right after the reconnection, while both its start event and
//     the post-connect resync can see it: reported started once.
func TestWatchReconnect(t *testing.T) {
	rttest.Need(t, rttest.EnvDaemonCtl)
	d := connect(t, WithBackoff(2*time.Second, 2*time.Second), WithTimeout(5*time.Second))
	rttest.Lock(t, true)
	rttest.Restore(t, "containerd")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	a, b, c, dd := rttest.Name("a"), rttest.Name("b"), rttest.Name("c"), rttest.Name("d")
	apid := rttest.CtrRun(t, testNS, a, nil)
	bpid := rttest.CtrRun(t, testNS, b, nil)
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)

	rttest.DaemonCtl(t, "kill", "containerd")
	if err := syscall.Kill(bpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// While it is down, List fails fast with ErrUnavailable.
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = d.List(lctx)
	lcancel()
	if err == nil || !isUnavailable(err) {
		t.Errorf("List with containerd down: %v, want ErrUnavailable", err)
	}
	rttest.DaemonCtl(t, "start", "containerd")
	cpid := rttest.CtrRun(t, testNS, c, nil)

	ev := rec.Wait(t, runtime.EventStarted, c, 30*time.Second)
	if ev.Container.PID != cpid {
		t.Errorf("C started with PID %d, ctr says %d", ev.Container.PID, cpid)
	}
	dpid := rttest.CtrRun(t, testNS, dd, nil)
	ev = rec.Wait(t, runtime.EventStarted, dd, 10*time.Second)
	if ev.Container.PID != dpid {
		t.Errorf("D started with PID %d, ctr says %d", ev.Container.PID, dpid)
	}
	rec.Wait(t, runtime.EventStopped, b, 30*time.Second)
	// Past the post-connect resync (1 s) and one more backoff.
	time.Sleep(2500 * time.Millisecond)

	for _, w := range []struct {
		typ  runtime.EventType
		id   string
		want int
	}{
		{runtime.EventStarted, a, 0}, {runtime.EventStopped, a, 0},
		{runtime.EventStarted, b, 0}, {runtime.EventStopped, b, 1},
		{runtime.EventStarted, c, 1}, {runtime.EventStarted, dd, 1},
	} {
		if n := rec.Count(w.typ, w.id); n != w.want {
			t.Errorf("%d %s events for %s, want %d", n, w.typ, w.id, w.want)
		}
	}
	if err := rec.CheckSequence(); err != nil {
		t.Error(err)
	}
	// The Watch's picture equals a fresh listing.
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id, pid := range map[string]int{a: apid, c: cpid, dd: dpid} {
		if got, ok := find(cs, testNS, id); !ok || got.PID != pid {
			t.Errorf("after restart %s: %+v (found %v), want PID %d", id, got, ok, pid)
		}
	}
	if got, ok := find(cs, testNS, b); ok && got.State == runtime.StateRunning {
		t.Errorf("B still listed running: %+v", got)
	}
	if t.Failed() {
		t.Logf("events:\n%s", rec)
	}
	cancel()
	<-rec.Done()
}
