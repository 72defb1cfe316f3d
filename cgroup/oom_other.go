//go:build !linux

package cgroup

import (
	"errors"
	"log/slog"
)

// OOMWatcher reports OOM kills as they happen. Cgroups exist only on Linux;
// elsewhere NewOOMWatcher fails with errors.ErrUnsupported.
type OOMWatcher struct{}

// NewOOMWatcher fails with errors.ErrUnsupported: cgroups exist only on
// Linux.
func NewOOMWatcher(handler func(OOMKill), log *slog.Logger) (*OOMWatcher, error) {
	return nil, errors.ErrUnsupported
}

// Watch fails with errors.ErrUnsupported.
func (w *OOMWatcher) Watch(g *Group) error { return errors.ErrUnsupported }

// Unwatch does nothing.
func (w *OOMWatcher) Unwatch(g *Group) (OOMKill, bool) { return OOMKill{}, false }

// Watching returns 0.
func (w *OOMWatcher) Watching() int { return 0 }

// Close does nothing.
func (w *OOMWatcher) Close() error { return nil }
