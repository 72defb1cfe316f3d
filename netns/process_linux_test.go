package netns

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/metricsd/metricsd/internal/pidreuse"
	"github.com/metricsd/metricsd/internal/proc"
)

// TestTargetProcessReusedPID: a process in a network namespace of its own
// is identified by PID and start time; it exits and its PID is given to a
// process in another namespace (ns_last_pid in a private PID namespace,
// which the Pool reads through its root). The Ref taken before still opens
// the first namespace, which it keeps alive; TargetProcess with the old start
// time fails with ErrNotExist, while TargetPID, trusting the number, names
// the newcomer's namespace.
func TestTargetProcessReusedPID(t *testing.T) {
	ns := pidreuse.New(t)
	ctx := context.Background()
	p := newTestPool(t, WithRoot(ns.Root))
	pid := ns.Spawn(true)
	d, err := proc.Open(ns.Root, pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	start, err := d.Start()
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	first := pathID(t, fmt.Sprintf("%s/proc/%d/ns/net", ns.Root, pid))
	ref, err := p.Identify(ctx, TargetProcess(pid, start))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if ref.ID != first || ref.ID == p.Home() {
		t.Fatalf("Identify = %v, want the process's own namespace %v (home %v)", ref.ID, first, p.Home())
	}

	ns.Kill(pid)
	ns.SpawnAt(pid, true)
	second := pathID(t, fmt.Sprintf("%s/proc/%d/ns/net", ns.Root, pid))
	if second == first {
		t.Fatal("the new process shares the first one's namespace: the test proves nothing")
	}
	h, err := p.Open(ctx, ref.Target(), TierCheap)
	if err != nil {
		t.Fatalf("Open of the identified namespace after its process exited: %v", err)
	}
	if h.ID() != first {
		t.Errorf("Open of the Ref opened %v, want the identified %v (the newcomer's is %v)", h.ID(), first, second)
	}
	h.Close()
	for _, tg := range []Target{TargetProcess(pid, start)} {
		if _, err := p.Identify(ctx, tg); !errors.Is(err, ErrNotExist) {
			t.Errorf("Identify %v of a reused PID: %v, want ErrNotExist", tg, err)
		}
		if h, err := p.Open(ctx, tg, TierCheap); !errors.Is(err, ErrNotExist) {
			if h != nil {
				h.Close()
			}
			t.Errorf("Open %v of a reused PID: %v, want ErrNotExist", tg, err)
		}
	}
	// By number alone the PID is the newcomer's: the hazard TargetProcess
	// avoids.
	if r, err := p.Identify(ctx, TargetPID(pid)); err != nil || r.ID != second {
		t.Errorf("TargetPID of the reused PID = %v, %v; want the newcomer's %v", r, err, second)
	} else {
		r.Close()
	}
	ref.Close()
	if _, err := p.Open(ctx, ref.Target(), TierCheap); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open of a closed Ref: %v, want ErrNotExist", err)
	}
}
