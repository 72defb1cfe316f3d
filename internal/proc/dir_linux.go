package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Dir is an open /proc/<pid> directory.
type Dir struct {
	fd    int
	pid   int
	start uint64
	path  string
}

// Open opens <root>/proc/<pid>. With start other than 0 it reads the
// process's start time through it, and the process must have started then:
// a PID reused by another process gives ErrReused. A process that is gone
// gives an error matching fs.ErrNotExist (ErrGone for a zombie).
func Open(root string, pid int, start uint64) (*Dir, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proc: invalid pid %d", pid)
	}
	if root == "" {
		root = "/"
	}
	path := filepath.Join(root, "proc", strconv.Itoa(pid))
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", path, err)
	}
	d := &Dir{fd: fd, pid: pid, path: path}
	if start == 0 {
		return d, nil
	}
	got, err := d.Start()
	if err == nil && got != start {
		err = fmt.Errorf("proc: pid %d started at tick %d, not %d: %w", pid, got, start, ErrReused)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// PID is the process ID the directory was opened for.
func (d *Dir) PID() int { return d.pid }

// Start is the process's start time, in clock ticks since boot (read once,
// from its stat file).
func (d *Dir) Start() (uint64, error) {
	if d.start != 0 {
		return d.start, nil
	}
	b, err := d.ReadFile("stat")
	if err != nil {
		return 0, err
	}
	t, err := ParseStatStart(b)
	if err != nil {
		return 0, &os.PathError{Op: "read", Path: filepath.Join(d.path, "stat"), Err: err}
	}
	d.start = t
	return t, nil
}

// Path is the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// OpenFile opens a file of the process (such as "ns/net") read-only,
// relative to the directory. The caller closes the descriptor. A process
// that has exited gives an error matching fs.ErrNotExist.
func (d *Dir) OpenFile(name string) (int, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, pathErr("open", filepath.Join(d.path, name), err)
	}
	return fd, nil
}

// ReadFile reads a file of the process whole, relative to the directory.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	fd, err := d.OpenFile(name)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, name))
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, pathErr("read", f.Name(), err)
	}
	return b, nil
}

// Close closes the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// pathErr wraps a system call error; a process that is gone (ENOENT, or
// ESRCH through a directory whose process exited) matches fs.ErrNotExist.
func pathErr(op, path string, err error) error {
	if err == unix.ESRCH || err == unix.ENOENT {
		return &os.PathError{Op: op, Path: path, Err: fmt.Errorf("%w (%w)", ErrGone, err)}
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}
