package runtime

import (
	"context"
	"sort"
	"time"
)

// Tracker is the state a Watch reports against: the containers it has
// reported running, and those it has reported stopped but not removed.
// Adapters feed it both the runtime's events (Apply) and, after every
// (re)connection, a full listing (Resync); it turns them into events so that
// every container is reported started once per run, stopped once, removed
// once, whichever of the two sources sees the change first. A Tracker is not
// safe for concurrent use: one Watch loop owns it.
//
// Keys are what identifies a container in one runtime: the ID, or
// "namespace/ID" for containerd (see Key).
type Tracker struct {
	known map[string]*tracked
}

type tracked struct {
	c       Container
	running bool
}

// NewTracker returns a Tracker that knows the live (running or paused)
// containers of an initial listing as running (they are not reported
// again).
func NewTracker(initial []Container) *Tracker {
	t := &Tracker{known: make(map[string]*tracked, len(initial))}
	for _, c := range initial {
		if c.State.Live() {
			t.known[Key(c)] = &tracked{c: c, running: true}
		}
	}
	return t
}

// Key identifies a container within its runtime: Namespace + "/" + ID when
// it has a namespace, else ID.
func Key(c Container) string {
	if c.Namespace != "" {
		return c.Namespace + "/" + c.ID
	}
	return c.ID
}

// Len is the number of containers known running.
func (t *Tracker) Len() int {
	n := 0
	for _, k := range t.known {
		if k.running {
			n++
		}
	}
	return n
}

// Apply filters one event from the runtime and returns the events to report
// (none for a duplicate):
//   - started: reported unless the container is known running with the same
//     PID (the listing of a resync saw it already);
//   - stopped, oom: reported only for a container known running (an OOM does
//     not change the state);
//   - removed: reported for a known container, preceded by a stopped event
//     when its stop was not seen; unknown containers' removals are dropped.
func (t *Tracker) Apply(ev Event) []Event {
	k := Key(ev.Container)
	cur := t.known[k]
	switch ev.Type {
	case EventStarted:
		if cur != nil && cur.running && (ev.Container.PID == 0 || cur.c.PID == ev.Container.PID) {
			return nil
		}
		t.known[k] = &tracked{c: ev.Container, running: true}
		return []Event{ev}
	case EventStopped:
		if cur == nil || !cur.running {
			return nil
		}
		cur.running = false
		ev.Container = merge(cur.c, ev.Container, StateStopped)
		cur.c = ev.Container
		return []Event{ev}
	case EventOOM:
		if cur == nil || !cur.running {
			return nil
		}
		ev.Container = merge(cur.c, ev.Container, cur.c.State)
		return []Event{ev}
	case EventRemoved:
		if cur == nil {
			return nil
		}
		delete(t.known, k)
		var out []Event
		if cur.running {
			out = append(out, Event{Type: EventStopped, Container: merge(cur.c, ev.Container, StateStopped), Time: ev.Time})
		}
		ev.Container = merge(cur.c, ev.Container, StateStopped)
		return append(out, ev)
	}
	return nil
}

// merge fills the fields an event lacks from what was known.
func merge(known, ev Container, st State) Container {
	c := known
	if ev.PID != 0 && st.Live() {
		c.PID = ev.PID
	}
	c.State = st
	return c
}

// Resync compares a fresh listing with what was reported and returns the
// differences as events: started for a live (running or paused) container
// not known running (or known with another PID: it restarted, so stopped
// then started), stopped for one known running that is no longer in
// running, removed for a known container that exists no more. exists
// reports whether a container key still exists in any state; nil means
// "only the running ones exist".
func (t *Tracker) Resync(running []Container, exists func(key string) bool, now time.Time) []Event {
	return t.ResyncPartial(running, exists, nil, now)
}

// ResyncPartial is Resync for a listing that could not describe every
// container (a PartialError): those for which unknown is true (by Key) are
// left as they were, whether or not running holds them.
func (t *Tracker) ResyncPartial(running []Container, exists, unknown func(key string) bool, now time.Time) []Event {
	var out []Event
	seen := make(map[string]bool, len(running))
	for _, c := range running {
		if !c.State.Live() {
			continue
		}
		k := Key(c)
		seen[k] = true
		cur := t.known[k]
		if cur != nil && cur.running && (c.PID == 0 || cur.c.PID == 0 || cur.c.PID == c.PID) {
			cur.c = c
			continue
		}
		if cur != nil && cur.running {
			out = append(out, Event{Type: EventStopped, Container: merge(cur.c, Container{}, StateStopped), Time: now})
		}
		t.known[k] = &tracked{c: c, running: true}
		out = append(out, Event{Type: EventStarted, Container: c, Time: now})
	}
	keys := make([]string, 0, len(t.known))
	for k := range t.known {
		if !seen[k] && (unknown == nil || !unknown(k)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		cur := t.known[k]
		if cur.running {
			cur.running = false
			cur.c = merge(cur.c, Container{}, StateStopped)
			out = append(out, Event{Type: EventStopped, Container: cur.c, Time: now})
		}
		if exists == nil || !exists(k) {
			delete(t.known, k)
			out = append(out, Event{Type: EventRemoved, Container: cur.c, Time: now})
		}
	}
	return out
}

// Send delivers events on ch in order; false when ctx ended first.
func Send(ctx context.Context, ch chan<- Event, evs ...Event) bool {
	for _, ev := range evs {
		select {
		case ch <- ev:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Backoff is the reconnection delay of a Watch: it starts at Min, doubles
// on every failure up to Max, and Reset brings it back to Min.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the delay before the next attempt and grows it.
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := b.cur
	b.cur *= 2
	if b.Max > 0 && b.cur > b.Max {
		b.cur = b.Max
	}
	return d
}

// Reset brings the delay back to Min after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends; false when ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
