package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/metricsd/metricsd/internal/proc"
)

// ProcessPaths is PIDPaths for one process: the one that started at
// startTicks (clock ticks since boot: field 22 of /proc/<pid>/stat, what
// runtime.ProcStartTicks returns), so that a PID reused by another process
// since the caller learnt it is not mistaken for it. It opens
// <root>/proc/<pid> once, reads the process's start time through it and
// checks it, and reads cgroup through the same directory. It returns the
// paths and the start time of the process they belong to; startTicks 0
// checks nothing (the start time is still returned). A process that has
// exited, or whose PID now names another process, gives an error matching
// ErrNotExist.
func (f *FS) ProcessPaths(ctx context.Context, pid int, startTicks uint64) (Paths, uint64, error) {
	return f.processPaths(ctx, pid, startTicks, true)
}

func (f *FS) processPaths(ctx context.Context, pid int, startTicks uint64, wantStart bool) (Paths, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if pid <= 0 {
		return nil, 0, fmt.Errorf("cgroup: invalid pid %d", pid)
	}
	d, err := proc.Open(f.root, pid, startTicks)
	if err != nil {
		return nil, 0, processErr(pid, err)
	}
	defer d.Close()
	var start uint64
	if wantStart {
		if start, err = d.Start(); err != nil {
			return nil, 0, processErr(pid, err)
		}
	}
	b, err := d.ReadFile("cgroup")
	if err != nil {
		return nil, 0, processErr(pid, err)
	}
	p, deleted, err := parseProcCgroup(b)
	if err != nil {
		return nil, 0, withFile(d.Path()+"/cgroup", err)
	}
	if deleted {
		// Only a process that has exited can be in a removed group (a
		// group with a live task can not be removed); a live one's group
		// is named so.
		if _, err := d.Start(); errors.Is(err, proc.ErrGone) {
			return nil, 0, fmt.Errorf("cgroup: process %d: its cgroup %s was removed: %w (%w)", pid, strings.TrimSuffix(p[""], deletedSuffix), ErrNotExist, err)
		}
	}
	return p, start, nil
}

func processErr(pid int, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup: process %d: %w (%w)", pid, ErrNotExist, err)
	}
	return fmt.Errorf("cgroup: process %d: %w", pid, err)
}

// OpenProcess is OpenPID for the process that started at startTicks (see
// ProcessPaths): a PID reused by another process gives an error matching
// ErrNotExist instead of that process's group.
func (f *FS) OpenProcess(ctx context.Context, pid int, startTicks uint64, c Controllers) (*Group, error) {
	p, _, err := f.ProcessPaths(ctx, pid, startTicks)
	if err != nil {
		return nil, err
	}
	return f.OpenPaths(ctx, p, c)
}
