package pread

import (
	"time"

	"golang.org/x/sys/unix"
)

// Ordinary reads from fd at offset off into b, as pread(2) does, through the
// ordinary system-call path (the scheduler may hand the goroutine's P to
// another thread while it waits), retrying when interrupted. It is for
// pseudo-files whose read may take long, and for any other file (see the
// package doc).
func Ordinary(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// SlowRead is how long a raw read may take before Adaptive reads that file
// the ordinary way from then on: two and a half of the 20 µs polls in which
// the scheduler's monitor thread would have handed an ordinary system
// call's P to another thread, and well below a garbage collection's pause
// target.
const SlowRead = 50 * time.Microsecond

// Adaptive reads a pseudo-file whose read is cheap on most hosts but not by
// construction (its cost grows with the host's CPUs, cgroups or devices):
// like Pseudo while *slow is false, timing the read, and like Ordinary once
// a read has taken longer than SlowRead, which sets *slow. The caller keeps
// *slow with the descriptor. So a small host keeps the raw path's saving,
// and a big one holds up its P, and a stop-the-world, at most once per file.
// Where Raw is false it is Ordinary.
func Adaptive(fd int, b []byte, off int64, slow *bool) (int, error) {
	return adaptive(fd, b, off, slow, SlowRead)
}

func adaptive(fd int, b []byte, off int64, slow *bool, limit time.Duration) (int, error) {
	if !Raw || *slow {
		return Ordinary(fd, b, off)
	}
	t0 := time.Now()
	n, err := Pseudo(fd, b, off)
	if time.Since(t0) > limit {
		*slow = true
	}
	return n, err
}
