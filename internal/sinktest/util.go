package sinktest

import (
	"bytes"
	"io"
	"os"
	"time"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Poll calls f every 20 ms until it returns true or timeout passes, and
// reports whether it did.
func Poll(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
