package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/metricsd/metricsd/internal/errkind"
	"github.com/metricsd/metricsd/internal/parse"
)

var (
	// ErrNotExist reports a cgroup that does not exist or was removed while a
	// Group was reading it: ENOENT when a file or directory is opened, ENODEV
	// when a descriptor kept open is read after its cgroup was removed. It
	// matches fs.ErrNotExist too.
	ErrNotExist = errkind.New("cgroup does not exist", fs.ErrNotExist)

	// ErrClosed is returned by Group.Stat after Group.Close. It matches
	// os.ErrClosed, as netns.ErrClosed does.
	ErrClosed = errkind.New("cgroup.Group closed", os.ErrClosed)

	// ErrNoCgroupFS reports a host root whose mount table has no cgroup
	// (v1) or cgroup2 filesystem.
	ErrNoCgroupFS = errors.New("no cgroup filesystem mounted")

	// ErrOutsideMount reports a cgroup path that the mounted hierarchy does
	// not show, such as a path outside the reader's cgroup namespace
	// ("/../x") or outside a bind-mounted subtree. It wraps ErrNotExist.
	ErrOutsideMount = fmt.Errorf("cgroup path outside the mounted hierarchy: %w", ErrNotExist)

	// ErrInvalidPath reports a cgroup path that is not clean: a ".."
	// component after the namespace prefix, a NUL byte, or an empty element.
	ErrInvalidPath = errors.New("invalid cgroup path")
)

// ParseError reports malformed content in a kernel file. File is the path
// that was read and Line the 1-based line number (0 when the whole file is at
// fault, e.g. empty). Err is the cause: strconv.ErrSyntax for a malformed
// line, strconv.ErrRange for a number too large for its type. It is the same
// type as netns.ParseError; its text is "parse FILE line N: CAUSE".
type ParseError = parse.Error

// lineError is what the byte-level parsers return: the 1-based line and the
// cause. Group.Stat turns it into a *ParseError naming the file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func errAt(line int, err error) error { return &lineError{line: line, err: err} }

// withFile names the file a parser error came from.
func withFile(file string, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return &ParseError{File: file, Line: le.line, Err: le.err}
	}
	return &ParseError{File: file, Err: err}
}
