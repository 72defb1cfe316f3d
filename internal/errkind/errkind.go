// Package errkind makes the library's sentinel errors: bare text of their
// own, matching a standard error with errors.Is (cgroup.ErrNotExist and
// netns.ErrNotExist match fs.ErrNotExist; the closed errors os.ErrClosed).
package errkind

// New returns an error whose text is msg and that matches kind (and itself)
// with errors.Is.
func New(msg string, kind error) error { return &sentinel{msg: msg, kind: kind} }

type sentinel struct {
	msg  string
	kind error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is the kind e belongs to.
func (e *sentinel) Is(target error) bool { return target == e.kind }
