package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
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
// fail. When some fail, or describe only some of their containers, it
// returns what the others listed and a *PartialError naming the runtimes
// that failed and the containers left out.
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
	var partial PartialError
	seen := make(map[string]bool)
	ok := false
	for i, r := range out {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ds[i].Name(), r.err))
			var pe *PartialError
			if !errors.As(r.err, &pe) {
				partial.Runtimes = append(partial.Runtimes, m.ds[i].Name())
				continue
			}
			partial.Unknown = append(partial.Unknown, pe.Unknown...)
			partial.Runtimes = append(partial.Runtimes, pe.Runtimes...)
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
	switch {
	case !ok && len(errs) > 0:
		return nil, errors.Join(errs...)
	case len(errs) > 0:
		partial.Err = errors.Join(errs...)
		return all, &partial
	}
	return all, nil
}

// Watch merges the discoverers' streams, without the shadowed containers.
// It fails only when every discoverer's Watch fails. One that fails while
// others start is retried with backoff (1 s doubling to 30 s), each failure
// reported as an EventError naming its runtime, until it starts or ctx
// ends. The channel closes when ctx ends.
func (m *Multi) Watch(ctx context.Context) (<-chan Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	ins := make([]<-chan Event, len(m.ds))
	failed := make([]error, len(m.ds))
	var errs []error
	for i, d := range m.ds {
		ch, err := d.Watch(wctx)
		if err != nil {
			failed[i] = err
			errs = append(errs, fmt.Errorf("%s: %w", d.Name(), err))
			continue
		}
		ins[i] = ch
	}
	if len(errs) == len(m.ds) && len(errs) > 0 {
		cancel()
		return nil, errors.Join(errs...)
	}
	out := make(chan Event, 64)
	var wg sync.WaitGroup
	for i, d := range m.ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := ins[i], failed[i]
			bo := Backoff{Min: time.Second, Max: 30 * time.Second}
			for in == nil {
				ev := Event{Type: EventError, Container: Container{Runtime: d.Name()}, Time: time.Now(),
					Err: fmt.Errorf("%s: watch: %w", d.Name(), err)}
				if !Send(wctx, out, ev) || !Sleep(wctx, bo.Next()) {
					return
				}
				in, err = d.Watch(wctx)
			}
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
