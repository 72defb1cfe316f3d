package runtime

import (
	"context"
	"errors"

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
	p, err := fs.PIDPaths(ctx, pid)
	if err != nil {
		return "", err
	}
	path := CgroupPath(p, fs.Mode())
	if path == "" {
		return "", errors.New("runtime: no memory or unified cgroup for the process")
	}
	return path, nil
}
