//go:build linux

package pread_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/pread"
)

// TestPseudo reads real pseudo-files through kept descriptors and compares
// with os.ReadFile of the same file, at offset 0 and in the middle; a closed
// descriptor answers EBADF, as pread(2) does.
func TestPseudo(t *testing.T) {
	for _, name := range []string{"/proc/self/stat", "/proc/version", "/proc/self/cgroup"} {
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		n, err := pread.Pseudo(fd, buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		// /proc/self/stat changes between two reads (times); its first
		// field, the PID, does not.
		got := buf[:n]
		if name == "/proc/self/stat" {
			got, want = bytes.Fields(got)[0], bytes.Fields(want)[0]
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Pseudo read %q, os.ReadFile %q", name, got, want)
		}
		if name == "/proc/version" {
			m, err := pread.Pseudo(fd, buf, 5)
			if err != nil || !bytes.Equal(buf[:m], want[5:]) {
				t.Errorf("%s at offset 5: %q, %v; want %q", name, buf[:m], err, want[5:])
			}
			if m, err := pread.Pseudo(fd, nil, 0); m != 0 || err != nil {
				t.Errorf("%s into an empty buffer: %d, %v", name, m, err)
			}
		}
		unix.Close(fd)
		if _, err := pread.Pseudo(fd, buf, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("%s after close: %v, want EBADF", name, err)
		}
	}
}
