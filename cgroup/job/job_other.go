//go:build !linux

package job

import (
	"context"
	"errors"
	"os/exec"

	"github.com/metricsd/metricsd/cgroup"
)

// Job is a command started in a group of its own. Cgroups exist only on
// Linux: elsewhere Start fails with errors.ErrUnsupported.
type Job struct{}

// Run fails with errors.ErrUnsupported: cgroups exist only on Linux.
func Run(ctx context.Context, cmd *exec.Cmd, opts ...Option) (*Totals, error) {
	return nil, errors.ErrUnsupported
}

// Start fails with errors.ErrUnsupported: cgroups exist only on Linux.
func Start(ctx context.Context, cmd *exec.Cmd, opts ...Option) (*Job, error) {
	return nil, errors.ErrUnsupported
}

// Wait fails with errors.ErrUnsupported.
func (j *Job) Wait() (*Totals, error) { return nil, errors.ErrUnsupported }

// Group is nil.
func (j *Job) Group() *cgroup.Group { return nil }

// Path is "".
func (j *Job) Path() string { return "" }
