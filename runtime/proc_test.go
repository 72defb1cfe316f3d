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

func TestParseStatStart(t *testing.T) {
	const tail = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21\n"
	for _, c := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"1 (sh)" + tail, 4242, false},
		{"1 (a) b) (c)" + tail, 4242, false}, // the command may hold ") "
		{"1 (sh) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242", 0, true},
		{"1 (sh) S 1 2 3", 0, true},
		{"1 sh S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242", 0, true},
		{"1 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -1", 0, true},
		{"", 0, true},
	} {
		got, err := parseStatStart([]byte(c.in))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%q: %d, %v; want %d, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzParseStatStart(f *testing.F) {
	f.Add([]byte("1 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21\n"))
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseStatStart(b)
		if err != nil && v != 0 {
			t.Errorf("error %v with value %d", err, v)
		}
	})
}
