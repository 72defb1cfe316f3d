package containerd

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	apitypes "github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsd/metricsd/runtime"
)

// TestHandleEnvelopes feeds handle the envelopes containerd sends for an
// OOM, an exec'd process's exit and a foreign namespace. The OOM is
// synthesized: on this host (cgroup v1 memory on kernel 6.18) containerd
// 1.6 reports no /tasks/oom for a container the kernel OOM-kills, so the
// event can not be caused for real; the envelope is built as containerd
// builds it (type URL "containerd.events.TaskOOM").
func TestHandleEnvelopes(t *testing.T) {
	d := &Discoverer{o: options{timeout: time.Second, namespaces: []string{"a"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	ctx := context.Background()
	env := func(ns, typ string, m proto.Message) *apitypes.Envelope {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return &apitypes.Envelope{Namespace: ns, Topic: "/tasks/x", Timestamp: timestamppb.Now(),
			Event: &anypb.Any{TypeUrl: typ, Value: b}}
	}
	tr := runtime.NewTracker([]runtime.Container{{ID: "c1", Namespace: "a", PID: 5, State: runtime.StateRunning, Runtime: Name}})
	evs, _ := d.handle(ctx, tr, env("a", "containerd.events.TaskOOM", &eventtypes.TaskOOM{ContainerID: "c1"}))
	if len(evs) != 1 || evs[0].Type != runtime.EventOOM || evs[0].Container.ID != "c1" || evs[0].Container.PID != 5 {
		t.Errorf("oom: %+v", evs)
	}
	// An exec'd process exiting is not the container stopping.
	if evs, _ := d.handle(ctx, tr, env("a", "containerd.events.TaskExit", &eventtypes.TaskExit{ContainerID: "c1", ID: "exec-1", Pid: 9})); len(evs) != 0 {
		t.Errorf("exec exit: %+v", evs)
	}
	// Another namespace than the chosen ones is ignored.
	if evs, _ := d.handle(ctx, tr, env("b", "containerd.events.TaskExit", &eventtypes.TaskExit{ContainerID: "c1", ID: "c1"})); len(evs) != 0 {
		t.Errorf("foreign namespace: %+v", evs)
	}
	// A type URL with a prefix is understood; malformed bytes are dropped.
	evs, _ = d.handle(ctx, tr, env("a", "types.containerd.io/containerd.events.TaskExit", &eventtypes.TaskExit{ContainerID: "c1", ID: "c1", Pid: 5}))
	if len(evs) != 1 || evs[0].Type != runtime.EventStopped {
		t.Errorf("exit: %+v", evs)
	}
	bad := &apitypes.Envelope{Namespace: "a", Event: &anypb.Any{TypeUrl: "containerd.events.TaskDelete", Value: []byte{0xff, 0xff}}}
	if evs, _ := d.handle(ctx, tr, bad); len(evs) != 0 {
		t.Errorf("malformed: %+v", evs)
	}
	evs, _ = d.handle(ctx, tr, env("a", "containerd.events.TaskDelete", &eventtypes.TaskDelete{ContainerID: "c1", ID: "c1"}))
	if len(evs) != 1 || evs[0].Type != runtime.EventRemoved {
		t.Errorf("delete: %+v", evs)
	}
}
