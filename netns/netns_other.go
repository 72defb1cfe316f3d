//go:build !linux

package netns

import (
	"context"
	"errors"
)

// Pool is the namespace hop; network namespaces exist only on Linux, so
// elsewhere every method returns errors.ErrUnsupported.
type Pool struct{}

// NewPool returns errors.ErrUnsupported off Linux.
func NewPool(opts ...Option) (*Pool, error) { return nil, errors.ErrUnsupported }

// Home returns the zero ID off Linux.
func (p *Pool) Home() ID { return ID{} }

// Close does nothing off Linux.
func (p *Pool) Close() error { return nil }

// Identify returns errors.ErrUnsupported off Linux.
func (p *Pool) Identify(ctx context.Context, t Target) (*Ref, error) {
	return nil, errors.ErrUnsupported
}

// Ref is a network namespace held open by Identify; off Linux there is none.
type Ref struct {
	// ID identifies the namespace.
	ID ID
}

// Target returns the zero Target off Linux.
func (r *Ref) Target() Target { return Target{} }

// Close does nothing off Linux.
func (r *Ref) Close() error { return nil }

// Open returns errors.ErrUnsupported off Linux.
func (p *Pool) Open(ctx context.Context, t Target, parts Parts) (*Handle, error) {
	return nil, errors.ErrUnsupported
}

// OpenAll returns errors.ErrUnsupported off Linux.
func (p *Pool) OpenAll(ctx context.Context, targets []Target, parts Parts) ([]*Handle, error) {
	return nil, errors.ErrUnsupported
}

// Handle reads one namespace; off Linux there is none.
type Handle struct{}

// ID returns the zero ID off Linux.
func (h *Handle) ID() ID { return ID{} }

// IsHome returns false off Linux.
func (h *Handle) IsHome() bool { return false }

// Parts returns no parts off Linux.
func (h *Handle) Parts() Parts { return 0 }

// Stat returns errors.ErrUnsupported off Linux.
func (h *Handle) Stat(ctx context.Context, s *Stats) error { return errors.ErrUnsupported }

// Close does nothing off Linux.
func (h *Handle) Close() error { return nil }
