package cgroup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// kernelKey reads "key N" from a flat-keyed file of g directly; ok is false
// when the file does not exist (an older kernel).
func kernelKey(t *testing.T, g *cgtest.Group, controller, file, key string) (v uint64, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.Dir(controller), file))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 1 && key == "" || len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v, true
		}
	}
	t.Fatalf("%s: no key %q in %q", file, key, b)
	return 0, false
}

// wantKernel checks a Value against the kernel's figure: Known and equal
// when the kernel has the file, Unavailable when it does not.
func wantKernel(t *testing.T, name string, got cgroup.Value, want uint64, has bool) {
	t.Helper()
	switch {
	case !has && got.Available():
		t.Errorf("%s = %v, want Unavailable (the kernel has no such file)", name, got)
	case has && (got.State != cgroup.Known || got.V != want):
		t.Errorf("%s = %v, want %d (the kernel's file)", name, got, want)
	}
}

// TestLivePidsEvents: a shell in a group whose pids.max is 3 starts sleeps
// until a fork is refused. ForkFailures and Peak are the kernel's pids.events
// max and pids.peak, at least one fork failed, and the peak is the limit.
func TestLivePidsEvents(t *testing.T) {
	ctx := context.Background()
	g := cgtest.New(t, "pids")
	g.Write("pids", "pids.max", "3")
	sh := g.Shell("sleep 60 & sleep 60 & sleep 60 & sleep 60 & sleep 60 & wait")
	err := sh.Wait() // the shell gives up when a fork is refused
	t.Logf("shell: %v", err)
	grp, err := newFS(t).Open(ctx, g.Path, cgroup.Pids)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	var s cgroup.Stats
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	fails, ok := kernelKey(t, g, "pids", "pids.events", "max")
	if !ok {
		t.Fatal("no pids.events")
	}
	if fails == 0 {
		t.Fatalf("pids.events max = 0: no fork was refused at pids.max 3")
	}
	wantKernel(t, "ForkFailures", s.Pids.ForkFailures, fails, true)
	peak, hasPeak := kernelKey(t, g, "pids", "pids.peak", "")
	wantKernel(t, "Peak", s.Pids.Peak, peak, hasPeak)
	if hasPeak && peak != 3 {
		t.Errorf("pids.peak = %d, want the limit, 3", peak)
	}
	t.Logf("fork failures %v, peak %v", s.Pids.ForkFailures, s.Pids.Peak)
}
