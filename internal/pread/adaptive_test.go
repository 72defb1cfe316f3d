//go:build linux

package pread

import (
	"bytes"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAdaptive: a raw read that takes longer than the limit marks the file
// slow, and it is read the ordinary way from then on, with the same content
// either way; one that does not leaves it unmarked. Where Raw is false no
// file is ever marked: every read is ordinary already. The limit is 0 or an
// hour here, so that the test does not depend on how long a read takes on
// this machine; BenchmarkReadPath (bench/) measures real reads against
// SlowRead.
func TestAdaptive(t *testing.T) {
	want, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open("/proc/self/cgroup", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for _, c := range []struct {
		limit time.Duration
		slow  bool
	}{{time.Hour, false}, {0, Raw}} {
		var slow bool
		for i := 0; i < 3; i++ {
			n, err := adaptive(fd, buf, 0, &slow, c.limit)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Errorf("limit %v, read %d: %q, %v; want %q", c.limit, i, buf[:n], err, want)
			}
			if slow != c.slow {
				t.Errorf("limit %v, after read %d: slow = %v, want %v", c.limit, i, slow, c.slow)
			}
		}
	}
}
