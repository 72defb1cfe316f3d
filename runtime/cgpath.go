package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/metricsd/metricsd/cgroup"
)

// CgroupPath picks, from a process's cgroup paths, the one Container.CgroupPath
// holds: the unified hierarchy's on a cgroup v2 host, the memory
// controller's on v1 and hybrid hosts (where the unified hierarchy is often
// empty), falling back to the other when the first is missing.
func CgroupPath(p cgroup.Paths, mode cgroup.Mode) string {
	first, second := "memory", ""
	if mode == cgroup.Unified {
		first, second = "", "memory"
	}
	if v, ok := p[first]; ok {
		return v
	}
	return p[second]
}

// ResolvePID returns the cgroup path of process pid as fs reads it from
// <root>/proc/<pid>/cgroup (see CgroupPath). A process that has exited gives
// an error matching cgroup.ErrNotExist.
func ResolvePID(ctx context.Context, fs *cgroup.FS, pid int) (string, error) {
	path, _, err := ResolveProcess(ctx, fs, pid)
	return path, err
}

// ResolveProcess is ResolvePID that also returns the start time of the
// process whose cgroup file it read (see Container.PIDStart): both come from
// one open /proc/<pid> directory, so they describe the same process even if
// the PID is reused meanwhile.
func ResolveProcess(ctx context.Context, fs *cgroup.FS, pid int) (path string, start uint64, err error) {
	p, start, err := fs.ProcessPaths(ctx, pid, 0)
	if err != nil {
		return "", 0, err
	}
	path = CgroupPath(p, fs.Mode())
	if path == "" {
		return "", 0, errors.New("runtime: no memory or unified cgroup for the process")
	}
	return path, start, nil
}

// ErrNotContainerProcess reports a process that is no longer the one a
// container's listing named: its PID now names a process that started at
// another time, or it has left the container's cgroup.
var ErrNotContainerProcess = errors.New("runtime: not the container's process")

// CheckProcess tells whether c.PID still names the container's process: the
// process that started at c.PIDStart (when known) and that is in the
// container's cgroup, c.CgroupPath or a group beneath it (when known). A
// consumer that opens the container's cgroup by c.CgroupPath and its network
// namespace through c.PID calls it first, so that a PID reused since the
// listing attaches no other process's figures to the container. A process
// that has exited, or whose PID now names another process, gives an error
// matching cgroup.ErrNotExist; one in another cgroup gives
// ErrNotContainerProcess. A container without a PID passes.
func CheckProcess(ctx context.Context, fs *cgroup.FS, c Container) error {
	if c.PID <= 0 {
		return nil
	}
	p, _, err := fs.ProcessPaths(ctx, c.PID, c.PIDStart)
	if err != nil {
		return err
	}
	if c.CgroupPath == "" {
		return nil
	}
	got := CgroupPath(p, fs.Mode())
	if !within(got, c.CgroupPath) {
		return fmt.Errorf("%w: process %d is in cgroup %s, not %s", ErrNotContainerProcess, c.PID, got, c.CgroupPath)
	}
	return nil
}

// within reports whether cgroup path p is dir or beneath it.
func within(p, dir string) bool {
	if p == dir || dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}
