package docker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestWatchReconnect kills dockerd during a Watch and starts it again (same
// command line, through scripts/daemons.sh's daemonctl):
//   - A runs before the kill; after the restart Docker decides its fate
//     (without live-restore it stops it): the Watch must end up agreeing
//     with docker ps, with no duplicate event;
//   - C starts after dockerd is back but before the Watch reconnected (the
//     backoff is 2 s): reported started once, by the resync;
//   - D starts right after the reconnection, while both its start event and
//     the post-connect resync see it: reported started once.
func TestWatchReconnect(t *testing.T) {
	rttest.Need(t, rttest.EnvDaemonCtl)
	d := connect(t, WithBackoff(2*time.Second, 2*time.Second), WithTimeout(5*time.Second))
	rttest.Lock(t, true)
	rttest.Restore(t, "dockerd")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	a := rttest.DockerRun(t, rttest.Name("a"), nil)
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)

	rttest.DaemonCtl(t, "kill", "dockerd")
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = d.List(lctx)
	lcancel()
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("List with dockerd down: %v, want ErrUnavailable", err)
	}
	rttest.DaemonCtl(t, "start", "dockerd")
	c := rttest.DockerRun(t, rttest.Name("c"), nil)
	cpid := rttest.DockerPID(t, c)
	ev := rec.Wait(t, runtime.EventStarted, c, 30*time.Second)
	if ev.Container.PID != cpid {
		t.Errorf("C started with PID %d, docker says %d", ev.Container.PID, cpid)
	}
	dd := rttest.DockerRun(t, rttest.Name("d"), nil)
	dpid := rttest.DockerPID(t, dd)
	ev = rec.Wait(t, runtime.EventStarted, dd, 10*time.Second)
	if ev.Container.PID != dpid {
		t.Errorf("D started with PID %d, docker says %d", ev.Container.PID, dpid)
	}
	time.Sleep(2500 * time.Millisecond) // past the post-connect resync

	if err := rec.CheckSequence(); err != nil {
		t.Error(err)
	}
	for _, id := range []string{c, dd} {
		if n := rec.Count(runtime.EventStarted, id); n != 1 {
			t.Errorf("%d started events for %s, want 1", n, id[:12])
		}
	}
	// A: what the events say equals what docker ps says.
	running := map[string]bool{}
	for _, id := range strings.Fields(rttest.Docker(t, "ps", "-q", "--no-trunc")) {
		running[id] = true
	}
	aRunning := rec.Count(runtime.EventStarted, a) >= rec.Count(runtime.EventStopped, a)
	if aRunning != running[a] {
		t.Errorf("A: events say running=%v, docker ps says %v", aRunning, running[a])
	}
	t.Logf("A running after the restart: %v (started %d, stopped %d)", running[a],
		rec.Count(runtime.EventStarted, a), rec.Count(runtime.EventStopped, a))
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{c, dd} {
		if _, ok := find(cs, id); !ok || !running[id] {
			t.Errorf("%s not running after the restart (list %v, ps %v)", id[:12], ok, running[id])
		}
	}
	if t.Failed() {
		t.Logf("events:\n%s", rec)
	}
	cancel()
	<-rec.Done()
}
