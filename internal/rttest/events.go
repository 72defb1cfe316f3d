package rttest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricsd/metricsd/runtime"
)

// Recorder collects a Watch's events as they arrive.
type Recorder struct {
	mu     sync.Mutex
	evs    []Got
	closed bool
	done   chan struct{}
}

// Got is an event with when it was received.
type Got struct {
	runtime.Event
	At time.Time
}

// Record drains ch into a Recorder until it closes.
func Record(ch <-chan runtime.Event) *Recorder {
	r := &Recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range ch {
			r.mu.Lock()
			r.evs = append(r.evs, Got{ev, time.Now()})
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	}()
	return r
}

// Done is closed when the channel closed.
func (r *Recorder) Done() <-chan struct{} { return r.done }

// Events returns a copy of what arrived so far.
func (r *Recorder) Events() []Got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Got(nil), r.evs...)
}

// Count is how many events of a type arrived for a container ID.
func (r *Recorder) Count(typ runtime.EventType, id string) int {
	n := 0
	for _, e := range r.Events() {
		if e.Type == typ && e.Container.ID == id {
			n++
		}
	}
	return n
}

// Wait waits up to timeout for the first event of a type for an ID and
// returns it with its arrival time; it fails the test on timeout.
func (r *Recorder) Wait(t testing.TB, typ runtime.EventType, id string, timeout time.Duration) Got {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range r.Events() {
			if e.Type == typ && e.Container.ID == id {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s within %v; got:\n%s", typ, id, timeout, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// String lists the events, one a line.
func (r *Recorder) String() string {
	var b strings.Builder
	for _, e := range r.Events() {
		fmt.Fprintf(&b, "  %s %s %s/%s pid %d\n", e.At.Format("15:04:05.000"), e.Type, e.Container.Namespace, e.Container.ID, e.Container.PID)
	}
	return b.String()
}

// CheckSequence checks that, per container key, events alternate the way
// a Watch promises: started, then (oom*) stopped, then optionally removed
// or started again; never started twice without a stop, never stopped or
// removed twice. It returns a description of the first violation.
func (r *Recorder) CheckSequence() error {
	state := map[string]string{}
	for _, e := range r.Events() {
		k := runtime.Key(e.Container)
		s := state[k]
		switch e.Type {
		case runtime.EventStarted:
			if s == "running" {
				return fmt.Errorf("%s started twice", k)
			}
			state[k] = "running"
		case runtime.EventStopped:
			// "" is a container the Watch's initial listing knew.
			if s != "running" && s != "" {
				return fmt.Errorf("%s stopped while %q", k, s)
			}
			state[k] = "stopped"
		case runtime.EventRemoved:
			if s != "stopped" {
				return fmt.Errorf("%s removed while %q", k, s)
			}
			state[k] = "removed"
		case runtime.EventOOM:
			if s != "running" && s != "" {
				return fmt.Errorf("%s oom while %q", k, s)
			}
		}
	}
	return nil
}
