//go:build linux

package pread_test

import (
	"bytes"
	"errors"
	"os"
	"runtime"
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

// TestOffsets reads pseudo-files in small pieces at increasing offsets, and
// at offsets a 32-bit register can not hold, through both paths: every
// piece is where pread(2) puts it, an offset past 4 GiB is past the end of
// the file (0 bytes, not the start of it again), and a negative one is
// EINVAL. Pseudo's raw system call passed the offset in one register, which
// on 386 loses its upper half and on arm and mips lands in the pad register
// before the offset pair (so every read came from offset 0 and a reader
// going on until EOF never ended); scripts/test.sh runs this test as
// GOARCH=386 too. Raw must be true exactly on 64-bit architectures.
func TestOffsets(t *testing.T) {
	if want := runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64"; (runtime.GOARCH == "386" || runtime.GOARCH == "arm" || want) && pread.Raw != want {
		t.Errorf("Raw = %v on %s", pread.Raw, runtime.GOARCH)
	}
	for _, read := range []struct {
		name string
		f    func(int, []byte, int64) (int, error)
	}{{"Pseudo", pread.Pseudo}, {"Ordinary", pread.Ordinary}} {
		for _, name := range []string{"/proc/version", "/proc/self/cgroup", "/proc/self/limits"} {
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			piece := make([]byte, 7)
			for len(got) <= len(want) { // bounded: a reader stuck at offset 0 stops
				n, err := read.f(fd, piece, int64(len(got)))
				if err != nil {
					t.Fatalf("%s %s at %d: %v", read.name, name, len(got), err)
				}
				if n == 0 {
					break
				}
				got = append(got, piece[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s in 7-byte pieces: %d bytes %q, want %d bytes %q", read.name, name, len(got), got, len(want), want)
			}
			for _, off := range []int64{1 << 32, 1<<32 + 5, 1 << 40} {
				if n, err := read.f(fd, piece, off); n != 0 || err != nil {
					t.Errorf("%s %s at offset %#x: %d bytes %q, %v; want 0 bytes (past the end)", read.name, name, off, n, piece[:n], err)
				}
			}
			if n, err := read.f(fd, piece, -1); !errors.Is(err, unix.EINVAL) {
				t.Errorf("%s %s at offset -1: %d bytes, %v; want EINVAL", read.name, name, n, err)
			}
			unix.Close(fd)
		}
	}
}
