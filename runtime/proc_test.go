//go:build linux

package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestProcStartTicks reads the start of real processes: stable for one
// process, later for a child started after it, at the wall time the child
// was started, and gone once the child is reaped.
func TestProcStartTicks(t *testing.T) {
	ctx := context.Background()
	self, err := ProcStartTicks(ctx, "/", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	again, err := ProcStartTicks(ctx, "/", os.Getpid())
	if err != nil || again != self {
		t.Errorf("second read %d, %v; want %d", again, err, self)
	}
	time.Sleep(20 * time.Millisecond) // a tick is 10 ms
	cmd := exec.Command("sleep", "10")
	before := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	child, err := ProcStartTicks(ctx, "/", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if child <= self {
		t.Errorf("child started at tick %d, not after this process (%d)", child, self)
	}
	// In wall time (boot time + ticks) the child started between the two
	// clock reads around its start; btime is whole seconds and may drift
	// from the wall clock by a little, hence the slack.
	boot, err := BootTime(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	started := boot.Add(time.Duration(child) * time.Second / userHZ)
	if started.Before(before.Add(-5*time.Second)) || started.After(after.Add(5*time.Second)) {
		t.Errorf("child started at %v by its ticks, but between %v and %v by the clock", started, before, after)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := ProcStartTicks(ctx, "/", cmd.Process.Pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reaped child: %v, want ErrNotExist", err)
	}
}
