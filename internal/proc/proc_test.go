//go:build linux

package proc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/pidreuse"
)

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
		got, err := ParseStatStart([]byte(c.in))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%q: %d, %v; want %d, error %v", c.in, got, err, c.want, c.err)
		}
		if strings.Contains(c.in, ") Z ") && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%q: %v, want a zombie to match fs.ErrNotExist", c.in, err)
		}
	}
}

func FuzzParseStatStart(f *testing.F) {
	f.Add([]byte("1 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21\n"))
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseStatStart(b)
		if err != nil && v != 0 {
			t.Errorf("error %v with value %d", err, v)
		}
	})
}

// TestDirPinsTheProcess: a directory opened for a process keeps answering
// for that process only: once it has exited and its PID is reused (a
// private PID namespace, ns_last_pid), files opened through it fail with
// fs.ErrNotExist while the same path by number shows the new process; Open
// with the old start time refuses the PID with ErrReused.
func TestDirPinsTheProcess(t *testing.T) {
	ns := pidreuse.New(t)
	pid := ns.Spawn(false)
	d, err := Open(ns.Root, pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start, err := d.Start()
	if err != nil || start == 0 {
		t.Fatalf("Start = %d, %v", start, err)
	}
	if d2, err := Open(ns.Root, pid, start); err != nil {
		t.Fatalf("Open with its own start: %v", err)
	} else {
		d2.Close()
	}
	if _, err := Open(ns.Root, pid, start+1); !errors.Is(err, ErrReused) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open with another start: %v, want ErrReused", err)
	}
	if b, err := d.ReadFile("cmdline"); err != nil || string(b) != "sleep\x00600\x00" {
		t.Fatalf("cmdline = %q, %v", b, err)
	}
	ns.Kill(pid)
	ns.SpawnAt(pid, false)
	byNumber, err := os.ReadFile(filepath.Join(ns.Root, "proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatalf("the new process by number: %v", err)
	}
	if now, err := ParseStatStart(byNumber); err != nil || now == start {
		t.Fatalf("the new process started at %d (%v), the old one at %d: the PID was not reused", now, err, start)
	}
	for _, name := range []string{"stat", "cgroup", "ns/net"} {
		if fd, err := d.OpenFile(name); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				unix.Close(fd)
			}
			t.Errorf("%s through the old directory: %v, want fs.ErrNotExist", name, err)
		}
	}
	if _, err := Open(ns.Root, pid, start); !errors.Is(err, ErrReused) {
		t.Errorf("Open with the old start: %v, want ErrReused", err)
	}
	if _, err := Open(ns.Root, 1<<22, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of no process: %v, want fs.ErrNotExist", err)
	}
}
