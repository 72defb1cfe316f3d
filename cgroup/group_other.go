//go:build !linux

package cgroup

import (
	"context"
	"errors"
)

// Group is an open cgroup. Cgroups exist only on Linux; elsewhere every
// method fails with errors.ErrUnsupported.
type Group struct{}

// Version is 0: there are no cgroups on this system.
func (g *Group) Version() int { return 0 }

// OpenPaths fails with errors.ErrUnsupported: cgroups exist only on Linux.
func (f *FS) OpenPaths(ctx context.Context, p Paths, c Controllers) (*Group, error) {
	return nil, errors.ErrUnsupported
}

// Stat fails with errors.ErrUnsupported.
func (g *Group) Stat(ctx context.Context, s *Stats) error { return errors.ErrUnsupported }

// Close does nothing.
func (g *Group) Close() error { return nil }

// RefreshLimits does nothing.
func (g *Group) RefreshLimits() {}
