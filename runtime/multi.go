package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Multi runs several discoverers as one. A container known to Docker and to
// containerd (Docker keeps its containers in containerd's "moby" namespace)
// is reported once, by the Docker discoverer: when one named "docker" is
// present, containerd containers and events in the namespace "moby" are
// dropped. Beyond that, List keeps the first container of each runtime,
// namespace and ID in the order the discoverers were given: the same ID in
// two containerd namespaces, or given by two runtimes, is two containers.
type Multi struct {
	ds        []Discoverer
	hasDocker bool
}

// NamespaceSkipper is a Discoverer that can leave containerd namespaces out
// of List and Watch altogether (the containerd adapter).
type NamespaceSkipper interface {
	SkipNamespaces(ns ...string)
}

// NewMulti combines discoverers, in order of precedence. With a Docker
// discoverer present, a containerd one that is a NamespaceSkipper is told to
// skip "moby" instead of listing containers only for Multi to drop them.
func NewMulti(ds ...Discoverer) *Multi {
	m := &Multi{ds: ds}
	for _, d := range ds {
		if d.Name() == "docker" {
			m.hasDocker = true
		}
	}
	if m.hasDocker {
		for _, d := range ds {
			if s, ok := d.(NamespaceSkipper); ok && d.Name() == "containerd" {
				s.SkipNamespaces("moby")
			}
		}
	}
	return m
}

// Discoverers returns the combined discoverers.
func (m *Multi) Discoverers() []Discoverer { return append([]Discoverer(nil), m.ds...) }

// Name joins the names of the combined discoverers with "+".
func (m *Multi) Name() string {
	n := ""
	for i, d := range m.ds {
		if i > 0 {
			n += "+"
		}
		n += d.Name()
	}
	return n
}

func (m *Multi) shadowed(c Container) bool {
	return m.hasDocker && c.Runtime == "containerd" && c.Namespace == "moby"
}

// List lists every discoverer concurrently. It fails only when all of them
// fail; otherwise the containers of those that answered are returned.
func (m *Multi) List(ctx context.Context) ([]Container, error) {
	type res struct {
		cs  []Container
		err error
	}
	out := make([]res, len(m.ds))
	var wg sync.WaitGroup
	for i, d := range m.ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := d.List(ctx)
			out[i] = res{cs, err}
		}()
	}
	wg.Wait()
	var all []Container
	var errs []error
	seen := make(map[string]bool)
	ok := false
	for _, r := range out {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		ok = true
		for _, c := range r.cs {
			k := c.Runtime + "/" + Key(c)
			if m.shadowed(c) || seen[k] {
				continue
			}
			seen[k] = true
			all = append(all, c)
		}
	}
	if !ok && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

// Watch merges the discoverers' streams, without the shadowed containers.
// It fails when any discoverer's Watch fails (stopping those already
// started); the channel closes when ctx ends.
func (m *Multi) Watch(ctx context.Context) (<-chan Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	var ins []<-chan Event
	for _, d := range m.ds {
		ch, err := d.Watch(wctx)
		if err != nil {
			cancel()
			for _, in := range ins {
				for range in {
				}
			}
			return nil, fmt.Errorf("%s: %w", d.Name(), err)
		}
		ins = append(ins, ch)
	}
	out := make(chan Event, 64)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range in {
				if m.shadowed(ev.Container) {
					continue
				}
				select {
				case out <- ev:
				case <-wctx.Done():
					// Drain so the discoverer's goroutine can end.
					for range in {
					}
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

// Close closes every discoverer.
func (m *Multi) Close() error {
	var errs []error
	for _, d := range m.ds {
		if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
