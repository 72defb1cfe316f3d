package runtime

import (
	"testing"
	"time"
)

func ctr(id string, pid int) Container {
	return Container{ID: id, Runtime: "x", PID: pid, State: StateRunning}
}

func types(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type)+" "+e.Container.ID)
	}
	return out
}

func eq(t *testing.T, what string, got []Event, want ...string) {
	t.Helper()
	g := types(got)
	if len(g) != len(want) {
		t.Fatalf("%s: got %q, want %q", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: got %q, want %q", what, g, want)
		}
	}
}

func TestTrackerEvents(t *testing.T) {
	tr := NewTracker([]Container{ctr("a", 10)})
	now := time.Now()
	eq(t, "start of a known container", tr.Apply(Event{Type: EventStarted, Container: ctr("a", 10)}))
	eq(t, "start of b", tr.Apply(Event{Type: EventStarted, Container: ctr("b", 20)}), "started b")
	eq(t, "duplicate start of b", tr.Apply(Event{Type: EventStarted, Container: ctr("b", 20)}))
	eq(t, "oom b", tr.Apply(Event{Type: EventOOM, Container: Container{ID: "b"}}), "oom b")
	ev := tr.Apply(Event{Type: EventStopped, Container: Container{ID: "b"}})
	eq(t, "stop b", ev, "stopped b")
	if ev[0].Container.PID != 20 || ev[0].Container.State != StateStopped {
		t.Errorf("stop event lacks what was known: %+v", ev[0].Container)
	}
	eq(t, "second stop b", tr.Apply(Event{Type: EventStopped, Container: Container{ID: "b"}}))
	eq(t, "oom after stop", tr.Apply(Event{Type: EventOOM, Container: Container{ID: "b"}}))
	eq(t, "restart b", tr.Apply(Event{Type: EventStarted, Container: ctr("b", 21)}), "started b")
	eq(t, "remove running b", tr.Apply(Event{Type: EventRemoved, Container: Container{ID: "b"}}), "stopped b", "removed b")
	eq(t, "remove b again", tr.Apply(Event{Type: EventRemoved, Container: Container{ID: "b"}}))
	eq(t, "stop of unknown", tr.Apply(Event{Type: EventStopped, Container: Container{ID: "z"}}))
	eq(t, "remove of unknown", tr.Apply(Event{Type: EventRemoved, Container: Container{ID: "z"}}))
	if tr.Len() != 1 {
		t.Errorf("Len %d, want 1 (a)", tr.Len())
	}

	// Resync: a stays, c appeared, a restarted elsewhere is stop+start.
	eq(t, "resync same", tr.Resync([]Container{ctr("a", 10)}, nil, now))
	eq(t, "resync new c", tr.Resync([]Container{ctr("a", 10), ctr("c", 30)}, nil, now), "started c")
	eq(t, "resync a restarted", tr.Resync([]Container{ctr("a", 11), ctr("c", 30)}, nil, now), "stopped a", "started a")
	// c stopped but still exists; then gone.
	exists := map[string]bool{"a": true, "c": true}
	eq(t, "resync c stopped", tr.Resync([]Container{ctr("a", 11)}, func(k string) bool { return exists[k] }, now), "stopped c")
	delete(exists, "c")
	eq(t, "resync c removed", tr.Resync([]Container{ctr("a", 11)}, func(k string) bool { return exists[k] }, now), "removed c")
	eq(t, "resync all gone", tr.Resync(nil, nil, now), "stopped a", "removed a")
	// Events after a resync that saw them already are dropped.
	eq(t, "resync d", tr.Resync([]Container{ctr("d", 40)}, nil, now), "started d")
	eq(t, "start event of d after resync", tr.Apply(Event{Type: EventStarted, Container: ctr("d", 40)}))
	// Non-running entries of a listing are ignored.
	eq(t, "stopped entry", tr.Resync([]Container{ctr("d", 40), {ID: "e", State: StateStopped}}, nil, now))
}

func TestTrackerNamespaces(t *testing.T) {
	a := Container{ID: "x", Namespace: "n1", State: StateRunning, PID: 1}
	b := Container{ID: "x", Namespace: "n2", State: StateRunning, PID: 2}
	tr := NewTracker([]Container{a})
	eq(t, "same ID other namespace", tr.Apply(Event{Type: EventStarted, Container: b}), "started x")
	if Key(a) == Key(b) || Key(a) != "n1/x" || Key(Container{ID: "y"}) != "y" {
		t.Errorf("keys %q %q", Key(a), Key(b))
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}
	var got []time.Duration
	for i := 0; i < 5; i++ {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 500, 500}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v", got)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Errorf("after Reset %v", d)
	}
}
