package cgroup

import (
	"errors"
	"fmt"
)

var (
	// ErrNotExist reports a cgroup that does not exist or was removed while a
	// Group was reading it: ENOENT when a file or directory is opened, ENODEV
	// when a descriptor kept open is read after its cgroup was removed.
	ErrNotExist = errors.New("cgroup does not exist")

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
// fault, e.g. empty). Err is the cause: parse.ErrSyntax (strconv.ErrSyntax)
// for a malformed line, parse.ErrRange (strconv.ErrRange) for a number too
// large for its type.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("cgroup: parse %s line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("cgroup: parse %s: %v", e.File, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, strconv.ErrRange) works.
func (e *ParseError) Unwrap() error { return e.Err }

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
