package netns

import (
	"errors"
	"fmt"
)

var (
	// ErrNotExist reports a target whose network namespace cannot be found:
	// the process exited, the bind mount under /run/netns is gone, or the
	// handle passed in is not open.
	ErrNotExist = errors.New("netns: target namespace does not exist")

	// ErrPoolClosed is returned by Pool.Open after Pool.Close, and when no
	// hop thread is left to serve the job.
	ErrPoolClosed = errors.New("netns: pool closed")

	// ErrHandleClosed is returned by Handle.Stat after Handle.Close.
	ErrHandleClosed = errors.New("netns: handle closed")

	// ErrRestore reports a hop whose thread could not return to its home
	// namespace (or whose check found it elsewhere). The thread was disposed
	// of and replaced; the job's descriptors were closed.
	ErrRestore = errors.New("netns: hop thread failed to return home")
)

// ParseError reports malformed content in a kernel file. File names the file
// (e.g. "net/snmp"), Line is the 1-based line number (0 when the whole file
// is at fault, e.g. empty or truncated), and Err is the cause:
// parse.ErrSyntax (strconv.ErrSyntax) for a malformed line or a header and
// value line that do not match, parse.ErrRange (strconv.ErrRange) for a
// number too large.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("netns: parse %s line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("netns: parse %s: %v", e.File, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, strconv.ErrSyntax) works.
func (e *ParseError) Unwrap() error { return e.Err }

// TargetError names the target an Open failed for. Err is the cause, e.g.
// ErrNotExist.
type TargetError struct {
	Target Target
	Err    error
}

func (e *TargetError) Error() string { return "netns: " + e.Target.String() + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TargetError) Unwrap() error { return e.Err }

func parseErr(file string, line int, err error) error {
	return &ParseError{File: file, Line: line, Err: err}
}
