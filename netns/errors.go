package netns

import (
	"errors"
	"io/fs"
	"os"

	"github.com/metricsd/metricsd/internal/errkind"
	"github.com/metricsd/metricsd/internal/parse"
)

var (
	// ErrNotExist reports a target whose network namespace cannot be found:
	// the process exited, the bind mount under /run/netns is gone, or the
	// handle passed in is not open. It matches fs.ErrNotExist too.
	ErrNotExist = errkind.New("network namespace does not exist", fs.ErrNotExist)

	// ErrPoolClosed is returned by Pool.Open and OpenAll after Pool.Close,
	// and when the pool has no hop thread left (one was disposed of and
	// its replacement failed to start): such a pool opens nothing again;
	// close it and make a new one.
	ErrPoolClosed = errors.New("netns: pool closed")

	// ErrClosed is returned by Handle.Stat after Handle.Close. It matches
	// os.ErrClosed, as cgroup.ErrClosed does.
	ErrClosed = errkind.New("netns handle closed", os.ErrClosed)

	// ErrRestore reports a hop whose thread could not return to its home
	// namespace (or whose check found it elsewhere). The thread was disposed
	// of and replaced; the job's descriptors were closed.
	ErrRestore = errors.New("hop thread failed to return home")

	// ErrDumpInterrupted reports a TCP state dump that the kernel flagged
	// NLM_F_DUMP_INTR (its socket tables changed while it walked them, so
	// it may have missed or repeated sockets) twice in a row: the dump is
	// retried once before Handle.Stat gives up on the part.
	ErrDumpInterrupted = errors.New("sock_diag dump interrupted")
)

// ParseError reports malformed content in a kernel file. File names the file
// (e.g. "net/snmp"), Line is the 1-based line number (0 when the whole file
// is at fault, e.g. empty or truncated), and Err is the cause:
// strconv.ErrSyntax for a malformed line or a header and value line that do
// not match, strconv.ErrRange for a number too large. It is the same type as
// cgroup.ParseError; its text is "parse FILE line N: CAUSE".
type ParseError = parse.Error

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
