package docker

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestListInspectFails: one container's inspection fails (a fault the
// real dockerd is made to have by a proxy in front of it, which answers 500
// to that one request): List still returns the other containers, and a
// *runtime.PartialError that names the one left out. It once failed the
// whole listing.
func TestListInspectFails(t *testing.T) {
	rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	p := rttest.NewFaultProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok := rttest.DockerRun(t, rttest.Name("insp-ok"), nil)
	bad := rttest.DockerRun(t, rttest.Name("insp-bad"), nil)
	d, err := New(ctx, WithHost(p.Host))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p.Fail(rttest.InspectOf(bad))
	cs, err := d.List(ctx)
	var partial *runtime.PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("List with one inspection failing: %v, want a *runtime.PartialError", err)
	}
	if _, found := find(cs, ok); !found {
		t.Errorf("the container whose inspection worked is not listed (%d listed)", len(cs))
	}
	if _, found := find(cs, bad); found {
		t.Error("the container whose inspection failed is listed")
	}
	if len(partial.Unknown) != 1 || partial.Unknown[0].ID != bad || partial.Unknown[0].Runtime != Name || partial.Unknown[0].Namespace != Namespace {
		t.Errorf("PartialError.Unknown = %+v, want %s", partial.Unknown, bad)
	}
	if partial.Covers(runtime.Container{ID: bad, Runtime: Name, Namespace: Namespace}) || !partial.Covers(runtime.Container{ID: ok, Runtime: Name, Namespace: Namespace}) {
		t.Error("Covers: want false for the container left out, true for the others")
	}
	p.Fail(nil)
	cs, err = d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ok, bad} {
		if _, found := find(cs, id); !found {
			t.Errorf("%s not listed once inspections work again", id)
		}
	}
}

// TestWatchInspectFailsOnStart: a container starts while its inspection
// fails (the fault proxy again): Watch reports an EventError naming it (it
// once dropped the event without a word), and once inspection works again
// the container is reported started by a listing made soon, not at the
// next periodic resync (an hour away here).
func TestWatchInspectFailsOnStart(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	p := rttest.NewFaultProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := New(ctx, WithHost(p.Host), WithResync(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	// Wait until the event stream is asked for and the settling listing
	// (Watch's own, the session's, then one a second after connecting)
	// has been made: the stream was then requested a second ago, and the
	// start below is seen as an event, not only by a listing. Waited for
	// on the requests themselves: a fixed sleep from Watch was too short
	// on a loaded machine.
	rttest.Eventually(t, 30*time.Second, func() error {
		if e, l := p.Count(rttest.EventStreams), p.Count(rttest.Listings); e < 1 || l < 3 {
			return rttest.Errorf("%d event stream requests, %d listings; want 1 and 3", e, l)
		}
		return nil
	})
	name := rttest.Name("insp-start")
	id := rttest.Docker(t, "create", "--name", name, "--network", "none", v[1], "/bin/sleep", "600")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", v[0], "rm", "-f", id) })
	p.Fail(rttest.InspectOf(id))
	rttest.Docker(t, "start", id)
	got := rec.Wait(t, runtime.EventError, id, 30*time.Second)
	if got.Err == nil {
		t.Error("EventError without an error")
	}
	if n := rec.Count(runtime.EventStarted, id); n != 0 {
		t.Errorf("%d started events while the container could not be inspected", n)
	}
	p.Fail(nil)
	started := rec.Wait(t, runtime.EventStarted, id, 30*time.Second)
	if started.Container.PID == 0 || started.Container.CgroupPath == "" {
		t.Errorf("started without PID or cgroup: %+v", started.Container)
	}
	if err := rec.CheckSequence(); err != nil {
		t.Error(err)
	}
}

// TestWatchPaused: a paused container is still a live one: Watch's
// listings (every 300 ms here) keep it, with no stopped event, and List
// reports it paused; unpaused, nothing more is reported. A listing once
// reported it stopped.
func TestWatchPaused(t *testing.T) {
	rttest.Lock(t, false)
	d := connect(t, WithResync(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	id := rttest.DockerRun(t, rttest.Name("paused"), nil)
	rec.Wait(t, runtime.EventStarted, id, 30*time.Second)
	rttest.Docker(t, "pause", id)
	defer rttest.Try("docker", "-H", rttest.Need(t, rttest.EnvDockerHost)[0], "unpause", id)
	time.Sleep(1500 * time.Millisecond) // several listings
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, found := find(cs, id); !found || c.State != runtime.StatePaused || c.PID == 0 {
		t.Errorf("List: %+v (found %v), want the container paused, with its PID", c, found)
	}
	rttest.Docker(t, "unpause", id)
	time.Sleep(1 * time.Second)
	if n := rec.Count(runtime.EventStopped, id); n != 0 {
		t.Errorf("%d stopped events for a container paused and unpaused:\n%s", n, rec)
	}
	if n := rec.Count(runtime.EventStarted, id); n != 1 {
		t.Errorf("%d started events, want 1:\n%s", n, rec)
	}
}

// TestWatchWhileDaemonFails: Watch called while the daemon fails every
// request (the fault proxy answers 500 to all) does not fail: it reports
// an EventError and keeps trying with backoff, and once the daemon answers
// it reports the containers started meanwhile. A failed first listing once
// failed Watch for good.
func TestWatchWhileDaemonFails(t *testing.T) {
	rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	p := rttest.NewFaultProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := New(ctx, WithHost(p.Host), WithBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p.Fail(func(*http.Request) bool { return true })
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatalf("Watch while the daemon fails: %v, want it to keep trying", err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	rec.Wait(t, runtime.EventError, "", 10*time.Second)
	id := rttest.DockerRun(t, rttest.Name("late"), nil)
	p.Fail(nil)
	ev := rec.Wait(t, runtime.EventStarted, id, 30*time.Second)
	if ev.Container.PID == 0 || ev.Container.CgroupPath == "" {
		t.Errorf("started %+v", ev.Container)
	}
}
