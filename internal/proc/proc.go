// Package proc pins a process by its /proc/<pid> directory: a descriptor of
// that directory refers to one process for as long as it is open, so files
// opened relative to it (stat, cgroup, ns/net) are that process's, or fail,
// even when the PID is reused by another process meanwhile. With the start
// time a caller recorded when it first saw the PID (field 22 of
// /proc/<pid>/stat, clock ticks since boot), Open also tells whether the PID
// still names that process: PID and start time together name one process for
// as long as the host runs.
//
// The cgroup, netns and runtime layers share it; none of them exports it.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// ErrReused reports a PID that now names another process than the one
// expected (its start time differs). It matches fs.ErrNotExist: the process
// the caller meant is gone.
var ErrReused = fmt.Errorf("process id reused by another process: %w", fs.ErrNotExist)

// ErrGone reports a process that has exited (or is a zombie). It matches
// fs.ErrNotExist.
var ErrGone = fmt.Errorf("process exited: %w", fs.ErrNotExist)

// ParseStatStart returns the start time (field 22, clock ticks since boot)
// from the content of /proc/<pid>/stat. A zombie or dead process gives
// ErrGone.
func ParseStatStart(b []byte) (uint64, error) {
	// Fields after the command, which may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed stat: %d fields after the command, want at least 20", len(f))
	}
	if string(f[0]) == "Z" || string(f[0]) == "X" {
		return 0, fmt.Errorf("state %s: %w", f[0], ErrGone)
	}
	ticks, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return ticks, nil
}
