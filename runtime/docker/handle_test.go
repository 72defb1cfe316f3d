package docker

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/metricsd/metricsd/runtime"
)

// TestHandleMessages feeds handle the messages dockerd sends for an OOM and
// a removal, and Podman's "remove". The OOM is synthesized: on this host
// (cgroup v1 memory on kernel 6.18) Docker 20.10 reports no "oom" event for
// a container the kernel OOM-kills (OOMKilled stays false), so it can not
// be caused for real.
func TestHandleMessages(t *testing.T) {
	d := &Discoverer{o: options{timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	id := strings.Repeat("ab", 32)
	id2 := strings.Repeat("cd", 32)
	tr := runtime.NewTracker([]runtime.Container{
		{ID: id, Namespace: Namespace, PID: 7, State: runtime.StateRunning, Runtime: Name},
		{ID: id2, Namespace: Namespace, PID: 8, State: runtime.StateRunning, Runtime: Name},
	})
	msg := func(a events.Action, id string) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: a, Actor: events.Actor{ID: id, Attributes: map[string]string{"name": "web"}},
			TimeNano: time.Now().UnixNano()}
	}
	ctx := context.Background()
	evs, _ := d.handle(ctx, tr, msg(events.ActionOOM, id))
	if len(evs) != 1 || evs[0].Type != runtime.EventOOM || evs[0].Container.PID != 7 {
		t.Errorf("oom: %+v", evs)
	}
	evs, _ = d.handle(ctx, tr, msg(events.ActionDestroy, id))
	if len(evs) != 2 || evs[0].Type != runtime.EventStopped || evs[1].Type != runtime.EventRemoved {
		t.Errorf("destroy without die: %+v", evs)
	}
	evs, _ = d.handle(ctx, tr, msg(actionRemove, id2))
	if len(evs) != 2 || evs[1].Type != runtime.EventRemoved || evs[1].Container.ID != id2 {
		t.Errorf("podman remove: %+v", evs)
	}
	// Not a container, or an ID that is not 64 hex digits: ignored.
	m := msg(events.ActionDie, id)
	m.Type = "network"
	if evs, _ := d.handle(ctx, tr, m); len(evs) != 0 {
		t.Errorf("network event: %+v", evs)
	}
	if evs, _ := d.handle(ctx, tr, msg(events.ActionDie, "../../etc")); len(evs) != 0 {
		t.Errorf("bad ID: %+v", evs)
	}
}
