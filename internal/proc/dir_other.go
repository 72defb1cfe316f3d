//go:build !linux

package proc

import "errors"

// Dir is an open /proc/<pid> directory; only Linux has one.
type Dir struct{}

// Open fails with errors.ErrUnsupported: only Linux has /proc/<pid>.
func Open(root string, pid int, start uint64) (*Dir, error) { return nil, errors.ErrUnsupported }

// PID is the process ID the directory was opened for.
func (d *Dir) PID() int { return 0 }

// Start fails with errors.ErrUnsupported.
func (d *Dir) Start() (uint64, error) { return 0, errors.ErrUnsupported }

// Path is the directory's path, for messages.
func (d *Dir) Path() string { return "" }

// OpenFile fails with errors.ErrUnsupported.
func (d *Dir) OpenFile(name string) (int, error) { return -1, errors.ErrUnsupported }

// ReadFile fails with errors.ErrUnsupported.
func (d *Dir) ReadFile(name string) ([]byte, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (d *Dir) Close() error { return nil }
