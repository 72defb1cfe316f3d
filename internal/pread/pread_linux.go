package pread

import "golang.org/x/sys/unix"

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
