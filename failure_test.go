package metricsd_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestOpenFailuresLoudAndRetried: with too few descriptors (RLIMIT_NOFILE
// lowered to what the process has open, for real) no container can be
// opened. Under Run, with a listing only once an hour, the failures are
// logged at Warn, once for their one cause however many containers failed,
// counted, and the containers are opened at the next interval once
// descriptors are available again, not at the next listing.
func TestOpenFailuresLoudAndRetried(t *testing.T) {
	var cs []runtime.Container
	for _, n := range []string{"a", "b", "c", "d"} {
		cs = append(cs, hostContainer(t, n))
	}
	d := newHolding()
	d.set(cs...)
	rec := &recorder{}
	var logs rttest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(20*time.Millisecond),
		metricsd.WithReconcileInterval(time.Hour), metricsd.WithSinks(rec), metricsd.WithNetParts(0), metricsd.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(countFDs() + 2) // fewer than one cgroup needs
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	snaps := func() int { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.snaps) }
	until(t, "two snapshots with too few descriptors", func() bool { return snaps() >= 2 })
	if p := col.Pending(); p != 4 {
		t.Errorf("%d containers pending, want 4", p)
	}
	restore()
	n := snaps()
	until(t, "every container opened after the limit was raised", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.snaps[len(rec.snaps)-1]) == 4
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.snaps[0]) != 0 {
		t.Errorf("first snapshot %v with too few descriptors", rec.snaps[0])
	}
	t.Logf("all open at snapshot %d, %d after the limit was raised", len(rec.snaps), len(rec.snaps)-n)
	if l := d.lists.Load(); l != 1 {
		t.Errorf("%d listings: the retries came from listings, not from the pending set", l)
	}
	if e := col.Errors(metricsd.StageOpen); e < 8 {
		t.Errorf("%d open errors counted, want at least 8 (4 containers, 2 snapshots)", e)
	}
	var warns []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "open cgroup failed") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `cause="too many open files"`) {
		t.Errorf("want one Warn line for the one cause, got %d:\n%s", len(warns), logs.String())
	}
}

func countFDs() int { return len(fdsOn("")) }
