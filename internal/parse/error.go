package parse

import "strconv"

// Error reports malformed content in a kernel file; cgroup.ParseError and
// netns.ParseError are aliases of it. File names the file that was read (the
// full path for cgroup files, "net/snmp" and the like for a namespace's
// files), Line is the 1-based line number (0 when the whole file is at
// fault, e.g. empty or truncated), and Err is the cause: ErrSyntax
// (strconv.ErrSyntax) for a malformed line, ErrRange (strconv.ErrRange) for
// a number too large for its type.
//
// Its text carries no package prefix, like *fs.PathError's: "parse
// net/snmp line 3: invalid syntax".
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	s := "parse " + e.File
	if e.Line > 0 {
		s += " line " + strconv.Itoa(e.Line)
	}
	if e.Err == nil {
		return s
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is(err, strconv.ErrSyntax) works.
func (e *Error) Unwrap() error { return e.Err }
